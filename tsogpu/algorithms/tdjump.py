"""Time-domain jump detection: a running median across neighbouring integrations (exoTEDRF).

An option beyond jwst, off by default (``jump.time_domain``). It follows exoTEDRF's
``stage1.py: jumpstep_in_time`` (after Nikolov et al. 2014): each value is compared with the
median of a window of ``window`` neighbouring integrations and flagged when it lies
``threshold`` times the pixel's point-to-point scatter away from it. It needs no second group
beyond the first difference, so it works on 2-group ramps, where jwst skips jump detection.

What is compared, per pixel and per group difference ``d`` (groups ``d`` and ``d + 1``):

1. ``x[i] = float64(data[i, d + 1]) - float64(data[i, d])`` for every integration ``i``; NaN
   where either group has DO_NOT_USE or SATURATED (such differences are neither compared nor
   used in a median, as jwst's jump leaves them out).
2. The scatter ``s``: the median over ``i = 1 .. nints - 2`` of
   ``|0.5 * (x[i - 1] + x[i + 1]) - x[i]|`` (exoTEDRF's point-to-point scatter; NaN terms left
   out). No finite positive ``s`` (fewer than 3 integrations, all terms NaN, or ``s == 0``): the
   pixel's difference is not flagged (exoTEDRF divides by infinity there).
3. The running median ``m[i]``: the median of the non-NaN ``x`` over ``window`` consecutive
   integrations centred on ``i`` and shifted inward at the ends of the segment, so that every
   window holds ``min(window, nints)`` integrations (the value itself included).
4. ``|x[i] - m[i]| / s >= threshold``: group ``d + 1`` gets JUMP_DET (jwst's convention: the
   first group after the jump).

Medians are those of ``numpy.median``: the middle value, or ``(lo + hi) / 2.0`` in float64.
All arithmetic is float64; the flags therefore equal those of the kernel
(``kernels/tdjump.cu``), which runs the same operations per (difference, pixel) thread.

Differences from exoTEDRF, on purpose:

* Group differences rather than group values: a cosmic ray between groups ``g - 1`` and ``g``
  raises every later group of the integration, but only difference ``g - 1``; it is flagged
  once, at group ``g``, as jwst's up-the-ramp detector flags it, and a hit before the first
  read (which does not change the slope) is not flagged.
* Windows at the segment's ends are shifted inward; exoTEDRF's ``scipy.signal.medfilt`` pads
  with zeros, which pulls the first and last two medians towards 0.
* No ``cube > nanpercentile(cube, 10)`` brightness cut and no reset-artifact mask: the first is
  a whole-segment statistic (it would tie tiles of pixels together) and both are specific to
  exoTEDRF's instruments and modes. With 2 groups exoTEDRF replaces flagged values by the
  median instead of flagging them; here they are always flagged (with 2 groups the integration
  keeps one good group, which ramp fitting, as jwst's ``suppress_one_group``, leaves unfitted).
* Each segment is processed on its own: the windows and the scatter stop at its ends.

Locality: everything is per pixel over that pixel's integrations, so tiles of pixels that hold
all integrations give the same flags as the whole segment.
"""

from typing import NamedTuple

import numpy as np

from .. import dq

_JUMP = np.uint8(dq.JUMP_DET)
_SAT_OR_DNU = np.uint8(dq.SATURATED | dq.DO_NOT_USE)
_BLOCK = 1 << 18  # values per block of pixels (bounded temporaries)


class TimeJumps(NamedTuple):
    """What ``flag_time_domain`` returns.

    Attributes
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
        The input GROUPDQ with the new JUMP_DET bits.
    jumps_per_pixel : ndarray of int32, (ny, nx)
        Groups that got JUMP_DET here and did not have it before (PRIMECRS numerator).
    scatter : ndarray of float64, (ngroups - 1, ny, nx)
        The point-to-point scatter ``s`` of each difference (NaN where there is none).
    """

    groupdq: np.ndarray
    jumps_per_pixel: np.ndarray
    scatter: np.ndarray


def flag_time_domain(data, groupdq, *, window, threshold):
    """Flag jumps by comparing each group difference with its neighbouring integrations.

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx)
        Calibrated ramp, DN.
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    window : int
        Integrations in the running median (odd, ``jump.time_window``).
    threshold : float
        Flagging threshold in units of the point-to-point scatter (``jump.time_threshold``).

    Returns
    -------
    TimeJumps
        New arrays; the inputs are not modified.
    """
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    gdq = np.array(groupdq, dtype=dq.GROUPDQ_DTYPE, copy=True)
    flat_data = data.reshape(nints, ngroups, npix)
    flat_gdq = gdq.reshape(nints, ngroups, npix)
    count = np.zeros(npix, np.int32)
    scatter = np.full((max(ngroups - 1, 0), npix), np.nan)
    thresh = np.float64(threshold)
    width = min(int(window), nints)
    # the first integration of each window (shifted inward at the ends)
    start = np.clip(np.arange(nints) - int(window) // 2, 0, nints - width)
    step = max(1, _BLOCK // max(nints * width, 1))
    for d in range(ngroups - 1):
        for p0 in range(0, npix, step):
            cols = slice(p0, min(p0 + step, npix))
            x = _differences(flat_data[:, d : d + 2, cols], flat_gdq[:, d : d + 2, cols])
            s = _scatter(x)
            scatter[d, cols] = s
            m = _running_median(x, width)[start]
            with np.errstate(divide="ignore", invalid="ignore"):
                flag = (s > 0.0) & (np.abs(x - m) / s >= thresh)
            g = flat_gdq[:, d + 1, cols]
            new = flag & ((g & _JUMP) == 0)
            count[cols] += np.count_nonzero(new, axis=0).astype(np.int32)
            g[flag] |= _JUMP
    return TimeJumps(gdq, count.reshape(ny, nx), scatter.reshape(-1, ny, nx))


def _differences(data2, gdq2):
    """float64 (nints, npix): group d+1 minus group d, NaN where either has SAT or DNU."""
    bad = ((gdq2[:, 0] | gdq2[:, 1]) & _SAT_OR_DNU) != 0
    x = data2[:, 1].astype(np.float64) - data2[:, 0].astype(np.float64)
    x[bad] = np.nan
    return x


def _scatter(x):
    """(npix,) median over i of |0.5 * (x[i-1] + x[i+1]) - x[i]|, NaN terms left out."""
    if x.shape[0] < 3:
        return np.full(x.shape[1], np.nan)
    r = np.abs(0.5 * (x[:-2] + x[2:]) - x[1:-1])
    return _median_sorted(np.sort(r, axis=0), axis=0)


def _running_median(x, width):
    """(nints - width + 1, npix): the median of each run of ``width`` integrations."""
    runs = np.lib.stride_tricks.sliding_window_view(x, width, axis=0)
    return _median_sorted(np.sort(runs, axis=-1), axis=-1)


def _median_sorted(srt, axis):
    """numpy.median of the non-NaN values of ``srt`` (sorted along ``axis``, NaN last)."""
    srt = np.moveaxis(srt, axis, -1)
    n = srt.shape[-1]
    c = n - np.count_nonzero(np.isnan(srt), axis=-1)
    lo = np.take_along_axis(srt, np.maximum((c - 1) // 2, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(srt, np.minimum(c // 2, n - 1)[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):
        med = (lo + hi) / 2.0
    return np.where(c == 0, np.nan, med)
