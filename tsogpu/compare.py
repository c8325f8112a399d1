"""Compare two Stage-1 products of the same exposure: the start of a harness between pipelines.

Two ``_rateints`` cubes (nints, ny, nx) or two ``_rate`` images (ny, nx): tsogpu against jwst,
two backends, two parameter sets, or another pipeline's rateints (any FITS file with SCI, ERR
and DQ extensions, and optionally VAR_POISSON and VAR_RNOISE). Reported:

- each float extension: the relative difference ``|a - b| / max(|a|, |b|)`` (0 where both are
  0; at most 2, when the signs differ) over the pixels finite in both, its maximum (and
  where), its median, how many exceed ``rtol``, the fraction exactly equal; and the NaN
  agreement: how many pixels are NaN (or infinite) in A only, in B only, in both;
- DQ bit by bit (names from ``tsogpu.dq``): set in both, in A only, in B only;
- the white light over time: per integration, the sum of A over the pixels good in both
  (finite, no DO_NOT_USE in either DQ) divided by the same sum of B.

Two products are *within* ``rtol`` when every float extension's maximum relative difference
is at most ``rtol``, no pixel is NaN in one and not in the other, and DQ is equal bit for bit.
The white-light ratio is reported, not tested: a sum of values of both signs can cancel.

The figure (:func:`compare_figure`) needs matplotlib (``pip install 'tsogpu[plots]'``); the
comparison itself needs NumPy and astropy only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import dq
from .errors import InputError
from .io.atomic import write_atomically

log = logging.getLogger(__name__)

FLOAT_EXTENSIONS = ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE")
DQ_EXTENSION = "DQ"
REQUIRED_EXTENSIONS = ("SCI", "ERR", "DQ")
# primary-header keywords that name an exposure's segment: a difference means two exposures
EXPOSURE_KEYWORDS = ("OBS_ID", "EXPOSURE", "DETECTOR", "EXSEGNUM", "INTSTART", "INTEND")
# log10 of the relative difference: the histogram's bin edges (exact zeros counted apart)
HISTOGRAM_EDGES = np.arange(-17.0, 0.5, 0.25)

# ``tsogpu compare --help`` (tsogpu.cli): what is compared and the exit codes, kept beside
# the code that decides them
COMMAND_HELP = """\
Compare two products of the same exposure: two _rateints cubes (or two _rate images) from
tsogpu and jwst, two backends, two parameter sets, or another pipeline's rateints with SCI,
ERR, DQ (and VAR_POISSON, VAR_RNOISE). For each float extension, over the pixels finite in
both: the largest and median relative difference |A-B|/max(|A|,|B|) (0 where both are 0),
the pixels beyond --rtol, the fraction exactly equal, and the pixels NaN in A only, in B only
and in both. DQ bit by bit: set in both, in A only, in B only. The white light (the sum over
the pixels good in both, no DO_NOT_USE) of A over B per integration. A warning when the
headers name different exposures or segments (OBS_ID, EXSEGNUM, INTSTART, ...).

