"""The exposure product (tsogpu.report): three simulated segments with an injected transit,
processed, merged into <exposure>_tso.nc; the depth checked against the simulator's truth,
the merge against segments out of order, missing, foreign or repeated; the time series on
hand-built arrays."""

import json
import shutil
import warnings

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

from tsogpu import dq  # noqa: E402
from tsogpu.errors import ConfigError, InputError  # noqa: E402
from tsogpu.report import require_report_extra  # noqa: E402
from tsogpu.report import time_series as ts  # noqa: E402
from tsogpu.report.exposure_product import build_exposure_product  # noqa: E402

DEPTH = 0.02
NINTS = 10  # per segment
NSEG = 3
SERIES = (
    "white_light", "white_light_err", "trace_centroid", "trace_width", "background",
    "one_over_f_amplitude", "bias_offset", "bias_scale", "n_jump", "n_saturated",
    "n_do_not_use", "n_usable_groups",
)  # fmt: skip


@pytest.fixture(scope="module")
def exposure(tmp_path_factory):
    """Three processed segments of a NIRSpec BOTS exposure (1/f on, the sky options on):
    (the _rateints paths in segment order, the truth light curve of the exposure)."""
    from tsogpu.config import PipelineConfig
    from tsogpu.pipeline import process_file
    from tsogpu.simulate import simulate

    work = tmp_path_factory.mktemp("report")
    sims = [
        simulate(
            "nrs_bots", work / "in", nints=NINTS, ngroups=4, ncols=256, seed=7,
            segment=(k, NSEG), transit_depth=DEPTH, full_frame_refs=False, one_over_f=True,
        )
        for k in range(1, NSEG + 1)
    ]  # fmt: skip
    config = PipelineConfig(refs={t: str(p) for t, p in sims[0].refs.items()}).with_overrides(
        sets=["refpix.sky_method=roeba", "superbias.scale=mean", "dq_init.flag_first=1"]
    )
    rateints = []
    for sim in sims:
        products = process_file(sim.uncal, work / "out", config)
        rateints.append(next(p for p in products if p.name.endswith("_rateints.fits")))
    light_curve = np.concatenate([np.load(s.truth)["light_curve"] for s in sims])
    return rateints, light_curve


@pytest.fixture(scope="module")
def product(exposure, tmp_path_factory):
    rateints, _ = exposure
    out = tmp_path_factory.mktemp("product")
    # given out of order, as a batch's outputs may be listed
    path, ds = build_exposure_product([rateints[2], rateints[0], rateints[1]], out)
    return path, ds


def test_file_opens_with_every_variable(product):
    path, ds = product
    assert path.name == "jw01366003001_04101_00001_nrs1_tso.nc"
    with xr.open_dataset(path, engine="h5netcdf") as f:
        for name in (*SERIES, "rateints", "err", "dq", "read_offset", "group_time"):
            assert name in f.variables, name
        for name in SERIES:
            assert f[name].dims == ("time",)
        assert f["rateints"].dims == ("time", "y", "x")
        assert f["rateints"].shape == (NINTS * NSEG, 32, 256)
        assert f["dq"].dtype == np.uint32 and f["rateints"].dtype == np.float32
        assert f["rateints"].encoding["chunksizes"] == (1, 32, 256)
        assert f["rateints"].encoding["zlib"]
        assert f["group_time"].dims == ("time", "group")
        assert f["read_offset"].dims == ("y", "x")
        time = f["time"].values
        assert f["time"].ndim == 1 and time.dtype == np.float64
        assert np.all(np.diff(time) > 0)
        np.testing.assert_array_equal(f["integration"].values, np.arange(1, NINTS * NSEG + 1))
        assert "bjd_tdb" in f.coords
        assert f["time"].attrs["units"] == "d"
        for name in SERIES:
            assert "units" in f[name].attrs and "long_name" in f[name].attrs
        np.testing.assert_array_equal(f["white_light"].values, ds["white_light"].values)
        assert f.attrs["Conventions"].startswith("CF-")
        assert json.loads(f.attrs["TSOPARS"])["refpix"]["sky_method"] == "roeba"
        assert f.attrs["R_SUPERB"].endswith("_superbias_sim7.fits")
        assert [s["INTSTART"] for s in json.loads(f.attrs["segments"])] == [1, 11, 21]
        # every group is read after the integration starts and before the next one
        gt = f["group_time"].values
        assert np.all(np.diff(gt, axis=1) > 0) and np.all(gt[1:, 0] > gt[:-1, -1])
    assert (path.parent / "jw01366003001_04101_00001_nrs1_readoffsets.fits").is_file()
    assert not list(path.parent.glob(".*.tmp"))


