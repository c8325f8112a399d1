"""The step order over one segment (jwst Detector1Pipeline: its near-infrared and MIRI orders).

``run_prejump`` runs the steps before jump in jwst's order on a segment (or some of its
integrations), ``run_jump`` the jump step on it (or a tile), ``fit_and_scale`` ramp fitting and
gain_scale. Each step reads its parameters and reference arrays here and calls the backend's
operation of the same name (:class:`tsogpu.backends.Backend`); what the TSO options need
from the whole segment or exposure comes from :mod:`.segment_wide`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from .. import dq
from ..algorithms import (
    dark_current,
    dq_init,
    firstframe,
    group_scale,
    jump,
    lastframe,
    ramp_fit,
    rscd,
)
from ..algorithms.likely import LIKELY_MIN_NGROUPS
from ..backends import NumpyOps
from ..config import STEP_REFTYPES, PipelineConfig, step_order
from ..errors import ConfigError, InputError
from ..flow import annotate
from .segment_wide import bias_scale_for

log = logging.getLogger(__name__)

INSTRUMENTS = ("NIRSPEC", "NIRISS", "NIRCAM", "MIRI")


def ramp_steps(instrument):
    """The steps before jump, in jwst's order for ``instrument`` (INSTRUME)."""
    order = step_order(instrument)
    return order[: order.index("jump")]


def run_prejump(segment, refs, config=None, on_step=None, ops=NumpyOps):
    """Run the steps before jump on ``segment``.

    Parameters
    ----------
    segment : Segment
        As read by :func:`tsogpu.io.uncal.read_uncal`; not modified.
    refs : dict
        reftype -> :class:`tsogpu.io.reffiles.Reference` (``arrays`` and ``header`` dicts), or
        None where the reference is N/A: the step that needs it is then skipped, as in jwst.
    config : PipelineConfig
    on_step : callable(step_name, Segment), optional
        Called after each step that ran, with the segment as it then is (for tests).
    ops : tsogpu.backends.Backend (NumpyOps, the native build or CudaOps)
        The backend; with CudaOps, ``segment`` and ``refs`` are on the device
        (``ops.to_device``) and so is the result.

    Returns
    -------
    Segment
        A new segment; ``step_status`` maps each step to COMPLETE or SKIPPED.

    A step that already has a status on ``segment`` is done and is not run again: the ramp
    given is one calibrated up to there (``tsogpu.sweep``'s cached ramp).
    """
    config = config or PipelineConfig()
    exp = segment.exposure
    if exp.instrument.upper() not in INSTRUMENTS:
        raise InputError(
            f"{segment.source}: instrument {exp.instrument} is not supported "
            f"(supported: {', '.join(INSTRUMENTS)})"
        )
    seg = replace(segment, step_status=dict(segment.step_status))
    if exp.instrument.upper() == "MIRI":
        seg.removed = dict(segment.removed or {})
    for step in ramp_steps(exp.instrument):
        if step in seg.step_status:
            continue
        if step in config.skip:
            seg.step_status[step] = "SKIPPED"
            log.debug("%s: skipped by request", step)
            continue
        main_ref = STEP_REFTYPES[step][0] if STEP_REFTYPES[step] else None
        if main_ref is not None and refs.get(main_ref) is None:
            seg.step_status[step] = "SKIPPED"  # reference given as N/A, as jwst skips
            log.debug("%s: skipped, %s reference is N/A", step, main_ref)
            continue
        t0 = time.perf_counter()
        with annotate(step):
            status = _STEPS[step](seg, refs, config.params(step), ops)
        seg.step_status[step] = status
        log.debug("%s: %s in %.2f s", step, status, time.perf_counter() - t0)
        if on_step is not None:
            on_step(step, seg)
    return seg


def _group_scale(seg, refs, params, ops):
    exp = seg.exposure
    if not group_scale.needs_group_scale(exp.nframes, exp.frame_divisor):
        return "SKIPPED"
    seg.data = ops.group_scale(seg.data, exp.nframes, exp.frame_divisor)
    return "COMPLETE"


