"""ramp_fit with LIKELY: hand-built pixels, stcal 1.20's likely fit, jwst 3.0's Detector1.

Catalogue pixels: gain 2 e/DN, CDS read noise 10 DN (per read 10 / sqrt(2) DN), TFRAME =
TGROUP = 10 s, NFRAMES = 1, noiseless linear ramps of 100 DN per group (10 DN/s): any
unbiased linear fit gives the exact slope. A flat ramp (rate 0, no dark) has no photon noise,
so the likelihood fit is ordinary least squares on the resultants: VAR_RNOISE =
12 sigma^2 / ((n^3 - n) t^2) with sigma the per-read noise in DN.

Oracle tests (marked ``jwst``) call stcal's ``ramp_fit`` with ``"LIKELY"`` as jwst's
RampFitStep does, and run jwst 3.0's Detector1Pipeline with ``ramp_fit.algorithm=LIKELY``,
in a subprocess with ``NPY_DISABLE_CPU_FEATURES=X86_V4``: DQ identical, NaN where jwst is
NaN, SCI/ERR/VAR_* to 1e-5 relative (in fact bit-equal). Why the subprocess: stcal's
covariance scaling takes ``theta ** (1 / i)`` with NumPy, which on a CPU with AVX512 calls a
SIMD ``pow`` that differs from C's by an ulp in a few per cent of the values, and stcal's
likelihood jump search is sensitive to the last bit in two places (a tie between the two
differences of a pixel with exactly two usable ones, and exact zeros in the two-omit
denominators, whose NaN disables the search for that pixel in that round): jwst's own
results there differ between CPUs with and without AVX512. tsogpu calls C's ``pow`` (as the
kernels do), which is what NumPy calls without AVX512; the default-CPU run agrees except at
those few pixels (:func:`test_random_ramps_match_stcal_with_avx512_except_rounding_cases`).
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from tsogpu import dq
from tsogpu.algorithms import likely
from tsogpu.config import ConfigError, RampFit

DNU = dq.DO_NOT_USE
SAT = dq.SATURATED
JUMP = dq.JUMP_DET
logging.getLogger("stcal").setLevel(logging.ERROR)
logging.getLogger("jwst").setLevel(logging.ERROR)

GAIN, RN_CDS, T = 2.0, 10.0, 10.0
TIMING = dict(nframes=1, groupgap=0, tgroup=T, tframe=T)
FIELDS = ("sci", "err", "dq", "var_poisson", "var_rnoise")
LIKELY = RampFit(algorithm="LIKELY")


def _fit_one(ramps, gdq=None, pixeldq=0, params=LIKELY, timing=TIMING):
    """Fit one pixel: ``ramps`` (nints, ngroups) in DN. Returns (rateints, rate) as dicts."""
    data = np.asarray(ramps, dtype=np.float32)[:, :, None, None]
    groupdq = np.zeros(data.shape, np.uint8) if gdq is None else np.asarray(gdq, np.uint8)
    groupdq = groupdq.reshape(data.shape)
    pdq = np.full((1, 1), pixeldq, np.uint32)
    gain = np.full((1, 1), GAIN, np.float32)
    rn = np.full((1, 1), RN_CDS, np.float32)
    res = likely.fit_ramps_likely(data, groupdq, pdq, gain, rn, params, **timing)
    ints = {k: v[:, 0, 0] for k, v in zip(FIELDS, res.rateints, strict=True)}
    rate = {k: v[0, 0] for k, v in zip(FIELDS, res.rate, strict=True)}
    return ints, rate


def _line(ngroups, per_group=100.0, offset=50.0):
    return offset + per_group * np.arange(ngroups)


# ---------------------------------------------------------------------------------------
# Catalogue


def test_flat_ramp_is_least_squares_on_the_resultants():
    n = 8
    ints, rate = _fit_one([np.full(n, 500.0)])
    sigma2 = (RN_CDS / np.sqrt(2.0)) ** 2
    assert ints["sci"][0] == 0.0
    assert_allclose(ints["var_rnoise"][0], 12 * sigma2 / ((n**3 - n) * T**2), rtol=1e-6)
    assert ints["var_poisson"][0] == 0.0
    assert_allclose(ints["err"][0], np.sqrt(ints["var_rnoise"][0]), rtol=1e-6)
    assert ints["dq"][0] == 0
    assert rate["sci"] == ints["sci"][0] and rate["err"] == ints["err"][0]


def test_clean_ramp():
    ints, _ = _fit_one([_line(10)])
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert ints["var_poisson"][0] > 0 and ints["var_rnoise"][0] > 0
    assert ints["dq"][0] == 0


def test_cr_in_the_middle_is_found_and_dropped():
    ramp = _line(10)
    ramp[5:] += 3000.0  # a jump between groups 4 and 5, not flagged by the jump step
    ints, _ = _fit_one([ramp])
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert ints["dq"][0] == JUMP


def test_cr_flagged_by_jump_step_masks_both_differences():
    ramp = _line(10)
    ramp[5:] += 3000.0
    gdq = np.zeros((1, 10), np.uint8)
    gdq[0, 5] = JUMP
    ints, _ = _fit_one([ramp], gdq)
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert ints["dq"][0] == JUMP


def test_saturated_from_group_6():
    ramp = _line(10)
    ramp[6:] = 1000.0
    gdq = np.zeros((1, 10), np.uint8)
    gdq[0, 6:] = SAT
    ints, _ = _fit_one([ramp], gdq)
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert ints["dq"][0] == SAT


def test_do_not_use_group():
    ramp = _line(10)
    ramp[3] = -1e4
    gdq = np.zeros((1, 10), np.uint8)
    gdq[0, 3] = DNU
    ints, _ = _fit_one([ramp], gdq)
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert ints["dq"][0] == 0  # DNU only when every group is DNU or SATURATED


def test_fully_saturated_is_nan_and_do_not_use():
    gdq = np.full((2, 6), SAT, np.uint8)
    ints, rate = _fit_one([_line(6), _line(6)], gdq)
    assert np.isnan(ints["sci"]).all() and np.isnan(rate["sci"])
    assert (ints["dq"] == SAT | DNU).all()
    assert rate["dq"] == SAT | DNU


def test_two_integrations_are_combined():
    ints, rate = _fit_one([_line(6), _line(6, per_group=300.0)])
    assert_allclose(ints["sci"], [10.0, 30.0], rtol=1e-6)
    assert 10.0 < rate["sci"] < 30.0
    assert_allclose(rate["err"] ** 2, rate["var_poisson"] + rate["var_rnoise"], rtol=1e-6)


def test_firstgroup_lastgroup_apply():
    ramp = _line(10)
    ramp[8:] += 5000.0
    ints, _ = _fit_one([ramp], params=RampFit(algorithm="LIKELY", lastgroup=7))
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert ints["dq"][0] == 0


def test_too_few_groups():
    with pytest.raises(ValueError, match="at least 4 groups"):
        _fit_one([_line(3)])


def test_algorithm_is_checked():
    assert RampFit().algorithm == "OLS_C"
    with pytest.raises(ConfigError, match=r"ramp_fit.algorithm must be one of OLS_C, LIKELY"):
        RampFit(algorithm="likely")


def test_pipeline_falls_back_to_ols_c_below_four_groups():
    """jwst's RampFitStep fits OLS_C when NGROUPS < 4; so does fit_and_scale."""
    from types import SimpleNamespace

    from tsogpu.algorithms.ramp_fit import RampFitResult
    from tsogpu.backends import NumpyOps
    from tsogpu.config import PipelineConfig
    from tsogpu.pipeline import steps

    called = []

    class Ops(NumpyOps):
        @staticmethod
        def fit_ramps(*args, **kwargs):
            called.append("OLS_C")
            return RampFitResult(rateints=None, rate=None)

        @staticmethod
        def fit_ramps_likely(*args, **kwargs):
            called.append("LIKELY")
            return RampFitResult(rateints=None, rate=None)

    config = PipelineConfig().with_overrides(
        sets=["ramp_fit.algorithm=LIKELY"], skip=["gain_scale"]
    )
    assert not steps.fits_likely(PipelineConfig(), 10)
    assert [steps.fits_likely(config, n) for n in (3, 4)] == [False, True]
    ref = SimpleNamespace(arrays={"data": None}, header={})
    for ngroups in (3, 4):
        seg = SimpleNamespace(
            data=np.zeros((1, ngroups, 1, 1), np.float32),
            groupdq=None,
            pixeldq=None,
            exposure=SimpleNamespace(nframes=1, groupgap=0, tgroup=1.0, tframe=1.0),
            average_dark_current=None,
            zeroframe=None,
            step_status={},
        )
        steps.fit_and_scale(seg, {"gain": ref, "readnoise": ref}, config, False, Ops)
    assert called == ["OLS_C", "LIKELY"]


