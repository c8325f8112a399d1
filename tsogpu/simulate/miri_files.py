"""The simulated MIRI reference files, each written with its stdatamodels model class:
mask, saturation, linearity, gain, readnoise (full frame 1024 x 1032, or cut to the subarray),
dark (``DarkMIRIModel``: 4-D, several integrations), reset (``ResetModel``), rscd
(``RSCDModel``: the group-skip table) and emicorr (``EmiModel``, an ASDF file)."""

from __future__ import annotations

import numpy as np

from .. import dq
from .detector import pick_pixels
from .files import (
    DARK_DQ_DEF,
    LINEARITY_DQ_DEF,
    MASK_DQ_DEF,
    SATURATION_DQ_DEF,
    describe_reference,
    dq_def_table,
    save_model,
)
from .miri_modes import FULL_MIRI, FULL_SLOW_ROWCLOCKS, OUTSIDE_ROW_CLOCKS, SUBARRAYS
from .miri_ramps import EMI_COMPONENTS, RESET_NINTS, dark_excess, emi_waveform, reset_anomaly

RESET_DQ_DEF = DARK_DQ_DEF
# groups to skip (integration 1, integrations 2+) per readout pattern, for every subarray
RSCD_SKIP = {"FASTR1": (1, 3), "SLOWR1": (1, 1)}
EMI_BINS = 500  # samples of one period in the EMICORR file's phase amplitudes


def _meta(model, reftype, geo, full, description, *, readpatt=None):
    full_size = FULL_MIRI[::-1] if full else None  # (xsize, ysize)
    describe_reference(model, reftype, description, "MIRI", "MIRIMAGE", geo, full_size)
    meta = model.meta
    meta.subarray.fastaxis, meta.subarray.slowaxis = 1, 2
    if readpatt is not None:
        meta.exposure.readpatt = readpatt


def write_miri_references(out_dir, m, geo, det, e, full_frame_refs, dark_ngroups, seed):
    """Write the nine MIRI reference files of detector ``det``; {reftype: Path}."""
    from stdatamodels.jwst import datamodels

    ys, xs = geo.ys, geo.xs
    full = bool(full_frame_refs)
    ngroups = e["ngroups"]
    rng = np.random.default_rng([seed, 3])

    def cut(a):
        return a if full else a[..., ys, xs]

    def path(reftype, ext="fits"):
        return out_dir / f"jwst_miri_mirimage_{reftype}_sim{seed}.{ext}"

    refs = {}
    # mask: reference columns, some bad pixels; non-standard DQ_DEF bits (remapping matters)
    mask = np.zeros(FULL_MIRI, np.uint32)
    mask[det["refpix"]] |= dq.REFERENCE_PIXEL
    bad = pick_pixels(rng, ~det["refpix"], 400)
    mask.flat[bad[:100]] |= dq.DO_NOT_USE | dq.PIXEL["DEAD"]
    mask.flat[bad[100:250]] |= dq.DO_NOT_USE | dq.PIXEL["HOT"]
    mask.flat[bad[250:]] |= dq.PIXEL["WARM"]
    model = datamodels.MaskModel()
    model.dq = cut(mask)
    model.dq_def = dq_def_table(MASK_DQ_DEF[:-1])
    _meta(model, "MASK", geo, full, "Simulated MIRI bad-pixel mask (non-standard DQ bits)")
    refs["mask"] = save_model(model, path("mask"))

    sat_dq = np.zeros(FULL_MIRI, np.uint32)
    sat_dq.flat[pick_pixels(rng, ~det["refpix"], 50)] |= dq.NO_SAT_CHECK
    model = datamodels.SaturationModel()
    model.data = cut(det["sat_thresh"])
    model.dq = cut(sat_dq)
    model.dq_def = dq_def_table(SATURATION_DQ_DEF)
    _meta(model, "SATURATION", geo, full, "Simulated MIRI saturation (raw DN)")
    refs["saturation"] = save_model(model, path("saturation"))

    lin_dq = np.zeros(FULL_MIRI, np.uint32)
    lin_dq[det["refpix"]] |= dq.NO_LIN_CORR  # no light: left uncorrected
    model = datamodels.LinearityModel()
    model.coeffs = cut(det["coeffs"])
    model.dq = cut(lin_dq)
    model.dq_def = dq_def_table(LINEARITY_DQ_DEF)
    _meta(model, "LINEARITY", geo, full, "Simulated MIRI linearity (raw DN, bias included)")
    refs["linearity"] = save_model(model, path("linearity"))

    model = datamodels.GainModel()
    model.data = cut(det["gain"])
    _meta(model, "GAIN", geo, full, "Simulated MIRI gain (e-/DN)")
    model.meta.bunit_data = "electrons/DN"
    refs["gain"] = save_model(model, path("gain"))

    model = datamodels.ReadnoiseModel()
    model.data = cut(det["readnoise"])
    _meta(model, "READNOISE", geo, full, "Simulated MIRI CDS read noise (DN)")
    model.meta.bunit_data = "DN"
    refs["readnoise"] = save_model(model, path("readnoise"))

    refs["dark"] = _write_dark(datamodels, path("dark"), geo, det, e, dark_ngroups, rng)
    refs["reset"] = _write_reset(datamodels, path("reset"), geo, det, ngroups, rng)
    refs["rscd"] = _write_rscd(datamodels, path("rscd"))
    refs["emicorr"] = _write_emicorr(datamodels, path("emicorr", "asdf"))
    return refs