Exit codes: 0 within --rtol (every extension's largest relative difference at most R, the
same NaNs, DQ equal bit for bit); 1 not within (a result, not an error: the report says
why); 2 bad input (a missing or unreadable file, a missing extension, shapes that differ).
"""


@dataclass(frozen=True)
class FloatDifference:
    """How one float extension of A differs from B's.

    Attributes
    ----------
    name : str, the extension (SCI, ERR, VAR_POISSON, VAR_RNOISE).
    compared : int, pixels finite in both.
    max_rel, median_rel : float, of ``|a - b| / max(|a|, |b|)`` over those (0.0 if none).
    worst : tuple of int or None, the index of the maximum, (int, y, x) or (y, x).
    beyond : int, pixels whose relative difference exceeds the comparison's rtol.
    exact : int, pixels finite in both and equal.
    nan_only_a, nan_only_b, nan_both : int, pixels not finite in A only, B only, both.
    histogram : ndarray of int64 (len(HISTOGRAM_EDGES) + 1,), counts of log10 of the nonzero
        relative differences in HISTOGRAM_EDGES' bins, the first below its first edge and the
        last above its last.
    worst_map : ndarray of float32 (ny, nx), the largest relative difference of each pixel
        over the integrations (0 where never finite in both).
    """

    name: str
    compared: int
    max_rel: float
    median_rel: float
    worst: tuple | None
    beyond: int
    exact: int
    nan_only_a: int
    nan_only_b: int
    nan_both: int
    histogram: np.ndarray = field(repr=False)
    worst_map: np.ndarray = field(repr=False)

    @property
    def exact_fraction(self):
        """Exactly equal pixels over those compared (1.0 when none were compared)."""
        return self.exact / self.compared if self.compared else 1.0

    @property
    def nan_disagree(self):
        """Pixels NaN in one product and not in the other."""
        return self.nan_only_a + self.nan_only_b

    def within(self, rtol):
        """True when the maximum relative difference is at most ``rtol`` and NaNs agree."""
        return self.max_rel <= rtol and self.nan_disagree == 0


@dataclass(frozen=True)
class DqDifference:
    """DQ of A against B, bit by bit.

    Attributes
    ----------
    pixels : int, values compared (nints * ny * nx, or ny * nx).
    equal : int, values equal in every bit.
    bits : dict bit name -> (both, only_a, only_b), pixel counts, for each bit of
        ``tsogpu.dq.PIXEL`` set anywhere in either product, in bit order.
    """

    pixels: int
    equal: int
    bits: dict

    def within(self):
        """True when DQ is equal bit for bit."""
        return self.equal == self.pixels


@dataclass(frozen=True)
class WhiteLight:
    """The white light of A over that of B, per integration.

    Attributes
    ----------
    integrations : ndarray of int64 (nints,), 1-based exposure integration numbers (INTSTART
        of A onwards; a ``_rate`` image is one "integration").
    times : ndarray of float64 (nints,) or None, mid-integration BJD_TDB from A's INT_TIMES.
    ratio : ndarray of float64 (nints,), sum of A / sum of B over the pixels good in both;
        NaN where no pixel is good or B's sum is 0.
    good : ndarray of int64 (nints,), the pixels summed.
    """

    integrations: np.ndarray
    times: np.ndarray | None
    ratio: np.ndarray
    good: np.ndarray

    @property
    def max_deviation(self):
        """max |ratio - 1| over the integrations with a ratio (NaN if none)."""
        finite = np.isfinite(self.ratio)
        return float(np.max(np.abs(self.ratio[finite] - 1.0))) if finite.any() else float("nan")


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_products`.

    Attributes
    ----------
    path_a, path_b : str, the products.
    origin_a, origin_b : str, what made each (tsogpu version and backend, or jwst's CAL_VER).
    shape : tuple, SCI's shape, (nints, ny, nx) or (ny, nx).
    rtol : float, the tolerance ``beyond`` was counted at.
    floats : dict extension -> FloatDifference.
    dq : DqDifference or None, when DQ was not among the extensions compared.
    white_light : WhiteLight
    warnings : list of str, e.g. headers that name different exposures.
    """

    path_a: str
    path_b: str
    origin_a: str
    origin_b: str
    shape: tuple
    rtol: float
    floats: dict
    dq: DqDifference | None
    white_light: WhiteLight
    warnings: list

    def within(self, rtol=None):
        """True when every float extension is within ``rtol`` (default: the comparison's),
        NaNs agree and DQ is equal bit for bit."""
        rtol = self.rtol if rtol is None else rtol
        ok = all(f.within(rtol) for f in self.floats.values())
        return ok and (self.dq is None or self.dq.within())

    def failures(self, rtol=None):
        """One line per reason the products are not within ``rtol`` (empty when they are)."""
        rtol = self.rtol if rtol is None else rtol
        out = []
        for f in self.floats.values():
            if f.max_rel > rtol:
                out.append(f"{f.name}: max relative difference {f.max_rel:.3g} > {rtol:g}")
            if f.nan_disagree:
                out.append(f"{f.name}: {f.nan_disagree} pixel(s) NaN in one product only")
        if self.dq is not None and not self.dq.within():
            out.append(f"DQ: {self.dq.pixels - self.dq.equal} value(s) differ")
        return out


