"""linearity: polynomial non-linearity correction, group level or read level.

Mirrors ``stcal/linearity/linearity.py: linearity_correction`` (with
``prepare_coefficients``, ``apply_polynomial``, ``linearity_correction_int`` and
``_linearity_correction_tile``) as ``jwst/linearity/linearity.py: do_correction`` calls it:
jwst passes ``ilin_coeffs`` and a read pattern only when the reference has INV_COEFFS,
NFRAMES > 1 and the exposure has no READ_TIMES (the caller passes ``inv_coeffs=None``
otherwise), and never passes ``satval`` or ``additional_correction``.

Coefficients (host side, once): ``pixeldq |= lin_dq``; pixels with NO_LIN_CORR in
``lin_dq`` get the identity polynomial [0, 1, 0, ...]; pixels with any NaN coefficient, or a
zero linear term, get the identity and NO_LIN_CORR. With inverse coefficients the same rules
are applied separately to them (using ``lin_dq``); a bad inverse does not reset the forward
coefficients.

Group level (standard path): Horner in float32, in this order:
``r = c[n-1]*x; for j = n-2..1: r = (r + c[j]) * x; r = r + c[0]``; SATURATED groups keep
their value; other groups (DO_NOT_USE included) are corrected.

Read level (per pixel and integration; stcal promotes to float64 here, and a kernel must too):

- ``mean_read[g]`` = float64 mean of the 1-based frame numbers of group g (GROUPGAP ignored).
- ``n_unsat`` = (number of groups without SATURATED) - 1, raised to 2; ``last = n_unsat - 1``.
- ``first = P32(data[0])``, ``lastv = P32(data[last])`` (float32 Horner, SATURATED kept raw).
- ``rate = float64(lastv - first) / (mean_read[last] - mean_read[0])`` (float32 difference).
- For each group g and its reads j (in order): ``L_j = float64(first) + rate * (read_j -
  mean_read[0])``; ``U_j = P64inv(L_j)``; ``U_j += float64(data[g]) - mean(U)``;
  ``C_j = P64(U_j)``; result ``float32(mean(C))`` unless the group is SATURATED. P64 is
  the same Horner in float64 with the float32 coefficients; ``mean`` is a sequential float64
  sum over reads j = 0..n-1 divided by n.

ZEROFRAME: the float32 group-level Horner with the prepared forward coefficients; values
that are exactly 0.0 ("bad") stay 0.0.
"""

import numpy as np

from .. import dq
from ..errors import InputError
from .saturation import mean_reads, read_pattern


def read_level(inv_coeffs, nframes, ngroups):
    """Whether the read-level path runs (jwst's rule: inverse coefficients and NFRAMES > 1).

    Both backends ask this before they correct anything. Raises InputError where the read
    level would run with fewer than 2 groups (stcal indexes group 1 unconditionally and raises
    IndexError there).
    """
    if inv_coeffs is None or nframes <= 1:
        return False
    if ngroups < 2:
        raise InputError(f"read-level linearity needs ngroups >= 2, got ngroups={ngroups}")
    return True


def prepare_coefficients(coeffs, lin_dq, pixeldq):
    """Replace unusable coefficients by the identity and flag them (stcal's rules).

    Parameters
    ----------
    coeffs : ndarray of float32, shape (ncoeffs, ny, nx)
    lin_dq : ndarray of uint32, shape (ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)

    Returns
    -------
    coeffs : ndarray of float32, shape (ncoeffs, ny, nx); a new array.
    pixeldq : ndarray of uint32, shape (ny, nx); ``pixeldq | lin_dq`` plus NO_LIN_CORR.
    """
    no_lin_corr = dq.PIXELDQ_DTYPE(dq.NO_LIN_CORR)
    new_coeffs = np.array(coeffs, dtype=np.float32)
    new_pixeldq = np.bitwise_or(pixeldq, lin_dq, dtype=dq.PIXELDQ_DTYPE)
    identity = np.zeros(new_coeffs.shape[0], dtype=np.float32)
    identity[1] = np.float32(1.0)

    flagged = (np.asarray(lin_dq, dtype=dq.PIXELDQ_DTYPE) & no_lin_corr) != 0
    new_coeffs[:, flagged] = identity[:, None]

    has_nan = np.any(np.isnan(new_coeffs), axis=0)
    new_coeffs[:, has_nan] = identity[:, None]
    new_pixeldq[has_nan] |= no_lin_corr

    zero_linear = new_coeffs[1] == np.float32(0.0)
    new_coeffs[:, zero_linear] = identity[:, None]
    new_pixeldq[zero_linear] |= no_lin_corr
    return new_coeffs, new_pixeldq


