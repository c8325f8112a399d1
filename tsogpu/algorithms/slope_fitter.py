"""stcal 1.20's ``ramp_fitting/src/slope_fitter.c`` (OLS_C), one pixel at a time.

Part of the ramp_fit specification (``tsogpu/algorithms/ramp_fit.py`` runs it on every pixel
after the Python side): each function here is the C function of the same name, in the C
code's operation order, on float64 scalars (``real_t = double``), so that a reviewer can
read the two side by side. It is slow; the machine runs ``ramp_fit_fast``.

Float rules: see ``ramp_fit``'s module docstring (every intermediate float64, one rounding to
float32 at the store, ``powf`` as :func:`powf`).
"""

from typing import NamedTuple

import numpy as np

from .. import dq

__all__ = [
    "LARGE_VARIANCE_THRESHOLD",
    "SNR_BOUNDS",
    "SNR_POWERS",
    "PixelRamp",
    "Times",
    "get_pixel_ramp",
    "ols_slope_fit_pixel",
    "powf",
    "reduced_chi2",
    "snr_power",
]

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
_PERS8 = np.uint8(dq.PIXEL["PERSISTENCE"])
_CHARGELOSS8 = np.uint8(dq.CHARGELOSS)
_INVALID8 = np.uint8(dq.DO_NOT_USE | dq.SATURATED)
_NOT_PERS8 = np.uint8(~np.uint8(dq.PIXEL["PERSISTENCE"]))
_CHARGELOSS_TOGGLE8 = np.uint8(dq.CHARGELOSS | dq.DO_NOT_USE)

# slope_fitter.c snr_power: the exponent for an SNR below each bound (NaN and >= 100: 10)
SNR_BOUNDS = (5.0, 10.0, 20.0, 50.0, 100.0)
SNR_POWERS = (0.0, 0.4, 1.0, 3.0, 6.0, 10.0)


def powf(x, p):
    """C's single-precision ``powf(x, p)`` of doubles, correctly rounded (see module doc).

    ``float32(pow(float64(float32(x)), float64(float32(p))))``, as float64; arrays (NumPy's
    float64 ``power`` of arrays, the same function for the specification and the tuned path).
    """
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)
    p32 = np.asarray(p, dtype=np.float64).astype(np.float32).astype(np.float64)
    return np.power(x32, p32).astype(np.float32).astype(np.float64)


def snr_power(snr):
    """``slope_fitter.c: snr_power``: the optimal-weighting exponent of a segment's SNR."""
    for bound, power in zip(SNR_BOUNDS, SNR_POWERS, strict=False):
        if snr < bound:
            return power
    return SNR_POWERS[-1]  # snr >= 100 or NaN


class Times(NamedTuple):
    """The exposure's times as the C code reads them (float32 cast, used as doubles)."""

    group_time: np.float64
    frame_time: np.float64
    one_group_time: np.float64
    suppress1g: bool
    # ramp_fit.weighting (beyond jwst): the fixed exponent P of every segment's weights, or
    # None for OLS_C's exponent from the segment's SNR (snr_power)
    power: float | None = None


class _Result:
    """One pixel's rate (or one integration's): float64 sums and values, uint32 DQ."""

    def __init__(self, pixeldq):
        self.sci = np.float64(0.0)  # the C code's ``slope``
        self.err = np.float64(0.0)  # ``var_err``
        self.var_poisson = np.float64(0.0)
        self.var_rnoise = np.float64(0.0)
        self.dq = np.uint32(pixeldq)
        self.chi2 = np.float64(np.nan)  # ramp_fit.goodness_of_fit (integrations only)


class _Stats:
    """``pr->stats[integ]``: the counts and flags of one integration's GROUPDQ."""

    def __init__(self):
        self.cnt_good = self.cnt_dnu_sat = self.cnt_sat = 0
        self.jump_det = self.persistence = self.chargeloss = False