def compare_products(a, b, *, rtol=1e-5, extensions=None):
    """Compare two products of the same exposure, extension by extension.

    Parameters
    ----------
    a, b : str or Path, two ``_rateints`` (SCI (nints, ny, nx)) or two ``_rate`` (SCI (ny, nx))
        FITS files, each with SCI, ERR and DQ; VAR_POISSON and VAR_RNOISE are compared where
        both have them.
    rtol : float, the tolerance at which pixels are counted as ``beyond`` and that
        ``Comparison.within()`` uses by default.
    extensions : sequence of str or None, the extensions to compare (of SCI, ERR, DQ,
        VAR_POISSON, VAR_RNOISE); None: all those present in both. The white light always
        uses SCI and DQ.

    Returns
    -------
    Comparison

    Raises
    ------
    InputError
        A file is missing or not FITS, lacks SCI, ERR or DQ or an extension asked for, or its
        extensions' shapes differ from the other file's.
    """
    from .io.uncal import open_fits

    if not rtol >= 0:
        raise InputError(f"--rtol / rtol must be a number >= 0, got {rtol}")
    wanted = None if extensions is None else [e.strip().upper() for e in extensions]
    if wanted == []:
        raise InputError("extensions: none given; leave it None to compare all")
    unknown = sorted(set(wanted or ()) - {*FLOAT_EXTENSIONS, DQ_EXTENSION})
    if unknown:
        known = ", ".join((*FLOAT_EXTENSIONS, DQ_EXTENSION))
        raise InputError(f"unknown extension(s) {', '.join(unknown)}; expected some of {known}")
    with open_fits(a) as hdul_a, open_fits(b) as hdul_b:
        names_a, names_b = _check_product(hdul_a, a), _check_product(hdul_b, b)
        if wanted is None:
            wanted = [e for e in (*FLOAT_EXTENSIONS, DQ_EXTENSION) if e in names_a & names_b]
        for name in wanted:
            for names, path in ((names_a, a), (names_b, b)):
                if name not in names:
                    raise InputError(f"{path}: no {name} extension to compare")
        for name in dict.fromkeys(("SCI", *wanted, "DQ")):
            shape_a, shape_b = hdul_a[name].shape, hdul_b[name].shape
            if shape_a != shape_b:
                raise InputError(
                    f"{b}: {name} has shape {shape_b}, but {a}'s has {shape_a}; "
                    "compare products of the same kind and segment"
                )
        head_a, head_b = hdul_a[0].header, hdul_b[0].header
        notes = _exposure_warnings(head_a, head_b, a, b)
        for note in notes:
            log.warning("%s", note)
        floats = {
            name: float_difference(name, _float_data(hdul_a[name]), _float_data(hdul_b[name]), rtol)
            for name in wanted
            if name in FLOAT_EXTENSIONS
        }
        dq_a, dq_b = _dq_data(hdul_a["DQ"]), _dq_data(hdul_b["DQ"])
        dq_diff = dq_difference(dq_a, dq_b) if DQ_EXTENSION in wanted else None
        light = white_light(
            _float_data(hdul_a["SCI"]),
            _float_data(hdul_b["SCI"]),
            dq_a,
            dq_b,
            intstart=int(head_a.get("INTSTART") or 1),
            times=_mid_times(hdul_a),
        )
        return Comparison(
            path_a=os.fspath(a),
            path_b=os.fspath(b),
            origin_a=_origin(head_a),
            origin_b=_origin(head_b),
            shape=tuple(hdul_a["SCI"].shape),
            rtol=float(rtol),
            floats=floats,
            dq=dq_diff,
            white_light=light,
            warnings=notes,
        )


