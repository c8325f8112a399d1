"""The simulated files: the Level-1b uncal segment and the seven reference files, written with
stdatamodels (imported on first use)."""

import contextlib
import logging

import numpy as np

from .. import dq
from .detector import pick_pixels
from .linearity import inverse_coeffs
from .modes import FULL
from .times import BARY_OFFSET, EXP_START_MJD, TDB_MINUS_UTC, mjd_to_datetime

# The mask file's DQ_DEF: deliberately not the standard bit values, so that a reader that
# skips the DQ_DEF remapping gets the wrong flags. The last name is not a JWST mnemonic and
# is dropped on remapping (stdatamodels warns).
MASK_DQ_DEF = (
    (0, 1, "DO_NOT_USE", "Bad pixel, do not use"),
    (1, 2, "DEAD", "Dead pixel"),
    (2, 4, "HOT", "Hot pixel"),
    (3, 8, "WARM", "Warm pixel"),
    (4, 16, "REFERENCE_PIXEL", "Reference pixel"),
    (5, 32, "UNRELIABLE_SLOPE", "Slope variance large"),
    (6, 64, "SIM_NOT_A_MNEMONIC", "Not a JWST flag; ignored by readers"),
)
LINEARITY_DQ_DEF = (
    (0, 1, "DO_NOT_USE", "Bad pixel, do not use"),
    (1, 2, "NONLINEAR", "Pixel highly nonlinear"),
    (2, 4, "NO_LIN_CORR", "Linearity correction not available"),
)


def _standard_dq_def(names):
    return tuple(
        (int(np.log2(dq.PIXEL[n])), dq.PIXEL[n], n, n.replace("_", " ").capitalize()) for n in names
    )


SATURATION_DQ_DEF = _standard_dq_def(("DO_NOT_USE", "NO_SAT_CHECK"))
SUPERBIAS_DQ_DEF = _standard_dq_def(("DO_NOT_USE", "UNRELIABLE_BIAS"))
DARK_DQ_DEF = _standard_dq_def(("DO_NOT_USE", "HOT", "WARM", "UNRELIABLE_DARK"))


def _set(meta, path, value):
    obj = meta
    parts = path.split(".")
    for p in parts[:-1]:
        obj = getattr(obj, p)
    setattr(obj, parts[-1], value)


def write_uncal(path, m, geo, e, data, zframe, times, extra=None):
    """Write the Level-1b segment ``path`` (a ``Level1bModel``) with the keywords of mode ``m``;
    ``extra``: more ``{meta path: value}`` (they win)."""
    from stdatamodels.jwst import datamodels

    nints, ngroups = data.shape[:2]
    tframe = geo.tframe
    tgroup = round(tframe * (e["nframes"] + e["groupgap"]), 5)
    t_int = (ngroups * (e["nframes"] + e["groupgap"]) - e["groupgap"]) * tframe
    start_mjd = float(times["int_start_MJD_UTC"][0])
    end_mjd = float(times["int_end_MJD_UTC"][-1])
    start = mjd_to_datetime(EXP_START_MJD)

    model = datamodels.Level1bModel()
    model.data = data
    if zframe is not None:
        model.zeroframe = zframe
    meta = model.meta
    values = {
        "model_type": "Level1bModel",
        "filename": path.name,
        "telescope": "JWST",
        "time_sys": "UTC",
        "instrument.name": m.instrument,
        "instrument.detector": m.detector,
        "exposure.type": m.exp_type,
        "exposure.readpatt": e["readpatt"],
        "exposure.nints": e["nints_total"],
        "exposure.ngroups": ngroups,
        "exposure.nframes": e["nframes"],
        "exposure.groupgap": e["groupgap"],
        "exposure.frame_divisor": e["frame_divisor"],
        "exposure.drop_frames1": 0,
        "exposure.drop_frames3": 0,
        "exposure.nresets_at_start": 1,
        "exposure.nresets_between_ints": 1,
        "exposure.nsamples": 1,
        "exposure.sample_time": 10,
        "exposure.frame_time": tframe,
        "exposure.group_time": tgroup,
        "exposure.integration_time": t_int,
        "exposure.exposure_time": t_int * e["nints_total"],
        "exposure.duration": (end_mjd - start_mjd) * 86400.0,
        "exposure.noutputs": geo.noutputs,
        "exposure.zero_frame": bool(e["zero_frame"]),
        "exposure.segment_number": e["segnum"],
        "exposure.segment_total": e["segtot"],
        "exposure.integration_start": e["intstart"],
        "exposure.integration_end": e["intstart"] + nints - 1,
        "exposure.start_time": start_mjd,
        "exposure.mid_time": 0.5 * (start_mjd + end_mjd),
        "exposure.end_time": end_mjd,
        "observation.date": start.strftime("%Y-%m-%d"),
        "observation.time": start.strftime("%H:%M:%S.%f")[:12],
        "observation.program_number": m.file_stem[2:7],
        "observation.observation_number": m.file_stem[7:10],
        "observation.visit_number": m.file_stem[10:13],
        "observation.visit_group": m.file_stem[14:16],
        "observation.sequence_id": m.file_stem[16],
        "observation.activity_id": m.file_stem[17:19],
        "observation.exposure_number": m.file_stem[20:25],
        "visit.tsovisit": True,
        "subarray.name": geo.subarray,
        "subarray.xstart": geo.substrt1,
        "subarray.ystart": geo.substrt2,
        "subarray.xsize": geo.nx,
        "subarray.ysize": geo.ny,
        "subarray.fastaxis": m.fastaxis,
        "subarray.slowaxis": m.slowaxis,
        **m.keywords,
        **(extra or {}),
    }
    for key, value in values.items():
        _set(meta, key, value)
    model.int_times = times
    model.group = _group_table(times, ngroups, tgroup, tframe, e, geo)
    model.save(path)
    model.close()


