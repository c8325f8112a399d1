"""The tuned ramp_fit's segments: found and fitted for many ramps at once.

Part of ``tsogpu/algorithms/ramp_fit_fast.py`` (see its docstring); the specification of
each function is the ``slope_fitter.py`` function named in its docstring. Arrays are over a
flat axis of ramps (a ramp is one pixel in one integration): (ngroups, n) or (n,).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .. import dq
from .slope_fitter import SNR_BOUNDS, SNR_POWERS, powf

__all__ = [
    "Consts",
    "Slot",
    "chargeloss_rnoise",
    "fit_segments",
    "len1_timing",
    "pad8",
    "reduced_chi2",
    "rnoise_short",
    "find_segments",
    "weight_table",
    "FIXED_CLASS",
    "NCLASS",
]

_JUMP8 = np.uint8(dq.JUMP_DET)
_CHARGELOSS8 = np.uint8(dq.CHARGELOSS)
_NOT_PERS8 = np.uint8(~np.uint8(dq.PIXEL["PERSISTENCE"]))
_CHARGELOSS_TOGGLE8 = np.uint8(dq.CHARGELOSS | dq.DO_NOT_USE)

# snr_power: the exponent is _POWERS[searchsorted(_SNR_BOUNDS, snr, "right")] (NaN -> 10)
_SNR_BOUNDS = np.array(SNR_BOUNDS)
_POWERS = np.array(SNR_POWERS)
# weight_table's power classes: the SNR table's, then ramp_fit.weighting's fixed exponent
NCLASS = len(SNR_POWERS) + 1
FIXED_CLASS = len(SNR_POWERS)


class Slot(NamedTuple):
    """The s-th fitted segment of the ramps ``cols`` (None: every ramp, length 0 = none)."""

    cols: np.ndarray | None
    start: np.ndarray  # intp, first group
    length: np.ndarray  # intp, number of groups


class Consts(NamedTuple):
    """Per-ramp constants (float64 unless noted), from the pixel's gain, noise and rate."""

    gain: np.ndarray
    rnoise: np.ndarray  # per-read read noise, electrons
    rn2: np.ndarray  # rnoise * rnoise
    invrn2: np.ndarray  # 1 / rn2
    numer: np.ndarray  # Poisson numerator: median_rate + dark where median_rate > 0, else dark
    pden2: np.ndarray  # TGROUP * gain
    varr2: np.ndarray  # read-noise variance of a 2-group segment
    rnum_long: np.ndarray  # 12 (rnoise / TGROUP)^2
    bad_gain: np.ndarray  # bool, gain <= 0 or NaN
    pdq: np.ndarray  # uint32, PIXELDQ (| DNU | NO_GAIN_VALUE for a bad gain)

    def take(self, index):
        return Consts(*(a[index] for a in self))


