"""The ``_rateints`` products of an exposure's segments, read and checked to be one exposure.

Segments may come in any order and from different machines (``tsogpu batch``): they are
grouped as :func:`tsogpu.batch.group_exposures` groups uncal files (the archive's exposure
name from the primary header, EXSEGNUM, EXSEGTOT), then ordered by INTSTART, and must cover
integrations 1..NINTS once each, with the same frame and readout. The side products
``_oneoverf.fits`` and ``_biasscale.fits`` are read from beside each ``_rateints.fits`` when
they are there (:data:`tsogpu.io.products.PRODUCT_KINDS`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..algorithms.dq_init import flagged_groups
from ..algorithms.ramp_fit import group_range
from ..errors import InputError
from ..segment import REMOVED

# the keywords every segment of one exposure shares
SAME_KEYWORDS = (
    "INSTRUME",
    "DETECTOR",
    "EXP_TYPE",
    "READPATT",
    "NINTS",
    "NGROUPS",
    "NFRAMES",
    "GROUPGAP",
    "TFRAME",
    "TGROUP",
    "SUBARRAY",
    "SUBSTRT1",
    "SUBSTRT2",
    "SUBSIZE1",
    "SUBSIZE2",
    "FASTAXIS",
    "SLOWAXIS",
    "NOUTPUTS",
    "EXSEGTOT",
)
# the side products read, and the extensions taken from each (see PRODUCT_KINDS)
SIDE_PRODUCTS = {
    "oneoverf": ("LINES", "OFFSETS"),
    "biasscale": ("APPLIED", "MEASURED"),
    "removed": tuple(step.upper() for step in REMOVED),
}
# TSOPARS entries that say how a segment was run, not how it was calibrated
RUN_OPTIONS = ("backend", "threads", "max_memory", "save_ramp", "ref")
RATEINTS_NAME = re.compile(r"_rateints\.fits(\.gz)?$", re.I)


@dataclass
class SegmentProducts:
    """One segment's ``_rateints`` product and its side products, as arrays.

    Attributes
    ----------
    path : Path of the ``_rateints.fits`` file
    exposure : tsogpu.segment.Exposure, its keywords (INTSTART, INTEND filled in)
    header : dict, the primary header's cards (COMMENT, HISTORY and blank left out)
    data, err : float32 (nints, ny, nx), DN/s
    dq : uint32 (nints, ny, nx)
    int_times : structured ndarray (nints,), the INT_TIMES rows of these integrations
    side : dict, side-product suffix -> {extension name: array}; a product absent: no entry
    side_files : list of Path, the side products read
    chi2 : float32 (nints, ny, nx), the CHI2 extension (``ramp_fit.goodness_of_fit``), or None
    """

    path: Path
    exposure: object
    header: dict
    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    int_times: np.ndarray
    side: dict
    side_files: list
    chi2: np.ndarray | None = None

    @property
    def nints(self):
        return self.data.shape[0]

    @property
    def parameters(self):
        """TSOPARS as a dict ({} where the product has none: not made by tsogpu)."""
        text = self.header.get("TSOPARS")
        if not text:
            return {}
        try:
            return json.loads(text)
        except ValueError:
            raise InputError(f"{self.path}: TSOPARS is not JSON") from None


def read_exposure_segments(rateints_paths):
    """Read the ``_rateints`` products of one exposure's segments, in integration order.

    Parameters
    ----------
    rateints_paths : sequence of str or Path, in any order

    Returns
    -------
    name : str
        The exposure's name as the archive gives it (``jw..._<detector>``).
    segments : list of SegmentProducts
        Ordered by INTSTART; together they hold integrations 1..NINTS, each once.

    Raises
    ------
    InputError
        A file missing or unreadable, given twice, of another exposure, with another frame or
        readout, a segment missing or repeated, integrations that do not follow on, segments
        calibrated with other parameters or reference files. The message names the file.
    """
    from ..batch import group_exposures

    paths = [Path(p).absolute() for p in rateints_paths]
    if not paths:
        raise InputError("no _rateints files given")
    seen = {}
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        if path.name in seen:
            raise InputError(f"{seen[path.name]} and {path}: the same segment given twice")
        seen[path.name] = path
    _, exposures, _ = group_exposures(paths)
    if len(exposures) > 1:
        listed = "; ".join(
            f"{exp.key}: {', '.join(p.name for p in exp.paths())}" for exp in exposures
        )
        raise InputError(f"the files are not the segments of one exposure ({listed})")
    name = exposures[0].key
    segments = [_read_segment(path) for path in paths]
    _check_same_exposure(segments)
    segments.sort(key=lambda s: s.exposure.intstart)
    _check_coverage(name, segments)
    _check_same_calibration(segments)
    return name, segments


def _read_segment(path):
    from astropy.io import fits

    from ..io.uncal import read_exposure

    try:
        with fits.open(path, memmap=False) as hdul:
            header = {
                k: v for k, v in hdul[0].header.items() if k not in ("COMMENT", "HISTORY", "")
            }
            names = [h.name for h in hdul]
            missing = [n for n in ("SCI", "ERR", "DQ", "INT_TIMES") if n not in names]
            if missing:
                raise InputError(
                    f"{path}: no {', '.join(missing)} extension: not a _rateints product "
                    "(INT_TIMES gives the time axis)"
                )
            data = np.asarray(hdul["SCI"].data, np.float32)
            err = np.asarray(hdul["ERR"].data, np.float32)
            dq = np.asarray(hdul["DQ"].data).astype(np.uint32)
            int_times = np.asarray(hdul["INT_TIMES"].data).copy()
            chi2 = np.asarray(hdul["CHI2"].data, np.float32) if "CHI2" in names else None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: not a readable FITS file ({exc})") from None
    exposure = read_exposure(header, path)
    if data.ndim != 3 or err.shape != data.shape or dq.shape != data.shape:
        raise InputError(
            f"{path}: SCI, ERR and DQ must be (nints, ny, nx) alike, got {data.shape}, "
            f"{err.shape}, {dq.shape}"
        )
    if chi2 is not None and chi2.shape != data.shape:
        raise InputError(f"{path}: CHI2 is {chi2.shape}, SCI {data.shape}; expected alike")
    if data.shape[1:] != (exposure.subsize2, exposure.subsize1):
        raise InputError(
            f"{path}: frames of {data.shape[1]} x {data.shape[2]} pixels, but SUBSIZE2 x "
            f"SUBSIZE1 = {exposure.subsize2} x {exposure.subsize1}"
        )
    start = exposure.intstart or 1
    end = exposure.intend or (start + data.shape[0] - 1)
    if end - start + 1 != data.shape[0]:
        raise InputError(
            f"{path}: INTSTART..INTEND = {start}..{end} is {end - start + 1} integrations, "
            f"but SCI holds {data.shape[0]}"
        )
    exposure = _with_range(exposure, start, end)
    segment = SegmentProducts(
        path=path,
        exposure=exposure,
        header=header,
        data=data,
        err=err,
        dq=dq,
        int_times=_int_times_rows(path, int_times, start, end),
        side={},
        side_files=[],
        chi2=chi2,
    )
    _read_side_products(segment)
    return segment


def _with_range(exposure, start, end):
    from dataclasses import replace

    return replace(exposure, intstart=start, intend=end)


def _int_times_rows(path, table, start, end):
    """The INT_TIMES rows of integrations start..end (a table may hold the whole exposure)."""
    need = ("integration_number", "int_start_MJD_UTC", "int_mid_MJD_UTC")
    names = table.dtype.names or ()
    absent = [n for n in need if n not in names]
    if absent:
        raise InputError(f"{path}: INT_TIMES has no column {', '.join(absent)}")
    numbers = np.asarray(table["integration_number"])
    rows = []
    for k in range(start, end + 1):
        at = np.flatnonzero(numbers == k)
        if at.size == 0:
            raise InputError(f"{path}: INT_TIMES has no row for integration {k}")
        rows.append(at[0])
    return table[np.array(rows)]


def _read_side_products(segment):
    from astropy.io import fits

    from ..io.products import PRODUCT_KINDS

    if not RATEINTS_NAME.search(segment.path.name):
        return
    for suffix, extensions in SIDE_PRODUCTS.items():
        assert set(extensions) <= set(PRODUCT_KINDS[suffix].extensions)
        path = segment.path.with_name(RATEINTS_NAME.sub(f"_{suffix}.fits", segment.path.name))
        if not path.is_file():
            continue
        try:
            with fits.open(path, memmap=False) as hdul:
                intstart = hdul[0].header.get("INTSTART")
                arrays = {
                    ext: np.asarray(hdul[ext].data, np.float32)
                    for ext in extensions
                    if ext in hdul and hdul[ext].data is not None
                }
        except Exception as exc:
            raise InputError(f"{path}: not a readable FITS file ({exc})") from None
        if intstart != segment.exposure.intstart or any(
            a.shape[0] != segment.nints for a in arrays.values()
        ):
            raise InputError(
                f"{path}: INTSTART {intstart} and {[a.shape[0] for a in arrays.values()]} "
                f"integrations do not match {segment.path.name} (INTSTART "
                f"{segment.exposure.intstart}, {segment.nints} integrations): a stale side product"
            )
        segment.side[suffix] = arrays
        segment.side_files.append(path)


def _check_same_exposure(segments):
    first = segments[0]
    for seg in segments[1:]:
        for key in SAME_KEYWORDS:
            a, b = first.header.get(key), seg.header.get(key)
            if a != b:
                raise InputError(
                    f"{seg.path}: {key} = {b!r}, but {first.path.name} has {a!r}: not a segment "
                    "of the same exposure"
                )


def _check_coverage(name, segments):
    """Integrations 1..NINTS, each once, segment after segment."""
    nints = segments[0].exposure.nints
    expected = 1
    previous = None
    for seg in segments:
        start, end = seg.exposure.intstart, seg.exposure.intend
        if start < expected:
            raise InputError(
                f"{seg.path}: integrations {start}..{end} overlap those of {previous.path.name} "
                f"({previous.exposure.intstart}..{previous.exposure.intend}): a segment given "
                "twice?"
            )
        if start > expected:
            where = f"after {previous.path.name}" if previous else "before the first file"
            raise InputError(
                f"exposure {name}: integrations {expected}..{start - 1} are missing ({where}, "
                f"{seg.path.name} starts at INTSTART {start}): a segment is not among the inputs"
            )
        expected, previous = end + 1, seg
    if expected != nints + 1:
        raise InputError(
            f"exposure {name}: integrations {expected}..{nints} of NINTS = {nints} are missing "
            f"(the last file given, {previous.path.name}, ends at INTEND {expected - 1})"
        )
    mid = np.concatenate([s.int_times["int_mid_MJD_UTC"] for s in segments]).astype(np.float64)
    if not np.all(np.diff(mid) > 0):
        at = int(np.argmin(np.diff(mid)))
        raise InputError(
            f"exposure {name}: INT_TIMES int_mid_MJD_UTC does not increase at integration {at + 2}"
        )


def calibration_parameters(segment):
    """What calibrated a segment, to compare segments: the step parameters (TSOPARS less the
    run options) and the reference files' names (R_* cards, folders left out)."""
    params = {k: v for k, v in segment.parameters.items() if k not in RUN_OPTIONS}
    refs = {
        k: Path(str(v)).name for k, v in segment.header.items() if k.startswith("R_") and v != "N/A"
    }
    return params, refs


