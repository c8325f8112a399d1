"""jump, the tuned path: ``tsogpu.algorithms.jump``'s two-point detection, fast on a CPU.

The specification is ``tsogpu/algorithms/jump.py`` (stcal's ``find_crs`` as stcal writes it);
this module gives the same bits (``tests/test_spec_vs_fast.py``) in less time and memory:

* first differences stay float32 (``diffs32``): they hold the same values as stcal's float64
  ones, and every use meets a float64 operand (the median, sigma) first, or only sorts and
  compares;
* the per-pixel NaN-median sorts blocks of pixels that stay in cache (``_nanmedian``), and on
  the sigma-clip path is taken only where a JUMP needs it (``_nanmedian_at``);
* astropy's ``sigma_clip`` is replaced by one sort per column (``_sigma_clip_mask``), with the
  exact arithmetic of astropy's C code (``_sigma_clip_bounds``, Wirth's selection
  ``_kth_smallest``) for the columns where a value lies near a bound;
* the iterative search recomputes only the pixels that received a new flag.

The kernels in ``kernels/jump.cu`` mirror this module.
"""

import numpy as np

from .. import dq
from .jump import (
    SIGCLIP_MAXITERS,
    FrameStats,
    JumpResult,
    all_dnu_planes,
    choose_path,
    frame_stats,
    run_jump_step,
)

__all__ = ["FrameStats", "JumpResult", "all_dnu_planes", "detect_jumps", "frame_stats"]

_JUMP = np.uint8(dq.JUMP_DET)
_DNU = np.uint8(dq.DO_NOT_USE)
_SAT_OR_DNU = np.uint8(dq.SATURATED | dq.DO_NOT_USE)
_SIGCLIP_TOL = 1e-9  # relative margin around a clipping bound (see _sigma_clip_mask)
_SIGCLIP_BLOCK = 1 << 16  # values per block of columns


def detect_jumps(
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
    ngroups_total=None,
    frame=None,
    memo=None,
):
    """``tsogpu.algorithms.jump.detect_jumps``, bit for bit, with the tuned two-point search.

    Same parameters and result; see that function.
    """
    del memo  # everything is computed
    return run_jump_step(
        _two_point,
        data,
        groupdq,
        pixeldq,
        gain,
        readnoise,
        params,
        nframes=nframes,
        groupgap=groupgap,
        tgroup=tgroup,
        ngroups_total=ngroups_total,
        frame=frame,
    )


# --------------------------------------------------------------------------------------------
# Two-point difference detection (stcal twopoint_difference.find_crs)


def _two_point(data, gain, gdq, rn_e, params, nframes, frame, e1, n1, e2, n2):
    """stcal ``find_crs`` on one slice; ``gdq`` is updated in place and returned.

    stcal's first differences are float64 (the float32 difference ``/ 1.0``); here they stay
    float32 (``diffs32``), which holds the same values: every use below meets a float64 operand
    (the median, sigma) first, or only sorts and compares.
    """
    nints, ngroups, ny, nx = data.shape
    ndiffs = (ngroups - 1) * nints
    path = choose_path(nints, ngroups, frame.all_dnu, params)
    if path == "skip":
        return gdq, -99, np.zeros((ny, nx), np.int32), None

    diffs32 = _first_diffs(data, gain, gdq)
    finite = np.isfinite(diffs32)
    # read_noise_2 is float32 (rn_e**2); / (0.5 * 2 * nframes) promotes to float64
    rn2_nf = np.square(rn_e).astype(np.float64) / (0.5 * (2.0 * nframes))

    sigclip_planes = None
    if path == "sigclip":
        sigclip_planes = _flag_sigma_clip(gdq, diffs32, finite, params, frame)
        crs_per_pixel = np.count_nonzero(gdq & _JUMP, axis=(0, 1)).astype(np.int32)
        # from here the median serves only pixels with a JUMP (neighbour seeds, after-jump
        # flagging): the others keep NaN, which no test below can pass
        median_diffs = _nanmedian_at(diffs32, crs_per_pixel > 0)
    else:
        median_diffs = _nanmedian(diffs32, axis=(0, 1))
        sigma = _sigma(median_diffs, rn2_nf)
        if path == "single":
            for i in range(nints):
                for k in range(ngroups - 1):
                    over = (
                        np.abs(diffs32[i, k] - median_diffs) / sigma
                    ) > params.rejection_threshold
                    gdq[i, k + 1] |= (over & finite[i, k]) * _JUMP
        else:
            _flag_iterative(gdq, diffs32.astype(np.float64), rn2_nf, params, ndiffs)
        crs_per_pixel = np.count_nonzero(gdq & _JUMP, axis=(0, 1)).astype(np.int32)
    sigma = _sigma(median_diffs, rn2_nf)
    number_crs = int(crs_per_pixel.sum())

    if params.flag_4_neighbors:
        _flag_neighbours(gdq, diffs32, median_diffs, sigma, params)
    if n1 > 0 or n2 > 0:
        if path == "sigclip":  # the pixels that neighbour flagging gave their first JUMP
            missing = np.isnan(median_diffs) & np.any(gdq & _JUMP, axis=(0, 1))
            median_diffs = np.where(missing, _nanmedian_at(diffs32, missing), median_diffs)
        _flag_after_jumps(gdq, diffs32, median_diffs, e1, n1, e2, n2)
    return gdq, number_crs, crs_per_pixel, sigclip_planes


