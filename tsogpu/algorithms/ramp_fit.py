"""ramp_fit: optimally weighted ordinary least squares per pixel (stcal 1.20 OLS_C).

Mirrors ``jwst/ramp_fitting/ramp_fit_step.py`` (``set_groupdq`` for firstgroup/lastgroup),
``stcal/ramp_fitting/ramp_fit.py`` (read-noise conversion, one-good-group suppression) and
the C extension ``stcal/ramp_fitting/src/slope_fitter.c`` (everything else), for the
products jwst writes as ``_rateints`` and ``_rate`` before gain_scale.

Everything is per pixel: a pixel's results depend only on its own ramp, PIXELDQ, gain, read
noise, dark current and ZEROFRAME, so any split of the pixels (rows) gives the same bits.
One pixel = one CUDA thread; the order below is the order that thread must follow.

Per pixel (``slope_fitter.c: get_pixel_ramp, ramp_fit_pixel``):

0. Before the C code (Python side): groups outside [firstgroup, lastgroup] get DO_NOT_USE;
   a copy of GROUPDQ is kept for the CHARGELOSS pass; with ``suppress_one_group`` (and
   NGROUPS > 1) an integration with exactly one group of ``gdq & ~PERSISTENCE == 0`` gets
   DO_NOT_USE in every group; read noise becomes ``float32(rn * (gain / sqrt(2 NFRAMES)))``
   (float64 product, electrons per read). TGROUP and TFRAME are rounded to float32 and used
   as doubles, as the C code reads them; ``one_group_time = (NFRAMES + 1) * TFRAME / 2``.
1. Load (``_load_block``): float64 data, SATURATED groups -> NaN (where they are read: only
   by the median rate); per integration the counts of exactly-zero groups, DNU-or-SAT
   groups and SAT groups, and whether any group has JUMP, PERSISTENCE, CHARGELOSS. Bad gain
   (<= 0 or NaN) ORs DNU|NO_GAIN_VALUE into the pixel DQ that every output DQ starts from.
   Without suppression: one exactly-zero group that is group 0 -> "0th-group" timing; no
   exactly-zero group and a non-zero ZEROFRAME -> group 0 := ZEROFRAME, its DQ := 0,
   ZEROFRAME timing (TFRAME).
2. Median rate (``_median_rate``), over ALL integrations of the pixel before any
   fit: per integration the NaN-median of first differences of ``data / TGROUP`` (DNU
   groups NaN, a difference NaN when its later group has JUMP; if all differences are NaN
   the first rate value is used), NaN -> 0; the pixel's rate is the mean of those
   integration medians (float64, summed in integration order). NGROUPS == 1: mean of
   ``data[0] / one_group_time`` (NaN not replaced). The same rate serves every integration.
3. Per integration: segments (``_segments``), segment fits (``_fit_segments``), inverse
   read-noise-variance weighted slope (stcal >= 1.19, JP-4318), the thresholds at
   ``LARGE_VARIANCE_THRESHOLD`` and the DQ summary.
4. Exposure: sums over integrations of the inverse variances and of ``slope / var_r``.
5. CHARGELOSS pixels only: read-noise variances recomputed with CHARGELOSS|DNU toggled off
   in the copied GROUPDQ (``slope_fitter.c: ramp_fit_pixel_rnoise_chargeloss``).

Float rules (as the C code, ``real_t = double``): every intermediate is float64, inputs are
widened from float32, outputs are rounded once to float32. The one transcendental is
``powf`` for the optimal weights: here it is ``float32(pow(float64(float32(x)),
float64(float32(P))))``, the correctly rounded single-precision power. glibc's ``powf``
(which stcal calls) is not correctly rounded in about 0.05 % of the (segment length, group,
P) combinations and then differs by one float32 ulp in that weight; NumPy's own float32
``power`` (SIMD) is worse, so it is not used; the powers are taken from a table of every
(segment length, group, P) (``_weight_table``). Sums run over groups, segments and
integrations in the C code's order. NaN bits aside: where an addition or a multiplication
meets two NaNs, NumPy's loops return one or the other depending on the element's position
in the array (see ``_pad8``), so the sign of such a NaN may depend on the split.

NumPy implementation: a ramp is one pixel in one integration; steps 1-3 are per ramp and run
on blocks of ramps (several integrations x a range of pixels, one flat ramp axis of up to
``BLOCK_RAMPS``), with loops over groups only; steps 2 and 4 then sum over integrations in
integration order.

Non-local behaviour of stcal, NOT done here (the caller must): if every pixel of every
integration of the whole exposure has SATURATED in group 0, stcal returns no products at all
(see :func:`exposure_fully_saturated`). MIRI's whole-array group discard
(``ols_fit.py: discard_miri_groups``) is not implemented (near-infrared only).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .. import dq

# slope_fitter.c: LARGE_VARIANCE_THRESHOLD
LARGE_VARIANCE_THRESHOLD = 1.0e6

# PIXELDQ / output DQ (uint32)
_DNU = np.uint32(dq.DO_NOT_USE)
_SAT = np.uint32(dq.SATURATED)
_NO_GAIN = np.uint32(dq.NO_GAIN_VALUE)
_INVALID = np.uint32(dq.DO_NOT_USE | dq.SATURATED)
# GROUPDQ (uint8)
_DNU8 = np.uint8(dq.DO_NOT_USE)
_SAT8 = np.uint8(dq.SATURATED)
_JUMP8 = np.uint8(dq.JUMP_DET)
_CHARGELOSS8 = np.uint8(dq.CHARGELOSS)
_INVALID8 = np.uint8(dq.DO_NOT_USE | dq.SATURATED)
_NOT_PERS8 = np.uint8(~np.uint8(dq.PIXEL["PERSISTENCE"]))
_JUMP_PERS8 = np.uint8(dq.JUMP_DET | dq.PIXEL["PERSISTENCE"])  # passed on to the DQ
_CHARGELOSS_TOGGLE8 = np.uint8(dq.CHARGELOSS | dq.DO_NOT_USE)

# snr_power: the exponent is _POWERS[searchsorted(_SNR_BOUNDS, snr, "right")] (NaN -> 10)
_SNR_BOUNDS = np.array([5.0, 10.0, 20.0, 50.0, 100.0])
_POWERS = np.array([0.0, 0.4, 1.0, 3.0, 6.0, 10.0])

# Ramps (integration x pixel) per block: enough that NumPy's per-call overhead is small,
# few enough that a block's (ngroups, n) work arrays stay close to the CPU caches. The
# results do not depend on it.
BLOCK_RAMPS = 1 << 14


class RateProduct(NamedTuple):
    """One rate product: SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE.

    Arrays are float32 (DQ uint32), shape (ny, nx) for ``rate`` and (nints, ny, nx) for
    ``rateints``; units DN/s (variances (DN/s)^2).
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray


class RampFitResult(NamedTuple):
    """Output of :func:`fit_ramps`: the ``_rateints`` and ``_rate`` arrays."""

    rateints: RateProduct
    rate: RateProduct


# ---------------------------------------------------------------------------------------
# Python-side preparation (jwst ramp_fit_step.py, stcal ramp_fit.py)


def flag_group_range(groupdq, firstgroup, lastgroup):
    """OR DO_NOT_USE into groups outside [firstgroup, lastgroup] (jwst ``set_groupdq``).

    jwst's quirks are kept: ``firstgroup < 0`` becomes 0; ``lastgroup >= ngroups`` is only
    warned about (no group after it exists); ``firstgroup >= lastgroup`` ignores both.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    firstgroup, lastgroup : int or None, 0-based

    Returns
    -------
    ndarray of uint8, same shape; a new array.
    """
    out = groupdq.copy()
    first, last = group_range(groupdq.shape[1], firstgroup, lastgroup)
    out[:, :first] |= _DNU8
    out[:, last + 1 :] |= _DNU8
    return out


def group_range(ngroups, firstgroup, lastgroup):
    """The groups [first, last] that ``set_groupdq`` leaves usable (see flag_group_range)."""
    if firstgroup is None and lastgroup is None:
        return 0, ngroups - 1
    first = 0 if firstgroup is None else int(firstgroup)
    last = ngroups - 1 if lastgroup is None else int(lastgroup)
    if first < 0:
        first = 0
    if first >= last:
        first, last = 0, ngroups - 1
    return first, last


