"""superbias: subtract the superbias image from every group (and from ZEROFRAME).

Mirrors ``jwst/superbias/bias_sub.py: do_correction, subtract_bias`` (2-D bias; no
superstripe).

Operation order a kernel must copy: NaN bias values become 0.0 first; the subtraction is
one float32 subtract ``data - bias``. ZEROFRAME pixels that are exactly 0.0 ("bad") are
tested before the subtraction and stay 0.0 (positive zero) after it.
"""

import numpy as np

from .. import dq


def subtract_superbias(data, pixeldq, bias, bias_dq, zeroframe=None):
    """Subtract the superbias.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    bias : ndarray of float32, shape (ny, nx)
        SUPERBIAS SCI, cut to the subarray; NaN means no bias (treated as 0).
    bias_dq : ndarray of uint32, shape (ny, nx)
        SUPERBIAS DQ, remapped to standard bits.
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None

    Returns
    -------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
        ``pixeldq | bias_dq``.
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    """
    bias32 = np.asarray(bias, dtype=np.float32)
    bias32 = np.where(np.isnan(bias32), np.float32(0.0), bias32)
    new_pixeldq = np.bitwise_or(pixeldq, bias_dq, dtype=dq.PIXELDQ_DTYPE)
    new_data = np.subtract(data, bias32, dtype=np.float32)
    new_zeroframe = None
    if zeroframe is not None:
        bad = zeroframe == np.float32(0.0)
        new_zeroframe = np.subtract(zeroframe, bias32, dtype=np.float32)
        new_zeroframe[bad] = np.float32(0.0)
    return new_data, new_pixeldq, new_zeroframe
