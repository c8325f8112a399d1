"""The driver: one uncal file in, its products out, within the memory budget.

:func:`process_file` reads the file's keywords and reference files, plans the run
(:mod:`.planning`), runs it whole (:mod:`.in_memory`) or chunked (:mod:`.chunked`), retrying
in smaller chunks when memory runs out, and writes every product atomically with its
provenance and input hash (:mod:`.resume`).
"""

from __future__ import annotations

import errno
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..backends import backend_ops, select_backend
from ..config import PipelineConfig
from ..errors import BackendError, ConfigError, InputError, OutputError
from ..parameter_ranges import check_against_segment
from .chunked import run_chunked
from .in_memory import run_segment
from .planning import (
    BYTES_PER_SAMPLE_IN_MEMORY,
    STREAMED_CHUNKS,
    default_memory_budget,
    gib,
    most_samples,
    plan_chunks,
    smaller_plan,
)
from .preflight import bytes_needed, check_space, check_writable, no_space, space_message
from .resume import input_hash, remove_leftovers
from .steps import ramp_steps

log = logging.getLogger(__name__)


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
        ``refpix.sky_method``, ``_biasscale`` with ``superbias.scale``, and ``_removed`` for MIRI
        (what each MIRI step removed from each integration).
    """
    from ..io import products, reffiles, uncal

    config = config or PipelineConfig()
    backend = select_backend(config.backend)
    progress = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    check_writable(out_dir)
    removed = remove_leftovers(uncal_path, out_dir)
    if removed:
        log.info("%s: removed what a killed run left: %s", uncal_path, ", ".join(removed))
    try:
        exposure, shape, zeroframe = uncal.inspect_uncal(uncal_path)
    except MemoryError as exc:  # not even the file's map fits
        raise BackendError(
            f"{exc}: out of memory; free memory or use a machine with more"
        ) from None
    log.info(
        "%s: %s %s %s, %d ints x %d groups x %d x %d",
        uncal_path,
        exposure.instrument,
        exposure.detector,
        exposure.exp_type,
        *shape,
    )
    # before any reference file or pixel is read: parameters this file's ramp cannot take
    check_against_segment(config, shape, Path(uncal_path).name)
    refs, context = reffiles.segment_references(uncal_path, config)
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
    threads = 1 if ops.one_chunk_at_a_time else None
    limit = ops.memory_limit()  # a GPU's: chunks that fit its free memory
    budget = config.max_memory or default_memory_budget()
    planning = config
    if limit is not None and limit < budget:
        log.info("%s: the device has %s free: the budget is that", uncal_path, gib(limit))
        planning = replace(config, max_memory=limit)
    plan = plan_chunks(
        shape,
        planning,
        zeroframe,
        source=str(uncal_path),
        threads=threads,
        most=most_samples(ops.name),
    )
    needed = bytes_needed(shape, config, plan)
    check_space(out_dir, needed)
    # the products' metadata (stdatamodels' schemas: seconds) is read while the steps run
    side = ThreadPoolExecutor(1)
    meta = side.submit(products.load_meta, uncal_path)
    side.shutdown(wait=False)
    try:
        result = run_with_retries(
            uncal_path,
            exposure,
            shape,
            refs,
            config,
            plan,
            out_dir,
            progress,
            ops,
            shared,
            planning,
            zeroframe,
        )
        meta.result()  # its errors, if any, surface here
        t_write = time.perf_counter()
        written = write_products(
            uncal_path, out_dir, result, config, backend, refs, context, ops, inputs, shared
        )
    except Exception as exc:
        if no_space(exc):
            raise OutputError(space_message(out_dir, needed)) from None
        raise
    log.info(
        "%s: products written in %.2f s; done in %.2f s",
        uncal_path,
        time.perf_counter() - t_write,
        time.perf_counter() - t0,
    )
    return written


def write_products(
    uncal_path, out_dir, result, config, backend, refs, context, ops, inputs, shared=None
):
    """Every product ``result`` gives (:func:`products_of`), with its provenance, written
    atomically and renamed together into ``out_dir``; the paths written.

    ``refs``: the segment's references (reftype -> Reference or None), ``context``: the CRDS
    context, ``inputs``: the input hash (:func:`.resume.input_hash`).
    """
    from ..io import atomic, products

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
    wanted = products_of(result, config)
    with atomic.product_set():  # all of the segment's products, or none
        return [
            kind.write(out_dir / products.product_name(uncal_path, sfx), uncal_path, result, prov)
            for sfx, kind in products.PRODUCT_KINDS.items()
            if sfx in wanted
        ]


def run_with_retries(
    uncal_path,
    exposure,
    shape,
    refs,
    config,
    plan,
    out_dir,
    progress,
    ops,
    shared,
    planning,
    zeroframe,
):
    """:func:`run_plan`, retried in smaller chunks while memory runs out. The scratch ramp is
    anonymous files in ``out_dir`` (:class:`.scratch.ScratchRamp`): nothing to remove."""
    threads = 1 if ops.one_chunk_at_a_time else None
    while True:
        try:
            return run_plan(
                uncal_path, exposure, shape, refs, config, plan, out_dir, progress, ops, shared
            )
        except (*ops.out_of_memory, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.ENOMEM:  # mmap's ENOMEM only
                raise
            ops.release_memory()
            what = f"{uncal_path}: out of {'GPU ' if ops.name == 'cupy' else ''}memory ({exc})"
            plan = smaller_plan(plan, shape, planning, zeroframe, threads, most_samples(ops.name))
            if plan is None:
                raise BackendError(
                    f"{what}, even in the smallest chunks; free memory or use a machine with more"
                ) from None
            log.warning("%s; retrying in smaller chunks (a budget of %s)", what, gib(plan.budget))


def check_whole_segment(uncal_path, exposure, shape, config, plan):
    """Raise ConfigError where a step that needs the whole segment at once would run on a
    chunked ``plan``: MIRI's emicorr, which jwst fits over every integration of a segment."""
    emicorr = "emicorr" in ramp_steps(exposure.instrument) and "emicorr" not in config.skip
    if emicorr and not plan.in_memory:
        need = gib(BYTES_PER_SAMPLE_IN_MEMORY * math.prod(shape))
        raise ConfigError(
            f"{uncal_path}: emicorr fits the EMI over every integration of the segment, so "
            f"the segment must fit in memory (about {need} for it; the budget is "
            f"{gib(plan.budget)}): raise --max-memory, or skip emicorr"
        )


