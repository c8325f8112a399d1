"""Reference-file loading: cut-outs, DQ_DEF remapping, defaults, errors, overrides and CRDS.

Small FITS files are written with astropy in tmp_path; the jwst-marked tests open the same
files with stdatamodels models and cut them with jwst.lib.reffile_utils as the oracle.
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.errors import ReferenceFileError
from tsogpu.io import crds_lookup
from tsogpu.io.reffiles import load_reference, load_references, resolve_references
from tsogpu.segment import Exposure

# Science subarray: 1-based corner (9, 17), 12 columns x 8 rows.
SCI_GEOMETRY = dict(substrt1=9, substrt2=17, subsize1=12, subsize2=8)


def make_exposure(**changes):
    fields = dict(
        instrument="NIRCAM",
        detector="NRCA1",
        exp_type="NRC_TSIMAGE",
        readpatt="RAPID",
        nints=3,
        ngroups=4,
        nframes=1,
        groupgap=0,
        tframe=0.5,
        tgroup=0.5,
        subarray="SUBTEST",
        fastaxis=-1,
        slowaxis=2,
        noutputs=1,
        **SCI_GEOMETRY,
    )
    fields.update(changes)
    return Exposure(**fields)


def dq_def_hdu(rows):
    """DQ_DEF table from (bit, value, name) rows; VALUE as int32 like many CRDS files."""
    bits, values, names = zip(*rows, strict=True)
    values = np.array(values, dtype=np.int64).astype(np.uint32).view(np.int32)
    return fits.BinTableHDU.from_columns(
        [
            fits.Column(name="BIT", format="J", array=np.array(bits, dtype=np.int32)),
            fits.Column(name="VALUE", format="J", array=values),
            fits.Column(name="NAME", format="40A", array=np.array(names)),
            fits.Column(name="DESCRIPTION", format="80A", array=np.array(["x"] * len(rows))),
        ],
        name="DQ_DEF",
    )


# Non-standard bit layout: file bit 0 -> DO_NOT_USE, 1 -> DEAD, 2 -> HOT, 3 -> unknown name
# (ignored), 4 -> NO_SAT_CHECK, 5 -> GOOD (no bit), 31 -> REFERENCE_PIXEL (negative int32).
DQ_DEF_ROWS = [
    (0, 1, "DO_NOT_USE"),
    (1, 2, "DEAD"),
    (2, 4, "HOT"),
    (3, 8, "NOT_A_FLAG"),
    (4, 16, "NO_SAT_CHECK"),
    (5, 32, "GOOD"),
    (31, 1 << 31, "REFERENCE_PIXEL"),
]


def write_ref(path, reftype, extensions, *, geometry=None, dq_def=None, **keywords):
    """Write a reference file; ``geometry`` = (substrt1, substrt2, subsize1, subsize2) or None."""
    primary = fits.PrimaryHDU()
    hdr = primary.header
    hdr["TELESCOP"] = "JWST"
    hdr["INSTRUME"] = "NIRCAM"
    hdr["DETECTOR"] = "NRCA1"
    hdr["REFTYPE"] = reftype.upper()
    hdr["USEAFTER"] = "2022-01-01T00:00:00"
    hdr["SUBARRAY"] = "GENERIC"
    if geometry is not None:
        for key, value in zip(
            ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2"), geometry, strict=True
        ):
            hdr[key] = value
    for key, value in keywords.items():
        if value is None:
            hdr.remove(key, ignore_missing=True)
        else:
            hdr[key] = value
    hdus = [primary] + [fits.ImageHDU(arr, name=name) for name, arr in extensions.items()]
    if dq_def is not None:
        hdus.append(dq_def_hdu(dq_def))
    fits.HDUList(hdus).writeto(path)
    return str(path)


def random_dq(rng, shape):
    bits = np.array([0, 1, 2, 4, 8, 16, 32, 1 << 31, 3, 1 << 31 | 5], dtype=np.uint32)
    return rng.choice(bits, size=shape).astype(np.uint32)


def reference_files(tmp_path, rng, geometry, shape):
    """One file of each cuttable type with geometry ``geometry`` and arrays of ``shape``."""
    ny, nx = shape
    f32 = np.float32
    files = {}
    files["mask"] = write_ref(
        tmp_path / "mask.fits",
        "mask",
        {"DQ": random_dq(rng, shape)},
        geometry=geometry,
        dq_def=DQ_DEF_ROWS,
    )
    files["saturation"] = write_ref(
        tmp_path / "sat.fits",
        "saturation",
        {"SCI": rng.uniform(3e4, 6e4, shape).astype(f32), "DQ": random_dq(rng, shape)},
        geometry=geometry,
        dq_def=DQ_DEF_ROWS,
    )
    files["superbias"] = write_ref(
        tmp_path / "bias.fits",
        "superbias",
        {
            "SCI": rng.normal(1e4, 50, shape).astype(">f4"),
            "ERR": rng.uniform(1, 2, shape).astype(f32),
            "DQ": random_dq(rng, shape).view(np.int32),
        },
        geometry=geometry,
        dq_def=DQ_DEF_ROWS,
    )
    files["linearity"] = write_ref(
        tmp_path / "lin.fits",
        "linearity",
        {
            "COEFFS": rng.normal(size=(5, ny, nx)).astype(f32),
            "INV_COEFFS": rng.normal(size=(5, ny, nx)).astype(np.float64),
            "DQ": random_dq(rng, shape),
        },
        geometry=geometry,
        dq_def=DQ_DEF_ROWS,
    )
    files["gain"] = write_ref(
        tmp_path / "gain.fits",
        "gain",
        {"SCI": rng.uniform(1.5, 2.5, shape).astype(f32)},
        geometry=geometry,
        GAINFACT=1.5,
    )
    files["readnoise"] = write_ref(
        tmp_path / "rn.fits",
        "readnoise",
        {"SCI": rng.uniform(5, 15, shape).astype(f32)},
        geometry=geometry,
    )
    return files


def file_state(path):
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return digest, os.stat(path).st_mtime_ns


# ---------------------------------------------------------------------------------------------
# Cut-outs, hand-computed


def test_subarray_reference_is_cut_to_science_subarray(tmp_path):
    rng = np.random.default_rng(1)
    # Reference corner (5, 11), 30 x 20: science (9, 17) starts at x0 = 4, y0 = 6.
    files = reference_files(tmp_path, rng, (5, 11, 30, 20), (20, 30))
    exposure = make_exposure()
    sat = load_reference("saturation", files["saturation"], exposure)
    raw = fits.getdata(files["saturation"], "SCI")
    np.testing.assert_array_equal(sat.arrays["data"], raw[6:14, 4:16])
    assert sat.arrays["data"].dtype == np.float32
    assert sat.arrays["dq"].shape == (8, 12) and sat.arrays["dq"].dtype == np.uint32

    lin = load_reference("linearity", files["linearity"], exposure)
    assert lin.arrays["coeffs"].shape == (5, 8, 12)
    np.testing.assert_array_equal(
        lin.arrays["inv_coeffs"],
        fits.getdata(files["linearity"], "INV_COEFFS")[:, 6:14, 4:16].astype(np.float32),
    )
    assert lin.arrays["inv_coeffs"].dtype == np.float32
    assert sat.name == files["saturation"] and sat.path == files["saturation"]


def test_matching_reference_is_used_whole(tmp_path):
    rng = np.random.default_rng(2)
    files = reference_files(tmp_path, rng, (9, 17, 12, 8), (8, 12))
    gain = load_reference("gain", files["gain"], make_exposure())
    np.testing.assert_array_equal(gain.arrays["data"], fits.getdata(files["gain"], "SCI"))
    assert gain.header["GAINFACT"] == 1.5
    assert gain.header["DETECTOR"] == "NRCA1"


def test_full_frame_without_subarray_keywords(tmp_path):
    mask = np.zeros((2048, 2048), dtype=np.uint32)
    mask[16, 8] = 1  # science pixel (0, 0): 1-based (9, 17)
    mask[23, 19] = 2  # science pixel (7, 11), the last one
    mask[15, 8] = 1  # just outside
    path = write_ref(tmp_path / "ff.fits", "mask", {"DQ": mask}, dq_def=DQ_DEF_ROWS)
    ref = load_reference("mask", path, make_exposure())
    expected = np.zeros((8, 12), dtype=np.uint32)
    expected[0, 0] = dq.DO_NOT_USE
    expected[7, 11] = dq.PIXEL["DEAD"]
    np.testing.assert_array_equal(ref.arrays["dq"], expected)


def test_missing_arrays_get_model_defaults(tmp_path):
    shape = (8, 12)
    sat = write_ref(
        tmp_path / "s.fits",
        "saturation",
        {"SCI": np.ones(shape, np.float32)},
        geometry=(9, 17, 12, 8),
    )
    bias = write_ref(
        tmp_path / "b.fits",
        "superbias",
        {"SCI": np.ones(shape, np.float32)},
        geometry=(9, 17, 12, 8),
    )
    lin = write_ref(
        tmp_path / "l.fits",
        "linearity",
        {"COEFFS": np.ones((3, 20, 30), np.float32)},
        geometry=(5, 11, 30, 20),
    )
    exposure = make_exposure()
    s = load_reference("saturation", sat, exposure).arrays
    b = load_reference("superbias", bias, exposure).arrays
    lin_arrays = load_reference("linearity", lin, exposure).arrays
    for arrays, key, dtype in ((s, "dq", np.uint32), (b, "dq", np.uint32), (b, "err", np.float32)):
        assert arrays[key].dtype == dtype and arrays[key].shape == shape
        assert not arrays[key].any()
    assert "inv_coeffs" not in lin_arrays
    assert lin_arrays["dq"].shape == shape and not lin_arrays["dq"].any()


def test_dark_read_whole_with_keywords(tmp_path):
    rng = np.random.default_rng(3)
    sci = rng.normal(size=(6, 8, 12)).astype(np.float32)
    dark_dq = random_dq(rng, (8, 12))
    avg = rng.uniform(0, 0.1, (8, 12)).astype(np.float32)
    path = write_ref(
        tmp_path / "dark.fits",
        "dark",
        {"SCI": sci, "DQ": dark_dq, "ERR": sci * 0.1, "AVDRKCUR": avg},
        geometry=(9, 17, 12, 8),
        dq_def=DQ_DEF_ROWS,
        NFRAMES=1,
        GROUPGAP=0,
        NGROUPS=6,
        AVDRKCUR=0.05,
    )
    ref = load_reference("dark", path, make_exposure())
    np.testing.assert_array_equal(ref.arrays["data"], sci)
    np.testing.assert_array_equal(ref.arrays["average_dark_current"], avg)
    np.testing.assert_array_equal(ref.arrays["dq"], dq.remap(dark_dq, _rows()))
    assert ref.arrays["err"].shape == (6, 8, 12)
    assert ref.header["NFRAMES"] == 1 and ref.header["GROUPGAP"] == 0
    assert ref.header["NGROUPS"] == 6 and ref.header["AVDRKCUR"] == 0.05

    bare = write_ref(
        tmp_path / "dark2.fits", "dark", {"SCI": sci}, NFRAMES=4, GROUPGAP=1, SUBARRAY="SUBTEST"
    )
    ref = load_reference("dark", bare, make_exposure())
    assert set(ref.arrays) == {"data", "dq"}
    assert ref.arrays["dq"].dtype == np.uint32 and not ref.arrays["dq"].any()
    assert "AVDRKCUR" not in ref.header


def _rows():
    return [(value, name) for _bit, value, name in DQ_DEF_ROWS]


def test_dq_def_remapping_hand_cases(tmp_path):
    raw = np.array([[0, 1, 2, 4], [8, 16, 32, 1 << 31], [3, 1 << 31 | 5, 63, 0]], dtype=np.uint32)
    expected = np.array(
        [
            [0, dq.DO_NOT_USE, dq.PIXEL["DEAD"], dq.PIXEL["HOT"]],
            [0, dq.NO_SAT_CHECK, 0, dq.REFERENCE_PIXEL],
            [
                dq.DO_NOT_USE | dq.PIXEL["DEAD"],
                dq.REFERENCE_PIXEL | dq.DO_NOT_USE | dq.PIXEL["HOT"],
                dq.DO_NOT_USE | dq.PIXEL["DEAD"] | dq.PIXEL["HOT"] | dq.NO_SAT_CHECK,
                0,
            ],
        ],
        dtype=np.uint32,
    )
    exposure = make_exposure(substrt1=1, substrt2=1, subsize1=4, subsize2=3)
    path = write_ref(
        tmp_path / "m.fits", "mask", {"DQ": raw}, geometry=(1, 1, 4, 3), dq_def=DQ_DEF_ROWS
    )
    np.testing.assert_array_equal(load_reference("mask", path, exposure).arrays["dq"], expected)
    # Without a DQ_DEF table the DQ is taken as it is (dynamic_mask leaves it alone).
    path = write_ref(tmp_path / "m2.fits", "mask", {"DQ": raw}, geometry=(1, 1, 4, 3))
    np.testing.assert_array_equal(load_reference("mask", path, exposure).arrays["dq"], raw)


# ---------------------------------------------------------------------------------------------
# jwst / stdatamodels as the oracle

MODELS = {
    "mask": "MaskModel",
    "saturation": "SaturationModel",
    "superbias": "SuperBiasModel",
    "linearity": "LinearityModel",
    "gain": "GainModel",
    "readnoise": "ReadnoiseModel",
}


def jwst_reference_arrays(reftype, path, exposure):
    """What a jwst step gets: the model's arrays, cut with reffile_utils when needed."""
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    reffile_utils = pytest.importorskip("jwst.lib.reffile_utils")
    sci = datamodels.RampModel(
        data=np.zeros((1, 1, exposure.subsize2, exposure.subsize1), dtype=np.float32)
    )
    sci.meta.instrument.name = exposure.instrument
    sci.meta.subarray.xstart = exposure.substrt1
    sci.meta.subarray.ystart = exposure.substrt2
    sci.meta.subarray.xsize = exposure.subsize1
    sci.meta.subarray.ysize = exposure.subsize2
    model = getattr(datamodels, MODELS[reftype])(path)
    if not reffile_utils.ref_matches_sci(sci, model):
        model = reffile_utils.get_subarray_model(sci, model)
    return {key: getattr(model, key) for key in ARRAY_KEYS[reftype] if model.hasattr(key)}


