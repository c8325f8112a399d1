"""firstframe: DO_NOT_USE on the first group of every integration (MIRI).

Mirrors ``jwst/firstframe/firstframe_sub.py: do_correction`` (jwst 3.0; the step is skipped
by default there, its flagging having moved to rscd). The rule that decides whether jwst runs
it at all (NGROUPS > 3, else the status is SKIPPED and nothing changes) is
:func:`applies`, for the caller; :func:`flag_first_groups` leaves the arrays unchanged where
it does not apply.

With ``bright_use_group1`` (jwst's step default) a pixel keeps its first group in every
integration whose third group (index 2) is SATURATED: there the first-frame effect is small
against the signal of group 2 - group 1. Such pixels get FLUX_ESTIMATED in PIXELDQ when it
happens in any integration. No DQ bit is ever removed.

Option beyond jwst (off by default): ``ngroups = N`` flags the first N groups, with the same
rule (the saturation test then looks at group index N + 1, and it applies where
NGROUPS > N + 2).

A kernel mirrors it in ``kernels/firstframe.cu``: one thread per pixel over its integrations.
"""

import numpy as np

from .. import dq

_DNU8 = np.uint8(dq.DO_NOT_USE)
_SAT8 = np.uint8(dq.SATURATED)
_FLUX_ESTIMATED = np.uint32(dq.PIXEL["FLUX_ESTIMATED"])


def applies(ngroups_total, ngroups=1):
    """Whether jwst flags anything: NGROUPS > 3 for its one group (status COMPLETE), else
    the step is SKIPPED. With the option ``ngroups = N``: NGROUPS > N + 2."""
    return int(ngroups_total) > int(ngroups) + 2


def flag_first_groups(groupdq, pixeldq, ngroups=1, bright_use_group1=True):
    """OR DO_NOT_USE into the first ``ngroups`` groups of every integration.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups_total, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    ngroups : int
        Groups to flag from the start of each integration; 1 is jwst.
    bright_use_group1 : bool
        Keep the flagged groups of an integration whose group ``ngroups + 1`` (0-based) is
        SATURATED, and mark those pixels FLUX_ESTIMATED.

    Returns
    -------
    groupdq : ndarray of uint8, same shape, a new array
    pixeldq : ndarray of uint32, (ny, nx), a new array
        Both equal to the inputs where :func:`applies` is false.
    """
    out = groupdq.copy()
    new_pixeldq = pixeldq.copy()
    nints, ngroups_total = groupdq.shape[:2]
    if not applies(ngroups_total, ngroups):
        return out, new_pixeldq
    n = int(ngroups)
    any_kept = np.zeros(pixeldq.shape, dtype=bool)
    for i in range(nints):  # one thread per pixel walks its integrations
        if bright_use_group1:
            kept = (groupdq[i, n + 1] & _SAT8) != 0
            any_kept |= kept
        else:
            kept = np.zeros(pixeldq.shape, dtype=bool)
        flag = np.where(kept, np.uint8(0), _DNU8)
        for g in range(n):
            out[i, g] = groupdq[i, g] | flag
    new_pixeldq[any_kept] |= _FLUX_ESTIMATED
    return out, new_pixeldq
