"""Sky-pixel reference correction: odd/even offsets and 1/f from unilluminated pixels.

An option of the refpix step, off by default (``refpix.sky_method``, docs/options.md), for
subarrays whose reference pixels do not remove the 1/f noise and the odd/even column offsets
(tshirt's ROEBA, transitspectroscopy's LOOM and roeba, Eureka's GLBS, ExoTiC-JEDI's
destriping, exoTEDRF's 1/f step). Every plane (integration, group) is corrected on its own:

* ``glbs``: per amplifier and fast-read line (a detector row: a DMS column when
  ``|FASTAXIS| == 2``, a DMS row when ``|FASTAXIS| == 1``), the median of the line's sky
  pixels is subtracted from every pixel of the line;
* ``roeba``: first, per amplifier and detector-column parity, the median of the sky pixels
  is subtracted from every pixel of that amplifier and parity; then ``glbs`` on the result.

Sky pixels: outside the trace mask, neither DO_NOT_USE nor REFERENCE_PIXEL in PIXELDQ, and,
per group, neither DO_NOT_USE nor SATURATED in GROUPDQ, and not NaN. A median of n sorted
values ``s`` is ``float32((float64(s[(n-1)//2]) + float64(s[n//2])) * 0.5 + 0.0)`` (the
``+ 0.0`` makes a -0.0 median +0.0, so both backends store the same bits); with no sky value
it is NaN and nothing is subtracted. The subtraction is ``float32(float64(x) -
float64(level))``. kernels/oneoverf.cu mirrors this (one thread per plane and label), so the
backends agree bit for bit.

The trace mask comes from the caller (an exposure-wide pass), a user file, or
:func:`trace_mask_from_image` on the median over integrations of the last-minus-first group
image (:func:`last_minus_first`), which a chunked run computes before its first pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dq
from ..errors import InputError

FULL_SIZE = 2048
AMPLIFIER_WIDTH = 512


@dataclass(frozen=True)
class Layout:
    """Which amplifier, fast-read line and detector-column parity each DMS pixel belongs to.

    ``lines`` int32 (ny, nx): ``amp * nlines + line``, ``line`` the DMS index along the slow
    axis (x when ``line_axis == "x"``); ``parities`` int32 (ny, nx): ``amp * 2 + parity``.
    """

    lines: np.ndarray
    parities: np.ndarray
    namps: int
    nlines: int
    line_axis: str


@dataclass
class Levels:
    """What the correction measured and subtracted, in DN (NaN: no sky pixel).

    ``lines`` float32 (nints, ngroups, namps, nlines); ``offsets`` float32 (nints, ngroups,
    namps, 2) (index 0: even detector columns, 1: odd) or None for ``glbs``.
    """

    lines: np.ndarray
    offsets: np.ndarray | None
    line_axis: str


def layout(shape, exposure):
    """The :class:`Layout` of a (ny, nx) subarray of ``exposure`` (SUBSTRT, FASTAXIS, ...)."""
    ny, nx = shape
    yy, xx = np.meshgrid(
        np.arange(exposure.substrt2 - 1, exposure.substrt2 - 1 + ny),
        np.arange(exposure.substrt1 - 1, exposure.substrt1 - 1 + nx),
        indexing="ij",
    )
    fast = exposure.fastaxis
    col = xx if abs(fast) == 1 else yy  # detector column: along the fast direction
    col = col if fast > 0 else FULL_SIZE - 1 - col
    if exposure.noutputs == 4:
        amp = np.clip(col // AMPLIFIER_WIDTH, 0, 3)
        namps = 4
    else:
        amp = np.zeros_like(col)
        namps = 1
    line_axis = "y" if abs(fast) == 1 else "x"
    nlines = ny if line_axis == "y" else nx
    line = np.arange(ny)[:, None] if line_axis == "y" else np.arange(nx)[None, :]
    return Layout(
        lines=np.ascontiguousarray(amp * nlines + line, dtype=np.int32),  # broadcasts
        parities=np.ascontiguousarray(amp * 2 + col % 2, dtype=np.int32),
        namps=namps,
        nlines=nlines,
        line_axis=line_axis,
    )


def sky_pixels(pixeldq, trace_mask):
    """uint8 (ny, nx): 1 where a pixel may serve as sky (not on the trace, not DO_NOT_USE,
    not a reference pixel)."""
    bad = (np.asarray(pixeldq) & np.uint32(dq.DO_NOT_USE | dq.REFERENCE_PIXEL)) != 0
    return (~(bad | np.asarray(trace_mask, dtype=bool))).astype(np.uint8)


def members(labels, nlabels):
    """(start int64 (nlabels + 1,), order int64 (npix,)): the pixels of label ``l`` are
    ``order[start[l]:start[l + 1]]``, in increasing pixel order."""
    flat = np.asarray(labels).ravel()
    order = np.argsort(flat, kind="stable").astype(np.int64)
    counts = np.bincount(flat, minlength=nlabels)
    start = np.zeros(nlabels + 1, np.int64)
    np.cumsum(counts, out=start[1:])
    return start, order


def label_medians(data, groupdq, sky, labels, nlabels, image=None):
    """Per plane and label, the median of the label's sky values.

    Parameters
    ----------
    data : float32 (nints, ngroups, ny, nx)
    groupdq : uint8 (nints, ngroups, ny, nx)
    sky : uint8 (ny, nx), from :func:`sky_pixels`
    labels : int32 (ny, nx), values in [0, nlabels)
    nlabels : int
    image : float32 (ny, nx), optional
        The median of ``image``'s values over the pixels each plane selects (by ``data``'s
        NaN and ``groupdq``) instead of ``data``'s (``superbias.scale``); finite where ``sky``.

    Returns
    -------
    float32 (nints, ngroups, nlabels); NaN where a label has no sky value.
    """
    nints, ngroups, ny, nx = data.shape
    start, order = members(labels, nlabels)
    counts = np.diff(start)
    width = int(counts.max()) if nlabels else 0
    # (nlabels, width) pixel indices, padded with -1
    idx = np.full((nlabels, width), -1, np.int64)
    pos = np.arange(order.size) - np.repeat(start[:-1], counts)
    idx[np.repeat(np.arange(nlabels), counts), pos] = order
    pad = idx < 0
    idx[pad] = 0
    usable = (np.asarray(sky).ravel()[idx] != 0) & ~pad
    bad_group = np.uint8(dq.DO_NOT_USE | dq.SATURATED)
    out = np.empty((nints, ngroups, nlabels), np.float32)
    for i in range(nints):  # one integration at a time bounds the gathered copy
        vals = data[i].reshape(ngroups, ny * nx)[:, idx]
        good = usable & ((groupdq[i].reshape(ngroups, ny * nx)[:, idx] & bad_group) == 0)
        good &= ~np.isnan(vals)
        if image is not None:
            vals = np.broadcast_to(np.asarray(image, np.float32).ravel()[idx], vals.shape)
        vals = np.where(good, vals, np.float32(np.nan))
        vals.sort(axis=-1)  # NaN last
        n = good.sum(axis=-1)
        lo = np.take_along_axis(vals, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
        hi = np.take_along_axis(vals, (n // 2)[..., None], -1)[..., 0] if width else lo
        med = ((lo.astype(np.float64) + hi.astype(np.float64)) * 0.5 + 0.0).astype(np.float32)
        out[i] = np.where(n > 0, med, np.float32(np.nan))
    return out


def subtract_levels(data, labels, levels):
    """``data`` less each pixel's label level (NaN levels: unchanged); a new float32 array.

    ``levels`` float32 (nints, ngroups, nlabels).
    """
    lev = levels[:, :, np.asarray(labels)]
    diff = (data.astype(np.float64) - lev.astype(np.float64)).astype(np.float32)
    return np.where(np.isnan(lev), data, diff).astype(np.float32)


def correct_sky(data, groupdq, pixeldq, exposure, method, trace_mask):
    """Subtract the sky-pixel offsets and 1/f of ``method`` (``glbs`` or ``roeba``).

    Parameters
    ----------
    data : float32 (nints, ngroups, ny, nx), after jwst's reference-pixel correction
    groupdq : uint8 (nints, ngroups, ny, nx)
    pixeldq : uint32 (ny, nx)
    exposure : tsogpu.segment.Exposure
    method : str, ``glbs`` or ``roeba``
    trace_mask : bool (ny, nx), True on the trace (never sky)

    Returns
    -------
    data : float32 (nints, ngroups, ny, nx), a new array
    levels : Levels
    """
    lay = layout(data.shape[2:], exposure)
    sky = sky_pixels(pixeldq, trace_mask)
    nints, ngroups = data.shape[:2]
    offsets = None
    if method == "roeba":
        off = label_medians(data, groupdq, sky, lay.parities, 2 * lay.namps)
        data = subtract_levels(data, lay.parities, off)
        offsets = off.reshape(nints, ngroups, lay.namps, 2)
    lines = label_medians(data, groupdq, sky, lay.lines, lay.namps * lay.nlines)
    data = subtract_levels(data, lay.lines, lines)
    return data, Levels(
        lines.reshape(nints, ngroups, lay.namps, lay.nlines), offsets, lay.line_axis
    )


def last_minus_first(data):
    """float32 (nints, ny, nx): the last group less the first, per integration (raw counts
    or float32 ramps; exact for counts)."""
    return data[:, -1].astype(np.float32) - data[:, 0].astype(np.float32)


def trace_mask_from_image(image, threshold, grow):
    """bool (ny, nx): pixels of ``image`` (e.g. the median over integrations of
    :func:`last_minus_first`) above ``median + threshold * 1.4826 * MAD``, grown by ``grow``
    pixels in every direction (a square), as jtow's ROEBAmaskGrowthSize and Eureka's
    expand_mask grow theirs."""
    img = np.asarray(image, dtype=np.float64)
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        raise InputError("sky correction: the median image has no finite pixel to build a mask")
    med = np.median(finite)
    sigma = 1.4826 * np.median(np.abs(finite - med))
    bright = np.isfinite(img) & (img > med + threshold * sigma)
    grown = bright.copy()
    ny, nx = img.shape
    for dy in range(-grow, grow + 1):
        for dx in range(-grow, grow + 1):
            src = bright[max(0, -dy) : ny - max(0, dy), max(0, -dx) : nx - max(0, dx)]
            grown[max(0, dy) : ny - max(0, -dy), max(0, dx) : nx - max(0, -dx)] |= src
    return grown