ARRAY_KEYS = {
    "mask": ("dq",),
    "saturation": ("data", "dq"),
    "superbias": ("data", "err", "dq"),
    "linearity": ("coeffs", "inv_coeffs", "dq"),
    "gain": ("data",),
    "readnoise": ("data",),
}


def assert_same(ours, expected, what):
    """Equal values and dtype up to byte order (stdatamodels keeps FITS big-endian arrays)."""
    assert ours.dtype == expected.dtype.newbyteorder("="), what
    np.testing.assert_array_equal(ours, expected, err_msg=what)


@pytest.mark.jwst
@pytest.mark.parametrize(
    "geometry, shape",
    [((5, 11, 30, 20), (20, 30)), ((9, 17, 12, 8), (8, 12)), ((9, 17, 99, 99), (8, 12))],
    ids=["cut", "match", "subsize-disagrees-with-array"],
)
def test_arrays_equal_jwst(tmp_path, geometry, shape):
    rng = np.random.default_rng(4)
    files = reference_files(tmp_path, rng, geometry, shape)
    exposure = make_exposure()
    for reftype, path in files.items():
        ours = load_reference(reftype, path, exposure).arrays
        theirs = jwst_reference_arrays(reftype, path, exposure)
        assert set(ours) == set(theirs), reftype
        for key, expected in theirs.items():
            assert_same(ours[key], expected, f"{reftype} {key}")


