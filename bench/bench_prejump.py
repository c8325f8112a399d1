"""Pre-jump steps on the NumPy backend (pytest-benchmark).

    pip install -e ".[bench]"
    pytest bench/bench_prejump.py --benchmark-only -p no:cacheprovider

Sizes are chosen for the 2-core / 24 GB development machine.
"""

import pytest

from tsogpu.config import PipelineConfig, required_reftypes
from tsogpu.io.reffiles import load_references
from tsogpu.io.uncal import read_uncal
from tsogpu.pipeline import run_prejump
from tsogpu.simulate import simulate


@pytest.mark.parametrize("mode, nints, ngroups", [("nrs_bots", 50, 20), ("niriss_soss", 10, 9)])
def test_prejump(benchmark, tmp_path, mode, nints, ngroups):
    sim = simulate(mode, tmp_path, nints=nints, ngroups=ngroups, seed=3)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    segment = read_uncal(sim.uncal)
    reftypes = required_reftypes(config, segment.exposure.instrument)
    refs, _ = load_references(segment.exposure, reftypes, config.refs)
    benchmark.pedantic(run_prejump, args=(segment, refs, config), rounds=3, warmup_rounds=1)
