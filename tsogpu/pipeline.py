"""The Stage-1 order over one segment (jwst Detector1Pipeline, near-infrared branch).

``run_segment`` is the array core (NumPy only). ``process_file`` adds the file side: read the
uncal, resolve reference files, run, write products.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from . import __version__
from .algorithms import (
    dark_current,
    dq_init,
    group_scale,
    linearity,
    refpix,
    saturation,
    superbias,
)
from .config import STEP_ORDER, STEP_REFTYPES, PipelineConfig
from .errors import BackendError, InputError

log = logging.getLogger(__name__)

# steps run on the ramp in this order; gain_scale acts on rate products (ramp fitting)
RAMP_STEPS = STEP_ORDER[: STEP_ORDER.index("dark_current") + 1]
NIR_INSTRUMENTS = ("NIRSPEC", "NIRISS", "NIRCAM")


def select_backend(name):
    """Resolve ``numpy | cupy | auto`` to the backend that will run; no silent fallback."""
    if name == "numpy":
        return "numpy"
    if name == "cupy":
        raise BackendError(
            "--backend cupy: the CUDA backend is not part of this tsogpu version yet; "
            "use --backend numpy"
        )
    log.info("backend auto: using numpy (no CUDA backend in this version)")
    return "numpy"


def required_reftypes(config):
    """Reference types the steps that will run need, in step order, as jwst's steps list them.

    The saturation step lists superbias (for its group-2 test) as jwst's does; give
    ``superbias=N/A`` to run saturation without it.
    """
    needed = []
    for step in RAMP_STEPS:
        if step not in config.skip:
            needed += [t for t in STEP_REFTYPES[step] if t not in needed]
    return needed


def run_segment(segment, refs, config=None, on_step=None):
    """Run the pre-jump steps on ``segment``.

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
            log.info("%s: skipped by request", step)
            continue
        main_ref = STEP_REFTYPES[step][0] if STEP_REFTYPES[step] else None
        if main_ref is not None and refs.get(main_ref) is None:
            seg.step_status[step] = "SKIPPED"  # reference given as N/A, as jwst skips
            log.info("%s: skipped, %s reference is N/A", step, main_ref)
            continue
        t0 = time.perf_counter()
        status = _STEPS[step](seg, refs, config.params(step))
        seg.step_status[step] = status
        log.info("%s: %s in %.2f s", step, status, time.perf_counter() - t0)
        if on_step is not None:
            on_step(step, seg)
    return seg


def _group_scale(seg, refs, params):
    exp = seg.exposure
    if not group_scale.needs_group_scale(exp.nframes, exp.frame_divisor):
        return "SKIPPED"
    seg.data = group_scale.group_scale(seg.data, exp.nframes, exp.frame_divisor)
    return "COMPLETE"


def _dq_init(seg, refs, params):
    seg.pixeldq, seg.groupdq = dq_init.dq_init(seg.pixeldq, seg.groupdq, refs["mask"].arrays["dq"])
    return "COMPLETE"


def _saturation(seg, refs, params):
    sat = refs["saturation"]
    bias = refs["superbias"].arrays["data"] if refs.get("superbias") is not None else None
    seg.groupdq, seg.pixeldq, seg.zeroframe = saturation.flag_saturation(
        seg.data,
        seg.groupdq,
        seg.pixeldq,
        sat.arrays["data"],
        sat.arrays["dq"],
        bias=bias,
        zeroframe=seg.zeroframe,
        nframes=seg.exposure.nframes,
        n_pix_grow_sat=params.n_pix_grow_sat,
        use_readpatt=params.use_readpatt,
    )
    return "COMPLETE"


def _superbias(seg, refs, params):
    ref = refs["superbias"]
    seg.data, seg.pixeldq, seg.zeroframe = superbias.subtract_superbias(
        seg.data, seg.pixeldq, ref.arrays["data"], ref.arrays["dq"], zeroframe=seg.zeroframe
    )
    return "COMPLETE"


def _refpix(seg, refs, params):
    seg.data, seg.zeroframe, status = refpix.correct_refpix(
        seg.data, seg.pixeldq, seg.exposure, params, zeroframe=seg.zeroframe
    )
    return status


def _linearity(seg, refs, params):
    ref = refs["linearity"]
    seg.data, seg.pixeldq, seg.zeroframe = linearity.correct_linearity(
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


def _dark_current(seg, refs, params):
    ref = refs["dark"]
    exp = seg.exposure
    out = dark_current.subtract_dark(
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
    seg.average_dark_current = dark_current.average_dark_current(
        seg.pixeldq.shape,
        params.average_dark_current,
        ref.arrays.get("average_dark_current"),
        ref.header.get("AVDRKCUR"),
    )
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


def process_file(uncal_path, out_dir, config=None):
    """Read ``uncal_path``, run the pipeline, write the products into ``out_dir``.

    Returns the list of product paths written.
    """
    from .io import products, reffiles, uncal

    config = config or PipelineConfig()
    backend = select_backend(config.backend)
    t0 = time.perf_counter()
    segment = uncal.read_uncal(uncal_path)
    log.info(
        "%s: %s %s %s, %d ints x %d groups x %d x %d",
        uncal_path,
        segment.exposure.instrument,
        segment.exposure.detector,
        segment.exposure.exp_type,
        *segment.shape,
    )
    header = uncal.read_primary_header(uncal_path)
    refs, context = reffiles.load_references(
        segment.exposure, required_reftypes(config), config.refs, header=header
    )
    log.info("read in %.2f s", time.perf_counter() - t0)
    result = run_segment(segment, refs, config)
    prov = products.Provenance(
        version=__version__,
        backend=backend,
        params=config.as_dict(),
        refs={t: (r.name if r is not None else "N/A") for t, r in refs.items()},
        crds_context=context,
        step_status=result.step_status,
    )
    out = products.write_ramp(
        Path(out_dir) / products.product_name(uncal_path, "ramp"), result, prov
    )
    log.info("wrote %s", out)
    return [out]