@pytest.mark.jwst
def test_full_frame_without_keywords_equals_jwst(tmp_path):
    # A saturation file: jwst's ref_matches_sci reads ``ref_model.data`` for the full-frame
    # test, which a MaskModel lacks (AttributeError in jwst 3.0); tsogpu uses the DQ shape.
    rng = np.random.default_rng(5)
    full = (2048, 2048)
    path = write_ref(
        tmp_path / "ff.fits",
        "saturation",
        {"SCI": rng.uniform(size=full).astype(np.float32), "DQ": random_dq(rng, full)},
        dq_def=DQ_DEF_ROWS,
    )
    exposure = make_exposure(substrt1=2001, substrt2=1, subsize1=48, subsize2=16)
    ours = load_reference("saturation", path, exposure).arrays
    theirs = jwst_reference_arrays("saturation", path, exposure)
    for key in ("data", "dq"):
        assert_same(ours[key], theirs[key], f"saturation {key}")


@pytest.mark.jwst
def test_dq_def_remap_equals_stdatamodels(tmp_path):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    rng = np.random.default_rng(6)
    raw = rng.integers(0, 2**32, size=(8, 12), dtype=np.uint64).astype(np.uint32)
    rows = DQ_DEF_ROWS + [(6, 64, "hot"), (7, 128, " WARM "), (8, 3, "LOW_QE"), (9, 0, "RC")]
    path = write_ref(tmp_path / "m.fits", "mask", {"DQ": raw}, geometry=(9, 17, 12, 8), dq_def=rows)
    ours = load_reference("mask", path, make_exposure()).arrays["dq"]
    theirs = datamodels.MaskModel(path).dq
    assert_same(ours, theirs, "mask dq")


