"""Per-pixel read times (tsogpu.report.read_times): hand-built subarrays worked out by hand,
the frame time the simulator gives, and the lines the simulator injects 1/f noise along."""

from dataclasses import replace

import numpy as np
import pytest

from tsogpu.errors import InputError
from tsogpu.report.read_times import (
    group_read_times,
    line_time,
    pixel_read_offsets,
    write_read_offsets,
)
from tsogpu.segment import Exposure
from tsogpu.simulate import LINE_OVERHEAD, MODES, PIXEL_TIME
from tsogpu.simulate.modes import subarray_geometry

US = PIXEL_TIME  # 10 us


def exposure(**kw):
    """A small NIRCam-like subarray at the detector's corner (no flips), 1 output."""
    base = dict(
        instrument="NIRCAM", detector="NRCALONG", exp_type="NRC_TSGRISM", readpatt="RAPID",
        nints=3, ngroups=4, nframes=1, groupgap=0, tframe=1.0, tgroup=1.0, subarray="GENERIC",
        substrt1=1, substrt2=1, subsize1=3, subsize2=2, fastaxis=1, slowaxis=2, noutputs=1,
    )  # fmt: skip
    base.update(kw)
    return Exposure(**base)


def test_one_output_fast_along_x():
    # lines are DMS rows (|FASTAXIS| = 1), read along +x; a line lasts 3 pixels + 12 overhead
    got = pixel_read_offsets(exposure())
    line = (3 + LINE_OVERHEAD) * US
    want = np.array([[0, 1, 2], [0, 1, 2]]) * US + np.array([[0], [1]]) * line
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    assert got.dtype == np.float64 and got.shape == (2, 3)


def test_negative_fastaxis_reads_from_the_other_end():
    got = pixel_read_offsets(exposure(fastaxis=-1))
    line = (3 + LINE_OVERHEAD) * US
    want = np.array([[2, 1, 0], [2, 1, 0]]) * US + np.array([[0], [1]]) * line
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_negative_slowaxis_reads_the_last_row_first():
    got = pixel_read_offsets(exposure(slowaxis=-2))
    line = (3 + LINE_OVERHEAD) * US
    want = np.array([[0, 1, 2], [0, 1, 2]]) * US + np.array([[1], [0]]) * line
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_fastaxis_2_makes_columns_the_lines():
    # NIRSpec: FASTAXIS = 2, SLOWAXIS = 1: each DMS column is a line, read along +y
    got = pixel_read_offsets(exposure(fastaxis=2, slowaxis=1))
    line = (2 + LINE_OVERHEAD) * US
    want = np.array([[0], [1]]) * US + np.array([[0, 1, 2]]) * line
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_four_outputs_read_their_stripes_together():
    one = pixel_read_offsets(exposure(subsize1=2048, noutputs=1))
    four = pixel_read_offsets(exposure(subsize1=2048, noutputs=4))
    # each output reads 512 columns: the pixel at x and x + 512 are read at the same time
    np.testing.assert_array_equal(four[:, :512], four[:, 512:1024])
    np.testing.assert_array_equal(four[:, :512], four[:, 1536:])
    assert four[1, 0] == pytest.approx((512 + LINE_OVERHEAD) * US)
    assert one[1, 0] == pytest.approx((2048 + LINE_OVERHEAD) * US)
    np.testing.assert_array_equal(four[0, :512], one[0, :512])
    # with FASTAXIS = -1 each stripe is read from its high-x end
    flipped = pixel_read_offsets(exposure(subsize1=2048, noutputs=4, fastaxis=-1))
    np.testing.assert_array_equal(flipped[:, 511::-1], four[:, :512])


def test_bad_axes_and_outputs_are_errors():
    with pytest.raises(InputError, match="NOUTPUTS"):
        pixel_read_offsets(exposure(noutputs=2))
    with pytest.raises(InputError, match="same axis"):
        pixel_read_offsets(exposure(fastaxis=1, slowaxis=-1))