def suppress_one_good_group(groupdq):
    """DO_NOT_USE in every group of integrations with exactly one good group.

    Mirrors ``stcal ramp_fit.py: suppress_one_good_group_ramps``: "good" is
    ``gdq & ~PERSISTENCE == 0``.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)

    Returns
    -------
    ndarray of uint8, same shape; a new array.
    """
    not_pers = np.uint8(~np.uint8(dq.PIXEL["PERSISTENCE"]))
    ngood = np.zeros((groupdq.shape[0],) + groupdq.shape[2:], dtype=np.int32)
    for g in range(groupdq.shape[1]):
        ngood += (groupdq[:, g] & not_pers) == 0
    out = groupdq.copy()
    out |= np.where(ngood == 1, np.uint8(dq.DO_NOT_USE), np.uint8(0))[:, None]
    return out


def ols_readnoise(readnoise, gain, nframes):
    """Per-read read noise in electrons, as OLS_C converts it in place.

    ``readnoise_2d *= gain_2d / np.sqrt(2.0 * nframes)`` with float32 arrays: the quotient
    is float64 (``np.sqrt`` returns a float64 scalar), so the product is float64, rounded
    to float32 by the in-place store.

    Parameters
    ----------
    readnoise, gain : ndarray of float32, (ny, nx); readnoise in DN (CDS), gain in e/DN
    nframes : int

    Returns
    -------
    ndarray of float32, (ny, nx)
    """
    factor = gain.astype(np.float64) / np.sqrt(np.float64(2.0 * nframes))
    return (readnoise.astype(np.float64) * factor).astype(np.float32)


def exposure_fully_saturated(groupdq):
    """True when stcal would return no products: group 0 SATURATED in every pixel and int.

    This is the only whole-array statistic of OLS_C (``ols_fit.py: ols_ramp_fit_multi``);
    jwst then writes neither ``_rate`` nor ``_rateints``. A caller that fits the exposure in
    chunks must AND this over all chunks (and all integrations) itself.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    """
    return bool(np.all((groupdq[:, 0] & np.uint8(dq.SATURATED)) != 0))


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


class _Slot(NamedTuple):
    """The s-th fitted segment of the ramps ``cols`` (None: every ramp, length 0 = none)."""

    cols: np.ndarray | None
    start: np.ndarray  # intp, first group
    length: np.ndarray  # intp, number of groups


class _Consts(NamedTuple):
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
        return _Consts(*(a[index] for a in self))


def _pad8(index):
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


def _count(mask):
    """Number of True along axis 0 of a (ngroups, n) bool array: int32 (n,)."""
    return np.add.reduce(mask.view(np.uint8), axis=0, dtype=np.int32)


def _load_block(data, groupdq, zeroframe, ints, pix, group_range, suppress):
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
    first, last = group_range
    gdq[:first] |= _DNU8
    gdq[last + 1 :] |= _DNU8

    flags = np.bitwise_or.reduce(gdq, axis=0)
    chargeloss = np.flatnonzero(flags & _CHARGELOSS8)
    orig_gdq = gdq[:, chargeloss]  # a copy, taken before the suppression
    if suppress:
        one_good = _count((gdq & _NOT_PERS8) == 0) == 1
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


