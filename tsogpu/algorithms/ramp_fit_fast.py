"""ramp_fit, the tuned path: ``tsogpu.algorithms.ramp_fit``'s OLS_C fit, fast on a CPU.

The specification is ``tsogpu/algorithms/ramp_fit.py`` (stcal's ``slope_fitter.c``, one
pixel at a time, as the C code runs). This module gives the same bits
(``tests/test_spec_vs_fast.py``) by vectorising over ramps: a ramp is one pixel in one
integration; steps 1-3 of the specification are per ramp and run on blocks of ramps (several
integrations x a range of pixels, one flat ramp axis of up to ``BLOCK_RAMPS``), with loops
over groups only; the median rate and the exposure sums then run over integrations in
integration order, as the C code sums them. The tuning:

* the data is loaded once per block; SATURATED groups are set to NaN only where the median
  rate reads them, and the fits of ramps without NaN or inf skip the segment masks;
* the median rate sorts the first differences with a sorting network (``_sorting_network``)
  that orders only the lower half;
* segments are found for all ramps at once and fitted slot by slot
  (``ramp_fit_fast_segments.py``), the optimal weights ``powf(|(k - mid) / mid|, P)`` read
  from a table of every (segment length, group, P) computed with the specification's
  ``powf``.

The options ``weighting`` (a 7th power class in the table) and ``goodness_of_fit``
(``ramp_fit_fast_segments.reduced_chi2``) follow the specification too.

NaN bits: where an addition or a multiplication meets two NaNs, NumPy's loops return one or
the other depending on the element's position in the array (see ``pad8``), so the sign of
such a NaN may depend on the split. ``kernels/ramp_fit.cu`` mirrors this module.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .. import dq
from .ramp_fit import (
    LARGE_VARIANCE_THRESHOLD,
    RampFitResult,
    RateProduct,
    group_range,
    ols_readnoise,
)
from .ramp_fit_fast_segments import (
    Consts,
    chargeloss_rnoise,
    find_segments,
    fit_segments,
    len1_timing,
    pad8,
    reduced_chi2,
    rnoise_short,
)

__all__ = ["BLOCK_RAMPS", "fit_ramps"]

# PIXELDQ / output DQ (uint32)
_DNU = np.uint32(dq.DO_NOT_USE)
_SAT = np.uint32(dq.SATURATED)
_NO_GAIN = np.uint32(dq.NO_GAIN_VALUE)
_INVALID = np.uint32(dq.DO_NOT_USE | dq.SATURATED)
# GROUPDQ (uint8)
_DNU8 = np.uint8(dq.DO_NOT_USE)
_SAT8 = np.uint8(dq.SATURATED)
_JUMP8 = np.uint8(dq.JUMP_DET)
_NOT_JUMP8 = np.uint8(~_JUMP8)
_CHARGELOSS8 = np.uint8(dq.CHARGELOSS)
_INVALID8 = np.uint8(dq.DO_NOT_USE | dq.SATURATED)
_NOT_PERS8 = np.uint8(~np.uint8(dq.PIXEL["PERSISTENCE"]))
_JUMP_PERS8 = np.uint8(dq.JUMP_DET | dq.PIXEL["PERSISTENCE"])  # passed on to the DQ
_CHARGELOSS_TOGGLE8 = np.uint8(dq.CHARGELOSS | dq.DO_NOT_USE)


# Ramps (integration x pixel) per block: enough that NumPy's per-call overhead is small,
# few enough that a block's (ngroups, n) work arrays stay close to the CPU caches. The
# results do not depend on it.
BLOCK_RAMPS = 1 << 14

# ---------------------------------------------------------------------------------------
# Blocks of ramps. A ramp is one pixel in one integration; everything up to the exposure
# sums is per ramp, so a block holds several integrations x several pixels on one flat ramp
# axis (integration-major) and every array of the block is (ngroups, n) or (n,).


class _Block(NamedTuple):
    data: np.ndarray  # float64 (ngroups, n), group 0 may be ZEROFRAME; SATURATED groups
    # are NOT set to NaN here (see _load_block)
    gdq: np.ndarray  # uint8 (ngroups, n), group 0 cleared where ZEROFRAME is used
    flags: np.ndarray  # uint8 (n,), OR of the ramp's GROUPDQ (before the ZEROFRAME clear)
    clean: np.ndarray  # bool (n,), False where the ramp's data may hold a NaN or an inf
    cnt_sat: np.ndarray  # int (n,)
    cnt_dnu_sat: np.ndarray  # int (n,)
    is_0th: np.ndarray  # bool (n,)
    is_zframe: np.ndarray  # bool (n,)
    chargeloss: np.ndarray  # intp (m,), the ramps with CHARGELOSS in some group
    orig_gdq: np.ndarray  # uint8 (ngroups, m), their GROUPDQ before suppression


def _count(mask):
    """Number of True along axis 0 of a (ngroups, n) bool array: int32 (n,)."""
    return np.add.reduce(mask.view(np.uint8), axis=0, dtype=np.int32)


def _load_block(data, groupdq, zeroframe, ints, pix, first_last, suppress, clear_jump=False):
    """The ramps of integrations ``ints`` x pixels ``pix``, as ``get_pixel_ramp`` loads them.

    ``data`` (nints, ngroups, npix) float32, ``groupdq`` the same in uint8 (as given to
    fit_ramps), ``zeroframe`` (nints, npix) or None. GROUPDQ gets the firstgroup/lastgroup
    DO_NOT_USE and, with ``suppress``, the one-good-group suppression here (stcal does both
    on the whole array first; both are per ramp). Without suppression (``special``): one
    exactly-zero group that is group 0 -> 0th-group timing; no exactly-zero group and a
    non-zero ZEROFRAME -> group 0 := ZEROFRAME with DQ 0 (ZEROFRAME timing).

    ``get_pixel_ramp`` sets SATURATED groups to NaN. Only the median rate reads those
    values (a fit segment never contains a SATURATED group), so :func:`_median_rate` and
    the NGROUPS == 1 rate do it on their own copies; the block keeps the data as read.
    ``clear_jump``: MIRI groups were dropped before these (``fit_ramps``' ``groups``): group
    0's JUMP_DET is cleared after the suppression has counted it, not in ``orig_gdq``.
    """
    block = data[ints, :, pix]  # (nb, ngroups, npb)
    nb, ngroups, npb = block.shape
    n = nb * npb
    x = np.empty((ngroups, nb, npb), dtype=np.float64)
    x[...] = block.transpose(1, 0, 2)
    x = x.reshape(ngroups, n)
    # a finite sum: no NaN or inf anywhere (float32 data cannot overflow it)
    clean = np.ones(n, dtype=bool) if np.isfinite(x.sum()) else np.isfinite(x).all(axis=0)
    gdq = np.empty((ngroups, nb, npb), dtype=np.uint8)
    gdq[...] = groupdq[ints, :, pix].transpose(1, 0, 2)
    gdq = gdq.reshape(ngroups, n)
    first, last = first_last
    gdq[:first] |= _DNU8
    gdq[last + 1 :] |= _DNU8

    flags = np.bitwise_or.reduce(gdq, axis=0)
    chargeloss = np.flatnonzero(flags & _CHARGELOSS8)
    orig_gdq = gdq[:, chargeloss]  # a copy, taken before the suppression
    if suppress:
        one_good = _count((gdq & _NOT_PERS8) == 0) == 1
    if clear_jump:
        gdq[0] &= _NOT_JUMP8
        flags = np.bitwise_or.reduce(gdq, axis=0)
    if suppress:
        gdq[:, one_good] |= _DNU8
        flags[one_good] |= _DNU8

    # the counts, on the ramps that have such flags at all
    cnt_sat = np.zeros(n, dtype=np.int32)
    cnt_dnu_sat = np.zeros(n, dtype=np.int32)
    cols = np.flatnonzero(flags & _SAT8)
    if cols.size:
        cnt_sat[cols] = _count((gdq[:, cols] & _SAT8) != 0)
    cols = np.flatnonzero(flags & _INVALID8)
    if cols.size:
        cnt_dnu_sat[cols] = _count((gdq[:, cols] & _INVALID8) != 0)

    is_0th = np.zeros(n, dtype=bool)
    is_zframe = np.zeros(n, dtype=bool)
    if not suppress:
        cnt_good = _count(gdq == 0)
        is_0th = (cnt_good == 1) & (gdq[0] == 0)
        if zeroframe is not None:
            zf = zeroframe[ints, pix].reshape(n).astype(np.float64)
            # NaN != 0 is true in C too, so a NaN ZEROFRAME is used.
            is_zframe = ~is_0th & (cnt_good == 0) & (zf != 0.0)
            x[0] = np.where(is_zframe, zf, x[0])
            gdq[0] = np.where(is_zframe, np.uint8(0), gdq[0])
            cnt_dnu_sat = np.where(is_zframe, cnt_dnu_sat - 1, cnt_dnu_sat)
            cnt_sat = np.where(is_zframe & (cnt_sat == ngroups), cnt_sat - 1, cnt_sat)
            clean &= ~is_zframe | np.isfinite(zf)
    return _Block(
        x, gdq, flags, clean, cnt_sat, cnt_dnu_sat, is_0th, is_zframe, chargeloss, orig_gdq
    )


@functools.lru_cache(maxsize=16)
def _sorting_network(n):
    """Compare-exchange pairs, in order, that put the smallest ``n // 2 + 1`` of n first.

    Batcher's odd-even merge sort, without the pairs of inputs n.. (they would be +inf and
    never move) and without the pairs that only order the upper half (the median needs the
    entries up to position n // 2).
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    needed = set(range(n // 2 + 1))
    kept = []
    for a, b in reversed(pairs):
        if a in needed or b in needed:
            kept.append((a, b))
            needed |= {a, b}
    return tuple(reversed(kept))


def _median_rate(blk, tgroup, tframe, one_group_time):
    """Each ramp's median rate (``median_rate_default`` inner loop), NaN -> 0.

    The NaN-median of the first differences of ``data / TGROUP`` (DNU and SAT groups NaN, a
    difference NaN when its later group has JUMP; if all differences are NaN the first rate
    value is used), as ``real_nan_median`` after its qsort: the differences are sorted with
    NaN as +inf and the median is read at the positions the non-NaN count gives, so only
    non-NaN values are read. Equal values may come out swapped, so a zero median may be -0.0
    where C has 0.0 or vice versa; the caller adds it to a sum that starts at +0.0, which
    forgets the sign. Only for NGROUPS > 1. Returns float64 (n,).
    """
    data, gdq = blk.data, blk.gdq
    m, n = data.shape[0] - 1, data.shape[1]
    rate = data / tgroup
    diffs = rate[1:] - rate[:-1]
    count = np.full(n, m)
    # NaNs only in ramps with DNU, SAT or JUMP groups or non-finite data
    odd = np.flatnonzero(~blk.clean | ((blk.flags & (_INVALID8 | _JUMP8)) != 0))
    if odd.size:
        rate, q = rate[:, odd], gdq[:, odd]
        rate[(q & _INVALID8) != 0] = np.nan
        d = rate[1:] - rate[:-1]
        d[(q[1:] & _JUMP8) != 0] = np.nan
        all_nan = np.isnan(d).all(axis=0)
        d[0] = np.where(all_nan & ~np.isnan(rate[0]), rate[0], d[0])
        nan = np.isnan(d)
        count[odd] = m - _count(nan)
        d[nan] = np.inf
        diffs[:, odd] = d

    if m > 64:
        rows = list(np.sort(diffs, axis=0))
    else:
        rows = list(diffs)
        spare = np.empty(n, dtype=np.float64)
        for a, b in _sorting_network(m):
            lo = np.minimum(rows[a], rows[b], out=spare)
            np.maximum(rows[a], rows[b], out=rows[b])
            spare, rows[a] = rows[a], lo
    # count == m: the middle entry, or the mean of the two middle entries (``rows`` is not
    # needed after this, so mrate may be one of them)
    h = m >> 1
    mrate = rows[h] if m & 1 else (rows[h] + rows[h - 1]) / 2.0
    if odd.size:
        cnt = count[odd]
        low = np.stack([r[odd] for r in rows[: h + 1]])  # sorted entries 0..h
        half = cnt >> 1
        col = np.arange(odd.size)
        hi = low[np.minimum(half, m - 1), col]
        lo = low[np.maximum(half - 1, 0), col]
        even = (hi + lo) / 2.0
        mrate[odd] = np.where(cnt == 0, np.nan, np.where((cnt & 1) == 1, hi, even))
    if blk.is_0th.any() or blk.is_zframe.any():
        mrate = np.where(blk.is_0th, data[0] / one_group_time, mrate)
        mrate = np.where(blk.is_zframe, data[0] / tframe, mrate)
    return np.where(np.isnan(mrate), 0.0, mrate)


class _BlockFit(NamedTuple):
    sci: np.ndarray  # float64 (n,)
    err: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray
    dq: np.ndarray  # uint32
    invvar_p: np.ndarray  # float64, the integration's sums over segments
    invvar_r: np.ndarray
    slope_num: np.ndarray
    fitted: np.ndarray  # bool, at least one segment
    is_dnu: np.ndarray  # bool, DQ has DNU
    is_sat: np.ndarray  # bool, DQ has SAT (before partial saturation is flagged)
    chargeloss_inv: np.ndarray | None  # float64 (m,) for blk.chargeloss
    chi2: np.ndarray | None = None  # float64 (n,), ramp_fit.goodness_of_fit only


def _spread(values, cols, n):
    """``values`` at ``cols`` of a new float64 (n,) array (1.0 elsewhere)."""
    out = np.ones(n, dtype=np.float64)
    out[cols] = values
    return out


def _fit_block(blk, c, tgroup, tframe, one_group_time, fixed_power, chi2=False):
    """Integration-level fit of every ramp of a block (``ramp_fit_pixel``, one integration)."""
    ngroups, n = blk.data.shape
    idq = c.pdq | (blk.flags & _JUMP_PERS8).astype(np.uint32)
    sat0 = (blk.gdq[0] & _SAT8) != 0
    idq[sat0] |= _DNU | _SAT
    unusable = blk.cnt_dnu_sat == ngroups
    idq[unusable] |= _DNU
    idq[unusable & (blk.cnt_sat == ngroups)] |= _SAT
    nseg, slots = find_segments(blk.gdq, skip=sat0 | unusable)

    t1 = len1_timing(blk.is_0th, blk.is_zframe, tgroup, tframe, one_group_time)
    exact = blk.clean & np.isfinite(c.invrn2)

    # Fit every segment at once: slot 0 of every ramp, then the segments of the later slots
    # (padded at the end, see pad8; the fits of the padding are not read).
    segments = (blk.data, slots[0].start, slots[0].length, c, t1, tgroup, exact, fixed_power)
    if len(slots) > 1:
        pad = pad8(np.arange(sum(slot.cols.size for slot in slots[1:])))
        later, start, length = (np.concatenate(x)[pad] for x in zip(*slots[1:], strict=True))
        segments = (
            np.concatenate([blk.data, blk.data[:, later]], axis=1),
            np.concatenate([slots[0].start, start]),
            np.concatenate([slots[0].length, length]),
            Consts(*(np.concatenate([a, a[later]]) for a in c)),
            np.concatenate([t1, t1[later]]),
            tgroup,
            np.concatenate([exact, exact[later]]),
            fixed_power,
        )
    slope, var_p, var_r, var_e = fit_segments(*segments)

    # Sums over the segments, in segment order (slot by slot), each from +0.0. A later slot
    # is spread over the block's ramp axis first, so that all slots are summed at the same
    # array positions (where two NaNs meet, the NaN bits depend on the position).
    invvar_r = np.zeros(n, dtype=np.float64)
    invvar_p = np.zeros(n, dtype=np.float64)
    invvar_e = np.zeros(n, dtype=np.float64)
    slope_num = np.zeros(n, dtype=np.float64)
    offset = 0
    for slot in slots:
        part = slice(offset, offset + slot.length.size)
        offset = part.stop
        fit = (slope[part], var_p[part], var_r[part], var_e[part])
        if slot.cols is None:
            active = slot.length > 0
        else:
            active = np.zeros(n, dtype=bool)
            active[slot.cols] = True
            fit = tuple(_spread(x, slot.cols, n) for x in fit)
        s_slope, s_var_p, s_var_r, s_var_e = fit
        invvar_r = np.where(active, invvar_r + 1.0 / s_var_r, invvar_r)
        invvar_p = np.where(active & (s_var_p > 0.0), invvar_p + 1.0 / s_var_p, invvar_p)
        invvar_e = np.where(active, invvar_e + 1.0 / s_var_e, invvar_e)
        slope_num = np.where(active, slope_num + s_slope / s_var_r, slope_num)

    fitted = nseg > 0
    vp = 1.0 / invvar_p
    vp[~(invvar_p > 0.0) | (vp >= LARGE_VARIANCE_THRESHOLD)] = 0.0
    vr = 1.0 / invvar_r
    vr[vr >= LARGE_VARIANCE_THRESHOLD] = 0.0
    var_err = 1.0 / invvar_e
    err = np.sqrt(var_err)
    err[var_err > LARGE_VARIANCE_THRESHOLD] = 0.0
    # ramp_fit_pixel: NaN for DNU and SAT integrations (a group-0 SATURATED one included),
    # 0 for other integrations without segments.
    is_dnu = (idq & _DNU) != 0
    is_sat = (idq & _SAT) != 0
    bad = is_dnu | is_sat
    sci = slope_num * vr
    sci[~fitted] = 0.0
    sci[bad] = np.nan
    unused = ~fitted | bad
    vp[unused] = 0.0
    vr[unused] = 0.0
    err[unused] = 0.0
    idq[blk.cnt_sat > 0] |= _SAT  # partial saturation

    closs = None
    if blk.chargeloss.size:
        cols = blk.chargeloss
        closs = chargeloss_rnoise(blk.orig_gdq, c.take(cols), t1[cols], tgroup)
    gof = reduced_chi2(blk.data, slots, sci, c, tgroup) if chi2 else None
    return _BlockFit(
        sci, err, vp, vr, idq, invvar_p, invvar_r, slope_num, fitted, is_dnu, is_sat, closs, gof
    )


def _pixel_consts(gain, rnoise, dark, mrate, pdq, tgroup):
    """The :class:`Consts` of a range of pixels (float64 inputs, shape (npb,))."""
    rn2 = rnoise * rnoise
    rnum = rnoise / tgroup
    return Consts(
        gain=gain,
        rnoise=rnoise,
        rn2=rn2,
        invrn2=1.0 / rn2,
        numer=np.where(mrate > 0.0, mrate + dark, dark),
        pden2=tgroup * gain,
        varr2=rnoise_short(rnoise, gain, tgroup),
        rnum_long=12.0 * rnum * rnum,
        bad_gain=(gain <= 0.0) | np.isnan(gain),
        pdq=pdq,
    )


# ---------------------------------------------------------------------------------------
# The step


def fit_ramps(
    data,
    groupdq,
    pixeldq,
    gain,
    readnoise,
    params,
    *,
    nframes,
    groupgap,
    tgroup,
    tframe,
    dropframes1=0,
    average_dark_current=None,
    zeroframe=None,
    groups=None,
    memo=None,
):
    """``tsogpu.algorithms.ramp_fit.fit_ramps``, bit for bit, vectorised over blocks of ramps.

    Same parameters and result (not gain-scaled); see that function.

    Notes
    -----
    The pixels are taken in ranges of at most BLOCK_RAMPS; per range, pass 1 (median rates)
    and pass 2 (fits) each run over blocks of whole integrations (up to BLOCK_RAMPS ramps),
    in integration order, so the sums over integrations are sequential as in the C code.
    """
    del groupgap, dropframes1  # pedestal only (fitopt product)
    del memo  # everything is computed
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    suppress = bool(params.suppress_one_group) and ngroups > 1
    first_last = group_range(ngroups, params.firstgroup, params.lastgroup)
    clear_jump = False
    if groups is not None:  # MIRI: the groups kept (their range flags shifted with them)
        g0, g1 = groups
        data, groupdq = data[:, g0:g1], groupdq[:, g0:g1]
        first_last = (max(first_last[0] - g0, 0), first_last[1] - g0)
        clear_jump, ngroups = g0 > 0, g1 - g0

    # The C code reads TGROUP and TFRAME through a float cast.
    tg = np.float64(np.float32(tgroup))
    tf = np.float64(np.float32(tframe))
    one_group_time = (np.float64(nframes) + 1.0) * tf / 2.0

    flat_data = data.reshape(nints, ngroups, npix)
    flat_gdq = groupdq.reshape(nints, ngroups, npix)
    flat_zf = None if zeroframe is None else zeroframe.reshape(nints, npix)

    g = gain.reshape(npix).astype(np.float64)
    rnoise = ols_readnoise(readnoise, gain, nframes).reshape(npix).astype(np.float64)
    dark = (
        np.zeros(npix, dtype=np.float64)
        if average_dark_current is None
        else average_dark_current.reshape(npix).astype(np.float64)
    )
    pdq = pixeldq.reshape(npix).astype(np.uint32)
    pdq = np.where((g <= 0.0) | np.isnan(g), pdq | _DNU | _NO_GAIN, pdq)

    ri_sci = np.empty((nints, npix), dtype=np.float32)
    ri_err = np.empty((nints, npix), dtype=np.float32)
    ri_vp = np.empty((nints, npix), dtype=np.float32)
    ri_vr = np.empty((nints, npix), dtype=np.float64)  # float64 for the CHARGELOSS pass
    ri_dq = np.empty((nints, npix), dtype=np.uint32)
    ri_chi2 = np.empty((nints, npix), dtype=np.float32) if params.goodness_of_fit else None
    chargeloss = np.zeros((nints, npix), dtype=bool)
    chargeloss_inv = None  # float64 (nints, npix) once a CHARGELOSS ramp is found
    rate_dq = pdq.copy()
    rate_vp = np.zeros(npix, dtype=np.float64)
    rate_vr = np.zeros(npix, dtype=np.float64)
    rate_num = np.zeros(npix, dtype=np.float64)
    dnu_cnt = np.zeros(npix, dtype=np.int64)
    sat_cnt = np.zeros(npix, dtype=np.int64)
    any_partial_sat = np.zeros(npix, dtype=bool)

    nranges = -(-npix // BLOCK_RAMPS)
    npb = min(npix, -(-npix // (8 * nranges)) * 8)  # pixels per range, see pad8
    nb = max(1, BLOCK_RAMPS // npb)  # integrations per block

    def blocks(pix):
        for i0 in range(0, nints, nb):
            ints = slice(i0, min(i0 + nb, nints))
            blk = _load_block(
                flat_data, flat_gdq, flat_zf, ints, pix, first_last, suppress, clear_jump
            )
            yield ints, blk

    with np.errstate(all="ignore"):
        for p0 in range(0, npix, npb):
            pix = slice(p0, min(p0 + npb, npix))
            width = pix.stop - pix.start

            # Pass 1: the pixel's median rate, the mean over integrations (in order) of the
            # integrations' median rates. NGROUPS == 1: data[0] / one_group_time, NaN kept.
            accum = np.zeros(width, dtype=np.float64)
            for _, blk in blocks(pix):
                if ngroups == 1:
                    sat = (blk.gdq[0] & _SAT8) != 0
                    med = np.where(sat, np.nan, blk.data[0]) / one_group_time
                else:
                    med = _median_rate(blk, tg, tf, one_group_time)
                for row in med.reshape(-1, width):
                    accum = accum + row
            mrate = accum / np.float64(nints)
            consts = _pixel_consts(g[pix], rnoise[pix], dark[pix], mrate, pdq[pix], tg)
            consts = Consts(*(np.tile(a, nb) for a in consts))  # per ramp of a block

            # Pass 2: per-integration fits; the exposure sums in integration order.
            vp_sum, vr_sum, num_sum = rate_vp[pix], rate_vr[pix], rate_num[pix]  # views
            for ints, blk in blocks(pix):
                k = ints.stop - ints.start
                cs = consts.take(slice(0, k * width))
                fit = _fit_block(
                    blk, cs, tg, tf, one_group_time, params.fixed_power, ri_chi2 is not None
                )
                if ri_chi2 is not None:
                    ri_chi2[ints, pix] = fit.chi2.reshape(k, width)
                ri_sci[ints, pix] = fit.sci.reshape(k, width)
                ri_err[ints, pix] = fit.err.reshape(k, width)
                ri_vp[ints, pix] = fit.var_poisson.reshape(k, width)
                ri_vr[ints, pix] = fit.var_rnoise.reshape(k, width)
                ri_dq[ints, pix] = fit.dq.reshape(k, width)
                for b in range(k):  # sum = where(fitted, sum + x, sum), in place
                    rows = slice(b * width, (b + 1) * width)
                    fitted, inv_p = fit.fitted[rows], fit.invvar_p[rows]
                    np.copyto(vp_sum, vp_sum + inv_p, where=fitted & (inv_p > 0.0))
                    np.copyto(vr_sum, vr_sum + fit.invvar_r[rows], where=fitted)
                    np.copyto(num_sum, num_sum + fit.slope_num[rows], where=fitted)
                dnu_cnt[pix] += fit.is_dnu.reshape(k, width).sum(axis=0)
                sat_cnt[pix] += fit.is_sat.reshape(k, width).sum(axis=0)
                partial = (blk.cnt_sat > 0).reshape(k, width)
                any_partial_sat[pix] |= partial.any(axis=0)
                jump_pers = (blk.flags & _JUMP_PERS8).reshape(k, width)
                rate_dq[pix] |= np.bitwise_or.reduce(jump_pers, axis=0).astype(np.uint32)
                if fit.chargeloss_inv is not None:
                    if chargeloss_inv is None:
                        chargeloss_inv = np.zeros((nints, npix), dtype=np.float64)
                    i_cl, p_cl = np.divmod(blk.chargeloss, width)
                    chargeloss[ints.start + i_cl, pix.start + p_cl] = True
                    chargeloss_inv[ints.start + i_cl, pix.start + p_cl] = fit.chargeloss_inv

        # Exposure level.
        rate_dq = np.where(dnu_cnt == nints, rate_dq | _DNU, rate_dq)
        rate_dq = np.where(sat_cnt == nints, rate_dq | _SAT, rate_dq)
        rate_vp = np.where(rate_vp > 0.0, 1.0 / rate_vp, rate_vp)
        rate_vp = np.where((rate_vp >= LARGE_VARIANCE_THRESHOLD) | (rate_vp < 0.0), 0.0, rate_vp)
        rate_vr = np.where(rate_vr > 0.0, 1.0 / rate_vr, rate_vr)
        rate_vr = np.where(rate_vr >= LARGE_VARIANCE_THRESHOLD, 0.0, rate_vr)
        rate_err = np.sqrt(rate_vp + rate_vr)
        bad = (rate_dq & _INVALID) != 0
        rate_sci = np.where(bad, np.nan, rate_num)
        rate_vp = np.where(bad, 0.0, rate_vp)
        rate_vr = np.where(bad, 0.0, rate_vr)
        rate_err = np.where(bad, 0.0, rate_err)
        rate_dq = np.where(any_partial_sat, rate_dq | _SAT, rate_dq)
        rate_sci = np.where(np.isnan(rate_sci), rate_sci, rate_sci * rate_vr)

        # CHARGELOSS: read-noise variances only, for pixels with CHARGELOSS somewhere.
        if chargeloss_inv is not None:
            px = np.flatnonzero(chargeloss.any(axis=0))
            cl_all, inv_all, vr_all = chargeloss[:, px], chargeloss_inv[:, px], ri_vr[:, px]
            evar_r = np.zeros(px.size, dtype=np.float64)
            for i in range(nints):
                cl, inv, vr_i = cl_all[i], inv_all[i], vr_all[i]
                keep = ~cl & (vr_i > 0.0)
                evar_r = np.where(keep, evar_r + 1.0 / vr_i, evar_r)
                vr = 1.0 / inv
                vr = np.where(vr >= LARGE_VARIANCE_THRESHOLD, 0.0, vr)
                vr_all[i] = np.where(cl, vr, vr_i)
                evar_r = np.where(cl, evar_r + inv, evar_r)
            ri_vr[:, px] = vr_all
            vr = rate_vr[px]
            vr = np.where(evar_r > 0.0, 1.0 / evar_r, vr)
            rate_vr[px] = np.where(vr >= LARGE_VARIANCE_THRESHOLD, 0.0, vr)

    cube = (nints, ny, nx)
    image = (ny, nx)
    rateints = RateProduct(
        sci=ri_sci.reshape(cube),
        err=ri_err.reshape(cube),
        dq=ri_dq.reshape(cube),
        var_poisson=ri_vp.reshape(cube),
        var_rnoise=ri_vr.astype(np.float32).reshape(cube),
    )
    rate = RateProduct(
        sci=rate_sci.astype(np.float32).reshape(image),
        err=rate_err.astype(np.float32).reshape(image),
        dq=rate_dq.astype(np.uint32).reshape(image),
        var_poisson=rate_vp.astype(np.float32).reshape(image),
        var_rnoise=rate_vr.astype(np.float32).reshape(image),
    )
    chi2 = None if ri_chi2 is None else ri_chi2.reshape(cube)
    return RampFitResult(rateints=rateints, rate=rate, chi2=chi2)
