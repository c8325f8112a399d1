"""Marshalling shared by the launchers: kernel arguments from arrays and numbers.

``k`` is a build of the kernels (``k.xp``: CuPy on a GPU, NumPy in the host build).
"""

import numpy as np

from . import sources


def dqv(k):
    """The ``dqv`` argument of a kernel: the DQ values in ``sources.DQ_ORDER``, on ``k``."""
    return k.xp.asarray(sources.dq_values())


def contiguous(k, a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` on ``k`` (no copy when it already is one)."""
    return k.xp.ascontiguousarray(k.xp.asarray(a, dtype=dtype))


def i64(v):
    """``v`` as a ``long long`` kernel argument."""
    return np.int64(v)


def to_host(a):
    """``a`` as a NumPy array (copied back from the device where it is there)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)