def _segments(gdq, skip=None):
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
    slots : list of _Slot; slot 0 covers every ramp (length 0 where nseg == 0), slot s > 0
        lists the ramps with more than s segments.
    """
    ngroups, n = gdq.shape
    flags = gdq & _NOT_PERS8
    plain = np.bitwise_or.reduce(flags, axis=0) == 0
    nseg = plain.astype(np.intp)
    start0 = np.zeros(n, dtype=np.intp)
    length0 = np.where(plain, ngroups, 0)
    slots = [_Slot(None, start0, length0)]
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
                slots.append(_Slot(cols[sel], start[sel], length[sel]))
    if skip is not None:
        nseg[skip] = 0
        length0[skip] = 0
    return nseg, slots


def _len1_timing(is_0th, is_zframe, tgroup, tframe, one_group_time):
    """``segment_len1_timing``: the time of a one-group segment."""
    return np.where(is_0th, one_group_time, np.where(is_zframe, tframe, tgroup))


def _rnoise_short(rnoise, gain, timing):
    """``segment_rnoise_len1/len2``: ``12 (R/t)^2 / (6 G^2)``, in the C operation order."""
    rnum = rnoise / timing
    rnum = 12.0 * rnum * rnum
    rden = 6.0 * gain * gain
    return rnum / rden


def _rnoise_long(c, seglen):
    """``segment_rnoise_default``: ``12 (R/t)^2 / ((n^3 - n) G^2)``; 0 for a bad gain."""
    rden = seglen * seglen * seglen - seglen
    rden = rden * c.gain * c.gain
    return np.where(c.bad_gain, 0.0, c.rnum_long / rden)


def _powf(x, p):
    """Single-precision ``powf(x, p)`` of doubles, correctly rounded (see module doc)."""
    x32 = x.astype(np.float32).astype(np.float64)
    p32 = p.astype(np.float32).astype(np.float64)
    return np.power(x32, p32).astype(np.float32).astype(np.float64)


@functools.lru_cache(maxsize=8)
def _weight_table(ngroups):
    """The optimal-weighting powers ``powf(|(k - mid) / mid|, P)``, flat and read-only.

    The weight of group k of a segment depends only on the segment length L, k and the
    power class c (the index of P in _POWERS), so the ramps read it from this table:
    ``table[ngroups + (L * 6 + c) * ngroups + k]``, computed exactly as ``ramp_fit_segment``
    does per pixel, zero for k >= L and for L < 3. For a group before the segment (k < 0)
    that index falls into the zero tail of the previous row (its length is at most
    ``ngroups - start``) or into the leading zeros, so a ramp reads 0 for every group
    outside its segment.
    """
    g = ngroups
    table = np.zeros((g + 1, len(_POWERS), g), dtype=np.float64)
    lengths = np.arange(3, g + 1)
    seg = np.repeat(lengths, lengths)  # (L, k) for every L >= 3 and k < L
    k = np.concatenate([np.arange(n) for n in lengths]) if lengths.size else seg
    seglen = seg.astype(np.float64)
    mid = (seglen - 1.0) / 2.0
    invmid = 1.0 / mid
    weight = np.abs((k.astype(np.float64) - mid) * invmid)
    for c, power in enumerate(_POWERS):
        table[seg, c, k] = _powf(weight, np.full(weight.shape, power))
    flat = np.concatenate([np.zeros(g), table.reshape(-1)])
    flat.flags.writeable = False
    return flat


def _weighted_sums(data, start, length, power_class, invrn2, exact):
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
    table = _weight_table(ngroups)
    widx = ngroups + (length * len(_POWERS) + power_class) * ngroups - start
    sums = tuple(np.zeros(n, dtype=np.float64) for _ in range(5))
    fitted = np.flatnonzero(length >= 3)
    if fitted.size == 0:
        return sums
    g0 = int(start[fitted].min())
    g1 = int((start + length)[fitted].max())
    _sum_groups(sums, data, widx, invrn2, table, g0, g1)
    masked = _pad8(fitted[~exact[fitted]])
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


def _fit_segments(data, start, length, c, t1, tgroup, exact):
    """Slope, Poisson, read-noise and total variance of segments (``ramp_fit_segment``).

    ``data`` (ngroups, n): the ramp of each segment, as loaded; ``start``, ``length`` (n,);
    ``c`` per-segment constants, ``t1`` the one-group time, ``exact`` see
    :func:`_weighted_sums`. Returns four float64 (n,) arrays; entries of segments of length
    0 are meaningless.
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
    sumw, sumx, sumxx, sumy, sumxy = _weighted_sums(
        data, start, length, power_class, c.invrn2, exact
    )
    dden = sumw * sumxx - sumx * sumx
    num = sumw * sumxy - sumx * sumy
    invden = 1.0 / dden
    slope = (num * invden) / tgroup
    var_p = c.numer / (c.pden2 * (seglen - 1.0))
    var_r = _rnoise_long(c, seglen)

    one = length == 1
    if one.any():  # slope_seg_len1
        slope = np.where(one, y0 / t1, slope)
        var_p = np.where(one, c.numer / (t1 * gain), var_p)
        var_r = np.where(one, _rnoise_short(c.rnoise, gain, t1), var_r)
    two = length == 2
    if two.any():  # slope_seg_len2
        slope = np.where(two, (y1 - y0) / tgroup, slope)
        var_p = np.where(two, c.numer / c.pden2, var_p)
        var_r = np.where(two, c.varr2, var_r)
    return slope, var_p, var_r, var_p + var_r