def _group_table(times, ngroups, tgroup, tframe, e, geo):
    dtype = [
        ("integration_number", ">i4"),
        ("group_number", ">i2"),
        ("end_day", ">i2"),
        ("end_milliseconds", ">i4"),
        ("end_submilliseconds", ">i2"),
        ("group_end_time", "S26"),
        ("number_of_columns", ">i2"),
        ("number_of_rows", ">i2"),
        ("number_of_gaps", ">i2"),
        ("completion_code_number", ">i2"),
        ("completion_code_text", "S36"),
        ("bary_end_time", ">f8"),
        ("helio_end_time", ">f8"),
    ]
    nints = times.size
    table = np.zeros(nints * ngroups, dtype=dtype)
    ints = np.repeat(times["integration_number"], ngroups)
    groups = np.tile(np.arange(1, ngroups + 1), nints)
    start = np.repeat(times["int_start_MJD_UTC"], ngroups)
    end = start + (groups * (e["nframes"] + e["groupgap"]) - e["groupgap"]) * tframe / 86400.0
    day0 = 51544.0  # 2000-01-01, the GROUP table's day zero
    table["integration_number"] = ints
    table["group_number"] = groups
    table["end_day"] = np.floor(end - day0)
    ms = (end - np.floor(end)) * 86400.0e3
    table["end_milliseconds"] = np.floor(ms)
    table["end_submilliseconds"] = np.floor((ms - np.floor(ms)) * 1000.0)
    table["group_end_time"] = [
        mjd_to_datetime(t).strftime("%Y-%m-%dT%H:%M:%S.%f").encode() for t in end
    ]
    table["number_of_columns"] = geo.nx
    table["number_of_rows"] = geo.ny
    table["completion_code_text"] = b"COMPLETE"
    table["bary_end_time"] = end + TDB_MINUS_UTC + BARY_OFFSET
    table["helio_end_time"] = end + TDB_MINUS_UTC + BARY_OFFSET
    return table


def dq_def_table(rows):
    """A DQ_DEF table (BIT, VALUE, NAME, DESCRIPTION) from (bit, value, name, text) rows."""
    return np.array(
        [(b, v, n, d) for b, v, n, d in rows],
        dtype=[("BIT", ">i4"), ("VALUE", ">u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")],
    )


