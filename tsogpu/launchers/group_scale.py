"""Launcher of kernels/group_scale.cu: ``tsogpu.algorithms.group_scale`` on ``k``, bit for bit
(``needs_group_scale`` stays on the host)."""

import numpy as np

from .marshal import contiguous, i64


def group_scale(k, data, nframes, frame_divisor):
    """``tsogpu.algorithms.group_scale.group_scale`` on ``k``; a new array."""
    # float64 quotient on the host, rounded once to float32, as the NumPy function does
    scale = np.float32(float(frame_divisor) / nframes)
    data = contiguous(k, data, np.float32)
    out = k.xp.empty(data.shape, dtype=np.float32)
    k.launch("tso_group_scale", data.size, data, out, scale, i64(data.size))
    return out
