"""Write Stage-1 products as jwst does: ``_ramp`` (RampModel), ``_rateints`` (CubeModel) and
``_rate`` (ImageModel), through stdatamodels so that ``jwst.datamodels.open`` and calwebb_spec2
read them. Every product is written to a temporary name in the output folder and renamed, so
a failure leaves no partial product; the input file is only ever opened read-only.
"""

from __future__ import annotations

import json
import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels

from ..errors import InputError
from ..segment import REMOVED
from .atomic import write_atomically

# tsogpu step name -> meta.cal_step attribute (FITS S_* keyword)
CAL_STEP = {
    "group_scale": "group_scale",
    "dq_init": "dq_init",
    "emicorr": "emicorr",
    "saturation": "saturation",
    "firstframe": "firstframe",
    "lastframe": "lastframe",
    "reset": "reset",
    "rscd": "rscd",
    "superbias": "superbias",
    "refpix": "refpix",
    "linearity": "linearity",
    "dark_current": "dark_sub",
    "jump": "jump",
    "ramp_fit": "ramp_fit",
    "gain_scale": "gain_scale",
}


# primary-header keyword of the input hash (tsogpu.pipeline.resume.input_hash)
INPUT_HASH_KEYWORD = "TSOIHASH"


@dataclass
class Provenance:
    """What made a product; written to its primary header."""

    version: str
    backend: str
    device: str = "cpu"
    kernel_hash: str = ""
    params: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)  # reftype -> name (path or crds://file)
    crds_context: str | None = None
    step_status: dict = field(default_factory=dict)  # step -> COMPLETE / SKIPPED
    primary_cosmic_rays: float | None = None  # PRIMECRS, from jump
    extended_emission_events: float | None = None  # EXTNCRS, from jump
    input_hash: str = ""  # TSOIHASH: tsogpu.pipeline.resume.input_hash, for resumable batches
    shared_file: str | None = None  # TSOSHARE: the exposure's first pass (exposure_wide)
    shared_hash: str | None = None  # TSOSHASH: its content hash (tsogpu.exposure.Shared)

    def header_cards(self):
        cards = [
            ("TSOVER", self.version, "tsogpu version"),
            ("TSOBACK", self.backend, "tsogpu compute backend"),
            ("TSODEV", self.device, "tsogpu compute device"),
            ("TSOPARS", json.dumps(self.params, sort_keys=True), "tsogpu parameters (JSON)"),
        ]
        if self.kernel_hash:
            cards.append(("TSOKHASH", self.kernel_hash, "tsogpu CUDA kernel source hash"))
        if self.input_hash:
            # 64 hex digits leave no room for a comment on the card
            cards.append((INPUT_HASH_KEYWORD, self.input_hash, ""))
        if self.shared_file:
            cards.append(("TSOSHARE", self.shared_file, "tsogpu exposure-wide first pass"))
            cards.append(("TSOSHASH", self.shared_hash, ""))
        return cards


def product_name(uncal_path, suffix):
    """``jw..._nrs1_uncal.fits`` -> ``jw..._nrs1_<suffix>.fits``."""
    stem = Path(uncal_path).name
    stem = re.sub(r"\.fits(\.gz)?$", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"_uncal$", "", stem)
    return f"{stem}_{suffix}.fits"


def load_meta(uncal_path):
    """The uncal file as a Level1bModel for its metadata and tables, without its pixels.

    stdatamodels would read every image extension (2 GB of SCI for a large segment); each is
    replaced by a one-element stand-in of the same name, which the embedded ASDF tree needs.
    Read once and kept for the next product of the same file (unchanged size and modification
    time); writers only read it.

    The first call in a process also imports stdatamodels' schemas (seconds), so the
    pipeline calls this on a side thread while the steps run.
    """
    st = os.stat(uncal_path)
    key = (os.path.abspath(uncal_path), st.st_size, st.st_mtime_ns)
    with _META_LOCK:
        if _META_CACHE.get("key") != key:
            _META_CACHE.clear()
            _META_CACHE.update(key=key, model=_read_meta(uncal_path))
        return _META_CACHE["model"]


_META_CACHE = {}
_META_LOCK = threading.Lock()


def _read_meta(uncal_path):
    try:
        with fits.open(os.fspath(uncal_path), memmap=True) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdus = [
                fits.ImageHDU(np.zeros((1,) * hdu.header["NAXIS"], np.uint16), name=hdu.name)
                if hdu.is_image and hdu.name != "PRIMARY"
                else hdu
                for hdu in hdul
            ]
            model = datamodels.Level1bModel(fits.HDUList(hdus))
            tables = {
                name: np.array(getattr(model, name))
                for name in ("int_times", "group")
                if model.hasattr(name) and getattr(model, name) is not None
            }
    except Exception as exc:
        raise InputError(
            f"{uncal_path}: cannot read its metadata with stdatamodels ({exc})"
        ) from None
    for name, table in tables.items():  # copies, independent of the closed file
        setattr(model, name, table)
    return model