def describe_reference(model, reftype, description, instrument, detector, geo, full_size):
    """A simulated reference file's meta every mode sets alike: its type, pedigree and the
    subarray it covers (``full_size`` (xsize, ysize) for a full-frame file, else ``geo``'s)."""
    meta = model.meta
    meta.reftype = reftype
    meta.author = "tsogpu.simulate"
    meta.pedigree = "DUMMY"
    meta.useafter = "2022-01-01T00:00:00"
    meta.description = description
    meta.telescope = "JWST"
    meta.instrument.name = instrument
    meta.instrument.detector = detector
    if full_size is not None:
        meta.subarray.name = "FULL"
        meta.subarray.xstart, meta.subarray.ystart = 1, 1
        meta.subarray.xsize, meta.subarray.ysize = full_size
    else:
        meta.subarray.name = geo.subarray
        meta.subarray.xstart, meta.subarray.ystart = geo.substrt1, geo.substrt2
        meta.subarray.xsize, meta.subarray.ysize = geo.nx, geo.ny


def _ref_meta(model, m, geo, reftype, full, description, e, *, readpatt=True, exp_type=True):
    full_size = (FULL, FULL) if full else None
    describe_reference(model, reftype, description, m.instrument, m.detector, geo, full_size)
    meta = model.meta
    meta.subarray.fastaxis = m.fastaxis
    meta.subarray.slowaxis = m.slowaxis
    if readpatt:
        meta.exposure.readpatt = e["readpatt"] if not full else "ANY"
    if exp_type:
        meta.exposure.type = m.exp_type


