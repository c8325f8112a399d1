"""Launcher of kernels/rscd.cu: ``tsogpu.algorithms.rscd.flag_rscd`` on ``k``, bit for bit."""

import numpy as np

from ..algorithms.rscd import check_skips
from .marshal import contiguous, dqv, i64


def flag_rscd(k, groupdq, pixeldq, skip_int1, skip_int2p, int_start):
    """``tsogpu.algorithms.rscd.flag_rscd``: DO_NOT_USE in the first groups (``skip_int1`` in
    the exposure's first integration, ``skip_int2p`` after), backed off before saturation;
    FLUX_ESTIMATED where backed off. Raises ValueError as the NumPy function does."""
    gdq = contiguous(k, groupdq, np.uint8)
    pdq = contiguous(k, pixeldq, np.uint32)
    nints, ngroups, ny, nx = gdq.shape
    check_skips(ngroups, nints, skip_int1, skip_int2p, int_start)
    gdq_out = k.xp.empty(gdq.shape, dtype=np.uint8)
    pdq_out = k.xp.empty(pdq.shape, dtype=np.uint32)
    k.launch(
        "tso_rscd", ny * nx, gdq, pdq, dqv(k), gdq_out, pdq_out, i64(nints), i64(ngroups),
        i64(ny * nx), i64(skip_int1), i64(skip_int2p), i64(int_start),
    )  # fmt: skip
    return gdq_out, pdq_out