@pytest.mark.jwst
def test_dark_equals_jwst_dark_model(tmp_path):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    rng = np.random.default_rng(7)
    path = write_ref(
        tmp_path / "dark.fits",
        "dark",
        {
            "SCI": rng.normal(size=(5, 8, 12)).astype(">f8"),
            "DQ": random_dq(rng, (8, 12)),
            "AVDRKCUR": rng.uniform(size=(8, 12)).astype(np.float32),
        },
        geometry=(9, 17, 12, 8),
        dq_def=DQ_DEF_ROWS,
        NFRAMES=2,
        GROUPGAP=1,
        AVDRKCUR=0.01,
    )
    ref = load_reference("dark", path, make_exposure())
    model = datamodels.DarkModel(path)
    for key in ("data", "dq", "average_dark_current"):
        assert_same(ref.arrays[key], getattr(model, key), f"dark {key}")
    assert ref.header["NFRAMES"] == model.meta.exposure.nframes
    assert ref.header["GROUPGAP"] == model.meta.exposure.groupgap
    assert ref.header["AVDRKCUR"] == model.meta.exposure.average_dark_current


@pytest.mark.jwst
def test_out_of_bounds_is_an_error_in_jwst_too(tmp_path):
    reffile_utils = pytest.importorskip("jwst.lib.reffile_utils")
    rng = np.random.default_rng(8)
    files = reference_files(tmp_path, rng, (10, 17, 30, 20), (20, 30))  # x0 = -1
    with pytest.raises(ValueError, match="slice"):
        jwst_reference_arrays("gain", files["gain"], make_exposure())
    assert reffile_utils  # the oracle above needs jwst
    with pytest.raises(ReferenceFileError, match="not contained"):
        load_reference("gain", files["gain"], make_exposure())


