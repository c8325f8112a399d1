"""The chunked runner: a segment larger than its memory budget, in two passes.

Pass 1 reads the segment a chunk of integrations at a time and runs the steps before jump on
it (each of them works on one integration at a time), into a :class:`ScratchRamp` on disk,
gathering on the way what later steps need from the whole segment: jump's all-DO_NOT_USE
planes, ramp fitting's whole-exposure saturation test, the options' levels and factors.
Where chunks go one at a time (a GPU, the native kernels) they stream: the next chunk is read
and uploaded, and the last one copied back and written, while the current one's kernels run
(:func:`tsogpu.flow.stream`). Pass 2 reads the scratch ramp a tile of pixels at a time, with
the one-pixel halo jump's neighbour flagging needs, and runs jump then ramp fitting on it.
The products equal :func:`tsogpu.pipeline.in_memory.run_segment`'s bit for bit, whatever the
chunks, tiles and threads (tests/test_chunks.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from ..algorithms import jump, oneoverf, ramp_fit, superbias
from ..backends import NumpyOps
from ..config import STEP_ORDER
from ..flow import STAGES, stream
from ..segment import Segment
from . import segment_wide
from .in_memory import Result, levels_to_host, measured_factors, product_to_host, segment_to_host
from .planning import gib, tiles
from .scratch import ScratchRamp
from .steps import (
    NO_FIT,
    JumpCounts,
    first_fitted,
    fit_and_scale,
    fits_likely,
    fitted_groups,
    run_jump,
    run_prejump,
    warn_if_saturated,
)

log = logging.getLogger(__name__)

# sci, err, dq, var_poisson, var_rnoise
PRODUCT_DTYPES = (np.float32, np.float32, np.uint32, np.float32, np.float32)


def _rateints_dtypes(config):
    """The rateints arrays: PRODUCT_DTYPES, then CHI2 with ramp_fit.goodness_of_fit."""
    return PRODUCT_DTYPES + ((np.float32,) if config.params("ramp_fit").goodness_of_fit else ())


@dataclass
class ChunkOutcome:
    """What pass 1 keeps of a chunk besides its ramp (written to the scratch ramp)."""

    saturated: bool  # group 0 SATURATED in every pixel of each of its integrations
    pixeldq: np.ndarray  # ORed over the chunks (MIRI's rscd and firstframe flag by integration)
    average_dark_current: np.ndarray | None
    step_status: dict
    saturation_map: np.ndarray | None  # its own map (saturation.fixed_map), to be combined


class SkyLevels:
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


def run_chunked(
    uncal_path, exposure, shape, refs, config, plan, scratch, progress, ops=NumpyOps, shared=None
):
    """Pass 1 by integrations into a scratch ramp in folder ``scratch``, pass 2 by tiles to the
    products, as ``plan`` (:class:`tsogpu.pipeline.planning.Plan`) cuts them; returns the
    :class:`Result`. ``progress(stage, done, total)`` is called as chunks and tiles complete;
    ``shared``: as for :func:`tsogpu.pipeline.in_memory.run_segment`."""
    run = ChunkedRun(uncal_path, exposure, shape, refs, config, plan, scratch, ops, shared)
    try:
        return run.pass_two(run.pass_one(progress), progress)
    finally:
        run.ramp.close()  # the _ramp product's maps, if any, stay valid


class ChunkedRun:
    """One segment's chunked run: its inputs, its scratch ramp and what pass 1 gathers."""

    def __init__(
        self, uncal_path, exposure, shape, refs, config, plan, scratch, ops, shared,
        tile_layout=True,
    ):  # fmt: skip
        self.uncal_path, self.exposure, self.shape = uncal_path, exposure, shape
        self.refs, self.config, self.plan, self.ops, self.shared = refs, config, plan, ops, shared
        nints, ngroups, ny, nx = shape
        # the pages a tile read maps count against the budget too: a small share per thread
        batch_bytes = min(64 * 2**20, plan.budget // (16 * plan.threads))
        self.tiles = tiles(plan, ny, nx)  # pass 2's
        # the ramp kept by pass 2's windows unless the whole of it is read back for the
        # _ramp product (a run that fits no ramp reads it back from the windows, once)
        windows = None if config.save_ramp or not tile_layout else self.windows()
        self.ramp = ScratchRamp(scratch, shape, batch_bytes=batch_bytes, windows=windows)
        self.dev_refs = ops.to_device(None, refs)[1]
        self.chunks = [slice(i0, min(i0 + plan.ints, nints)) for i0 in range(0, nints, plan.ints)]
        self.all_dnu = np.zeros((nints, ngroups), bool)  # jump's whole-frame plane test
        # MIRI: the planes SATURATED everywhere (the fully-saturated test on the first group
        # fitted, which stcal's MIRI rule may move past group 0)
        self.miri = exposure.instrument.upper() == "MIRI"
        self.all_saturated = np.zeros((nints, ngroups), bool)
        self.zeroframe = None
        self.lock = threading.Lock()
        self.pass_two_busy = dict.fromkeys(("read", "jump", "fit"), 0.0)  # summed over tiles
        # tile (r0, c0) -> jump's and ramp fitting's memo, kept between runs of pass 2 over
        # the same scratch ramp (tsogpu sweep's points; None: none kept)
        self.memos = None
        self.sky_levels = SkyLevels(nints)
        self.removed = None  # MIRI: Segment.removed of the whole segment, chunk by chunk
        self.fixed_map = segment_wide.fixed_map_mode(config)
        self.trace_mask = segment_wide.sky_trace_mask(
            config, shape, self.last_minus_first, shared, str(uncal_path)
        )
        # superbias.scale: the factors each chunk is given (mean over the segment, exposure),
        # and those the chunks' steps measured and applied
        self.bias_mode = segment_wide.bias_scale_mode(config, refs)
        self.bias_given = None
        if self.bias_mode == "exposure":
            self.bias_given = segment_wide.exposure_bias_scale(shared, nints).applied
        elif self.bias_mode == "mean":
            self.bias_given = superbias.applied_factors(self.measure_bias_scale(), "mean")
        self.bias_factors = superbias.Factors(
            applied=np.full((nints, ngroups), np.nan, np.float32),
            measured=np.full((nints, ngroups), np.nan, np.float32),
        )

    # ---- pass 1: the stages of a chunk (tsogpu.flow.stream's read, upload, kernels, ...)
    def read(self, ints, out=None):
        from ..io import uncal

        return uncal.read_uncal(self.uncal_path, ints, raw=True, out=out)

    def upload(self, seg):
        return self.ops.to_device(seg, {})[0]

    def prejump(self, ints, seg):
        """The pre-jump steps on some integrations (``seg``, as uploaded); with the chunk's
        own saturation map where ``saturation.fixed_map`` has no exposure's map."""
        given = None if self.bias_given is None else superbias.Factors(self.bias_given[ints])
        seg = replace(seg, trace_mask=self.trace_mask, bias_scale=given)
        seg = run_prejump(seg, self.dev_refs, self.config, ops=self.ops)
        own_map = self.fixed_map is not None and self.shared is None
        return seg, self.ops.saturation_map(seg.groupdq, self.fixed_map) if own_map else None

    def download(self, out):
        seg, part_map = out
        ops = self.ops
        host = replace(segment_to_host(seg, ops), one_over_f=levels_to_host(seg.one_over_f, ops))
        return host, None if part_map is None else ops.to_host(part_map)

    def write(self, ints, out):
        """A chunk's results (on the host) into the scratch ramp and the segment's arrays."""
        seg, part_map = out
        self.sky_levels.add(ints, seg.one_over_f)
        if seg.removed is not None:
            with self.lock:
                if self.removed is None:
                    self.removed = {}
                for step, values in seg.removed.items():
                    self.removed.setdefault(step, np.full(self.shape[0], np.nan))[ints] = values
        if measured_factors(seg.bias_scale) is not None:
            self.bias_factors.applied[ints] = seg.bias_scale.applied
            self.bias_factors.measured[ints] = seg.bias_scale.measured
        self.ramp.write(np.s_[ints], seg.data, seg.groupdq)
        self.all_dnu[ints] = jump.all_dnu_planes(seg.groupdq)
        if self.miri:
            self.all_saturated[ints] = ramp_fit.saturated_planes(seg.groupdq)
        if seg.zeroframe is not None:
            with self.lock:
                if self.zeroframe is None:
                    self.zeroframe = np.zeros((self.shape[0], *self.shape[2:]), np.float32)
            self.zeroframe[ints] = seg.zeroframe
        return ChunkOutcome(
            ramp_fit.exposure_fully_saturated(seg.groupdq),
            seg.pixeldq,
            seg.average_dark_current,
            seg.step_status,
            part_map,
        )

    def one_chunk(self, ints):
        """All of a chunk's stages, one after the other."""
        return self.write(ints, self.download(self.prejump(ints, self.upload(self.read(ints)))))

    def pass_one(self, progress):
        """Every chunk through the pre-jump steps; the last chunk's outcome, with
        ``saturated``, ``pixeldq`` and ``saturation_map`` made over all chunks."""
        plan, chunks = self.plan, self.chunks
        # saturation.fixed_map: the exposure's map, or the minimum of the chunks' maps
        sat_map = None
        if self.fixed_map is not None and self.shared is not None:
            sat_map = self.shared.saturation_map_for(self.fixed_map)
        saturated = True  # ramp fitting's whole-exposure test
        pixeldq = None
        times = {}
        with ThreadPoolExecutor(plan.threads) as pool:
            if plan.threads > 1:  # each thread reads its chunk
                outcomes = pool.map(self.one_chunk, chunks)
            else:  # one chunk at a time (a GPU, the native kernels): the stages of three overlap
                nbytes = 2 * plan.ints * int(np.prod(self.shape[1:]))  # a chunk's raw counts
                outcomes = stream(
                    chunks,
                    self.read,
                    self.upload,
                    self.prejump,
                    self.download,
                    self.write,
                    self.ops.lanes(),
                    nbytes,
                    times,
                )
            for k, outcome in enumerate(outcomes):
                saturated = saturated and outcome.saturated
                pixeldq = outcome.pixeldq if pixeldq is None else pixeldq | outcome.pixeldq
                if outcome.saturation_map is not None:
                    own = outcome.saturation_map
                    sat_map = own if sat_map is None else np.minimum(sat_map, own)
                progress("pre-jump steps", k + 1, len(chunks))
        if times:
            busy = {s: round(times[s], 3) for s in (*STAGES, "wall")}
            log.info(
                "%s: pass 1 stages, busy seconds (overlapped): %s",
                self.uncal_path,
                json.dumps(busy),
            )
        if sat_map is not None and outcome.step_status.get("saturation") == "COMPLETE":
            saturated = saturated or bool(np.all(sat_map == 0))  # the map flags group 0 everywhere
        return replace(outcome, saturated=saturated, pixeldq=pixeldq, saturation_map=sat_map)

    # ---- pass 2: tiles of pixels
    def pass_two(self, first, progress):
        """Jump and ramp fitting over every tile; the segment's :class:`Result`."""
        nints, ngroups, ny, nx = self.shape
        plan, config = self.plan, self.config
        groups = fitted_groups(self.exposure, config, ngroups, lambda: self.all_dnu)
        g0 = first_fitted(groups)
        saturated = first.saturated if g0 == 0 else bool(np.all(self.all_saturated[:, g0]))
        saturated = warn_if_saturated(
            self.uncal_path, saturated and not fits_likely(config, ngroups)
        )
        fits_ramps = "ramp_fit" not in config.skip and not saturated and groups != NO_FIT
        keep_ramp = config.save_ramp or not fits_ramps
        out = _Outputs(
            rateints=[np.empty((nints, ny, nx), dt) for dt in _rateints_dtypes(config)]
            if fits_ramps
            else None,
            rate=[np.empty((ny, nx), dt) for dt in PRODUCT_DTYPES] if fits_ramps else None,
            pixeldq=first.pixeldq.copy(),
            counts=JumpCounts(),  # of host arrays
            keep_ramp=keep_ramp,
            saturated=saturated,
            groups=groups,
        )
        gain = self.refs.get("gain")
        frame = jump.frame_stats(self.all_dnu, gain.arrays["data"]) if gain is not None else None
        tiles = list(self.tiles)
        planes = {}
        t_start = time.perf_counter()
        # tiles write disjoint parts of the outputs; NumPy releases the GIL in its loops
        with ThreadPoolExecutor(plan.threads) as pool:
            if plan.threads == 1:  # one tile at a time, the next one's ramp read meanwhile
                ramps = self.read_ahead(tiles)
                done = (
                    self.tile(*t, frame, first, out, r) for t, r in zip(tiles, ramps, strict=True)
                )
            else:
                done = pool.map(lambda t: self.tile(*t, frame, first, out), tiles)
            for k, ((r0, c0), (found, status)) in enumerate(zip(tiles, done, strict=True)):
                status_out = status  # the same for every tile
                if found is not None and found.sigclip_planes is not None:
                    planes[r0, c0] = found.sigclip_planes
                progress("jump, ramp fit, gain scale", k + 1, len(tiles))
        if planes:
            # the sigma-clip path resets JUMP in planes that are JUMP/DNU everywhere: a
            # whole-frame test; redo the (rare) tiles whose own test disagreed with it
            whole = np.logical_and.reduce(list(planes.values()))
            for (r0, c0), own in planes.items():
                if not np.array_equal(own, whole):
                    self.tile(r0, c0, replace(frame, sigclip_planes=whole), first, out)
        busy = {s: round(v, 3) for s, v in self.pass_two_busy.items()}
        busy["wall"] = round(time.perf_counter() - t_start, 3)
        log.info(
            "%s: pass 2, %d tiles, busy seconds: %s", self.uncal_path, len(tiles), json.dumps(busy)
        )
        return self.result(first, out, status_out)

    def windows(self):
        """What pass 2 reads, tile by tile: (row slice, column slice)."""
        return [np.s_[ylo:yhi, xlo:xhi] for _, _, ylo, yhi, xlo, xhi in self.tiles.values()]

    def read_tile(self, r0, c0):
        """The scratch ramp's data and GROUPDQ of the tile at (``r0``, ``c0``), its halo too,
        and the seconds the read took."""
        t0 = time.perf_counter()
        _, _, ylo, yhi, xlo, xhi = self.tiles[r0, c0]
        data, groupdq = self.ramp.read(np.s_[ylo:yhi], np.s_[xlo:xhi])
        return data, groupdq, time.perf_counter() - t0

    def read_ahead(self, tiles):
        """Each tile's :meth:`read_tile`, in order, the next one read on a thread while the
        caller works on the one given (planning.READ_AHEAD_BYTES)."""
        with ThreadPoolExecutor(1) as reader:
            ahead = reader.submit(self.read_tile, *tiles[0]) if tiles else None
            for k in range(len(tiles)):
                ramp = ahead.result()
                if k + 1 < len(tiles):
                    ahead = reader.submit(self.read_tile, *tiles[k + 1])
                yield ramp

    def tile(self, r0, c0, frame, first, out, ramp=None):
        """Jump and ramp fitting on the tile at (``r0``, ``c0``) (jump sees its halo too),
        into ``out``; (jump's JumpResult or None, the step statuses). ``ramp``: the tile's
        :meth:`read_tile`, where it was read ahead."""
        ops = self.ops
        r1, c1, ylo, yhi, xlo, xhi = self.tiles[r0, c0]
        window = np.s_[ylo:yhi, xlo:xhi]
        core = np.s_[r0 - ylo : r1 - ylo, c0 - xlo : c1 - xlo]
        data, groupdq, read_seconds = ramp or self.read_tile(r0, c0)
        del ramp
        t1 = time.perf_counter()
        avg_dark = first.average_dark_current
        seg = Segment(
            data=data,
            groupdq=groupdq,
            pixeldq=first.pixeldq[window],
            exposure=self.exposure,
            zeroframe=None if self.zeroframe is None else self.zeroframe[:, ylo:yhi, xlo:xhi],
            average_dark_current=None if avg_dark is None else avg_dark[window],
            source=str(self.uncal_path),
            step_status=dict(first.step_status),
        )
        seg = ops.to_device(seg, {})[0]
        if first.saturation_map is not None:
            sat_map = ops.xp.asarray(first.saturation_map[window])
            segment_wide.apply_saturation_map(seg, sat_map, ops)
        memo = None if self.memos is None else self.memos.setdefault((r0, c0), {})
        window_refs = cut_references(self.dev_refs, window, ops)
        found = run_jump(seg, window_refs, self.config, frame, ops, memo)
        seg = segment_to_host(without_halo(seg, core), ops)
        t2 = time.perf_counter()
        out.counts.add((r0, c0), found, seg.groupdq, core)
        if out.keep_ramp:
            self.ramp.write(np.s_[:, :, r0:r1, c0:c1], None, seg.groupdq)
        out.pixeldq[r0:r1, c0:c1] = seg.pixeldq
        seg = ops.to_device(seg, {})[0]
        core_refs = cut_references(self.dev_refs, np.s_[r0:r1, c0:c1], ops)
        rateints, rate = fit_and_scale(
            seg, core_refs, self.config, out.saturated, ops, out.groups, memo
        )
        if out.rateints is not None:
            for whole, part in zip(out.rateints, product_to_host(rateints, ops), strict=True):
                whole[:, r0:r1, c0:c1] = part
            for whole, part in zip(out.rate, product_to_host(rate, ops), strict=True):
                whole[r0:r1, c0:c1] = part
        spent = {"read": read_seconds, "jump": t2 - t1, "fit": time.perf_counter() - t2}
        with self.lock:
            for stage, seconds in spent.items():
                self.pass_two_busy[stage] += seconds
        return found, seg.step_status

    def result(self, first, out, status):
        """The segment's :class:`Result` once every tile is done."""
        nints, ngroups, ny, nx = self.shape
        if out.keep_ramp:
            log.warning(
                "%s: writing the _ramp product reads the whole calibrated ramp (%s), beyond the "
                "memory budget",
                self.uncal_path,
                gib(5 * nints * ngroups * ny * nx),
            )
        ramp_data, ramp_groupdq = self.ramp.read_all() if out.keep_ramp else (None, None)
        segment = Segment(
            data=ramp_data,
            groupdq=ramp_groupdq,
            pixeldq=out.pixeldq,
            exposure=self.exposure,
            zeroframe=self.zeroframe,
            average_dark_current=first.average_dark_current,
            source=str(self.uncal_path),
            step_status=status,
            trace_mask=self.trace_mask,
        )
        superbias_ran = first.step_status.get("superbias") == "COMPLETE" and self.bias_mode
        return Result(
            segment,
            tuple(out.rateints) if out.rateints is not None else None,
            tuple(out.rate) if out.rate is not None else None,
            status,
            *out.counts.rates(segment),
            one_over_f=self.sky_levels.levels,
            removed=self.removed,
            bias_scale=self.bias_factors if superbias_ran else None,
        )

    # ---- segment-wide inputs of the options, read chunk by chunk
    def measure_bias_scale(self):
        """float32 (nints, ngroups): ``superbias.scale``'s factors measured on every
        integration through the steps before superbias, so that every chunk can be given
        their mean over the segment (``mean``)."""
        later = frozenset(STEP_ORDER[STEP_ORDER.index("superbias") :])
        steps = replace(self.config, skip=self.config.skip | later)
        parts = []
        for ints in self.chunks:
            seg = replace(self.read(ints), trace_mask=self.trace_mask)
            seg = run_prejump(self.upload(seg), self.dev_refs, steps, ops=self.ops)
            parts.append(segment_wide.measure_bias_scale(seg, self.dev_refs, self.ops))
        return np.concatenate(parts)

    def last_minus_first(self):
        """float32 (nints, ny, nx): each integration's last group less its first, from the
        raw counts, read chunk by chunk (the automatic trace mask)."""
        parts = [oneoverf.last_minus_first(self.read(ints).data) for ints in self.chunks]
        return np.concatenate(parts)


@dataclass
class _Outputs:
    """Pass 2's outputs, which the tiles fill in disjoint parts."""

    rateints: list | None
    rate: list | None
    pixeldq: np.ndarray
    counts: JumpCounts
    keep_ramp: bool
    saturated: bool
    groups: tuple | str | None  # steps.fitted_groups


def cut_references(refs, window, ops=NumpyOps):
    """The 2-D reference arrays jump and ramp fitting use, cut to ``window`` (rows, cols)."""
    out = dict(refs)
    for reftype in ("gain", "readnoise"):
        ref = refs.get(reftype)
        if ref is not None:
            arrays = {k: ops.xp.ascontiguousarray(v[window]) for k, v in ref.arrays.items()}
            out[reftype] = replace(ref, arrays=arrays)
    return out


def without_halo(seg, core):
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
