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
1. Load (``_load_integration``): float64 data, SATURATED groups -> NaN; per integration the
   counts of exactly-zero groups, DNU-or-SAT groups and SAT groups, and whether any group
   has JUMP, PERSISTENCE, CHARGELOSS. Bad gain (<= 0 or NaN) ORs DNU|NO_GAIN_VALUE into
   the pixel DQ that every output DQ starts from. Without suppression: one exactly-zero
   group that is group 0 -> "0th-group" timing; no exactly-zero group and a non-zero
   ZEROFRAME -> group 0 := ZEROFRAME, its DQ := 0, ZEROFRAME timing (TFRAME).
2. Median rate (``_integration_median_rate``), over ALL integrations of the pixel before any
   fit: per integration the NaN-median of first differences of ``data / TGROUP`` (DNU
   groups NaN, a difference NaN when its later group has JUMP; if all differences are NaN
   the first rate value is used), NaN -> 0; the pixel's rate is the mean of those
   integration medians (float64, summed in integration order). NGROUPS == 1: mean of
   ``data[0] / one_group_time`` (NaN not replaced). The same rate serves every integration.
3. Per integration: segments (``_segments``), segment fits (``_fit_segment``), inverse
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
``power`` (SIMD) is worse, so it is not used. Sums run over groups, segments and
integrations in the C code's order.

Non-local behaviour of stcal, NOT done here (the caller must): if every pixel of every
integration of the whole exposure has SATURATED in group 0, stcal returns no products at all
(see :func:`exposure_fully_saturated`). MIRI's whole-array group discard
(``ols_fit.py: discard_miri_groups``) is not implemented (near-infrared only).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import dq

# slope_fitter.c: LARGE_VARIANCE_THRESHOLD
LARGE_VARIANCE_THRESHOLD = 1.0e6

_DNU = np.uint32(dq.DO_NOT_USE)
_SAT = np.uint32(dq.SATURATED)
_JUMP = np.uint32(dq.JUMP_DET)
_PERS = np.uint32(dq.PIXEL["PERSISTENCE"])
_CHARGELOSS = np.uint32(dq.CHARGELOSS)
_NO_GAIN = np.uint32(dq.NO_GAIN_VALUE)
_INVALID = np.uint32(dq.DO_NOT_USE | dq.SATURATED)
_NOT_PERS = np.uint32(~np.uint32(dq.PIXEL["PERSISTENCE"]))


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
    if firstgroup is None and lastgroup is None:
        return out
    ngroups = groupdq.shape[1]
    first = 0 if firstgroup is None else int(firstgroup)
    last = ngroups - 1 if lastgroup is None else int(lastgroup)
    if first < 0:
        first = 0
    if first >= last:
        first, last = 0, ngroups - 1
    dnu = np.uint8(dq.DO_NOT_USE)
    if first > 0:
        out[:, :first] |= dnu
    if last < ngroups - 1:
        out[:, last + 1 :] |= dnu
    return out


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
# Per-pixel pieces (vectorised over a flat pixel axis of length npix)


class _Integration(NamedTuple):
    data: np.ndarray  # float64 (ngroups, npix), SAT -> NaN, group 0 may be ZEROFRAME
    gdq: np.ndarray  # uint32 (ngroups, npix), group 0 cleared where ZEROFRAME is used
    cnt_sat: np.ndarray  # int32 (npix,)
    cnt_dnu_sat: np.ndarray  # int32 (npix,)
    jump: np.ndarray  # bool (npix,)
    persistence: np.ndarray  # bool (npix,)
    chargeloss: np.ndarray  # bool (npix,)
    is_0th: np.ndarray  # bool (npix,)
    is_zframe: np.ndarray  # bool (npix,)


