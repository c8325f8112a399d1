"""Launchers of kernels/options.cu: the options beyond jwst (docs/options.md).

Each function takes the kernels object ``k`` first, then the parameters of the NumPy function
of the same name (``tsogpu.algorithms.saturation`` / ``dq_init`` / ``superbias``), and returns
what it returns, bit for bit. Inputs are never modified.
"""

import numpy as np

from ..algorithms import superbias
from . import oneoverf
from .prejump import _c, _dqv, _host, _i64


def scale_thresholds(k, sat_thresh, fraction):
    """``tsogpu.algorithms.saturation.scale_thresholds``."""
    thresh = _c(k, sat_thresh, np.float32)
    out = k.xp.empty(thresh.shape, dtype=np.float32)
    k.launch(
        "tso_opt_scale_thresh", thresh.size, thresh, out, np.float64(fraction), _i64(thresh.size)
    )
    return out


def first_saturated_group(k, groupdq):
    """``tsogpu.algorithms.saturation.first_saturated_group``."""
    gdq = _c(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = gdq.shape
    first = k.xp.empty((nints, ny, nx), dtype=np.int32)
    n = nints * ny * nx
    k.launch("tso_opt_first_sat", n, gdq, _dqv(k), first, _i64(ngroups), _i64(ny * nx), _i64(n))
    return first


def column_minimum(k, first):
    """``tsogpu.algorithms.saturation.column_minimum``."""
    first = _c(k, first, np.int32)
    ny, nx = first.shape[-2:]
    out = k.xp.empty(first.shape, dtype=np.int32)
    n = first.size // ny
    k.launch("tso_opt_column_min", n, first, out, _i64(ny), _i64(nx), _i64(n))
    return out


def flag_from(k, groupdq, first, groups_before=0):
    """``tsogpu.algorithms.saturation.flag_from``."""
    gdq = _c(k, groupdq, np.uint8)
    first = _c(k, first, np.int32)
    _, ngroups, ny, nx = gdq.shape
    out = k.xp.empty(gdq.shape, dtype=np.uint8)
    stride = ny * nx if first.ndim == 3 else 0
    k.launch(
        "tso_opt_flag_from",
        gdq.size,
        gdq,
        first,
        _dqv(k),
        out,
        np.int32(groups_before),
        _i64(stride),
        _i64(ngroups),
        _i64(ny * nx),
        _i64(gdq.size),
    )
    return out


def extend_saturation(k, groupdq, *, column_saturation=False, groups_before=0):
    """``tsogpu.algorithms.saturation.extend_saturation``."""
    first = first_saturated_group(k, groupdq)
    if column_saturation:
        first = column_minimum(k, first)
    return flag_from(k, groupdq, first, groups_before)


def saturation_map(k, groupdq, per="pixel"):
    """``tsogpu.algorithms.saturation.saturation_map``."""
    first = first_saturated_group(k, groupdq)
    nints, ny, nx = first.shape
    out = k.xp.empty((ny, nx), dtype=np.int32)
    k.launch("tso_opt_min_ints", ny * nx, first, out, _i64(nints), _i64(ny * nx))
    return column_minimum(k, out) if per == "column" else out


def apply_saturation_map(k, groupdq, sat_map):
    """``tsogpu.algorithms.saturation.apply_saturation_map``."""
    return flag_from(k, groupdq, sat_map)


def flag_groups(k, groupdq, mask):
    """``tsogpu.algorithms.dq_init.flag_groups`` (``mask``: bool per group, from the host)."""
    gdq = _c(k, groupdq, np.uint8)
    _, ngroups, ny, nx = gdq.shape
    out = k.xp.empty(gdq.shape, dtype=np.uint8)
    k.launch(
        "tso_opt_flag_groups",
        gdq.size,
        gdq,
        _c(k, mask, np.uint8),
        _dqv(k),
        out,
        _i64(ngroups),
        _i64(ny * nx),
        _i64(gdq.size),
    )
    return out


def scale_factors(k, data, groupdq, pixeldq, bias, bias_dq, trace_mask):
    """``tsogpu.algorithms.superbias.scale_factors`` (a host array: float32 (nints, ngroups)).

    The medians are kernels/oneoverf.cu's (one label, the whole frame); the sky region and
    the divisions are the NumPy code's, on the host (an image, then (nints, ngroups) values).
    """
    sky = superbias.sky_region(_host(pixeldq), _host(bias), _host(bias_dq), trace_mask)
    labels = np.zeros(sky.shape, np.int32)
    group = oneoverf.label_medians(k, data, groupdq, sky, labels, 1)
    level = oneoverf.label_medians(k, data, groupdq, sky, labels, 1, image=bias)
    nsky = int(np.count_nonzero(sky))
    return superbias.factors_from_medians(_host(group)[..., 0], _host(level)[..., 0], nsky)