def _dq_init(seg, refs, params, ops):
    user_dq = None
    if params.user_mask:  # jwst's user_supplied_dq (docs/options.md)
        from ..io.user_mask import read_user_mask

        shape = seg.pixeldq.shape
        user_dq = read_user_mask(params.user_mask, shape, params.user_mask_bit)
    seg.pixeldq, seg.groupdq = ops.dq_init(
        seg.pixeldq, seg.groupdq, refs["mask"].arrays["dq"], user_dq
    )
    if params.flag_first or params.flag_last or params.flag_groups:
        mask = dq_init.flagged_groups(
            seg.groupdq.shape[1], params.flag_first, params.flag_last, params.flag_groups
        )
        seg.groupdq = ops.flag_groups(seg.groupdq, mask)
    return "COMPLETE"


def _saturation(seg, refs, params, ops):
    sat = refs["saturation"]
    bias = refs["superbias"].arrays["data"] if refs.get("superbias") is not None else None
    thresh = sat.arrays["data"]
    if params.fraction != 1.0:
        thresh = ops.scale_thresholds(thresh, params.fraction)
    seg.groupdq, seg.pixeldq, seg.zeroframe = ops.flag_saturation(
        seg.data,
        seg.groupdq,
        seg.pixeldq,
        thresh,
        sat.arrays["dq"],
        bias=bias,
        zeroframe=seg.zeroframe,
        nframes=seg.exposure.nframes,
        n_pix_grow_sat=params.n_pix_grow_sat,
        use_readpatt=params.use_readpatt,
    )
    if params.column_saturation or params.groups_before:
        seg.groupdq = ops.extend_saturation(
            seg.groupdq,
            column_saturation=params.column_saturation,
            groups_before=params.groups_before,
        )
    return "COMPLETE"


def _superbias(seg, refs, params, ops):
    ref = refs["superbias"]
    scale = None if params.scale == "off" else bias_scale_for(seg, refs, params, ops)
    seg.data, seg.pixeldq, seg.zeroframe = ops.subtract_superbias(
        seg.data,
        seg.pixeldq,
        ref.arrays["data"],
        ref.arrays["dq"],
        zeroframe=seg.zeroframe,
        scale=scale,
    )
    return "COMPLETE"


def _refpix(seg, refs, params, ops):
    seg.data, seg.zeroframe, status = ops.correct_refpix(
        seg.data,
        seg.pixeldq,
        seg.exposure,
        params,
        zeroframe=seg.zeroframe,
        first_plane=seg.first_integration == 0,
    )
    if params.sky_method != "off":
        _sky_correction(seg, params, ops)
    return status


def _sky_correction(seg, params, ops):
    """``refpix.sky_method``: odd/even offsets and 1/f from sky pixels, after jwst's refpix
    (tsogpu/algorithms/oneoverf.py). The trace mask is on ``seg`` (:func:`sky_trace_mask`)."""
    if seg.trace_mask is None:
        raise ConfigError(
            f"{seg.source}: refpix.sky_method={params.sky_method} needs a trace mask; "
            "run_segment and process_file make one (tsogpu.pipeline.segment_wide.sky_trace_mask)"
        )
    seg.data, seg.one_over_f = ops.correct_sky(
        seg.data, seg.groupdq, seg.pixeldq, seg.exposure, params.sky_method, seg.trace_mask
    )


def _linearity(seg, refs, params, ops):
    ref = refs["linearity"]
    seg.data, seg.pixeldq, seg.zeroframe = ops.correct_linearity(
        seg.data,
        seg.groupdq,
        seg.pixeldq,
        ref.arrays["coeffs"],
        ref.arrays["dq"],
        zeroframe=seg.zeroframe,
        inv_coeffs=ref.arrays.get("inv_coeffs"),
        nframes=seg.exposure.nframes,
    )
    return "COMPLETE"


def _dark_current(seg, refs, params, ops):
    ref = refs["dark"]
    exp = seg.exposure
    out = ops.subtract_dark(
        seg.data,
        seg.pixeldq,
        ref.arrays["data"],
        ref.arrays["dq"],
        nframes=exp.nframes,
        groupgap=exp.groupgap,
        dark_nframes=int(ref.header["NFRAMES"]),
        dark_groupgap=int(ref.header["GROUPGAP"]),
        int_start=int_start(seg),
    )
    if out is None:
        return "SKIPPED"
    seg.data, seg.pixeldq = out
    avg = ref.arrays.get("average_dark_current")
    avg = dark_current.average_dark_current(  # a small image: made on the host
        seg.pixeldq.shape,
        params.average_dark_current,
        None if avg is None else ops.to_host(avg),
        ref.header.get("AVDRKCUR"),
    )
    seg.average_dark_current = ops.xp.asarray(avg)
    return "COMPLETE"


