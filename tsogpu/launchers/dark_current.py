"""Launchers of kernels/dark_current.cu: ``tsogpu.algorithms.dark_current`` on ``k``, bit for
bit (``average_dark_current`` stays on the host). Each function takes the kernels object ``k``
first, then the parameters of the NumPy function of the same name, and returns what it
returns. Inputs are never modified.
"""

import numpy as np

from ..algorithms import dark_current
from .elementwise import bitwise_or
from .marshal import contiguous, i64


def prepare_dark(k, dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap):
    """``tsogpu.algorithms.dark_current.prepare_dark`` (one launch, per group and pixel).

    Returns the per-group dark, (ngroups, ny, nx), float64 where NumPy's is (extrapolated
    dark, same NFRAMES and GROUPGAP), else float32.
    """
    d = contiguous(k, dark, np.float32)
    ngd = d.shape[0]
    npix = d[0].size
    n_new = dark_current.extrapolated_groups(
        ngroups, nframes, groupgap, ngd, dark_nframes, dark_groupgap
    )
    extended = n_new > 0
    nframes_d = ngd + n_new
    direct = nframes == dark_nframes and groupgap == dark_groupgap
    is64 = extended and direct
    xp = k.xp
    out32 = xp.empty((ngroups,) + d.shape[1:], dtype=np.float32) if not is64 else None
    out64 = xp.empty((ngroups,) + d.shape[1:], dtype=np.float64) if is64 else None
    dummy32 = xp.empty(1, dtype=np.float32)
    dummy64 = xp.empty(1, dtype=np.float64)
    n = ngroups * npix
    k.launch(
        "tso_pj_dark_prepare",
        n,
        d,
        i64(ngd),
        i64(extended),
        i64(nframes_d),
        i64(direct),
        i64(nframes),
        i64(groupgap),
        dummy32 if is64 else out32,
        out64 if is64 else dummy64,
        i64(npix),
        i64(n),
    )
    return out64 if is64 else out32


def subtract_dark(
    k,
    data,
    pixeldq,
    dark,
    dark_dq,
    *,
    nframes,
    groupgap,
    dark_nframes,
    dark_groupgap,
    int_start=0,
):
    """``tsogpu.algorithms.dark_current.subtract_dark``: (data, pixeldq), or None where jwst
    skips the step. A 4-D (MIRI) dark is prepared one used integration at a time, into one
    stack the subtraction picks from. ``average_dark_current`` stays on the host (NumPy)."""
    if dark_current.jwst_skips(nframes, groupgap, dark_nframes, dark_groupgap):
        return None
    xp = k.xp
    data = contiguous(k, data, np.float32)
    nints, ngroups = data.shape[:2]
    npix = data[0, 0].size
    args = (ngroups, nframes, groupgap, dark_nframes, dark_groupgap)
    if dark.ndim == 4:
        index = dark_current.dark_integrations(nints, int_start, dark.shape[0])
        used = range(int(index[0]), int(index[-1]) + 1)
        per_int = [prepare_dark(k, dark[n], *args) for n in used]
        per_group = xp.stack(per_int) if len(per_int) > 1 else per_int[0]
        pick = index - index[0]
    else:
        per_group = prepare_dark(k, dark, *args)
        pick = np.zeros(nints, dtype=np.int64)
    if dark_dq.ndim != 2:
        dark_dq = _dq_image(k, dark_dq)
    new_pixeldq = bitwise_or(k, pixeldq, dark_dq)
    new_data = xp.empty(data.shape, dtype=np.float32)
    name = "tso_pj_dark_sub64" if per_group.dtype == np.float64 else "tso_pj_dark_sub32"
    k.launch(
        name, data.size, data, per_group, xp.asarray(pick), new_data, i64(ngroups), i64(npix),
        i64(data.size),
    )  # fmt: skip
    return new_data, new_pixeldq


def _dq_image(k, dark_dq):
    """``dark_current.dark_dq_image`` of a 4-D DQ: plane [n, 0] of each integration ORed."""
    image = dark_dq[0, 0]
    for n in range(1, dark_dq.shape[0]):
        image = bitwise_or(k, image, dark_dq[n, 0])
    return contiguous(k, image, np.uint32)