def _finish(model, prov, final_path, extra=None):
    """Stamp provenance and step status on ``model``, then write it atomically; ``extra``:
    more extensions, {name: {"data": array, "header": [(key, value, comment)]}}."""
    for step, status in prov.step_status.items():
        if step in CAL_STEP:
            setattr(model.meta.cal_step, CAL_STEP[step], status)
    for reftype, name in prov.refs.items():
        getattr(model.meta.ref_file, reftype).name = name
    if prov.primary_cosmic_rays is not None:
        model.meta.exposure.primary_cosmic_rays = prov.primary_cosmic_rays
    if prov.extended_emission_events is not None:
        model.meta.exposure.extended_emission_events = prov.extended_emission_events
    if prov.crds_context:
        model.meta.ref_file.crds.context_used = prov.crds_context
    model.meta.calibration_software_name = "tsogpu"
    model.meta.calibration_software_version = prov.version
    model.meta.filename = Path(final_path).name
    model.extra_fits = {
        "PRIMARY": {"header": [list(c) for c in prov.header_cards()]},
        **(extra or {}),
    }
    return write_atomic(model, final_path)


def write_atomic(model, final_path):
    """Write datamodel ``model`` to ``final_path`` atomically (:mod:`tsogpu.io.atomic`)."""

    def write(fh):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.to_fits(fh)  # a file object keeps meta.filename as set

    return write_atomically(final_path, write)


def write_ramp(final_path, segment, prov):
    """Write the calibrated ramp of ``segment`` as a jwst RampModel FITS file."""
    src = load_meta(segment.source)
    model = datamodels.RampModel(
        data=segment.data, pixeldq=segment.pixeldq, groupdq=segment.groupdq
    )
    model.update(src)
    if segment.zeroframe is not None:
        model.zeroframe = segment.zeroframe
    if segment.average_dark_current is not None:
        model.average_dark_current = segment.average_dark_current
    if src.hasattr("int_times") and src.int_times is not None:
        model.int_times = src.int_times
    if src.hasattr("group") and src.group is not None:
        model.group = src.group
    return _finish(model, prov, final_path)


def write_rateints(final_path, uncal_path, sci, err, dq, var_poisson, var_rnoise, prov, chi2=None):
    """Write per-integration slopes as a jwst CubeModel (``_rateints``), INT_TIMES carried over.

    All arrays are (nints, ny, nx): ``sci``, ``err``, ``var_*`` float32 [DN/s, DN/s, (DN/s)^2],
    ``dq`` uint32. ``chi2`` (``ramp_fit.goodness_of_fit``, docs/options.md): float32, each
    integration's reduced chi-square, written as the extension CHI2 after jwst's.
    """
    src = load_meta(uncal_path)
    model = datamodels.CubeModel(
        data=sci, err=err, dq=dq, var_poisson=var_poisson, var_rnoise=var_rnoise
    )
    model.update(src)
    model.meta.bunit_data = "DN/s"
    model.meta.bunit_err = "DN/s"
    if src.hasattr("int_times") and src.int_times is not None:
        model.int_times = src.int_times
    extra = None
    if chi2 is not None:
        unit = [("BUNIT", "", "reduced chi-square of the ramp fit (dimensionless)")]
        extra = {"CHI2": {"data": np.asarray(chi2, np.float32), "header": unit}}
    return _finish(model, prov, final_path, extra)


def write_rate(final_path, uncal_path, sci, err, dq, var_poisson, var_rnoise, prov):
    """Write the exposure-averaged slope as a jwst ImageModel (``_rate``); arrays (ny, nx)."""
    src = load_meta(uncal_path)
    model = datamodels.ImageModel(
        data=sci, err=err, dq=dq, var_poisson=var_poisson, var_rnoise=var_rnoise
    )
    model.update(src)
    model.meta.bunit_data = "DN/s"
    model.meta.bunit_err = "DN/s"
    return _finish(model, prov, final_path)


def write_oneoverf(final_path, levels, segment, prov):
    """Write what ``refpix.sky_method`` measured (docs/options.md) as ``_oneoverf.fits``.

    Extensions: LINES float32 (nints, ngroups, namps, nlines), the 1/f level subtracted from
    each fast-read line (a DMS column when LINEAXIS = 'x', a row when 'y'), DN; OFFSETS float32
    (nints, ngroups, namps, 2), the even/odd detector-column offsets (``roeba`` only), DN; MASK
    uint8 (ny, nx), 1 on the trace mask (never sky). NaN: no sky pixel. The primary header has
    the provenance of the other products, and INTSTART (1-based) of the segment.
    """
    images = [fits.ImageHDU(levels.lines, name="LINES")]
    if levels.offsets is not None:
        images.append(fits.ImageHDU(levels.offsets, name="OFFSETS"))
    for hdu in images:
        hdu.header["BUNIT"] = "DN"
    card = ("LINEAXIS", levels.line_axis, "DMS axis indexed by the LINES lines")
    return _write_side_product(final_path, segment, prov, card, images)