def int_start(seg):
    """The index in the whole exposure (0-based) of ``seg.data[0]``: MIRI's steps that depend
    on the integration number (reset, rscd, dark_current) take it, so a chunk of integrations
    or a segment of an exposure gets what the whole exposure would."""
    return (seg.exposure.intstart or 1) - 1 + seg.first_integration


def _record(seg, step, per_integration, ops):
    seg.removed[step] = np.asarray(ops.to_host(per_integration), np.float64)


def _newly_unusable(before, after, ops):
    """Per integration, the groups x pixels DO_NOT_USE in ``after`` and not in ``before``."""
    dnu = np.uint8(dq.DO_NOT_USE)
    return ops.xp.count_nonzero((after & dnu) > (before & dnu), axis=(1, 2, 3))


def _emicorr(seg, refs, params, ops):
    """jwst pools every integration of a segment: chunked runs keep the segment whole
    (``driver.run_plan``)."""
    data = ops.correct_emi(
        seg.data, seg.groupdq, seg.pixeldq, seg.exposure, params, refs["emicorr"]
    )
    if data is None:
        return "SKIPPED"  # not a case jwst corrects (read pattern, groups, frequencies)
    diff = ops.xp.square(seg.data - data)
    _record(seg, "emicorr", ops.xp.sqrt(diff.mean(axis=(1, 2, 3), dtype=np.float64)), ops)
    seg.data = data
    return "COMPLETE"


def _firstframe(seg, refs, params, ops):
    if not firstframe.applies(seg.data.shape[1], params.ngroups):
        return "SKIPPED"
    before = seg.groupdq
    seg.groupdq, seg.pixeldq = ops.flag_first_groups(
        seg.groupdq, seg.pixeldq, params.ngroups, params.bright_use_group1
    )
    _record(seg, "firstframe", _newly_unusable(before, seg.groupdq, ops), ops)
    return "COMPLETE"


def _lastframe(seg, refs, params, ops):
    if not lastframe.applies(seg.data.shape[1], params.ngroups):
        return "SKIPPED"
    before = seg.groupdq
    seg.groupdq = ops.flag_last_groups(seg.groupdq, params.ngroups)
    _record(seg, "lastframe", _newly_unusable(before, seg.groupdq, ops), ops)
    return "COMPLETE"


def _reset(seg, refs, params, ops):
    ref = refs["reset"]
    reset = ref.arrays["data"]
    seg.data, seg.pixeldq = ops.subtract_reset(
        seg.data, seg.pixeldq, reset, ref.arrays["dq"], int_start(seg)
    )
    # the reset integration each integration got (reset.subtract_reset's), over its groups
    ngroups = min(seg.data.shape[1], reset.shape[1])
    means = ops.to_host(reset[:, :ngroups].mean(axis=(1, 2, 3), dtype=np.float64))
    which = np.minimum(np.arange(seg.data.shape[0]) + int_start(seg), reset.shape[0] - 1)
    seg.removed["reset"] = means[which]
    return "COMPLETE"


def _rscd(seg, refs, params, ops):
    table = refs["rscd"].param["table"]
    skips = rscd.skip_groups(table, seg.exposure, params.skip_int1, params.skip_int2p)
    if skips is None:
        return "SKIPPED"
    before = seg.groupdq
    seg.groupdq, seg.pixeldq = ops.flag_rscd(seg.groupdq, seg.pixeldq, *skips, int_start(seg))
    _record(seg, "rscd", _newly_unusable(before, seg.groupdq, ops), ops)
    return "COMPLETE"


_STEPS = {
    "group_scale": _group_scale,
    "dq_init": _dq_init,
    "saturation": _saturation,
    "superbias": _superbias,
    "refpix": _refpix,
    "linearity": _linearity,
    "dark_current": _dark_current,
    "emicorr": _emicorr,
    "firstframe": _firstframe,
    "lastframe": _lastframe,
    "reset": _reset,
    "rscd": _rscd,
}


