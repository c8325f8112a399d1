"""Full rateints / rate parity with jwst 3.0's Detector1Pipeline (jump, ramp_fit, gain_scale).

``tsogpu``'s file path (``process_file``) and jwst run on the same simulated segment with the
same reference files: SCI, ERR, VAR_POISSON, VAR_RNOISE agree to a relative 1e-5 wherever
jwst's are finite and are NaN where jwst's are NaN; DQ is identical; PRIMECRS agrees.
"""

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.config import PipelineConfig
from tsogpu.pipeline import process_file
from tsogpu.simulate import simulate

pytestmark = [pytest.mark.jwst, pytest.mark.slow]
pytest.importorskip("jwst")
import jwst_oracle  # noqa: E402  (tests/jwst_oracle.py: runs jwst offline)

CASES = {
    # fewer than 100 integrations: two-point difference (iterative) path
    "nrs_bots": dict(mode="nrs_bots", nints=6, ngroups=6, ncols=64, seed=41, cr_rate=2e-3),
    # 100 integrations: jump's sigma clipping across integrations
    "nrs_bots_sigclip": dict(
        mode="nrs_bots", nints=100, ngroups=4, ncols=24, seed=42, cr_rate=2e-3
    ),
    # 10 and more differences: the single pass
    "niriss_soss": dict(
        mode="niriss_soss", nints=3, ngroups=9, nrows=24, ncols=64, seed=43, cr_rate=2e-3
    ),
    "nircam_grism_4_outputs": dict(
        mode="nircam_grism", nints=4, ngroups=5, ncols=64, seed=44, cr_rate=2e-3
    ),
    "nircam_grism_nframes2": dict(
        mode="nircam_grism", nints=3, ngroups=4, ncols=64, seed=45, nframes=2, groupgap=1
    ),
}
FLOATS = {"data": "SCI", "err": "ERR", "var_poisson": "VAR_POISSON", "var_rnoise": "VAR_RNOISE"}


def compare(ours_path, theirs, label):
    for key, ext in FLOATS.items():
        ours = fits.getdata(ours_path, ext).astype(np.float64)
        ref = np.asarray(theirs[key], dtype=np.float64)
        nan = np.isnan(ref)
        np.testing.assert_array_equal(np.isnan(ours), nan, err_msg=f"{label} {ext}: NaN places")
        np.testing.assert_allclose(
            ours[~nan], ref[~nan], rtol=1e-5, atol=0, err_msg=f"{label} {ext}"
        )
    np.testing.assert_array_equal(
        fits.getdata(ours_path, "DQ"), theirs["dq"], err_msg=f"{label} DQ"
    )


def rates_with_jwst(uncal, refs, config, tmp_path, step_params=None):
    """``process_file`` and jwst's Detector1Pipeline (every step up to gain_scale) on the same
    segment: (our products by suffix, e.g. ``rateints.fits``; jwst's ramp_fit product)."""
    written = {p.name.rsplit("_", 1)[1]: p for p in process_file(uncal, tmp_path / "ours", config)}
    theirs = jwst_oracle.run_jwst_detector1(
        uncal, refs, tmp_path / "jwst", steps_to_compare=("jump", "ramp_fit"), skip=(),
        step_params=step_params,
    )  # fmt: skip
    return written, theirs["ramp_fit"]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_rates_match_jwst(case, tmp_path):
    kw = dict(CASES[case])
    sim = simulate(kw.pop("mode"), tmp_path / "in", **kw)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    written, fit = rates_with_jwst(sim.uncal, sim.refs, config, tmp_path)
    compare(written["rateints.fits"], fit["ints"], "rateints")
    compare(written["rate.fits"], fit, "rate")
    ours_h, theirs_h = fits.getheader(written["rate.fits"]), fits.getheader(fit["path"])
    assert ours_h["S_JUMP"] == theirs_h["S_JUMP"] == "COMPLETE"
    assert ours_h["PRIMECRS"] == pytest.approx(theirs_h["PRIMECRS"], rel=1e-12)
    # jump flags in the ramp itself, not only their effect on the slopes
    np.testing.assert_array_equal(
        (fits.getdata(written["rateints.fits"], "DQ") & 4) != 0, (fit["ints"]["dq"] & 4) != 0
    )
