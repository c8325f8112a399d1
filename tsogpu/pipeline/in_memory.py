"""A segment held in memory, all steps at once: the reference for the chunked runner.

:func:`run_segment` moves the segment to the backend once, runs every step there and brings
the :class:`Result` back to the host.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..algorithms import oneoverf, ramp_fit, superbias
from ..backends import backend_ops, select_backend
from ..config import PipelineConfig
from ..segment import Segment
from . import segment_wide
from .steps import (
    JumpCounts,
    first_fitted,
    fit_and_scale,
    fits_likely,
    fitted_groups,
    run_jump,
    run_prejump,
    warn_if_saturated,
)


@dataclass
class Result:
    """What one segment gives: the ramp after jump, per-integration and exposure slopes.

    ``rateints`` and ``rate`` are (sci, err, dq, var_poisson, var_rnoise) tuples, arrays of
    (nints, ny, nx) and (ny, nx); None when ramp fitting was skipped. With
    ``ramp_fit.goodness_of_fit`` ``rateints`` has a sixth array, CHI2 (float32).
    """

    segment: Segment
    rateints: tuple | None
    rate: tuple | None
    step_status: dict
    primary_cosmic_rays: float | None = None
    extended_emission_events: float | None = None
    one_over_f: oneoverf.Levels | None = None  # refpix.sky_method's levels, on the host
    bias_scale: superbias.Factors | None = None  # superbias.scale's factors, on the host
    removed: dict | None = None  # MIRI: what each MIRI step removed (Segment.removed)


def run_segment(segment, refs, config=None, on_step=None, ops=None, shared=None, memo=None):
    """All steps on a segment held in memory (the unchunked reference for ``process_file``).

    With ``config.backend`` cupy (or auto on a GPU machine) the segment goes to the device
    once, every step runs there, and the result comes back as NumPy arrays. ``ops`` overrides
    the backend (the tests pass the host build of the kernels). ``shared``: the exposure's
    :class:`tsogpu.exposure.Shared` (``exposure_wide``), whose saturation map replaces the
    segment's own with ``saturation.fixed_map``. ``memo``: a dict kept between runs of the
    steps from jump on over the same ramp (``tsogpu sweep``'s points), where ramp fitting
    keeps what the jump flags do not change, and jump what the rejection threshold does not.
    """
    config = config or PipelineConfig()
    ops = ops or backend_ops(select_backend(config.backend), config.threads)
    if segment.trace_mask is None:
        mask = segment_wide.sky_trace_mask(
            config,
            segment.data.shape,
            lambda: oneoverf.last_minus_first(segment.data),
            shared,
            segment.source,
        )
        segment = replace(segment, trace_mask=mask)
    if segment.bias_scale is None and segment_wide.bias_scale_mode(config, refs) == "exposure":
        segment = replace(
            segment, bias_scale=segment_wide.exposure_bias_scale(shared, segment.data.shape[0])
        )
    segment, refs = ops.to_device(segment, refs)
    seg = run_prejump(segment, refs, config, on_step, ops)
    per = segment_wide.fixed_map_mode(config)
    if per is not None:
        if shared is None:
            sat_map = ops.saturation_map(seg.groupdq, per)
        else:
            sat_map = ops.xp.asarray(shared.saturation_map_for(per))
        segment_wide.apply_saturation_map(seg, sat_map, ops)
    counts = JumpCounts(ops)
    counts.add(0, run_jump(seg, refs, config, ops=ops, memo=memo), seg.groupdq)
    if on_step is not None and "jump" not in config.skip:
        on_step("jump", seg)
    groups = fitted_groups(
        seg.exposure,
        config,
        seg.data.shape[1],
        lambda: ops.to_host(ops.all_dnu_planes(seg.groupdq)),
    )
    g0 = first_fitted(groups)
    saturated = warn_if_saturated(
        seg.source,
        ramp_fit.exposure_fully_saturated(ops.to_host(seg.groupdq[:, g0 : g0 + 1]))
        and not fits_likely(config, seg.data.shape[1]),
    )
    rateints, rate = fit_and_scale(seg, refs, config, saturated, ops, groups, memo)
    if on_step is not None and "ramp_fit" not in config.skip:
        on_step("ramp_fit + gain_scale", seg)
    return Result(
        segment_to_host(seg, ops),
        product_to_host(rateints, ops),
        product_to_host(rate, ops),
        seg.step_status,
        *counts.rates(seg),
        one_over_f=levels_to_host(seg.one_over_f, ops),
        bias_scale=measured_factors(seg.bias_scale),
        removed=seg.removed,
    )


def measured_factors(factors):
    """``factors`` when the superbias step measured them (it ran with ``superbias.scale``)."""
    return factors if factors is not None and factors.measured is not None else None


def levels_to_host(levels, ops):
    """``refpix.sky_method``'s levels (``oneoverf.Levels``) on the host."""
    if levels is None:
        return None
    off = None if levels.offsets is None else ops.to_host(levels.offsets)
    return replace(levels, lines=ops.to_host(levels.lines), offsets=off)


def segment_to_host(seg, ops):
    """``seg`` with its arrays on the host."""
    host = {
        name: None if getattr(seg, name) is None else ops.to_host(getattr(seg, name))
        for name in ("data", "groupdq", "pixeldq", "zeroframe", "average_dark_current")
    }
    return replace(seg, **host)


def product_to_host(product, ops):
    """A (sci, err, dq, var_poisson, var_rnoise) product on the host; None stays None."""
    return None if product is None else tuple(ops.to_host(a) for a in product)
