"""The Stage-1 order over one segment (jwst Detector1Pipeline, near-infrared branch).

The array core (NumPy only): ``run_prejump`` runs the steps before jump on a segment in
memory, ``run_segment`` runs all of them. ``process_file`` adds the file side and bounds
memory: pass 1 takes the segment in chunks of integrations through the pre-jump steps (each
of them works on one integration at a time) into a scratch ramp on disk; pass 2 takes the
scratch ramp in chunks of rows, with the halo jump's neighbour flagging needs, through jump
and ramp fitting (which work on all integrations of a pixel). Chunk sizes follow from the
memory budget; the products do not depend on them.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__
from .algorithms import (
    dark_current,
    dq_init,
    gain_scale,
    group_scale,
    jump,
    jump_fast,
    linearity,
    oneoverf,
    ramp_fit,
    ramp_fit_fast,
    refpix,
    saturation,
    superbias,
    tdjump,
)
from .algorithms.dq_init import flag_groups  # NumpyOps.dq_init hides the module
from .config import STEP_ORDER, STEP_REFTYPES, PipelineConfig
from .errors import BackendError, ConfigError, InputError
from .flow import STAGES, HostLanes, annotate, stream
from .segment import Segment, ramps_to_float32

log = logging.getLogger(__name__)

# steps run on the ramp in this order; gain_scale acts on rate products (ramp fitting)
RAMP_STEPS = STEP_ORDER[: STEP_ORDER.index("dark_current") + 1]
NIR_INSTRUMENTS = ("NIRSPEC", "NIRISS", "NIRCAM")


def select_backend(name):
    """Resolve ``numpy | native | cupy | auto`` to the backend that will run; no silent
    fallback.

    ``cupy`` without a usable GPU, or ``native`` without a C++ compiler that builds the
    kernels, is an error; ``auto`` takes the GPU, else the native build, else NumPy, and logs
    which and why.
    """
    if name == "numpy":
        return "numpy"
    from . import native
    from .cuda import loader  # imports CuPy only inside available()

    if name == "native":
        ok, what = native.available()
        if not ok:
            raise BackendError(f"--backend native: {what}; use --backend numpy")
        return "native"
    ok, what = loader.available()
    if name == "cupy":
        if not ok:
            raise BackendError(f"--backend cupy: {what}; use --backend numpy")
        return "cupy"
    if ok:
        log.info("backend auto: using the GPU, %s", what)
        return "cupy"
    native_ok, native_what = native.available()
    if native_ok:
        log.info("backend auto: no GPU (%s); using the native CPU build", what)
        return "native"
    log.info("backend auto: using numpy (%s; %s)", what, native_what)
    return "numpy"


class NumpyOps:
    """The step functions of the NumPy backend. ``tsogpu.cuda.backend.CudaOps`` has the same
    names and signatures, working on CuPy arrays; the pipeline calls steps through these."""

    name = "numpy"
    xp = np
    group_scale = staticmethod(group_scale.group_scale)
    dq_init = staticmethod(dq_init.dq_init)
    flag_saturation = staticmethod(saturation.flag_saturation)
    subtract_superbias = staticmethod(superbias.subtract_superbias)
    correct_refpix = staticmethod(refpix.correct_refpix)
    correct_linearity = staticmethod(linearity.correct_linearity)
    subtract_dark = staticmethod(dark_current.subtract_dark)
    detect_jumps = staticmethod(jump_fast.detect_jumps)
    fit_ramps = staticmethod(ramp_fit_fast.fit_ramps)
    gain_scale = staticmethod(gain_scale.gain_scale)
    # options beyond jwst (docs/options.md)
    flag_groups = staticmethod(flag_groups)
    scale_thresholds = staticmethod(saturation.scale_thresholds)
    extend_saturation = staticmethod(saturation.extend_saturation)
    saturation_map = staticmethod(saturation.saturation_map)
    apply_saturation_map = staticmethod(saturation.apply_saturation_map)
    flag_time_domain = staticmethod(tdjump.flag_time_domain)
    correct_sky = staticmethod(oneoverf.correct_sky)
    superbias_scale_factors = staticmethod(superbias.scale_factors)
    kernel_hash = None
    device = "cpu"
    out_of_memory = (MemoryError,)  # retried in smaller chunks (process_file)

    @staticmethod
    def memory_limit():
        """Bytes the backend's own memory can hold (None: only the budget limits it)."""
        return None

    @staticmethod
    def release_memory():
        """Hand freed memory back after an out-of-memory error, before a retry."""
        _malloc_trim()

    @staticmethod
    def to_device(segment, refs):
        """``segment`` with float32 ramps: raw counts converted (:func:`ramps_to_float32`)."""
        if segment is not None and segment.data.dtype != np.float32:
            segment = replace(segment, data=ramps_to_float32(segment.data))
        return segment, refs

    @staticmethod
    def lanes():
        """How ``tsogpu.flow.stream`` meets this backend: host threads alone."""
        return HostLanes()

    @staticmethod
    def to_host(a):
        return a


def backend_ops(backend, threads=None):
    """The ops object of a resolved backend name (see :func:`select_backend`); ``threads``:
    the cores each native kernel is split over (default: all usable)."""
    if backend == "numpy":
        return NumpyOps
    if backend == "native":
        from . import native

        return native.ops(threads)
    from .cuda.backend import CudaOps

    return CudaOps.current()


