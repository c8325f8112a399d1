"""Launcher of kernels/firstframe.cu: ``tsogpu.algorithms.firstframe`` on ``k``, bit for bit."""

import numpy as np

from ..algorithms.firstframe import applies
from .marshal import contiguous, dqv, i64


def flag_first_groups(k, groupdq, pixeldq, ngroups=1, bright_use_group1=True):
    """``tsogpu.algorithms.firstframe.flag_first_groups``: DO_NOT_USE in the first
    ``ngroups`` groups (kept where group ``ngroups + 1`` is SATURATED with
    ``bright_use_group1``, those pixels FLUX_ESTIMATED); copies where it does not apply."""
    gdq = contiguous(k, groupdq, np.uint8)
    pdq = contiguous(k, pixeldq, np.uint32)
    nints, ngroups_total, ny, nx = gdq.shape
    if not applies(ngroups_total, ngroups):
        return gdq.copy(), pdq.copy()
    gdq_out = k.xp.empty(gdq.shape, dtype=np.uint8)
    pdq_out = k.xp.empty(pdq.shape, dtype=np.uint32)
    k.launch(
        "tso_firstframe", ny * nx, gdq, pdq, dqv(k), gdq_out, pdq_out, i64(nints),
        i64(ngroups_total), i64(ny * nx), i64(ngroups), np.int32(bool(bright_use_group1)),
    )  # fmt: skip
    return gdq_out, pdq_out