def _first_diffs(data, gain, gdq):
    """float32 (nints, ngroups - 1, ny, nx): ``data_e[g + 1] - data_e[g]`` with
    ``data_e = data * gain`` (float32), NaN where either group has SAT or DNU (stcal makes the
    data NaN there before differencing). One integration at a time, so it stays in cache."""
    nints, ngroups = data.shape[:2]
    out = np.empty((nints, ngroups - 1) + data.shape[2:], np.float32)
    for i in range(nints):
        data_e = np.multiply(data[i], gain, dtype=np.float32)
        np.subtract(data_e[1:], data_e[:-1], out=out[i])
        bad = (gdq[i] & _SAT_OR_DNU) != 0
        np.copyto(out[i], np.float32(np.nan), where=bad[1:] | bad[:-1])
    return out


def _sigma(median, rn2_nf):
    """``sqrt(|median| * 1 + rn2 / nframes) / 1`` in float64; 0 -> NaN (stcal's sigma)."""
    s = np.sqrt(np.abs(median) * 1.0 + rn2_nf) / 1.0
    return np.where(s == 0.0, np.nan, s)


# ---- sigma clipping across integrations (astropy sigma_clip, fast C path) -------------------


def _flag_sigma_clip(gdq, first_diffs, finite, params, frame):
    """stcal ``det_jump_sigma_clipping``: gdq updated in place; returns the plane test."""
    nints, nd, ny, nx = first_diffs.shape
    if params.only_use_ints:
        # one clip per (difference, pixel), over integrations in index order
        values = first_diffs.reshape(nints, nd * ny * nx)
        valid = finite.reshape(nints, nd * ny * nx)
    else:
        # one clip per pixel over (integration, difference), integration-major order
        values = first_diffs.reshape(nints * nd, ny * nx)
        valid = finite.reshape(nints * nd, ny * nx)
    clipped = _sigma_clip_mask(values, valid, float(params.rejection_threshold), SIGCLIP_MAXITERS)
    clipped = clipped.reshape(first_diffs.shape)
    # a finite difference has no SAT or DNU in its group (_first_diffs)
    gdq[:, 1:] |= (clipped & finite) * _JUMP

    # whole-plane test (module docstring): JUMP-only pixels reset where a plane is all JUMP/DNU
    local = np.all((gdq & (_JUMP | _DNU)) != 0, axis=(2, 3))
    planes = local if frame.sigclip_planes is None else frame.sigclip_planes
    for i in range(nints):
        for g in range(gdq.shape[1]):
            if planes[i, g]:
                plane = gdq[i, g]
                plane[plane == _JUMP] = 0
    return local


