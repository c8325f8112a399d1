"""Parameter sweeps (``tsogpu sweep``): one segment, many parameter sets, the shared part once.

A grid (``STEP.PARAM=V1,V2,...``, one or more, their cartesian product) changes the steps
from the first one a grid parameter belongs to (in the order of :func:`tsogpu.config.
step_order`) onwards. The steps before it run once per segment, and their ramp is kept: in
memory (on the backend: a GPU's stays on the device) when it fits the memory budget beside a
run, else on disk in the chunked runner's scratch ramp. Each grid point then runs only the
later steps on that ramp (:func:`tsogpu.pipeline.steps.run_prejump` leaves out the steps the
ramp has a status for) and writes its products with the driver's writer into
``OUT/<STEP.PARAM=VALUE>[,<STEP.PARAM=VALUE>...]/``: bit for bit those of ``tsogpu run
--set STEP.PARAM=VALUE ...`` of the same point. ``OUT/sweep.csv`` sums each point up
(:mod:`tsogpu.sweep_summary`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .config import STEP_ORDER, STEP_PARAMS, PipelineConfig, step_order
from .errors import ConfigError
from .pipeline.chunked import ChunkedRun

log = logging.getLogger(__name__)

# refpix's parameters that make the trace mask, which superbias.scale uses too
TRACE_MASK_PARAMS = ("sky_mask", "sky_threshold", "sky_mask_grow")


@dataclass(frozen=True)
class Point:
    """One grid point: ``settings`` ((step, param, value as given), ...) on the base config,
    giving ``config``."""

    settings: tuple
    config: PipelineConfig

    @property
    def name(self):
        """The point's folder: ``STEP.PARAM=VALUE`` joined by commas (``/`` and other
        characters a folder name cannot hold %-escaped)."""
        return ",".join(
            f"{step}.{param}={urllib.parse.quote(value, safe='=+-.:[]_,')}"
            for step, param, value in self.settings
        )


def split_values(text):
    """``4,5,6`` -> ['4', '5', '6']; commas inside brackets belong to a value (``[0,1],[2]``)."""
    values, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return values


def parse_grid(items, base, sets=()):
    """The grid points of ``--grid STEP.PARAM=V1,V2,...`` items on ``base``, in the order of
    their cartesian product (the first grid's values vary slowest).

    ``sets``: the ``--set`` items ``base`` was made with; a parameter both set and swept is an
    error. Each value goes through ``--set``'s conversion and the parameter ranges, each point
    through the configuration's own checks, before any work.

    Raises
    ------
    ConfigError
        Naming the ``--grid`` item and what is wrong: no grid, a malformed item, an unknown
        step or parameter, no values, a value given twice, a value out of range, a parameter
        swept twice or also ``--set``, a skipped step, or a point whose values conflict.
    """
    if not items:
        raise ConfigError("sweep: give at least one --grid STEP.PARAM=V1,V2,...")
    if base.exposure_wide:
        raise ConfigError("sweep: exposure_wide (--exposure-wide) is not supported by sweep")
    set_params = {s.split("=", 1)[0].strip() for s in sets}
    axes, seen = [], {}
    for item in items:
        lhs, sep, text = item.partition("=")
        step, dot, param = lhs.strip().partition(".")
        if not sep or not dot or not param.strip():
            raise ConfigError(f"--grid {item!r}: expected STEP.PARAM=V1,V2,...")
        step, param = step.strip(), param.strip()
        where = f"--grid {item!r}"
        if step not in STEP_PARAMS:
            raise ConfigError(f"{where}: unknown step {step!r}; steps are {', '.join(STEP_ORDER)}")
        names = [f.name for f in dataclasses.fields(STEP_PARAMS[step])]
        if param not in names:
            known = ", ".join(names) or "none"
            raise ConfigError(
                f"{where}: step {step!r} has no parameter {param!r} (parameters: {known})"
            )
        key = f"{step}.{param}"
        if key in seen:
            raise ConfigError(f"{where}: {key} is swept twice (also --grid {seen[key]!r})")
        if key in set_params:
            raise ConfigError(f"{where}: {key} is also given with --set; give it in one place")
        if step in base.skip:
            raise ConfigError(
                f"{where}: step {step!r} is skipped (--skip), so {key} changes nothing"
            )
        seen[key] = item
        values = split_values(text)
        if not any(values):
            raise ConfigError(f"{where}: no values; expected {key}=V1,V2,...")
        if "" in values:
            raise ConfigError(f"{where}: an empty value; expected {key}=V1,V2,...")
        converted = []
        for value in values:
            try:
                config = base.with_overrides(sets=[f"{key}={value}"])
            except ConfigError as exc:
                raise ConfigError(f"{where}: {str(exc).removeprefix('--set ')}") from None
            got = getattr(config.params(step), param)
            if got in converted:
                raise ConfigError(f"{where}: the value {got!r} is given twice")
            converted.append(got)
        axes.append([(step, param, value) for value in values])
    points = []
    for settings in itertools.product(*axes):
        try:
            config = base.with_overrides(sets=[f"{s}.{p}={v}" for s, p, v in settings])
        except ConfigError as exc:
            name = ",".join(f"{s}.{p}={v}" for s, p, v in settings)
            raise ConfigError(f"--grid: the point {name}: {exc}") from None
        points.append(Point(tuple(settings), config))
    return points


def first_changed_step(points, instrument=None):
    """The first step, in ``instrument``'s order, whose result a grid parameter changes: the
    step of the earliest parameter; superbias where a trace-mask parameter of refpix is swept
    and superbias.scale takes its sky pixels from that mask."""
    from .pipeline.segment_wide import bias_scale_mode

    order = step_order(instrument)
    changed = {step for step, _, _ in points[0].settings}
    for step, param, _ in points[0].settings:
        if step == "refpix" and param in TRACE_MASK_PARAMS:
            if any(bias_scale_mode(p.config) for p in points):
                changed.add("superbias")
    # a parameter of a step this instrument does not run (rscd.* for NIRSpec) changes nothing
    return min((s for s in changed if s in order), key=order.index, default="ramp_fit")


@dataclass
class Done:
    """A point of one segment done: its products and the seconds it took (its steps, then
    its writing, which may overlap the next point's steps)."""

    point: Point
    uncal: Path
    written: list
    result: object  # tsogpu.pipeline.Result
    seconds: float


def sweep_file(uncal_path, out_dir, points, on_point=None):
    """Every grid point of ``points`` on one uncal segment, the shared steps once; each
    point's products in ``out_dir / point.name``. ``on_point(Done)`` is called as each point
    is written (the Result is dropped after it), on the thread that writes the points, one
    at a time and in order, while the next point runs. Returns the number of points done."""
    from .backends import backend_ops, select_backend
    from .io import reffiles, uncal
    from .parameter_ranges import check_against_segment
    from .pipeline.driver import check_whole_segment
    from .pipeline.planning import gib
    from .pipeline.preflight import bytes_needed, check_space, check_writable

    out_dir = Path(out_dir)
    base = points[0].config
    backend = select_backend(base.backend)
    exposure, shape, zeroframe = uncal.inspect_uncal(uncal_path)
    name = Path(uncal_path).name
    for point in points:  # before any work: values this file's ramp cannot take
        check_against_segment(point.config, shape, f"{name} ({point.name})")
    refs, context = reffiles.segment_references(uncal_path, base)
    ops = backend_ops(backend, base.threads)
    order = step_order(exposure.instrument)
    first = first_changed_step(points, exposure.instrument)
    prejump = order[: order.index("jump")]
    done = prejump[: order.index(first)] if first in prejump else prejump
    cache_config = replace(base, skip=base.skip | frozenset(s for s in order if s not in done))
    log.info(
        "%s: %d point(s); %s once, then from %s on for each",
        name,
        len(points),
        ", ".join(done) or "no step",
        first,
    )
    # the cached ramp (float32 data, uint8 GROUPDQ) besides what one run needs
    cache_bytes = 5 * int(np.prod(shape, dtype=np.int64))
    # the memos of jump and ramp fitting where every point runs them on the same ramp (ramp
    # fitting's float64 term and slope and uint8 flags per integration and pixel; jump's 5
    # float64 words per sigma-clip column at most, and a median, sigma and flag per pixel)
    nints, ngroups, ny, nx = (int(n) for n in shape)
    same_ramp = done == prejump and ops.keeps_memo
    memo_bytes = (17 * nints + 40 * (ngroups - 1) + 17) * ny * nx if same_ramp else 0
    in_memory, plan, budget, extras = _memory_plan(
        shape, zeroframe, name, points, ops, cache_bytes, memo_bytes
    )
    memo, overlap = extras
    check_writable(out_dir)
    needed = sum(bytes_needed(shape, p.config, plan) for p in points) + cache_bytes
    check_space(out_dir, needed)
    if not in_memory:  # emicorr: neither the cached steps nor a point may chunk it
        for config in (cache_config, *(p.config for p in points)):
            check_whole_segment(uncal_path, exposure, shape, config, plan)
    where = "in memory" if in_memory else f"in a scratch file (budget {gib(budget)})"
    log.info("%s: the ramp after %s is kept %s", name, done[-1] if done else "reading", where)
    if memo:
        log.info(
            "%s: jump keeps what the rejection threshold does not change, ramp fitting what "
            "the jump flags do not",
            name,
        )
    if overlap:
        log.info("%s: each point's products are written while the next point runs", name)
    if in_memory:
        sweep = _InMemory(uncal_path, exposure, shape, refs, cache_config, done, ops, points)
    else:
        sweep = _Chunked(
            uncal_path, exposure, shape, refs, cache_config, done, ops, plan, out_dir,
            by_tiles=done == prejump,
        )  # fmt: skip
    sweep.keep_memos(memo)

    def write_point(k, point, result, run_seconds):  # on the writing thread, in order
        out = out_dir / point.name
        written, write_seconds = _write(uncal_path, out, result, point, backend, refs, context, ops)
        seconds = run_seconds + write_seconds
        log.info("%s: point %d/%d %s in %.2f s", name, k, len(points), point.name, seconds)
        if on_point is not None:
            on_point(Done(point, Path(uncal_path), written, result, seconds))

    pending = None  # the point being written (its future)
    with ThreadPoolExecutor(1, thread_name_prefix="sweep-write") as writer:
        try:
            for k, point in enumerate(points, 1):
                t0 = time.perf_counter()
                try:
                    result = sweep.run_point(point)
                finally:  # the point before this one is written even if this one fails
                    if pending is not None:
                        pending.result()
                        pending = None
                run_seconds = time.perf_counter() - t0
                pending = writer.submit(write_point, k, point, result, run_seconds)
                del result
                if not overlap:
                    pending.result()
                    pending = None
            if pending is not None:
                pending.result()
        finally:
            sweep.close()
    return len(points)


def _memory_plan(shape, zeroframe, name, points, ops, cache_bytes, memo_bytes):
    """(in_memory, plan, budget, (memo, overlap)): whether the cached ramp (``cache_bytes``)
    and a run of the whole segment fit the memory budget together, else the chunked plan the
    ramp is kept on disk for; the budget the runs get. Then, each where the rest of the
    budget holds it without changing how the ramp is kept: the memos of jump and ramp fitting
    (``memo_bytes``, 0: none), and writing a point's products (its Result) while the next
    point runs."""
    from .pipeline.planning import default_memory_budget, most_samples, plan_chunks
    from .pipeline.preflight import product_bytes

    base = points[0].config
    budget = base.max_memory or default_memory_budget()
    limit = ops.memory_limit()
    budget = budget if limit is None else min(budget, limit)
    threads = 1 if ops.one_chunk_at_a_time else None
    most = most_samples(ops.name)  # the native kernels' chunks and tiles, as a run's

    def whole_fits(room):  # a run of the whole segment fits in room beside the cached ramp
        if room <= cache_bytes:
            return False
        try:
            planning = replace(base, max_memory=room - cache_bytes)
            return plan_chunks(shape, planning, zeroframe, name, threads, most).in_memory
        except ConfigError:
            return False

    def plan_for(room):
        return plan_chunks(shape, replace(base, max_memory=room), zeroframe, name, threads, most)

    in_memory = whole_fits(budget)
    plan = plan_for(budget)
    result_bytes = max(product_bytes(shape, p.config) for p in points)
    extras = []
    for nbytes in (memo_bytes, result_bytes):
        fits = 0 < nbytes < budget and whole_fits(budget - nbytes) == in_memory
        if fits:
            try:
                plan = plan_for(budget - nbytes)
                budget -= nbytes
            except ConfigError:
                fits = False
        extras.append(fits)
    return in_memory, plan, budget, tuple(extras)


def _write(uncal_path, out, result, point, backend, refs, context, ops):
    """A point's products in ``out``, as ``tsogpu run --out out`` writes them; (the paths
    written, the seconds it took)."""
    t0 = time.perf_counter()
    from .pipeline.driver import write_products
    from .pipeline.preflight import check_writable
    from .pipeline.resume import input_hash, remove_leftovers

    check_writable(out)
    removed = remove_leftovers(uncal_path, out)
    if removed:
        log.info("%s: removed what a killed run left: %s", out, ", ".join(removed))
    ref_paths = {t: "N/A" if r is None else r.path for t, r in refs.items()}
    inputs = input_hash(uncal_path, point.config, ref_paths)
    written = write_products(
        uncal_path, out, result, point.config, backend, refs, context, ops, inputs
    )
    return written, time.perf_counter() - t0


class _InMemory:
    """The cached ramp held on the backend (a GPU's on the device); each point runs the later
    steps on it with :func:`tsogpu.pipeline.run_segment`."""

    def __init__(self, uncal_path, exposure, shape, refs, cache_config, done, ops, points):
        from .algorithms import oneoverf
        from .io import uncal
        from .pipeline import run_prejump
        from .pipeline.segment_wide import sky_trace_mask

        self.refs, self.ops = refs, ops
        raw = uncal.read_uncal(uncal_path, raw=ops.wants_raw_counts)
        lmf = []  # made once, where a trace mask needs it

        def mask(config):  # from the raw counts, as a run makes it; it may depend on the point
            def last_minus_first():
                if not lmf:
                    lmf.append(oneoverf.last_minus_first(raw.data))
                return lmf[0]

            return sky_trace_mask(config, shape, last_minus_first, None, str(uncal_path))

        self.masks = {point.name: mask(point.config) for point in points}
        first = replace(raw, trace_mask=mask(cache_config))
        raw = None  # noqa: F841 (the closure's: the counts are freed once converted)
        lmf.clear()
        seg, dev_refs = ops.to_device(first, refs)
        del first
        cached = run_prejump(seg, dev_refs, cache_config, ops=ops)
        cached.step_status = {s: v for s, v in cached.step_status.items() if s in done}
        self.cached = cached
        self.memo = None

    def keep_memos(self, keep):
        """Whether jump and ramp fitting keep a memo between the points (each runs them on the
        same ramp)."""
        self.memo = {} if keep else None

    def run_point(self, point):
        from .pipeline import run_segment

        seg = replace(
            self.cached,
            trace_mask=self.masks[point.name],
            step_status=dict(self.cached.step_status),
        )
        return run_segment(seg, self.refs, point.config, ops=self.ops, memo=self.memo)

    def close(self):
        self.cached = self.memo = None


class _Chunked:
    """The cached ramp in the chunked runner's scratch ramp on disk: pass 1 of
    :class:`tsogpu.pipeline.chunked.ChunkedRun` with the shared steps only; each point then
    runs both passes with its pass 1 reading that ramp (:class:`_FromCache`)."""

    def __init__(
        self, uncal_path, exposure, shape, refs, cache_config, done, ops, plan, scratch, by_tiles
    ):
        """``by_tiles``: whether the points read the ramp by pass 2's tiles only (the scratch
        ramp is kept by tiles then; else as it is in memory, for the points' pass 1)."""
        from .pipeline.planning import STREAMED_CHUNKS

        if plan.threads == 1:  # as the driver streams one chunk at a time
            plan = replace(plan, ints=min(plan.ints, -(-shape[0] // STREAMED_CHUNKS)))
        self.args = (uncal_path, exposure, shape, refs)
        self.plan, self.ops, self.scratch = plan, ops, Path(scratch)
        self.run = ChunkedRun(
            *self.args, cache_config, plan, self.scratch, ops, None, tile_layout=by_tiles
        )
        first = self.run.pass_one(_quiet)
        self.status = {s: v for s, v in first.step_status.items() if s in done}
        self.prejump = list(first.step_status)  # pass 1's steps
        self.first = first

    def keep_memos(self, keep):
        """Whether jump and ramp fitting keep a memo per tile between the points that run
        pass 2 straight on the cached ramp (each runs them on the same ramp)."""
        self.run.memos = {} if keep else None

    def segment(self, ints):
        """The cached ramp's integrations ``ints`` as a Segment, as pass 1 left them."""
        from .segment import Segment

        run, first = self.run, self.first
        data, groupdq = run.ramp.read_all()
        levels = run.sky_levels.levels
        if levels is not None:
            offsets = None if levels.offsets is None else levels.offsets[ints]
            levels = replace(levels, lines=levels.lines[ints], offsets=offsets)
        seg = Segment(
            data=np.array(data[ints]),
            groupdq=np.array(groupdq[ints]),
            pixeldq=first.pixeldq.copy(),
            exposure=run.exposure,
            zeroframe=None if run.zeroframe is None else run.zeroframe[ints].copy(),
            average_dark_current=first.average_dark_current,
            source=str(run.uncal_path),
            step_status=dict(self.status),
            first_integration=ints.start,
            one_over_f=levels,
        )
        del data, groupdq  # the maps
        return seg

    def bias_scale(self, ints):
        """superbias.scale's factors of integrations ``ints`` where superbias is cached."""
        from .algorithms.superbias import Factors

        if self.status.get("superbias") != "COMPLETE" or not self.run.bias_mode:
            return None
        f = self.run.bias_factors
        return Factors(applied=f.applied[ints], measured=f.measured[ints])

    def run_point(self, point):
        if set(self.status) == set(self.prejump) and not _keeps_ramp(point.config):
            # nothing before jump to redo: pass 2 straight on the cached ramp (which it only
            # reads where the point keeps no ramp), with what pass 1 gathered
            run = copy.copy(self.run)
            run.config = point.config
            run.pass_two_busy = dict.fromkeys(run.pass_two_busy, 0.0)  # this point's
            return run.pass_two(self.first, _quiet)
        run = _FromCache(*self.args, point.config, self.plan, self.scratch, self.ops, None)
        run.cache = self  # from here on, pass 1 reads the cached ramp
        try:
            return run.pass_two(run.pass_one(_quiet), _quiet)
        finally:
            run.ramp.close()

    def close(self):
        self.run.ramp.close()
        self.run.memos = None


def _keeps_ramp(config):
    """Whether a run of ``config`` writes the _ramp product (its pass 2 writes GROUPDQ into
    the scratch ramp then)."""
    return config.save_ramp or "ramp_fit" in config.skip


def _quiet(stage, done, total):
    """No progress shown (each point is logged)."""


class _FromCache(ChunkedRun):
    """A point's chunked run whose pass 1 reads the cached ramp (``cache``, a
    :class:`_Chunked`) instead of the uncal file once ``cache`` is set; its constructor still
    reads the file for what is made from the raw counts (the trace mask, superbias.scale's
    mean factors), as a run does. The cached steps keep their statuses (run_prejump leaves
    them out) and superbias.scale's factors."""

    cache = None

    def read(self, ints, out=None):
        if self.cache is None:
            return super().read(ints, out)
        return self.cache.segment(ints)

    def write(self, ints, out):
        factors = None if self.cache is None else self.cache.bias_scale(ints)
        if factors is not None:
            out[0].bias_scale = factors
        return super().write(ints, out)
