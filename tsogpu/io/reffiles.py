"""Reference files for one segment: overrides, CRDS look-up, subarray cut-outs, DQ_DEF remapping.

Files are read with astropy directly (memory-mapped; only the science subarray is copied out),
but the result equals what jwst 3.0 gets when it opens the same file through the stdatamodels
model of that type and cuts it with ``jwst/lib/reffile_utils.py``:

- extensions and dtypes follow the stdatamodels schemas (``mask``, ``saturation``,
  ``superbias``, ``linearity``, ``dark`` (``darkMIRI`` for MIRI: 4-D), ``gain``,
  ``readnoise``, ``reset``): float32 data, uint32 DQ; the MIRI ``rscd`` table and ``emicorr``
  ASDF file are read by :mod:`tsogpu.io.miri_references`;
- a missing DQ (or superbias ERR) becomes zeros, as the models' schema defaults do;
- DQ is translated to standard bits through the file's DQ_DEF table
  (``stdatamodels.dynamicdq.dynamic_mask`` semantics, via :func:`tsogpu.dq.remap`);
- the cut-out follows ``ref_matches_sci`` / ``get_subarray_model``
  (:mod:`tsogpu.io.subarrays`); darks and resets are never cut (jwst requires them taken with
  the science subarray).

Every problem is a :class:`~tsogpu.errors.ReferenceFileError` whose message names the
reference type, the file and what did not match.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from .. import dq as dqflags
from ..config import REFTYPES, required_reftypes
from ..errors import ReferenceFileError
from . import crds_lookup, miri_references, subarrays

log = logging.getLogger(__name__)

# Types whose jwst step accepts the reference "N/A" and is then skipped (dq_init, saturation,
# superbias, linearity, dark_current; MIRI reset, rscd, emicorr). gain and readnoise are read by
# jump and ramp_fit, which fail without them, so Detector1 can never run with either set to N/A.
NA_ALLOWED = frozenset(
    {"mask", "saturation", "superbias", "linearity", "dark", "reset", "rscd", "emicorr"}
)

# Primary-header keywords copied into Reference.header when present.
HEADER_KEYWORDS = (
    "REFTYPE",
    "INSTRUME",
    "DETECTOR",
    "SUBARRAY",
    "SUBSTRT1",
    "SUBSTRT2",
    "SUBSIZE1",
    "SUBSIZE2",
    "FASTAXIS",
    "SLOWAXIS",
    "READPATT",
    "NOUTPUTS",
    "NINTS",
    "NFRAMES",
    "NGROUPS",
    "GROUPGAP",
    "AVDRKCUR",
    "GAINFACT",
    "BUNIT",
)
# Keywords jwst's dark_current reads from the dark (stcal DarkData: exp_nframes, exp_groupgap).
DARK_REQUIRED_KEYWORDS = ("NFRAMES", "GROUPGAP")

# DETECTOR / INSTRUME values that do not name one detector; not compared with the science.
_WILDCARDS = ("", "ANY", "MULTIPLE", "N/A", "NONE")


@dataclass(frozen=True)
class _Array:
    """One array of a reference model, as its stdatamodels schema declares it."""

    key: str  # model attribute, and key in Reference.arrays
    extname: str  # fits_hdu in the schema
    dtype: type
    ndim: int
    required: bool = False  # the primary array: the file is unusable without it
    zeros_if_missing: bool = False  # schema default applied by DefaultDQMixin / DefaultErrMixin


# Order matters: the primary array comes first.
LAYOUTS = {
    "mask": (_Array("dq", "DQ", np.uint32, 2, required=True),),
    "saturation": (
        _Array("data", "SCI", np.float32, 2, required=True),
        _Array("dq", "DQ", np.uint32, 2, zeros_if_missing=True),
    ),
    "superbias": (
        _Array("data", "SCI", np.float32, 2, required=True),
        _Array("err", "ERR", np.float32, 2, zeros_if_missing=True),
        _Array("dq", "DQ", np.uint32, 2, zeros_if_missing=True),
    ),
    "linearity": (
        _Array("coeffs", "COEFFS", np.float32, 3, required=True),
        _Array("inv_coeffs", "INV_COEFFS", np.float32, 3),
        _Array("dq", "DQ", np.uint32, 2, zeros_if_missing=True),
    ),
    "dark": (
        _Array("data", "SCI", np.float32, 3, required=True),
        _Array("dq", "DQ", np.uint32, 2, zeros_if_missing=True),
        _Array("err", "ERR", np.float32, 3),
        _Array("average_dark_current", "AVDRKCUR", np.float32, 2),
    ),
    "gain": (_Array("data", "SCI", np.float32, 2, required=True),),
    "readnoise": (_Array("data", "SCI", np.float32, 2, required=True),),
    "reset": (  # MIRI only
        _Array("data", "SCI", np.float32, 4, required=True),
        _Array("dq", "DQ", np.uint32, 2, zeros_if_missing=True),
        _Array("err", "ERR", np.float32, 4),
    ),
}
# jwst opens a MIRI exposure's dark as a DarkMIRIModel: per-integration planes, 4-D DQ.
MIRI_DARK = (
    _Array("data", "SCI", np.float32, 4, required=True),
    _Array("dq", "DQ", np.uint32, 4, zeros_if_missing=True),
    _Array("err", "ERR", np.float32, 4),
    _Array("average_dark_current", "AVDRKCUR", np.float32, 2),
)
# Models whose schema has a DQ_DEF table (DefaultDQMixin remaps their DQ on opening).
HAS_DQ_DEF = frozenset({"mask", "saturation", "superbias", "linearity", "dark", "reset"})
# Every type this module reads.
READABLE = frozenset(LAYOUTS) | miri_references.TYPES


@dataclass(frozen=True)
class Reference:
    """One reference file, read and cut to the science subarray.

    Attributes
    ----------
    reftype : str
        jwst reference type: mask, saturation, superbias, linearity, dark, gain, readnoise;
        for MIRI also reset, rscd, emicorr.
    path : str
        Local file path.
    name : str
        The provenance name (R_* keyword): ``crds://<basename>`` for a CRDS file, else the
        path as given.
    arrays : dict of str to ndarray
        New arrays (never views of the file), cut to the science subarray ``(ny, nx)``:
        mask ``dq`` uint32 (ny, nx); saturation ``data`` float32, ``dq`` uint32;
        superbias ``data``, ``err`` float32, ``dq`` uint32; linearity ``coeffs`` float32
        (ncoeffs, ny, nx), ``inv_coeffs`` (when the file has it), ``dq`` uint32;
        dark ``data`` float32 (ngroups, ny, nx), ``dq`` uint32, ``err`` and
        ``average_dark_current`` float32 (ny, nx) when the file has them; a MIRI dark
        ``data`` float32 (nints, ngroups, ny, nx) and ``dq`` uint32 4-D as stored (usually
        (nints, 1, ny, nx)), ``err`` 4-D, ``average_dark_current``; MIRI reset ``data``
        float32 (NINTS, NGROUPS, ny, nx) with NaN set to 0, ``dq`` uint32 (ny, nx), ``err``;
        rscd ``table`` (:func:`tsogpu.io.miri_references.read_rscd`); emicorr the phase
        amplitudes of each frequency to correct, by name
        (:func:`tsogpu.io.miri_references.read_emicorr`); gain and readnoise ``data``
        float32. Every ``dq`` is remapped to standard bits.
    header : dict
        The primary-header keywords of :data:`HEADER_KEYWORDS` that the file has (emicorr:
        from its ASDF ``meta``).
    param : dict
        What jwst derives from the file for this exposure: rscd ``skip_int1``, ``skip_int2p``
        (empty: no row for READPATT + SUBARRAY, the step is skipped); emicorr ``subname``,
        ``rowclocks``, ``frameclocks``, ``frequency_names``, ``frequencies``. Empty otherwise.
    """

    reftype: str
    path: str
    name: str
    arrays: dict
    header: dict
    param: dict = field(default_factory=dict)


def load_reference(reftype, path, exposure, *, name=None):
    """Read a reference file and cut it to the science subarray of ``exposure``.

    Parameters
    ----------
    reftype : str
        One of :data:`tsogpu.config.REFTYPES`.
    path : str or os.PathLike
        The FITS file. It is opened read-only and never modified.
    exposure : tsogpu.segment.Exposure
        The science exposure (DETECTOR, INSTRUME, SUBSTRT*/SUBSIZE*).
    name : str, optional
        Provenance name; defaults to ``str(path)``.

    Returns
    -------
    Reference

    Raises
    ------
    ReferenceFileError
        File missing or unreadable, required extension missing, wrong REFTYPE, DETECTOR or
        INSTRUME, wrong dimensionality or shape, or subarray not contained in the reference.
    """
    if reftype not in READABLE:
        raise ReferenceFileError(
            f"unknown reference type {reftype!r} for {path}; types are {', '.join(REFTYPES)}"
        )
    path = os.fspath(path)
    where = f"{reftype} reference file {path}"
    if not os.path.exists(path):
        raise ReferenceFileError(f"{where}: file not found (give it with --ref {reftype}=PATH)")
    if not os.path.isfile(path):
        raise ReferenceFileError(f"{where}: not a regular file")
    if reftype == "emicorr":  # an ASDF file
        header, arrays, param = miri_references.read_emicorr(path, where, exposure)
        _check_identity(header, reftype, where, exposure)
        return Reference(reftype, path, path if name is None else name, arrays, header, param)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # memmap left to astropy: it maps unscaled arrays and reads scaled (BZERO) ones.
            hdul = fits.open(path, mode="readonly", lazy_load_hdus=False)
    except Exception as exc:  # astropy raises OSError, ValueError, ... for non-FITS input
        raise ReferenceFileError(f"{where}: not a readable FITS file ({exc})") from None
    with hdul:
        # astropy only warns about a short file, and silently drops an HDU whose header is cut.
        damaged = []
        for w in caught:
            text = str(w.message)
            if "truncated" in text or "Error validating header" in text:
                damaged.append(text)
            else:  # pass other astropy warnings on, tagged with the file
                warnings.warn(f"{where}: {text}", type(w.message), stacklevel=2)
        if damaged:
            raise ReferenceFileError(
                f"{where}: file is truncated or corrupt ({damaged[0].splitlines()[0]})"
            )
        try:
            header = _header_keywords(hdul[0].header)
            _check_identity(header, reftype, where, exposure)
            if reftype == "dark":
                _check_dark_keywords(header, where)
            param = {}
            if reftype == "rscd":
                arrays, param = miri_references.read_rscd(hdul, where, exposure)
            else:
                arrays = _read_arrays(hdul, reftype, where, header, exposure)
            if reftype == "reset":
                arrays = miri_references.check_reset(header, arrays, where)
            if reftype == "gain":
                _warn_bad_gain(arrays["data"], where)
        except ReferenceFileError:
            raise
        except Exception as exc:  # corrupt data or header: name the file, keep the cause
            raise ReferenceFileError(f"{where}: cannot read the file ({exc})") from exc
    return Reference(
        reftype=reftype,
        path=path,
        name=path if name is None else name,
        arrays=arrays,
        header=header,
        param=param,
    )


def resolve_references(exposure, reftypes, overrides, *, header=None):
    """Choose the file of each reference type: the override if given, else CRDS.

    Parameters
    ----------
    exposure : tsogpu.segment.Exposure
    reftypes : iterable of str
        Types the run needs.
    overrides : dict of str to str, or None
        ``--ref TYPE=PATH`` values; ``"N/A"`` runs without the file where jwst allows it
        (:data:`NA_ALLOWED`).
    header : dict, optional
        The uncal primary header, for the CRDS parameters.

    Returns
    -------
    dict of str to str
        reftype -> local path, or ``"N/A"``.
    """
    paths, _names, _context = _resolve(exposure, reftypes, overrides, header)
    return paths


def load_references(exposure, reftypes, overrides, *, header=None):
    """Resolve and read every reference type a run needs.

    Returns
    -------
    refs : dict of str to Reference or None
        None for a type resolved to ``"N/A"`` (the step is skipped, as in jwst).
    context : str or None
        The CRDS context used, or None when every file came from an override.
    """
    paths, names, context = _resolve(exposure, reftypes, overrides, header)
    refs = {
        t: None if p == "N/A" else _load_cached(t, p, exposure, names[t]) for t, p in paths.items()
    }
    return refs, context


def segment_references(uncal_path, config, *, reftypes=None):
    """Every reference file a segment's run needs, read: ``(refs, context)`` as
    :func:`load_references` gives them, for the steps ``config`` runs (or ``reftypes``), with
    ``config.refs`` as overrides and the uncal file's own header for CRDS."""
    from .uncal import read_exposure, read_primary_header

    header = read_primary_header(uncal_path)
    exposure = read_exposure(header, uncal_path)
    reftypes = required_reftypes(config, exposure.instrument) if reftypes is None else reftypes
    return load_references(exposure, reftypes, config.refs, header=header)