def write_reference_files(out_dir, m, geo, det, e, full_frame_refs, inv_coeffs, dark_ngroups, seed):
    """Write the seven reference files of detector ``det``; {reftype: Path}."""
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    inst = m.instrument.lower()
    det_name = m.detector.lower()
    ys, xs = geo.ys, geo.xs
    full = bool(full_frame_refs)

    def cut(a):
        return a if full else a[..., ys, xs]

    def path(reftype):
        return out_dir / f"jwst_{inst}_{det_name}_{reftype}_sim{seed}.fits"

    refs = {}

    mask = datamodels.MaskModel()
    mask.dq = cut(det["mask"])
    mask.dq_def = dq_def_table(MASK_DQ_DEF)
    _ref_meta(mask, m, geo, "MASK", full, "Simulated bad-pixel mask (non-standard DQ bits)", e)
    with _quiet("stdatamodels.dynamicdq"):  # it says SIM_NOT_A_MNEMONIC is ignored: on purpose
        refs["mask"] = save_model(mask, path("mask"))
    # save() packs only mnemonics it knows; set the DQ_DEF row that names no JWST flag by hand
    extra = np.zeros((FULL, FULL), bool)
    extra.flat[det["mask_extra"]] = True
    with fits.open(refs["mask"], mode="update") as hdul:
        hdul["DQ"].data[cut(extra)] |= np.uint32(64)

    sat = datamodels.SaturationModel()
    sat.data = cut(det["sat_thresh"])
    sat.dq = cut(det["sat_dq"])
    sat.dq_def = dq_def_table(SATURATION_DQ_DEF)
    _ref_meta(
        sat,
        m,
        geo,
        "SATURATION",
        full,
        "Simulated saturation (raw DN incl. bias)",
        e,
        readpatt=False,
        exp_type=False,
    )
    refs["saturation"] = save_model(sat, path("saturation"))

    rng = np.random.default_rng([seed, 3])
    bias = det["bias"][ys, xs]
    sb = datamodels.SuperBiasModel()
    sb.data = (bias + rng.normal(0.0, 1.0, bias.shape)).astype(np.float32)
    sb.err = np.full(bias.shape, 1.0, np.float32)
    sb_dq = np.zeros(bias.shape, np.uint32)
    active = ~geo.refpix
    sb_dq.flat[pick_pixels(rng, active, max(1, bias.size // 5000))] |= dq.PIXEL["UNRELIABLE_BIAS"]
    nan_bias = pick_pixels(rng, active, 2)
    sb.data.flat[nan_bias] = np.nan
    sb_dq.flat[nan_bias] |= dq.PIXEL["UNRELIABLE_BIAS"]
    sb.dq = sb_dq
    sb.dq_def = dq_def_table(SUPERBIAS_DQ_DEF)
    _ref_meta(sb, m, geo, "SUPERBIAS", False, "Simulated superbias", e, exp_type=False)
    sb.meta.exposure.noutputs = geo.noutputs
    sb.meta.bunit_data = "DN"
    refs["superbias"] = save_model(sb, path("superbias"))

    lin = datamodels.LinearityModel()
    lin.coeffs = cut(det["lin_coeffs"])
    if inv_coeffs:
        lin.inv_coeffs = cut(inverse_coeffs(det["coeffs"]))
    lin.dq = cut(det["lin_dq"])
    lin.dq_def = dq_def_table(LINEARITY_DQ_DEF)
    _ref_meta(
        lin,
        m,
        geo,
        "LINEARITY",
        full,
        "Simulated linearity (non-standard DQ bits)",
        e,
        readpatt=False,
        exp_type=False,
    )
    refs["linearity"] = save_model(lin, path("linearity"))

    # dark: NFRAMES=1, GROUPGAP=0, matching the science subarray (jwst does not cut darks)
    nd = e["nframes_int"] + 3 if dark_ngroups is None else int(dark_ngroups)
    rate = det["dark_rate"][ys, xs]
    frames = np.arange(1, nd + 1, dtype=np.float64)[:, None, None] * geo.tframe
    dark_model = (
        datamodels.DarkNirspecModel() if m.instrument == "NIRSPEC" else (datamodels.DarkModel())
    )
    dark_model.data = (rate[None] * frames + rng.normal(0.0, 0.2, (nd, *rate.shape))).astype(
        np.float32
    )
    dark_model.data[:, geo.refpix] = 0.0
    dark_model.err = np.full((nd, *rate.shape), 0.2, np.float32)
    dark_dq = np.zeros(rate.shape, np.uint32)
    hot_sub = np.zeros((FULL, FULL), bool)
    hot_sub.flat[det["hot"]] = True
    dark_dq[hot_sub[ys, xs]] |= dq.PIXEL["HOT"]
    dark_dq.flat[pick_pixels(rng, active, max(1, rate.size // 5000))] |= dq.PIXEL["UNRELIABLE_DARK"]
    dark_model.dq = dark_dq
    dark_model.dq_def = dq_def_table(DARK_DQ_DEF)
    _ref_meta(dark_model, m, geo, "DARK", False, "Simulated dark (cumulative DN per frame)", e)
    dark_model.meta.exposure.readpatt = m.readpatt  # the one-frame-per-group pattern
    dark_model.meta.exposure.nframes = 1
    dark_model.meta.exposure.groupgap = 0
    dark_model.meta.exposure.ngroups = nd
    dark_model.meta.exposure.nints = 1
    dark_model.meta.exposure.noutputs = geo.noutputs
    refs["dark"] = save_model(dark_model, path("dark"))

    gain = datamodels.GainModel()
    gain.data = cut(det["gain_ref"])
    _ref_meta(
        gain, m, geo, "GAIN", full, "Simulated gain (e-/DN)", e, readpatt=False, exp_type=False
    )
    gain.meta.bunit_data = "electrons/DN"
    refs["gain"] = save_model(gain, path("gain"))

    rn = datamodels.ReadnoiseModel()
    rn.data = cut(det["readnoise"].astype(np.float32))
    _ref_meta(rn, m, geo, "READNOISE", full, "Simulated CDS read noise (DN)", e, exp_type=False)
    rn.meta.exposure.noutputs = geo.noutputs
    rn.meta.bunit_data = "DN"
    refs["readnoise"] = save_model(rn, path("readnoise"))
    return refs


@contextlib.contextmanager
def _quiet(logger):
    """Hide ``logger``'s warnings (a message the simulated files cause on purpose)."""
    logger = logging.getLogger(logger)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def save_model(model, path):
    """Save a stdatamodels model as ``path`` (FILENAME set), close it; the path."""
    model.meta.filename = path.name
    model.save(path)
    model.close()
    return path