class PixelRamp:
    """``struct pixel_ramp``: one pixel's ramps, as ``get_pixel_ramp`` loads them.

    Attributes
    ----------
    data : ndarray of float64, (nints, ngroups); SATURATED groups NaN
    groupdq, orig_gdq : ndarray of uint8, (nints, ngroups); orig_gdq None without CHARGELOSS
    gain, rnoise, dcurrent, median_rate : numpy.float64
    stats : list of _Stats, is_0th, is_zframe : lists of bool, one per integration
    rateints : list of _Result; rate : _Result
    """


def ols_slope_fit_pixel(data, groupdq, orig_gdq, pixeldq, gain, rnoise, dcurrent, zeroframe, t):
    """The body of ``ols_slope_fit_pixels`` for one pixel: load, fit, CHARGELOSS pass.

    Parameters as :func:`get_pixel_ramp`. Returns the PixelRamp with its float64 results
    (``rateints``, ``rate``), which ``save_ramp_fit`` rounds to float32.
    """
    pr = get_pixel_ramp(data, groupdq, orig_gdq, pixeldq, gain, rnoise, dcurrent, zeroframe, t)
    ramp_fit_pixel(pr, t)
    if orig_gdq is not None:
        ramp_fit_pixel_rnoise_chargeloss(pr, t)
    return pr


def get_pixel_ramp(data, groupdq, orig_gdq, pixeldq, gain, rnoise, dcurrent, zeroframe, t):
    """``get_pixel_ramp`` (with ``get_pixel_ramp_meta`` and ``_integration``): a PixelRamp.

    ``data`` and ``groupdq`` (nints, ngroups) of one pixel, ``zeroframe`` (nints,) or None.
    """
    nints, ngroups = data.shape
    pr = PixelRamp()
    pr.gain = np.float64(gain)
    pdq = np.uint32(pixeldq)
    if pr.gain <= 0.0 or np.isnan(pr.gain):
        pdq |= _DNU | _NO_GAIN
    pr.rnoise = np.float64(rnoise)
    pr.dcurrent = np.float64(dcurrent)
    pr.rateints = [_Result(pdq) for _ in range(nints)]
    pr.rate = _Result(pdq)
    pr.data = data.astype(np.float64)
    pr.groupdq = groupdq.copy()
    pr.orig_gdq = None if orig_gdq is None else orig_gdq.copy()
    pr.stats = [_Stats() for _ in range(nints)]
    pr.is_0th = [False] * nints
    pr.is_zframe = [False] * nints
    for integ in range(nints):
        st = pr.stats[integ]
        for group in range(ngroups):
            gdq = pr.groupdq[integ, group]
            st.jump_det |= bool(gdq & _JUMP8)
            st.persistence |= bool(gdq & _PERS8)
            st.chargeloss |= bool(gdq & _CHARGELOSS8)
            if gdq == 0:
                st.cnt_good += 1
            if gdq & _INVALID8:
                st.cnt_dnu_sat += 1
            if gdq & _SAT8:
                pr.data[integ, group] = np.nan
                st.cnt_sat += 1
        if not t.suppress1g:
            if st.cnt_good == 1 and pr.groupdq[integ, 0] == 0:
                pr.is_0th[integ] = True
            elif st.cnt_good == 0 and zeroframe is not None:
                zframe = np.float64(zeroframe[integ])
                if zframe != 0.0:  # NaN != 0 too: a NaN ZEROFRAME is used
                    pr.data[integ, 0] = zframe
                    pr.groupdq[integ, 0] = 0
                    st.cnt_good = 1
                    st.cnt_dnu_sat -= 1
                    if st.cnt_sat == ngroups:
                        st.cnt_sat -= 1
                    pr.is_zframe[integ] = True
        for flag, present in ((_JUMP8, st.jump_det), (_PERS8, st.persistence)):
            if present:
                pr.rateints[integ].dq |= np.uint32(flag)
                pr.rate.dq |= np.uint32(flag)
    return pr