def _saturated_everywhere(tmp_path):
    """A small simulated segment and its references, with a saturation reference of 1 DN
    (group 0 SATURATED in every pixel)."""
    from astropy.io import fits

    from tsogpu.simulate import simulate

    sim = simulate("nrs_bots", tmp_path / "in", nints=2, ngroups=5, ncols=16, seed=3)
    refs = {k: str(v) for k, v in sim.refs.items()}
    with fits.open(refs["saturation"]) as hdul:
        hdul["SCI"].data[...] = 1.0
        hdul["DQ"].data[...] = 0
        hdul.writeto(tmp_path / "sat.fits")
    refs["saturation"] = str(tmp_path / "sat.fits")
    return sim, refs


@pytest.mark.parametrize("chunked", [False, True], ids=["in_memory", "chunked"])
def test_fully_saturated_exposure_gets_nan_rates(tmp_path, chunked, monkeypatch):
    """OLS_C writes no rate products when group 0 is saturated everywhere; LIKELY (stcal's
    likely_ramp_fit has no such rule) writes NaN rates, in memory and chunked."""
    from astropy.io import fits

    from tsogpu.config import PipelineConfig
    from tsogpu.pipeline import process_file

    sim, refs = _saturated_everywhere(tmp_path)
    from tsogpu.pipeline import driver, planning

    real, runs = driver.run_chunked, []

    def counted(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(driver, "run_chunked", counted)
    if chunked:  # no segment fits in memory
        monkeypatch.setattr(planning, "BYTES_PER_SAMPLE_IN_MEMORY", 2**60)
    for algorithm, products in (("OLS_C", set()), ("LIKELY", {"rateints.fits", "rate.fits"})):
        config = PipelineConfig(refs=refs, max_memory=4 * 2**30).with_overrides(
            sets=[f"ramp_fit.algorithm={algorithm}"]
        )
        out = tmp_path / algorithm
        written = {p.name.rsplit("_", 1)[1]: p for p in process_file(sim.uncal, out, config)}
        assert set(written) - {"ramp.fits"} == products
        if products:
            assert np.isnan(fits.getdata(written["rate.fits"], "SCI")).all()
    assert bool(runs) == chunked


def test_inputs_untouched_and_pixels_independent(monkeypatch):
    arrays, dark, _, timing = random_case(5, 3, 8)
    copies = [a.copy() for a in (*arrays, dark)]
    res = likely.fit_ramps_likely(*arrays, LIKELY, average_dark_current=dark, **timing)
    for before, after in zip(copies, (*arrays, dark), strict=True):
        assert_array_equal(before, after)
    # rows fitted apart give the same bits
    half = arrays[0].shape[2] // 2
    for rows in (slice(0, half), slice(half, None)):
        sub = [a[:, :, rows] for a in arrays[:2]] + [a[rows] for a in arrays[2:]]
        part = likely.fit_ramps_likely(*sub, LIKELY, average_dark_current=dark[rows], **timing)
        for a, b in zip(part.rateints, res.rateints, strict=True):
            assert_array_equal(a, b[:, rows])
        for a, b in zip(part.rate, res.rate, strict=True):
            assert_array_equal(a, b[rows])
    # and in blocks of 7 pixels
    monkeypatch.setattr(likely, "PIXEL_BLOCK", 7)
    blocks = likely.fit_ramps_likely(*arrays, LIKELY, average_dark_current=dark, **timing)
    for a, b in zip((*blocks.rateints, *blocks.rate), (*res.rateints, *res.rate), strict=True):
        assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# Random ramps against stcal 1.20


def random_case(seed, nints, ngroups, ny=10, nx=13, nframes=1, groupgap=0, bad=False):
    """Ramps with noise, CRs (some flagged JUMP, some not), saturation, DNU, bad pixels;
    ``bad``: also NaN samples and gains of 0, NaN and -1."""
    rng = np.random.default_rng(seed)
    tframe = 1.5
    tgroup = tframe * (nframes + groupgap)
    gain = rng.uniform(1.0, 2.5, (ny, nx)).astype(np.float32)
    rn = rng.uniform(3.0, 25.0, (ny, nx)).astype(np.float32)
    rate = 10 ** rng.uniform(-1, 4, (ny, nx)) * rng.choice([-1, 1, 1, 1], (ny, nx))
    t = tgroup * np.arange(1, ngroups + 1)
    level = rate[None, None] * t[None, :, None, None] * rng.uniform(0.9, 1.1, (nints, 1, ny, nx))
    data = level + rng.normal(0.0, 10.0, (nints, ngroups, ny, nx))
    gdq = np.zeros(data.shape, np.uint8)
    u = rng.random(data.shape)
    cr = u < 0.06
    gdq[cr & (u < 0.03)] |= JUMP  # half of the CRs already flagged by the jump step
    data += np.cumsum(np.where(cr, rng.uniform(50, 5000, data.shape), 0.0), axis=1)
    gdq[(u > 0.08) & (u < 0.10)] |= DNU
    first_sat = np.where(
        rng.random((nints, ny, nx)) < 0.2, rng.integers(0, ngroups, (nints, ny, nx)), ngroups
    )
    for g in range(ngroups):
        gdq[:, g][first_sat <= g] |= SAT
    pixeldq = np.zeros((ny, nx), np.uint32)
    pixeldq[1, :3] = [DNU, SAT, dq.PIXEL["HOT"]]
    if bad:
        gain[0, :3] = [0.0, np.nan, -1.0]
        data[rng.random(data.shape) > 0.995] = np.nan
    dark = rng.uniform(0.0, 0.5, (ny, nx)).astype(np.float32)
    zeroframe = (rate[None] * tframe + rng.normal(0, 5, (nints, ny, nx))).astype(np.float32)
    timing = dict(nframes=nframes, groupgap=groupgap, tgroup=tgroup, tframe=tframe)
    arrays = (data.astype(np.float32), gdq, pixeldq, gain, rn)
    return arrays, dark, zeroframe, timing


def _stcal_likely(arrays, params, timing, dark=None, zeroframe=None):
    """stcal LIKELY on copies of the arrays, set up as jwst 3.0's RampFitStep does."""
    from test_ramp_fit import stcal_fit

    return stcal_fit(arrays, params, timing, dark=dark, zeroframe=zeroframe, algorithm="LIKELY")


def _no_avx512():
    """NumPy's power is then C's pow (NumPy refuses to disable what the CPU lacks)."""
    from numpy._core._multiarray_umath import __cpu_features__

    return {"NPY_DISABLE_CPU_FEATURES": "X86_V4"} if __cpu_features__.get("X86_V4") else {}


def _in_subprocess(tmp_path, kind, arrays, options):
    """Run this file's ``__main__`` (stcal or jwst) with NumPy's AVX512 loops off."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    np.savez(tmp_path / "in.npz", **arrays)
    (tmp_path / "options.json").write_text(json.dumps(options))
    env = {**os.environ, **_no_avx512()}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    subprocess.run([sys.executable, __file__, kind, str(tmp_path)], env=env, check=True)
    with np.load(tmp_path / "out.npz") as out:
        return {k: out[k] for k in out.files}


def _stcal_arrays(out, prefix):
    keys = ("slope", "err", "dq", "var_poisson", "var_rnoise")
    return [out[f"{prefix}_{k}"] for k in keys]


def differing(ours, theirs, rtol=1e-5):
    """bool, the product's shape: where any array differs (DQ, NaN places, or beyond rtol)."""
    bad = np.zeros(ours[0].shape, bool)
    for a, b in zip(ours, theirs, strict=True):
        b = np.asarray(b)
        with np.errstate(all="ignore"):
            close = np.abs(a.astype(np.float64) - b) <= rtol * np.abs(b.astype(np.float64))
        bad |= ~((a == b) | close | (np.isnan(a) & np.isnan(b)))
    return bad


def assert_matches(ours, theirs, label, rtol=1e-5):
    """DQ identical, NaN places equal, floats to ``rtol``; returns the largest relative
    difference of the floats."""
    worst = 0.0
    for name, a, b in zip(FIELDS, ours, theirs, strict=True):
        b = np.asarray(b)
        assert a.dtype == b.dtype, (label, name)
        if name == "dq":
            assert_array_equal(a, b, err_msg=f"{label} {name}")
            continue
        assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{label} {name}: NaN places")
        finite = ~np.isnan(b)
        assert_allclose(a[finite], b[finite], rtol=rtol, atol=0, err_msg=f"{label} {name}")
        with np.errstate(all="ignore"):
            rel = np.abs(a[finite].astype(np.float64) / b[finite] - 1.0)
        rel = rel[np.isfinite(rel)]
        worst = max(worst, float(rel.max()) if rel.size else 0.0)
    return worst


CASES = [
    # (nints, ngroups, nframes, groupgap, zeroframe, first/last, NaN samples and bad gains)
    (1, 4, 1, 0, False, None, False),
    (3, 5, 1, 0, False, None, False),
    (2, 8, 2, 1, True, None, False),
    (4, 10, 4, 0, True, None, False),
    (9, 12, 1, 0, False, None, False),
    (2, 12, 1, 0, False, (1, 9), False),
    (2, 25, 1, 0, False, None, False),
    (5, 7, 2, 0, True, None, True),
]


def _case_inputs(case):
    nints, ngroups, nframes, groupgap, use_zf, group_range, bad = case
    arrays, dark, zeroframe, timing = random_case(
        2000 + CASES.index(case), nints, ngroups, nframes=nframes, groupgap=groupgap, bad=bad
    )
    first, last = group_range or (None, None)
    params = RampFit(algorithm="LIKELY", firstgroup=first, lastgroup=last)
    return arrays, dark, (zeroframe if use_zf else None), timing, params


@pytest.mark.jwst
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_random_ramps_match_stcal(case, tmp_path):
    pytest.importorskip("jwst")
    arrays, dark, zeroframe, timing, params = _case_inputs(case)
    res = likely.fit_ramps_likely(
        *arrays, params, average_dark_current=dark, zeroframe=zeroframe, **timing
    )
    names = ("data", "groupdq", "pixeldq", "gain", "readnoise")
    inputs = dict(zip(names, arrays, strict=True), dark=dark)
    if zeroframe is not None:
        inputs["zeroframe"] = zeroframe
    options = {**timing, "firstgroup": params.firstgroup, "lastgroup": params.lastgroup}
    out = _in_subprocess(tmp_path, "stcal", inputs, options)
    assert_matches(res.rateints, _stcal_arrays(out, "ints"), "rateints", rtol=0)
    assert_matches(res.rate, _stcal_arrays(out, "rate"), "rate", rtol=0)


@pytest.mark.jwst
def test_random_ramps_match_stcal_with_avx512_except_rounding_cases():
    """stcal in this process (NumPy's SIMD pow where the CPU has AVX512): the same but for
    the few integrations decided by the last bit (module docstring)."""
    pytest.importorskip("jwst")
    total = nbad = 0
    for case in CASES:
        arrays, dark, zeroframe, timing, params = _case_inputs(case)
        res = likely.fit_ramps_likely(
            *arrays, params, average_dark_current=dark, zeroframe=zeroframe, **timing
        )
        cube, image = _stcal_likely(arrays, params, timing, dark=dark, zeroframe=zeroframe)
        bad = differing(res.rateints, cube)
        assert not (differing(res.rate, image) & ~bad.any(axis=0)).any()
        total, nbad = total + bad.size, nbad + int(bad.sum())
    assert nbad <= 0.01 * total, (nbad, total)


# ---------------------------------------------------------------------------------------
# jwst 3.0's Detector1Pipeline with ramp_fit.algorithm = LIKELY

JWST_CASES = {
    # 100 integrations: the jump step's sigma clipping across integrations
    "sigma_clip": dict(mode="nrs_bots", nints=100, ngroups=4, ncols=24, seed=52, cr_rate=3e-3),
    # fewer than 100 integrations: the jump step's iterative two-point difference
    "iterative": dict(mode="nrs_bots", nints=5, ngroups=8, ncols=48, seed=51, cr_rate=3e-3),
}
# the jump step's thresholds (all three), high enough that LIKELY finds jumps it missed
JUMP_THRESHOLD = {"sigma_clip": 10.0, "iterative": 40.0}
JUMP_PARAMS = ("rejection_threshold", "three_group_rejection_threshold")
JUMP_PARAMS += ("four_group_rejection_threshold",)


@pytest.mark.jwst
@pytest.mark.slow
@pytest.mark.parametrize("case", JWST_CASES, ids=list(JWST_CASES))
def test_detector1_likely_matches_jwst(case, tmp_path):
    """tsogpu's file path on the NumPy and native backends (and CuPy where there is a GPU)
    against jwst 3.0 on the same segment."""
    pytest.importorskip("jwst")
    from astropy.io import fits

    from tsogpu.config import PipelineConfig
    from tsogpu.launchers import host_build
    from tsogpu.pipeline import process_file
    from tsogpu.simulate import simulate

    kw = dict(JWST_CASES[case])
    sim = simulate(kw.pop("mode"), tmp_path / "in", **kw)
    refs = {k: str(v) for k, v in sim.refs.items()}
    jump = {name: JUMP_THRESHOLD[case] for name in JUMP_PARAMS}
    options = {"uncal": str(sim.uncal), "refs": refs, "jump": jump}
    theirs = _in_subprocess(tmp_path / "jwst", "jwst", {}, options)
    backends = ["numpy"] + (["native"] if host_build.compiler() is not None else [])
    sets = ["ramp_fit.algorithm=LIKELY"] + [f"jump.{k}={v}" for k, v in jump.items()]
    for backend in backends:
        config = PipelineConfig(refs=refs, backend=backend).with_overrides(
            sets=sets, save_ramp=True
        )
        out = tmp_path / backend
        written = {p.name.rsplit("_", 1)[1]: p for p in process_file(sim.uncal, out, config)}
        # the jump step flagged some jumps, LIKELY found more
        after_jump = ((fits.getdata(written["ramp.fits"], "GROUPDQ") & JUMP) != 0).any(axis=1)
        likely_jumps = (fits.getdata(written["rateints.fits"], "DQ") & JUMP) != 0
        assert after_jump.any() and (likely_jumps & ~after_jump).any()
        worst = 0.0
        for product in ("rateints", "rate"):
            with fits.open(written[f"{product}.fits"]) as hdul:
                ours = [hdul[e].data for e in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")]
            keys = ("data", "err", "dq", "var_poisson", "var_rnoise")
            ref = [theirs[f"{product}_{k}"] for k in keys]
            worst = max(worst, assert_matches(ours, ref, f"{backend} {product}"))
        print(f"{case} {backend}: max relative difference {worst:.2e}")


@pytest.mark.jwst
@pytest.mark.slow
def test_fully_saturated_exposure_matches_jwst(tmp_path):
    """jwst 3.0 with LIKELY writes the NaN rates of a segment saturated everywhere too."""
    pytest.importorskip("jwst")
    from astropy.io import fits

    from tsogpu.config import PipelineConfig
    from tsogpu.pipeline import process_file

    sim, refs = _saturated_everywhere(tmp_path)
    jump = {name: 4.0 for name in JUMP_PARAMS}
    theirs = _in_subprocess(
        tmp_path / "jwst", "jwst", {}, {"uncal": str(sim.uncal), "refs": refs, "jump": jump}
    )
    config = PipelineConfig(refs=refs).with_overrides(sets=["ramp_fit.algorithm=LIKELY"])
    written = {p.name.rsplit("_", 1)[1]: p for p in process_file(sim.uncal, tmp_path, config)}
    for product in ("rateints", "rate"):
        with fits.open(written[f"{product}.fits"]) as hdul:
            ours = [hdul[e].data for e in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")]
        keys = ("data", "err", "dq", "var_poisson", "var_rnoise")
        assert_matches(ours, [theirs[f"{product}_{k}"] for k in keys], product)


def _main(kind, folder):
    """The subprocess of :func:`_in_subprocess`: stcal or jwst on the saved inputs."""
    folder = Path(folder)
    options = json.loads((folder / "options.json").read_text())
    with np.load(folder / "in.npz") as f:
        inputs = {k: f[k] for k in f.files}
    out = {}
    if kind == "stcal":
        names = ("data", "groupdq", "pixeldq", "gain", "readnoise")
        params = RampFit(
            algorithm="LIKELY", firstgroup=options["firstgroup"], lastgroup=options["lastgroup"]
        )
        timing = {k: options[k] for k in ("nframes", "groupgap", "tgroup", "tframe")}
        cube, image = _stcal_likely(
            [inputs[n] for n in names],
            params,
            timing,
            dark=inputs["dark"],
            zeroframe=inputs.get("zeroframe"),
        )
        keys = ("slope", "err", "dq", "var_poisson", "var_rnoise")
        out.update({f"ints_{k}": v for k, v in zip(keys, cube, strict=True)})
        out.update({f"rate_{k}": v for k, v in zip(keys, image, strict=True)})
    else:
        import jwst_oracle  # tests/jwst_oracle.py: runs jwst offline

        theirs = jwst_oracle.run_jwst_detector1(
            options["uncal"],
            options["refs"],
            folder / "out",
            steps_to_compare=("ramp_fit",),
            skip=(),
            step_params={"ramp_fit": {"algorithm": "LIKELY"}, "jump": options["jump"]},
        )
        fit = theirs["ramp_fit"]
        for k in ("data", "err", "dq", "var_poisson", "var_rnoise"):
            out[f"rateints_{k}"] = fit["ints"][k]
            out[f"rate_{k}"] = fit[k]
    np.savez(folder / "out.npz", **out)


if __name__ == "__main__":
    _main(*sys.argv[1:3])
