"""ramp_fit options beyond jwst (docs/options.md): weighting and goodness_of_fit (CHI2).

Worked cases by hand on 4-group ramps, each checked on the NumPy specification
(``ramp_fit``), the tuned path (``ramp_fit_fast``) and the kernels (host build, and CuPy with a
GPU); the configuration; the CHI2 extension of ``_rateints`` in memory and in chunks; and
firstgroup/lastgroup against jwst's ``set_groupdq``.
"""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.algorithms import ramp_fit, ramp_fit_fast
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.config import PipelineConfig, RampFit, dump_toml, from_dict
from tsogpu.errors import ConfigError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal
from tsogpu.launchers import ramp_fit as kramp_fit
from tsogpu.pipeline import process_file
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan

JUMP, SAT = dq.JUMP_DET, dq.SATURATED
TGROUP = 10.0
TIMING = dict(nframes=1, groupgap=0, tgroup=TGROUP, tframe=TGROUP)
GAIN, RN = 1.0, 10.0  # e/DN; CDS read noise, DN


def _fit_all(kernels, ramps, params, gdq=None, rn=RN):
    """Every pixel's ramp (columns of ``ramps``: (ngroups, npix)), one integration, fitted by
    the specification, the tuned path and the kernels; asserts they agree bit for bit and
    returns the specification's result."""
    data = np.asarray(ramps, np.float32)[None, :, None, :]
    gdq = np.zeros(data.shape, np.uint8) if gdq is None else gdq.reshape(data.shape)
    npix = data.shape[-1]
    pdq = np.zeros((1, npix), np.uint32)
    gain = np.full((1, npix), GAIN, np.float32)
    rnoise = np.full((1, npix), rn, np.float32)
    args = (data, gdq, pdq, gain, rnoise, params)
    spec = ramp_fit.fit_ramps(*args, **TIMING)
    fast = ramp_fit_fast.fit_ramps(*args, **TIMING)
    dev = kramp_fit.fit_ramps(kernels, *(kernels.put(a) for a in args[:5]), params, **TIMING)
    for name in ("sci", "err", "var_poisson", "var_rnoise"):
        want = getattr(spec.rateints, name)
        for other in (fast, dev):
            got = kernels.get(getattr(other.rateints, name))
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), name)
    if params.goodness_of_fit:
        for other in (fast, dev):
            got = kernels.get(other.chi2)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(spec.chi2))
            ok = ~np.isnan(got)
            np.testing.assert_array_equal(got[ok].view(np.uint32), spec.chi2[ok].view(np.uint32))
    else:
        assert spec.chi2 is None and fast.chi2 is None and dev.chi2 is None
    return spec


def _sigma2():
    """A group's read-noise variance in DN^2: (rnoise / gain)^2, rnoise = float32(RN * gain /
    sqrt(2)) electrons per read as OLS_C converts it (50 DN^2 up to the float32 rounding)."""
    rn = ramp_fit.ols_readnoise(np.float32([RN]), np.float32([GAIN]), 1)[0]
    return (np.float64(rn) / GAIN) ** 2


# ---------------------------------------------------------------------------------------------
# weighting


def test_weighting_forms_and_errors():
    assert RampFit().fixed_power is None  # OLS_C's SNR table, jwst's default
    assert RampFit(weighting="unweighted").fixed_power == 0.0
    assert RampFit(weighting="exponent:2").fixed_power == 2.0
    assert RampFit(weighting=" Exponent:0.5 ").fixed_power == 0.5
    for bad in ("fixed", "exponent:", "exponent:-1", "exponent:nan", "exponent:inf", "power:2"):
        with pytest.raises(ConfigError, match=r"ramp_fit.weighting must be optimal, unweighted"):
            RampFit(weighting=bad)
    config = PipelineConfig().with_overrides(
        sets=["ramp_fit.weighting=exponent:3", "ramp_fit.goodness_of_fit=true"]
    )
    assert config.params("ramp_fit").fixed_power == 3.0
    text = dump_toml(config)
    assert 'weighting = "exponent:3"' in text and "goodness_of_fit = true" in text
    import tomllib

    assert from_dict(tomllib.loads(text)).params("ramp_fit") == config.params("ramp_fit")


def test_unweighted_slope_by_hand(kernels):
    # x = 0..3, mean 1.5, x - mean = -1.5, -0.5, 0.5, 1.5, sum of squares 5;
    # sum((x - mean) y) = -15 - 12.5 + 19 + 82.5 = 74: slope 74 / 5 = 14.8 DN per group
    spec = _fit_all(kernels, [[10.0], [25.0], [38.0], [55.0]], RampFit(weighting="unweighted"))
    np.testing.assert_allclose(spec.rateints.sci[0, 0, 0], 14.8 / TGROUP, rtol=1e-6)


