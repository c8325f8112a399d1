"""MIRI time series against jwst 3.0's Detector1Pipeline on the same simulated files.

Each MIRI step before jump (jwst's MIRI order: dq_init, emicorr, saturation, firstframe,
lastframe, reset, linearity, rscd, dark_current, refpix), on every CPU backend: DQ identical,
data equal to float32 rounding. Then the rateints and rate products of ``process_file``, whole
and in chunks of integrations: SCI, ERR, VAR_POISSON, VAR_RNOISE to a relative 1e-5, DQ
identical. jwst's default skips (emicorr, firstframe) are compared skipped and run. Chunks
against the whole segment: tests/test_miri_pipeline.py.
"""

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.backends import backend_ops
from tsogpu.config import PipelineConfig
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import read_uncal
from tsogpu.pipeline import run_prejump
from tsogpu.pipeline.steps import ramp_steps
from tsogpu.simulate import simulate

pytestmark = pytest.mark.jwst
pytest.importorskip("jwst")
import jwst_oracle  # noqa: E402  (tests/jwst_oracle.py: runs jwst offline)
from test_oracle_prejump import assert_same  # noqa: E402
from test_oracle_rates import compare, rates_with_jwst  # noqa: E402

MIRI_STEPS = ramp_steps("MIRI")
CASES = {
    "miri_lrs": dict(mode="miri_lrs", nints=4, ngroups=8, seed=21),
    "miri_image": dict(mode="miri_image", nints=3, ngroups=6, seed=22),
    # few groups: rscd's and firstframe's short-ramp rules
    "miri_image_5_groups": dict(mode="miri_image", nints=3, ngroups=5, seed=23),
}
# tsogpu's --run-step -> jwst's steps.<step>.skip = False
RUN_DEFAULT_SKIPPED = {"emicorr": {"skip": False}, "firstframe": {"skip": False}}


@pytest.fixture(scope="module", params=list(CASES))
def miri(request, tmp_path_factory):
    kw = dict(CASES[request.param])
    return simulate(kw.pop("mode"), tmp_path_factory.mktemp(request.param), **kw)


def prejump(sim, config, ops):
    segment = read_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    seg, refs = ops.to_device(segment, refs)
    after = {}

    def keep(step, seg):
        after[step] = {
            "data": ops.to_host(seg.data).copy(),
            "groupdq": ops.to_host(seg.groupdq).copy(),
            "pixeldq": ops.to_host(seg.pixeldq).copy(),
            "zeroframe": None,
        }

    result = run_prejump(seg, refs, config, on_step=keep, ops=ops)
    return after, result.step_status


@pytest.mark.parametrize("run_all", [False, True], ids=["jwst_defaults", "emicorr_firstframe"])
def test_each_miri_step_matches_jwst(miri, run_all, tmp_path):
    config = PipelineConfig(refs={k: str(v) for k, v in miri.refs.items()})
    if run_all:
        config = config.with_overrides(run=tuple(RUN_DEFAULT_SKIPPED))
    theirs = jwst_oracle.run_jwst_detector1(
        miri.uncal,
        miri.refs,
        tmp_path / "jwst",
        steps_to_compare=MIRI_STEPS,
        step_params=RUN_DEFAULT_SKIPPED if run_all else None,
    )
    for backend in ("numpy", "native"):
        ours, status = prejump(miri, config, backend_ops(backend))
        compared = 0
        for step in MIRI_STEPS:
            expected = theirs[step]["cal_step"][jwst_oracle.CAL_STEP_KEYWORDS[step]]
            assert expected == status[step], (backend, step)
            if step in ours and "data" in theirs[step]:
                assert_same(f"{backend} {step}", ours[step], theirs[step])
                compared += 1
        assert compared >= 6, backend


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "native"])
def test_miri_rates_match_jwst(miri, backend, tmp_path):
    config = PipelineConfig(refs={k: str(v) for k, v in miri.refs.items()}, backend=backend)
    written, fit = rates_with_jwst(miri.uncal, miri.refs, config, tmp_path)
    compare(written["rateints.fits"], fit["ints"], "rateints")
    compare(written["rate.fits"], fit, "rate")
    ours_h, theirs_h = fits.getheader(written["rate.fits"]), fits.getheader(fit["path"])
    for key in ("S_JUMP", "S_RSCD", "S_RESET", "S_LASTFR", "S_DARK", "S_REFPIX", "S_MIREMI"):
        assert ours_h[key] == theirs_h[key], key
    np.testing.assert_array_equal(
        (fits.getdata(written["rateints.fits"], "DQ") & 4) != 0, (fit["ints"]["dq"] & 4) != 0
    )


@pytest.mark.slow
def test_simulate_command_writes_what_jwst_processes(tmp_path, capsys):
    """``tsogpu simulate --mode miri_lrs --nints 25 --ngroups 10``: jwst 3.0 runs every MIRI
    step on its files (emicorr and firstframe too), and tsogpu's products equal jwst's."""
    from tsogpu.cli import main

    args = ["--mode", "miri_lrs", "--nints", "25", "--ngroups", "10", "--seed", "5"]
    assert main(["simulate", *args, "--out", str(tmp_path / "in")]) == 0
    printed = capsys.readouterr().out.split()
    uncal = printed[0]
    refs = dict(a.split("=", 1) for a in printed if "=" in a)
    fitsfiles = {t: p for t, p in refs.items() if p.endswith(".fits")}
    assert {fits.getval(p, "REFTYPE").lower() for p in fitsfiles.values()} == set(fitsfiles)
    config = PipelineConfig(refs=refs).with_overrides(run=tuple(RUN_DEFAULT_SKIPPED))
    written, fit = rates_with_jwst(uncal, refs, config, tmp_path, RUN_DEFAULT_SKIPPED)
    for key in ("S_MIREMI", "S_FRSTFR", "S_LASTFR", "S_RESET", "S_RSCD", "S_DARK", "S_JUMP"):
        assert fits.getval(fit["path"], key) == "COMPLETE", key
    compare(written["rateints.fits"], fit["ints"], "rateints")
    compare(written["rate.fits"], fit, "rate")