def float_difference(name, a, b, rtol):
    """Compare one float extension; ``a``, ``b`` float64 arrays of one shape, (nints, ny, nx)
    or (ny, nx). Returns a :class:`FloatDifference`."""
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    both = finite_a & finite_b
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.zeros(a.shape, np.float64)
    np.divide(np.abs(a - b), scale, out=rel, where=both & (scale > 0))
    values = rel[both]
    compared = int(values.size)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(rel), rel.shape)) if compared else None
    nonzero = values[values > 0]
    histogram = np.bincount(
        np.searchsorted(HISTOGRAM_EDGES, np.log10(nonzero), side="right"),
        minlength=len(HISTOGRAM_EDGES) + 1,
    ).astype(np.int64)
    worst_map = rel if rel.ndim == 2 else rel.max(axis=0, initial=0.0)
    return FloatDifference(
        name=name,
        compared=compared,
        max_rel=float(values.max()) if compared else 0.0,
        median_rel=float(np.median(values)) if compared else 0.0,
        worst=worst,
        beyond=int(np.count_nonzero(values > rtol)),
        exact=int(np.count_nonzero(a[both] == b[both])),
        nan_only_a=int(np.count_nonzero(~finite_a & finite_b)),
        nan_only_b=int(np.count_nonzero(finite_a & ~finite_b)),
        nan_both=int(np.count_nonzero(~finite_a & ~finite_b)),
        histogram=histogram,
        worst_map=worst_map.astype(np.float32),
    )


def dq_difference(dq_a, dq_b):
    """Compare two uint32 DQ arrays of one shape bit by bit; a :class:`DqDifference`."""
    bits = {}
    for name, bit in dq.PIXEL.items():
        if bit == 0:
            continue
        set_a, set_b = (dq_a & np.uint32(bit)) != 0, (dq_b & np.uint32(bit)) != 0
        counts = tuple(
            int(np.count_nonzero(m)) for m in (set_a & set_b, set_a & ~set_b, ~set_a & set_b)
        )
        if any(counts):
            bits[name] = counts
    return DqDifference(pixels=int(dq_a.size), equal=int(np.count_nonzero(dq_a == dq_b)), bits=bits)


def white_light(sci_a, sci_b, dq_a, dq_b, *, intstart=1, times=None):
    """The white-light ratio A / B per integration over the pixels good in both.

    Parameters
    ----------
    sci_a, sci_b : float64 (nints, ny, nx) or (ny, nx).
    dq_a, dq_b : uint32, SCI's shape or (ny, nx).
    intstart : int, the first integration's 1-based number in the exposure.
    times : float64 (nints,) or None, the integrations' mid times.

    Returns
    -------
    WhiteLight
    """
    cube_a, cube_b = np.atleast_3d(sci_a.T).T, np.atleast_3d(sci_b.T).T  # (1, ny, nx) for a rate
    flags = np.broadcast_to((dq_a | dq_b) & np.uint32(dq.DO_NOT_USE), sci_a.shape)
    good = np.atleast_3d(((flags == 0) & np.isfinite(sci_a) & np.isfinite(sci_b)).T).T
    sum_a = np.where(good, cube_a, 0.0).sum(axis=(1, 2))
    sum_b = np.where(good, cube_b, 0.0).sum(axis=(1, 2))
    ratio = np.full(sum_a.shape, np.nan)
    np.divide(sum_a, sum_b, out=ratio, where=sum_b != 0)
    nints = cube_a.shape[0]
    if times is not None and len(times) != nints:
        times = None
    return WhiteLight(
        integrations=np.arange(intstart, intstart + nints, dtype=np.int64),
        times=times,
        ratio=ratio,
        good=good.sum(axis=(1, 2)).astype(np.int64),
    )