_CACHE = {}  # key -> Reference: the references of the last exposures run in this process
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


def _load_cached(reftype, path, exposure, name):
    """``load_reference``, kept for the next segment of the exposure: one read per process.

    The key is the file's identity (path, size, modification time) and the subarray it is cut
    to; the arrays are made read-only, so no step can change what the next segment reads.
    """
    try:
        st = os.stat(path)
    except OSError:
        return load_reference(reftype, path, exposure, name=name)  # its error names the file
    key = (reftype, os.path.realpath(path), st.st_size, st.st_mtime_ns, name, exposure.instrument,
           exposure.detector, exposure.subarray, exposure.substrt1, exposure.substrt2,
           exposure.subsize1, exposure.subsize2)  # fmt: skip
    with _CACHE_LOCK:
        ref = _CACHE.get(key)
    if ref is None:
        ref = load_reference(reftype, path, exposure, name=name)
        for a in ref.arrays.values():
            a.flags.writeable = False
        with _CACHE_LOCK:
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = ref
    return ref


# ---------------------------------------------------------------------------------------------
# Reading


def _warn_bad_gain(gain, where):
    """A gain of NaN or 0 is used as jwst uses it; the count of such pixels is logged."""
    bad = int(np.count_nonzero(~np.isfinite(gain) | (gain == 0)))
    if bad:
        log.warning(
            "%s: %d of %d pixel(s) have a gain of NaN, inf or 0; used as they are, as jwst does",
            where,
            bad,
            gain.size,
        )


