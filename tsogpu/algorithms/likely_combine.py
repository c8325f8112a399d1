"""LIKELY ramp fitting: the DQ of an integration and the exposure's rate from its integrations.

Mirrors stcal 1.20's ``utils.dq_compress_sect`` (as ``likely_ramp_fit`` calls it),
``likely_fit.compute_image_info`` and ``utils.dq_compress_final``. stcal combines the
integrations' float32 arrays in float32; so does :func:`combine_integrations`, with its sums
in integration order (one CUDA thread per pixel: ``kernels/likely.cu``).
"""

import numpy as np

from .. import dq

__all__ = ["combine_integrations", "compress_integration_dq", "nanmedian_float32"]

_DNU = np.uint32(dq.DO_NOT_USE)
_SAT = np.uint32(dq.SATURATED)
_JUMP = np.uint32(dq.JUMP_DET)


def compress_integration_dq(gdq, pixeldq):
    """An integration's DQ (``dq_compress_sect``).

    Parameters
    ----------
    gdq : ndarray of uint8, (ngroups, n), with the jumps LIKELY found
    pixeldq : ndarray of uint32, (n,)

    Returns
    -------
    ndarray of uint32, (n,): PIXELDQ, | DO_NOT_USE where every group is SATURATED or
    DO_NOT_USE, | SATURATED / JUMP_DET where any group has it.
    """
    g = gdq.astype(np.uint32)
    out = pixeldq.astype(np.uint32, copy=True)
    out[np.all((g & (_SAT | _DNU)) != 0, axis=0)] |= _DNU
    out[np.any((g & _SAT) != 0, axis=0)] |= _SAT
    out[np.any((g & _JUMP) != 0, axis=0)] |= _JUMP
    return out


def nanmedian_float32(values):
    """``np.nanmedian`` over the first axis of float32 values, the middle pair averaged
    as ``(a + b) / 2`` in float32; NaN where all are NaN.

    Parameters
    ----------
    values : ndarray of float32, (nints, n)

    Returns
    -------
    ndarray of float32, (n,)
    """
    s = np.sort(values, axis=0)  # NaN last
    count = np.sum(~np.isnan(values), axis=0)
    n = values.shape[1]
    cols = np.arange(n)
    hi = np.maximum(count // 2, 0)
    lo = np.maximum((count - 1) // 2, 0)
    a = s[np.minimum(lo, values.shape[0] - 1), cols]
    b = s[np.minimum(hi, values.shape[0] - 1), cols]
    med = np.where(count % 2 == 1, b, (a + b) / np.float32(2))
    return np.where(count == 0, np.float32(np.nan), med).astype(np.float32)


def _nansum_in_order(terms):
    total = np.zeros(terms.shape[1:], np.float32)
    for t in terms:
        total = total + np.where(np.isnan(t), np.float32(0), t)
    return total


def _nansum_or_nan(terms):
    total = _nansum_in_order(terms)
    total[np.all(np.isnan(terms), axis=0)] = np.nan
    return total


def combine_integrations(sci, err, var_poisson, var_rnoise, int_dq):
    """The exposure's rate product from the integrations' (``compute_image_info``).

    Parameters
    ----------
    sci, err, var_poisson, var_rnoise : ndarray of float32, (nints, n)
    int_dq : ndarray of uint32, (nints, n)

    Returns
    -------
    (sci, err, dq, var_poisson, var_rnoise) : ndarrays (n,), float32 (DQ uint32)
    """
    if sci.shape[0] == 1:
        return sci[0].copy(), err[0].copy(), int_dq[0].copy(), var_poisson[0], var_rnoise[0]
    slope = nanmedian_float32(sci)
    for _ in range(2):
        rate_scale = slope[None] / sci
        rate_scale[~np.isfinite(rate_scale) | (rate_scale < 0)] = 0
        all_var_p = var_poisson * rate_scale
        weight = np.float32(1) / (all_var_p + var_rnoise)
        weight = weight / _nansum_in_order(weight)[None]
        slope = _nansum_or_nan(sci * weight)
    var_p = _nansum_or_nan(all_var_p * weight**2)
    var_r = _nansum_or_nan(var_rnoise * weight**2)
    out_err = np.sqrt(var_p + var_r)
    ored = int_dq[0].copy()
    for d in int_dq[1:]:
        ored |= d
    final = ored & ~_DNU
    final[np.all((int_dq & _DNU) != 0, axis=0)] |= _DNU
    return slope, out_err, final, var_p, var_r