def format_comparison(comparison, rtol=None):
    """The text report of a :class:`Comparison`, judged at ``rtol`` (default: its own)."""
    c = comparison
    rtol = c.rtol if rtol is None else rtol
    kind = "rateints" if len(c.shape) == 3 else "rate"
    lines = [
        f"A: {c.path_a}  ({c.origin_a})",
        f"B: {c.path_b}  ({c.origin_b})",
        f"{kind} {c.shape}, rtol {rtol:g}; relative difference |A-B|/max(|A|,|B|) "
        "over pixels finite in both",
        *(f"warning: {w}" for w in c.warnings),
        "",
        f"{'extension':<12}{'compared':>10}{'max rel':>11}{'median rel':>12}{'> rtol':>8}"
        f"{'exact':>9}{'NaN A only':>12}{'NaN B only':>12}{'NaN both':>10}  worst at",
    ]
    for f in c.floats.values():
        lines.append(
            f"{f.name:<12}{f.compared:>10}{f.max_rel:>11.3g}{f.median_rel:>12.3g}"
            f"{_count_at(f, c.rtol, rtol):>8}{100 * f.exact_fraction:>8.2f}%"
            f"{f.nan_only_a:>12}{f.nan_only_b:>12}{f.nan_both:>10}  "
            f"{f.worst if f.max_rel > 0 else '-'}"
        )
    if c.dq is not None:
        lines += ["", f"DQ: {c.dq.equal} of {c.dq.pixels} values equal"]
        if c.dq.bits:
            lines.append(f"  {'bit':<18}{'both':>10}{'A only':>10}{'B only':>10}")
            lines += [
                f"  {name:<18}{both:>10}{only_a:>10}{only_b:>10}"
                for name, (both, only_a, only_b) in c.dq.bits.items()
            ]
    w = c.white_light
    ratio = w.ratio[np.isfinite(w.ratio)]
    lines += ["", f"white light A/B over pixels good in both, {len(w.ratio)} integration(s):"]
    if ratio.size:
        lines.append(
            f"  ratio min {ratio.min():.9g} max {ratio.max():.9g}, "
            f"max |ratio-1| {w.max_deviation:.3g}"
        )
    else:
        lines.append("  no integration has a pixel good in both")
    failures = c.failures(rtol)
    lines.append("")
    if failures:
        lines.append(f"NOT WITHIN rtol {rtol:g}:")
        lines += [f"  {f}" for f in failures]
    else:
        lines.append(f"WITHIN rtol {rtol:g}")
    return "\n".join(lines)