def write_bias_scale(final_path, factors, segment, prov):
    """Write ``superbias.scale``'s factors (docs/options.md) as ``_biasscale.fits``.

    Extensions: APPLIED float32 (nints, ngroups), the factor the superbias was multiplied by
    in each integration and group; MEASURED float32 (nints, ngroups), the factor measured on
    that group (NaN: no usable sky pixel); MASK uint8 (ny, nx), 1 on the trace mask (never
    sky). The primary header has the provenance of the other products, INTSTART (1-based) of
    the segment and SBSCALE, the mode.
    """
    scale = prov.params.get("superbias", {}).get("scale", "")
    images = [
        fits.ImageHDU(np.asarray(factors.applied, np.float32), name="APPLIED"),
        fits.ImageHDU(np.asarray(factors.measured, np.float32), name="MEASURED"),
    ]
    card = ("SBSCALE", scale, "superbias.scale: integration, mean or exposure")
    return _write_side_product(final_path, segment, prov, card, images)


def write_removed(final_path, removed, segment, prov):
    """Write what the MIRI steps removed from each integration as ``_removed.fits``.

    One extension per MIRI step that ran (EMICORR, FIRSTFRAME, LASTFRAME, RESET, RSCD),
    float64 (nints,), with BUNIT and the quantity (``tsogpu.segment.REMOVED``) in WHAT. The
    primary header has the provenance of the other products and INTSTART of the segment.
    """
    images = []
    for step, values in removed.items():
        hdu = fits.ImageHDU(np.asarray(values, np.float64), name=step.upper())
        unit, what = REMOVED[step]
        hdu.header["BUNIT"] = unit
        hdu.header["WHAT"] = what
        images.append(hdu)
    card = ("REMSTEPS", ",".join(removed), "MIRI steps recorded here")
    return _write_side_product(final_path, segment, prov, card, images)


def _write_side_product(final_path, segment, prov, card, images):
    """An option's side product, atomically: a primary header with the provenance, INTSTART,
    ``card`` (key, value, comment) and FILENAME; then ``images``, and MASK (uint8, 1 on the
    segment's trace mask) when there is one."""
    primary = fits.PrimaryHDU()
    for key, value, comment in prov.header_cards():
        primary.header[key] = (value, comment)
    exp = segment.exposure
    primary.header["INTSTART"] = (exp.intstart or 1, "first integration of the segment, 1-based")
    primary.header[card[0]] = card[1:]
    primary.header["FILENAME"] = Path(final_path).name
    hdus = [primary, *images]
    if segment.trace_mask is not None:
        mask = fits.ImageHDU(np.asarray(segment.trace_mask, np.uint8), name="MASK")
        mask.header["BUNIT"] = ""
        hdus.append(mask)
    return write_atomically(final_path, fits.HDUList(hdus).writeto)


@dataclass(frozen=True)
class ProductKind:
    """A kind of product: the suffix of its file name, the extensions it may have (besides
    the primary header and stdatamodels' ASDF) and its writer, called as
    ``write(final_path, uncal_path, result, prov)`` with a segment's ``tsogpu.pipeline``
    Result."""

    suffix: str
    extensions: tuple
    write: Callable


# every product a segment can give, in the order they are written
PRODUCT_KINDS = {
    kind.suffix: kind
    for kind in (
        ProductKind(
            "ramp",
            ("SCI", "PIXELDQ", "GROUPDQ", "ZEROFRAME", "AVDRKCUR", "INT_TIMES", "GROUP"),
            lambda path, uncal_path, result, prov: write_ramp(path, result.segment, prov),
        ),
        ProductKind(
            "rateints",
            ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "INT_TIMES", "CHI2"),
            lambda path, uncal_path, result, prov: write_rateints(
                path, uncal_path, *result.rateints[:5], prov, *result.rateints[5:]
            ),
        ),
        ProductKind(
            "rate",
            ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"),
            lambda path, uncal_path, result, prov: write_rate(path, uncal_path, *result.rate, prov),
        ),
        ProductKind(
            "oneoverf",
            ("LINES", "OFFSETS", "MASK"),
            lambda path, uncal_path, result, prov: write_oneoverf(
                path, result.one_over_f, result.segment, prov
            ),
        ),
        ProductKind(
            "removed",
            tuple(step.upper() for step in REMOVED),
            lambda path, uncal_path, result, prov: write_removed(
                path, result.removed, result.segment, prov
            ),
        ),
        ProductKind(
            "biasscale",
            ("APPLIED", "MEASURED", "MASK"),
            lambda path, uncal_path, result, prov: write_bias_scale(
                path, result.bias_scale, result.segment, prov
            ),
        ),
    )
}


def read_trace_mask(path):
    """bool (ny, nx) from a ``.npy`` file or the first image of a FITS file (nonzero: on the
    trace, never sky) for ``refpix.sky_mask``."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            with fits.open(path) as hdul:
                arr = next((h.data for h in hdul if h.data is not None and h.data.ndim == 2), None)
    except FileNotFoundError:
        raise InputError(f"refpix.sky_mask: {path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"refpix.sky_mask: {path}: not a .npy or FITS image ({exc})") from None
    if arr is None or np.ndim(arr) != 2:
        raise InputError(f"refpix.sky_mask: {path}: expected a 2-D image (ny, nx)")
    return np.asarray(arr) != 0