def _header_keywords(primary):
    return {k: primary[k] for k in HEADER_KEYWORDS if k in primary and _is_value(primary[k])}


def _is_value(value):
    return isinstance(value, (str, int, float, bool)) and not (
        isinstance(value, str) and value.strip() == ""
    )


def _check_identity(header, reftype, where, exposure):
    """REFTYPE, INSTRUME and DETECTOR must agree with what is asked for."""
    ref_type = str(header.get("REFTYPE", "")).strip().lower()
    if ref_type and ref_type != reftype:
        raise ReferenceFileError(
            f"{where}: the file is a {ref_type!r} reference (REFTYPE={header['REFTYPE']!r}), "
            f"not {reftype!r}"
        )
    for key, sci in (("INSTRUME", exposure.instrument), ("DETECTOR", exposure.detector)):
        ref = str(header.get(key, "")).strip().upper()
        if ref not in _WILDCARDS and ref != str(sci).strip().upper():
            raise ReferenceFileError(
                f"{where}: {key}={header[key]!r} but the science exposure has {key}={sci!r}"
            )


def _check_dark_keywords(header, where):
    missing = [k for k in DARK_REQUIRED_KEYWORDS if k not in header]
    if missing:
        raise ReferenceFileError(
            f"{where}: missing primary-header keyword(s) {', '.join(missing)} "
            "(jwst dark_current needs the dark's frames per group and group gap)"
        )