def compute_median_rate(pr, t):
    """``compute_median_rate`` (``median_rate_1ngroup``, ``median_rate_default``)."""
    nints, ngroups = pr.data.shape
    accum_mrate = np.float64(0.0)
    if ngroups == 1:
        for integ in range(nints):
            accum_mrate += pr.data[integ, 0] / t.one_group_time
        return accum_mrate / np.float64(nints)
    for integ in range(nints):
        if pr.is_0th[integ]:
            mrate = pr.data[integ, 0] / t.one_group_time
        elif pr.is_zframe[integ]:
            mrate = pr.data[integ, 0] / t.frame_time
        else:
            mrate = median_rate_integration(pr.data[integ], pr.groupdq[integ], t)
        if np.isnan(mrate):
            mrate = np.float64(0.0)
        accum_mrate += mrate
    return accum_mrate / np.float64(np.float32(nints))


def median_rate_integration(int_data, int_dq, t):
    """``median_rate_integration`` + ``_sort`` + ``real_nan_median``: the NaN-median of the
    first differences of ``data / TGROUP`` (DNU groups NaN, a difference NaN where its later
    group has JUMP; all NaN: the first rate value)."""
    ngroups = int_data.shape[0]
    loc_integ = [
        np.float64(np.nan) if int_dq[k] & _DNU8 else int_data[k] / t.group_time
        for k in range(ngroups)
    ]
    loc0 = loc_integ[0]
    all_nan = True
    for k in range(ngroups - 1):
        if int_dq[k + 1] & _JUMP8:
            loc_integ[k] = np.float64(np.nan)
        else:
            loc_integ[k] = loc_integ[k + 1] - loc_integ[k]
        if not np.isnan(loc_integ[k]):
            all_nan = False
    if all_nan and not np.isnan(loc0):
        loc_integ[0] = loc0
    # qsort with NaN last, then the median of the leading non-NaN values
    values = sorted(v for v in loc_integ[: ngroups - 1] if not np.isnan(v))
    n = len(values)
    if n == 0:
        return np.float64(np.nan)
    if n & 1:
        return values[n >> 1]
    return (values[n >> 1] + values[(n >> 1) - 1]) / 2.0


def compute_integration_segments(groupdq):
    """``compute_integration_segments`` + ``add_segment_to_list`` + ``prune_segment_list``.

    Segments are runs of groups with ``gdq & ~PERSISTENCE == 0`` that may start one group
    earlier, on a group that is exactly JUMP. Returns a list of (start, end), end exclusive.
    """
    segs = []
    max_len = 0

    def add(start, end):
        nonlocal max_len
        if end - start == 1 and max_len > 1:
            return
        segs.append((start, end))
        max_len = max(max_len, end - start)

    in_seg = False
    start = 0
    ngroups = groupdq.shape[0]
    for idx in range(ngroups):
        gdq = groupdq[idx] & _NOT_PERS8
        gdq1 = groupdq[idx - 1] & _NOT_PERS8 if idx > 0 else None
        if gdq == 0:
            if not in_seg:
                start = idx - 1 if idx > 0 and gdq1 == _JUMP8 else idx
                in_seg = True
        elif in_seg:
            add(start, idx)
            in_seg = False
    if in_seg:
        add(start, ngroups)
    # prune_segment_list
    if len(segs) < 2:
        return segs
    if max_len < 2:
        return segs[:1]
    return [s for s in segs if s[1] - s[0] != 1]