class JumpCounts:
    """jwst's PRIMECRS and EXTNCRS from the parts of a segment (tiles) jump ran on."""

    def __init__(self, ops=NumpyOps):  # the backend of the arrays add() is given
        self.ops = ops
        self.parts = {}  # key -> (primary CRs, snowballs, all-DNU planes, pixels)

    def add(self, key, result, groupdq, window=slice(None)):
        if result is not None and result.status == "COMPLETE":
            planes = self.ops.to_host(self.ops.all_dnu_planes(groupdq))
            npix = groupdq.shape[2] * groupdq.shape[3]
            self.parts[key] = (result.primary_crs_in(window), result.n_snowballs, planes, npix)

    def rates(self, seg):
        if not self.parts:
            return None, None
        crs, snowballs, planes, npix = zip(*self.parts.values(), strict=True)
        # -99: stcal skipped detection, in every chunk alike
        total = -99 if -99 in crs else sum(crs)
        all_dnu = np.logical_and.reduce(planes)
        return jump.cosmic_ray_rates(total, sum(snowballs), all_dnu, seg.exposure.tgroup, sum(npix))


def run_jump(seg, refs, config, frame=None, ops=NumpyOps, memo=None):
    """Jump detection on ``seg`` (replacing its DQ arrays); the JumpResult, or None if skipped.

    ``frame`` carries the whole-frame statistics when ``seg`` holds some rows of a segment;
    ``memo``: ``detect_jumps``', a dict kept between runs on the same ramp.
    """
    if "jump" in config.skip:
        seg.step_status["jump"] = "SKIPPED"
        return None
    exp = seg.exposure
    params = config.params("jump")
    with annotate("jump"):
        out = None
        if params.time_domain != "alone":
            out = ops.detect_jumps(
                seg.data,
                seg.groupdq,
                seg.pixeldq,
                refs["gain"].arrays["data"],
                refs["readnoise"].arrays["data"],
                params,
                nframes=exp.nframes,
                groupgap=exp.groupgap,
                tgroup=exp.tgroup,
                frame=frame,
                memo=memo,
            )
        if params.time_domain != "off":
            out = _time_domain_jumps(seg, out, params, ops)
    seg.groupdq, seg.pixeldq = out.groupdq, out.pixeldq
    seg.step_status["jump"] = out.status
    return out


def _time_domain_jumps(seg, ramp, params, ops):
    """``jump.time_domain``: exoTEDRF's detection across integrations (tsogpu/algorithms/
    tdjump.py), alone (``ramp`` None) or after the up-the-ramp detector's JumpResult ``ramp``.

    It runs on ``ramp``'s GROUPDQ, so the flags are the union of both detectors' (neither flags
    a SAT or DNU group). The JumpResult counts the groups it newly flagged as primary cosmic
    rays, added to the up-the-ramp count where that detector ran.
    """
    ran = ramp is not None and ramp.status == "COMPLETE" and ramp.number_crs != -99
    found = ops.flag_time_domain(
        seg.data,
        seg.groupdq if ramp is None else ramp.groupdq,
        window=params.time_window,
        threshold=params.time_threshold,
    )
    crs = found.jumps_per_pixel + ramp.crs_per_pixel if ran else found.jumps_per_pixel
    number_crs = int(crs.sum())
    n_snowballs = ramp.n_snowballs if ramp is not None else 0
    planes = ops.to_host(ops.all_dnu_planes(found.groupdq))
    ny, nx = found.groupdq.shape[2:]
    primecrs, extncrs = jump.cosmic_ray_rates(
        number_crs, n_snowballs, planes, seg.exposure.tgroup, ny * nx
    )
    return jump.JumpResult(
        found.groupdq,
        seg.pixeldq if ramp is None else ramp.pixeldq,
        primecrs,
        extncrs,
        "COMPLETE",
        number_crs,
        n_snowballs,
        crs,
        ramp.sigclip_planes if ramp is not None else None,
    )


def warn_if_saturated(source, saturated):
    if saturated:
        log.warning(
            "%s: every pixel is saturated in the first group of every integration; "
            "no rate products (as jwst)",
            source,
        )
    return saturated


def fits_likely(config, ngroups):
    """Whether ramp fitting runs LIKELY: asked for, with at least 4 groups (jwst's
    ramp_fit_step.py fits OLS_C otherwise). LIKELY fits a fully saturated exposure too
    (NaN rates), so the callers' "no rate products" test is for OLS_C only."""
    return config.params("ramp_fit").algorithm == "LIKELY" and ngroups >= LIKELY_MIN_NGROUPS


