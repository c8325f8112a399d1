"""Product writers: jwst layout, INT_TIMES carried over, provenance, atomic writes."""

import os

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.io import products
from tsogpu.io.products import Provenance, product_name, write_rate, write_rateints
from tsogpu.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate("niriss_soss", tmp_path_factory.mktemp("soss"), nints=3, ngroups=3, seed=9)


def _arrays(shape, seed=0):
    rng = np.random.default_rng(seed)
    sci = rng.normal(10, 1, shape).astype(np.float32)
    var_p = rng.uniform(0.1, 1, shape).astype(np.float32)
    var_r = rng.uniform(0.1, 1, shape).astype(np.float32)
    err = np.sqrt(var_p + var_r).astype(np.float32)
    dq = rng.integers(0, 4, shape).astype(np.uint32)
    return sci, err, dq, var_p, var_r


PROV = Provenance(
    version="0.1.0",
    backend="numpy",
    params={"saturation": {"n_pix_grow_sat": 1}},
    refs={"mask": "mask.fits"},
    step_status={"saturation": "COMPLETE"},
)


def test_product_name():
    assert (
        product_name("/a/jw01_seg001_nrs1_uncal.fits", "rateints")
        == "jw01_seg001_nrs1_rateints.fits"
    )
    assert product_name("x.fits", "ramp") == "x_ramp.fits"


def test_rateints_and_rate_open_in_jwst(sim, tmp_path):
    datamodels = pytest.importorskip("jwst.datamodels")
    nints, _, ny, nx = fits.getdata(sim.uncal, "SCI").shape
    path = write_rateints(
        tmp_path / product_name(sim.uncal, "rateints"), sim.uncal, *_arrays((nints, ny, nx)), PROV
    )
    with datamodels.open(path) as model:
        assert type(model).__name__ == "CubeModel"
        model.validate()
        assert model.data.dtype.newbyteorder("=") == np.float32
        assert model.dq.dtype.newbyteorder("=") == np.uint32
        assert model.meta.bunit_data == "DN/s"
        assert model.meta.cal_step.saturation == "COMPLETE"
        assert model.meta.ref_file.mask.name == "mask.fits"
        assert model.meta.exposure.segment_number == fits.getheader(sim.uncal)["EXSEGNUM"]
        np.testing.assert_array_equal(
            np.asarray(model.int_times["int_mid_MJD_UTC"]),
            fits.getdata(sim.uncal, "INT_TIMES")["int_mid_MJD_UTC"],
        )
    assert fits.getheader(path)["TSOVER"] == "0.1.0"
    # readable as any new file would be (the umask's bits), not mkstemp's owner-only 0600
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    path = write_rate(
        tmp_path / product_name(sim.uncal, "rate"), sim.uncal, *_arrays((ny, nx)), PROV
    )
    with datamodels.open(path) as model:
        assert type(model).__name__ == "ImageModel"
        model.validate()


def test_failed_write_leaves_nothing(sim, tmp_path, monkeypatch):
    """Fault injection: the disk fails after the bytes were written, before the rename."""
    nints, _, ny, nx = fits.getdata(sim.uncal, "SCI").shape

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(products.os, "fsync", failing_fsync)
    final = tmp_path / "x_rateints.fits"
    with pytest.raises(OSError, match="No space left"):
        write_rateints(final, sim.uncal, *_arrays((nints, ny, nx)), PROV)
    assert list(tmp_path.iterdir()) == []


def test_existing_product_survives_a_failed_rewrite(sim, tmp_path, monkeypatch):
    nints, _, ny, nx = fits.getdata(sim.uncal, "SCI").shape
    final = write_rateints(tmp_path / "x_rateints.fits", sim.uncal, *_arrays((nints, ny, nx)), PROV)
    good = final.read_bytes()
    monkeypatch.setattr(products.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError, match="boom"):
        write_rateints(final, sim.uncal, *_arrays((nints, ny, nx), seed=1), PROV)
    assert final.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["x_rateints.fits"]


@pytest.mark.jwst
def test_rateints_accepted_by_spec2_steps(sim, tmp_path):
    """calwebb_spec2 steps that need no reference files run on our rateints.

    The whole Spec2Pipeline needs assign_wcs, whose instrument-model references (distortion,
    specwcs, ...) cannot be simulated; srctype and pixel_replace exercise the product layout.
    """
    pytest.importorskip("jwst")
    from jwst.pixel_replace import PixelReplaceStep
    from jwst.srctype import SourceTypeStep

    nints, _, ny, nx = fits.getdata(sim.uncal, "SCI").shape
    sci, err, dq, var_p, var_r = _arrays((nints, ny, nx))
    dq[0, 5, 5] = 1  # a DO_NOT_USE pixel for pixel_replace to fill
    path = write_rateints(
        tmp_path / product_name(sim.uncal, "rateints"), sim.uncal, sci, err, dq, var_p, var_r, PROV
    )
    result = SourceTypeStep.call(str(path))
    assert type(result).__name__ == "CubeModel"
    assert result.meta.cal_step.srctype == "COMPLETE"
    assert result.meta.target.source_type == "POINT"  # a TSO is a point source
    result = PixelReplaceStep.call(result)
    assert result.meta.cal_step.pixel_replace == "COMPLETE"
    assert result.data.shape == (nints, ny, nx)


def test_writing_does_not_read_the_uncal_pixels(tmp_path):
    """The products take the uncal's metadata only: its SCI would double a large run's memory."""
    import tracemalloc

    sim = simulate("nrs_bots", tmp_path / "in", nints=40, ngroups=10, seed=2)
    nints, _, ny, nx = fits.getdata(sim.uncal, "SCI").shape
    sci_bytes = nints * 10 * ny * nx * 2
    arrays = _arrays((nints, ny, nx))
    tracemalloc.start()
    try:
        write_rateints(tmp_path / "x_rateints.fits", sim.uncal, *arrays, PROV)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.8 * sci_bytes, f"{peak / 2**20:.0f} MiB traced while writing"
