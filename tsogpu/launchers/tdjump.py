"""Time-domain jump detection with kernels/tdjump.cu: ``tsogpu.algorithms.tdjump``'s
``flag_time_domain`` (same parameters and result, plus the leading ``k``), bit for bit."""

import numpy as np

from ..algorithms.tdjump import TimeJumps
from .marshal import contiguous, dqv, i64

# Scratch for the point-to-point terms, in float64 words: the (difference, pixel) items are
# taken in batches that fit (an item needs nints words).
SCRATCH_WORDS = 1 << 25


def flag_time_domain(k, data, groupdq, *, window, threshold):
    """``tsogpu.algorithms.tdjump.flag_time_domain`` on ``k`` (arrays of ``k.xp``)."""
    xp = k.xp
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    nd = max(ngroups - 1, 0)
    data = contiguous(k, data, np.float32)
    gdq_in = contiguous(k, groupdq, np.uint8)
    gdq = gdq_in.copy()
    scatter = xp.empty((nd, ny, nx), xp.float64)
    count = xp.empty((nd, ny, nx), xp.int32)
    items = nd * npix
    if items:
        dq_values = dqv(k)
        nb = max(1, min(items, SCRATCH_WORDS // nints))
        scratch = xp.empty(nb * nints, xp.float64)
        for j0 in range(0, items, nb):
            n = min(nb, items - j0)
            k.launch(
                "tso_tdj_flag", n, data, gdq_in, gdq, scatter, count, i64(nints),
                i64(ngroups), i64(npix), i64(window), np.float64(threshold), i64(j0), i64(n),
                scratch, dq_values,
            )  # fmt: skip
    return TimeJumps(gdq, count.sum(axis=0, dtype=xp.int32), scatter)