def _sigma_clip_mask(values, valid, nsigma, maxiters):
    """astropy ``sigma_clip(values, axis=0)``'s mask (invalid values masked), per column.

    Fast path: each column sorted once, so the values kept by every iteration are a run
    ``[s, e)`` of the sorted column; the median is read off it (the same multiset, so the same
    value as astropy's), the mean and std are summed in NumPy's order, which may differ from
    astropy's in the last bits. A column is decided here only when no value it compares lies
    within ``_SIGCLIP_TOL`` (relative, far above that rounding difference) of a bound; the
    others (ties at a bound, constant columns) go through ``_sigma_clip_bounds``, which
    reproduces astropy's arithmetic exactly. The mask is therefore astropy's, bit for bit.
    Columns are taken in blocks that stay in cache.

    Parameters
    ----------
    values : ndarray of float32 or float64, (n, ncol); float32 values are taken as exact
        (converted to float64 for every sum), and sorted as float32.
    valid : ndarray of bool, (n, ncol)

    Returns
    -------
    ndarray of bool, (n, ncol): True where clipped or invalid.
    """
    n, ncol = values.shape
    clipped = np.empty((n, ncol), bool)
    unsure = np.zeros(ncol, bool)
    step = max(1, _SIGCLIP_BLOCK // max(n, 1))
    for c0 in range(0, ncol, step):
        cols = slice(c0, c0 + step)
        v, ok = values[:, cols], valid[:, cols]
        srt = np.sort(np.where(ok, v, np.nan).T)  # (columns, n), NaN last
        lo, hi, unsure[cols] = _sigma_clip_sorted(srt, nsigma, maxiters)
        clipped[:, cols] = ~ok | (v < lo) | (v > hi)
    redo = np.flatnonzero(unsure)
    if redo.size:
        v, ok = values[:, redo].astype(np.float64), valid[:, redo]
        lo, hi = _sigma_clip_bounds(v, ok, nsigma, maxiters)
        clipped[:, redo] = ~ok | (v < lo) | (v > hi)
    return clipped


def _sigma_clip_sorted(srt, nsigma, maxiters):
    """Bounds of each row of ``srt`` (sorted, NaN last) and whether a value lies near one.

    The rows still clipping after an iteration are copied out and go on alone (a few per
    cent of them after the first). Each iteration counts, over the whole row, the values
    below and up to its bounds; those of a row's last iteration are where its final bounds
    fall among all its valid values, which astropy compares with them.
    """
    ncol, n = srt.shape
    nvalid = n - np.count_nonzero(np.isnan(srt), axis=1)
    start = np.zeros(ncol, np.int64)
    count = nvalid.copy()
    lo = np.full(ncol, np.nan)
    hi = np.full(ncol, np.nan)
    below = np.zeros(ncol, np.int64)  # values < lo
    upto = np.zeros(ncol, np.int64)  # values <= hi
    unsure = np.zeros(ncol, bool)
    idx = np.arange(n)
    cols = np.flatnonzero(count > 0)
    for _ in range(maxiters):
        if not cols.size:
            break
        x = srt if cols.size == ncol else srt[cols]
        s, c = start[cols], count[cols]
        rows = np.arange(cols.size)
        med = 0.5 * (x[rows, s + (c - 1) // 2].astype(np.float64) + x[rows, s + c // 2])
        if c.min() == n:  # every value of every row: plain sums
            mean = np.add.reduce(x, axis=1, dtype=np.float64) / c
            dev = x - mean[:, None]
            std = np.sqrt(np.einsum("ij,ij->i", dev, dev) / c)
        else:
            inside = (idx >= s[:, None]) & (idx < (s + c)[:, None])
            mean = np.add.reduce(x, axis=1, dtype=np.float64, where=inside) / c
            dev = x - mean[:, None]
            std = np.sqrt(np.add.reduce(dev * dev, axis=1, where=inside) / c)
        lower = med - nsigma * std
        upper = med + nsigma * std
        lo[cols], hi[cols] = lower, upper
        tol = _SIGCLIP_TOL * (np.abs(med) + nsigma * std)
        p = np.count_nonzero(x < lower[:, None], axis=1)
        q = np.count_nonzero(x <= upper[:, None], axis=1)
        below[cols], upto[cols] = p, q
        new_s, new_e = np.maximum(s, p), np.minimum(s + c, q)
        first, last = s, s + c - 1
        risky = _near(x, rows, new_s - 1, new_s, lower, tol, first, last)
        risky |= _near(x, rows, new_e - 1, new_e, upper, tol, first, last)
        unsure[cols] |= risky
        new_count = np.maximum(new_e - new_s, 0)
        start[cols], count[cols] = new_s, new_count
        cols = cols[(new_count != c) & (new_count != 0)]
    # the final bounds are compared with every valid value
    with np.errstate(invalid="ignore"):
        tol = _SIGCLIP_TOL * (np.abs(0.5 * (lo + hi)) + 0.5 * (hi - lo))
        rows, last = np.arange(ncol), nvalid - 1
        risky = _near(srt, rows, below - 1, below, lo, tol, 0, last)
        risky |= _near(srt, rows, upto - 1, upto, hi, tol, 0, last)
    unsure |= (nvalid > 0) & risky
    return lo, hi, unsure


def _near(srt, rows, lo_pos, hi_pos, bound, tol, first, last):
    """Whether the values on either side of a bound's position in the run [first, last] of
    each row lie within ``tol`` of it."""
    below = srt[rows, np.clip(lo_pos, first, last)]
    above = srt[rows, np.clip(hi_pos, first, last)]
    return (np.abs(below - bound) <= tol) | (np.abs(above - bound) <= tol)


def _sigma_clip_bounds(values, valid, nsigma, maxiters):
    """Clipping bounds of astropy's ``_sigma_clip_fast`` (compute_bounds.c), one per column.

    Each column's valid values are packed in order into a buffer; per iteration: Wirth median
    (which permutes the buffer), mean and std summed sequentially over the permuted buffer
    (double), bounds ``median -/+ nsigma * std``, then the buffer is packed to the values inside
    the bounds. Stops when nothing or everything was clipped, or after ``maxiters`` passes. The
    summation order matters for the last bit, so the permutation is reproduced exactly.

    Parameters
    ----------
    values : ndarray of float64, (n, ncol)
    valid : ndarray of bool, (n, ncol)
    nsigma : float
    maxiters : int

    Returns
    -------
    (lo, hi) : ndarrays of float64, (ncol,); NaN for columns without valid values.
    """
    n, ncol = values.shape
    order = np.argsort(~valid, axis=0, kind="stable")
    buf = np.take_along_axis(values, order, axis=0)
    count = valid.sum(axis=0).astype(np.int64)
    lo = np.full(ncol, np.nan)
    hi = np.full(ncol, np.nan)
    active = count > 0
    iteration = 0
    rows = np.arange(n)[:, None]
    while active.any():
        cols = np.flatnonzero(active)
        b = buf[:, cols]
        c = count[cols]
        even = (c % 2) == 0
        k_hi = np.where(even, c // 2, (c - 1) // 2)
        m1 = _kth_smallest(b, c, k_hi)
        m2 = _kth_smallest_where(b, c, c // 2 - 1, even)
        median = np.where(even, 0.5 * (m1 + m2), m1)
        inside = rows < c
        total = np.zeros(cols.size)
        for r in range(n):
            total = np.where(inside[r], total + b[r], total)
        mean = total / c
        ss = np.zeros(cols.size)
        for r in range(n):
            dev = b[r] - mean
            ss = np.where(inside[r], ss + dev * dev, ss)
        std = np.sqrt(ss / c)
        lower = median - nsigma * std
        upper = median + nsigma * std
        lo[cols] = lower
        hi[cols] = upper
        keep = inside & (b >= lower) & (b <= upper)
        new_count = keep.sum(axis=0)
        pack = np.argsort(~keep, axis=0, kind="stable")
        buf[:, cols] = np.take_along_axis(b, pack, axis=0)
        iteration += 1
        done = (new_count == c) | (new_count == 0) | (iteration >= maxiters)
        count[cols] = new_count
        active[cols[done]] = False
    return lo, hi


def _kth_smallest_where(a, n, k, mask):
    """``_kth_smallest`` on the columns in ``mask`` only (others untouched, result NaN)."""
    out = np.full(a.shape[1], np.nan)
    if mask.any():
        sub = a[:, mask]
        out[mask] = _kth_smallest(sub, n[mask], k[mask])
        a[:, mask] = sub
    return out


def _kth_smallest(a, n, k):
    """N. Wirth's selection (astropy wirth_select.c) per column, permuting ``a`` in place.

    One column is what one CUDA thread would run; here the columns advance in lock step, and
    each loop works on the columns still inside it only (most leave after a few steps).

    Parameters
    ----------
    a : ndarray of float64, (nmax, ncol)
        Column j holds its values in rows ``0 .. n[j]-1``.
    n, k : ndarrays of int64, (ncol,)

    Returns
    -------
    ndarray of float64, (ncol,): ``a[k[j], j]`` after the selection.
    """
    low = np.zeros_like(n)
    high = n - 1
    cols = np.flatnonzero(low < high)  # the outer loop's columns
    while cols.size:
        x = a[k[cols], cols]
        i, j = low[cols].copy(), high[cols].copy()
        lanes = np.arange(cols.size)  # the inner loop's columns, as positions in ``cols``
        while lanes.size:
            # while (a[i] < x) i++;  the pivot x stops every scan inside [low, high]
            scan = lanes
            while scan.size:
                scan = scan[a[i[scan], cols[scan]] < x[scan]]
                i[scan] += 1
            # while (x < a[j]) j--;
            scan = lanes
            while scan.size:
                scan = scan[x[scan] < a[j[scan], cols[scan]]]
                j[scan] -= 1
            swap = lanes[i[lanes] <= j[lanes]]
            if swap.size:
                c, ii, jj = cols[swap], i[swap], j[swap]
                a[ii, c], a[jj, c] = a[jj, c], a[ii, c].copy()
                i[swap] += 1
                j[swap] -= 1
            lanes = lanes[i[lanes] <= j[lanes]]
        kk = k[cols]
        low[cols] = np.where(j < kk, i, low[cols])
        high[cols] = np.where(kk < i, j, high[cols])
        cols = cols[low[cols] < high[cols]]
    return a[k, np.arange(a.shape[1])]


# ---- iterative search (stcal iterative_jump) ------------------------------------------------


def _flag_iterative(gdq, first_diffs, rn2_nf, params, ndiffs):
    """Flag the largest outlier of each candidate pixel, mask it, repeat; gdq updated in place.

    Per pixel: a pixel stays in the loop while it received a new flag (stcal recomputes only
    those pixels; the others get ratio 0 and cannot be candidates). The first pass uses the
    float64 median; later passes store the median in float32, as stcal's ``median_diffs_iter``.
    """
    fda = np.abs(first_diffs)
    median = _calc_med_first_diffs(fda)
    cr_pix, ratio = _cr_locs(fda, median, rn2_nf, params, ndiffs)
    for _ in range(ndiffs):
        with np.errstate(invalid="ignore"):
            peak = _nanmax(ratio, axis=(0, 1))
        new = (ratio == peak) & cr_pix[:, np.newaxis]
        if not new.any():
            break
        gdq[:, 1:][new] |= _JUMP
        fda[new] = np.nan
        index = new.any(axis=(0, 1))
        median32 = np.where(index, _calc_med_first_diffs(fda), 0.0).astype(np.float32)
        cr_pix, ratio = _cr_locs(fda, median32, rn2_nf, params, ndiffs)
        cr_pix &= index[np.newaxis]


def _cr_locs(fda, median, rn2_nf, params, ndiffs):
    """stcal ``get_cr_locs``: candidate (int, pixel) flags and the ratio, float64."""
    sigma = _sigma(median, rn2_nf)
    e_jump = (fda - median).astype(np.float32)
    ratio = np.abs(e_jump) / sigma
    max_ratio = _nanmax(ratio, axis=1)
    usable = ndiffs - np.count_nonzero(np.isnan(fda), axis=(0, 1))
    return (
        ((usable >= 4) & (max_ratio > params.rejection_threshold))
        | ((usable == 3) & (max_ratio > params.four_group_rejection_threshold))
        | ((usable == 2) & (max_ratio > params.three_group_rejection_threshold))
    ), ratio


def _calc_med_first_diffs(fda):
    """stcal ``calc_med_first_diffs`` per pixel over all (int, diff): float64 (ny, nx).

    >= 4 usable: NaN every value equal to the max, then nanmedian; 3: nanmedian; 2: nanmin;
    < 2: NaN.
    """
    nints, nd = fda.shape[:2]
    usable = nints * nd - np.count_nonzero(np.isnan(fda), axis=(0, 1))
    maxval = _nanmax(fda, axis=(0, 1))
    clipped = np.where((usable >= 4) & (fda == maxval), np.nan, fda)
    median = _nanmedian(clipped, axis=(0, 1))
    median = np.where(usable == 2, _nanmin(clipped, axis=(0, 1)), median)
    return np.where(usable < 2, np.nan, median)


# ---- post-processing (stcal jump_detection_post_processing) --------------------------------


def _flag_neighbours(gdq, first_diffs, median_diffs, sigma, params):
    """JUMP on the 4 neighbours of seeds (JUMP and min < ratio < max) lacking SAT and DNU.

    Seeds are taken per (int, diff) plane before that plane's dilation; needs a 1-pixel halo.
    """
    nints, nd = first_diffs.shape[:2]
    for i in range(nints):
        for k in range(nd):
            ratio = np.abs(first_diffs[i, k] - median_diffs) / sigma
            seed = (
                (ratio < params.max_jump_to_flag_neighbors)
                & (ratio > params.min_jump_to_flag_neighbors)
                & ((gdq[i, k + 1] & _JUMP) != 0)
            )
            flag = seed.copy()
            flag[1:] |= seed[:-1]
            flag[:-1] |= seed[1:]
            flag[:, 1:] |= seed[:, :-1]
            flag[:, :-1] |= seed[:, 1:]
            ok = (gdq[i, k + 1] & _SAT_OR_DNU) == 0
            gdq[i, k + 1][ok & flag] |= _JUMP


def _flag_after_jumps(gdq, first_diffs, median_diffs, e1, n1, e2, n2):
    """stcal ``transient_jumps``: groups g+1 .. g+n after a JUMP group g whose
    ``diff - median >= e`` get JUMP unless SAT or DNU. Per pixel."""
    nints, ngroups = gdq.shape[:2]
    for i in range(nints):
        ejump = (first_diffs[i] - median_diffs) * 1.0
        jump_set = (gdq[i] & _JUMP) != 0
        big = np.zeros(jump_set.shape, dtype=bool)
        verybig = np.zeros(jump_set.shape, dtype=bool)
        big[1:] = (ejump >= e1) & jump_set[1:]
        verybig[1:] = (ejump >= e2) & jump_set[1:]
        _propagate(big, n1)
        _propagate(verybig, n2)
        ok = (gdq[i] & _SAT_OR_DNU) == 0
        gdq[i][(big | verybig) & ok] |= _JUMP


def _propagate(flag, n):
    """Extend each True forward by n groups along axis 0 (stcal propagate_flags, both options)."""
    for _ in range(min(n, flag.shape[0] - 2)):
        flag[1:] = flag[1:] | flag[:-1]


def _nanmax(a, axis):
    with np.errstate(invalid="ignore"):
        out = np.fmax.reduce(a, axis=axis)
    return out


def _nanmin(a, axis):
    return np.fmin.reduce(a, axis=axis)


def _nanmedian_at(a, where):
    """:func:`_nanmedian` of the pixels where ``where`` (bool (ny, nx)) is true; NaN elsewhere."""
    out = np.full(a.shape[2:], np.nan)
    pixels = np.flatnonzero(where)
    if pixels.size:
        values = a.reshape(a.shape[0], a.shape[1], -1)[:, :, pixels]
        out.reshape(-1)[pixels] = _nanmedian(values[..., None], axis=(0, 1))[:, 0]
    return out


def _nanmedian(a, axis):
    """``np.nanmedian(a, axis=(0, 1))`` of a 4-d array, per pixel, to the bit, in float64.

    The valid values of each pixel are sorted (in blocks of pixels that stay in cache) and the
    middle one, or the mean of the middle two (in float64), is taken: NumPy's value. ``a`` may
    be float32 (sorted as it is, half the memory traffic) or float64.
    """
    assert axis == (0, 1) and a.ndim == 4
    n = a.shape[0] * a.shape[1]
    flat = a.reshape(n, -1)
    out = np.empty(flat.shape[1])
    step = max(1, _SIGCLIP_BLOCK // max(n, 1))
    for c0 in range(0, flat.shape[1], step):
        srt = np.sort(flat[:, c0 : c0 + step].T)  # NaN last
        c = n - np.count_nonzero(np.isnan(srt), axis=1)
        rows = np.arange(srt.shape[0])
        lo, hi = np.maximum((c - 1) // 2, 0), c // 2
        with np.errstate(invalid="ignore"):
            pair = srt[rows, lo].astype(np.float64) + srt[rows, np.minimum(hi, n - 1)]
            med = pair / 2
        out[c0 : c0 + step] = np.where(c == 0, np.nan, med)
    return out.reshape(a.shape[2:])
