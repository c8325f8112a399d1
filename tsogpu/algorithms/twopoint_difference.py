"""stcal 1.20's ``jump/twopoint_difference.py``: the two-point difference search.

Part of the jump specification (``tsogpu/algorithms/jump.py`` calls :func:`find_crs` between
its set-up and clean-up): each function is stcal's function of the same name, written as
stcal writes it (NumPy over whole arrays, astropy's ``sigma_clip``), for the case jwst runs:
near-infrared, one slice, ``dt_group = 1`` and ``n_reads_groupdiff = 2 NFRAMES``. A reviewer
reads the two side by side; the machine runs ``jump_fast``.
"""

import warnings

import numpy as np

from .. import dq

__all__ = ["SIGCLIP_MAXITERS", "choose_path", "find_crs"]

_JUMP = np.uint8(dq.JUMP_DET)
_DNU = np.uint8(dq.DO_NOT_USE)
_SAT_OR_DNU = np.uint8(dq.SATURATED | dq.DO_NOT_USE)

# astropy.stats.sigma_clip's default number of iterations, which stcal uses
SIGCLIP_MAXITERS = 5


def choose_path(nints, ngroups, all_dnu, params):
    """'skip', 'sigclip', 'single' or 'iterative': stcal ``find_crs``'s choice.

    stcal ``groups_all_set_dnu``, ``check_group_counts`` and ``check_sigma_clip_groups``,
    on ``all_dnu`` (:func:`all_dnu_planes` of the whole input GROUPDQ). ``minimum_groups``
    is 3 whatever the parameter says: stcal forces it when running as one process, as jwst
    does with its default ``maximum_cores='1'``. jwst's groups are uniform, so stcal's
    uniform-group test is always true.
    """
    # groups_all_set_dnu
    max_flagged_grps = 0
    total_flagged_grps = 0
    for integ in range(nints):
        num_flagged_grps = int(np.count_nonzero(all_dnu[integ]))
        max_flagged_grps = max(max_flagged_grps, num_flagged_grps)
        total_flagged_grps += num_flagged_grps
    total_groups = nints * ngroups - total_flagged_grps
    total_sigclip_groups = nints if params.only_use_ints else total_groups
    min_usable_groups = ngroups - max_flagged_grps
    min_usable_diffs = min_usable_groups - 1

    # check_group_counts
    if params.only_use_ints:
        sig_clip_grps_fails = nints < params.minimum_sigclip_groups
    else:
        sig_clip_grps_fails = total_sigclip_groups < params.minimum_sigclip_groups
    minimum_groups = 3
    total_noise_min_grps_fails = min_usable_groups < minimum_groups
    if total_noise_min_grps_fails and sig_clip_grps_fails:
        return "skip"
    # check_sigma_clip_groups
    test1 = params.only_use_ints and nints >= params.minimum_sigclip_groups
    test2 = not params.only_use_ints and total_groups >= params.minimum_sigclip_groups
    if test1 or test2:
        return "sigclip"
    if min_usable_diffs >= params.min_diffs_single_pass:
        return "single"
    return "iterative"


# --------------------------------------------------------------------------------------------
# stcal twopoint_difference.py, NIR, one slice, dt_group = 1 and n_reads_groupdiff = 2 NFRAMES


