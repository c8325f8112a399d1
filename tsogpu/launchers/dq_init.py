"""Launchers of kernels/dq_init.cu: ``tsogpu.algorithms.dq_init`` on ``k``, bit for bit.

Each function takes the kernels object ``k`` first, then the parameters of the NumPy function
of the same name, and returns what it returns. Inputs are never modified.
"""

import numpy as np

from .elementwise import bitwise_or
from .marshal import contiguous, dqv, i64


def dq_init(k, pixeldq, groupdq, mask_dq, user_dq=None):
    """``tsogpu.algorithms.dq_init.dq_init``: (pixeldq | mask, groupdq | mask & DO_NOT_USE),
    where mask = mask_dq | user_dq (the user's mask, uint32 (ny, nx), or None)."""
    mask = contiguous(k, mask_dq, np.uint32)
    if user_dq is not None:
        mask = bitwise_or(k, mask, contiguous(k, user_dq, np.uint32))
    new_pixeldq = bitwise_or(k, pixeldq, mask)
    gdq = contiguous(k, groupdq, np.uint8)
    new_groupdq = k.xp.empty(gdq.shape, dtype=np.uint8)
    k.launch(
        "tso_pj_dq_init_groups", gdq.size, gdq, mask, dqv(k), new_groupdq, i64(mask.size),
        i64(gdq.size),
    )  # fmt: skip
    return new_pixeldq, new_groupdq


def flag_groups(k, groupdq, mask):
    """``tsogpu.algorithms.dq_init.flag_groups`` (``mask``: bool per group, from the host)."""
    gdq = contiguous(k, groupdq, np.uint8)
    _, ngroups, ny, nx = gdq.shape
    out = k.xp.empty(gdq.shape, dtype=np.uint8)
    k.launch(
        "tso_opt_flag_groups", gdq.size, gdq, contiguous(k, mask, np.uint8), dqv(k), out,
        i64(ngroups), i64(ny * nx), i64(gdq.size),
    )  # fmt: skip
    return out
