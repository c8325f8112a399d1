"""Launcher of kernels/gain_scale.cu: ``tsogpu.algorithms.gain_scale`` on ``k``, bit for bit."""

import numpy as np

from .marshal import contiguous, i64


def _scaled(k, a, scale):
    a = contiguous(k, a, np.float32)
    out = k.xp.empty(a.shape, dtype=np.float32)
    k.launch("tso_gain_scale", a.size, a, out, scale, i64(a.size))
    return out


def gain_scale(k, sci, err, var_poisson, var_rnoise, factor):
    """``tsogpu.algorithms.gain_scale.gain_scale`` on ``k``: sci, err times float32(f);
    variances times float32(f**2) (squared in float64); None or empty variances returned as
    given."""
    f = float(factor)
    f32 = np.float32(f)
    f2_32 = np.float32(f**2)
    out_vars = []
    for var in (var_poisson, var_rnoise):
        if var is None or var.size == 0:
            out_vars.append(var)
        else:
            out_vars.append(_scaled(k, var, f2_32))
    return _scaled(k, sci, f32), _scaled(k, err, f32), out_vars[0], out_vars[1]