def compare_figure(comparison, path):
    """Draw a comparison: each float extension's relative-difference histogram, SCI's
    largest relative difference per pixel, and the white-light ratio over time.

    Parameters
    ----------
    comparison : Comparison
    path : str or Path, the image to write (its suffix gives the format: .png, .pdf, .svg),
        written atomically (``tsogpu.io.atomic.write_atomically``).

    Returns
    -------
    Path, or None when matplotlib is not installed (the figure is skipped, with a warning).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("figure skipped: matplotlib is not installed (pip install 'tsogpu[plots]')")
        return None
    c = comparison
    fig = Figure(figsize=(12, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_hist, ax_map, ax_light = fig.subplots(1, 3)

    centres = np.concatenate(
        [[HISTOGRAM_EDGES[0] - 0.125], (HISTOGRAM_EDGES[:-1] + HISTOGRAM_EDGES[1:]) / 2,
         [HISTOGRAM_EDGES[-1] + 0.125]]
    )  # fmt: skip
    for f in c.floats.values():
        zeros = f.compared - int(f.histogram.sum())
        ax_hist.step(centres, f.histogram, where="mid", label=f"{f.name} ({zeros} exact)")
    ax_hist.axvline(np.log10(c.rtol) if c.rtol > 0 else HISTOGRAM_EDGES[0], color="k", ls=":")
    ax_hist.set(xlabel="log10 |A-B| / max(|A|,|B|)", ylabel="pixels", title="nonzero differences")
    ax_hist.legend(fontsize="small")

    sci = c.floats.get("SCI")
    if sci is not None and np.any(sci.worst_map > 0):
        shown = np.where(sci.worst_map > 0, sci.worst_map, np.nan)
        image = ax_map.imshow(shown, origin="lower", norm=LogNorm(), aspect="auto")
        fig.colorbar(image, ax=ax_map, label="max relative difference")
    else:
        ax_map.text(0.5, 0.5, "SCI: no difference", ha="center", va="center")
    ax_map.set(title="SCI, largest over integrations", xlabel="x", ylabel="y")

    w = c.white_light
    if w.times is not None:  # hours: BJD's digits would crowd the axis
        x, xlabel = (w.times - w.times[0]) * 24.0, f"hours after BJD_TDB {w.times[0]:.5f}"
    else:
        x, xlabel = w.integrations, "integration"
    ax_light.plot(x, w.ratio - 1.0, marker=".")
    ax_light.set(
        xlabel=xlabel,
        ylabel="white light A/B - 1",
        title="white-light ratio over time",
    )
    fig.suptitle(f"A: {Path(c.path_a).name}   B: {Path(c.path_b).name}", fontsize="small")
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return write_atomically(path, lambda fh: fig.savefig(fh, format=fmt, dpi=110))


def _count_at(f, counted_at, rtol):
    """The ``> rtol`` column: counted when compared, else at least the verdict."""
    if rtol == counted_at:
        return str(f.beyond)
    return "yes" if f.max_rel > rtol else "0"


def _check_product(hdul, path):
    """The extension names of a product; InputError unless SCI, ERR and DQ are images."""
    names = {hdu.name.upper() for hdu in hdul[1:] if hdu.is_image and hdu.data is not None}
    missing = [e for e in REQUIRED_EXTENSIONS if e not in names]
    if missing:
        raise InputError(
            f"{path}: no {', '.join(missing)} extension; expected a _rateints or _rate product "
            "with SCI, ERR and DQ"
        )
    shape = hdul["SCI"].data.shape
    if len(shape) not in (2, 3):
        raise InputError(f"{path}: SCI has shape {shape}; expected (nints, ny, nx) or (ny, nx)")
    if hdul["DQ"].data.shape not in (shape, shape[-2:]):
        raise InputError(
            f"{path}: DQ has shape {hdul['DQ'].data.shape}, SCI {shape}; expected the same "
            "or (ny, nx)"
        )
    return names


def _float_data(hdu):
    """An image extension as float64 (scaled as stored, since files are opened unscaled)."""
    data = np.asarray(hdu.data, dtype=np.float64)
    scale, zero = hdu.header.get("BSCALE", 1), hdu.header.get("BZERO", 0)
    return data * scale + zero if (scale, zero) != (1, 0) else data


def _dq_data(hdu):
    """A DQ extension as uint32 (int32 DQ of other pipelines keeps its bits)."""
    data = np.asarray(hdu.data)
    zero = hdu.header.get("BZERO", 0)
    if zero:
        data = data.astype(np.int64) + int(zero)
    return (data.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)


def _mid_times(hdul):
    """Mid-integration BJD_TDB from an INT_TIMES table, or None."""
    if "INT_TIMES" not in hdul or hdul["INT_TIMES"].is_image:
        return None
    table = hdul["INT_TIMES"].data
    if table is None or "int_mid_BJD_TDB" not in table.names:
        return None
    return np.asarray(table["int_mid_BJD_TDB"], dtype=np.float64)


def _origin(header):
    """What made a product, from its primary header."""
    if "TSOVER" in header:
        return f"tsogpu {header['TSOVER']}, backend {header.get('TSOBACK', '?')}"
    if "CAL_VER" in header:
        return f"jwst {header['CAL_VER']}"
    return str(header.get("ORIGIN", "origin unknown")).strip() or "origin unknown"


def _exposure_warnings(head_a, head_b, a, b):
    """One note per exposure keyword that both headers have and that differs."""
    return [
        f"{key} differs: {head_a[key]!r} in {a}, {head_b[key]!r} in {b}; "
        "these may be different exposures or segments"
        for key in EXPOSURE_KEYWORDS
        if key in head_a and key in head_b and head_a[key] != head_b[key]
    ]
