"""Launcher of kernels/reset.cu: ``tsogpu.algorithms.reset`` on ``k``, bit for bit."""

import numpy as np

from .elementwise import bitwise_or
from .marshal import contiguous, i64


def subtract_reset(k, data, pixeldq, reset, reset_dq, int_start):
    """``tsogpu.algorithms.reset.subtract_reset``: data minus the reset correction of the
    exposure's integration ``int_start + i`` (the reference's last beyond its NINTS) in its
    first groups; PIXELDQ | the reference's DQ."""
    d = contiguous(k, data, np.float32)
    nints, ngroups, ny, nx = d.shape
    if nints == 0:
        return d.copy(), contiguous(k, pixeldq, np.uint32).copy()
    ref = contiguous(k, reset, np.float32)
    reset_nints, reset_ngroups = ref.shape[:2]
    out = k.xp.empty(d.shape, dtype=np.float32)
    k.launch(
        "tso_reset", d.size, d, ref, out, i64(nints), i64(ngroups), i64(ny * nx),
        i64(reset_nints), i64(reset_ngroups), i64(min(ngroups, reset_ngroups)), i64(int_start),
    )  # fmt: skip
    return out, bitwise_or(k, pixeldq, reset_dq)