def _chargeloss_rnoise(orig_gdq, c, t1, tgroup):
    """Integration inverse read-noise variance with CHARGELOSS|DNU toggled off.

    ``ramp_fit_pixel_rnoise_chargeloss_remove`` XORs CHARGELOSS|DO_NOT_USE into every group
    that has CHARGELOSS (so a CHARGELOSS group without DNU GAINS DNU: stcal's quirk, kept);
    segments are rebuilt without the group-0 SATURATED shortcut and only positive segment
    variances count. Returns float64 (m,) = sum of 1 / var_r over the segments in order.
    """
    gdq = np.where((orig_gdq & _CHARGELOSS8) != 0, orig_gdq ^ _CHARGELOSS_TOGGLE8, orig_gdq)
    _, slots = _segments(gdq)
    invvar_r = np.zeros(gdq.shape[1], dtype=np.float64)
    for slot in slots:
        cols = slice(None) if slot.cols is None else slot.cols
        cs = c.take(cols)
        length = slot.length
        svar = np.where(
            length == 1,
            _rnoise_short(cs.rnoise, cs.gain, t1[cols]),
            np.where(length == 2, cs.varr2, _rnoise_long(cs, length.astype(np.float64))),
        )
        use = (length > 0) & (svar > 0.0)
        invvar_r[cols] = np.where(use, invvar_r[cols] + 1.0 / svar, invvar_r[cols])
    return invvar_r


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


def _spread(values, cols, n):
    """``values`` at ``cols`` of a new float64 (n,) array (1.0 elsewhere)."""
    out = np.ones(n, dtype=np.float64)
    out[cols] = values
    return out


def _fit_block(blk, c, tgroup, tframe, one_group_time):
    """Integration-level fit of every ramp of a block (``ramp_fit_pixel``, one integration)."""
    ngroups, n = blk.data.shape
    idq = c.pdq | (blk.flags & _JUMP_PERS8).astype(np.uint32)
    sat0 = (blk.gdq[0] & _SAT8) != 0
    idq[sat0] |= _DNU | _SAT
    unusable = blk.cnt_dnu_sat == ngroups
    idq[unusable] |= _DNU
    idq[unusable & (blk.cnt_sat == ngroups)] |= _SAT
    nseg, slots = _segments(blk.gdq, skip=sat0 | unusable)

    t1 = _len1_timing(blk.is_0th, blk.is_zframe, tgroup, tframe, one_group_time)
    exact = blk.clean & np.isfinite(c.invrn2)

    # Fit every segment at once: slot 0 of every ramp, then the segments of the later slots
    # (padded at the end, see _pad8; the fits of the padding are not read).
    segments = (blk.data, slots[0].start, slots[0].length, c, t1, tgroup, exact)
    if len(slots) > 1:
        pad = _pad8(np.arange(sum(slot.cols.size for slot in slots[1:])))
        later, start, length = (np.concatenate(x)[pad] for x in zip(*slots[1:], strict=True))
        segments = (
            np.concatenate([blk.data, blk.data[:, later]], axis=1),
            np.concatenate([slots[0].start, start]),
            np.concatenate([slots[0].length, length]),
            _Consts(*(np.concatenate([a, a[later]]) for a in c)),
            np.concatenate([t1, t1[later]]),
            tgroup,
            np.concatenate([exact, exact[later]]),
        )
    slope, var_p, var_r, var_e = _fit_segments(*segments)

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
        closs = _chargeloss_rnoise(blk.orig_gdq, c.take(cols), t1[cols], tgroup)
    return _BlockFit(
        sci, err, vp, vr, idq, invvar_p, invvar_r, slope_num, fitted, is_dnu, is_sat, closs
    )


