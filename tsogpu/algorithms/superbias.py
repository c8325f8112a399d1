"""superbias: subtract the superbias image from every group (and from ZEROFRAME).

Mirrors ``jwst/superbias/bias_sub.py: do_correction, subtract_bias`` (2-D bias; no
superstripe).

Operation order a kernel must copy: NaN bias values become 0.0 first; the subtraction is
one float32 subtract ``data - bias``. ZEROFRAME pixels that are exactly 0.0 ("bad") are
tested before the subtraction and stay 0.0 (positive zero) after it.

Option ``superbias.scale`` (off by default, docs/options.md; Eureka!'s bias_correction): the
superbias is multiplied by a factor per integration and group before it is subtracted. The
factor measured on a group (:func:`scale_factors`, on the group as the superbias step gets
it, before the subtraction) is ``float32(float64(m_data) / float64(m_bias))``: ``m_data`` the
median of the group's usable sky pixels, ``m_bias`` that of the superbias over the same
pixels. Sky pixels (:func:`sky_region`) are off the trace mask, neither DO_NOT_USE nor
REFERENCE_PIXEL in PIXELDQ or the superbias DQ, with a finite superbias; a group uses those
that are neither DO_NOT_USE nor SATURATED in its GROUPDQ, nor NaN. The medians are
``tsogpu.algorithms.oneoverf.label_medians``'s (one label, the whole frame). A group with no
usable sky pixel has a NaN factor; a superbias median of 0 is an error. The scaled subtraction is
``float32(float64(data) - float64(bias) * float64(factor))``; ZEROFRAME takes group 0's
factor.
"""

from dataclasses import dataclass

import numpy as np

from .. import dq
from ..errors import InputError
from . import oneoverf


@dataclass
class Factors:
    """``superbias.scale``'s factors of a segment (or of some of its integrations).

    ``applied`` float32 (nints, ngroups): the factors the superbias was (or is to be)
    multiplied by; ``measured`` float32 (nints, ngroups): those measured on each integration
    (NaN: no usable sky pixel), or None for factors given before the step (``mean`` over a
    chunked segment, ``exposure``).
    """

    applied: np.ndarray
    measured: np.ndarray | None = None


def subtract_superbias(data, pixeldq, bias, bias_dq, zeroframe=None, scale=None):
    """Subtract the superbias.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    bias : ndarray of float32, shape (ny, nx)
        SUPERBIAS SCI, cut to the subarray; NaN means no bias (treated as 0).
    bias_dq : ndarray of uint32, shape (ny, nx)
        SUPERBIAS DQ, remapped to standard bits.
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    scale : ndarray of float32, shape (nints, ngroups), or None
        ``superbias.scale``: the factor the superbias is multiplied by in each integration
        and group (finite); None: jwst's subtraction.

    Returns
    -------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
        ``pixeldq | bias_dq``.
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    """
    bias32 = np.asarray(bias, dtype=np.float32)
    bias32 = np.where(np.isnan(bias32), np.float32(0.0), bias32)
    new_pixeldq = np.bitwise_or(pixeldq, bias_dq, dtype=dq.PIXELDQ_DTYPE)
    if scale is None:
        new_data = np.subtract(data, bias32, dtype=np.float32)
    else:
        bias64 = bias32.astype(np.float64)
        scale64 = np.asarray(scale, dtype=np.float32).astype(np.float64)
        new_data = np.empty(data.shape, np.float32)
        for i in range(data.shape[0]):  # one integration at a time bounds the float64 copies
            scaled = bias64 * scale64[i, :, None, None]
            new_data[i] = (data[i].astype(np.float64) - scaled).astype(np.float32)
    new_zeroframe = None
    if zeroframe is not None:
        bad = zeroframe == np.float32(0.0)
        if scale is None:
            new_zeroframe = np.subtract(zeroframe, bias32, dtype=np.float32)
        else:
            scaled = bias64 * scale64[:, 0, None, None]
            new_zeroframe = (zeroframe.astype(np.float64) - scaled).astype(np.float32)
        new_zeroframe[bad] = np.float32(0.0)
    return new_data, new_pixeldq, new_zeroframe