NO_FIT = "no fit"  # fitted_groups: stcal fits nothing (MIRI); jwst writes no rate products


def fitted_groups(exposure, config, ngroups, all_dnu):
    """The groups OLS_C fits, by stcal's MIRI rule (``ramp_fit.miri_groups``).

    ``all_dnu()`` gives bool (nints, ngroups), the planes DO_NOT_USE in every pixel of the
    whole segment after jump (asked for MIRI only). Returns ``(first, stop)``; None where
    every group is fitted (not MIRI, LIKELY or ramp fitting skipped); or :data:`NO_FIT`.
    """
    skipped = "ramp_fit" in config.skip or fits_likely(config, ngroups)
    if exposure.instrument.upper() != "MIRI" or skipped:
        return None
    groups = ramp_fit.miri_groups(all_dnu(), config.params("ramp_fit"))
    if groups is None:
        log.warning(
            "MIRI: fewer than 2 groups are left to fit where whole planes are DO_NOT_USE; "
            "no rate products (as jwst)"
        )
        return NO_FIT
    return groups


def first_fitted(groups):
    """The first group ramp fitting fits (stcal tests it for a fully saturated exposure)."""
    return groups[0] if isinstance(groups, tuple) else 0


def fit_and_scale(seg, refs, config, fully_saturated=False, ops=NumpyOps, groups=None, memo=None):
    """Ramp fitting then gain_scale; (rateints, rate), or (None, None) when skipped.

    With ``ramp_fit.goodness_of_fit`` ``rateints`` has a sixth array, CHI2 (dimensionless,
    not gain-scaled).

    ``fully_saturated``: the first group fitted is SATURATED in every pixel of the whole
    exposure; stcal then fits nothing and jwst writes no rate products. ``groups``:
    :func:`fitted_groups` of the whole segment (MIRI). ``memo``: ``fit_ramps``' (OLS_C), a
    dict kept between fits of the same ramp with other JUMP flags.
    """
    if "ramp_fit" in config.skip or fully_saturated or groups == NO_FIT:
        seg.step_status["ramp_fit"] = seg.step_status["gain_scale"] = "SKIPPED"
        return None, None
    exp = seg.exposure
    params = config.params("ramp_fit")
    likely = fits_likely(config, seg.data.shape[1])
    if params.algorithm == "LIKELY" and not likely:
        log.info("LIKELY needs %d groups or more: fitting OLS_C, as jwst", LIKELY_MIN_NGROUPS)
    fit_kw = {} if likely or groups is None else {"groups": groups}
    if memo is not None and not likely:
        fit_kw["memo"] = memo
    with annotate("ramp_fit"):
        fit = (ops.fit_ramps_likely if likely else ops.fit_ramps)(
            seg.data,
            seg.groupdq,
            seg.pixeldq,
            refs["gain"].arrays["data"],
            refs["readnoise"].arrays["data"],
            params,
            nframes=exp.nframes,
            groupgap=exp.groupgap,
            tgroup=exp.tgroup,
            tframe=exp.tframe,
            average_dark_current=seg.average_dark_current,
            zeroframe=seg.zeroframe,
            **fit_kw,
        )
    seg.step_status["ramp_fit"] = "COMPLETE"
    rateints, rate = fit.rateints, fit.rate
    factor = refs["gain"].header.get("GAINFACT")
    if "gain_scale" in config.skip or factor is None:
        seg.step_status["gain_scale"] = "SKIPPED"
    else:
        rateints, rate = _scale(rateints, factor, ops), _scale(rate, factor, ops)
        seg.step_status["gain_scale"] = "COMPLETE"
    if fit.chi2 is not None:  # ramp_fit.goodness_of_fit: CHI2 after the rateints arrays
        rateints = (*rateints, fit.chi2)
    return rateints, rate


def _scale(product, factor, ops=NumpyOps):
    sci, err, dq_, var_poisson, var_rnoise = product
    sci, err, var_poisson, var_rnoise = ops.gain_scale(sci, err, var_poisson, var_rnoise, factor)
    return sci, err, dq_, var_poisson, var_rnoise