def _pixel_consts(gain, rnoise, dark, mrate, pdq, tgroup):
    """The :class:`_Consts` of a range of pixels (float64 inputs, shape (npb,))."""
    rn2 = rnoise * rnoise
    rnum = rnoise / tgroup
    return _Consts(
        gain=gain,
        rnoise=rnoise,
        rn2=rn2,
        invrn2=1.0 / rn2,
        numer=np.where(mrate > 0.0, mrate + dark, dark),
        pden2=tgroup * gain,
        varr2=_rnoise_short(rnoise, gain, tgroup),
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
):
    """Fit every pixel's ramps as jwst 3.0 RampFitStep does with OLS_C (stcal 1.20).

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx), DN, after jump
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    gain : ndarray of float32, (ny, nx), e/DN, cut to the subarray
    readnoise : ndarray of float32, (ny, nx), DN (CDS), cut to the subarray
    params : tsogpu.config.RampFit
    nframes : int, NFRAMES
    groupgap, dropframes1 : int, GROUPGAP and DRPFRMS1; OLS_C uses them only for the
        optional pedestal product, so they do not change the results here.
    tgroup, tframe : float, TGROUP and TFRAME [s]
    average_dark_current : ndarray of float32, (ny, nx), or None (zeros)
    zeroframe : ndarray of float32, (nints, ny, nx), or None; used only when
        ``suppress_one_group`` is off (or NGROUPS == 1).

    Returns
    -------
    RampFitResult
        ``rateints``: float32 (nints, ny, nx) arrays (DQ uint32); ``rate``: (ny, nx).
        Not gain-scaled. The caller must check :func:`exposure_fully_saturated` over the
        whole exposure: where it is true jwst writes no products.

    Notes
    -----
    The pixels are taken in ranges of at most BLOCK_RAMPS; per range, pass 1 (median rates)
    and pass 2 (fits) each run over blocks of whole integrations (up to BLOCK_RAMPS ramps),
    in integration order, so the sums over integrations are sequential as in the C code.
    """
    del groupgap, dropframes1  # pedestal only (fitopt product)
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    suppress = bool(params.suppress_one_group) and ngroups > 1
    usable_groups = group_range(ngroups, params.firstgroup, params.lastgroup)

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
    npb = min(npix, -(-npix // (8 * nranges)) * 8)  # pixels per range, see _pad8
    nb = max(1, BLOCK_RAMPS // npb)  # integrations per block

    def blocks(pix):
        for i0 in range(0, nints, nb):
            ints = slice(i0, min(i0 + nb, nints))
            blk = _load_block(flat_data, flat_gdq, flat_zf, ints, pix, usable_groups, suppress)
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
            consts = _Consts(*(np.tile(a, nb) for a in consts))  # per ramp of a block

            # Pass 2: per-integration fits; the exposure sums in integration order.
            vp_sum, vr_sum, num_sum = rate_vp[pix], rate_vr[pix], rate_num[pix]  # views
            for ints, blk in blocks(pix):
                k = ints.stop - ints.start
                fit = _fit_block(blk, consts.take(slice(0, k * width)), tg, tf, one_group_time)
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
    return RampFitResult(rateints=rateints, rate=rate)
