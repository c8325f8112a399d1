"""Exposure-wide two-pass processing (``exposure_wide``, docs/options.md).

Pass 1 (:func:`first_pass`) reads every segment of one exposure, chunk by chunk of
integrations (sized as the pipeline's pass 1), and computes what the segments must share:
the fixed saturation map, a median frame, the trace mask and, with
``superbias.scale=exposure``, the superbias scale factors of every integration
(:class:`Shared`).
:func:`load_or_run` saves it beside the products as ``<exposure>_shared.fits`` (an atomic
write) and reuses it on a rerun over the same segments, parameters and reference files.
Pass 2 is ``pipeline.process_file(..., shared=...)`` on each segment; the products record
the shared file's name and hash (``TSOSHARE``, ``TSOSHASH``), and the hash enters their
input hash (``TSOIHASH``), so a rerun with other segments redoes them.

The bias scale factors (``superbias.scale=exposure``, Eureka!'s bias_correction over the
whole exposure) are measured in pass 1 on each integration, as the superbias step measures
them (``tsogpu.algorithms.superbias.scale_factors``), with the trace mask of
``refpix.sky_mask`` or else the exposure's automatic one; pass 2 subtracts the superbias times
their mean per group (``superbias.mean_factors``). The automatic mask needs the median frame
first, so pass 1 then reads the raw counts once more before its steps.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__
from .algorithms import oneoverf, saturation
from .backends import backend_ops, select_backend
from .config import STEP_ORDER, required_reftypes
from .errors import InputError
from .io.atomic import temporary_prefix, write_atomically
from .parameter_ranges import check_against_segment
from .pipeline import planning, segment_wide
from .pipeline.resume import input_hash, scratch_prefix
from .pipeline.steps import run_prejump

log = logging.getLogger(__name__)

SHARED_SUFFIX = "_shared.fits"
# the saturation flags are final once the saturation step has run: pass 1 stops there
PASS1_SKIPS = frozenset(STEP_ORDER[STEP_ORDER.index("saturation") + 1 :])
# bytes of per-integration rate images the median reads at a time
MEDIAN_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class Shared:
    """What pass 1 computed over every integration of every segment of one exposure.

    Attributes
    ----------
    exposure : str
        The exposure's name (``tsogpu.batch.group_exposures``).
    segments : tuple of str
        The file names of the segments pass 1 read, in order.
    saturation_map : ndarray of int32, shape (ny, nx)
        Per pixel, the earliest SATURATED group over every integration of every segment
        (``ngroups`` where none saturates): the minimum of the segments'
        ``saturation.fixed_map=pixel`` maps. :meth:`saturation_map_for` gives the column map.
    median_frame : ndarray of float32, shape (ny, nx)
        Per pixel, the median over every integration of the exposure of the last group less
        the first, in raw counts (``oneoverf.last_minus_first``): the image
        ``refpix.sky_method`` makes its trace mask from, over one segment when run alone.
    trace_mask : ndarray of bool, shape (ny, nx)
        ``oneoverf.trace_mask_from_image(median_frame, refpix.sky_threshold,
        refpix.sky_mask_grow)``: the pixels ``refpix.sky_method`` never takes as sky.
    key : str
        SHA-256 of what pass 1 depended on (:func:`pass1_key`); a rerun with the same key
        reuses the saved file.
    bias_scale : ndarray of float32, shape (nints, ngroups), or None
        With ``superbias.scale=exposure``: the superbias scale factor measured on each
        integration of the exposure (segments in order) and group, NaN where a group has no
        usable sky pixel (``superbias.scale_factors``); pass 2 applies their mean per group
        (``superbias.mean_factors``). None otherwise.
    """

    exposure: str
    segments: tuple
    saturation_map: np.ndarray
    median_frame: np.ndarray
    trace_mask: np.ndarray
    key: str
    bias_scale: np.ndarray | None = None

    @property
    def file_name(self):
        return shared_name(self.exposure)

    @functools.cached_property
    def hash(self):
        """SHA-256 (hex) of the contents: ``TSOSHASH`` in the products, part of TSOIHASH."""
        h = hashlib.sha256()
        meta = {"exposure": self.exposure, "segments": list(self.segments), "key": self.key}
        h.update(json.dumps(meta, sort_keys=True).encode())
        arrays = [self.saturation_map, self.median_frame, self.trace_mask]
        if self.bias_scale is not None:  # absent: the hash of the files made before it
            arrays.append(self.bias_scale)
        for a in arrays:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def saturation_map_for(self, per):
        """The fixed map for ``saturation.fixed_map`` = ``per`` ("pixel" or "column")."""
        if per == "column":
            return saturation.column_minimum(self.saturation_map)
        return self.saturation_map


def shared_name(exposure):
    return f"{exposure}{SHARED_SUFFIX}"


# --------------------------------------------------------------------------------------------
# Pass 1


def pass1_key(paths, config):
    """SHA-256 (hex) of what pass 1 depends on: each segment's input hash
    (``tsogpu.pipeline.resume.input_hash``: the file's identity, its reference files, the
    parameters, the version), in order."""
    from .io import reffiles, uncal

    hashes = []
    for path in paths:
        header = uncal.read_primary_header(path)
        exposure = uncal.read_exposure(header, path)
        refs = reffiles.resolve_references(
            exposure, required_reftypes(config, exposure.instrument), config.refs, header=header
        )
        hashes.append(input_hash(path, config, refs))
    doc = {"segments": hashes}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def first_pass(paths, config, name, scratch, *, key=None, progress=None, chunk_ints=None):
    """Pass 1 over the segments ``paths`` of one exposure: a :class:`Shared`.

    Each segment is read chunk by chunk of integrations (sized by
    ``tsogpu.pipeline.planning.plan_chunks``, as ``tsogpu.pipeline.process_file``'s pass 1)
    and goes through the steps up to saturation on ``config.backend`` (the later ones change
    no saturation flag). The last-minus-first images wait in a scratch file in the folder
    ``scratch`` until the median, taken a few rows at a time.

    Parameters
    ----------
    paths : list of path
        The exposure's segments in order.
    name : str
        The exposure's name.
    progress : callable(stage, done, total), optional
    chunk_ints : int, optional
        Integrations per chunk instead of the planner's (tests).
    """
    from .io import reffiles, uncal

    progress = progress or (lambda stage, done, total: None)
    steps = replace(config, skip=config.skip | PASS1_SKIPS)
    ops = backend_ops(select_backend(config.backend), config.threads)
    key = key or pass1_key(paths, config)
    shapes = [uncal.inspect_uncal(p) for p in paths]
    frame = shapes[0][1][1:]
    for path, (_, shape, _) in zip(paths, shapes, strict=True):
        if shape[1:] != frame:
            raise InputError(
                f"{path}: {shape[1]} groups of {shape[2]} x {shape[3]} pixels, but "
                f"{paths[0]} has {frame[0]} of {frame[1]} x {frame[2]}: not one exposure"
            )
    # before any work, as process_file does: parameters the exposure's ramps cannot take
    check_against_segment(config, shapes[0][1], Path(paths[0]).name)
    ngroups, ny, nx = frame
    total = sum(shape[0] for _, shape, _ in shapes)
    if chunk_ints is None:
        _, shape, zeroframe = shapes[0]
        plan = planning.plan_chunks(shape, config, zeroframe, source=str(paths[0]), threads=1)
        chunk_ints = shape[0] if plan.in_memory else plan.ints
    # (segment index, path, integrations of the segment, rows of the exposure) per chunk
    chunks = []
    i_exp = 0
    for k, (path, (_, shape, _)) in enumerate(zip(paths, shapes, strict=True)):
        for i0 in range(0, shape[0], chunk_ints):
            ints = slice(i0, min(i0 + chunk_ints, shape[0]))
            chunks.append((k, path, ints, slice(i_exp + ints.start, i_exp + ints.stop)))
        i_exp += shape[0]
    # an anonymous file: no kill can leave it behind (it has no name in the folder)
    with tempfile.TemporaryFile(dir=scratch) as fh:
        os.ftruncate(fh.fileno(), total * ny * nx * 4)
        images = np.memmap(fh, np.float32, "r+", shape=(total, ny, nx))
    sat_map = np.full((ny, nx), ngroups, np.int32)
    sky = config.params("refpix")
    median = mask = bias_scale = None
    if segment_wide.bias_scale_mode(config) == "exposure":
        bias_scale = np.full((total, ngroups), np.nan, np.float32)
        if sky.sky_mask:  # the user's mask, as in pass 2
            mask = segment_wide.sky_trace_mask(config, (total, *frame), None, source=str(paths[0]))
        else:  # the exposure's automatic mask, before the factors: the raw counts read once more
            for _, path, ints, rows in chunks:
                images[rows] = oneoverf.last_minus_first(
                    uncal.read_uncal(path, ints, raw=True).data
                )
            median = _median_frame(images)
            mask = oneoverf.trace_mask_from_image(median, sky.sky_threshold, sky.sky_mask_grow)
    refs = None
    for k, path, ints, rows in chunks:
        if refs is None or k != refs[0]:
            host_refs, _ = reffiles.segment_references(path, config)
            refs = (k, ops.to_device(None, host_refs)[1])
        seg = uncal.read_uncal(path, ints, raw=ops.wants_raw_counts)
        if median is None:
            images[rows] = oneoverf.last_minus_first(seg.data)
        seg = replace(seg, trace_mask=mask)
        seg = run_prejump(ops.to_device(seg, {})[0], refs[1], steps, ops=ops)
        np.minimum(sat_map, ops.to_host(ops.saturation_map(seg.groupdq, "pixel")), out=sat_map)
        if bias_scale is not None and refs[1].get("superbias") is not None:
            bias_scale[rows] = segment_wide.measure_bias_scale(seg, refs[1], ops)
        del seg
        if ints.stop == shapes[k][1][0]:
            progress("exposure pass 1", k + 1, len(paths))
    if median is None:
        median = _median_frame(images)
    del images
    return Shared(
        exposure=name,
        segments=tuple(Path(p).name for p in paths),
        saturation_map=sat_map,
        median_frame=median,
        trace_mask=oneoverf.trace_mask_from_image(median, sky.sky_threshold, sky.sky_mask_grow),
        key=key,
        bias_scale=bias_scale,
    )


def _median_frame(images):
    """float32 (ny, nx): per pixel, the median over the stack ``images`` (n, ny, nx), a memory
    map, taken a few rows at a time."""
    total, ny, nx = images.shape
    median = np.empty((ny, nx), np.float32)
    rows = max(1, MEDIAN_BLOCK_BYTES // (4 * total * nx))
    for r0 in range(0, ny, rows):  # per pixel, as np.median over the whole stack
        median[r0 : r0 + rows] = np.median(images[:, r0 : r0 + rows], axis=0)
    return median


# --------------------------------------------------------------------------------------------
# The shared file


def save(shared, path):
    """Write ``shared`` to ``path`` (FITS) atomically; returns the path."""
    from astropy.io import fits

    path = Path(path)
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TSOVER"] = (__version__, "tsogpu version")
    h["EXPOSURE"] = (shared.exposure, "exposure name")
    h["TSOSKEY"] = (shared.key, "")
    h["TSOSHASH"] = (shared.hash, "")
    h["NSEGS"] = (len(shared.segments), "segments read by pass 1")
    for k, seg in enumerate(shared.segments, 1):
        h[f"SEG{k:04d}"] = seg
    hdul = fits.HDUList(
        [
            primary,
            fits.ImageHDU(shared.saturation_map, name="SATMAP"),
            fits.ImageHDU(shared.median_frame, name="MEDIAN"),
            fits.ImageHDU(shared.trace_mask.astype(np.uint8), name="TRACE"),
        ]
    )
    if shared.bias_scale is not None:
        hdul.append(fits.ImageHDU(shared.bias_scale, name="BIASSCAL"))
    return write_atomically(path, hdul.writeto)


def load(path):
    """A :class:`Shared` from a file :func:`save` wrote."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        h = hdul[0].header
        shared = Shared(
            exposure=str(h["EXPOSURE"]),
            segments=tuple(str(h[f"SEG{k:04d}"]) for k in range(1, int(h["NSEGS"]) + 1)),
            saturation_map=np.asarray(hdul["SATMAP"].data, np.int32),
            median_frame=np.asarray(hdul["MEDIAN"].data, np.float32),
            trace_mask=np.asarray(hdul["TRACE"].data).astype(bool),
            key=str(h["TSOSKEY"]),
            bias_scale=(
                np.asarray(hdul["BIASSCAL"].data, np.float32) if "BIASSCAL" in hdul else None
            ),
        )
        if shared.hash != h["TSOSHASH"]:
            raise InputError(f"{path}: its contents do not match its TSOSHASH")
    return shared


def load_or_run(paths, out_dir, config, name, *, force=False, progress=None):
    """The exposure's :class:`Shared`: read from ``<out_dir>/<name>_shared.fits`` when it was
    made from the same segments, parameters and reference files (and not ``force``), else
    computed by :func:`first_pass` and saved there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / shared_name(name)
    key = pass1_key(paths, config)
    if not force and path.is_file():
        try:
            shared = load(path)
            if shared.key == key:
                log.info("%s: reusing the exposure's first pass", path)
                return shared
        except Exception as exc:  # unreadable or stale: made again
            log.info("%s: made again (%s)", path, exc)
    _remove_leftovers(out_dir, path.name)
    log.info("exposure %s: first pass over %d segment(s)", name, len(paths))
    shared = first_pass(paths, config, name, out_dir, key=key, progress=progress)
    save(shared, path)
    return shared


def _remove_leftovers(out_dir, name):
    """What a killed first pass left: the hidden temporary file, and the scratch folder of
    versions before the scratch file was anonymous."""
    scratch = scratch_prefix(Path(out_dir, name))
    for entry in os.scandir(out_dir):
        if entry.name.startswith(scratch) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        elif entry.name.startswith(temporary_prefix(name)) and entry.name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