def _load_integration(data_i, gdq_i, zframe_i, special):
    """One integration of each pixel, as ``get_pixel_ramp`` loads it.

    data_i : float32 (ngroups, npix); gdq_i : uint8 (ngroups, npix);
    zframe_i : float32 (npix,) or None; special : not suppress_one_group.
    """
    ngroups, npix = data_i.shape
    data = data_i.astype(np.float64)
    gdq = gdq_i.astype(np.uint32)
    cnt_good = np.zeros(npix, dtype=np.int32)
    cnt_dnu_sat = np.zeros(npix, dtype=np.int32)
    cnt_sat = np.zeros(npix, dtype=np.int32)
    jump = np.zeros(npix, dtype=bool)
    pers = np.zeros(npix, dtype=bool)
    closs = np.zeros(npix, dtype=bool)
    for g in range(ngroups):
        f = gdq[g]
        jump |= (f & _JUMP) != 0
        pers |= (f & _PERS) != 0
        closs |= (f & _CHARGELOSS) != 0
        cnt_good += f == 0
        cnt_dnu_sat += ((f & _DNU) != 0) | ((f & _SAT) != 0)
        sat = (f & _SAT) != 0
        cnt_sat += sat
        data[g] = np.where(sat, np.nan, data[g])

    is_0th = np.zeros(npix, dtype=bool)
    is_zframe = np.zeros(npix, dtype=bool)
    if special:
        is_0th = (cnt_good == 1) & (gdq[0] == 0)
        if zframe_i is not None:
            zf = zframe_i.astype(np.float64)
            # NaN != 0 is true in C too, so a NaN ZEROFRAME is used.
            is_zframe = ~is_0th & (cnt_good == 0) & (zf != 0.0)
            data[0] = np.where(is_zframe, zf, data[0])
            gdq[0] = np.where(is_zframe, np.uint32(0), gdq[0])
            cnt_dnu_sat = np.where(is_zframe, cnt_dnu_sat - 1, cnt_dnu_sat)
            cnt_sat = np.where(is_zframe & (cnt_sat == ngroups), cnt_sat - 1, cnt_sat)
    return _Integration(data, gdq, cnt_sat, cnt_dnu_sat, jump, pers, closs, is_0th, is_zframe)


def _nan_median(values):
    """Median of the non-NaN entries along axis 0 (``real_nan_median`` after its qsort).

    values : float64 (n, npix). NaN where all entries are NaN.
    """
    srt = np.sort(values, axis=0)  # NaNs sort last, as the C comparison puts them
    count = np.sum(~np.isnan(srt), axis=0)
    half = count >> 1
    hi = np.take_along_axis(srt, np.minimum(half, srt.shape[0] - 1)[None], axis=0)[0]
    lo = np.take_along_axis(srt, np.maximum(half - 1, 0)[None], axis=0)[0]
    even = (hi + lo) / 2.0
    return np.where(count == 0, np.nan, np.where((count & 1) == 1, hi, even))


def _integration_median_rate(ig, tgroup, tframe, one_group_time):
    """One integration's median rate (``median_rate_default`` inner loop), NaN -> 0.

    Only for NGROUPS > 1. Returns float64 (npix,).
    """
    ngroups = ig.data.shape[0]
    rate = np.where((ig.gdq & _DNU) != 0, np.nan, ig.data / tgroup)
    diffs = np.empty((ngroups - 1, rate.shape[1]), dtype=np.float64)
    all_nan = np.ones(rate.shape[1], dtype=bool)
    for k in range(ngroups - 1):
        diffs[k] = np.where((ig.gdq[k + 1] & _JUMP) != 0, np.nan, rate[k + 1] - rate[k])
        all_nan &= np.isnan(diffs[k])
    diffs[0] = np.where(all_nan & ~np.isnan(rate[0]), rate[0], diffs[0])
    mrate = _nan_median(diffs)
    mrate = np.where(ig.is_0th, ig.data[0] / one_group_time, mrate)
    mrate = np.where(ig.is_zframe, ig.data[0] / tframe, mrate)
    return np.where(np.isnan(mrate), 0.0, mrate)