@pytest.mark.jwst
def test_crds_parameters_equal_jwst(tmp_path):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    model = datamodels.RampModel(data=np.zeros((1, 2, 8, 12), dtype=np.float32))
    meta = model.meta
    meta.instrument.name, meta.instrument.detector = "NIRCAM", "NRCA1"
    meta.instrument.filter, meta.instrument.pupil = "F210M", "CLEAR"
    meta.exposure.type, meta.exposure.readpatt = "NRC_TSIMAGE", "RAPID"
    meta.exposure.nints, meta.exposure.ngroups, meta.exposure.nframes = 1, 2, 1
    meta.exposure.groupgap = 0
    meta.subarray.name = "SUBGRISM64"
    meta.subarray.xstart, meta.subarray.ystart = 9, 17
    meta.subarray.xsize, meta.subarray.ysize = 12, 8
    meta.subarray.fastaxis, meta.subarray.slowaxis = -1, 2
    meta.observation.date, meta.observation.time = "2023-01-01", "00:00:00"
    meta.visit.tsovisit = True
    path = str(tmp_path / "x_uncal.fits")
    model.save(path)
    header = dict(fits.getheader(path))
    ours = crds_lookup.crds_parameters(make_exposure(), header)
    theirs = datamodels.RampModel(path).get_crds_parameters()
    for key in (
        "meta.instrument.name",
        "meta.instrument.detector",
        "meta.instrument.filter",
        "meta.instrument.pupil",
        "meta.exposure.type",
        "meta.exposure.readpatt",
        "meta.subarray.name",
        "meta.subarray.xstart",
        "meta.observation.date",
        "meta.visit.tsovisit",
    ):
        assert ours[key] == theirs[key], key
    common = set(ours) & set(theirs)
    assert len(common) >= 20, sorted(common)
    assert {k: ours[k] for k in common} == {k: theirs[k] for k in common}


# ---------------------------------------------------------------------------------------------
# Errors: each names the type, the file and the problem


def _error(reftype, path, exposure=None):
    with pytest.raises(ReferenceFileError) as info:
        load_reference(reftype, path, exposure or make_exposure())
    message = str(info.value)
    assert reftype in message and str(path) in message, message
    return message


def test_error_file_missing(tmp_path):
    message = _error("gain", str(tmp_path / "nope.fits"))
    assert "not found" in message and "--ref gain=" in message


def test_error_not_fits(tmp_path):
    path = tmp_path / "junk.fits"
    path.write_bytes(b"this is not a FITS file" * 200)
    assert "not a readable FITS file" in _error("mask", str(path))
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    assert "FITS" in _error("mask", str(empty))