def test_white_light_depth_as_injected(product, exposure):
    """The depth of the white light (in-transit median over out-of-transit median) within 5%
    of the simulator's light curve over the same integrations."""
    _, light_curve = exposure
    _, ds = product
    flux = ds["white_light"].values
    out_of_transit = light_curve == 1.0
    in_transit = light_curve < 1.0 - 0.5 * DEPTH
    assert out_of_transit.sum() >= 10 and in_transit.sum() >= 5
    injected = 1.0 - np.median(light_curve[in_transit])
    measured = 1.0 - np.median(flux[in_transit]) / np.median(flux[out_of_transit])
    assert measured == pytest.approx(injected, rel=0.05)
    # the errors are of the size of the scatter out of transit
    scatter = np.std(flux[out_of_transit] / light_curve[out_of_transit])
    assert 0.3 < np.median(ds["white_light_err"].values) / scatter < 3.0


def test_series_values(product):
    _, ds = product
    # the sky options ran: their series are measured, not NaN
    for name in ("one_over_f_amplitude", "bias_offset", "bias_scale"):
        assert np.all(np.isfinite(ds[name].values)), name
    assert np.all(ds["one_over_f_amplitude"].values > 0)
    # dq_init.flag_first=1 leaves 3 of 4 groups
    assert np.all(ds["n_usable_groups"].values == 3)
    assert np.all(np.abs(ds["trace_centroid"].values) < 0.5)
    assert np.all((ds["trace_width"].values > 0.5) & (ds["trace_width"].values < 2.0))
    assert ds.attrs["dispersion_axis"] == "x"
    assert ds["aperture"].values.sum() > 0
    assert np.all(ds["n_do_not_use"].values >= 0)


def test_order_of_the_inputs_does_not_matter(exposure, product, tmp_path):
    rateints, _ = exposure
    _, ds = build_exposure_product(rateints, tmp_path, write_read_offset_fits=False)
    np.testing.assert_array_equal(ds["white_light"].values, product[1]["white_light"].values)
    np.testing.assert_array_equal(ds["rateints"].values, product[1]["rateints"].values)


def test_segments_from_other_machines_without_side_products(exposure, tmp_path):
    """Segments gathered from several folders; where no side product came along, NaN."""
    rateints, _ = exposure
    copies = []
    for k, path in enumerate(rateints):
        folder = tmp_path / f"machine{k}"
        folder.mkdir()
        copies.append(shutil.copy(path, folder))
    _, ds = build_exposure_product(copies, tmp_path / "out", name="merged")
    assert (tmp_path / "out" / "merged_tso.nc").is_file()
    assert np.all(np.isnan(ds["one_over_f_amplitude"].values))
    assert np.all(np.isnan(ds["bias_scale"].values))


def test_missing_middle_segment(exposure, tmp_path):
    rateints, _ = exposure
    with pytest.raises(InputError, match=r"integrations 11\.\.20 are missing"):
        build_exposure_product([rateints[0], rateints[2]], tmp_path)


def test_missing_last_segment(exposure, tmp_path):
    rateints, _ = exposure
    with pytest.raises(InputError, match=r"integrations 21\.\.30 of NINTS = 30 are missing"):
        build_exposure_product(rateints[:2], tmp_path)


def _edited_copy(path, folder, **cards):
    from astropy.io import fits

    folder.mkdir(exist_ok=True)
    copy = folder / path.name.replace("seg002", "seg002x")
    shutil.copy(path, copy)
    with fits.open(copy, mode="update") as hdul:
        for key, value in cards.items():
            hdul[0].header[key] = value
    return copy


def test_segment_of_another_exposure(exposure, tmp_path):
    rateints, _ = exposure
    foreign = _edited_copy(rateints[1], tmp_path / "other", OBSERVTN="004")
    with pytest.raises(InputError, match="not the segments of one exposure") as err:
        build_exposure_product([rateints[0], foreign, rateints[2]], tmp_path)
    assert foreign.name in str(err.value)


