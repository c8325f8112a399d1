"""dq_init: OR the mask reference into PIXELDQ, and its DO_NOT_USE bit into GROUPDQ.

Mirrors ``jwst/dq_init/dq_initialization.py: do_dqinit`` (the RampModel branch; no
superstripe, no guider data, no user DQ: the caller ORs any user DQ into ``mask_dq``).
Pure bitwise work, no operation-order issues.
"""

import numpy as np

from .. import dq


def dq_init(pixeldq, groupdq, mask_dq):
    """Initialise the DQ arrays from the mask reference.

    Parameters
    ----------
    pixeldq : ndarray of uint32, shape (ny, nx)
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    mask_dq : ndarray of uint32, shape (ny, nx)
        MASK reference DQ, cut to the subarray and remapped to standard bits.

    Returns
    -------
    pixeldq : ndarray of uint32, shape (ny, nx)
        ``pixeldq | mask_dq``.
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
        ``groupdq | (mask_dq & DO_NOT_USE)`` in every integration and group.
    """
    mask = np.asarray(mask_dq).astype(dq.PIXELDQ_DTYPE)
    new_pixeldq = np.bitwise_or(pixeldq, mask, dtype=dq.PIXELDQ_DTYPE)
    dnu = (mask & dq.PIXELDQ_DTYPE(dq.DO_NOT_USE)).astype(dq.GROUPDQ_DTYPE)
    new_groupdq = np.bitwise_or(groupdq, dnu, dtype=dq.GROUPDQ_DTYPE)
    return new_pixeldq, new_groupdq
