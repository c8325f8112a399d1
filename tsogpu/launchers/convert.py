"""Launcher of kernels/convert.cu: raw counts to float32 ramps on ``k``, as
``tsogpu.segment.ramps_to_float32`` makes them on the host."""

import numpy as np

from ..segment import FILE_COUNTS
from .marshal import i64

# the host dtype of the raw counts -> the kernel that makes them float32
KERNELS = {np.dtype(np.uint16): "tso_u16_to_f32", FILE_COUNTS: "tso_be16_to_f32"}


def converts(dtype):
    """Whether raw counts of host ``dtype`` are converted by a kernel."""
    return np.dtype(dtype) in KERNELS


def ramps_to_float32(k, raw, dtype):
    """float32 ramps from ``raw``, the counts' bytes as uint16 on ``k`` (C-contiguous), whose
    host dtype was ``dtype`` (uint16, or the file's big-endian ``FILE_COUNTS``); a new array."""
    out = k.xp.empty(raw.shape, k.xp.float32)
    k.launch(KERNELS[np.dtype(dtype)], raw.size, raw, out, i64(raw.size))
    return out