def test_segment_with_another_frame(exposure, tmp_path):
    rateints, _ = exposure
    foreign = _edited_copy(rateints[1], tmp_path / "other", SUBSTRT2=1000)
    with pytest.raises(InputError, match="SUBSTRT2") as err:
        build_exposure_product([rateints[0], foreign, rateints[2]], tmp_path)
    assert foreign.name in str(err.value)


def test_segment_given_twice(exposure, tmp_path):
    rateints, _ = exposure
    again = tmp_path / "again"
    again.mkdir()
    copy = shutil.copy(rateints[1], again)
    with pytest.raises(InputError, match="given twice"):
        build_exposure_product([*rateints, copy], tmp_path)


def test_segment_calibrated_otherwise(exposure, tmp_path):
    rateints, _ = exposure
    other = _edited_copy(rateints[1], tmp_path / "other", R_DARK="/elsewhere/another_dark.fits")
    with pytest.raises(InputError, match="other reference files"):
        build_exposure_product([rateints[0], other, rateints[2]], tmp_path)


def test_require_report_extra_names_what_is_missing(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "h5netcdf":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ConfigError, match=r"h5netcdf.*pip install 'tsogpu\[report\]'"):
        require_report_extra()


# ------------------------------------------------------------------------------------------
# The time series on hand-built arrays