def ramp_fit_pixel(pr, t):
    """``ramp_fit_pixel``: the integrations' fits, then the exposure's rate."""
    nints, ngroups = pr.data.shape
    pr.median_rate = compute_median_rate(pr, t)
    sat_cnt = dnu_cnt = 0
    set_rate_sat_flag = False
    for integ in range(nints):
        ri = pr.rateints[integ]
        ramp_fit_pixel_integration(pr, integ, t)
        if ri.dq & _DNU:
            dnu_cnt += 1
            ri.sci = np.float64(np.nan)
        if ri.dq & _SAT:
            sat_cnt += 1
            ri.sci = np.float64(np.nan)
        if pr.stats[integ].cnt_sat > 0:
            ri.dq |= _SAT
            set_rate_sat_flag = True
        ri.chi2 = reduced_chi2(pr, integ, ri.sci, t)  # beyond stcal
    rate = pr.rate
    if dnu_cnt == nints:
        rate.dq |= _DNU
    if sat_cnt == nints:
        rate.dq |= _SAT
    if rate.var_poisson > 0.0:
        rate.var_poisson = 1.0 / rate.var_poisson
    if rate.var_poisson >= LARGE_VARIANCE_THRESHOLD or rate.var_poisson < 0.0:
        rate.var_poisson = np.float64(0.0)
    if rate.var_rnoise > 0.0:
        rate.var_rnoise = 1.0 / rate.var_rnoise
    if rate.var_rnoise >= LARGE_VARIANCE_THRESHOLD:
        rate.var_rnoise = np.float64(0.0)
    rate.err = np.sqrt(rate.var_poisson + rate.var_rnoise)
    if rate.dq & _INVALID:
        rate.sci = np.float64(np.nan)
        rate.var_poisson = rate.var_rnoise = rate.err = np.float64(0.0)
    if set_rate_sat_flag:
        rate.dq |= _SAT
    if not np.isnan(rate.sci):
        rate.sci = rate.sci * rate.var_rnoise  # JP-4318


def reduced_chi2(pr, integ, slope, t):
    """``ramp_fit.goodness_of_fit`` (not in stcal): the reduced chi-square of one
    integration's fit, float64, NaN where undefined (docs/options.md).

    Over the fitted segments of two groups or more, in segment and group order, the residual
    of each first difference is ``r = (y[g+1] - y[g]) - slope * TGROUP`` (DN) and
    ``ssr += r * r``; N is the number of differences. Each difference's variance (DN^2) is
    ``var_d = 2 * (rnoise / gain)^2 + (step / gain if step > 0 else 0)``, step = slope *
    TGROUP, rnoise the per-read read noise in electrons: twice a group's read noise plus the
    Poisson variance of the counts between the two groups. The result is
    ``(ssr / var_d) / (N - 1)``: the differences remove each segment's intercept and the
    integration's slope is the one fitted parameter. NaN where the slope is NaN, N < 2,
    ``var_d`` is not positive, or a difference is NaN.
    """
    if np.isnan(slope):
        return np.float64(np.nan)
    y = pr.data[integ]
    step = slope * t.group_time
    ssr = np.float64(0.0)
    ndiff = 0
    for start, end in compute_integration_segments(pr.groupdq[integ]):
        for group in range(start, end - 1):
            r = (y[group + 1] - y[group]) - step
            ssr += r * r
            ndiff += 1
    rn = pr.rnoise / pr.gain
    var_d = 2.0 * (rn * rn) + (step / pr.gain if step > 0.0 else np.float64(0.0))
    if ndiff < 2 or not var_d > 0.0:
        return np.float64(np.nan)
    chi2 = (ssr / var_d) / np.float64(ndiff - 1)
    return np.float64(np.nan) if np.isnan(chi2) else chi2


