"""lastframe: DO_NOT_USE on the final group of every integration (MIRI).

Mirrors ``jwst/lastframe/lastframe_sub.py: do_correction`` (jwst 3.0). jwst runs it where
NGROUPS > 2 (status COMPLETE), else the step is SKIPPED and nothing changes: that rule is
:func:`applies`, for the caller; :func:`flag_last_groups` leaves the array unchanged where it
does not apply.

Option beyond jwst (off by default): ``ngroups = N`` flags the last N groups (applies where
NGROUPS > N + 1, which leaves two groups, as jwst's rule does for one).

A kernel mirrors it in ``kernels/lastframe.cu``: one item per element.
"""

import numpy as np

from .. import dq

_DNU8 = np.uint8(dq.DO_NOT_USE)


def applies(ngroups_total, ngroups=1):
    """Whether jwst flags anything: NGROUPS > 2 for its one group (status COMPLETE), else
    the step is SKIPPED. With the option ``ngroups = N``: NGROUPS > N + 1."""
    return int(ngroups_total) > int(ngroups) + 1


def flag_last_groups(groupdq, ngroups=1):
    """OR DO_NOT_USE into the last ``ngroups`` groups of every integration.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups_total, ny, nx)
    ngroups : int
        Groups to flag at the end of each integration; 1 is jwst.

    Returns
    -------
    ndarray of uint8, same shape, a new array (equal to the input where :func:`applies` is
    false).
    """
    out = groupdq.copy()
    ngroups_total = groupdq.shape[1]
    if applies(ngroups_total, ngroups):
        out[:, ngroups_total - int(ngroups) :] |= _DNU8
    return out
