"""ramp_fit (OLS_C) on the device: launchers of kernels/ramp_fit.cu.

``fit_ramps`` mirrors the function of the same name in ``tsogpu/algorithms/ramp_fit.py``
(same parameters after the kernels object ``k``, same results, as ``k.xp`` arrays), which
follows stcal 1.20's ``slope_fitter.c``: one kernel thread per pixel (``tso_rf_fit_pixels``),
which applies the group range and the one-good-group suppression itself as it reads GROUPDQ.
"""

from __future__ import annotations

import numpy as np

from ..algorithms.ramp_fit import RampFitResult, RateProduct, group_range
from .marshal import contiguous, dqv

# kernels/ramp_fit.cuh: RF_MAX_GROUPS, the groups of the per-thread buffer (RfGroups).
RF_MAX_GROUPS = 512


def fit_ramps(
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
    tframe,
    dropframes1=0,
    average_dark_current=None,
    zeroframe=None,
    groups=None,
    memo=None,
):
    """Fit every pixel's ramps as jwst 3.0 RampFitStep does with OLS_C (stcal 1.20).

    Same parameters and results as ``tsogpu.algorithms.ramp_fit.fit_ramps`` (after ``k``),
    with device arrays. The inputs are not modified. One kernel thread per pixel runs
    ``get_pixel_ramp``, ``ramp_fit_pixel`` and the CHARGELOSS pass; the group range and the
    one-good-group suppression are applied inside the kernel as it reads GROUPDQ, and so are
    MIRI's ``groups`` (the thread reads only those, and clears group ``first``'s JUMP_DET).

    ``memo``: a dict kept between calls on the same ramp and references (a sweep's points):
    the kernel keeps there what each integration without flags gives (its median-rate term
    and slope, which its data alone decide) and reuses it where the integration still has
    none; the products are those of a call without it, bit for bit.

    Raises ValueError when NGROUPS exceeds RF_MAX_GROUPS (the kernel's per-thread buffer of
    one integration's groups).
    """
    del groupgap, dropframes1  # pedestal only (fitopt product)
    xp = k.xp
    nints, gstride, ny, nx = data.shape
    suppress = bool(params.suppress_one_group) and gstride > 1
    first, last = group_range(gstride, params.firstgroup, params.lastgroup)
    g0, g1 = (0, gstride) if groups is None else groups
    ngroups = g1 - g0
    first, last = max(first - g0, 0), last - g0  # relative to the groups fitted
    if ngroups > RF_MAX_GROUPS:
        raise ValueError(
            f"ramp_fit on the GPU supports at most {RF_MAX_GROUPS} groups per integration "
            f"(kernels/ramp_fit.cuh RF_MAX_GROUPS), got NGROUPS={ngroups}"
        )
    npix = ny * nx

    # The C code reads TGROUP and TFRAME through a float cast.
    tg = np.float64(np.float32(tgroup))
    tf = np.float64(np.float32(tframe))
    one_group_time = (np.float64(nframes) + 1.0) * tf / 2.0
    sqrt2n = np.sqrt(np.float64(2.0 * nframes))

    dark = (
        xp.zeros(npix, dtype=xp.float32)
        if average_dark_current is None
        else contiguous(k, average_dark_current, xp.float32)
    )
    has_zf = zeroframe is not None
    zf = contiguous(k, zeroframe, xp.float32) if has_zf else xp.zeros(1, dtype=xp.float32)

    cube = (nints, ny, nx)
    image = (ny, nx)
    ri = [xp.empty(cube, dtype=xp.float32) for _ in range(5)]
    ri[2] = xp.empty(cube, dtype=xp.uint32)
    rt = [xp.empty(image, dtype=xp.float32) for _ in range(5)]
    rt[2] = xp.empty(image, dtype=xp.uint32)
    # ramp_fit.goodness_of_fit: the reduced chi-square of each integration (else a stand-in)
    chi2 = xp.empty(cube if params.goodness_of_fit else 1, dtype=xp.float32)
    # every optimal weight (segment length, power class, group), computed once, not per group
    # (7 power classes: the SNR table's six, then ramp_fit.weighting's fixed exponent)
    fixed_power = params.fixed_power
    weights = xp.empty((ngroups + 1) * 7 * ngroups, dtype=xp.float64)
    k.launch(
        "tso_rf_weight_table",
        weights.size,
        weights,
        np.int64(ngroups),
        np.float64(0.0 if fixed_power is None else fixed_power),
    )
    key = (params, data.shape, nframes, float(tgroup), float(tframe), g0, g1, dark.shape)
    kept = _memo(k, memo, key, (nints, npix))
    gdq = contiguous(k, groupdq, xp.uint8)
    ramp_or = xp.empty((nints, npix), xp.uint8)
    k.launch(
        "tso_rf_ramp_flags", ramp_or.size, gdq, ramp_or, np.int64(gstride), np.int64(g0),
        np.int64(ngroups), np.int64(npix), np.int64(ramp_or.size),
    )  # fmt: skip
    # kernel order: sci, err, dq, var_poisson, var_rnoise (the RateProduct order)
    k.launch(
        "tso_rf_fit_pixels",
        npix,
        contiguous(k, data, xp.float32),
        gdq,
        ramp_or,
        contiguous(k, pixeldq, xp.uint32),
        contiguous(k, gain, xp.float32),
        contiguous(k, readnoise, xp.float32),
        dark,
        zf,
        *ri,
        *rt,
        chi2,
        *kept,
        weights,
        dqv(k),
        np.int64(nints),
        np.int64(ngroups),
        np.int64(npix),
        np.int64(first),
        np.int64(last),
        np.int64(gstride),
        np.int64(g0),
        np.int32(g0 > 0),
        np.int32(suppress),
        np.int32(has_zf),
        np.float64(sqrt2n),
        np.float64(tg),
        np.float64(tf),
        np.float64(one_group_time),
        np.int32(fixed_power is not None),
        np.int32(params.goodness_of_fit),
        np.int32(memo is not None),
    )
    return RampFitResult(
        rateints=RateProduct(*ri),
        rate=RateProduct(*rt),
        chi2=chi2 if params.goodness_of_fit else None,
    )


def _memo(k, memo, key, shape):
    """The kernel's memo arrays (term, slope, have) held in ``memo`` for ``key``: made, with
    nothing kept, on first use or when the key changed; stand-ins without a memo."""
    xp = k.xp
    if memo is None:
        return xp.empty(1, xp.float64), xp.empty(1, xp.float64), xp.empty(1, xp.uint8)
    held = memo.get("ramp_fit")
    if held is None or held[0] != key:
        arrays = (xp.empty(shape, xp.float64), xp.empty(shape, xp.float64))
        held = (key, *arrays, xp.zeros(shape, xp.uint8))
        memo["ramp_fit"] = held
    return held[1:]