def required_reftypes(config):
    """Reference types the steps that will run need, in step order, as jwst's steps list them.

    The saturation step lists superbias (for its group-2 test) as jwst's does; give
    ``superbias=N/A`` to run saturation without it.
    """
    needed = []
    for step in STEP_ORDER:
        if step not in config.skip:
            needed += [t for t in STEP_REFTYPES[step] if t not in needed]
    return needed


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
    ops : NumpyOps or CudaOps
        The backend; with CudaOps, ``segment`` and ``refs`` are on the device
        (``ops.to_device``) and so is the result.

    Returns
    -------
    Segment
        A new segment; ``step_status`` maps each step to COMPLETE or SKIPPED.
    """
    config = config or PipelineConfig()
    exp = segment.exposure
    if exp.instrument.upper() not in NIR_INSTRUMENTS:
        raise InputError(
            f"{segment.source}: instrument {exp.instrument} is not supported "
            f"(near-infrared only: {', '.join(NIR_INSTRUMENTS)})"
        )
    seg = replace(segment, step_status={})
    for step in RAMP_STEPS:
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
    seg.pixeldq, seg.groupdq = ops.dq_init(seg.pixeldq, seg.groupdq, refs["mask"].arrays["dq"])
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


def _fixed_map(config):
    """``saturation.fixed_map`` when the saturation step runs with it, else None."""
    if "saturation" in config.skip:
        return None
    per = config.params("saturation").fixed_map
    return None if per == "none" else per


def _apply_fixed_map(seg, sat_map, ops):
    """The segment-wide saturation map on ``seg`` (after the pre-jump steps, before jump).

    It needs every integration's flags, so it comes after the pre-jump steps, which saw each
    integration's own flags: linearity corrected the groups the map adds where that
    integration did not saturate itself (jump and ramp fitting ignore those groups).
    """
    if sat_map is not None and seg.step_status.get("saturation") == "COMPLETE":
        seg.groupdq = ops.apply_saturation_map(seg.groupdq, sat_map)


def _superbias(seg, refs, params, ops):
    ref = refs["superbias"]
    scale = None if params.scale == "off" else _bias_scale(seg, refs, params, ops)
    seg.data, seg.pixeldq, seg.zeroframe = ops.subtract_superbias(
        seg.data,
        seg.pixeldq,
        ref.arrays["data"],
        ref.arrays["dq"],
        zeroframe=seg.zeroframe,
        scale=scale,
    )
    return "COMPLETE"


def _bias_scale(seg, refs, params, ops):
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
            "make one (see tsogpu.pipeline.sky_trace_mask)"
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
            "run_segment and process_file make one (see tsogpu.pipeline.sky_trace_mask)"
        )
    seg.data, seg.one_over_f = ops.correct_sky(
        seg.data, seg.groupdq, seg.pixeldq, seg.exposure, params.sky_method, seg.trace_mask
    )


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
        from .io import products

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


_STEPS = {
    "group_scale": _group_scale,
    "dq_init": _dq_init,
    "saturation": _saturation,
    "superbias": _superbias,
    "refpix": _refpix,
    "linearity": _linearity,
    "dark_current": _dark_current,
}


@dataclass
class Result:
    """What one segment gives: the ramp after jump, per-integration and exposure slopes.

    ``rateints`` and ``rate`` are (sci, err, dq, var_poisson, var_rnoise) tuples, arrays of
    (nints, ny, nx) and (ny, nx); None when ramp fitting was skipped.
    """

    segment: Segment
    rateints: tuple | None
    rate: tuple | None
    step_status: dict
    primary_cosmic_rays: float | None = None
    extended_emission_events: float | None = None
    one_over_f: oneoverf.Levels | None = None  # refpix.sky_method's levels, on the host
    bias_scale: superbias.Factors | None = None  # superbias.scale's factors, on the host


def run_segment(segment, refs, config=None, on_step=None, ops=None, shared=None):
    """All steps on a segment held in memory (the unchunked reference for ``process_file``).

    With ``config.backend`` cupy (or auto on a GPU machine) the segment goes to the device
    once, every step runs there, and the result comes back as NumPy arrays. ``ops`` overrides
    the backend (the tests pass the host build of the kernels). ``shared``: the exposure's
    :class:`tsogpu.exposure.Shared` (``exposure_wide``), whose saturation map replaces the
    segment's own with ``saturation.fixed_map``.
    """
    config = config or PipelineConfig()
    ops = ops or backend_ops(select_backend(config.backend), config.threads)
    if segment.trace_mask is None:
        mask = sky_trace_mask(
            config,
            segment.data.shape,
            lambda: oneoverf.last_minus_first(segment.data),
            shared,
            segment.source,
        )
        segment = replace(segment, trace_mask=mask)
    if segment.bias_scale is None and bias_scale_mode(config, refs) == "exposure":
        segment = replace(segment, bias_scale=exposure_bias_scale(shared, segment.data.shape[0]))
    segment, refs = ops.to_device(segment, refs)
    seg = run_prejump(segment, refs, config, on_step, ops)
    per = _fixed_map(config)
    if per is not None:
        if shared is None:
            sat_map = ops.saturation_map(seg.groupdq, per)
        else:
            sat_map = ops.xp.asarray(shared.saturation_map_for(per))
        _apply_fixed_map(seg, sat_map, ops)
    counts = _JumpCounts()
    counts.add(0, _jump(seg, refs, config, ops=ops), seg.groupdq)
    if on_step is not None and "jump" not in config.skip:
        on_step("jump", seg)
    saturated = ramp_fit.exposure_fully_saturated(ops.to_host(seg.groupdq[:, :1]))
    saturated = _warn_if_saturated(seg.source, saturated)
    rateints, rate = _fit_and_scale(seg, refs, config, saturated, ops)
    return Result(
        _segment_to_host(seg, ops),
        _product_to_host(rateints, ops),
        _product_to_host(rate, ops),
        seg.step_status,
        *counts.rates(seg),
        one_over_f=_levels_to_host(seg.one_over_f, ops),
        bias_scale=_measured(seg.bias_scale),
    )


def _measured(factors):
    """``factors`` when the superbias step measured them (it ran with ``superbias.scale``)."""
    return factors if factors is not None and factors.measured is not None else None


def _levels_to_host(levels, ops):
    if levels is None:
        return None
    off = None if levels.offsets is None else ops.to_host(levels.offsets)
    return replace(levels, lines=ops.to_host(levels.lines), offsets=off)


class _SkyLevels:
    """The chunks' ``refpix.sky_method`` levels gathered into the segment's arrays."""

    def __init__(self, nints):
        self.nints, self.levels, self.lock = nints, None, threading.Lock()

    def add(self, ints, levels):
        if levels is None:
            return
        with self.lock:
            if self.levels is None:
                self.levels = replace(
                    levels, lines=self._full(levels.lines), offsets=self._full(levels.offsets)
                )
        self.levels.lines[ints] = levels.lines
        if levels.offsets is not None:
            self.levels.offsets[ints] = levels.offsets

    def _full(self, part):
        return None if part is None else np.empty((self.nints, *part.shape[1:]), part.dtype)


def _segment_to_host(seg, ops):
    if ops is NumpyOps:
        return seg
    host = {
        name: None if getattr(seg, name) is None else ops.to_host(getattr(seg, name))
        for name in ("data", "groupdq", "pixeldq", "zeroframe", "average_dark_current")
    }
    return replace(seg, **host)


def _product_to_host(product, ops):
    return None if product is None else tuple(ops.to_host(a) for a in product)


class _JumpCounts:
    """jwst's PRIMECRS and EXTNCRS from the parts of a segment (tiles) jump ran on."""

    def __init__(self):
        self.parts = {}  # key -> (primary CRs, snowballs, all-DNU planes, pixels)

    def add(self, key, result, groupdq, window=slice(None)):
        if result is not None and result.status == "COMPLETE":
            planes = jump.all_dnu_planes(groupdq)
            planes = planes.get() if hasattr(planes, "get") else planes  # from the device
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


