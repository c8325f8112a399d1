"""dq_init: OR the mask reference into PIXELDQ, and its DO_NOT_USE bit into GROUPDQ.

Mirrors ``jwst/dq_init/dq_initialization.py: do_dqinit`` (the RampModel branch; no
superstripe, no guider data). ``user_dq`` is jwst's ``user_supplied_dq``: ORed into the
mask before it is applied, so that its DO_NOT_USE reaches GROUPDQ too, as in jwst.
Pure bitwise work, no operation-order issues.
"""

import numpy as np

from .. import dq
from ..errors import InputError


def dq_init(pixeldq, groupdq, mask_dq, user_dq=None):
    """Initialise the DQ arrays from the mask reference.

    Parameters
    ----------
    pixeldq : ndarray of uint32, shape (ny, nx)
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    mask_dq : ndarray of uint32, shape (ny, nx)
        MASK reference DQ, cut to the subarray and remapped to standard bits.
    user_dq : ndarray of uint32, shape (ny, nx), or None
        The user's DQ mask (``tsogpu.io.user_mask.read_user_mask``), ORed into ``mask_dq``.

    Returns
    -------
    pixeldq : ndarray of uint32, shape (ny, nx)
        ``pixeldq | mask_dq | user_dq``.
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
        ``groupdq | ((mask_dq | user_dq) & DO_NOT_USE)`` in every integration and group.
    """
    mask = np.asarray(mask_dq).astype(dq.PIXELDQ_DTYPE)
    if user_dq is not None:
        mask = np.bitwise_or(mask, np.asarray(user_dq), dtype=dq.PIXELDQ_DTYPE)
    new_pixeldq = np.bitwise_or(pixeldq, mask, dtype=dq.PIXELDQ_DTYPE)
    dnu = (mask & dq.PIXELDQ_DTYPE(dq.DO_NOT_USE)).astype(dq.GROUPDQ_DTYPE)
    new_groupdq = np.bitwise_or(groupdq, dnu, dtype=dq.GROUPDQ_DTYPE)
    return new_pixeldq, new_groupdq


def flagged_groups(ngroups, first=0, last=0, groups=()):
    """The 0-based groups ``dq_init.flag_first``/``flag_last``/``flag_groups`` select.

    Parameters
    ----------
    ngroups : int
    first, last : int
        The first ``first`` and the last ``last`` groups (clipped to the ramp).
    groups : sequence of int
        0-based group numbers; negative ones count from the end (-1: the last group).

    Returns
    -------
    ndarray of bool, shape (ngroups,)

    Raises
    ------
    InputError
        A listed group outside the ramp.
    """
    mask = np.zeros(ngroups, dtype=bool)
    mask[: min(first, ngroups)] = True
    if last > 0:
        mask[max(ngroups - last, 0) :] = True
    for g in groups:
        if not -ngroups <= g < ngroups:
            raise InputError(
                f"dq_init.flag_groups: group {g} is outside the ramp of {ngroups} groups "
                f"(0..{ngroups - 1}, or -{ngroups}..-1 from the end)"
            )
        mask[g] = True
    return mask


def flag_groups(groupdq, mask):
    """OR DO_NOT_USE into the groups ``mask`` selects, in every pixel and integration.

    Parameters
    ----------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    mask : ndarray of bool, shape (ngroups,)
        As :func:`flagged_groups` returns it.

    Returns
    -------
    ndarray of uint8, shape (nints, ngroups, ny, nx)
    """
    flags = np.where(mask, dq.GROUPDQ_DTYPE(dq.DO_NOT_USE), dq.GROUPDQ_DTYPE(0))
    return np.bitwise_or(groupdq, flags[None, :, None, None], dtype=dq.GROUPDQ_DTYPE)
