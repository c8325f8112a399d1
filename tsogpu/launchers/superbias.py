"""Launchers of kernels/superbias.cu: ``tsogpu.algorithms.superbias`` on ``k``, bit for bit.

``subtract_superbias`` (with the ``superbias.scale`` factors or without) and ``scale_factors``,
the option that measures them (docs/options.md). Each function takes the kernels object ``k``
first, then the parameters of the NumPy function of the same name, and returns what it
returns. Inputs are never modified.
"""

import numpy as np

from ..algorithms import superbias
from . import oneoverf
from .elementwise import bitwise_or
from .marshal import contiguous, i64, to_host


def subtract_superbias(k, data, pixeldq, bias, bias_dq, zeroframe=None, scale=None):
    """``tsogpu.algorithms.superbias.subtract_superbias``."""
    data = contiguous(k, data, np.float32)
    bias32 = contiguous(k, bias, np.float32)
    npix = bias32.size
    new_pixeldq = bitwise_or(k, pixeldq, bias_dq)
    new_data = k.xp.empty(data.shape, dtype=np.float32)
    if scale is None:
        k.launch("tso_pj_superbias", data.size, data, bias32, new_data, i64(npix), i64(data.size))
    else:
        scale = contiguous(k, scale, np.float32)
        k.launch(
            "tso_pj_superbias_scaled", data.size, data, bias32, scale, new_data, i64(npix),
            i64(data.size),
        )  # fmt: skip
    new_zeroframe = None
    if zeroframe is not None:
        zf = contiguous(k, zeroframe, np.float32)
        new_zeroframe = k.xp.empty(zf.shape, dtype=np.float32)
        if scale is None:
            k.launch(
                "tso_pj_superbias_zf", zf.size, zf, bias32, new_zeroframe, i64(npix), i64(zf.size)
            )
        else:
            k.launch(
                "tso_pj_superbias_zf_scaled", zf.size, zf, bias32,
                contiguous(k, scale[:, 0], np.float32), new_zeroframe, i64(npix), i64(zf.size),
            )  # fmt: skip
    return new_data, new_pixeldq, new_zeroframe


def scale_factors(k, data, groupdq, pixeldq, bias, bias_dq, trace_mask):
    """``tsogpu.algorithms.superbias.scale_factors`` (a host array: float32 (nints, ngroups)).

    The medians are kernels/oneoverf.cu's (one label, the whole frame); the sky region and
    the divisions are the NumPy code's, on the host (an image, then (nints, ngroups) values).
    """
    sky = superbias.sky_region(to_host(pixeldq), to_host(bias), to_host(bias_dq), trace_mask)
    labels = np.zeros(sky.shape, np.int32)
    group = oneoverf.label_medians(k, data, groupdq, sky, labels, 1)
    level = oneoverf.label_medians(k, data, groupdq, sky, labels, 1, image=bias)
    nsky = int(np.count_nonzero(sky))
    return superbias.factors_from_medians(to_host(group)[..., 0], to_host(level)[..., 0], nsky)