def _jump(seg, refs, config, frame=None, ops=NumpyOps):
    """Jump detection on ``seg`` (replacing its DQ arrays); the JumpResult, or None if skipped.

    ``frame`` carries the whole-frame statistics when ``seg`` holds some rows of a segment.
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
    planes = ops.to_host(jump.all_dnu_planes(found.groupdq))
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


def _warn_if_saturated(source, saturated):
    if saturated:
        log.warning(
            "%s: every pixel is saturated in the first group of every integration; "
            "no rate products (as jwst)",
            source,
        )
    return saturated


def _fit_and_scale(seg, refs, config, fully_saturated=False, ops=NumpyOps):
    """Ramp fitting then gain_scale; (rateints, rate), or (None, None) when skipped.

    ``fully_saturated``: group 0 is SATURATED in every pixel of the whole exposure; stcal
    then fits nothing and jwst writes no rate products.
    """
    if "ramp_fit" in config.skip or fully_saturated:
        seg.step_status["ramp_fit"] = seg.step_status["gain_scale"] = "SKIPPED"
        return None, None
    exp = seg.exposure
    with annotate("ramp_fit"):
        fit = ops.fit_ramps(
            seg.data,
            seg.groupdq,
            seg.pixeldq,
            refs["gain"].arrays["data"],
            refs["readnoise"].arrays["data"],
            config.params("ramp_fit"),
            nframes=exp.nframes,
            groupgap=exp.groupgap,
            tgroup=exp.tgroup,
            tframe=exp.tframe,
            average_dark_current=seg.average_dark_current,
            zeroframe=seg.zeroframe,
        )
    seg.step_status["ramp_fit"] = "COMPLETE"
    rateints, rate = fit.rateints, fit.rate
    factor = refs["gain"].header.get("GAINFACT")
    if "gain_scale" in config.skip or factor is None:
        seg.step_status["gain_scale"] = "SKIPPED"
    else:
        rateints, rate = _scale(rateints, factor, ops), _scale(rate, factor, ops)
        seg.step_status["gain_scale"] = "COMPLETE"
    return rateints, rate


def _scale(product, factor, ops=NumpyOps):
    sci, err, dq_, var_poisson, var_rnoise = product
    sci, err, var_poisson, var_rnoise = ops.gain_scale(sci, err, var_poisson, var_rnoise, factor)
    return sci, err, dq_, var_poisson, var_rnoise


# ------------------------------------------------------------------------------------------
# Files, bounded memory

# Peak bytes per ramp sample (one group of one pixel of one integration) while a chunk is in
# work, on the NumPy backend, with margin: from the VmHWM of runs like
# tests/test_chunks.py::test_peak_memory_within_budget and bench/big_segment.py. The products'
# own arrays are counted separately.
BYTES_PER_SAMPLE_PASS1 = 40
BYTES_PER_SAMPLE_PASS2 = 64
BYTES_PER_SAMPLE_IN_MEMORY = 72
# Pass 1 streams its chunks where they go one at a time (tsogpu.flow), in at least this many,
# so that reading, copies, kernels and writing overlap for most of it (a GPU machine's budget
# would often take a segment in two or three)
STREAMED_CHUNKS = 8


@dataclass(frozen=True)
class Plan:
    """How a segment is cut: integrations per pass-1 chunk, a rows x cols tile for pass 2."""

    budget: int
    ints: int
    rows: int
    cols: int
    halo: int
    in_memory: bool
    threads: int = 1  # chunks and tiles at once (each within budget / threads)


def default_memory_budget():
    """An eighth of the machine's memory (of a cgroup limit, if lower), at least 1 GiB."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return max(total // 8, 2**30)


def usable_cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _malloc_trim():
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


def keep_freed_memory():
    """Make glibc's malloc reuse freed memory instead of returning it to the system.

    The steps make many array temporaries of tens to hundreds of MB; by default glibc maps
    each from the kernel and unmaps it when freed, so every one is page-faulted and zeroed
    anew (a third of the run time went to the kernel). With mmap off and trimming off,
    freed blocks are reused: on NRS 200 x 20 the run took half the time, at a lower peak.
    One arena: glibc's per-thread arenas cannot grow past 64 MiB and map larger blocks
    anyway, and the chunks and tiles run on threads (one arena took NRS 200 x 20 on the
    native backend from 31 s to 25-27 s, with half the system time). A process-wide setting, so
    the command line calls it, before any thread, not the library. Returns whether it took
    effect (glibc only).
    """
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
    try:
        libc = _libc()
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_arena_max, 1) == 1
        return ok and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False


