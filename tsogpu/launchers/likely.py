"""ramp_fit LIKELY on the device: launchers of kernels/likely.cu.

``fit_ramps_likely`` mirrors the function of the same name in ``tsogpu/algorithms/likely.py``
(same parameters after the kernels object ``k``, same results, as ``k.xp`` arrays): one
kernel thread per pixel fits its integrations (``tso_lk_fit_pixels``: the differences,
``mask_jumps``, the fit, the DQ), then one per pixel combines them (``tso_lk_combine``). The
covariance constants are ``likely.Covar``'s, computed here once per call.
"""

from __future__ import annotations

import math

import numpy as np

from ..algorithms.likely import LIKELY_MIN_NGROUPS, Covar
from ..algorithms.ramp_fit import RampFitResult, RateProduct, group_range
from .marshal import contiguous, dqv, i64

# Scratch of tso_lk_fit_pixels in float64 words (LK_NARR arrays of nd + 1 per pixel): the
# pixels are fitted in batches that fit.
SCRATCH_WORDS = 1 << 25
LK_NARR = 17  # kernels/likely.cuh enum LkArray


def fit_ramps_likely(
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
):
    """Fit every pixel's ramps as jwst 3.0 RampFitStep does with LIKELY (stcal 1.20).

    Same parameters and results as ``tsogpu.algorithms.likely.fit_ramps_likely`` (after
    ``k``), with device arrays; the inputs are not modified.

    Raises ValueError with fewer than 4 groups (jwst then fits OLS_C).
    """
    del tgroup, dropframes1
    xp = k.xp
    nints, ngroups, ny, nx = data.shape
    if ngroups < LIKELY_MIN_NGROUPS:
        raise ValueError(
            f"LIKELY ramp fitting needs at least {LIKELY_MIN_NGROUPS} groups, got {ngroups}"
        )
    npix = ny * nx
    first, last = group_range(ngroups, params.firstgroup, params.lastgroup)
    covar, use_zf = Covar.for_exposure(ngroups, nframes, groupgap, tframe, zeroframe)
    nd = covar.delta_t.size
    terms = [
        xp.asarray(np.ascontiguousarray(a, dtype=np.float64))
        for a in (
            covar.delta_t,
            covar.alpha_phnoise,
            covar.alpha_readnoise,
            covar.beta_phnoise,
            covar.beta_readnoise,
            covar.one_omit_ok,
            covar.two_omit_ok,
        )
    ]
    dark = (
        xp.zeros(npix, dtype=xp.float32)
        if average_dark_current is None
        else contiguous(k, average_dark_current, xp.float32)
    )
    zf = contiguous(k, zeroframe, xp.float32) if use_zf else xp.zeros(1, dtype=xp.float32)
    cube, image = (nints, ny, nx), (ny, nx)
    ri = [xp.empty(cube, dtype=xp.float32) for _ in range(5)]
    ri[2] = xp.empty(cube, dtype=xp.uint32)
    chisq = xp.empty(cube, dtype=xp.float32)
    dq_values = dqv(k)
    arrays = (
        contiguous(k, data, xp.float32),
        contiguous(k, groupdq, xp.uint8),
        contiguous(k, pixeldq, xp.uint32),
        contiguous(k, gain, xp.float32),
        contiguous(k, readnoise, xp.float32),
    )
    words = LK_NARR * (nd + 1)
    nb = max(1, min(npix, SCRATCH_WORDS // words))
    scratch = xp.empty(nb * words, dtype=xp.float64)
    for p0 in range(0, npix, nb):
        n = min(nb, npix - p0)
        k.launch(
            "tso_lk_fit_pixels", n, *arrays, dark, zf, *terms, *ri, chisq, dq_values,
            i64(nints), i64(ngroups), i64(npix), i64(first), i64(last), np.int32(use_zf),
            i64(nframes), np.float64(math.sqrt(2)), i64(p0), i64(n), scratch,
        )  # fmt: skip
    if nints == 1:
        rate = [a.reshape(image).copy() for a in ri]
    else:
        rate = [xp.empty(image, dtype=xp.float32) for _ in range(5)]
        rate[2] = xp.empty(image, dtype=xp.uint32)
        nb = max(1, min(npix, 2 * SCRATCH_WORDS // nints))
        fscratch = xp.empty(nb * nints, dtype=xp.float32)
        for p0 in range(0, npix, nb):
            n = min(nb, npix - p0)
            k.launch(
                "tso_lk_combine", n, ri[0], ri[2], ri[3], ri[4], *rate, dq_values,
                i64(nints), i64(npix), i64(p0), i64(n), fscratch,
            )  # fmt: skip
    return RampFitResult(rateints=RateProduct(*ri), rate=RateProduct(*rate))
