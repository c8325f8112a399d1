"""Launcher of kernels/lastframe.cu: ``tsogpu.algorithms.lastframe`` on ``k``, bit for bit."""

import numpy as np

from ..algorithms.lastframe import applies
from .marshal import contiguous, dqv, i64


def flag_last_groups(k, groupdq, ngroups=1):
    """``tsogpu.algorithms.lastframe.flag_last_groups``: DO_NOT_USE in the last ``ngroups``
    groups; a copy where it does not apply."""
    gdq = contiguous(k, groupdq, np.uint8)
    nints, ngroups_total, ny, nx = gdq.shape
    if not applies(ngroups_total, ngroups):
        return gdq.copy()
    out = k.xp.empty(gdq.shape, dtype=np.uint8)
    k.launch(
        "tso_lastframe", gdq.size, gdq, dqv(k), out, i64(nints), i64(ngroups_total),
        i64(ny * nx), i64(ngroups_total - int(ngroups)),
    )  # fmt: skip
    return out