def _trace_cube(nints=8, ny=20, nx=40, centre=9.3, sigma=1.2, depth=0.1, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(ny)[:, None]
    image = 1000.0 * np.exp(-0.5 * ((y - centre) / sigma) ** 2) * np.ones((1, nx)) + 5.0
    lc = np.ones(nints)
    lc[nints // 2 :] = 1.0 - depth
    rate = (image[None] * lc[:, None, None] + rng.normal(0, 0.01, (nints, ny, nx))).astype(
        np.float32
    )
    err = np.full_like(rate, 2.0)
    return rate, err, np.zeros(rate.shape, np.uint32), lc


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nints", [1, 2, 5, 40])
def test_nanmedian_first_axis_is_numpys(nints, dtype):
    """time_series.nanmedian_first_axis gives np.nanmedian(axis=0)'s bits (float32, float64):
    odd and even counts, all-NaN and constant columns, magnitudes from 1e-3 to 1e5."""
    rng = np.random.default_rng(nints)
    for trial in range(10):
        values = rng.normal(0, 10.0 ** rng.uniform(-3, 5), (nints, 6, 200)).astype(dtype)
        values[rng.random(values.shape) < rng.uniform(0, 0.6)] = np.nan
        values[:, 0, 0] = np.nan
        values[:, 0, 1] = 3.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(values, axis=0)
        got = ts.nanmedian_first_axis(values)
        assert got.dtype == want.dtype == dtype
        bits = np.uint32 if dtype == np.float32 else np.uint64
        np.testing.assert_array_equal(got.view(bits), want.view(bits), str(trial))


def test_white_light_is_unbiased_by_a_pixel_bad_in_transit_only():
    rate, err, dqc, lc = _trace_cube()
    dqc[4:, 9, 20] = dq.DO_NOT_USE  # the brightest pixel, bad in every in-transit integration
    rate[4:, 9, 20] = np.nan
    usable = ts.usable_pixels(rate, dqc)
    median = ts.median_image(rate, usable)
    centre, on_trace = ts.trace_center(median)
    assert on_trace.all()
    np.testing.assert_allclose(centre, 9.3, atol=0.1)
    aperture = ts.trace_aperture(centre, rate.shape[1], 4)
    flux, flux_err, _, _ = ts.white_light(rate, err, usable, aperture, median)
    depth = 1.0 - flux[4:].mean() / flux[:4].mean()
    assert depth == pytest.approx(0.1, abs=1e-4)
    # a sum that drops the bad pixel would make a deeper transit
    naive = np.where(usable & aperture, rate, 0).sum(axis=(1, 2))
    assert 1.0 - naive[4:].mean() / naive[:4].mean() > 0.105
    npix = aperture.sum()
    assert flux_err[0] == pytest.approx(2.0 * np.sqrt(npix))


def test_trace_position_follows_a_shift():
    rate, _, dqc, _ = _trace_cube(nints=2, depth=0.0)
    shifted, _, _, _ = _trace_cube(nints=1, centre=9.8, depth=0.0)
    rate = np.concatenate([rate[:1], shifted])
    usable = ts.usable_pixels(rate, np.zeros(rate.shape, np.uint32))
    median = ts.median_image(rate[:1], usable[:1])
    centre, _ = ts.trace_center(median)
    aperture = ts.trace_aperture(centre, rate.shape[1], 5)
    _, _, filled, pixels = ts.white_light(rate, rate, usable, aperture, median)
    centroid, width = ts.trace_position(filled, pixels, centre, rate.shape[1:])
    assert centroid[1] - centroid[0] == pytest.approx(0.5, abs=0.02)
    assert width[0] == pytest.approx(1.2, abs=0.1)
    assert ts.default_half_width(ts.trace_fwhm(median, np.ones(40, bool))) >= 3


def test_background_counts_and_side_series():
    rate, _, dqc, _ = _trace_cube(nints=3, depth=0.0)
    dqc[1, 0, :5] = dq.PIXEL["JUMP_DET"] | dq.PIXEL["SATURATED"]
    dqc[2, 0, 0] = dq.DO_NOT_USE
    assert list(ts.count_flag(dqc, dq.PIXEL["JUMP_DET"])) == [0, 5, 0]
    assert list(ts.count_flag(dqc, dq.DO_NOT_USE)) == [0, 0, 1]
    outside = ~ts.trace_aperture(np.full(40, 9.3), 20, 8)
    sky = ts.background(rate, ts.usable_pixels(rate, dqc), outside)
    np.testing.assert_allclose(sky, 5.0, atol=0.01)
    lines = np.zeros((2, 3, 1, 50), np.float32)
    lines[1, :, 0, ::2] = 2.0  # +-1 DN about the mean in every line
    lines[1, :, 0, 1::2] = 0.0
    np.testing.assert_allclose(ts.one_over_f_amplitude(lines), [0.0, 1.0])
    np.testing.assert_allclose(ts.mean_over_groups(np.array([[1.0, np.nan, 3.0]])), [2.0])


def test_usable_groups_from_the_parameters():
    from types import SimpleNamespace

    from tsogpu.report.segments import SegmentProducts, usable_groups

    def seg(pars):
        header = {"TSOPARS": json.dumps(pars)} if pars is not None else {}
        return SegmentProducts(
            path=None, exposure=SimpleNamespace(ngroups=10), header=header, data=None,
            err=None, dq=None, int_times=None, side={}, side_files=[],
        )  # fmt: skip

    assert usable_groups(seg(None)) == 10
    assert usable_groups(seg({"dq_init": {"flag_first": 2, "flag_groups": [-1]}})) == 7
    assert usable_groups(seg({"dq_init": {"flag_first": 2}, "skip": ["dq_init"]})) == 10
    assert usable_groups(seg({"ramp_fit": {"firstgroup": 1, "lastgroup": 5}})) == 5


def test_dispersion_along_y(exposure):
    """A mode that disperses along y (MIRI LRS) gives the same series as its transpose."""
    from dataclasses import replace

    from tsogpu.report.exposure_product import exposure_dataset
    from tsogpu.report.segments import read_exposure_segments

    rateints, _ = exposure
    _, segments = read_exposure_segments(rateints)
    along_x = exposure_dataset(segments)
    for s in segments:
        s.data, s.err, s.dq = (a.transpose(0, 2, 1).copy() for a in (s.data, s.err, s.dq))
        e = s.exposure
        s.exposure = replace(
            e, subsize1=e.subsize2, subsize2=e.subsize1, substrt1=e.substrt2,
            substrt2=e.substrt1, fastaxis=1, slowaxis=2,
        )  # fmt: skip
    along_y = exposure_dataset(segments, dispersion_axis="y")
    assert along_y.attrs["dispersion_axis"] == "y"
    assert along_y["rateints"].shape == (NINTS * NSEG, 256, 32)
    np.testing.assert_array_equal(along_y["aperture"].values, along_x["aperture"].values.T)
    for name in ("white_light", "trace_centroid", "trace_width", "background"):
        np.testing.assert_allclose(along_y[name].values, along_x[name].values, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"aperture_half_width": 0}, "aperture_half_width"),
        ({"aperture_half_width": "wide"}, "aperture_half_width"),
        ({"dispersion_axis": "z"}, "dispersion_axis"),
        ({"smooth": 0}, "smooth"),
    ],
)
def test_parameters_are_checked(exposure, tmp_path, kwargs, match):
    rateints, _ = exposure
    with pytest.raises(ConfigError, match=match):
        build_exposure_product(rateints, tmp_path, **kwargs)