def test_custom_exponent_slope_by_hand(kernels):
    # exponent 2: w = |(x - 1.5) / 1.5|^2 = 1, 1/9, 1/9, 1; weighted mean of x 1.5;
    # sum(w (x - 1.5)^2) = 2.25 + 2 * 0.25 / 9 + 2.25 = 41/9;
    # sum(w (x - 1.5) y) = -15 + (-12.5 + 19) / 9 + 82.5 = 614/9: slope 614/41 DN per group
    ramp = [[10.0], [25.0], [38.0], [55.0]]
    spec = _fit_all(kernels, ramp, RampFit(weighting="exponent:2"))
    np.testing.assert_allclose(spec.rateints.sci[0, 0, 0], 614.0 / 41.0 / TGROUP, rtol=1e-6)
    # the variances do not depend on the weights (as in OLS_C): those of the unweighted fit
    unweighted = _fit_all(kernels, ramp, RampFit(weighting="unweighted"))
    for name in ("var_poisson", "var_rnoise", "err"):
        assert getattr(spec.rateints, name) == getattr(unweighted.rateints, name)


def test_weighting_changes_the_fit_where_optimal_would_not(kernels):
    # read noise 1 DN: SNR = 45 / sqrt(0.5 + 45) = 6.7, OLS_C's exponent 0.4 (5 <= SNR < 10)
    ramp = [[10.0], [25.0], [38.0], [55.0]]
    slopes = {
        w: _fit_all(kernels, ramp, RampFit(weighting=w), rn=1.0).rateints.sci[0, 0, 0]
        for w in ("optimal", "exponent:0.4", "unweighted", "exponent:2")
    }
    assert slopes["optimal"] == slopes["exponent:0.4"]
    np.testing.assert_allclose(slopes["unweighted"], 1.48, rtol=1e-6)
    np.testing.assert_allclose(slopes["exponent:2"], 614.0 / 410.0, rtol=1e-6)
    assert len({float(v) for v in slopes.values()}) == 3


# ---------------------------------------------------------------------------------------------
# goodness of fit


def test_chi2_perfect_ramp_is_zero_and_default_gives_none(kernels):
    ramp = [[100.0], [110.0], [120.0], [130.0]]
    spec = _fit_all(kernels, ramp, RampFit(goodness_of_fit=True))
    assert abs(float(spec.chi2[0, 0, 0])) < 1e-12
    _fit_all(kernels, ramp, RampFit())  # no CHI2 without the option


def test_chi2_outlier_by_hand(kernels):
    # unweighted slope: sum((x - 1.5) y) = -150 - 55 + 75 + 195 = 65, 65 / 5 = 13 DN/group;
    # differences 10, 40, -20, residuals -3, 27, -33, squares 9 + 729 + 1089 = 1827;
    # var_d = 2 sigma^2 + 13 / gain (Poisson), N = 3 differences, 2 degrees of freedom
    params = RampFit(weighting="unweighted", goodness_of_fit=True)
    spec = _fit_all(kernels, [[100.0], [110.0], [150.0], [130.0]], params)
    np.testing.assert_allclose(spec.rateints.sci[0, 0, 0], 1.3, rtol=1e-6)
    want = 1827.0 / (2.0 * _sigma2() + 13.0 / GAIN) / 2.0  # 8.084
    np.testing.assert_allclose(spec.chi2[0, 0, 0], want, rtol=1e-6)


def test_chi2_leaves_out_the_jump_and_the_undefined(kernels):
    ramps = np.array(
        [
            [100, 110, 120, 1120, 1130, 1140],  # a jump at group 3: two segments, no residual
            [100, 110, 120, 130, 140, 150],  # group 0 saturated: no fit, NaN
            [100, 110, 125, 130, 140, 150],  # groups 2.. DO_NOT_USE: one difference, NaN
            [100, 112, 118, 131, 139, 150],  # plain, noisy: defined
        ],
        np.float32,
    ).T
    gdq = np.zeros(ramps.shape, np.uint8)
    gdq[3, 0] = JUMP
    gdq[:, 1] = SAT
    gdq[2:, 2] = dq.DO_NOT_USE
    spec = _fit_all(kernels, ramps, RampFit(goodness_of_fit=True), gdq=gdq)
    chi2 = spec.chi2[0, 0]
    assert abs(float(chi2[0])) < 1e-12  # differences 10, 10 | 10, 10 about 10 DN/group
    assert np.isnan(chi2[1]) and np.isnan(chi2[2])
    assert np.isfinite(chi2[3]) and chi2[3] > 0


