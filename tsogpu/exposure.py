"""Exposure-wide two-pass processing (``exposure_wide``, docs/options.md).

Pass 1 (:func:`first_pass`) reads every segment of one exposure, chunk by chunk of
integrations (sized as the pipeline's pass 1), and computes what the segments must share:
the fixed saturation map, a median frame and the trace mask (:class:`Shared`).
:func:`load_or_run` saves it beside the products as ``<exposure>_shared.fits`` (an atomic
write) and reuses it on a rerun over the same segments, parameters and reference files.
Pass 2 is ``pipeline.process_file(..., shared=...)`` on each segment; the products record
the shared file's name and hash (``TSOSHARE``, ``TSOSHASH``), and the hash enters their
input hash (``TSOIHASH``), so a rerun with other segments redoes them.

Not computed: bias scale factors. In Eureka! (``bias_sub.py``) and exoTEDRF they rescale the
superbias per integration (or as a mean) to match the off-trace pixels; tsogpu has no
superbias-rescaling option for them to feed yet.
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

from . import __version__, pipeline
from .algorithms import oneoverf, saturation
from .config import STEP_ORDER
from .errors import InputError

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
    """

    exposure: str
    segments: tuple
    saturation_map: np.ndarray
    median_frame: np.ndarray
    trace_mask: np.ndarray
    key: str

    @property
    def file_name(self):
        return shared_name(self.exposure)

    @functools.cached_property
    def hash(self):
        """SHA-256 (hex) of the contents: ``TSOSHASH`` in the products, part of TSOIHASH."""
        h = hashlib.sha256()
        meta = {"exposure": self.exposure, "segments": list(self.segments), "key": self.key}
        h.update(json.dumps(meta, sort_keys=True).encode())
        for a in (self.saturation_map, self.median_frame, self.trace_mask):
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
    (``pipeline.input_hash``: the file's identity, its reference files, the parameters, the
    version), in order."""
    from .io import reffiles, uncal

    hashes = []
    for path in paths:
        header = uncal.read_primary_header(path)
        exposure = uncal.read_exposure(header, path)
        refs = reffiles.resolve_references(
            exposure, pipeline.required_reftypes(config), config.refs, header=header
        )
        hashes.append(pipeline.input_hash(path, config, refs))
    doc = {"segments": hashes}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def first_pass(paths, config, name, scratch, *, key=None, progress=None, chunk_ints=None):
    """Pass 1 over the segments ``paths`` of one exposure: a :class:`Shared`.

    Each segment is read chunk by chunk of integrations (sized by ``pipeline.plan_chunks``,
    as ``pipeline.process_file``'s pass 1) and goes through the steps up to saturation on
    ``config.backend`` (the later ones change no saturation flag). The last-minus-first
    images wait in a scratch file in the folder ``scratch`` until the median, taken a few
    rows at a time.

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
    ops = pipeline.backend_ops(pipeline.select_backend(config.backend), config.threads)
    key = key or pass1_key(paths, config)
    shapes = [uncal.inspect_uncal(p) for p in paths]
    frame = shapes[0][1][1:]
    for path, (_, shape, _) in zip(paths, shapes, strict=True):
        if shape[1:] != frame:
            raise InputError(
                f"{path}: {shape[1]} groups of {shape[2]} x {shape[3]} pixels, but "
                f"{paths[0]} has {frame[0]} of {frame[1]} x {frame[2]}: not one exposure"
            )
    ngroups, ny, nx = frame
    total = sum(shape[0] for _, shape, _ in shapes)
    images = np.memmap(Path(scratch, "lmf.f32"), np.float32, "w+", shape=(total, ny, nx))
    sat_map = np.full((ny, nx), ngroups, np.int32)
    i_exp = 0
    for k, (path, (exposure, shape, zeroframe)) in enumerate(zip(paths, shapes, strict=True)):
        header = uncal.read_primary_header(path)
        refs, _ = reffiles.load_references(
            exposure, pipeline.required_reftypes(config), config.refs, header=header
        )
        dev_refs = ops.to_device(None, refs)[1]
        nints = shape[0]
        if chunk_ints is None:
            plan = pipeline.plan_chunks(shape, config, zeroframe, source=str(path), threads=1)
            chunk_ints = nints if plan.in_memory else plan.ints
        for i0 in range(0, nints, chunk_ints):
            ints = slice(i0, min(i0 + chunk_ints, nints))
            seg = uncal.read_uncal(path, ints, raw=ops is not pipeline.NumpyOps)
            images[i_exp + ints.start : i_exp + ints.stop] = oneoverf.last_minus_first(seg.data)
            seg = pipeline.run_prejump(ops.to_device(seg, {})[0], dev_refs, steps, ops=ops)
            np.minimum(sat_map, ops.to_host(ops.saturation_map(seg.groupdq, "pixel")), out=sat_map)
            del seg
        i_exp += nints
        progress("exposure pass 1", k + 1, len(paths))
    median = np.empty((ny, nx), np.float32)
    rows = max(1, MEDIAN_BLOCK_BYTES // (4 * total * nx))
    for r0 in range(0, ny, rows):  # per pixel, as np.median over the whole stack
        median[r0 : r0 + rows] = np.median(images[:, r0 : r0 + rows], axis=0)
    del images
    sky = config.params("refpix")
    return Shared(
        exposure=name,
        segments=tuple(Path(p).name for p in paths),
        saturation_map=sat_map,
        median_frame=median,
        trace_mask=oneoverf.trace_mask_from_image(median, sky.sky_threshold, sky.sky_mask_grow),
        key=key,
    )


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            hdul.writeto(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


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
    prefix = pipeline.scratch_prefix(path)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=out_dir) as scratch:
        shared = first_pass(paths, config, name, scratch, key=key, progress=progress)
    save(shared, path)
    return shared


def _remove_leftovers(out_dir, name):
    """What a killed first pass left: the hidden temporary file and the scratch folder."""
    scratch = pipeline.scratch_prefix(Path(out_dir, name))
    for entry in os.scandir(out_dir):
        if entry.name.startswith(scratch) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        elif entry.name.startswith(f".{name}.") and entry.name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