def current_rss():
    """Resident memory of this process now, in bytes (Linux; 0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def plan_chunks(shape, config, zeroframe=False, source="segment", threads=None):
    """Chunk sizes that keep the peak resident memory within ``config.max_memory``.

    ``threads``: chunks and tiles at once (default ``config.threads`` or the CPU cores).
    """
    nints, ngroups, ny, nx = shape
    budget = config.max_memory or default_memory_budget()
    params = config.params("jump")
    # neighbour flagging reaches one pixel; snowballs reach further: keep whole frames then
    halo = int(params.flag_4_neighbors)
    fits_products = "ramp_fit" not in config.skip
    # products held until written (5 cubes) plus what writing them costs (about 2 cubes)
    fixed = nints * ny * nx * 4 * ((7 if fits_products else 0) + (1 if zeroframe else 0))
    free = budget - current_rss() - fixed
    samples = nints * ngroups * ny * nx
    if free >= BYTES_PER_SAMPLE_IN_MEMORY * samples:
        return Plan(budget, nints, ny, nx, halo, True)
    # chunks and tiles run ``threads`` at a time, so each gets its share of the budget
    threads = threads or config.threads or usable_cores()
    threads = 1 if params.expand_large_events else threads
    ints = free // (BYTES_PER_SAMPLE_PASS1 * ngroups * ny * nx)  # all chunks at once
    pixels = free // (BYTES_PER_SAMPLE_PASS2 * nints * ngroups)  # all tiles, halo included
    rows, cols = _tile(ny, nx, pixels // threads, halo)
    if threads > 1 and (rows * cols < 1024 or ints < threads):  # too small to share
        threads = 1
        rows, cols = _tile(ny, nx, pixels, halo)
    # enough integrations per chunk to keep every thread busy, no more than its share
    ints = min(nints, ints // threads, -(-nints // threads))
    if params.expand_large_events:
        rows, cols = (ny, nx) if pixels >= ny * nx else (0, 0)
    if ints < 1 or rows < 1:
        need = (
            current_rss()
            + fixed
            + max(
                BYTES_PER_SAMPLE_PASS1 * ngroups * ny * nx,
                BYTES_PER_SAMPLE_PASS2
                * nints
                * ngroups
                * (ny * nx if params.expand_large_events else (1 + 2 * halo) ** 2),
            )
        )
        raise ConfigError(
            f"{source}: a memory budget of {_gib(budget)} is too small for a "
            f"{nints}x{ngroups}x{ny}x{nx} segment; it needs at least {_gib(need)} "
            "(--max-memory)"
        )
    return Plan(budget, int(ints), rows, cols, halo, False, threads)


def _tile(ny, nx, pixels, halo):
    """The largest tile, whole rows first, whose pixels with the halo number <= ``pixels``."""
    if pixels < 1:
        return 0, 0
    # whole rows need no halo columns
    rows = min(ny, pixels // nx - 2 * halo)
    if rows >= 1:
        return int(rows), nx
    # narrower than the frame: squarish tiles keep the halo's share small
    side = int(pixels**0.5) - 2 * halo
    if side < 1:
        return 0, 0
    rows = min(ny, side)
    cols = min(nx, pixels // (rows + 2 * halo) - 2 * halo)
    return int(rows), int(cols)


def _gib(n):
    return f"{n / 2**30:.2f} GiB"


# Parameters that change no bit of a product: how the work is cut and run. The backends give
# the same products too (the conformance tests), and save_ramp only adds a product. The
# reference files enter the input hash by their identity, not by the paths in "ref".
RESULT_NEUTRAL = ("threads", "max_memory", "backend", "save_ramp", "ref")


def file_identity(path):
    """``[name, size, mtime_ns]`` of a file: what the input hash knows of it.

    Not a content hash: hashing a segment reads gigabytes, and a rerun over an archive would
    read every input again just to decide what to skip. ``stat`` costs microseconds; any
    rewrite, ``touch`` or copy without preserved times changes the identity (the product is
    redone), and the name without its folder lets an archive be moved with ``mv`` or
    ``rsync -a`` and still be found complete.
    """
    st = os.stat(path)
    return [os.path.basename(os.fspath(path)), st.st_size, st.st_mtime_ns]


def input_hash(uncal_path, config, ref_paths, shared=None):
    """SHA-256 (hex) of what a segment's products depend on: ``TSOIHASH`` in each product.

    Covers the uncal file's :func:`file_identity`, each reference file's identity (a file
    given with ``--ref``: its :func:`file_identity`; a CRDS file: its name, which CRDS never
    reuses for other contents; ``N/A``), the parameters (``config.as_dict()`` without
    :data:`RESULT_NEUTRAL`) and the tsogpu version. A rerun that finds every product with
    the hash it would record skips the segment.

    Parameters
    ----------
    ref_paths : dict
        reftype -> local path or ``"N/A"``, as resolved for this segment (the types the
        steps that run need).
    shared : tsogpu.exposure.Shared, optional
        The exposure's first pass (``exposure_wide``): its content hash is covered too, so
        products made with other segments' statistics are redone.
    """
    refs = {}
    for reftype, path in sorted(ref_paths.items()):
        if str(path).upper() == "N/A":
            refs[reftype] = "N/A"
        elif reftype in config.refs:
            refs[reftype] = file_identity(path)
        else:
            refs[reftype] = "crds:" + os.path.basename(os.fspath(path))
    params = {k: v for k, v in config.as_dict().items() if k not in RESULT_NEUTRAL}
    doc = {
        "tsogpu": __version__,
        "uncal": file_identity(uncal_path),
        "refs": refs,
        "params": params,
    }
    if shared is not None:
        doc["shared"] = shared.hash
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def process_file(uncal_path, out_dir, config=None, progress=None, shared=None):
    """Read ``uncal_path``, run every step within the memory budget, write the products.

    Parameters
    ----------
    progress : callable(stage: str, done: int, total: int), optional
        Called as chunks complete.
    shared : tsogpu.exposure.Shared, optional
        Pass 1 over the segment's exposure (``tsogpu.exposure.load_or_run``); required with
        ``config.exposure_wide``. The products record its file name and hash.

    Returns
    -------
    list of Path
        The products written: ``_rateints`` and ``_rate``, and ``_ramp`` with
        ``config.save_ramp`` or when ramp fitting is skipped; ``_oneoverf`` with
        ``refpix.sky_method`` and ``_biasscale`` with ``superbias.scale``.
    """
    from .io import products, reffiles, uncal

    config = config or PipelineConfig()
    backend = select_backend(config.backend)
    progress = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    try:
        exposure, shape, zeroframe = uncal.inspect_uncal(uncal_path)
    except MemoryError as exc:  # not even the file's map fits
        raise BackendError(
            f"{exc}: out of memory; free memory or use a machine with more"
        ) from None
    header = uncal.read_primary_header(uncal_path)
    log.info(
        "%s: %s %s %s, %d ints x %d groups x %d x %d",
        uncal_path,
        exposure.instrument,
        exposure.detector,
        exposure.exp_type,
        *shape,
    )
    refs, context = reffiles.load_references(
        exposure, required_reftypes(config), config.refs, header=header
    )
    if config.exposure_wide and shared is None:
        raise ConfigError(
            f"{uncal_path}: exposure_wide needs the exposure's first pass "
            "(tsogpu.exposure.load_or_run, as tsogpu run and batch do)"
        )
    if shared is not None and shared.saturation_map.shape != shape[2:]:
        raise InputError(
            f"{uncal_path}: frames of {shape[2]} x {shape[3]} pixels, but the exposure's "
            f"first pass ({shared.file_name}) has {shared.saturation_map.shape}"
        )
    # before the pixels are read: a file changed while it is processed is redone next time
    inputs = input_hash(
        uncal_path,
        config,
        {t: "N/A" if r is None else r.path for t, r in refs.items()},
        shared,
    )
    ops = backend_ops(backend, config.threads)
    # a GPU's kernels use the whole device, and the native kernels every core: one chunk at a time
    threads = 1 if ops is not NumpyOps else None
    limit = ops.memory_limit()  # a GPU's: chunks that fit its free memory
    budget = config.max_memory or default_memory_budget()
    planning = config
    if limit is not None and limit < budget:
        log.info("%s: the device has %s free: the budget is that", uncal_path, _gib(limit))
        planning = replace(config, max_memory=limit)
    plan = plan_chunks(shape, planning, zeroframe, source=str(uncal_path), threads=threads)
    # the products' metadata (stdatamodels' schemas: seconds) is read while the steps run
    side = ThreadPoolExecutor(1)
    meta = side.submit(products.load_meta, uncal_path)
    side.shutdown(wait=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # named after the segment: a killed run's leftover is found by scratch_prefix (batch)
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(uncal_path), dir=out_dir) as scratch:
        while True:
            try:
                result = _run_plan(
                    uncal_path, exposure, shape, refs, config, plan, scratch, progress, ops, shared
                )
                break
            except (*ops.out_of_memory, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno != errno.ENOMEM:  # mmap's ENOMEM only
                    raise
                ops.release_memory()
                what = f"{uncal_path}: out of {'GPU ' if ops.name == 'cupy' else ''}memory ({exc})"
                plan = _smaller_plan(plan, shape, planning, zeroframe, threads)
                if plan is None:
                    raise BackendError(
                        f"{what}, even in the smallest chunks; free memory or use a machine "
                        "with more"
                    ) from None
                log.warning(
                    "%s; retrying in smaller chunks (a budget of %s)", what, _gib(plan.budget)
                )
        prov = products.Provenance(
            version=__version__,
            backend=backend,
            params=config.as_dict(),
            refs={t: (r.name if r is not None else "N/A") for t, r in refs.items()},
            crds_context=context,
            step_status=result.step_status,
            primary_cosmic_rays=result.primary_cosmic_rays,
            extended_emission_events=result.extended_emission_events,
            kernel_hash=ops.kernel_hash or "",
            device=ops.device,
            input_hash=inputs,
            shared_file=None if shared is None else shared.file_name,
            shared_hash=None if shared is None else shared.hash,
        )
        meta.result()  # its errors, if any, surface here
        written = []
        if result.rateints is None or config.save_ramp:
            path = out_dir / products.product_name(uncal_path, "ramp")
            written.append(products.write_ramp(path, result.segment, prov))
        if result.rateints is not None:
            for suffix, arrays, writer in (
                ("rateints", result.rateints, products.write_rateints),
                ("rate", result.rate, products.write_rate),
            ):
                path = out_dir / products.product_name(uncal_path, suffix)
                written.append(writer(path, uncal_path, *arrays, prov))
        if result.one_over_f is not None:
            path = out_dir / products.product_name(uncal_path, "oneoverf")
            written.append(products.write_oneoverf(path, result.one_over_f, result.segment, prov))
        if result.bias_scale is not None:
            path = out_dir / products.product_name(uncal_path, "biasscale")
            written.append(products.write_bias_scale(path, result.bias_scale, result.segment, prov))
    log.info("%s: done in %.2f s", uncal_path, time.perf_counter() - t0)
    return written


def scratch_prefix(uncal_path):
    """Name prefix of the hidden scratch folder ``process_file`` makes beside the products."""
    return f".tsogpu-scratch-{Path(uncal_path).name}."


def _run_plan(uncal_path, exposure, shape, refs, config, plan, scratch, progress, ops, shared):
    """The steps over the whole segment as ``plan`` says: in memory, or chunked."""
    from .io import uncal

    if plan.in_memory:
        log.info("memory budget %s: whole segment in memory", _gib(plan.budget))
        steps = [s for s in (*RAMP_STEPS, "jump") if s not in config.skip]
        done = iter(range(1, len(steps) + 1))
        return run_segment(
            uncal.read_uncal(uncal_path, raw=ops is not NumpyOps),
            refs,
            config,
            on_step=lambda step, seg: progress(step, next(done), len(steps)),
            ops=ops,
            shared=shared,
        )
    if plan.threads == 1:
        plan = replace(plan, ints=min(plan.ints, -(-shape[0] // STREAMED_CHUNKS)))
    log.info(
        "memory budget %s: %d integrations per chunk, then tiles of %d x %d (+%d halo), "
        "%d at a time",
        _gib(plan.budget),
        plan.ints,
        plan.rows,
        plan.cols,
        plan.halo,
        plan.threads,
    )
    with tempfile.TemporaryDirectory(prefix=".retry-", dir=scratch) as folder:  # clean per try
        return _run_chunked(
            uncal_path, exposure, shape, refs, config, plan, Path(folder), progress, ops, shared
        )


def _smaller_plan(plan, shape, config, zeroframe, threads):
    """A chunked plan with smaller chunks or tiles than ``plan`` (its budget halved until it
    has), or None where there is none."""
    budget = plan.budget
    while True:
        budget //= 2
        try:
            new = plan_chunks(shape, replace(config, max_memory=budget), zeroframe, threads=threads)
        except ConfigError:
            return None
        if not new.in_memory and (
            plan.in_memory or new.ints < plan.ints or new.rows * new.cols < plan.rows * plan.cols
        ):
            return new


def _run_chunked(
    uncal_path, exposure, shape, refs, config, plan, scratch, progress, ops=NumpyOps, shared=None
):
    """Pass 1 by integrations into a scratch ramp on disk, pass 2 by tiles to the products.

    With CudaOps each chunk and tile goes to the device for its steps and comes back; pass 1
    streams its chunks there (:func:`tsogpu.flow.stream`: reads, copies, kernels and writes
    of neighbouring chunks overlap) where they go one at a time. The raw counts become float32
    in the backend's ``to_device``. ``shared``: as for :func:`run_segment`.
    """
    from .io import uncal

    nints, ngroups, ny, nx = shape
    # the pages a tile read maps count against the budget too: a small share per thread
    ramp = _Scratch(scratch, shape, batch_bytes=min(64 * 2**20, plan.budget // (16 * plan.threads)))
    zeroframe = pixeldq = avg_dark = status = None
    all_dnu = np.zeros((nints, ngroups), bool)  # jump's whole-frame plane test
    saturated = True  # ramp fitting's whole-exposure test
    lock = threading.Lock()
    dev_refs = ops.to_device(None, refs)[1]

    def read(ints, out=None):
        return uncal.read_uncal(uncal_path, ints, raw=True, out=out)

    def upload(seg):
        return ops.to_device(seg, {})[0]

    def kernels(ints, seg):
        """The pre-jump steps on some integrations (``seg``, as uploaded)."""
        given = None if bias_given is None else superbias.Factors(bias_given[ints])
        seg = replace(seg, trace_mask=trace_mask, bias_scale=given)
        seg = run_prejump(seg, dev_refs, config, ops=ops)
        own_map = per is not None and shared is None
        return seg, ops.saturation_map(seg.groupdq, per) if own_map else None

    def download(out):
        seg, part_map = out
        host = replace(_segment_to_host(seg, ops), one_over_f=_levels_to_host(seg.one_over_f, ops))
        return host, None if part_map is None else ops.to_host(part_map)

    def write(ints, out):
        """A chunk's results (on the host) into the scratch ramp and the segment's arrays."""
        nonlocal zeroframe
        seg, part_map = out
        sky_levels.add(ints, seg.one_over_f)
        if _measured(seg.bias_scale) is not None:
            bias_factors.applied[ints] = seg.bias_scale.applied
            bias_factors.measured[ints] = seg.bias_scale.measured
        ramp.write(np.s_[ints], seg.data, seg.groupdq)
        all_dnu[ints] = jump.all_dnu_planes(seg.groupdq)
        if seg.zeroframe is not None:
            with lock:
                if zeroframe is None:
                    zeroframe = np.zeros((nints, ny, nx), np.float32)
            zeroframe[ints] = seg.zeroframe
        # pixel DQ, the average dark and the statuses are the same for every integration
        sat = ramp_fit.exposure_fully_saturated(seg.groupdq)
        return sat, seg.pixeldq, seg.average_dark_current, seg.step_status, part_map

    per = _fixed_map(config)
    # saturation.fixed_map: the exposure's map, or the minimum of the chunks' maps
    sat_map = None if per is None or shared is None else shared.saturation_map_for(per)
    chunks = [slice(i0, min(i0 + plan.ints, nints)) for i0 in range(0, nints, plan.ints)]
    trace_mask = sky_trace_mask(
        config, shape, lambda: _last_minus_first(uncal_path, chunks), shared, str(uncal_path)
    )
    sky_levels = _SkyLevels(nints)
    # superbias.scale: the factors each chunk is given (mean over the segment, exposure), and
    # those the chunks' steps measured and applied
    mode = bias_scale_mode(config, refs)
    bias_given = None
    if mode == "exposure":
        bias_given = exposure_bias_scale(shared, nints).applied
    elif mode == "mean":
        measured = _measure_chunks(read, chunks, dev_refs, config, ops, trace_mask)
        bias_given = superbias.applied_factors(measured, "mean")
    bias_factors = superbias.Factors(
        applied=np.full((nints, ngroups), np.nan, np.float32),
        measured=np.full((nints, ngroups), np.nan, np.float32),
    )
    times = {}
    with ThreadPoolExecutor(plan.threads) as pool:
        if plan.threads > 1:  # each thread reads its chunk
            results = pool.map(
                lambda ints: write(ints, download(kernels(ints, upload(read(ints))))), chunks
            )
        else:  # one chunk at a time (a GPU, the native kernels): the stages of three overlap
            nbytes = 2 * plan.ints * ngroups * ny * nx  # a chunk's raw counts
            results = stream(
                chunks, read, upload, kernels, download, write, ops.lanes(), nbytes, times
            )
        for k, res in enumerate(results):
            saturated = saturated and res[0]
            if res[4] is not None:
                sat_map = res[4] if sat_map is None else np.minimum(sat_map, res[4])
            progress("pre-jump steps", k + 1, len(chunks))
    if times:
        busy = {s: round(times[s], 3) for s in (*STAGES, "wall")}
        log.info("%s: pass 1 stages, busy seconds (overlapped): %s", uncal_path, json.dumps(busy))
    _, pixeldq, avg_dark, status, _ = res
    if sat_map is not None and status.get("saturation") == "COMPLETE":
        saturated = saturated or bool(np.all(sat_map == 0))  # the map flags group 0 everywhere

    _warn_if_saturated(uncal_path, saturated)
    fits_ramps = "ramp_fit" not in config.skip and not saturated
    keep_ramp = config.save_ramp or not fits_ramps
    rateints = [np.empty((nints, ny, nx), dt) for dt in _PRODUCT_DTYPES] if fits_ramps else None
    rate = [np.empty((ny, nx), dt) for dt in _PRODUCT_DTYPES] if fits_ramps else None
    pixeldq_out = pixeldq.copy()
    counts = _JumpCounts()
    gain = refs.get("gain")
    frame = jump.frame_stats(all_dnu, gain.arrays["data"]) if gain is not None else None

    def tile(r0, c0, frame):
        """Jump and ramp fitting on one tile (jump sees its halo too)."""
        r1, c1 = min(r0 + plan.rows, ny), min(c0 + plan.cols, nx)
        ylo, yhi = max(0, r0 - plan.halo), min(ny, r1 + plan.halo)
        xlo, xhi = max(0, c0 - plan.halo), min(nx, c1 + plan.halo)
        window = np.s_[ylo:yhi, xlo:xhi]
        core = np.s_[r0 - ylo : r1 - ylo, c0 - xlo : c1 - xlo]
        data, groupdq = ramp.read(np.s_[ylo:yhi], np.s_[xlo:xhi])
        seg = Segment(
            data=data,
            groupdq=groupdq,
            pixeldq=pixeldq[window],
            exposure=exposure,
            zeroframe=None if zeroframe is None else zeroframe[:, ylo:yhi, xlo:xhi],
            average_dark_current=None if avg_dark is None else avg_dark[window],
            source=str(uncal_path),
            step_status=dict(status),
        )
        seg = ops.to_device(seg, {})[0]
        if sat_map is not None:
            _apply_fixed_map(seg, ops.xp.asarray(sat_map[window]), ops)
        found = _jump(seg, _cut(dev_refs, window, ops), config, frame, ops)
        seg = _segment_to_host(_core(seg, core), ops)
        counts.add((r0, c0), found, seg.groupdq, core)
        if keep_ramp:
            ramp.write(np.s_[:, :, r0:r1, c0:c1], None, seg.groupdq)
        pixeldq_out[r0:r1, c0:c1] = seg.pixeldq
        seg = ops.to_device(seg, {})[0]
        core_refs = _cut(dev_refs, np.s_[r0:r1, c0:c1], ops)
        ri, ra = _fit_and_scale(seg, core_refs, config, saturated, ops)
        ri, ra = _product_to_host(ri, ops), _product_to_host(ra, ops)
        if fits_ramps:
            for out, part in zip(rateints, ri, strict=True):
                out[:, r0:r1, c0:c1] = part
            for out, part in zip(rate, ra, strict=True):
                out[r0:r1, c0:c1] = part
        return found, seg.step_status

    tiles = [(r0, c0) for r0 in range(0, ny, plan.rows) for c0 in range(0, nx, plan.cols)]
    planes = {}
    # tiles write disjoint parts of the outputs; NumPy releases the GIL in its loops
    with ThreadPoolExecutor(plan.threads) as pool:
        done = pool.map(lambda t: tile(*t, frame), tiles)
        for k, ((r0, c0), (found, status)) in enumerate(zip(tiles, done, strict=True)):
            status_out = status  # the same for every tile
            if found is not None and found.sigclip_planes is not None:
                planes[r0, c0] = found.sigclip_planes
            progress("jump + ramp fit", k + 1, len(tiles))
    if planes:
        # the sigma-clip path resets JUMP in planes that are JUMP/DNU everywhere: a
        # whole-frame test; redo the (rare) tiles whose own test disagreed with it
        whole = np.logical_and.reduce(list(planes.values()))
        for (r0, c0), own in planes.items():
            if not np.array_equal(own, whole):
                tile(r0, c0, replace(frame, sigclip_planes=whole))

    if keep_ramp:
        log.warning(
            "%s: writing the _ramp product reads the whole calibrated ramp (%s), beyond the "
            "memory budget",
            uncal_path,
            _gib(5 * nints * ngroups * ny * nx),
        )
    ramp_data, ramp_groupdq = ramp.read_all() if keep_ramp else (None, None)
    segment = Segment(
        data=ramp_data,
        groupdq=ramp_groupdq,
        pixeldq=pixeldq_out,
        exposure=exposure,
        zeroframe=zeroframe,
        average_dark_current=avg_dark,
        source=str(uncal_path),
        step_status=status_out,
        trace_mask=trace_mask,
    )
    return Result(
        segment,
        tuple(rateints) if fits_ramps else None,
        tuple(rate) if fits_ramps else None,
        status_out,
        *counts.rates(segment),
        one_over_f=sky_levels.levels,
        bias_scale=bias_factors if status.get("superbias") == "COMPLETE" and mode else None,
    )


def _measure_chunks(read, chunks, refs, config, ops, trace_mask):
    """float32 (nints, ngroups): ``superbias.scale``'s factors measured on every integration
    of a segment read chunk by chunk (``read(ints)``) through the steps before superbias, so
    that a chunked run can apply their mean over the segment (``mean``)."""
    steps = replace(
        config, skip=config.skip | frozenset(STEP_ORDER[STEP_ORDER.index("superbias") :])
    )
    parts = []
    for ints in chunks:
        seg = replace(read(ints), trace_mask=trace_mask)
        seg = run_prejump(ops.to_device(seg, {})[0], refs, steps, ops=ops)
        parts.append(measure_bias_scale(seg, refs, ops))
    return np.concatenate(parts)


def _last_minus_first(uncal_path, chunks):
    """float32 (nints, ny, nx): each integration's last group less its first, from the raw
    counts, read chunk by chunk (``refpix.sky_method``'s automatic trace mask)."""
    from .io import uncal

    parts = [
        oneoverf.last_minus_first(uncal.read_uncal(uncal_path, ints, raw=True).data)
        for ints in chunks
    ]
    return np.concatenate(parts)


_PRODUCT_DTYPES = (np.float32, np.float32, np.uint32, np.float32, np.float32)


def _cut(refs, window, ops=NumpyOps):
    """The 2-D reference arrays jump and ramp fitting use, cut to ``window`` (rows, cols)."""
    out = dict(refs)
    for reftype in ("gain", "readnoise"):
        ref = refs.get(reftype)
        if ref is not None:
            arrays = {k: ops.xp.ascontiguousarray(v[window]) for k, v in ref.arrays.items()}
            out[reftype] = replace(ref, arrays=arrays)
    return out


def _core(seg, core):
    """``seg`` without the halo: ``core`` is a (rows, cols) slice of its frame."""
    return replace(
        seg,
        data=seg.data[(..., *core)],
        groupdq=seg.groupdq[(..., *core)],
        pixeldq=seg.pixeldq[core],
        zeroframe=None if seg.zeroframe is None else seg.zeroframe[(..., *core)],
        average_dark_current=(
            None if seg.average_dark_current is None else seg.average_dark_current[core]
        ),
    )


class _Scratch:
    """The calibrated ramp between the passes: float32 data and uint8 GROUPDQ files on disk.

    Whole integrations (pass 1) and full-width row bands (pass 2's tiles) are written and read
    with positional reads and writes, one per plane: the page cache serves them without
    mapping a page into the process (page faults were a tenth of a native run). Other regions
    (narrow tiles) map the file a few integrations at a time, ``batch_bytes`` of pages at
    most, since a mapped page stays resident until the unmap.
    """

    DTYPES = (np.float32, np.uint8)

    def __init__(self, folder, shape, batch_bytes=64 * 2**20):
        self.shape = shape
        self.batch_bytes = max(1, batch_bytes)
        self.paths = (folder / "data.f32", folder / "groupdq.u8")
        for path, dtype in zip(self.paths, self.DTYPES, strict=True):
            np.memmap(path, dtype, "w+", shape=shape).flush()

    def _map(self, k, mode):
        return np.memmap(self.paths[k], self.DTYPES[k], mode, shape=self.shape)

    def _planes(self, k, ints, rows, write, arr):
        """Positional I/O of ``arr`` ((integrations, groups, rows, all columns), C order) at
        integrations ``ints`` and rows ``rows`` (slices, step 1) of file ``k``."""
        nints, ngroups, ny, nx = self.shape
        i0, i1, _ = ints.indices(nints)
        r0, r1, _ = rows.indices(ny)
        item = np.dtype(self.DTYPES[k]).itemsize
        flat = arr.reshape(-1, (r1 - r0) * nx)
        # whole frames are one contiguous range: one call; else one per (integration, group)
        if r1 - r0 == ny:
            spans = [(flat.reshape(-1), i0 * ngroups * ny * nx * item)]
        else:
            spans = [
                (flat[n], ((i * ngroups + g) * ny + r0) * nx * item)
                for n, (i, g) in enumerate((i, g) for i in range(i0, i1) for g in range(ngroups))
            ]
        from .io import positional

        path = self.paths[k]
        try:
            fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
            try:
                for buf, offset in spans:
                    if not positional(fd, buf, offset, write):
                        raise OSError(errno.EIO, "the scratch file ended early", str(path))
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk, say: name the scratch file
            raise OSError(exc.errno, exc.strerror, str(path)) from None

    @staticmethod
    def _bands(shape, where):
        """(integrations, rows) when ``where`` is whole integrations or full-width row bands."""
        where = where if isinstance(where, tuple) else (where,)
        where = where + (slice(None),) * (4 - len(where))
        ints, groups, rows, cols = where
        if all(isinstance(s, slice) and s.step in (None, 1) for s in where):
            full = lambda s, n: s.indices(n)[:2] == (0, n)  # noqa: E731
            if full(groups, shape[1]) and full(cols, shape[3]):
                return ints, rows
        return None

    def write(self, where, data, groupdq):
        bands = self._bands(self.shape, where)
        for k, arr in enumerate((data, groupdq)):
            if arr is None:
                continue
            if bands is not None and arr.flags.c_contiguous:
                self._planes(k, *bands, True, arr)
            else:
                mm = self._map(k, "r+")
                mm[where] = arr  # no flush: the page cache serves the reads of pass 2
                del mm

    def read(self, rows, cols):
        """Data and GROUPDQ of all integrations and groups for ``rows`` x ``cols`` (slices)."""
        nints, ngroups, ny, nx = self.shape
        nrows, ncols = len(range(ny)[rows]), len(range(nx)[cols])
        bands = self._bands(self.shape, (slice(None), slice(None), rows, cols))
        out = []
        for k, dtype in enumerate(self.DTYPES):
            arr = np.empty((nints, ngroups, nrows, ncols), dtype)
            if bands is not None:
                self._planes(k, *bands, False, arr)
                out.append(arr)
                continue
            # pages touched by one integration: every row of every group, whole pages
            row_bytes = ncols * np.dtype(dtype).itemsize
            touched = ngroups * nrows * (row_bytes // 4096 + 2) * 4096
            batch = max(1, self.batch_bytes // touched)
            for i0 in range(0, nints, batch):
                mm = self._map(k, "r")
                arr[i0 : i0 + batch] = mm[i0 : i0 + batch, :, rows, cols]
                del mm
            out.append(arr)
        return out

    def read_all(self):
        """The whole ramp, memory-mapped read-only (for writing the _ramp product)."""
        return self._map(0, "r"), self._map(1, "r")