# ---------------------------------------------------------------------------------------------
# the product, in memory and in chunks


def test_chi2_extension_in_rateints(simulated, kernels, tmp_path):
    sim = simulated("nrs_bots", nints=3, ngroups=5, ncols=16, seed=4)
    refs = {k: str(v) for k, v in sim.refs.items()}
    base = PipelineConfig(refs=refs, skip={"jump"})
    config = base.with_overrides(sets=["ramp_fit.goodness_of_fit=true"])
    plain = process_file(sim.uncal, tmp_path / "plain", base)
    made = process_file(sim.uncal, tmp_path / "chi2", config)
    name = next(p.name for p in made if p.name.endswith("_rateints.fits"))
    with fits.open(tmp_path / "plain" / name) as h:
        assert "CHI2" not in h
    with fits.open(tmp_path / "chi2" / name) as h:
        chi2, sci = h["CHI2"].data, h["SCI"].data
    assert chi2.dtype == np.dtype(">f4") and chi2.shape == sci.shape
    ok = np.isfinite(chi2)
    assert ok.mean() > 0.8 and 0.2 < np.median(chi2[ok]) < 5.0  # noise about as modelled
    assert not ok[np.isnan(sci)].any()  # no slope, no chi2 (nor with fewer than 2 differences)
    assert len(plain) == len(made)
    # in chunks and tiles, on NumPy and on the kernels: the same CHI2
    exposure, shape, _ = inspect_uncal(sim.uncal)
    seg_refs, _ = segment_references(sim.uncal, config)
    plan = Plan(0, ints=2, rows=5, cols=7, halo=1, in_memory=False, threads=1)
    for ops in (None, KernelOps(kernels)):
        args = (sim.uncal, exposure, shape, seg_refs, config, plan, tmp_path, lambda *a: None)
        result = run_chunked(*args, *([ops] if ops else []))
        assert len(result.rateints) == 6
        np.testing.assert_array_equal(result.rateints[5], chi2)


# ---------------------------------------------------------------------------------------------
# firstgroup / lastgroup: jwst's set_groupdq


@pytest.mark.jwst
def test_group_range_equals_jwst_set_groupdq():
    step = pytest.importorskip("jwst.ramp_fitting.ramp_fit_step")
    from stdatamodels.jwst.datamodels import dqflags

    ngroups = 6
    values = (None, -2, 0, 1, 3, 5, 6, 9)
    for first in values:
        for last in values:
            gdq = np.zeros((2, ngroups, 1, 1), np.uint8)
            gdq[0, 2] = JUMP
            want = gdq.copy()
            if first is not None or last is not None:  # as RampFitStep.process calls it
                step.set_groupdq(first, last, ngroups, want, dqflags.group)
            got = ramp_fit.flag_group_range(gdq, first, last)
            np.testing.assert_array_equal(got, want, err_msg=f"{first}, {last}")


def test_chi2_in_the_report_maps(simulated, tmp_path):
    pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from tsogpu.report.ds9 import write_ds9_images
    from tsogpu.report.exposure_product import build_exposure_product
    from tsogpu.report.maps import pixel_maps

    sim = simulated("nrs_bots", nints=6, ngroups=5, ncols=64, seed=6)
    base = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    for on in (False, True):
        config = base.with_overrides(sets=[f"ramp_fit.goodness_of_fit={str(on).lower()}"])
        made = process_file(sim.uncal, tmp_path / f"out{on}", config)
        rateints = next(p for p in made if p.name.endswith("_rateints.fits"))
        _, ds = build_exposure_product([rateints], tmp_path / f"report{on}")
        maps = pixel_maps(ds, block_bytes=6 * 64 * 4 * 3)  # a few rows at a time
        images = write_ds9_images(ds, tmp_path / f"report{on}", "exp", maps=maps)
        if not on:
            assert "chi2" not in ds and maps.median_chi2 is None
            assert "median_chi2" not in images
            continue
        chi2 = fits.getdata(rateints, "CHI2")
        np.testing.assert_array_equal(ds["chi2"].transpose("time", "y", "x").values, chi2)
        with warnings.catch_warnings():  # all-NaN pixels stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(chi2, axis=0)
        np.testing.assert_array_equal(maps.median_chi2, want)
        np.testing.assert_array_equal(fits.getdata(images["median_chi2"]), want)