def ramp_fit_pixel_integration(pr, integ, t):
    """``ramp_fit_pixel_integration`` + ``_fit_slope``: one integration, its segments
    weighted by their inverse read-noise variance (JP-4318); sums into the rate."""
    ngroups = pr.data.shape[1]
    ri, st = pr.rateints[integ], pr.stats[integ]
    if pr.groupdq[integ, 0] & _SAT8:  # compute_integration_segments' shortcut
        ri.dq |= _DNU | _SAT
        ri.sci = np.float64(np.nan)
        return
    segs = compute_integration_segments(pr.groupdq[integ])
    if st.cnt_dnu_sat == ngroups:
        ri.dq |= _DNU
        if st.cnt_sat == ngroups:
            ri.dq |= _SAT
        return
    if not segs:
        return
    invvar_r = invvar_p = invvar_e = slope_i_num = np.float64(0.0)
    for start, end in segs:
        slope, var_p, var_r, var_e = fit_segment(pr, integ, start, end - start, t)
        invvar_r += 1.0 / var_r
        if var_p > 0.0:
            invvar_p += 1.0 / var_p
        invvar_e += 1.0 / var_e
        slope_i_num += slope / var_r
    if invvar_p > 0.0:
        ri.var_poisson = 1.0 / invvar_p
    if ri.var_poisson >= LARGE_VARIANCE_THRESHOLD:
        ri.var_poisson = np.float64(0.0)
    ri.var_rnoise = 1.0 / invvar_r
    if ri.var_rnoise >= LARGE_VARIANCE_THRESHOLD:
        ri.var_rnoise = np.float64(0.0)
    if ri.dq & _INVALID:
        ri.sci = np.float64(np.nan)
        ri.var_poisson = ri.var_rnoise = ri.err = np.float64(0.0)
    else:
        var_err = 1.0 / invvar_e
        ri.sci = slope_i_num * ri.var_rnoise
        ri.err = np.float64(0.0) if var_err > LARGE_VARIANCE_THRESHOLD else np.sqrt(var_err)
    if invvar_p > 0.0:
        pr.rate.var_poisson += invvar_p
    pr.rate.var_rnoise += invvar_r
    pr.rate.sci += slope_i_num


def fit_segment(pr, integ, start, length, t):
    """``ramp_fit_pixel_integration_fit_slope_seg`` (``_len1``, ``_len2``, ``_default``):
    (slope, var_p, var_r, var_e) of one segment, float64."""
    y = pr.data[integ]
    gain = pr.gain
    numer = pr.median_rate + pr.dcurrent if pr.median_rate > 0.0 else pr.dcurrent
    if length == 1:
        timing = segment_len1_timing(pr, integ, t)
        slope = y[start] / timing
        var_p = numer / (timing * gain)
        var_r = segment_rnoise_short(pr, timing)
    elif length == 2:
        slope = (y[start + 1] - y[start]) / t.group_time
        var_p = numer / (t.group_time * gain)
        var_r = segment_rnoise_short(pr, t.group_time)
    else:
        if t.power is None:
            power = snr_power(segment_snr(pr, y[start], y[start + length - 1]))
        else:  # ramp_fit.weighting: unweighted (P = 0) or exponent:P
            power = np.float64(t.power)
        # ..._default_weighted_ols: sums over the segment's groups, in order
        mid = np.float64(length - 1) / 2.0
        invmid = 1.0 / mid
        invrn2 = 1.0 / (pr.rnoise * pr.rnoise)
        x = np.arange(length, dtype=np.float64)
        weights = powf(np.abs((x - mid) * invmid), np.full(length, power))
        sumw = sumx = sumxx = sumy = sumxy = np.float64(0.0)
        for group in range(length):
            weight = weights[group] * invrn2
            xval = np.float64(group) + np.float64(start)
            data = y[start + group]
            data = np.float64(0.0) if np.isnan(data) else data
            xwt = xval * weight
            sumw += weight
            sumx += xwt
            sumxx += xval * xwt
            sumy += data * weight
            sumxy += data * xwt
        # ..._default_weighted_seg
        den = sumw * sumxx - sumx * sumx
        num = sumw * sumxy - sumx * sumy
        invden = 1.0 / den
        slope = (num * invden) / t.group_time
        seglen = np.float64(length)
        var_p = numer / (t.group_time * gain * (seglen - 1.0))
        var_r = segment_rnoise_default(pr, seglen, t)
    return slope, var_p, var_r, var_p + var_r