def _mode_exposure(mode_name, nrows=None, ncols=None):
    m = MODES[mode_name]
    geo = subarray_geometry(m, nrows, ncols, None)
    e = exposure(
        substrt1=geo.substrt1, substrt2=geo.substrt2, subsize1=geo.nx, subsize2=geo.ny,
        fastaxis=m.fastaxis, slowaxis=m.slowaxis, noutputs=geo.noutputs, tframe=geo.tframe,
    )  # fmt: skip
    return m, geo, e


@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_lines_and_frame_time_as_the_simulator(mode_name):
    """The simulator samples 1/f once per (output, line) and its TFRAME is the lines plus
    ``row_pad`` more: the offsets put each pixel on the simulator's line, in its order."""
    m, geo, e = _mode_exposure(mode_name)
    offsets = pixel_read_offsets(e)
    t_line = line_time(e)
    np.testing.assert_array_equal(np.floor(offsets / t_line + 1e-6).astype(int), geo.line)
    assert geo.tframe == pytest.approx(t_line * (geo.nlines + m.row_pad), abs=1e-5)
    assert offsets.max() < t_line * geo.nlines <= geo.tframe


def test_one_over_f_is_constant_along_each_read_line(tmp_path):
    """Against the simulator's injection: pixels read in the same line by the same output
    share the injected 1/f sample, and consecutive lines do not."""
    from tsogpu.simulate import simulate

    sim = simulate(
        "nircam_grism", tmp_path, nints=1, ngroups=2, nrows=6, one_over_f=True,
        cosmic_rays=False, full_frame_refs=False, n_saturating=0,
    )  # fmt: skip
    truth = np.load(sim.truth)["one_over_f"][0, 0]  # (ny, nx), DN
    _, geo, e = _mode_exposure("nircam_grism", nrows=6)
    offsets = pixel_read_offsets(e)
    t_line = line_time(e)
    line = np.floor(offsets / t_line + 1e-6).astype(int)
    assert e.noutputs == 4
    for amp in range(4):
        cols = slice(512 * amp, 512 * (amp + 1))
        for k in np.unique(line):
            values = truth[:, cols][line[:, cols] == k]
            assert np.all(values == values[0])
        per_line = [truth[:, cols][line[:, cols] == k][0] for k in np.unique(line)]
        assert len(set(np.round(per_line, 4))) == len(per_line)
    # within a line (where the simulator's 1/f is constant) the read runs along the fast
    # direction, -x for NIRCam (FASTAXIS = -1): each output starts at its stripe's high-x end
    assert offsets[0, 2047] == 0 and offsets[0, 0] == pytest.approx(511 * US)


def test_group_times():
    e = exposure(nframes=2, groupgap=1, tframe=0.5, tgroup=1.5)
    start = np.array([60000.0, 60000.1])
    got = group_read_times(e, start)
    assert got.shape == (2, 4) and got.dtype == np.float64
    # group g's frames start at g * TGROUP and g * TGROUP + TFRAME: mean g * 1.5 + 0.25 s
    want = start[:, None] + (np.arange(4) * 1.5 + 0.25)[None, :] / 86400.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_fits_image(tmp_path):
    from astropy.io import fits

    e = replace(exposure(), fastaxis=-1)
    path = write_read_offsets(tmp_path / "x_readoffsets.fits", e)
    with fits.open(path) as hdul:
        assert len(hdul) == 1
        np.testing.assert_array_equal(hdul[0].data, pixel_read_offsets(e))
        h = hdul[0].header
        assert h["BUNIT"] == "s" and h["FASTAXIS"] == -1 and h["NOUTPUTS"] == 1
        assert h["PIXTIME"] == PIXEL_TIME and h["LINEOVH"] == LINE_OVERHEAD
        assert h["LINETIME"] == pytest.approx((3 + LINE_OVERHEAD) * US)
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_modules_import_without_the_extra():
    """tsogpu.report and its modules import xarray, h5netcdf and matplotlib only when a
    product is built, and the array modules no astropy: the core works without the extra."""
    import subprocess
    import sys

    code = (
        "import sys, tsogpu.report, tsogpu.report.read_times, tsogpu.report.time_series;"
        "import tsogpu.report.exposure_product;"
        "bad = [m for m in ('xarray', 'h5netcdf', 'h5py', 'matplotlib', 'astropy') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
