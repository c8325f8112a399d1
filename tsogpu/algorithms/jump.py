"""jump: cosmic-ray detection by two-point differences (NIR), with optional snowball flagging.

Mirrors ``jwst/jump/jump_step.py: JumpStep`` (wrapper, PRIMECRS/EXTNCRS) and stcal 1.20
``jump/jump.py: detect_jumps_data`` + ``jump/twopoint_difference.py: find_crs`` run as jwst runs
them (``maximum_cores='1'``: one slice, ``minimum_groups`` forced to 3). MIRI showers
(``find_showers``) are not covered.

Order, as in stcal:

1. ``ngroups <= 2``: SKIPPED, nothing changes.
2. ``pixeldq |= NO_GAIN_VALUE | DO_NOT_USE`` where gain <= 0 or NaN. ``data_e = data * gain``
   and ``rn_e = readnoise * gain`` (float32). After-jump thresholds
   ``e = float32(dn) * nanmedian(gain)`` (float32, NumPy 2 scalar rules), group counts
   ``n = int(time // tgroup)``.
3. Two-point detection (``_two_point``): data NaN where GROUPDQ has DNU or SAT; float64 first
   differences (float32 difference, then ``/ 1.0`` in float64); per pixel the signed nanmedian of
   all differences of all integrations, ``sigma = sqrt(|median| + rn_e**2 / nframes)`` (0 -> NaN).
   Path: sigma clipping across integrations (``only_use_ints`` and nints >= minimum_sigclip_groups),
   else a single pass when ``min_usable_diffs >= min_diffs_single_pass``, else the iterative
   search. Then the count of JUMP bits (PRIMECRS numerator), 4-neighbour flagging, after-jump
   flagging.
4. JUMP removed where DNU or SAT is also set.
5. Snowballs (``flag_snowballs``) if ``expand_large_events``.

Locality (for chunking by rows; a CUDA thread per pixel):

* Per pixel: everything in step 3 except the items below (the median, sigma, the sigma clip
  across integrations, the iterative search and the after-jump propagation use only that
  pixel's own values over its integrations and groups).
* Whole-frame statistics (``FrameStats``, computed by ``frame_stats`` on the full arrays):
  - ``all_dnu[i, g]``: every pixel of plane (i, g) of the input GROUPDQ has DNU. It sets
    ``min_usable_groups = ngroups - max_i(sum_g all_dnu)`` which decides the internal skip
    (< 3 and no sigma clipping) and single pass vs iterative, and (with ``only_use_ints=False``)
    the sigma-clip switch.
  - ``gain_median``: nanmedian of the whole gain array (after-jump DN -> e- thresholds).
  - sigma-clip path only: after flagging, in every plane (i, g) where *every* pixel has JUMP or DNU,
    pixels whose GROUPDQ is exactly JUMP are reset to 0. This depends on the detection result of
    the whole plane. A chunk computes it over its own rows and returns it
    (``JumpResult.sigclip_planes``); the AND over all chunks is the whole-frame value; a chunk
    whose own value differs from it must be rerun with ``FrameStats.sigclip_planes`` set to
    the whole-frame value (the local value can only be True where the global one is False).
* Neighbour flagging: a pixel gets JUMP when one of its 4 neighbours is a seed (JUMP after
  detection and min < ratio < max). It needs a halo of 1 row (and column) on each side: run the
  chunk on rows ``[a-1, b+1)`` (clipped to the frame) and keep rows ``[a, b)``. After-jump
  flagging uses the JUMP bits after neighbour flagging, so it adds no further halo.
  ``JumpResult.crs_per_pixel`` gives the PRIMECRS count per pixel so a halo can be left out.
* Snowballs are not local (connected regions of any size, ellipses up to
  ``2*max_extended_radius`` pixels, ``near_edge`` uses the frame size): run ``flag_snowballs``
  on the whole assembled frame after the chunks (steps 1-4 with snowballs off).
* PRIMECRS/EXTNCRS (``cosmic_ray_rates``) use the whole output GROUPDQ (all-DNU planes) and the
  frame size.

Snowballs use scikit-image (``measure.label``, ``measure.regionprops``, ``draw.ellipse``),
imported lazily, exactly as stcal calls them; nothing else here needs more than NumPy.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import dq
from ..errors import ConfigError, InputError

_JUMP = np.uint8(dq.JUMP_DET)
_DNU = np.uint8(dq.DO_NOT_USE)
_SAT = np.uint8(dq.SATURATED)
_SAT_OR_DNU = np.uint8(dq.SATURATED | dq.DO_NOT_USE)

# astropy.stats.sigma_clip default used by stcal
SIGCLIP_MAXITERS = 5
_SIGCLIP_TOL = 1e-9  # relative margin around a clipping bound (see _sigma_clip_mask)
_SIGCLIP_BLOCK = 1 << 16  # values per block of columns


@dataclass(frozen=True)
class FrameStats:
    """Statistics over whole frames that the per-pixel detection needs (see module docstring).

    Attributes
    ----------
    all_dnu : ndarray of bool, (nints, ngroups)
        Plane (i, g) of the input GROUPDQ has DO_NOT_USE in every pixel.
    gain_median : numpy.float32
        ``nanmedian(gain)`` over the whole frame (NaN if all NaN).
    sigclip_planes : ndarray of bool, (nints, ngroups), or None
        Sigma-clip path: planes where every pixel has JUMP or DNU after flagging. None: take
        it from the rows given.
    """

    all_dnu: np.ndarray
    gain_median: np.float32
    sigclip_planes: np.ndarray | None = None


class JumpResult(NamedTuple):
    """What ``detect_jumps`` returns.

    Attributes
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    primary_cosmic_rays : float or None
        PRIMECRS as jwst writes it (None where jwst leaves it unset).
    number_extended_events : float or None
        EXTNCRS as jwst writes it (0.0 with snowballs off).
    status : str
        "COMPLETE" or "SKIPPED".
    number_crs : int
        stcal's count of JUMP bits after detection, before neighbour/after-jump flagging
        (-99 when stcal skips detection internally).
    n_snowballs : int
        stcal's ``number_extended_events`` (the snowball count).
    crs_per_pixel : ndarray of int32, (ny, nx)
        ``number_crs`` by row (zeros when skipped), for chunked runs.
    sigclip_planes : ndarray of bool, (nints, ngroups), or None
        Sigma-clip path: the plane test over the rows given (see module docstring).
    """

    groupdq: np.ndarray
    pixeldq: np.ndarray
    primary_cosmic_rays: float | None
    number_extended_events: float | None
    status: str
    number_crs: int = 0
    n_snowballs: int = 0
    crs_per_pixel: np.ndarray | None = None
    sigclip_planes: np.ndarray | None = None

    def primary_crs_in(self, window):
        """stcal's primary CR count over ``window`` (a slice, or (rows, cols) slices, of this
        result's frame).

        -99 when stcal skipped detection (this does not depend on the rows: with
        ``FrameStats`` every chunk skips or none does, and jwst's count is then -99 once).
        """
        if self.number_crs == -99:
            return -99
        return int(self.crs_per_pixel[window].sum())


def frame_stats(all_dnu, gain):
    """Whole-frame statistics for ``detect_jumps`` (pass them when running on row chunks).

    Parameters
    ----------
    all_dnu : ndarray of bool, (nints, ngroups)
        ``all_dnu_planes`` of the whole input GROUPDQ.
    gain : ndarray of float32, (ny, nx)
        The whole gain array.

    Returns
    -------
    FrameStats
    """
    return FrameStats(all_dnu=all_dnu, gain_median=np.nanmedian(gain))


def check_ngroups_total(ngroups, ngroups_total):
    """Raise InputError where ``ngroups_total`` (when given) is not the data's ``ngroups``."""
    if ngroups_total is not None and ngroups_total != ngroups:
        raise InputError(
            f"ngroups_total={ngroups_total} does not match the data's {ngroups} groups"
        )


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
):
    """Flag cosmic-ray jumps in GROUPDQ as jwst 3.0's JumpStep does (NIR, one process).

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx)
        Calibrated ramp (after dark_current), DN.
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    gain : ndarray of float32, (ny, nx)
        e-/DN, cut to the subarray.
    readnoise : ndarray of float32, (ny, nx)
        CDS read noise, DN, cut to the subarray.
    params : tsogpu.config.Jump
    nframes : int
        NFRAMES (frames averaged per group).
    groupgap : int
        GROUPGAP; accepted for a uniform signature, jump does not use it.
    tgroup : float
        TGROUP, seconds.
    ngroups_total : int or None
        If given, must equal ``data.shape[1]`` (jwst tests the data shape).
    frame : FrameStats or None
        Whole-frame statistics when ``data`` holds only some rows of the frame (see the module
        docstring); None computes them from the arrays given.

    Returns
    -------
    JumpResult
        New arrays; the inputs are not modified.
    """
    del groupgap  # not used by jump (stcal has no group-gap term)
    nints, ngroups, ny, nx = data.shape
    check_ngroups_total(ngroups, ngroups_total)
    gdq = np.array(groupdq, dtype=dq.GROUPDQ_DTYPE, copy=True)
    pdq = np.array(pixeldq, dtype=dq.PIXELDQ_DTYPE, copy=True)
    if ngroups <= 2:
        return JumpResult(gdq, pdq, None, None, "SKIPPED", 0, 0, np.zeros(ny, np.int64), None)
    if frame is None:
        frame = frame_stats(all_dnu_planes(groupdq), gain)

    bad_gain = (gain <= 0.0) | np.isnan(gain)
    pdq[bad_gain] |= np.uint32(dq.NO_GAIN_VALUE | dq.DO_NOT_USE)

    rn_e = np.multiply(readnoise, gain, dtype=np.float32)
    # NumPy 2: python float * float32 scalar stays float32
    e1 = np.float32(params.after_jump_flag_dn1) * np.float32(frame.gain_median)
    e2 = np.float32(params.after_jump_flag_dn2) * np.float32(frame.gain_median)
    n1 = int(params.after_jump_flag_time1 // tgroup)
    n2 = int(params.after_jump_flag_time2 // tgroup)

    gdq, number_crs, crs_per_pixel, sigclip_planes = _two_point(
        data, gain, gdq, rn_e, params, nframes, frame, e1, n1, e2, n2
    )

    # stcal removes JUMP where DNU, then where SAT, is also set
    both = (gdq & (_JUMP | _DNU)) == (_JUMP | _DNU)
    gdq[both] ^= _JUMP
    both = (gdq & (_JUMP | _SAT)) == (_JUMP | _SAT)
    gdq[both] ^= _JUMP

    n_snowballs = 0
    if params.expand_large_events:
        gdq, n_snowballs = flag_snowballs(gdq, params, tgroup=tgroup)

    primecrs, extncrs = cosmic_ray_rates(
        number_crs, n_snowballs, all_dnu_planes(gdq), tgroup, gdq.shape[2] * gdq.shape[3]
    )
    return JumpResult(
        gdq,
        pdq,
        primecrs,
        extncrs,
        "COMPLETE",
        number_crs,
        n_snowballs,
        crs_per_pixel,
        sigclip_planes,
    )


def all_dnu_planes(groupdq):
    """(nints, ngroups) bool: planes of ``groupdq`` with DO_NOT_USE in every pixel.

    Over row chunks, the whole frame's value is the AND of the chunks'.
    """
    return np.all((groupdq & _DNU) != 0, axis=(2, 3))


def cosmic_ray_rates(number_crs, n_extended, all_dnu, tgroup, total_pixels):
    """PRIMECRS and EXTNCRS as jwst's JumpStep computes them.

    Parameters
    ----------
    number_crs : int
        stcal's primary CR count (-99 if detection was skipped internally).
    n_extended : int
        Snowball count.
    all_dnu : ndarray of bool, (nints, ngroups)
        ``all_dnu_planes`` of the whole output GROUPDQ.
    tgroup : float
        TGROUP, seconds.
    total_pixels : int
        ny * nx of the whole frame.

    Returns
    -------
    (float or None, float or None)
        None when jwst leaves the keywords unset (fewer than 1 usable group).
    """
    nints, ngroups = all_dnu.shape
    total_groups = nints * ngroups - int(np.count_nonzero(all_dnu)) - nints
    if total_groups < 1:
        return None, None
    total_time = tgroup * total_groups
    crs = 1000 * number_crs / (total_time * total_pixels)
    events = 1e6 * n_extended / (total_time * total_pixels)
    return float(crs), float(events)


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


def choose_path(nints, ngroups, all_dnu, params):
    """'skip', 'sigclip', 'single' or 'iterative' (stcal groups_all_set_dnu + run_jump_detection).

    ``minimum_groups`` is 3 whatever the parameter says: stcal forces it when running as one
    process, as jwst does with its default ``maximum_cores='1'``.
    """
    per_int = all_dnu.sum(axis=1)
    max_flagged = int(per_int.max()) if nints else 0
    total_flagged = int(per_int.sum())
    min_usable_groups = ngroups - max_flagged
    total_groups = nints * ngroups - total_flagged
    min_usable_diffs = min_usable_groups - 1
    total_sigclip_groups = nints if params.only_use_ints else total_groups

    if params.only_use_ints:
        sigclip_fails = nints < params.minimum_sigclip_groups
    else:
        sigclip_fails = total_sigclip_groups < params.minimum_sigclip_groups
    minimum_groups = 3
    if sigclip_fails and min_usable_groups < minimum_groups:
        return "skip"
    # (jwst groups are uniform: stcal's uniform-group test is always true)
    if (params.only_use_ints and nints >= params.minimum_sigclip_groups) or (
        not params.only_use_ints and total_groups >= params.minimum_sigclip_groups
    ):
        return "sigclip"
    if min_usable_diffs >= params.min_diffs_single_pass:
        return "single"
    return "iterative"


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


# --------------------------------------------------------------------------------------------
# Snowballs (stcal jump.flag_large_events, NIR)


def flag_snowballs(groupdq, params, *, tgroup):
    """Snowball flagging on whole frames, as stcal ``flag_large_events`` with jwst's arguments.

    For each integration and group >= 1: connected regions (8-connected, ``area_filled`` >=
    the minimum) of newly saturated pixels in this and the next group, and of JUMP pixels; a
    jump region is a snowball if it lies near the frame edge or contains a new-saturation
    centroid. Saturated cores with minor axis > ``min_sat_radius_extend`` grow by
    ``2*sat_expand`` and are set to SAT (overwriting) in this and later groups; snowball ellipses
    are expanded and ORed with JUMP (not on SAT pixels) in this group. Cores are masked with JUMP
    in groups 1 .. min(int(snowball_time_masked_next_int // tgroup), ngroups)-1 of the next
    integration. Needs scikit-image (imported here, as stcal uses it).

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
        Whole frames; not modified.
    params : tsogpu.config.Jump
    tgroup : float

    Returns
    -------
    (ndarray of uint8 (nints, ngroups, ny, nx), int)
        New GROUPDQ and the snowball count.
    """
    try:
        import skimage  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            "jump.expand_large_events=True needs scikit-image (stcal's snowball code uses it); "
            "install scikit-image or set expand_large_events=False"
        ) from err
    gdq = np.array(groupdq, dtype=dq.GROUPDQ_DTYPE, copy=True)
    nints, ngrps, nrows, ncols = gdq.shape
    sb = _SnowballParams(
        min_sat_radius_extend=params.min_sat_radius_extend,
        sat_expand=params.sat_expand * 2,
        max_extended_width=params.max_extended_radius * 2,
        expand_factor=params.expand_factor,
    )
    persist = np.zeros((nints, nrows, ncols), dtype=np.uint8)
    total = 0
    next_new_sat = None
    for intg in range(nints):
        for grp in range(1, ngrps):
            current_sat = gdq[intg, grp] & _SAT
            new_sat = current_sat * np.logical_not(gdq[intg, grp - 1] & _SAT)
            if grp < ngrps - 1:
                # (at the last group stcal reuses the previous group's array; it is not used then)
                next_new_sat = (gdq[intg, grp + 1] & _SAT) * np.logical_not(current_sat)
            next_sat_ellipses = _regions(next_new_sat & _SAT, params.min_sat_area)
            sat_ellipses = _regions(new_sat & _SAT, params.min_sat_area)
            jump_ellipses = _regions(gdq[intg, grp] & _JUMP, params.min_jump_area)
            if params.sat_required_snowball:
                snowballs = _make_snowballs(
                    gdq,
                    persist,
                    intg,
                    grp,
                    jump_ellipses,
                    sat_ellipses,
                    next_sat_ellipses,
                    params,
                    sb,
                )
            else:
                snowballs = jump_ellipses
            total += len(snowballs)
            _extend_ellipses(gdq, intg, grp, snowballs, sb)

    persist_grps = int(params.snowball_time_masked_next_int // tgroup)
    if params.mask_snowball_core_next_int and persist_grps >= 1:
        last = min(persist_grps, ngrps)
        for intg in range(1, nints):
            gdq[intg, 1:last] |= persist[intg - 1][np.newaxis]
    return gdq, total


@dataclass(frozen=True)
class _SnowballParams:
    min_sat_radius_extend: float
    sat_expand: int
    max_extended_width: int
    expand_factor: float


def _make_snowballs(
    gdq, persist, intg, grp, jump_ellipses, sat_ellipses, next_sat_ellipses, params, sb
):
    """stcal ``make_snowballs`` + ``extend_saturation``; gdq and persist updated in place."""
    ngroups, nrows = gdq.shape[1], gdq.shape[2]
    low = params.edge_size
    high = max(0, nrows - params.edge_size)  # stcal compares both x and y with nrows
    snowballs = []
    for jump in jump_ellipses:
        if jump[0][0] < low or jump[0][1] < low or jump[0][0] > high or jump[0][1] > high:
            snowballs.append(jump)
        else:
            for sat in sat_ellipses:
                if _point_inside_ellipse(sat[0], jump) and jump not in snowballs:
                    snowballs.append(jump)
            if grp < ngroups - 1:
                for nsat in next_sat_ellipses:
                    if _point_inside_ellipse(nsat[0], jump) and jump not in snowballs:
                        snowballs.append(jump)

    cube = gdq[intg]
    shape = cube.shape[1:]
    for ellipse in sat_ellipses:
        ceny, cenx = ellipse[0][0], ellipse[0][1]
        if min(ellipse[1][1], ellipse[1][0]) > sb.min_sat_radius_extend:
            axis1 = min(ellipse[1][0] + sb.sat_expand, sb.max_extended_width)
            axis2 = min(ellipse[1][1] + sb.sat_expand, sb.max_extended_width)
            (y1, y2, x1, x2), inside = _ellipse_subim(ceny, cenx, axis1, axis2, ellipse[2], shape)
            for g in range(grp, cube.shape[0]):
                cube[g, y1:y2, x1:x2][inside] = _SAT
            (y1, y2, x1, x2), inside = _ellipse_subim(
                ceny, cenx, ellipse[1][0], ellipse[1][1], ellipse[2], shape
            )
            persist[intg, y1:y2, x1:x2][inside] = _JUMP
    return snowballs


def _extend_ellipses(gdq, intg, grp, ellipses, sb):
    """stcal ``extend_ellipses`` with expand_by_ratio and num_grps_masked=0."""
    shape = gdq.shape[2:]
    for ellipse in ellipses:
        ax0, ax1 = ellipse[1][0], ellipse[1][1]
        f = sb.expand_factor
        if ax1 < ax0:
            axis1, axis2 = ax0 + (f - 1.0) * ax1, ax1 * f
        else:
            axis1, axis2 = ax0 * f, ax1 + (f - 1.0) * ax0
        axis1 = min(axis1, sb.max_extended_width)
        axis2 = min(axis2, sb.max_extended_width)
        axes = (round(axis1 / 2), round(axis2 / 2))
        (y1, y2, x1, x2), inside = _ellipse_subim(
            ellipse[0][0], ellipse[0][1], axes[0] * 2, axes[1] * 2, ellipse[2], shape
        )
        plane = gdq[intg, grp, y1:y2, x1:x2]
        inside = inside & ((plane & _SAT) != _SAT)
        plane[inside] |= _JUMP


def _point_inside_ellipse(point, ellipse):
    angle = np.radians(180 - ellipse[2])
    cos_angle = np.cos(angle)
    sin_angle = np.sin(angle)
    xc = point[0] - ellipse[0][0]
    yc = point[1] - ellipse[0][1]
    xct = xc * cos_angle - yc * sin_angle
    yct = xc * sin_angle + yc * cos_angle
    if ellipse[1][1] >= ellipse[1][0]:
        semi_major, semi_minor = ellipse[1][1] * 0.5, ellipse[1][0] * 0.5
    else:
        semi_major, semi_minor = ellipse[1][0] * 0.5, ellipse[1][1] * 0.5
    return (xct**2 / semi_major**2) + (yct**2 / semi_minor**2) <= 1


def _ellipse_subim(ceny, cenx, axis1, axis2, alpha, shape):
    """stcal ``ellipse_subim``: (iy1, iy2, ix1, ix2) and a bool mask of the filled ellipse."""
    from skimage.draw import ellipse as sk_ellipse

    yc, xc = round(ceny), round(cenx)
    half = max(round(axis1 / 2), round(axis2 / 2)) + 2
    # stcal's naming: the first coordinate indexes columns
    ix1 = max(yc - half, 0)
    ix2 = min(yc + half + 1, shape[1])
    iy1 = max(xc - half, 0)
    iy2 = min(xc + half + 1, shape[0])
    mask = np.zeros((iy2 - iy1, ix2 - ix1), dtype=bool)
    r1, r2 = round(axis1 / 2), round(axis2 / 2)
    if r1 != 0 and r2 != 0:
        rr, cc = sk_ellipse(xc - iy1, yc - ix1, r2, r1, (iy2 - iy1, ix2 - ix1), np.radians(alpha))
        mask[rr, cc] = True
    return (iy1, iy2, ix1, ix2), mask


def _regions(image, min_area):
    """stcal ``_sk_filter_areas``: ((cx, cy), (minor-1, major-1), angle_deg) per region."""
    from skimage import measure

    out = []
    for region in measure.regionprops(measure.label(image)):
        if region.area_filled < min_area:
            continue
        w = region.axis_major_length - 1
        h = region.axis_minor_length - 1
        out.append(
            (
                (float(region.centroid[1]), float(region.centroid[0])),
                (h, w),
                np.degrees(region.orientation),
            )
        )
    return out
