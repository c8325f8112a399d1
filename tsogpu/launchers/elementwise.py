"""Launcher of kernels/elementwise.cu: PIXELDQ with a reference file's DQ, for the steps that
OR one in (dq_init, superbias, dark_current)."""

import numpy as np

from .marshal import contiguous, i64


def bitwise_or(k, a, b):
    """uint32 ``a | b`` on ``k``; a new array."""
    a = contiguous(k, a, np.uint32)
    b = contiguous(k, b, np.uint32)
    out = k.xp.empty(a.shape, dtype=np.uint32)
    k.launch("tso_or_u32", a.size, a, b, out, i64(a.size))
    return out