def _hdu_shape(hdul, extname):
    """Shape of extension ``extname`` from its header, or None when absent or empty."""
    if extname not in hdul:
        return None
    shape = tuple(hdul[extname].shape)
    return shape if shape else None


def _read_arrays(hdul, reftype, where, header, exposure):
    miri = str(exposure.instrument).strip().upper() == "MIRI"
    layout = MIRI_DARK if reftype == "dark" and miri else LAYOUTS[reftype]
    primary = layout[0]
    shapes = {a.key: _hdu_shape(hdul, a.extname) for a in layout}

    pshape = shapes[primary.key]
    if pshape is None:
        raise ReferenceFileError(
            f"{where}: missing required extension {primary.extname} "
            f"(extensions present: {', '.join(h.name for h in hdul)})"
        )
    if reftype == "dark" and len(pshape) == 4 and not miri:
        raise ReferenceFileError(
            f"{where}: SCI is 4-D {pshape}, a MIRI dark (nints, ngroups, ny, nx), but the "
            f"science is {exposure.instrument}: near-infrared darks are 3-D (ngroups, ny, nx)"
        )
    for arr in layout:
        shape = shapes[arr.key]
        if shape is None:
            continue
        if len(shape) != arr.ndim:
            raise ReferenceFileError(
                f"{where}: extension {arr.extname} is {len(shape)}-D {shape}, expected {arr.ndim}-D"
            )
        if shape[-2:] != pshape[-2:]:
            raise ReferenceFileError(
                f"{where}: extension {arr.extname} has shape {shape}, which does not match "
                f"{primary.extname} {pshape} in (ny, nx)"
            )
        if arr.key == "err" and shape != pshape:
            raise ReferenceFileError(
                f"{where}: extension ERR has shape {shape}, expected {pshape} like SCI"
            )

    if layout is MIRI_DARK and shapes["dq"] is not None and shapes["dq"][0] < pshape[0]:
        raise ReferenceFileError(
            f"{where}: DQ {shapes['dq']} has fewer integrations than SCI {pshape} "
            "(stcal ORs the DQ of every dark integration)"
        )
    if reftype in ("dark", "reset"):
        window = subarrays.uncut_window(header, pshape, where, exposure, kind=reftype)
    else:
        window = subarrays.cutout_window(header, pshape, where, exposure)

    dq_def = _read_dq_def(hdul, where) if reftype in HAS_DQ_DEF else None
    out_yx = (
        tuple(pshape[-2:]) if window is None else (window[1] - window[0], window[3] - window[2])
    )
    arrays = {}
    for arr in layout:
        if shapes[arr.key] is None:
            if arr.zeros_if_missing:
                # The schema default takes the primary's trailing ``ndim`` axes (the models
                # give linearity, whose DQ has no ndim, a 3-D DQ; 2-D is what the step uses).
                lead = tuple(pshape[: len(pshape) - 2])[len(pshape) - arr.ndim :]
                arrays[arr.key] = np.zeros(lead + out_yx, dtype=arr.dtype)
            continue
        # Slice the memory map first so only the subarray is read, then cast (a copy).
        data = subarrays.cut(hdul[arr.extname].data, window).astype(arr.dtype)
        if arr.key == "dq" and reftype in HAS_DQ_DEF:
            data = dqflags.remap(data, dq_def)
        arrays[arr.key] = data
    return arrays