def segment_snr(pr, start, end):
    """``segment_snr``: the SNR of a segment from its first and last values (>= 0 or NaN)."""
    data = end - start
    den = pr.rnoise * pr.rnoise + data * pr.gain
    if den <= 0.0 or pr.gain == 0.0:
        return np.float64(0.0)
    s = (data * pr.gain) / np.sqrt(den)
    return np.float64(0.0) if s < 0.0 else s


def segment_len1_timing(pr, integ, t):
    """``segment_len1_timing``: the time of a one-group segment."""
    if not t.suppress1g:
        if pr.is_0th[integ]:
            return t.one_group_time
        if pr.is_zframe[integ]:
            return t.frame_time
    return t.group_time


def segment_rnoise_short(pr, timing):
    """``segment_rnoise_len1`` and ``_len2`` (``timing`` = TGROUP): ``12 (R/t)^2 / (6 G^2)``."""
    rnum = pr.rnoise / timing
    rnum = 12.0 * rnum * rnum
    rden = 6.0 * pr.gain * pr.gain
    return rnum / rden


def segment_rnoise_default(pr, seglen, t):
    """``segment_rnoise_default``: ``12 (R/t)^2 / ((n^3 - n) G^2)``; 0 for a bad gain."""
    if pr.gain <= 0.0 or np.isnan(pr.gain):
        return np.float64(0.0)
    rnum = pr.rnoise / t.group_time
    rnum = 12.0 * rnum * rnum
    rden = seglen * seglen * seglen - seglen
    rden = rden * pr.gain * pr.gain
    return rnum / rden


def ramp_fit_pixel_rnoise_chargeloss(pr, t):
    """``ramp_fit_pixel_rnoise_chargeloss``: read-noise variances with CHARGELOSS removed.

    For integrations with CHARGELOSS, ``_remove`` XORs CHARGELOSS|DO_NOT_USE into every
    CHARGELOSS group of the original GROUPDQ (so one without DNU GAINS DNU: stcal's quirk,
    kept), the segments are rebuilt (without the group-0 SATURATED shortcut) and
    ``_segs`` sums 1 / var_r over those with a positive variance.
    """
    nints = pr.data.shape[0]
    is_chargeloss = False
    evar_r = np.float64(0.0)
    for integ in range(nints):
        ri = pr.rateints[integ]
        if not pr.stats[integ].chargeloss:
            if ri.var_rnoise > 0.0:
                evar_r += 1.0 / ri.var_rnoise
            continue
        is_chargeloss = True
        ogdq = pr.orig_gdq[integ]
        for group in range(ogdq.shape[0]):
            if ogdq[group] & _CHARGELOSS8:
                ogdq[group] ^= _CHARGELOSS_TOGGLE8
        invvar_r = np.float64(0.0)
        for start, end in compute_integration_segments(ogdq):
            length = end - start
            if length == 1:
                svar_r = segment_rnoise_short(pr, segment_len1_timing(pr, integ, t))
            elif length == 2:
                svar_r = segment_rnoise_short(pr, t.group_time)
            else:
                svar_r = segment_rnoise_default(pr, np.float64(length), t)
            if svar_r > 0.0:
                invvar_r += 1.0 / svar_r
        ri.var_rnoise = 1.0 / invvar_r
        if ri.var_rnoise >= LARGE_VARIANCE_THRESHOLD:
            ri.var_rnoise = np.float64(0.0)
        evar_r += invvar_r
    if not is_chargeloss:
        return
    if evar_r > 0.0:
        pr.rate.var_rnoise = 1.0 / evar_r
    if pr.rate.var_rnoise >= LARGE_VARIANCE_THRESHOLD:
        pr.rate.var_rnoise = np.float64(0.0)
