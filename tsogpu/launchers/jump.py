"""Jump detection on the device: ``tsogpu.algorithms.jump.detect_jumps`` with kernels/jump.cu.

Same parameters and results as the NumPy function (plus the leading ``k``, the kernels object),
bit for bit: see the NumPy module's docstring for the algorithm and kernels/jump.cu for the
launch order and layouts. Arrays come and go on the device (``k.xp``); a few small things go
through the host: the (nints, ngroups) plane tests that choose the path and give PRIMECRS, the
whole-frame gain median (``frame_stats``, NumPy's ``nanmedian``), and the snowballs.
"""

import numpy as np

from ..algorithms import jump as ref
from ..algorithms.jump import JumpResult
from . import marshal
from .marshal import contiguous, to_host

# Scratch for the per-pixel selections and per-column sigma clips, in float32 words: the
# pixels (columns) are taken in batches that fit (a pixel needs nints * (ngroups - 1) words, a
# sigma-clip column its number of values).
SCRATCH_WORDS = 1 << 27
# kernels/jump.cuh: JP_CLIP_STATS_WORDS, a sigma-clip column's kept first iteration (JpClipStats)
CLIP_STATS_WORDS = 5


def _batches(xp, count, words_per_item):
    """(start, size, scratch) batches of ``count`` items, each item ``words_per_item`` words."""
    nb = max(1, min(count, SCRATCH_WORDS // max(words_per_item, 1)))
    scratch = xp.empty(nb * words_per_item, xp.float32)
    for start in range(0, count, nb):
        yield np.int64(start), np.int64(min(nb, count - start)), scratch


def _planes(k, gdq, with_jump, dqv):
    """(nints, ngroups) uint8: 1 where every pixel of the plane has DNU (or JUMP or DNU)."""
    nints, ngroups, ny, nx = gdq.shape
    out = k.xp.ones((nints, ngroups), k.xp.uint8)
    k.launch(
        "tso_jp_plane_all", gdq.size, gdq, out, np.int64(ny * nx), np.int64(with_jump),
        np.int64(gdq.size), dqv,
    )  # fmt: skip
    return out


def all_dnu_planes(k, groupdq):
    """``jump.all_dnu_planes`` on the device: (nints, ngroups) bool, DNU in every pixel."""
    dqv = marshal.dqv(k)
    gdq = contiguous(k, groupdq, np.uint8)
    return _planes(k, gdq, False, dqv).astype(bool)


def detect_jumps(
    k,
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
    """``tsogpu.algorithms.jump.detect_jumps`` on the device (same parameters and result).

    The arrays of the result (groupdq, pixeldq, crs_per_pixel, sigclip_planes) are ``k.xp``
    arrays; the inputs are not modified. Snowballs (``params.expand_large_events``) run on the
    host with the NumPy ``flag_snowballs``. ``memo``: a dict kept between calls on the same
    ramp (a sweep's points): the sigma clip keeps there each column's first iteration, which
    does not depend on the rejection threshold, and decides from it the columns that iteration
    clips nothing of; the result is that of a call without it, bit for bit.
    """
    del groupgap  # not used by jump
    xp = k.xp
    nints, ngroups, ny, nx = data.shape
    ref.check_ngroups_total(ngroups, ngroups_total)
    gdq = xp.array(groupdq, dtype=xp.uint8, order="C", copy=True)
    pdq = xp.array(pixeldq, dtype=xp.uint32, order="C", copy=True)
    if ngroups <= 2:
        return JumpResult(gdq, pdq, None, None, "SKIPPED", 0, 0, xp.zeros(ny, xp.int64), None)
    dqv = marshal.dqv(k)
    data = contiguous(k, data, np.float32)
    gain = contiguous(k, gain, np.float32)
    readnoise = contiguous(k, readnoise, np.float32)
    if frame is None:
        all_dnu = to_host(_planes(k, gdq, False, dqv)).astype(bool)
        frame = ref.frame_stats(all_dnu, to_host(gain))

    # bad gain -> PIXELDQ; rn_e**2 / nframes (float64), as jump._two_point forms it
    npix = ny * nx
    rn2_nf = xp.empty((ny, nx), xp.float64)
    k.launch(
        "tso_jp_pixel_setup", npix, gain, readnoise, pdq, rn2_nf,
        np.float64(0.5 * (2.0 * nframes)), np.int64(npix), dqv,
    )  # fmt: skip
    # host scalars exactly as the NumPy code forms them (NumPy 2: float32 * float32)
    e1 = np.float32(params.after_jump_flag_dn1) * np.float32(frame.gain_median)
    e2 = np.float32(params.after_jump_flag_dn2) * np.float32(frame.gain_median)
    n1 = int(params.after_jump_flag_time1 // tgroup)
    n2 = int(params.after_jump_flag_time2 // tgroup)

    number_crs, crs_per_pixel, sigclip_planes = _two_point(
        k, dqv, data, gdq, gain, rn2_nf, params, frame, (e1, n1, e2, n2), memo
    )

    # JUMP removed where DNU, then where SAT, is also set
    k.launch("tso_jp_cleanup", gdq.size, gdq, np.int64(gdq.size), dqv)

    n_snowballs = 0
    if params.expand_large_events:
        # Snowballs stay on the host (scikit-image regions and ellipses, as stcal calls them):
        # GROUPDQ goes to the host, through the NumPy flag_snowballs, and back.
        host, n_snowballs = ref.flag_snowballs(to_host(gdq), params, tgroup=tgroup)
        gdq = xp.ascontiguousarray(xp.asarray(host))

    all_dnu_out = to_host(_planes(k, gdq, False, dqv)).astype(bool)
    primecrs, extncrs = ref.cosmic_ray_rates(number_crs, n_snowballs, all_dnu_out, tgroup, npix)
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


def _median_memo(xp, memo, key):
    """The per-pixel medians and sigmas of the differences kept in ``memo`` for ``key``
    ((ny, nx, nvals)): (median, sigma, have: uint8, 1 where kept); None without a memo."""
    if memo is None:
        return None
    held = memo.get("jump_median")
    if held is None or held[0] != key:
        image = key[:2]
        arrays = (xp.empty(image, xp.float64), xp.empty(image, xp.float64))
        held = (key, *arrays, xp.zeros(image, xp.uint8))
        memo["jump_median"] = held
    return held[1:]


def _clip_memo(xp, memo, key):
    """The sigma clip's kept first iterations (JpClipStats, zeroed: none kept) held in
    ``memo`` for ``key`` (made on first use or when the key changed); a stand-in without."""
    if memo is None:
        return xp.zeros(CLIP_STATS_WORDS, xp.float64)
    held = memo.get("jump")
    if held is None or held[0] != key:
        held = (key, xp.zeros((key[2], CLIP_STATS_WORDS), xp.float64))
        memo["jump"] = held
    return held[1]


def _two_point(k, dqv, data, gdq, gain, rn2_nf, params, frame, after, memo):
    """``jump._two_point``: gdq updated in place; (number_crs, crs_per_pixel, sigclip_planes).
    ``after``: (e1, n1, e2, n2), the after-jump flagging's thresholds and extents."""
    e1, n1, e2, n2 = after
    xp = k.xp
    nints, ngroups, ny, nx = data.shape
    npix, nd = ny * nx, ngroups - 1
    nvals = nints * nd  # differences per pixel (stcal's ndiffs)
    ndiff = nvals * npix
    path = ref.choose_path(nints, ngroups, frame.all_dnu, params)
    if path == "skip":
        return -99, xp.zeros((ny, nx), xp.int32), None
    i64 = np.int64

    diffs = xp.empty((nints, nd, ny, nx), xp.float32)
    k.launch(
        "tso_jp_diffs", ndiff, data, gdq, gain, diffs, i64(ngroups), i64(npix), i64(ndiff), dqv
    )
    median = xp.full((ny, nx), np.nan, xp.float64)
    sigma = xp.full((ny, nx), np.nan, xp.float64)

    kept = _median_memo(xp, memo, (ny, nx, nvals))

    def median_launch(want, med, sig):
        for p0, nb, scratch in _batches(xp, npix, nvals):
            k.launch(
                "tso_jp_median", nb, diffs, rn2_nf, want, med, sig, i64(nvals), i64(npix),
                p0, nb, scratch,
            )  # fmt: skip

    def medians(want):
        """median and sigma of the pixels where ``want`` (jump._nanmedian_at); with a memo,
        those of earlier calls are kept (the differences, so their medians, are the same)."""
        want = xp.ascontiguousarray(want, dtype=xp.uint8)
        if kept is None:
            median_launch(want, median, sigma)
            return
        kept_median, kept_sigma, have = kept
        todo = xp.ascontiguousarray(want.astype(bool) & (have == 0), dtype=xp.uint8)
        median_launch(todo, kept_median, kept_sigma)
        have |= todo
        wanted = want.astype(bool)
        median[wanted], sigma[wanted] = kept_median[wanted], kept_sigma[wanted]

    def jumped():
        counts = xp.empty((ny, nx), xp.int32)
        k.launch("tso_jp_count_jumps", npix, gdq, counts, i64(nints * ngroups), i64(npix), dqv)
        return counts

    if path != "sigclip":
        medians(xp.ones((ny, nx), xp.uint8))
    sigclip_planes = None
    if path == "sigclip":
        if params.only_use_ints:
            nrows, ncols = nints, nd * npix  # per (difference, pixel), over integrations
        else:
            nrows, ncols = nvals, npix  # per pixel, over (integration, difference)
        lo = xp.empty(ncols, xp.float64)
        hi = xp.empty(ncols, xp.float64)
        nsigma = np.float64(float(params.rejection_threshold))
        stats = _clip_memo(xp, memo, (bool(params.only_use_ints), nrows, ncols))
        for c0, nb, scratch in _batches(xp, ncols, nrows):
            k.launch(
                "tso_jp_sigclip_bounds", nb, diffs, lo, hi, i64(nrows), i64(ncols), nsigma,
                i64(ref.SIGCLIP_MAXITERS), c0, nb, scratch, stats, np.int32(memo is not None),
            )  # fmt: skip
        k.launch(
            "tso_jp_sigclip_flag", ndiff, diffs, lo, hi, gdq, i64(ncols), i64(ngroups),
            i64(npix), i64(ndiff), dqv,
        )  # fmt: skip
        # whole-plane test: JUMP-only pixels reset where a plane is all JUMP/DNU
        local = _planes(k, gdq, True, dqv)
        if frame.sigclip_planes is None:
            planes = local
        else:
            planes = xp.ascontiguousarray(xp.asarray(frame.sigclip_planes), dtype=xp.uint8)
        k.launch("tso_jp_plane_reset", gdq.size, gdq, planes, i64(npix), i64(gdq.size), dqv)
        sigclip_planes = local.astype(bool)
    elif path == "single":
        k.launch(
            "tso_jp_single", ndiff, diffs, median, sigma, gdq,
            np.float64(params.rejection_threshold), i64(ngroups), i64(npix), i64(ndiff), dqv,
        )  # fmt: skip
    else:
        for p0, nb, scratch in _batches(xp, npix, 2 * nvals):
            k.launch(
                "tso_jp_iterative", nb, diffs, gdq, rn2_nf,
                np.float64(params.rejection_threshold),
                np.float64(params.four_group_rejection_threshold),
                np.float64(params.three_group_rejection_threshold),
                i64(ngroups), i64(nvals), i64(npix), p0, nb, scratch, dqv,
            )  # fmt: skip

    crs_per_pixel = jumped()
    number_crs = int(crs_per_pixel.sum())
    if path == "sigclip":
        # from here the median serves only pixels with a JUMP (neighbour seeds, after-jump
        # flagging): the others keep NaN, which no test below can pass
        medians(crs_per_pixel > 0)

    if params.flag_4_neighbors:
        seed = xp.empty(ndiff, xp.uint8)
        k.launch(
            "tso_jp_seeds", ndiff, diffs, median, sigma, gdq, seed,
            np.float64(params.min_jump_to_flag_neighbors),
            np.float64(params.max_jump_to_flag_neighbors), i64(ngroups), i64(npix), i64(ndiff),
            dqv,
        )  # fmt: skip
        k.launch(
            "tso_jp_neighbours", ndiff, seed, gdq, i64(ngroups), i64(ny), i64(nx), i64(ndiff),
            dqv,
        )  # fmt: skip
    if n1 > 0 or n2 > 0:
        if path == "sigclip":  # the pixels that neighbour flagging gave their first JUMP
            medians(xp.isnan(median) & (jumped() > 0))
        # jump._propagate extends each flag by min(n, ngroups - 2) groups
        m1, m2 = max(0, min(n1, ngroups - 2)), max(0, min(n2, ngroups - 2))
        k.launch(
            "tso_jp_after_jumps", nints * npix, diffs, median, gdq, np.float64(e1), i64(m1),
            np.float64(e2), i64(m2), i64(ngroups), i64(npix), i64(nints * npix), dqv,
        )  # fmt: skip
    return number_crs, crs_per_pixel, sigclip_planes