def run_plan(uncal_path, exposure, shape, refs, config, plan, scratch, progress, ops, shared):
    """The steps over the whole segment as ``plan`` says: in memory, or chunked."""
    from ..io import uncal

    check_whole_segment(uncal_path, exposure, shape, config, plan)
    if plan.in_memory:
        log.info("memory budget %s: whole segment in memory", gib(plan.budget))
        steps = (*ramp_steps(exposure.instrument), "jump", "ramp_fit")
        steps = [s for s in steps if s not in config.skip]
        done = iter(range(1, len(steps) + 1))
        return run_segment(
            uncal.read_uncal(uncal_path, raw=ops.wants_raw_counts),
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
        gib(plan.budget),
        plan.ints,
        plan.rows,
        plan.cols,
        plan.halo,
        plan.threads,
    )
    return run_chunked(
        uncal_path, exposure, shape, refs, config, plan, Path(scratch), progress, ops, shared
    )


def products_of(result, config):
    """The suffixes of the products a segment's ``result`` gives (``io.products.PRODUCT_KINDS``):
    the rate products where ramps were fitted, the ramp where they were not or with
    ``save_ramp``, and the options' side products where they ran."""
    fitted = result.rateints is not None
    present = {
        "ramp": not fitted or config.save_ramp,
        "rateints": fitted,
        "rate": fitted,
        "oneoverf": result.one_over_f is not None,
        "biasscale": result.bias_scale is not None,
        "removed": result.removed is not None,
    }
    return {suffix for suffix, there in present.items() if there}
