"""Reading uncal segments: good files, and every kind of bad file gets a clear InputError."""

import gzip
import hashlib
import logging
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.errors import InputError
from tsogpu.io.uncal import read_uncal
from tsogpu.segment import FILE_COUNTS, ramps_to_float32
from tsogpu.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate("niriss_soss", tmp_path_factory.mktemp("soss"), nints=2, ngroups=3, seed=5)


def _variant(sim, tmp_path, edit):
    """A copy of the simulated uncal with ``edit(hdul)`` applied."""
    out = tmp_path / "variant_uncal.fits"
    with fits.open(sim.uncal) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
        edit(hdul)
        hdul.writeto(out)
    return out


def test_reads_what_astropy_reads(sim):
    seg = read_uncal(sim.uncal)
    raw = fits.getdata(sim.uncal, "SCI")
    assert seg.data.dtype == np.float32 and seg.data.shape == raw.shape
    np.testing.assert_array_equal(seg.data, raw.astype(np.float32))
    assert seg.groupdq.dtype == np.uint8 and seg.groupdq.shape == raw.shape
    assert seg.pixeldq.dtype == np.uint32 and seg.pixeldq.shape == raw.shape[2:]
    h = fits.getheader(sim.uncal)
    e = seg.exposure
    assert (e.nints, e.ngroups, e.nframes, e.detector) == (
        h["NINTS"],
        h["NGROUPS"],
        h["NFRAMES"],
        h["DETECTOR"],
    )
    assert (e.exsegnum, e.intstart, e.intend) == (h["EXSEGNUM"], h["INTSTART"], h["INTEND"])
    assert seg.int_times is not None and len(seg.int_times) >= raw.shape[0]


def test_reading_does_not_modify_the_file(sim):
    before = hashlib.sha256(open(sim.uncal, "rb").read()).hexdigest()
    mtime = os.stat(sim.uncal).st_mtime_ns
    seg = read_uncal(sim.uncal)
    seg.data += 1  # the arrays are ours, not a view of the file
    assert hashlib.sha256(open(sim.uncal, "rb").read()).hexdigest() == before
    assert os.stat(sim.uncal).st_mtime_ns == mtime


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope_uncal\.fits: no such file"):
        read_uncal(tmp_path / "nope_uncal.fits")


def test_not_fits(tmp_path):
    p = tmp_path / "text_uncal.fits"
    p.write_text("this is not FITS\n" * 100)
    with pytest.raises(InputError, match=r"text_uncal\.fits: not a readable FITS file"):
        read_uncal(p)


@pytest.mark.parametrize("raw", [False, True])
def test_truncated(sim, tmp_path, raw):
    p = tmp_path / "short_uncal.fits"
    blob = open(sim.uncal, "rb").read()
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputError, match=r"short_uncal\.fits: .*(truncated|not a readable)"):
        read_uncal(p, raw=raw)


def test_raw_reads_the_file_bytes_into_a_given_buffer(sim, tmp_path, caplog):
    want = read_uncal(sim.uncal).data
    with caplog.at_level(logging.INFO, logger="tsogpu.io.uncal"):
        whole = read_uncal(sim.uncal, raw=True)
    assert "astropy" not in caplog.text  # the fast path: no fallback said
    assert whole.data.dtype == FILE_COUNTS and whole.data.shape == want.shape
    # the bytes as stored: counts - 32768, big-endian
    assert (
        whole.data.tobytes()
        == fits.getdata(sim.uncal, "SCI", do_not_scale_image_data=True).tobytes()
    )
    assert ramps_to_float32(whole.data).tobytes() == want.tobytes()
    buf = np.full(want[1:].nbytes // 2 + 7, 0xFF, np.uint8)  # any C-contiguous buffer
    part = read_uncal(sim.uncal, slice(1, None), raw=True, out=buf)
    assert np.shares_memory(part.data, buf) and part.first_integration == 1
    assert ramps_to_float32(part.data).tobytes() == want[1:].tobytes()
    with pytest.raises(ValueError, match="at least"):
        read_uncal(sim.uncal, raw=True, out=buf)  # too small for both integrations


def _gzip(sim, tmp_path):
    out = tmp_path / "packed_uncal.fits.gz"
    with open(sim.uncal, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _tiles(sim, tmp_path):
    def edit(h):
        h["SCI"] = fits.CompImageHDU(h["SCI"].data, name="SCI")

    return _variant(sim, tmp_path, edit)


@pytest.mark.parametrize(
    "make, why", [(_gzip, "the file is gzip-compressed"), (_tiles, "tile-compressed image")]
)
def test_raw_falls_back_to_astropy_and_says_why(sim, tmp_path, caplog, make, why):
    path = make(sim, tmp_path)
    with caplog.at_level(logging.INFO, logger="tsogpu.io.uncal"):
        seg = read_uncal(path, slice(1, 2), raw=True)
        read_uncal(path, slice(0, 1), raw=True)
    assert seg.data.dtype == np.uint16
    np.testing.assert_array_equal(seg.data, read_uncal(sim.uncal).data[1:2])
    said = [r.getMessage() for r in caplog.records if "SCI read through astropy" in r.message]
    assert len(said) == 1 and str(path) in said[0] and why in said[0]  # once per file


def test_missing_sci(sim, tmp_path):
    p = _variant(sim, tmp_path, lambda h: h.pop(h.index_of("SCI")))
    with pytest.raises(InputError, match=r"variant_uncal\.fits: no SCI extension"):
        read_uncal(p)


def test_wrong_dimensions(sim, tmp_path):
    def edit(h):
        h["SCI"].data = h["SCI"].data[0]

    with pytest.raises(InputError, match=r"SCI has 3 dimensions .* expected 4"):
        read_uncal(_variant(sim, tmp_path, edit))


def test_wrong_dtype(sim, tmp_path):
    def edit(h):
        h["SCI"] = fits.ImageHDU(h["SCI"].data.astype(np.float32), name="SCI")

    with pytest.raises(InputError, match=r"SCI has dtype float32, expected uint16"):
        read_uncal(_variant(sim, tmp_path, edit))


def test_missing_keyword(sim, tmp_path):
    def edit(h):
        del h[0].header["NGROUPS"]
        del h[0].header["TGROUP"]

    with pytest.raises(InputError, match=r"missing keyword\(s\) NGROUPS, TGROUP"):
        read_uncal(_variant(sim, tmp_path, edit))


def test_bad_keyword_value(sim, tmp_path):
    def edit(h):
        h[0].header["NFRAMES"] = "four"

    with pytest.raises(InputError, match=r"keyword NFRAMES should be int, got 'four'"):
        read_uncal(_variant(sim, tmp_path, edit))


def test_groups_disagree_with_header(sim, tmp_path):
    def edit(h):
        h[0].header["NGROUPS"] = h[0].header["NGROUPS"] + 1

    with pytest.raises(InputError, match=r"SCI has 3 groups but NGROUPS = 4"):
        read_uncal(_variant(sim, tmp_path, edit))


def test_segment_keywords_disagree(sim, tmp_path):
    def edit(h):
        h[0].header["INTEND"] = h[0].header["INTSTART"] + 5
        h[0].header["NINTS"] = h[0].header["INTEND"]  # INTEND <= NINTS, checked first

    with pytest.raises(InputError, match=r"INTSTART=.*INTEND=.* imply 6"):
        read_uncal(_variant(sim, tmp_path, edit))
