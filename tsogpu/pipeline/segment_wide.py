"""What the TSO options need from a whole segment or exposure (docs/options.md).

Beyond jwst, some options cannot work integration by integration: ``saturation.fixed_map``
(one saturation map for all integrations), ``superbias.scale`` (bias scale factors measured on
sky pixels: per integration, their mean over the segment, or the exposure's), and the trace
mask that ``refpix.sky_method`` and ``superbias.scale`` take sky pixels from. This module
says when each is on and makes them, whether the segment is run whole or in chunks.
"""

from __future__ import annotations

import logging

import numpy as np

from ..algorithms import oneoverf, superbias
from ..backends import NumpyOps
from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)


def fixed_map_mode(config):
    """``saturation.fixed_map`` when the saturation step runs with it, else None."""
    if "saturation" in config.skip:
        return None
    per = config.params("saturation").fixed_map
    return None if per == "none" else per


def apply_saturation_map(seg, sat_map, ops):
    """The segment-wide saturation map on ``seg`` (after the pre-jump steps, before jump).

    It needs every integration's flags, so it comes after the pre-jump steps, which saw each
    integration's own flags: linearity corrected the groups the map adds where that
    integration did not saturate itself (jump and ramp fitting ignore those groups).
    """
    if sat_map is not None and seg.step_status.get("saturation") == "COMPLETE":
        seg.groupdq = ops.apply_saturation_map(seg.groupdq, sat_map)


def bias_scale_for(seg, refs, params, ops):
    """``superbias.scale``: float32 (nints, ngroups), the factors to multiply the superbias
    by: those given on ``seg`` (``mean`` in a chunked run, ``exposure``), else made from those
    measured here. Both are kept on ``seg.bias_scale``."""
    measured = measure_bias_scale(seg, refs, ops)
    if seg.bias_scale is not None:
        scale = seg.bias_scale.applied
    elif params.scale == "exposure":
        raise ConfigError(
            f"{seg.source}: superbias.scale=exposure needs the exposure's first pass "
            "(exposure_wide; tsogpu.exposure.load_or_run)"
        )
    else:
        scale = superbias.applied_factors(measured, params.scale)
    missing = int(np.isnan(measured).sum())
    if missing and params.scale == "integration":
        log.warning(
            "%s: superbias.scale: %d group(s) have no usable sky pixel; their superbias is not "
            "scaled (factor 1)",
            seg.source,
            missing,
        )
    seg.bias_scale = superbias.Factors(applied=scale, measured=measured)
    return scale


def measure_bias_scale(seg, refs, ops=NumpyOps):
    """``superbias.scale``: float32 (nints, ngroups) on the host, the factors measured on
    ``seg`` as the superbias step gets it (``superbias.scale_factors``), with its trace mask."""
    if seg.trace_mask is None:
        raise ConfigError(
            f"{seg.source}: superbias.scale needs a trace mask; run_segment and process_file "
            "make one (tsogpu.pipeline.segment_wide.sky_trace_mask)"
        )
    ref = refs["superbias"]
    factors = ops.superbias_scale_factors(
        seg.data, seg.groupdq, seg.pixeldq, ref.arrays["data"], ref.arrays["dq"], seg.trace_mask
    )
    return np.asarray(ops.to_host(factors), np.float32)


def bias_scale_mode(config, refs=None):
    """``superbias.scale`` when the superbias step runs with it (and, given ``refs``, has its
    reference), else None."""
    mode = config.params("superbias").scale
    if mode == "off" or "superbias" in config.skip:
        return None
    if refs is not None and refs.get("superbias") is None:
        return None
    return mode


def exposure_bias_scale(shared, nints):
    """``superbias.scale=exposure``: the exposure's factors (:class:`tsogpu.exposure.Shared`)
    for ``nints`` integrations, as :class:`superbias.Factors` to give the step."""
    if shared is None or shared.bias_scale is None:
        name = "none" if shared is None else shared.file_name
        raise ConfigError(
            f"superbias.scale=exposure needs bias scale factors from the exposure's first pass "
            f"(exposure_wide), and it has none ({name})"
        )
    mean = superbias.mean_factors(shared.bias_scale)
    return superbias.Factors(applied=np.broadcast_to(mean, (nints, mean.size)).copy())


def sky_trace_mask(config, shape, last_minus_first, shared=None, source=""):
    """The trace mask of ``refpix.sky_method`` and ``superbias.scale`` for a segment of
    ``shape``, or None when neither option runs: the user's file ``refpix.sky_mask``, else the
    exposure's (``shared.trace_mask``), else made from the median over integrations of the
    last-minus-first image, ``last_minus_first()`` -> float32 (nints, ny, nx) (whole
    integrations, read here so that the mask never depends on chunks)."""
    params = config.params("refpix")
    sky = params.sky_method != "off" and "refpix" not in config.skip
    if not sky and bias_scale_mode(config) is None:
        return None
    ny, nx = shape[2:]
    given = getattr(shared, "trace_mask", None) if shared is not None else None
    if params.sky_mask:  # what the user gave wins
        from ..io import products

        mask = products.read_trace_mask(params.sky_mask)
    elif given is not None:
        mask = np.asarray(given, dtype=bool)
    else:
        if shape[1] < 2:
            raise InputError(
                f"{source}: refpix.sky_method and superbias.scale need 2 groups or more to "
                "make their trace mask; give one with refpix.sky_mask"
            )
        image = np.median(last_minus_first(), axis=0)
        mask = oneoverf.trace_mask_from_image(image, params.sky_threshold, params.sky_mask_grow)
    if mask.shape != (ny, nx):
        raise InputError(
            f"{params.sky_mask or 'the trace mask'}: shape {mask.shape}, the segment's frame is "
            f"{(ny, nx)}"
        )
    return mask
