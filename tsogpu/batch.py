"""Archive-scale runs on Dask: one task per segment, on local cores, SLURM or GPUs; resumable.

:func:`expand_inputs` turns files, globs, folders and ``@list.txt`` files into uncal paths;
:func:`group_exposures` orders them by exposure and segment and says which segments of an
exposure are missing; :func:`connect` makes the cluster (a local cluster of one-thread worker
processes, an existing scheduler, SLURM through dask-jobqueue, one worker per GPU through
dask-cuda); :func:`run_batch` submits :func:`process_segment` once per segment and gathers
the small dict each returns (never arrays). With ``exposure_wide`` it first submits
:func:`process_exposure` once per exposure (pass 1, ``tsogpu.exposure``), and each segment's
task takes that task's future as an argument: Dask runs it when pass 1 is done and hands it
the exposure's ``Shared`` (a few small images).

Resumable: every product carries ``TSOIHASH`` (:func:`tsogpu.pipeline.resume.input_hash`: the
input's and reference files' identities, the parameters, the version). A task first reads
the primary headers of the products it would write and skips its segment when each is
there with the hash it would record; anything else is redone. Products appear only by an
atomic rename; a killed task leaves hidden leftovers (``.<product>.*.tmp`` and the scratch
folder ``.tsogpu-scratch-<uncal name>.*``), which the next task for that segment removes
before it starts, and which everything else ignores.

Importing this module imports neither dask nor cupy (nor astropy); they are imported where
a cluster is made or a task runs.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
import socket
import time
import uuid
from pathlib import Path

from .clusters import require
from .errors import InputError, TsogpuError

log = logging.getLogger(__name__)

# <exposure>-segNNN<detector and the rest>_uncal.fits, as the archive names segments
SEGMENT_NAME = re.compile(r"^(?P<base>.+?)-seg(?P<num>\d+)(?P<rest>.*?)_uncal\.fits(\.gz)?$", re.I)
UNCAL_SUFFIX = re.compile(r"(_uncal)?\.fits(\.gz)?$", re.I)
EXPOSURE_KEYWORDS = (
    "PROGRAM",
    "OBSERVTN",
    "VISIT",
    "VISITGRP",
    "SEQ_ID",
    "ACT_ID",
    "EXPOSURE",
    "DETECTOR",
)


# --------------------------------------------------------------------------------------------
# Inputs and exposures


def expand_inputs(items):
    """Uncal paths from files, globs, folders and ``@list.txt`` files, in order.

    A folder gives its ``*_uncal.fits``; ``@FILE`` reads one path, glob or folder per line
    (blank lines and ``#`` comments skipped; relative entries are relative to the list's
    folder). A path that does not exist is kept: its task fails and says so. A glob that
    matches nothing, an empty folder or an unreadable list is an error, and so is a file
    given twice, or two of the same name (:func:`check_distinct`).

    Returns
    -------
    list of Path
        Absolute paths.
    """
    out = []

    def add(path):
        out.append(Path(os.path.abspath(path)))

    def expand(item, base, where):
        item = item.strip()
        if item.startswith("@"):
            listfile = Path(base, os.path.expanduser(item[1:]))
            try:
                lines = listfile.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{where}{item}: cannot read the list ({exc})") from None
            for line in lines:
                if line.strip() and not line.strip().startswith("#"):
                    expand(line, listfile.parent, f"{listfile}: ")
            return
        path = Path(base, os.path.expanduser(item))
        if any(c in item for c in "*?["):
            matches = sorted(glob.glob(str(path)))
            if not matches:
                raise InputError(f"{where}{item}: matches no file")
            for match in matches:
                expand_path(Path(match), item, where)
        else:
            expand_path(path, item, where)

    def expand_path(path, item, where):
        if path.is_dir():
            files = sorted(path.glob("*_uncal.fits"))
            if not files:
                raise InputError(f"{where}{item}: a folder without *_uncal.fits files")
            for f in files:
                add(f)
        else:
            add(path)

    for item in items:
        expand(os.fspath(item), Path.cwd(), "")
    if not out:
        raise InputError("no input files")
    check_distinct(out)
    return out


@dataclasses.dataclass
class Exposure:
    """The segments of one exposure among the inputs."""

    key: str  # jw<program><obs><visit>_<group><seq><act>_<exposure>_<detector>, or a file name
    total: int | None = None  # EXSEGTOT, where a header says
    segments: dict = dataclasses.field(default_factory=dict)  # EXSEGNUM -> [paths]
    other: list = dataclasses.field(default_factory=list)  # paths with no segment number

    def paths(self):
        ordered = [p for num in sorted(self.segments) for p in self.segments[num]]
        return ordered + self.other

    def warnings(self):
        notes = []
        if self.total:
            missing = sorted(set(range(1, self.total + 1)) - set(self.segments))
            if missing:
                listed = ", ".join(str(n) for n in missing)
                notes.append(
                    f"exposure {self.key}: segment{'s' * (len(missing) > 1)} {listed} of "
                    f"{self.total} not among the inputs"
                )
        for num, paths in sorted(self.segments.items()):
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                notes.append(
                    f"exposure {self.key}: segment {num} given {len(paths)} times ({names})"
                )
        return notes


def check_distinct(paths):
    """Refuse, before any work, inputs whose products would overwrite each other.

    The same file given twice (by any path: a link, a glob and a list that overlap), and two
    files of the same name less ``_uncal.fits`` / ``.fits`` / ``.gz`` (from different folders)
    are errors, in ``tsogpu run`` and ``tsogpu batch`` alike.

    Raises
    ------
    InputError
        Naming both inputs.
    """
    files, stems = {}, {}
    for path in map(Path, paths):
        other = files.setdefault(os.path.realpath(path), path)
        if other is not path:
            raise InputError(f"{path}: given twice (also as {other}); give each input once")
        other = stems.setdefault(UNCAL_SUFFIX.sub("", path.name), path)
        if other is not path:
            raise InputError(
                f"{other} and {path} would write the same products in the output folder; "
                "give one of them, or run them with different --out folders"
            )


def group_exposures(paths):
    """Group uncal paths into exposures by their keywords or names, and EXSEGNUM / EXSEGTOT.

    The exposure is named as the archive names it, ``jw<PROGRAM><OBSERVTN><VISIT>_<VISITGRP>
    <SEQ_ID><ACT_ID>_<EXPOSURE>_<detector>``, from the primary header (read alone: cheap),
    or else from the file name without ``-segNNN`` and ``_uncal.fits``; the segment number
    and count come from the header, or the number from the name where the header cannot be
    read (the segment's task then reports why).

    Returns
    -------
    paths : list of Path
        In exposure order, then segment order.
    exposures : list of Exposure
    warnings : list of str
        Missing or repeated segments; they do not stop the batch.

    Raises
    ------
    InputError
        Two inputs of the same name (less ``.gz``): their products would overwrite each other.
    """
    from astropy.io import fits

    check_distinct(paths)
    exposures = {}
    for path in paths:
        match = SEGMENT_NAME.match(path.name)
        key = match["base"] + match["rest"] if match else UNCAL_SUFFIX.sub("", path.name)
        num = int(match["num"]) if match else None
        total = None
        try:
            header = fits.getheader(path)
            key = _exposure_name(header) or key
            if header.get("EXSEGNUM"):
                num = int(header["EXSEGNUM"])
            if header.get("EXSEGTOT"):
                total = int(header["EXSEGTOT"])
        except Exception:  # unreadable: the task reports it with the reason
            pass
        exp = exposures.setdefault(key, Exposure(key))
        if total is not None:
            exp.total = max(exp.total or 0, total)
        if num is None:
            exp.other.append(path)
        else:
            exp.segments.setdefault(num, []).append(path)
    ordered = [exposures[k] for k in sorted(exposures)]
    return (
        [p for exp in ordered for p in exp.paths()],
        ordered,
        [w for exp in ordered for w in exp.warnings()],
    )


def _exposure_name(header):
    """The archive's name of the exposure, from its keywords; None where one is missing."""
    values = [str(header.get(k, "")).strip() for k in EXPOSURE_KEYWORDS]
    if not all(values):
        return None
    program, obs, visit, group, seq, act, exp, detector = values
    return f"jw{program}{obs}{visit}_{group}{seq}{act}_{exp}_{detector.lower()}"


# --------------------------------------------------------------------------------------------
# One segment (runs on a worker)


def process_exposure(uncal_paths, out_dir, config, name, force=False):
    """The task of pass 1 (``exposure_wide``): the exposure's ``tsogpu.exposure.Shared``,
    read from its ``<name>_shared.fits`` when that is up to date, else computed and saved.

    Never raises: a failure returns ``{"reason": ...}``, which fails the segments' tasks.
    """
    try:
        from . import exposure

        return exposure.load_or_run(uncal_paths, out_dir, _worker_config(config), name, force=force)
    except TsogpuError as exc:
        return {"reason": f"the exposure's first pass failed: {exc}"}
    except Exception as exc:
        return {"reason": f"the exposure's first pass failed: {type(exc).__name__}: {exc}"}


def process_segment(uncal_path, out_dir, config, force=False, tune_malloc=False, shared=None):
    """The task: one segment, skipped when its products are complete, else processed.

    ``shared``: the result of :func:`process_exposure` for its exposure (``exposure_wide``).
    Never raises for a failing file: the reason goes into the result.

    Returns
    -------
    dict
        ``file``, ``status`` (ok, skipped or failed), ``reason``, ``seconds``, ``backend``
        and ``device`` (from the products' TSOBACK / TSODEV), ``host``, ``products``.
    """
    t0 = time.perf_counter()
    result = {
        "file": str(uncal_path),
        "status": "failed",
        "reason": "",
        "seconds": 0.0,
        "backend": "",
        "device": "",
        "host": socket.gethostname(),
        "products": [],
    }
    try:
        from astropy.io import fits

        from .memory import keep_freed_memory
        from .pipeline import process_file
        from .pipeline.resume import complete_products

        if isinstance(shared, dict):  # pass 1 failed
            raise InputError(shared["reason"])
        config = _worker_config(config)
        done = None if force else complete_products(uncal_path, out_dir, config, shared)
        if done:
            status, written = "skipped", done
        else:
            if tune_malloc:
                keep_freed_memory()
            # process_file removes what a killed run on this input left (resume.remove_leftovers)
            written = process_file(uncal_path, out_dir, config, shared=shared)
            status = "ok"
        header = fits.getheader(written[0])
        result.update(
            status=status,
            products=[str(p) for p in written],
            backend=str(header.get("TSOBACK", "")),
            device=str(header.get("TSODEV", "")),
        )
    except TsogpuError as exc:
        result["reason"] = str(exc)
    except Exception as exc:
        result["reason"] = f"{type(exc).__name__}: {exc}"
    result["seconds"] = time.perf_counter() - t0
    return result


def _worker_config(config):
    """``config`` with a memory budget that fits this worker, when none was given.

    A process's default budget is an eighth of the machine; a worker shares the machine with
    the others, so it takes half of its own memory limit per thread, if that is less.
    """
    if config.max_memory is not None:
        return config
    try:
        from distributed import get_worker

        worker = get_worker()
        limit = worker.memory_manager.memory_limit
        nthreads = worker.state.nthreads
    except Exception:  # not on a worker, or a distributed that names these otherwise
        return config
    if not limit:
        return config
    from .pipeline.planning import default_memory_budget

    budget = min(default_memory_budget(), int(limit) // (2 * max(1, nthreads)))
    return dataclasses.replace(config, max_memory=budget)


# --------------------------------------------------------------------------------------------
# The batch


@dataclasses.dataclass
class BatchReport:
    """What a batch did: one result dict per input (in order), exposure warnings, time."""

    results: list
    warnings: list
    seconds: float
    interrupted: bool = False

    def count(self, status):
        return sum(r["status"] == status for r in self.results)

    @property
    def ok(self):
        """Every file processed or found complete."""
        return all(r["status"] in ("ok", "skipped") for r in self.results)


def run_batch(paths, out_dir, config, client, *, force=False, tune_malloc=False, on_result=None):
    """Process ``paths`` on ``client``'s cluster, one task per segment (after one task per
    exposure with ``config.exposure_wide``).

    A file that fails is reported with its reason and the others go on; a worker that dies
    on a segment fails that segment (``KilledWorker``, after the scheduler's retries). On
    Ctrl-C the pending tasks are cancelled and the report says so; a rerun resumes.

    Parameters
    ----------
    paths : list of Path
        Uncal segments (see :func:`expand_inputs` and :func:`group_exposures`).
    config : PipelineConfig
        As :func:`batch_config` made it.
    force : bool
        Redo complete products too.
    tune_malloc : bool
        Let each task call :func:`tsogpu.memory.keep_freed_memory` (a process-wide
        setting: for workers made for this batch).
    on_result : callable(done: int, total: int, result: dict), optional
        Called as each segment ends.

    Returns
    -------
    BatchReport
        ``warnings`` is empty here; the caller adds the exposure warnings.
    """
    distributed = require("distributed")
    t0 = time.perf_counter()
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    shared = {}  # path -> its exposure's pass-1 future
    if config.exposure_wide:
        for exp in group_exposures(list(map(Path, paths)))[1]:
            future = client.submit(
                process_exposure,
                [str(p) for p in exp.paths()],
                out_dir,
                config,
                exp.key,
                force,
                key=f"tsogpu-{exp.key}-shared-{run}",
                pure=False,
            )
            shared.update((str(p), future) for p in exp.paths())
    futures = {}
    for path in paths:
        future = client.submit(
            process_segment,
            str(path),
            out_dir,
            config,
            force,
            tune_malloc,
            shared.get(str(path)),
            key=f"tsogpu-{Path(path).name}-{run}",
            pure=False,
        )
        futures[future] = str(path)
    results = {}
    interrupted = False
    try:
        for done, future in enumerate(distributed.as_completed(list(futures)), 1):
            result = _result(future, futures[future])
            results[result["file"]] = result
            if on_result is not None:
                on_result(done, len(futures), result)
    except KeyboardInterrupt:
        interrupted = True
        client.cancel([*futures, *set(shared.values())])
    # a segment running at Ctrl-C may still finish before the cluster closes: a rerun checks
    ordered = [results.get(str(p)) or _blank(str(p), "interrupted", "") for p in paths]
    return BatchReport(ordered, [], time.perf_counter() - t0, interrupted)


def _blank(path, status, reason):
    return {
        "file": path,
        "status": status,
        "reason": reason,
        "seconds": 0.0,
        "backend": "",
        "device": "",
        "host": "",
        "products": [],
    }


def _result(future, path):
    """A task's result dict, or a failed one saying why the task itself did not finish."""
    try:
        return future.result()
    except Exception as exc:
        if type(exc).__name__ == "KilledWorker":
            reason = (
                "its worker died while processing it (killed, out of memory or crashed; "
                "see the worker's log)"
            )
        elif type(exc).__name__ == "CancelledError":
            reason = "cancelled"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return _blank(path, "failed", reason)


# --------------------------------------------------------------------------------------------
# Reporting


def _name(path):
    return Path(path).name


def format_progress(done, total, result):
    """``[k/N] name status time`` for one finished segment, with the reason of a failure."""
    width = len(str(total))
    line = (
        f"[{done:>{width}}/{total}] {_name(result['file'])} {result['status']} "
        f"{result['seconds']:.1f} s"
    )
    if result["status"] == "failed":
        line += f": {result['reason']}"
    return line


def format_summary(report):
    """The summary table (file, status, time, backend, device), totals, reasons, warnings."""
    rows = [("file", "status", "time", "backend", "device")]
    for r in report.results:
        seconds = f"{r['seconds']:.1f} s" if r["status"] in ("ok", "skipped", "failed") else "-"
        rows.append(
            (
                _name(r["file"]),
                r["status"],
                seconds,
                r["backend"] or "-",
                r["device"] or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = ", ".join(
        f"{report.count(s)} {s}"
        for s in ("ok", "skipped", "failed", "interrupted")
        if report.count(s) or s in ("ok", "failed")
    )
    total = len(report.results)
    lines.append(
        f"{total} file{'s' * (total != 1)}: {counts} in {report.seconds:.1f} s"
        + (" (interrupted)" if report.interrupted else "")
    )
    failed = [r for r in report.results if r["status"] == "failed"]
    if failed:
        lines.append("failed:")
        lines += [f"  {_name(r['file'])}: {r['reason']}" for r in failed]
    if report.warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in report.warnings]
    return "\n".join(lines)