def horner(x, coeffs, dtype):
    """Evaluate ``sum_k coeffs[k] * x**k`` by Horner's rule in ``dtype``, in stcal's order.

    Parameters
    ----------
    x : ndarray, shape (..., ny, nx)
    coeffs : ndarray of float32, shape (ncoeffs, ny, nx)
    dtype : numpy dtype
        float32 (group level) or float64 (read level).

    Returns
    -------
    ndarray of ``dtype``, same shape as ``x``.
    """
    x = np.asarray(x, dtype=dtype)
    ncoeffs = coeffs.shape[0]
    result = coeffs[ncoeffs - 1].astype(dtype) * x
    for j in range(ncoeffs - 2, 0, -1):
        result = result + coeffs[j].astype(dtype)
        result = result * x
    return result + coeffs[0].astype(dtype)


def _correct_groups(data, groupdq, coeffs):
    """Group-level path: float32 Horner on every group that is not SATURATED."""
    sat = dq.GROUPDQ_DTYPE(dq.SATURATED)
    out = np.empty_like(data, dtype=np.float32)
    for g in range(data.shape[1]):
        corrected = horner(data[:, g], coeffs, np.float32)
        out[:, g] = np.where((groupdq[:, g] & sat) != 0, data[:, g], corrected)
    return out


def _correct_reads(data, groupdq, coeffs, inv_coeffs, nframes):
    """Read-level path for frame-averaged groups (stcal ``_linearity_correction_tile``)."""
    nints, ngroups, ny, nx = data.shape
    sat = dq.GROUPDQ_DTYPE(dq.SATURATED)
    pattern = read_pattern(ngroups, nframes)
    mean_read = mean_reads(pattern)
    saturated = (groupdq & sat) != 0

    n_unsat = np.sum(~saturated, axis=1, dtype=np.int32) - np.int32(1)
    n_unsat[n_unsat < 2] = 2
    last = n_unsat - 1  # (nints, ny, nx), index of the last group used for the rate

    first_lin = np.where(saturated[:, 0], data[:, 0], horner(data[:, 0], coeffs, np.float32))
    last_data = np.take_along_axis(data, last[:, None], axis=1)[:, 0]
    last_sat = np.take_along_axis(saturated, last[:, None], axis=1)[:, 0]
    last_lin = np.where(last_sat, last_data, horner(last_data, coeffs, np.float32))

    d_reads = mean_read[last] - mean_read[0]
    rate = np.subtract(last_lin, first_lin, dtype=np.float32).astype(np.float64) / d_reads
    first64 = first_lin.astype(np.float64)

    out = np.empty_like(data, dtype=np.float32)
    for g in range(ngroups):
        reads = pattern[g]
        nreads = len(reads)
        unlin = []
        for read in reads:
            since_first = np.float64(read) - mean_read[0]
            linearized = first64 + rate * since_first
            unlin.append(horner(linearized, inv_coeffs, np.float64))
        predicted = unlin[0].copy()
        for j in range(1, nreads):
            predicted += unlin[j]
        predicted /= np.float64(nreads)
        offset = data[:, g].astype(np.float64) - predicted
        total = horner(unlin[0] + offset, coeffs, np.float64)
        for j in range(1, nreads):
            total += horner(unlin[j] + offset, coeffs, np.float64)
        corrected = (total / np.float64(nreads)).astype(np.float32)
        out[:, g] = np.where(saturated[:, g], data[:, g], corrected)
    return out


def correct_linearity(
    data,
    groupdq,
    pixeldq,
    coeffs,
    lin_dq,
    *,
    zeroframe=None,
    inv_coeffs=None,
    nframes=1,
):
    """Apply the linearity correction.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    coeffs : ndarray of float32, shape (ncoeffs, ny, nx)
        LINEARITY COEFFS, cut to the subarray; ncoeffs >= 2.
    lin_dq : ndarray of uint32, shape (ny, nx)
        LINEARITY DQ, remapped to standard bits.
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    inv_coeffs : ndarray of float32, shape (ncoeffs_inv, ny, nx), or None
        LINEARITY INV_COEFFS. Used (read-level path) only when ``nframes > 1``, as jwst
        does; the caller passes None when the exposure has READ_TIMES.
    nframes : int
        NFRAMES.

    Returns
    -------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None

    Raises
    ------
    InputError
        Read-level path with fewer than 2 groups (stcal fails there too).
    """
    reads = read_level(inv_coeffs, nframes, data.shape[1])
    lin, new_pixeldq = prepare_coefficients(coeffs, lin_dq, pixeldq)
    if reads:
        inv, new_pixeldq = prepare_coefficients(inv_coeffs, lin_dq, new_pixeldq)
        new_data = _correct_reads(data, groupdq, lin, inv, nframes)
    else:
        new_data = _correct_groups(data, groupdq, lin)

    new_zeroframe = None
    if zeroframe is not None:
        zf = np.asarray(zeroframe, dtype=np.float32)
        bad = zf == np.float32(0.0)
        new_zeroframe = np.where(bad, np.float32(0.0), horner(zf, lin, np.float32))
    return new_data, new_pixeldq, new_zeroframe
