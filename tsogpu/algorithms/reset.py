"""reset: subtract the MIRI reset-anomaly correction from the first groups.

Mirrors ``jwst/reset/reset_sub.py: do_correction`` (jwst 3.0). The reference holds a
correction per integration and group for its first RESET_NINTS integrations and
RESET_NGROUPS groups (the NINTS and NGROUPS keywords of the RESET file; its SCI array is
(reset_nints, reset_ngroups, ny, nx)):

- integration ``e`` of the exposure (0-based) uses the reference's integration
  ``min(e, reset_nints - 1)``; ``e = int_start + i`` for ``data[i]``, so a chunk of
  integrations (or a segment, jwst's INTSTART) gives the whole exposure's answer;
- only groups ``g < min(ngroups, reset_ngroups)`` change: one float32 subtraction
  ``data - reset`` (NaN in the reference counts as 0, as jwst zeroes it first);
- PIXELDQ gains the reference's DQ (2-D).

The kernel, ``kernels/reset.cu``, does the same subtraction per element.
"""

import numpy as np


def subtract_reset(data, pixeldq, reset, reset_dq, int_start):
    """Subtract the reset correction.

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    reset : ndarray of float32, (reset_nints, reset_ngroups, ny, nx), cut to the subarray
        and to the file's NINTS and NGROUPS keywords
    reset_dq : ndarray of uint32, (ny, nx), remapped to standard bits
    int_start : int
        0-based index in the whole exposure of ``data[0]``.

    Returns
    -------
    data : ndarray of float32, same shape, a new array
    pixeldq : ndarray of uint32, (ny, nx), a new array
    """
    nints, ngroups = data.shape[:2]
    reset_nints, reset_ngroups = reset.shape[:2]
    out = data.copy()
    new_pixeldq = pixeldq.copy()
    if nints == 0:  # jwst's loop over integrations would not OR the DQ either
        return out, new_pixeldq
    new_pixeldq |= reset_dq.astype(np.uint32)
    ngroups_corrected = min(ngroups, reset_ngroups)
    for i in range(nints):
        ir = min(int(int_start) + i, reset_nints - 1)
        for g in range(ngroups_corrected):
            ref = reset[ir, g]
            ref = np.where(np.isnan(ref), np.float32(0.0), ref).astype(np.float32)
            out[i, g] = np.subtract(data[i, g], ref, dtype=np.float32)
    return out, new_pixeldq