def sky_region(pixeldq, bias, bias_dq, trace_mask):
    """uint8 (ny, nx): 1 on the pixels that measure the bias scale (see the module text).

    Raises InputError when there is none.
    """
    flags = np.bitwise_or(pixeldq, bias_dq, dtype=dq.PIXELDQ_DTYPE)
    sky = oneoverf.sky_pixels(flags, trace_mask) & np.isfinite(np.asarray(bias, np.float32))
    if not sky.any():
        raise InputError(
            f"superbias.scale: no sky pixel to measure the bias on: of the {sky.size} pixels, "
            f"{int(np.count_nonzero(trace_mask))} are on the trace mask (refpix.sky_mask, or the "
            "automatic mask of refpix.sky_threshold and sky_mask_grow) and the others are "
            "DO_NOT_USE, reference pixels or have no superbias value"
        )
    return sky.astype(np.uint8)


def factors_from_medians(group_medians, bias_medians, nsky):
    """float32 (nints, ngroups): ``float32(float64(group) / float64(bias))`` of the sky
    medians of the groups and of the superbias, float32 (nints, ngroups) each (NaN stays NaN).
    Raises InputError where a superbias median is 0 (``nsky``: the sky pixels, for the
    message)."""
    bias_medians = np.asarray(bias_medians, np.float32)
    if (bias_medians == 0.0).any():
        raise InputError(
            f"superbias.scale: the superbias's median over the {nsky} sky pixels is 0: no "
            "scale factor can be made"
        )
    group64 = np.asarray(group_medians, np.float32).astype(np.float64)
    return (group64 / bias_medians.astype(np.float64)).astype(np.float32)


def scale_factors(data, groupdq, pixeldq, bias, bias_dq, trace_mask):
    """The factors measured on each integration and group of ``data``.

    Parameters
    ----------
    data : float32 (nints, ngroups, ny, nx), the input of the superbias step
    groupdq : uint8 (nints, ngroups, ny, nx)
    pixeldq : uint32 (ny, nx)
    bias, bias_dq : float32 and uint32 (ny, nx), the superbias reference
    trace_mask : bool (ny, nx), True on the trace (never sky)

    Returns
    -------
    float32 (nints, ngroups); NaN where a group has no usable sky pixel.
    """
    sky = sky_region(pixeldq, bias, bias_dq, trace_mask)
    labels = np.zeros(sky.shape, np.int32)
    bias32 = np.asarray(bias, np.float32)
    group = oneoverf.label_medians(data, groupdq, sky, labels, 1)[..., 0]
    level = oneoverf.label_medians(data, groupdq, sky, labels, 1, image=bias32)[..., 0]
    return factors_from_medians(group, level, int(np.count_nonzero(sky)))


def mean_factors(measured):
    """float32 (ngroups,): per group, the mean of the finite factors of ``measured`` float32
    (nints, ngroups), summed in float64 in integration order; 1.0 where none is finite."""
    measured = np.asarray(measured, np.float32)
    total = np.zeros(measured.shape[1], np.float64)
    count = np.zeros(measured.shape[1], np.int64)
    for row in measured:  # in order: the same sum over one segment or many in turn
        ok = np.isfinite(row)
        total += np.where(ok, row.astype(np.float64), 0.0)
        count += ok
    mean = total / np.maximum(count, 1).astype(np.float64)
    return np.where(count > 0, mean, 1.0).astype(np.float32)


def applied_factors(measured, mode):
    """float32 (nints, ngroups): the factors ``mode`` applies given those ``measured``:
    ``integration``, each integration's own; ``mean`` (and ``exposure``, over the exposure's
    integrations), :func:`mean_factors` for every integration. A NaN factor (no usable sky
    pixel) becomes 1.0: that group gets jwst's unscaled superbias."""
    measured = np.asarray(measured, np.float32)
    if mode == "integration":
        return np.where(np.isnan(measured), np.float32(1.0), measured).astype(np.float32)
    return np.broadcast_to(mean_factors(measured), measured.shape).copy()
