"""tsogpu's pre-jump steps against jwst 3.0's Detector1Pipeline on the same files.

After every step tsogpu implements, DQ arrays must be identical and data equal to float32
rounding. Each mode runs on segments simulated here (seeded), with the same reference files
given to both.
"""

import numpy as np
import pytest

from tsogpu.config import PipelineConfig
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import read_uncal
from tsogpu.pipeline import run_prejump
from tsogpu.pipeline.steps import ramp_steps
from tsogpu.simulate import simulate

pytestmark = pytest.mark.jwst
RAMP_STEPS = ramp_steps("NIRSPEC")
pytest.importorskip("jwst")
import jwst_oracle  # noqa: E402  (tests/jwst_oracle.py: runs jwst offline)

CASES = {
    "nrs_bots": dict(mode="nrs_bots", nints=3, ngroups=5, seed=11),
    "niriss_soss": dict(mode="niriss_soss", nints=2, ngroups=4, seed=12),
    "nircam_grism": dict(mode="nircam_grism", nints=2, ngroups=4, seed=13),
    "nircam_grism_nframes2_zeroframe": dict(
        mode="nircam_grism", nints=2, ngroups=4, seed=14, nframes=2, groupgap=1, zeroframe=True
    ),
    "nircam_grism_group_scale": dict(
        mode="nircam_grism", nints=2, ngroups=3, seed=15, nframes=2, frame_divisor=4
    ),
}


def run_tsogpu(sim, config):
    segment = read_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    after = {}

    def keep(step, seg):
        after[step] = {
            "data": seg.data.copy(),
            "groupdq": seg.groupdq.copy(),
            "pixeldq": seg.pixeldq.copy(),
            "zeroframe": None if seg.zeroframe is None else seg.zeroframe.copy(),
        }

    result = run_prejump(segment, refs, config, on_step=keep)
    return after, result.step_status


def assert_same(step, ours, theirs):
    for name in ("groupdq", "pixeldq"):
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{step}: {name}")
    for name in ("data", "zeroframe"):
        a, b = ours[name], theirs.get(name)
        if a is None:
            continue
        assert a.dtype == np.float32
        # equal to float32 rounding: at most 1 ulp apart (in practice bit-identical)
        np.testing.assert_array_max_ulp(a, np.asarray(b, dtype=np.float32), maxulp=1)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_step_matches_jwst(case, tmp_path):
    kw = dict(CASES[case])
    sim = simulate(kw.pop("mode"), tmp_path / "in", **kw)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    ours, status = run_tsogpu(sim, config)
    theirs = jwst_oracle.run_jwst_detector1(
        sim.uncal, sim.refs, tmp_path / "jwst", steps_to_compare=RAMP_STEPS
    )
    compared = 0
    for step in RAMP_STEPS:
        assert theirs[step]["cal_step"][jwst_oracle.CAL_STEP_KEYWORDS[step]] == status[step], step
        if step in ours and "data" in theirs[step]:
            assert_same(step, ours[step], theirs[step])
            compared += 1
    assert compared >= 6
    assert status["saturation"] == status["superbias"] == status["linearity"] == "COMPLETE"
    if "frame_divisor" in kw:
        assert status["group_scale"] == "COMPLETE"