def test_error_truncated(tmp_path):
    rng = np.random.default_rng(9)
    files = reference_files(tmp_path, rng, (5, 11, 30, 20), (20, 30))
    data = open(files["saturation"], "rb").read()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(data[: len(data) - 4000])
    assert "truncated" in _error("saturation", str(cut))  # the DQ_DEF header is cut
    cut.write_bytes(data[: len(data) // 2])  # the DQ data is cut
    assert "truncated" in _error("saturation", str(cut))


def test_error_missing_required_extension(tmp_path):
    path = write_ref(
        tmp_path / "s.fits",
        "saturation",
        {"DQ": np.zeros((8, 12), np.uint32)},
        geometry=(9, 17, 12, 8),
    )
    message = _error("saturation", path)
    assert "missing required extension SCI" in message


@pytest.mark.parametrize("key, value", [("DETECTOR", "NRCB4"), ("INSTRUME", "NIRISS")])
def test_error_detector_or_instrument_mismatch(tmp_path, key, value):
    path = write_ref(
        tmp_path / "g.fits",
        "gain",
        {"SCI": np.ones((8, 12), np.float32)},
        geometry=(9, 17, 12, 8),
        **{key: value},
    )
    message = _error("gain", path)
    assert f"{key}='{value}'" in message and "science" in message


def test_error_wrong_reftype(tmp_path):
    path = write_ref(
        tmp_path / "g.fits", "gain", {"SCI": np.ones((8, 12), np.float32)}, geometry=(9, 17, 12, 8)
    )
    message = _error("saturation", path)
    assert "'gain'" in message and "REFTYPE" in message


def test_error_wrong_dimensionality(tmp_path):
    path = write_ref(
        tmp_path / "l.fits",
        "linearity",
        {"COEFFS": np.ones((8, 12), np.float32)},
        geometry=(9, 17, 12, 8),
    )
    assert "COEFFS is 2-D" in _error("linearity", path)
    path = write_ref(
        tmp_path / "s.fits",
        "saturation",
        {"SCI": np.ones((8, 12), np.float32), "DQ": np.zeros((8, 13), np.uint32)},
        geometry=(9, 17, 12, 8),
    )
    assert "DQ has shape (8, 13)" in _error("saturation", path)


def test_error_subarray_not_contained(tmp_path):
    rng = np.random.default_rng(10)
    files = reference_files(tmp_path, rng, (5, 11, 15, 20), (20, 15))  # x1 = 4 + 12 > 15
    message = _error("readnoise", files["readnoise"])
    assert "not contained" in message
    assert "SUBSTRT1=9, SUBSTRT2=17, SUBSIZE1=12, SUBSIZE2=8" in message  # science
    assert "SUBSTRT1=5, SUBSTRT2=11, SUBSIZE1=15, SUBSIZE2=20" in message  # reference


def test_error_no_subarray_keywords_and_not_full_frame(tmp_path):
    path = write_ref(tmp_path / "g.fits", "gain", {"SCI": np.ones((100, 100), np.float32)})
    assert "not full frame" in _error("gain", path)


def test_error_dark_shape_and_miri(tmp_path):
    path = write_ref(
        tmp_path / "d.fits", "dark", {"SCI": np.ones((4, 9, 12), np.float32)}, NFRAMES=1, GROUPGAP=0
    )
    message = _error("dark", path)
    assert "(4, 9, 12)" in message and "(8, 12)" in message
    path = write_ref(
        tmp_path / "m.fits",
        "dark",
        {"SCI": np.ones((2, 4, 8, 12), np.float32)},
        NFRAMES=1,
        GROUPGAP=0,
    )
    assert "MIRI" in _error("dark", path)
    path = write_ref(tmp_path / "k.fits", "dark", {"SCI": np.ones((4, 8, 12), np.float32)})
    assert "NFRAMES" in _error("dark", path)
    path = write_ref(
        tmp_path / "c.fits",
        "dark",
        {"SCI": np.ones((4, 8, 12), np.float32)},
        geometry=(1, 1, 12, 8),
        NFRAMES=1,
        GROUPGAP=0,
    )
    assert "corner" in _error("dark", path)


# ---------------------------------------------------------------------------------------------
# Inputs never modified


def test_files_and_results_independent(tmp_path):
    rng = np.random.default_rng(11)
    files = reference_files(tmp_path, rng, (9, 17, 12, 8), (8, 12))
    before = {t: file_state(p) for t, p in files.items()}
    exposure = make_exposure()
    refs = {t: load_reference(t, p, exposure) for t, p in files.items()}
    for ref in refs.values():
        for array in ref.arrays.values():
            # A fresh array: no view of astropy's memory map or buffers.
            assert array.base is None and not isinstance(array, np.memmap)
            assert array.flags.writeable
            array += 1  # must not reach the file
    assert {t: file_state(p) for t, p in files.items()} == before
    again = load_reference("gain", files["gain"], exposure)
    np.testing.assert_array_equal(again.arrays["data"], fits.getdata(files["gain"], "SCI"))
    assert dataclasses.is_dataclass(again)


# ---------------------------------------------------------------------------------------------
# Choosing files: overrides, N/A, CRDS


@pytest.fixture
def no_crds_env(monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)


def test_overrides_and_na(tmp_path, no_crds_env):
    rng = np.random.default_rng(12)
    files = reference_files(tmp_path, rng, (9, 17, 12, 8), (8, 12))
    exposure = make_exposure()
    overrides = {"gain": files["gain"], "mask": "N/A", "saturation": " " + files["saturation"]}
    paths = resolve_references(exposure, ["mask", "gain", "saturation"], overrides)
    assert paths == {"mask": "N/A", "gain": files["gain"], "saturation": files["saturation"]}
    refs, context = load_references(exposure, ["mask", "gain"], overrides)
    assert context is None and refs["mask"] is None
    assert refs["gain"].name == files["gain"] and refs["gain"].reftype == "gain"


def test_references_are_read_once_per_process_and_read_only(tmp_path, no_crds_env):
    """The next segment of an exposure gets the same arrays (no second read), which no step
    can change; a changed file or another subarray is read anew."""
    rng = np.random.default_rng(13)
    files = reference_files(tmp_path, rng, (5, 11, 30, 20), (20, 30))
    overrides = {"gain": files["gain"], "saturation": files["saturation"]}
    first, _ = load_references(make_exposure(intstart=1), ["gain", "saturation"], overrides)
    again, _ = load_references(make_exposure(intstart=101), ["gain", "saturation"], overrides)
    assert again["gain"] is first["gain"] and again["saturation"] is first["saturation"]
    with pytest.raises(ValueError, match="read-only"):
        first["gain"].arrays["data"][0, 0] = 0.0
    other, _ = load_references(make_exposure(substrt1=10), ["gain"], overrides)
    assert other["gain"] is not first["gain"]
    np.testing.assert_array_equal(
        other["gain"].arrays["data"][:, :-1], first["gain"].arrays["data"][:, 1:]
    )
    with fits.open(files["gain"], mode="update") as hdul:  # a new version of the file
        hdul["SCI"].data[:] = 7.0
    changed, _ = load_references(make_exposure(), ["gain"], overrides)
    assert changed["gain"] is not first["gain"] and (changed["gain"].arrays["data"] == 7.0).all()


def test_na_not_allowed_for_readnoise(no_crds_env):
    with pytest.raises(ReferenceFileError, match="readnoise.*N/A is allowed only"):
        resolve_references(make_exposure(), ["readnoise"], {"readnoise": "N/A"})


def test_no_override_and_no_crds_is_a_clear_error(tmp_path, no_crds_env):
    with pytest.raises(ReferenceFileError) as info:
        resolve_references(make_exposure(), ["mask", "dark"], {})
    message = str(info.value)
    assert "mask, dark" in message and "--ref TYPE=PATH" in message and "CRDS_PATH" in message


def test_crds_not_importable(monkeypatch, tmp_path):
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "crds", None)
    with pytest.raises(ReferenceFileError) as info:
        resolve_references(make_exposure(), ["gain", "dark"], {"dark": "x.fits"})
    message = str(info.value)
    assert "gain" in message and "dark" not in message.split("crds")[0]
    assert "crds" in message and "--ref TYPE=PATH" in message


def fake_crds(monkeypatch, answers, *, fail=None, context="jwst_1234.pmap"):
    """Install a stand-in crds client that answers ``answers`` and records the call."""
    calls = []
    crds = types.ModuleType("crds")
    core = types.ModuleType("crds.core")
    heavy = types.ModuleType("crds.core.heavy_client")

    def getreferences(parameters, reftypes=None, context=None, observatory=None):
        calls.append(
            dict(parameters=parameters, reftypes=reftypes, context=context, obs=observatory)
        )
        if fail:
            raise fail
        return {t: answers[t] for t in reftypes}

    crds.getreferences = getreferences
    heavy.get_processing_mode = lambda observatory: (False, context)
    crds.core, core.heavy_client = core, heavy
    for name, module in (
        ("crds", crds),
        ("crds.core", core),
        ("crds.core.heavy_client", heavy),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("CRDS_PATH", "/nonexistent/crds_cache")
    monkeypatch.setattr(crds_lookup, "crds_parameters", lambda exposure, header: {"meta.x": 1})
    return calls


def test_crds_lookup_names_and_context(monkeypatch, tmp_path):
    rng = np.random.default_rng(13)
    files = reference_files(tmp_path, rng, (9, 17, 12, 8), (8, 12))
    calls = fake_crds(monkeypatch, {"gain": files["gain"], "mask": "NOT FOUND n/a"})
    refs, context = load_references(
        make_exposure(), ["gain", "mask", "readnoise"], {"readnoise": files["readnoise"]}
    )
    assert context == "jwst_1234.pmap"
    assert refs["gain"].name == "crds://gain.fits" and refs["gain"].path == files["gain"]
    assert refs["mask"] is None
    assert refs["readnoise"].name == files["readnoise"]
    assert calls[0]["reftypes"] == ["gain", "mask"]  # overrides are not looked up
    assert calls[0]["context"] == "jwst_1234.pmap" and calls[0]["obs"] == "jwst"


def test_crds_lookup_failure_and_missing_required(monkeypatch):
    fake_crds(monkeypatch, {}, fail=RuntimeError("no server"))
    with pytest.raises(ReferenceFileError, match=r"CRDS lookup of gain failed.*--ref TYPE=PATH"):
        resolve_references(make_exposure(), ["gain"], None)
    fake_crds(monkeypatch, {"readnoise": "N/A"})
    with pytest.raises(ReferenceFileError, match=r"no readnoise reference.*--ref readnoise=PATH"):
        resolve_references(make_exposure(), ["readnoise"], None)


# A hand-made CRDS cache: one context, NIRCam gain chosen by DETECTOR and date, mask N/A.
PMAP = """header = {
    'derived_from' : 'tsogpu test',
    'mapping' : 'PIPELINE',
    'name' : 'jwst_0001.pmap',
    'observatory' : 'JWST',
    'parkey' : ('META.INSTRUMENT.NAME',),
    'sha1sum' : '0',
}

selector = {
    'NIRCAM' : 'jwst_nircam_0001.imap',
}
"""
IMAP = """header = {
    'derived_from' : 'tsogpu test',
    'instrument' : 'NIRCAM',
    'mapping' : 'INSTRUMENT',
    'name' : 'jwst_nircam_0001.imap',
    'observatory' : 'JWST',
    'parkey' : ('REFTYPE',),
    'sha1sum' : '0',
}

selector = {
    'gain' : 'jwst_nircam_gain_0001.rmap',
    'mask' : 'N/A',
}
"""
RMAP = """header = {
    'classes' : ('Match', 'UseAfter'),
    'derived_from' : 'tsogpu test',
    'filekind' : 'GAIN',
    'instrument' : 'NIRCAM',
    'mapping' : 'REFERENCE',
    'name' : 'jwst_nircam_gain_0001.rmap',
    'observatory' : 'JWST',
    'parkey' : (('META.INSTRUMENT.DETECTOR',), ('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')),
    'sha1sum' : '0',
}

selector = Match({
    ('NRCA1',) : UseAfter({
        '2014-01-01 00:00:00' : 'jwst_nircam_gain_0001.fits',
    }),
})
"""
SERVER_CONFIG = (
    "{'observatory': 'jwst', 'operational_context': 'jwst_0001.pmap', "
    "'edit_context': 'jwst_0001.pmap', 'build_context': 'jwst_0001.pmap', "
    "'versions_context': 'jwst_0001.pmap', 'bad_files': '', 'bad_files_list': [], "
    "'force_remote_mode': False, 'crds_version': {'str': 'test'}, "
    "'reference_url': {'checked': {'jwst': 'none'}, 'unchecked': {'jwst': 'none'}}, "
    "'mapping_url': {'checked': {'jwst': 'none'}, 'unchecked': {'jwst': 'none'}}, "
    "'download_metadata_chunk_size': 100, 'effective_mode': 'local', 'connected': False, "
    "'last_synced': '2024-01-01 00:00:00'}"
)


@pytest.mark.jwst
def test_crds_lookup_against_local_cache(tmp_path):
    """A real crds client, offline (CRDS_MODE=local), on a cache with hand-made rules."""
    pytest.importorskip("stdatamodels")
    crds = pytest.importorskip("crds")
    checksum = pytest.importorskip("crds.refactoring.checksum")
    cache = tmp_path / "crds_cache"
    mappings = cache / "mappings" / "jwst"
    mappings.mkdir(parents=True)
    (cache / "config" / "jwst").mkdir(parents=True)
    (cache / "config" / "jwst" / "server_config").write_text(SERVER_CONFIG)
    for name, text in (
        ("jwst_0001.pmap", PMAP),
        ("jwst_nircam_0001.imap", IMAP),
        ("jwst_nircam_gain_0001.rmap", RMAP),
    ):
        (mappings / name).write_text(text)
        checksum.update_checksum(str(mappings / name))
    refdir = cache / "references" / "jwst" / "nircam"
    refdir.mkdir(parents=True)
    gain = write_ref(
        refdir / "jwst_nircam_gain_0001.fits",
        "gain",
        {"SCI": np.arange(40 * 30, dtype=np.float32).reshape(40, 30)},
        geometry=(1, 1, 30, 40),
    )
    # crds keeps its configuration per process: look up in a fresh interpreter
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS")}
    env.update(
        CRDS_PATH=str(cache),
        CRDS_MODE="local",
        CRDS_CONTEXT="jwst_0001.pmap",
        CRDS_SERVER_URL="https://localhost:1",  # never contacted
    )
    script = """
import json, sys
import numpy as np
from tsogpu.io.reffiles import load_references
sys.path.insert(0, sys.argv[1])
from test_reffiles import make_exposure
header = {"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "DATE-OBS": "2023-01-01",
          "TIME-OBS": "00:00:00"}
refs, context = load_references(make_exposure(), ["gain", "mask"], {}, header=header)
np.save(sys.argv[2], refs["gain"].arrays["data"])
print(json.dumps({"context": context, "mask": refs["mask"], "name": refs["gain"].name,
                  "path": refs["gain"].path}))
"""
    res = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path / "gain.npy")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["context"] == "jwst_0001.pmap"
    assert out["mask"] is None  # the rules say N/A
    assert out["name"] == "crds://jwst_nircam_gain_0001.fits"
    assert os.path.samefile(out["path"], gain)
    np.testing.assert_array_equal(np.load(tmp_path / "gain.npy"), fits.getdata(gain)[16:24, 8:20])
    assert crds.__version__