def find_crs(data, gain, gdq, rn_e, params, nframes, frame, e1, n1, e2, n2):
    """stcal ``find_crs`` (with ``run_jump_detection`` inlined); ``gdq`` updated in place.

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx), DN
    gain : ndarray of float32, (ny, nx)
    gdq : ndarray of uint8, (nints, ngroups, ny, nx); updated in place
    rn_e : ndarray of float32, (ny, nx), read noise in electrons
    params : tsogpu.config.Jump
    nframes : int
    frame : FrameStats
    e1, n1, e2, n2 : after-jump thresholds (float32 electrons) and group counts

    Returns
    -------
    (gdq, number_crs, crs_per_pixel, sigclip_planes)
        ``number_crs`` is -99 when stcal skips; ``crs_per_pixel`` int32 (ny, nx) counts the
        JUMP bits before the post-processing; ``sigclip_planes`` see :class:`JumpResult`.
    """
    nints, ngroups, ny, nx = data.shape
    ndiffs = (ngroups - 1) * nints
    read_noise_2 = rn_e**2  # float32
    path = choose_path(nints, ngroups, frame.all_dnu, params)
    if path == "skip":
        return gdq, -99, np.zeros((ny, nx), np.int32), None

    # detect_jumps_data: data in electrons (float32); run_jump_detection: NaN where DNU or SAT
    dat = np.multiply(data, gain, dtype=np.float32)
    dat[(gdq & _SAT_OR_DNU) != 0] = np.nan
    first_diffs = np.diff(dat, axis=1) / np.ones(1)  # / dt_group: float64
    first_diffs_finite = np.isfinite(first_diffs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*All-NaN slice encountered.*", RuntimeWarning)
        median_diffs = np.nanmedian(first_diffs, axis=(0, 1))
    sigma = np.sqrt(np.abs(median_diffs) * 1.0 + read_noise_2 / (0.5 * (2.0 * nframes)))
    sigma /= 1.0
    sigma[sigma == 0.0] = np.nan

    sigclip_planes = None
    if path == "sigclip":
        sigclip_planes = det_jump_sigma_clipping(
            gdq, first_diffs, first_diffs_finite, params, frame
        )
    elif path == "single":
        look_for_more_than_one_jump(
            gdq, first_diffs, median_diffs, sigma, first_diffs_finite, params
        )
    else:
        iterative_jump(gdq, ndiffs, first_diffs, read_noise_2, nframes, params)

    crs_per_pixel = np.count_nonzero(gdq & _JUMP, axis=(0, 1)).astype(np.int32)
    num_primary_crs = int(crs_per_pixel.sum())

    # jump_detection_post_processing
    if params.flag_4_neighbors:
        flag_four_neighbors(gdq, first_diffs, median_diffs, sigma, params)
    if n1 > 0 or n2 > 0:
        transient_jumps(gdq, first_diffs, median_diffs, e1, n1, e2, n2)
    return gdq, num_primary_crs, crs_per_pixel, sigclip_planes


def det_jump_sigma_clipping(gdq, first_diffs, first_diffs_finite, params, frame):
    """stcal ``det_jump_sigma_clipping``: gdq updated in place.

    astropy's ``sigma_clip`` across integrations (``only_use_ints``: one clip per difference
    and pixel) or across integrations and differences (one clip per pixel). Then, in every
    plane where every pixel has JUMP or DNU, pixels whose GROUPDQ is exactly JUMP are reset.
    Returns that plane test over the rows given; the reset uses ``frame.sigclip_planes``
    instead when set (the whole frame's test, see the module docstring).
    """
    from astropy import stats
    from astropy.utils.exceptions import AstropyUserWarning

    nints, ngroups = gdq.shape[:2]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*All-NaN slice encountered.*", RuntimeWarning)
        warnings.filterwarnings("ignore", ".*Mean of empty slice.*", RuntimeWarning)
        warnings.filterwarnings("ignore", ".*Degrees of freedom <= 0.*", RuntimeWarning)
        warnings.filterwarnings(
            "ignore", ".*Input data contains invalid values*", AstropyUserWarning
        )
        axis = 0 if params.only_use_ints else (0, 1)
        clipped_diffs = stats.sigma_clip(
            first_diffs,
            sigma=params.rejection_threshold,
            maxiters=SIGCLIP_MAXITERS,
            axis=axis,
            masked=True,
        )
    jump_candidates = clipped_diffs.mask
    sat_or_dnu_not_set = (gdq[:, 1:] & _SAT_OR_DNU) == 0
    jump_mask = jump_candidates & first_diffs_finite & sat_or_dnu_not_set
    gdq[:, 1:] |= jump_mask * _JUMP

    local = np.zeros((nints, ngroups), dtype=bool)
    for integ in range(nints):
        for grp in range(ngroups):
            local[integ, grp] = np.all((gdq[integ, grp] & (_JUMP | _DNU)) != 0)
    planes = local if frame.sigclip_planes is None else frame.sigclip_planes
    for integ in range(nints):
        for grp in range(ngroups):
            if planes[integ, grp]:
                jump_only = gdq[integ, grp] == _JUMP
                gdq[integ, grp][jump_only] = 0
    return local


def look_for_more_than_one_jump(gdq, first_diffs, median_diffs, sigma, first_diffs_finite, params):
    """stcal ``look_for_more_than_one_jump``: one pass, gdq updated in place."""
    nints, ngroups = gdq.shape[:2]
    for i in range(nints):
        for gi in range(1, ngroups):
            jump_candidates = (
                np.abs(first_diffs[i, gi - 1] - median_diffs) / sigma
            ) > params.rejection_threshold
            gdq[i, gi] |= (jump_candidates & first_diffs_finite[i, gi - 1]) * _JUMP


def iterative_jump(gdq, ndiffs, first_diffs, read_noise_2, nframes, params):
    """stcal ``iterative_jump``: flag the largest outlier, mask it, repeat; gdq in place."""
    first_diffs_abs = np.abs(first_diffs)
    cr_pix, ratio = get_cr_locs(first_diffs_abs, read_noise_2, nframes, ndiffs, params)
    for _ in range(ndiffs):  # no more than ndiffs CRs per pixel
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*All-NaN slice encountered.*", RuntimeWarning)
            new_cr = (ratio == np.nanmax(ratio, axis=(0, 1))) & cr_pix[:, np.newaxis]
        if np.sum(new_cr) == 0:
            break
        gdq[:, 1:][new_cr] |= _JUMP
        first_diffs_abs[new_cr] = np.nan
        cr_pix, ratio = get_cr_locs(
            first_diffs_abs,
            read_noise_2,
            nframes,
            ndiffs,
            params,
            index=np.any(new_cr, axis=(0, 1)),
        )


def get_cr_locs(first_diffs_abs, read_noise_2, nframes, ndiffs, params, index=None):
    """stcal ``get_cr_locs``: candidate (integration, pixel) flags and the ratios.

    ``index`` (bool (ny, nx)): the pixels to recompute (the others get ratio 0); None: all.
    """
    nints, nd, nrows, ncols = first_diffs_abs.shape
    median_diffs_iter = np.zeros((nrows, ncols), np.float32)
    if index is not None:
        reshaped = first_diffs_abs[:, :, index].reshape(nints, nd, -1)
        median_diffs_iter[index] = calc_med_first_diffs(reshaped)
    else:
        median_diffs_iter = calc_med_first_diffs(first_diffs_abs)
    sigma_iter = np.sqrt(np.abs(median_diffs_iter) * 1.0 + read_noise_2 / (0.5 * (2.0 * nframes)))
    sigma_iter /= 1.0
    sigma_iter[sigma_iter == 0.0] = np.nan
    e_jump = np.zeros(first_diffs_abs.shape, dtype=np.float32)
    if index is not None:
        e_jump[:, :, index] = first_diffs_abs[:, :, index] - median_diffs_iter[index]
    else:
        e_jump[...] = first_diffs_abs - median_diffs_iter
    ratio = np.abs(e_jump) / sigma_iter[None, None]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*All-NaN slice encountered.*", RuntimeWarning)
        max_ratio = np.nanmax(ratio, axis=1)
    num_usable_grps = ndiffs - np.sum(np.isnan(first_diffs_abs), axis=(0, 1))
    fourgrp_cr = (num_usable_grps >= 4) & (max_ratio > params.rejection_threshold)
    threegrp_cr = (num_usable_grps == 3) & (max_ratio > params.four_group_rejection_threshold)
    twogrp_cr = (num_usable_grps == 2) & (max_ratio > params.three_group_rejection_threshold)
    return fourgrp_cr | threegrp_cr | twogrp_cr, ratio


def calc_med_first_diffs(in_first_diffs):
    """stcal ``calc_med_first_diffs``: per pixel over (integration, difference).

    >= 4 usable: the largest value(s) masked, then the NaN-median; 3: the NaN-median;
    2: the smaller; < 2: NaN.
    """
    first_diffs = in_first_diffs.copy()
    nints, ndiffs = first_diffs.shape[:2]
    num_usable_diffs = (ndiffs * nints) - np.sum(np.isnan(first_diffs), axis=(0, 1))
    fourgrps = num_usable_diffs >= 4
    twogrps = num_usable_diffs == 2
    lessthantwogrps = num_usable_diffs < 2
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*All-NaN slice encountered.*", RuntimeWarning)
        maxval = np.nanmax(first_diffs, axis=(0, 1))
        first_diffs[fourgrps & (first_diffs == maxval)] = np.nan
        median_diffs = np.nanmedian(first_diffs, axis=(0, 1))
        median_diffs[twogrps] = np.nanmin(first_diffs, axis=(0, 1))[twogrps]
        median_diffs[lessthantwogrps] = np.nan
    return median_diffs


def flag_four_neighbors(gdq, first_diffs, median_diffs, sigma, params):
    """stcal ``flag_four_neighbors``: JUMP on the 4 neighbours of seeds (JUMP and
    min < ratio < max) that lack SAT and DNU; gdq updated in place."""
    nints, ngroups = gdq.shape[:2]
    for i in range(nints):
        for j in range(ngroups - 1):
            ratio = np.abs(first_diffs[i, j] - median_diffs) / sigma
            jump_set = (gdq[i, j + 1] & _JUMP) != 0
            flag = (
                (ratio < params.max_jump_to_flag_neighbors)
                & (ratio > params.min_jump_to_flag_neighbors)
                & jump_set
            )
            flagsave = flag.copy()
            flag[1:] |= flagsave[:-1]
            flag[:-1] |= flagsave[1:]
            flag[:, 1:] |= flagsave[:, :-1]
            flag[:, :-1] |= flagsave[:, 1:]
            sat_or_dnu_notset = (gdq[i, j + 1] & _SAT_OR_DNU) == 0
            gdq[i, j + 1][sat_or_dnu_notset & flag] |= _JUMP


def transient_jumps(gdq, first_diffs, median_diffs, e1, n1, e2, n2):
    """stcal ``transient_jumps``: groups after a JUMP group whose ``diff - median`` reaches
    e1 (e2) get JUMP for n1 (n2) groups, unless SAT or DNU; gdq updated in place."""
    nints = gdq.shape[0]
    for i in range(nints):
        ejump = first_diffs[i] - median_diffs[np.newaxis, :]
        ejump *= 1.0  # dt_group
        jump_set = (gdq[i] & _JUMP) != 0
        bigjump = np.zeros(jump_set.shape, dtype=bool)
        verybigjump = np.zeros(jump_set.shape, dtype=bool)
        bigjump[1:] = (ejump >= e1) & jump_set[1:]
        verybigjump[1:] = (ejump >= e2) & jump_set[1:]
        propagate_flags(bigjump, n1)
        propagate_flags(verybigjump, n2)
        sat_or_dnu_notset = (gdq[i] & _SAT_OR_DNU) == 0
        addflag = (bigjump | verybigjump) & sat_or_dnu_notset
        gdq[i][addflag] |= _JUMP


def propagate_flags(boolean_flag, n_groups_flag):
    """stcal ``propagate_flags``: each True spread ``n_groups_flag`` groups on, in place."""
    ngroups = boolean_flag.shape[0]
    jmax = min(n_groups_flag, ngroups - 2)
    if (jmax <= 50 and jmax > 0) or np.mean(boolean_flag) > 1e-3:
        for j in range(jmax):
            boolean_flag[j + 1 :] |= boolean_flag[j:-1]
    elif jmax > 0:
        igrp, icol, irow = np.where(boolean_flag)
        for j in range(len(igrp)):
            boolean_flag[igrp[j] : igrp[j] + n_groups_flag + 1, icol[j], irow[j]] = True
