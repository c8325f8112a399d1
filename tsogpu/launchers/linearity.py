"""Launchers of kernels/linearity.cu: ``tsogpu.algorithms.linearity`` on ``k``, bit for bit.

Each function takes the kernels object ``k`` first, then the parameters of the NumPy function
of the same name, and returns what it returns. Inputs are never modified.
"""

import numpy as np

from ..algorithms import linearity
from ..algorithms.saturation import mean_reads, read_pattern
from .marshal import contiguous, dqv, i64


def prepare_coefficients(k, coeffs, lin_dq, pixeldq):
    """``tsogpu.algorithms.linearity.prepare_coefficients`` (one launch, per pixel)."""
    coeffs = contiguous(k, coeffs, np.float32)
    ncoeffs = coeffs.shape[0]
    npix = coeffs[0].size
    new_coeffs = k.xp.empty(coeffs.shape, dtype=np.float32)
    new_pixeldq = k.xp.empty(coeffs.shape[1:], dtype=np.uint32)
    k.launch(
        "tso_pj_lin_prepare",
        npix,
        coeffs,
        contiguous(k, lin_dq, np.uint32),
        contiguous(k, pixeldq, np.uint32),
        dqv(k),
        new_coeffs,
        new_pixeldq,
        i64(ncoeffs),
        i64(npix),
    )
    return new_coeffs, new_pixeldq


def correct_linearity(
    k,
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
    """``tsogpu.algorithms.linearity.correct_linearity``: group level (one launch per
    sample) or read level (one launch per integration and pixel), and ZEROFRAME."""
    data = contiguous(k, data, np.float32)
    groupdq = contiguous(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    dq_values = dqv(k)
    reads = linearity.read_level(inv_coeffs, nframes, ngroups)
    lin, new_pixeldq = prepare_coefficients(k, coeffs, lin_dq, pixeldq)
    ncoeffs = lin.shape[0]
    new_data = k.xp.empty(data.shape, dtype=np.float32)
    if reads:
        inv, new_pixeldq = prepare_coefficients(k, inv_coeffs, lin_dq, new_pixeldq)
        mean_read = k.xp.asarray(mean_reads(read_pattern(ngroups, nframes)))
        k.launch(
            "tso_pj_lin_reads",
            nints * npix,
            data,
            groupdq,
            lin,
            i64(ncoeffs),
            inv,
            i64(inv.shape[0]),
            mean_read,
            i64(nframes),
            dq_values,
            new_data,
            i64(ngroups),
            i64(npix),
            i64(nints * npix),
        )
    else:
        k.launch(
            "tso_pj_lin_groups",
            data.size,
            data,
            groupdq,
            lin,
            i64(ncoeffs),
            dq_values,
            new_data,
            i64(npix),
            i64(data.size),
        )

    new_zeroframe = None
    if zeroframe is not None:
        zf = contiguous(k, zeroframe, np.float32)
        new_zeroframe = k.xp.empty(zf.shape, dtype=np.float32)
        k.launch(
            "tso_pj_lin_zeroframe",
            zf.size,
            zf,
            lin,
            i64(ncoeffs),
            new_zeroframe,
            i64(npix),
            i64(zf.size),
        )
    return new_data, new_pixeldq, new_zeroframe