def _read_dq_def(hdul, where):
    """(VALUE, NAME) rows of DQ_DEF, or None when there is no (or an empty) table.

    ``dynamic_mask`` leaves the DQ untouched when the table is missing or empty.
    """
    if "DQ_DEF" not in hdul:
        return None
    table = hdul["DQ_DEF"].data
    if table is None or len(table) == 0:
        return None
    names = {n.upper(): n for n in table.columns.names}
    if "VALUE" not in names or "NAME" not in names:
        raise ReferenceFileError(
            f"{where}: DQ_DEF table lacks a VALUE or NAME column (columns: "
            f"{', '.join(table.columns.names)})"
        )
    # The schema declares VALUE uint32; a signed int32 column wraps as stdatamodels' cast does.
    values = np.asarray(table[names["VALUE"]]).astype(np.uint32)
    return [(int(v), str(n)) for v, n in zip(values, table[names["NAME"]], strict=True)]


# ---------------------------------------------------------------------------------------------
# Choosing files: overrides, then CRDS


def _resolve(exposure, reftypes, overrides, header):
    """(paths, provenance names, CRDS context or None) for ``reftypes``."""
    overrides = dict(overrides or {})
    paths, names, missing = {}, {}, []
    for reftype in reftypes:
        if reftype not in READABLE:
            raise ReferenceFileError(
                f"unknown reference type {reftype!r}; types are {', '.join(REFTYPES)}"
            )
        value = overrides.get(reftype)
        if value is None:
            missing.append(reftype)
            continue
        value = os.fspath(value).strip()
        if value.upper() == "N/A":
            if reftype not in NA_ALLOWED:
                raise ReferenceFileError(
                    f"--ref {reftype}=N/A: a {reftype} reference is required (jump and "
                    f"ramp_fit cannot run without one); N/A is allowed only for "
                    f"{', '.join(sorted(NA_ALLOWED))}"
                )
            paths[reftype] = names[reftype] = "N/A"
        elif not value:
            raise ReferenceFileError(f"--ref {reftype}=: empty path for the {reftype} reference")
        else:
            paths[reftype] = value
            names[reftype] = os.path.abspath(value)  # as stpipe records an override
    if not missing:
        return paths, names, None

    if not crds_lookup.configured():
        raise ReferenceFileError(
            f"no reference file for {', '.join(missing)}: give each with --ref TYPE=PATH "
            f"(e.g. --ref {missing[0]}=/path/to/jwst_{missing[0]}.fits), or set CRDS_PATH "
            "(and CRDS_SERVER_URL) so that CRDS can choose them"
        )
    found, context = crds_lookup.lookup(exposure, missing, header)
    for reftype in missing:
        path = found.get(reftype)
        if path is None or "N/A" in str(path).upper():
            if reftype not in NA_ALLOWED:
                raise ReferenceFileError(
                    f"CRDS context {context} has no {reftype} reference for this exposure "
                    f"(got {path!r}); give one with --ref {reftype}=PATH"
                )
            paths[reftype] = names[reftype] = "N/A"
        else:
            paths[reftype] = str(path)
            names[reftype] = "crds://" + os.path.basename(str(path))
    return paths, names, context