def pad8(index):
    """``index`` with its last entry repeated up to a multiple of 8 entries.

    Where an addition or a multiplication meets two NaNs, NumPy's float64 loops return the
    first operand's NaN in whole vectors of 8 and the second operand's in the remainder, so
    the NaN's bits depend on its position. Gathered (compacted) arrays are padded so that
    every entry is in a whole vector: then, when npix is a multiple of 8, the NaN bits are
    those of a plain per-integration evaluation on arrays of npix ramps.
    """
    if index.size == 0:
        return index
    return index[np.minimum(np.arange(-(-index.size // 8) * 8), index.size - 1)]


def find_segments(gdq, skip=None):
    """Fit segments (``compute_integration_segments`` + pruning), slot by slot.

    A segment is a maximal run of groups with ``gdq & ~PERSISTENCE == 0``, end exclusive,
    that starts one group earlier when that group's flags are exactly JUMP_DET (ignoring
    PERSISTENCE). stcal's list rules (skip a length-1 run once a longer run exists, then
    ``prune_segment_list``) leave: every run of length >= 2 in order, or, when there is
    none, only the first run of length 1. ``skip`` (bool (n,)): ramps without segments.

    Ramps without any flag (but PERSISTENCE) have the one segment [0, ngroups); the others
    are listed run by run (``np.nonzero`` of the run edges, ramp by ramp, in group order).

    Parameters
    ----------
    gdq : uint8 (ngroups, n)

    Returns
    -------
    nseg : intp (n,)
    slots : list of Slot; slot 0 covers every ramp (length 0 where nseg == 0), slot s > 0
        lists the ramps with more than s segments.
    """
    ngroups, n = gdq.shape
    flags = gdq & _NOT_PERS8
    plain = np.bitwise_or.reduce(flags, axis=0) == 0
    nseg = plain.astype(np.intp)
    start0 = np.zeros(n, dtype=np.intp)
    length0 = np.where(plain, ngroups, 0)
    slots = [Slot(None, start0, length0)]
    mixed = np.flatnonzero(~plain)
    if mixed.size:
        sub = flags[:, mixed]
        good = np.zeros((mixed.size, ngroups + 2), dtype=bool)
        good[:, 1:-1] = (sub == 0).T
        edge = good[:, 1:] != good[:, :-1]
        ramp, pos = np.nonzero(edge)  # per ramp: start, end, start, end, ...
        ramp, start, end = ramp[0::2], pos[0::2], pos[1::2]
        jump_before = (start > 0) & (sub[np.maximum(start - 1, 0), ramp] == _JUMP8)
        start = start - jump_before
        length = end - start
        long_ = length >= 2
        has_long = np.zeros(mixed.size, dtype=bool)
        has_long[ramp[long_]] = True
        first = np.ones(ramp.size, dtype=bool)
        first[1:] = ramp[1:] != ramp[:-1]
        keep = long_ | (first & ~has_long[ramp])
        cols = mixed[ramp[keep]]
        start, length = start[keep], length[keep]
        if skip is not None:
            keep = ~skip[cols]
            cols, start, length = cols[keep], start[keep], length[keep]
        if cols.size:
            idx = np.arange(cols.size)
            new_ramp = np.ones(cols.size, dtype=bool)
            new_ramp[1:] = cols[1:] != cols[:-1]
            rank = idx - np.maximum.accumulate(np.where(new_ramp, idx, 0))
            nseg += np.bincount(cols, minlength=n)
            sel = rank == 0
            start0[cols[sel]] = start[sel]
            length0[cols[sel]] = length[sel]
            for s in range(1, int(rank.max()) + 1):
                sel = rank == s
                slots.append(Slot(cols[sel], start[sel], length[sel]))
    if skip is not None:
        nseg[skip] = 0
        length0[skip] = 0
    return nseg, slots


def len1_timing(is_0th, is_zframe, tgroup, tframe, one_group_time):
    """``segment_len1_timing``: the time of a one-group segment."""
    return np.where(is_0th, one_group_time, np.where(is_zframe, tframe, tgroup))


def rnoise_short(rnoise, gain, timing):
    """``segment_rnoise_len1/len2``: ``12 (R/t)^2 / (6 G^2)``, in the C operation order."""
    rnum = rnoise / timing
    rnum = 12.0 * rnum * rnum
    rden = 6.0 * gain * gain
    return rnum / rden


def rnoise_long(c, seglen):
    """``segment_rnoise_default``: ``12 (R/t)^2 / ((n^3 - n) G^2)``; 0 for a bad gain."""
    rden = seglen * seglen * seglen - seglen
    rden = rden * c.gain * c.gain
    return np.where(c.bad_gain, 0.0, c.rnum_long / rden)


@functools.lru_cache(maxsize=8)
def weight_table(ngroups, fixed_power=0.0):
    """The optimal-weighting powers ``powf(|(k - mid) / mid|, P)``, flat and read-only.

    The weight of group k of a segment depends only on the segment length L, k and the
    power class c (the index of P in _POWERS, or FIXED_CLASS for ``fixed_power``, the
    exponent ``ramp_fit.weighting`` fixes), so the ramps read it from this table:
    ``table[ngroups + (L * NCLASS + c) * ngroups + k]``, computed exactly as ``ramp_fit_segment``
    does per pixel, zero for k >= L and for L < 3. For a group before the segment (k < 0)
    that index falls into the zero tail of the previous row (its length is at most
    ``ngroups - start``) or into the leading zeros, so a ramp reads 0 for every group
    outside its segment.
    """
    g = ngroups
    table = np.zeros((g + 1, NCLASS, g), dtype=np.float64)
    lengths = np.arange(3, g + 1)
    seg = np.repeat(lengths, lengths)  # (L, k) for every L >= 3 and k < L
    k = np.concatenate([np.arange(n) for n in lengths]) if lengths.size else seg
    seglen = seg.astype(np.float64)
    mid = (seglen - 1.0) / 2.0
    invmid = 1.0 / mid
    weight = np.abs((k.astype(np.float64) - mid) * invmid)
    for c, power in enumerate((*SNR_POWERS, fixed_power)):
        table[seg, c, k] = powf(weight, np.full(weight.shape, power))
    flat = np.concatenate([np.zeros(g), table.reshape(-1)])
    flat.flags.writeable = False
    return flat


def _weighted_sums(data, start, length, power_class, invrn2, exact, fixed_power):
    """The optimal-weighted sums of each ramp's segment, over its groups in order.

    One pass over the groups g accumulates ``weight = powf(...) * invrn2``, ``xval = g``
    into sumw += weight, sumx += xval*weight, sumxx += xval*(xval*weight), sumy +=
    y*weight, sumxy += y*(xval*weight) (y: the data, NaN -> 0), each sum from +0.0 in group
    order as the C code does. The table gives weight 0 outside the segment, so those terms
    are +-0.0 where ``invrn2`` and the data are finite (``exact`` ramps), and adding +-0.0
    to a sum that started at +0.0 (it can never be -0.0) changes nothing. The other ramps
    are summed again with the terms masked to the segment, as the reference loop does.

    Returns five float64 (n,) arrays: sumw, sumx, sumxx, sumy, sumxy.
    """
    ngroups, n = data.shape
    table = weight_table(ngroups, fixed_power)
    widx = ngroups + (length * NCLASS + power_class) * ngroups - start
    sums = tuple(np.zeros(n, dtype=np.float64) for _ in range(5))
    fitted = np.flatnonzero(length >= 3)
    if fitted.size == 0:
        return sums
    g0 = int(start[fitted].min())
    g1 = int((start + length)[fitted].max())
    _sum_groups(sums, data, widx, invrn2, table, g0, g1)
    masked = pad8(fitted[~exact[fitted]])
    if masked.size:
        sub = tuple(np.zeros(masked.size, dtype=np.float64) for _ in range(5))
        y = data[:, masked]
        y[np.isnan(y)] = 0.0
        span = (start[masked], start[masked] + length[masked])
        _sum_groups(sub, y, widx[masked], invrn2[masked], table, g0, g1, span)
        for full, part in zip(sums, sub, strict=True):
            full[masked] = part
    return sums


def _sum_groups(sums, y, widx, invrn2, table, g0, g1, span=None):
    """The group loop of :func:`_weighted_sums`; ``span`` (start, end): mask the terms."""
    sumw, sumx, sumxx, sumy, sumxy = sums
    n = y.shape[1]
    weight = np.empty(n, dtype=np.float64)
    xwt = np.empty(n, dtype=np.float64)
    term = np.empty(n, dtype=np.float64)
    for g in range(g0, g1):
        # table[widx + g]; the index is always in range, so "clip" changes nothing
        np.take(table[g:], widx, out=weight, mode="clip")
        weight *= invrn2
        xval = np.float64(g)
        np.multiply(xval, weight, out=xwt)
        yg = y[g]
        if span is None:
            sumw += weight
            sumx += xwt
            sumxx += np.multiply(xval, xwt, out=term)
            sumy += np.multiply(yg, weight, out=term)
            sumxy += np.multiply(yg, xwt, out=term)
        else:
            inside = (span[0] <= g) & (g < span[1])
            np.copyto(sumw, sumw + weight, where=inside)
            np.copyto(sumx, sumx + xwt, where=inside)
            np.copyto(sumxx, sumxx + xval * xwt, where=inside)
            np.copyto(sumy, sumy + yg * weight, where=inside)
            np.copyto(sumxy, sumxy + yg * xwt, where=inside)


def fit_segments(data, start, length, c, t1, tgroup, exact, fixed_power=None):
    """Slope, Poisson, read-noise and total variance of segments (``ramp_fit_segment``).

    ``data`` (ngroups, n): the ramp of each segment, as loaded; ``start``, ``length`` (n,);
    ``c`` per-segment constants, ``t1`` the one-group time, ``exact`` see
    :func:`_weighted_sums`; ``fixed_power``: ``ramp_fit.weighting``'s exponent P for every
    segment, or None for the SNR table. Returns four float64 (n,) arrays; entries of
    segments of length 0 are meaningless.
    """
    ngroups, n = data.shape
    last = ngroups - 1
    flat = data.reshape(-1)
    col = np.arange(n)
    y0 = np.take(flat, np.minimum(start, last) * n + col)
    y1 = np.take(flat, np.minimum(start + 1, last) * n + col)
    yend = np.take(flat, np.clip(start + length - 1, 0, last) * n + col)
    seglen = length.astype(np.float64)
    gain = c.gain

    # Length >= 3: optimal weights from the segment's SNR (segment_snr, snr_power).
    # snr_power of max(snr, 0), or of 0 where den <= 0 or gain == 0; NaN -> 10.
    diff = yend - y0
    den = c.rn2 + diff * gain
    s = (diff * gain) / np.sqrt(den)
    power_class = np.searchsorted(_SNR_BOUNDS, s, side="right")
    power_class[(den <= 0.0) | (gain == 0.0)] = 0
    if fixed_power is not None:  # ramp_fit.weighting: the SNR does not matter
        power_class[:] = FIXED_CLASS
    sumw, sumx, sumxx, sumy, sumxy = _weighted_sums(
        data, start, length, power_class, c.invrn2, exact, fixed_power or 0.0
    )
    dden = sumw * sumxx - sumx * sumx
    num = sumw * sumxy - sumx * sumy
    invden = 1.0 / dden
    slope = (num * invden) / tgroup
    var_p = c.numer / (c.pden2 * (seglen - 1.0))
    var_r = rnoise_long(c, seglen)

    one = length == 1
    if one.any():  # slope_seg_len1
        slope = np.where(one, y0 / t1, slope)
        var_p = np.where(one, c.numer / (t1 * gain), var_p)
        var_r = np.where(one, rnoise_short(c.rnoise, gain, t1), var_r)
    two = length == 2
    if two.any():  # slope_seg_len2
        slope = np.where(two, (y1 - y0) / tgroup, slope)
        var_p = np.where(two, c.numer / c.pden2, var_p)
        var_r = np.where(two, c.varr2, var_r)
    return slope, var_p, var_r, var_p + var_r


def chargeloss_rnoise(orig_gdq, c, t1, tgroup):
    """Integration inverse read-noise variance with CHARGELOSS|DNU toggled off.

    ``ramp_fit_pixel_rnoise_chargeloss_remove`` XORs CHARGELOSS|DO_NOT_USE into every group
    that has CHARGELOSS (so a CHARGELOSS group without DNU GAINS DNU: stcal's quirk, kept);
    segments are rebuilt without the group-0 SATURATED shortcut and only positive segment
    variances count. Returns float64 (m,) = sum of 1 / var_r over the segments in order.
    """
    gdq = np.where((orig_gdq & _CHARGELOSS8) != 0, orig_gdq ^ _CHARGELOSS_TOGGLE8, orig_gdq)
    _, slots = find_segments(gdq)
    invvar_r = np.zeros(gdq.shape[1], dtype=np.float64)
    for slot in slots:
        cols = slice(None) if slot.cols is None else slot.cols
        cs = c.take(cols)
        length = slot.length
        svar = np.where(
            length == 1,
            rnoise_short(cs.rnoise, cs.gain, t1[cols]),
            np.where(length == 2, cs.varr2, rnoise_long(cs, length.astype(np.float64))),
        )
        use = (length > 0) & (svar > 0.0)
        invvar_r[cols] = np.where(use, invvar_r[cols] + 1.0 / svar, invvar_r[cols])
    return invvar_r


def reduced_chi2(data, slots, slope, c, tgroup):
    """``slope_fitter.reduced_chi2`` of every ramp (``ramp_fit.goodness_of_fit``).

    ``data`` (ngroups, n) as loaded, ``slots`` from :func:`find_segments`, ``slope`` (n,) the
    integration's slope (DN/s, NaN where it is), ``c`` per-ramp constants. The squared
    residuals of the first differences are summed segment by segment (slot order), group by
    group, as the specification does. Returns float64 (n,), NaN where undefined.
    """
    ngroups, n = data.shape
    step = slope * tgroup
    ssr = np.zeros(n, dtype=np.float64)
    ndiff = np.zeros(n, dtype=np.int64)
    for slot in slots:
        cols = slice(None) if slot.cols is None else slot.cols
        start, end = slot.start, slot.start + slot.length - 1  # differences g in [start, end)
        y, st, acc, cnt = data[:, cols], step[cols], ssr[cols], ndiff[cols]
        for g in range(int(start.min(initial=0)), int(end.max(initial=0))):
            inside = (start <= g) & (g < end)
            r = (y[g + 1] - y[g]) - st
            acc = np.where(inside, acc + r * r, acc)
            cnt = cnt + inside
        ssr[cols], ndiff[cols] = acc, cnt
    rn = c.rnoise / c.gain
    var_d = 2.0 * (rn * rn) + np.where(step > 0.0, step / c.gain, 0.0)
    chi2 = (ssr / var_d) / (ndiff - 1).astype(np.float64)
    ok = (ndiff >= 2) & (var_d > 0.0) & ~np.isnan(slope) & ~np.isnan(chi2)
    return np.where(ok, chi2, np.nan)