def _write_dark(datamodels, path, geo, det, e, dark_ngroups, rng):
    """4-D dark of the science subarray: per integration, dark current plus the early
    integrations' extra dark; NFRAMES=1, GROUPGAP=0; DQ (nints, 1, ny, nx) as CRDS's."""
    ys, xs = geo.ys, geo.xs
    nd = e["ngroups"] + 3 if dark_ngroups is None else int(dark_ngroups)
    nints = 3
    rate = det["dark_rate"][ys, xs]
    t = (np.arange(nd) + 1.0)[:, None, None] * geo.tframe
    data = np.empty((nints, nd, geo.ny, geo.nx), np.float32)
    for d in range(nints):
        data[d] = rate[None] * t + dark_excess(d, nd)[:, None, None]
    data += rng.normal(0.0, 0.2, data.shape).astype(np.float32)
    data[:, :, geo.refpix] = 0.0
    dark_dq = np.zeros((nints, 1, geo.ny, geo.nx), np.uint32)
    dark_dq.reshape(nints, -1)[:, pick_pixels(rng, ~geo.refpix, 3)] |= dq.PIXEL["UNRELIABLE_DARK"]
    model = datamodels.DarkMIRIModel()
    model.data = data
    model.dq = dark_dq
    model.err = np.full(data.shape, 0.2, np.float32)
    model.dq_def = dq_def_table(DARK_DQ_DEF)
    _meta(model, "DARK", geo, False, "Simulated MIRI dark (DN per frame, 3 integrations)",
          readpatt=e["readpatt"])  # fmt: skip
    model.meta.exposure.type = "MIR_IMAGE"
    model.meta.exposure.nframes = 1
    model.meta.exposure.groupgap = 0
    model.meta.exposure.ngroups = nd
    model.meta.exposure.nints = nints
    return save_model(model, path)


def _write_reset(datamodels, path, geo, det, ngroups, rng):
    """The reset anomaly of the science subarray: (2, ngroups, ny, nx), first integration and
    the rest."""
    amp = det["reset_amp"][:, geo.ys, geo.xs]
    data = np.stack([reset_anomaly(amp, r, ngroups) for r in range(RESET_NINTS)])
    data += rng.normal(0.0, 0.3, data.shape).astype(np.float32)
    model = datamodels.ResetModel()
    model.data = data
    model.dq = np.zeros((geo.ny, geo.nx), np.uint32)
    model.err = np.full(data.shape, 0.3, np.float32)
    model.dq_def = dq_def_table(RESET_DQ_DEF)
    _meta(model, "RESET", geo, False, "Simulated MIRI reset anomaly (DN)", readpatt="ANY")
    model.meta.exposure.nints = RESET_NINTS
    model.meta.exposure.ngroups = ngroups
    return save_model(model, path)


def _write_rscd(datamodels, path):
    rows = [(name, readpatt, *skips) for readpatt, skips in RSCD_SKIP.items() for name in SUBARRAYS]
    model = datamodels.RSCDModel()
    model.rscd_group_skip_table = np.array(
        rows,
        dtype=[
            ("subarray", "S17"),
            ("readpatt", "S12"),
            ("group_skip1", "i4"),
            ("group_skip", "i4"),
        ],
    )
    model.meta.reftype = "RSCD"
    model.meta.author = "tsogpu.simulate"
    model.meta.pedigree = "DUMMY"
    model.meta.useafter = "2022-01-01T00:00:00"
    model.meta.description = "Simulated MIRI RSCD groups to skip"
    model.meta.telescope = "JWST"
    model.meta.instrument.name = "MIRI"
    model.meta.instrument.detector = "MIRIMAGE"
    return save_model(model, path)


def emicorr_tree():
    """``frequencies`` and ``subarray_cases`` of the simulated EMICORR file, as EmiModel holds
    them: one period of :func:`emi_waveform` per frequency, every subarray (FULL as
    FULL_FAST and FULL_SLOW) correcting all of them."""
    phase = np.arange(EMI_BINS) / EMI_BINS
    frequencies = {
        name: {"frequency": freq, "phase_amplitudes": emi_waveform(phase).astype(np.float32)}
        for name, freq, _amp in EMI_COMPONENTS
    }
    names = [name for name, _freq, _amp in EMI_COMPONENTS]
    slow = {det: list(names) for det in ("MIRIMAGE", "MIRIFULONG", "MIRIFUSHORT")}
    cases = {}
    for sub, (_x0, _y0, _nx, ny, rowclocks) in SUBARRAYS.items():
        for key, rc in (
            ((sub, rowclocks),)
            if sub != "FULL"
            else (
                ("FULL_FAST", rowclocks),
                ("FULL_SLOW", FULL_SLOW_ROWCLOCKS),
            )
        ):
            cases[key] = {
                "rowclocks": rc,
                "frameclocks": ny * rc + (FULL_MIRI[0] - ny) * OUTSIDE_ROW_CLOCKS,
                "freqs": {"FAST": list(names), "SLOW": slow},
            }
    return {"frequencies": frequencies, "subarray_cases": cases}


def _write_emicorr(datamodels, path):
    tree = emicorr_tree()
    model = datamodels.EmiModel()
    model.frequencies = tree["frequencies"]
    model.subarray_cases = tree["subarray_cases"]
    model.meta.author = "tsogpu.simulate"
    model.meta.pedigree = "DUMMY"
    model.meta.useafter = "2022-01-01T00:00:00"
    model.meta.description = "Simulated MIRI EMI reference waves"
    model.meta.telescope = "JWST"
    model.meta.instrument.detector = "MIRIMAGE"
    return save_model(model, path)