def _segments(gdq, skip_sat0):
    """Fit segments of one integration (``compute_integration_segments`` + pruning).

    A segment is a maximal run of groups with ``gdq & ~PERSISTENCE == 0``, end exclusive,
    that starts one group earlier when that group's flags are exactly JUMP_DET (ignoring
    PERSISTENCE). stcal's list rules (skip a length-1 run once a longer run exists, then
    ``prune_segment_list``) leave: every run of length >= 2 in order, or, when there is
    none, only the first run of length 1. ``skip_sat0``: no segments where group 0 has
    SATURATED (the main pass; the CHARGELOSS pass does not skip).

    Parameters
    ----------
    gdq : uint32 (ngroups, npix)

    Returns
    -------
    starts, lengths : int64 (max(1, ngroups // 2), npix); nseg : int64 (npix,)
    """
    ngroups, npix = gdq.shape
    nmax = max(1, ngroups // 2)  # runs of length >= 2 are disjoint
    starts = np.zeros((nmax, npix), dtype=np.int64)
    lengths = np.zeros((nmax, npix), dtype=np.int64)
    nlong = np.zeros(npix, dtype=np.int64)
    first1 = np.full(npix, -1, dtype=np.int64)  # start of the first length-1 run
    in_seg = np.zeros(npix, dtype=bool)
    start = np.zeros(npix, dtype=np.int64)
    cols = np.arange(npix)

    def close(mask, end):
        length = end - start
        long_ = mask & (length >= 2)
        starts[nlong[long_], cols[long_]] = start[long_]
        lengths[nlong[long_], cols[long_]] = length[long_]
        nlong[long_] += 1
        one = mask & (length == 1) & (first1 < 0)
        first1[one] = start[one]

    for g in range(ngroups):
        good = (gdq[g] & _NOT_PERS) == 0
        if g > 0:
            prev_jump = (gdq[g - 1] & _NOT_PERS) == _JUMP
        else:
            prev_jump = np.zeros(npix, dtype=bool)
        new = good & ~in_seg
        start = np.where(new, np.where(prev_jump, g - 1, g), start)
        close(~good & in_seg, g)
        in_seg = good
    close(in_seg, ngroups)

    use1 = (nlong == 0) & (first1 >= 0)
    starts[0] = np.where(use1, first1, starts[0])
    lengths[0] = np.where(use1, 1, lengths[0])
    nseg = np.where(use1, 1, nlong)
    if skip_sat0:
        nseg = np.where((gdq[0] & _SAT) != 0, 0, nseg)
    return starts, lengths, nseg


def _len1_timing(ig, tgroup, tframe, one_group_time):
    """``segment_len1_timing``: the time of a one-group segment."""
    return np.where(ig.is_0th, one_group_time, np.where(ig.is_zframe, tframe, tgroup))


def _rnoise_short(rnoise, gain, timing):
    """``segment_rnoise_len1/len2``: ``12 (R/t)^2 / (6 G^2)``, in the C operation order."""
    rnum = rnoise / timing
    rnum = 12.0 * rnum * rnum
    rden = 6.0 * gain * gain
    return rnum / rden


def _rnoise_long(rnoise, gain, seglen, tgroup):
    """``segment_rnoise_default``: ``12 (R/t)^2 / ((n^3 - n) G^2)``; 0 for a bad gain."""
    rnum = rnoise / tgroup
    rnum = 12.0 * rnum * rnum
    rden = seglen * seglen * seglen - seglen
    rden = rden * gain * gain
    return np.where((gain <= 0.0) | np.isnan(gain), 0.0, rnum / rden)


def _snr_power(snr):
    """``snr_power``: the optimal-weighting exponent; a NaN SNR gives 10 as in C."""
    return np.select(
        [snr < 5.0, snr < 10.0, snr < 20.0, snr < 50.0, snr < 100.0],
        [0.0, 0.4, 1.0, 3.0, 6.0],
        10.0,
    )


def _powf(x, p):
    """Single-precision ``powf(x, p)`` of doubles, correctly rounded (see module doc)."""
    x32 = x.astype(np.float32).astype(np.float64)
    p32 = p.astype(np.float32).astype(np.float64)
    return np.power(x32, p32).astype(np.float32).astype(np.float64)


def _fit_segment(ig, start, length, px, tgroup, tframe, one_group_time):
    """Slope, Poisson, read-noise and total variance of one segment per pixel.

    ``px`` holds the pixel quantities (float64 (npix,)): gain, rnoise (e-), dark,
    median_rate. Returns four float64 (npix,) arrays; entries for pixels whose segment
    length is 0 are meaningless.
    """
    gain, rnoise, dark, mrate = px["gain"], px["rnoise"], px["dark"], px["median_rate"]
    data = ig.data
    last = data.shape[0] - 1
    y0 = np.take_along_axis(data, np.minimum(start, last)[None], axis=0)[0]
    y1 = np.take_along_axis(data, np.minimum(start + 1, last)[None], axis=0)[0]
    yend = np.take_along_axis(data, np.clip(start + length - 1, 0, last)[None], axis=0)[0]
    seglen = length.astype(np.float64)

    # Length 1 (slope_seg_len1)
    t1 = _len1_timing(ig, tgroup, tframe, one_group_time)
    slope1 = y0 / t1
    pden1 = t1 * gain
    varp1 = np.where(mrate > 0.0, (mrate + dark) / pden1, dark / pden1)
    varr1 = _rnoise_short(rnoise, gain, t1)

    # Length 2 (slope_seg_len2)
    slope2 = (y1 - y0) / tgroup
    pden2 = tgroup * gain
    varp2 = np.where(mrate > 0.0, (mrate + dark) / pden2, dark / pden2)
    varr2 = _rnoise_short(rnoise, gain, tgroup)

    # Length >= 3: optimal weights from the segment's SNR (segment_snr, snr_power)
    diff = yend - y0
    den = rnoise * rnoise + diff * gain
    s = (diff * gain) / np.sqrt(den)
    snr = np.where((den <= 0.0) | (gain == 0.0), 0.0, np.where(s < 0.0, 0.0, s))
    power = _snr_power(snr)
    mid = (seglen - 1.0) / 2.0
    invmid = 1.0 / mid
    invrn2 = 1.0 / (rnoise * rnoise)
    sumw = np.zeros_like(y0)
    sumx = np.zeros_like(y0)
    sumxx = np.zeros_like(y0)
    sumy = np.zeros_like(y0)
    sumxy = np.zeros_like(y0)
    for k in range(int(length.max(initial=0))):
        inside = k < length
        xval = np.float64(k)
        weight = np.abs((xval - mid) * invmid)
        weight = _powf(weight, power) * invrn2
        xval = xval + start.astype(np.float64)
        yk = np.take_along_axis(data, np.minimum(start + k, last)[None], axis=0)[0]
        yk = np.where(np.isnan(yk), 0.0, yk)
        xwt = xval * weight
        sumw = np.where(inside, sumw + weight, sumw)
        sumx = np.where(inside, sumx + xwt, sumx)
        sumxx = np.where(inside, sumxx + xval * xwt, sumxx)
        sumy = np.where(inside, sumy + yk * weight, sumy)
        sumxy = np.where(inside, sumxy + yk * xwt, sumxy)
    dden = sumw * sumxx - sumx * sumx
    num = sumw * sumxy - sumx * sumy
    invden = 1.0 / dden
    slope3 = (num * invden) / tgroup
    pden3 = tgroup * gain * (seglen - 1.0)
    varp3 = np.where(mrate > 0.0, (mrate + dark) / pden3, dark / pden3)
    varr3 = _rnoise_long(rnoise, gain, seglen, tgroup)

    slope = np.where(length == 1, slope1, np.where(length == 2, slope2, slope3))
    var_p = np.where(length == 1, varp1, np.where(length == 2, varp2, varp3))
    var_r = np.where(length == 1, varr1, np.where(length == 2, varr2, varr3))
    return slope, var_p, var_r, var_p + var_r


def _chargeloss_rnoise(ig, orig_gdq_i, px, tgroup, tframe, one_group_time):
    """Integration inverse read-noise variance with CHARGELOSS|DNU toggled off.

    ``ramp_fit_pixel_rnoise_chargeloss_remove`` XORs CHARGELOSS|DO_NOT_USE into every group
    that has CHARGELOSS (so a CHARGELOSS group without DNU GAINS DNU: stcal's quirk, kept);
    segments are rebuilt without the group-0 SATURATED shortcut and only positive segment
    variances count. Returns float64 (npix,) = sum of 1 / var_r.
    """
    gdq = orig_gdq_i.astype(np.uint32)
    toggle = np.uint32(dq.CHARGELOSS | dq.DO_NOT_USE)
    gdq = np.where((gdq & _CHARGELOSS) != 0, gdq ^ toggle, gdq)
    starts, lengths, nseg = _segments(gdq, skip_sat0=False)
    gain, rnoise = px["gain"], px["rnoise"]
    invvar_r = np.zeros(gdq.shape[1], dtype=np.float64)
    t1 = _len1_timing(ig, tgroup, tframe, one_group_time)
    for s in range(int(nseg.max(initial=0))):
        length = lengths[s]
        svar = np.where(
            length == 1,
            _rnoise_short(rnoise, gain, t1),
            np.where(
                length == 2,
                _rnoise_short(rnoise, gain, tgroup),
                _rnoise_long(rnoise, gain, length.astype(np.float64), tgroup),
            ),
        )
        use = (s < nseg) & (svar > 0.0)
        invvar_r = np.where(use, invvar_r + 1.0 / svar, invvar_r)
    return invvar_r


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
    """
    del groupgap, dropframes1  # pedestal only (fitopt product)
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    suppress = bool(params.suppress_one_group) and ngroups > 1
    special = not suppress

    gdq = flag_group_range(groupdq, params.firstgroup, params.lastgroup)
    orig_gdq = gdq  # stcal copies GROUPDQ here, before suppression, for CHARGELOSS
    if suppress:
        gdq = suppress_one_good_group(gdq)

    # The C code reads TGROUP and TFRAME through a float cast.
    tg = np.float64(np.float32(tgroup))
    tf = np.float64(np.float32(tframe))
    one_group_time = (np.float64(nframes) + 1.0) * tf / 2.0

    flat_data = data.reshape(nints, ngroups, npix)
    flat_gdq = gdq.reshape(nints, ngroups, npix)
    flat_orig = orig_gdq.reshape(nints, ngroups, npix)
    flat_zf = None if zeroframe is None else zeroframe.reshape(nints, npix)

    def load(i):
        zf = None if flat_zf is None else flat_zf[i]
        return _load_integration(flat_data[i], flat_gdq[i], zf, special)

    g = gain.reshape(npix).astype(np.float64)
    px = {
        "gain": g,
        "rnoise": ols_readnoise(readnoise, gain, nframes).reshape(npix).astype(np.float64),
        "dark": (
            np.zeros(npix, dtype=np.float64)
            if average_dark_current is None
            else average_dark_current.reshape(npix).astype(np.float64)
        ),
    }
    pdq = pixeldq.reshape(npix).astype(np.uint32)
    pdq = np.where((g <= 0.0) | np.isnan(g), pdq | _DNU | _NO_GAIN, pdq)

    with np.errstate(all="ignore"):
        # Pass 1: the pixel's median rate over all integrations.
        accum = np.zeros(npix, dtype=np.float64)
        for i in range(nints):
            ig = load(i)
            if ngroups == 1:
                accum = accum + ig.data[0] / one_group_time
            else:
                accum = accum + _integration_median_rate(ig, tg, tf, one_group_time)
        px["median_rate"] = accum / np.float64(nints)

        # Pass 2: per-integration fits, accumulating the exposure sums.
        ri_sci = np.zeros((nints, npix), dtype=np.float64)
        ri_err = np.zeros((nints, npix), dtype=np.float64)
        ri_vp = np.zeros((nints, npix), dtype=np.float64)
        ri_vr = np.zeros((nints, npix), dtype=np.float64)
        ri_dq = np.empty((nints, npix), dtype=np.uint32)
        rate_dq = pdq.copy()
        rate_vp = np.zeros(npix, dtype=np.float64)
        rate_vr = np.zeros(npix, dtype=np.float64)
        rate_num = np.zeros(npix, dtype=np.float64)
        dnu_cnt = np.zeros(npix, dtype=np.int64)
        sat_cnt = np.zeros(npix, dtype=np.int64)
        any_partial_sat = np.zeros(npix, dtype=bool)
        chargeloss = np.zeros((nints, npix), dtype=bool)
        for i in range(nints):
            ig = load(i)
            chargeloss[i] = ig.chargeloss
            idq = pdq.copy()
            idq = np.where(ig.jump, idq | _JUMP, idq)
            idq = np.where(ig.persistence, idq | _PERS, idq)
            rate_dq = np.where(ig.jump, rate_dq | _JUMP, rate_dq)
            rate_dq = np.where(ig.persistence, rate_dq | _PERS, rate_dq)
            sci = np.zeros(npix, dtype=np.float64)

            starts, lengths, nseg = _segments(ig.gdq, skip_sat0=True)
            sat0 = (ig.gdq[0] & _SAT) != 0
            idq = np.where(sat0, idq | _DNU | _SAT, idq)
            sci = np.where(sat0, np.nan, sci)

            unusable = ig.cnt_dnu_sat == ngroups
            idq = np.where(unusable, idq | _DNU, idq)
            idq = np.where(unusable & (ig.cnt_sat == ngroups), idq | _SAT, idq)
            nseg = np.where(unusable, 0, nseg)

            invvar_r = np.zeros(npix, dtype=np.float64)
            invvar_p = np.zeros(npix, dtype=np.float64)
            invvar_e = np.zeros(npix, dtype=np.float64)
            slope_num = np.zeros(npix, dtype=np.float64)
            for s in range(int(nseg.max(initial=0))):
                active = s < nseg
                slope, var_p, var_r, var_e = _fit_segment(
                    ig, starts[s], lengths[s], px, tg, tf, one_group_time
                )
                invvar_r = np.where(active, invvar_r + 1.0 / var_r, invvar_r)
                invvar_p = np.where(active & (var_p > 0.0), invvar_p + 1.0 / var_p, invvar_p)
                invvar_e = np.where(active, invvar_e + 1.0 / var_e, invvar_e)
                slope_num = np.where(active, slope_num + slope / var_r, slope_num)

            fitted = nseg > 0
            vp = np.where(invvar_p > 0.0, 1.0 / invvar_p, 0.0)
            vp = np.where(vp >= LARGE_VARIANCE_THRESHOLD, 0.0, vp)
            vr = 1.0 / invvar_r
            vr = np.where(vr >= LARGE_VARIANCE_THRESHOLD, 0.0, vr)
            var_err = 1.0 / invvar_e
            err = np.where(var_err > LARGE_VARIANCE_THRESHOLD, 0.0, np.sqrt(var_err))
            bad = (idq & _INVALID) != 0
            sci = np.where(fitted, np.where(bad, np.nan, slope_num * vr), sci)
            ri_vp[i] = np.where(fitted & ~bad, vp, 0.0)
            ri_vr[i] = np.where(fitted & ~bad, vr, 0.0)
            ri_err[i] = np.where(fitted & ~bad, err, 0.0)

            rate_vp = np.where(fitted & (invvar_p > 0.0), rate_vp + invvar_p, rate_vp)
            rate_vr = np.where(fitted, rate_vr + invvar_r, rate_vr)
            rate_num = np.where(fitted, rate_num + slope_num, rate_num)

            # ramp_fit_pixel: NaN for DNU and SAT integrations, then partial saturation.
            is_dnu = (idq & _DNU) != 0
            dnu_cnt += is_dnu
            sci = np.where(is_dnu, np.nan, sci)
            is_sat = (idq & _SAT) != 0
            sat_cnt += is_sat
            sci = np.where(is_sat, np.nan, sci)
            partial = ig.cnt_sat > 0
            idq = np.where(partial, idq | _SAT, idq)
            any_partial_sat |= partial
            ri_sci[i] = sci
            ri_dq[i] = idq

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
        any_cl = chargeloss.any(axis=0)
        if any_cl.any():
            evar_r = np.zeros(npix, dtype=np.float64)
            for i in range(nints):
                cl = chargeloss[i] & any_cl
                keep = any_cl & ~chargeloss[i] & (ri_vr[i] > 0.0)
                evar_r = np.where(keep, evar_r + 1.0 / ri_vr[i], evar_r)
                if cl.any():
                    ig = load(i)
                    inv = _chargeloss_rnoise(ig, flat_orig[i], px, tg, tf, one_group_time)
                    vr = 1.0 / inv
                    vr = np.where(vr >= LARGE_VARIANCE_THRESHOLD, 0.0, vr)
                    ri_vr[i] = np.where(cl, vr, ri_vr[i])
                    evar_r = np.where(cl, evar_r + inv, evar_r)
            rate_vr = np.where(any_cl & (evar_r > 0.0), 1.0 / evar_r, rate_vr)
            rate_vr = np.where(any_cl & (rate_vr >= LARGE_VARIANCE_THRESHOLD), 0.0, rate_vr)

    cube = (nints, ny, nx)
    image = (ny, nx)
    rateints = RateProduct(
        sci=ri_sci.astype(np.float32).reshape(cube),
        err=ri_err.astype(np.float32).reshape(cube),
        dq=ri_dq.reshape(cube),
        var_poisson=ri_vp.astype(np.float32).reshape(cube),
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