def _check_same_calibration(segments):
    first_params, first_refs = calibration_parameters(segments[0])
    for seg in segments[1:]:
        params, refs = calibration_parameters(seg)
        for what, a, b in (
            ("parameters", first_params, params),
            ("reference files", first_refs, refs),
        ):
            differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if differ:
                raise InputError(
                    f"{seg.path}: calibrated with other {what} than {segments[0].path.name} "
                    f"({', '.join(differ)} differ); one light curve needs one calibration"
                )


def usable_groups(segment):
    """The groups of each integration that every pixel may use, int.

    NGROUPS less the groups ``dq_init.flag_first``/``flag_last``/``flag_groups`` mark
    DO_NOT_USE and those outside ``ramp_fit.firstgroup``..``lastgroup`` (as the segment's
    TSOPARS gives them; a product without TSOPARS used every group). A pixel's own saturated
    or jump-flagged groups are not counted out: the ``_rateints`` product keeps no group flags.
    """
    ngroups = int(segment.exposure.ngroups)
    params = segment.parameters
    skip = set(params.get("skip", ()))
    usable = np.ones(ngroups, dtype=bool)
    init = params.get("dq_init", {})
    if "dq_init" not in skip and init:
        usable &= ~flagged_groups(
            ngroups,
            int(init.get("flag_first", 0)),
            int(init.get("flag_last", 0)),
            tuple(int(g) for g in init.get("flag_groups", ())),
        )
    fit = params.get("ramp_fit", {})
    first, last = group_range(ngroups, fit.get("firstgroup"), fit.get("lastgroup"))
    usable[:first] = False
    usable[last + 1 :] = False
    return int(usable.sum())
