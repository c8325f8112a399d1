"""The ``tsogpu`` command. The only module that configures logging.

Exit codes: 0 success; 2 bad input, bad option, an unwritable or full output folder or a
failed file (one line saying why); 1 an unexpected internal error, or for ``compare`` products
that differ beyond --rtol; 130 Ctrl-C, 143 SIGTERM (:mod:`tsogpu.signals`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import __version__, signals
from .clusters import CLUSTERS
from .compare_command import add_compare_parser, cmd_compare
from .config import (
    BACKENDS,
    MIRI_STEP_ORDER,
    NIR_STEP_ORDER,
    REFTYPES,
    STEP_ORDER,
    PipelineConfig,
    load_toml,
    parse_size,
)
from .errors import ConfigError, TsogpuError
from .io.describe import demo_summary, describe
from .report import require_report_extra
from .report.command import add_report_options, add_report_parser, cmd_report, report_products
from .sweep_command import add_sweep_parser, cmd_sweep

log = logging.getLogger("tsogpu")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tsogpu",
        description="JWST Stage-1 (calwebb_detector1) for time-series observations: "
        "uncal segments in, jwst-compatible ramp / rateints products out.",
    )
    parser.add_argument("--version", action="version", version=f"tsogpu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="process uncal segments",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("uncal", nargs="+", help="uncal segment files (*_uncal.fits)")
    run.add_argument("--out", required=True, help="output folder (created if missing)")
    _add_run_options(run)
    run.add_argument(
        "--report",
        action="store_true",
        help="then the exposure product, figures and HTML report (as `tsogpu report`)",
    )
    add_report_options(run)

    demo = sub.add_parser(
        "demo",
        help="simulate a segment and process it (no data needed)",
        description="Simulate a small segment with its reference files, then run the "
        "pipeline on it, as `tsogpu run` would.",
    )
    demo.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    demo.add_argument("--mode", default="nrs_bots", help="simulated mode (default nrs_bots)")
    demo.add_argument("--nints", type=int, default=20)
    demo.add_argument("--ngroups", type=int, default=10)
    demo.add_argument("--seed", type=int, default=1)
    _add_common(demo)

    info = sub.add_parser("info", help="describe an uncal file or a product")
    info.add_argument("file")
    _add_common(info)

    add_report_parser(sub)
    sim = sub.add_parser("simulate", help="write a synthetic uncal segment and reference files")
    sim.add_argument("--mode", default="nrs_bots")
    sim.add_argument("--nints", type=int, default=20)
    sim.add_argument("--ngroups", type=int, default=10)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--one-over-f", action="store_true", help="add 1/f noise")
    sim.add_argument(
        "--segment",
        default="1/1",
        metavar="K/N",
        help="segment K of an exposure of N (default 1/1); segments share reference files",
    )
    sim.add_argument("--out", required=True, help="output folder")
    _add_common(sim)

    _add_batch_parser(sub)
    add_compare_parser(sub, _add_common)
    add_sweep_parser(sub, _add_run_options)
    return parser


RUN_HELP = f"""\
Process uncal segments through the Stage-1 steps, in jwst's order (near-infrared; MIRI):
  {" -> ".join(NIR_STEP_ORDER)}
  {" -> ".join(MIRI_STEP_ORDER)}
(emicorr and firstframe are skipped by default, as in jwst: --run-step runs them)
Products go to --out as <name>_rateints.fits and <name>_rate.fits (<name> is the input
name without _uncal), and <name>_ramp.fits with --save-ramp or when ramp_fit is skipped.
Segments are processed in chunks that keep memory within --max-memory; the products do
not depend on the chunking.

Reference files: --ref TYPE=PATH for each type ({", ".join(REFTYPES)}), or in the config
file's [ref] table; types not given are looked up in CRDS when CRDS_PATH or
CRDS_SERVER_URL is set. TYPE=N/A runs a step that allows it without that reference.

Parameters: --set STEP.PARAM=VALUE, or a [STEP] table in --config FILE.toml; e.g.
  --set saturation.n_pix_grow_sat=0   --set refpix.odd_even_columns=false
The parameters and their defaults (jwst 3.0's):
"""


def _parameter_list():
    import dataclasses
    import textwrap

    from .config import STEP_PARAMS

    lines = []
    for step, cls in STEP_PARAMS.items():
        fields = [f"{f.name}={f.default}" for f in dataclasses.fields(cls)]
        text = f"{step}: {', '.join(fields) if fields else '(none)'}"
        lines += textwrap.wrap(text, 88, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


RUN_HELP += _parameter_list()


def _add_common(p):
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    p.add_argument("-v", "--verbose", action="store_true", help="debug output")


def _add_run_options(p):
    p.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="TYPE=PATH",
        help="reference file for TYPE (repeatable)",
    )
    p.add_argument("--config", metavar="FILE.toml", help="configuration file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STEP.PARAM=VALUE",
        dest="sets",
        help="set a step parameter (repeatable)",
    )
    p.add_argument(  # the same as --set dq_init.user_mask=FILE, in command-line order
        "--dq-mask",
        action="append",
        dest="sets",
        type=lambda path: f"dq_init.user_mask={path}",
        metavar="FILE",
        help="user DQ mask (FITS/.npy image, or a text list 'X Y' / 'X0:X1 Y0:Y1'), "
        "ORed into PIXELDQ (bit: dq_init.user_mask_bit, default DO_NOT_USE)",
    )
    for flag, verb in (("--skip", "skip"), ("--run-step", "run a step skipped by default:")):
        p.add_argument(flag, action="append", default=[], metavar="STEP", choices=STEP_ORDER,
                       help=f"{verb} a step (repeatable)")  # fmt: skip
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="compute backend (default auto: the GPU, else native, else numpy; or the config's)",
    )
    p.add_argument(
        "--save-ramp", action="store_true", help="also write <name>_ramp.fits (after jump)"
    )
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget, e.g. 4G or 500M (default: an eighth of the machine's memory)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="pixel tiles processed at once, sharing the memory budget (default: the CPU cores)",
    )
    p.add_argument(
        "--exposure-wide",
        action="store_true",
        help="a first pass over all segments of each exposure computes what they share "
        "(the saturation.fixed_map map, a median frame, a trace mask), saved as "
        "<exposure>_shared.fits; then each segment is processed with it",
    )
    _add_common(p)


def make_config(args):
    from .config import parse_refs
    from .memory import capped_to_machine

    base = load_toml(args.config) if args.config else PipelineConfig()
    return base.with_overrides(
        sets=args.sets,
        refs=parse_refs(args.ref),
        skip=args.skip,
        run=args.run_step,
        backend=args.backend,
        save_ramp=args.save_ramp or None,
        max_memory=capped_to_machine(parse_size(args.max_memory)) if args.max_memory else None,
        threads=args.threads,
        exposure_wide=args.exposure_wide or None,
    )


def cmd_run(args):
    from .batch import check_distinct
    from .io import products, reffiles, uncal  # noqa: F401  (imported before freeze_imported)
    from .memory import freeze_imported, keep_freed_memory
    from .pipeline import process_file
    from .pipeline.resume import say_if_overwritten

    config = make_config(args)
    check_distinct(args.uncal)
    if args.report:  # before any work: the extra is there
        require_report_extra()
    if not keep_freed_memory():
        log.debug("could not tune malloc (not glibc); large temporaries are mapped anew")
    freeze_imported()
    failed, rateints, timings = 0, [], {}
    for path, shared in _with_shared(args, config):
        t0 = time.perf_counter()
        try:
            if isinstance(shared, TsogpuError):
                raise shared
            say_if_overwritten(path, args.out, config)
            outputs = process_file(
                path, args.out, config, progress=_progress(args, path), shared=shared
            )
        except TsogpuError as exc:
            failed += 1
            print(f"tsogpu: error: {exc}", file=sys.stderr)
            continue
        for out in outputs:
            print(out)
        rateints += [p for p in outputs if p.name.endswith("_rateints.fits")]
        timings[Path(path).name] = time.perf_counter() - t0
        log.info("%s done in %.2f s", path, timings[Path(path).name])
    if failed:
        print(f"tsogpu: {failed} of {len(args.uncal)} file(s) failed", file=sys.stderr)
        return 2
    if args.report:
        summary = {"timings": timings, "peak_memory": peak_memory()}
        half_width = args.aperture_half_width
        for made in report_products(
            rateints, args.out, aperture_half_width=half_width, summary=summary
        ):
            print(made["report"])
    return 0


def peak_memory():
    """Peak resident memory of this process so far, in bytes (Linux: ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _with_shared(args, config):
    """(path, shared) for each input: ``shared`` None, or with ``exposure_wide`` the first
    pass over the inputs of the path's exposure (or the TsogpuError it raised)."""
    if not config.exposure_wide:
        yield from ((path, None) for path in args.uncal)
        return
    from .batch import group_exposures
    from .exposure import load_or_run

    _, exposures, notes = group_exposures([Path(p) for p in args.uncal])
    for note in notes:
        log.warning("%s", note)
    for exp in exposures:
        try:
            shared = load_or_run(
                exp.paths(), args.out, config, exp.key, progress=_progress(args, exp.key)
            )
        except TsogpuError as exc:
            shared = exc
        for path in exp.paths():
            yield path, shared


def _progress(args, path):
    """A progress line per segment and stage on stderr (a bar on a terminal); none with -q."""
    if args.quiet:
        return None
    name = Path(path).name
    tty = sys.stderr.isatty()

    def show(stage, done, total):
        if tty:
            bar = "#" * (20 * done // total)
            end = "\n" if done == total else ""
            print(f"\r{name} {stage:<16} [{bar:<20}] {done}/{total}", end=end, file=sys.stderr)
        else:
            log.info("%s %s: %d/%d", name, stage, done, total)

    return show


def cmd_demo(args):
    from .memory import keep_freed_memory
    from .pipeline import process_file
    from .simulate import simulate

    keep_freed_memory()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tsogpu-demo-"))
    before, since = (set(out.iterdir()) if out.is_dir() else None), time.time()
    sim = simulate(
        args.mode, out / "inputs", nints=args.nints, ngroups=args.ngroups, seed=args.seed
    )
    print(f"simulated {sim.uncal}")
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    t0 = time.perf_counter()
    outputs = process_file(sim.uncal, out, config, progress=_progress(args, sim.uncal))
    seconds = time.perf_counter() - t0
    print(f"processed in {seconds:.2f} s")
    for path in outputs:
        print(describe(path))
    try:
        require_report_extra()
    except ConfigError as exc:
        print(f"no report: {exc}")
        print(demo_summary(out, before, since))
        return 0
    rateints = [p for p in outputs if p.name.endswith("_rateints.fits")]
    summary = {"timings": {sim.uncal.name: seconds}, "peak_memory": peak_memory()}
    for made in report_products(rateints, out, summary=summary):
        print(f"report: {made['report']} (open it in a browser)")
    print(demo_summary(out, before, since))
    return 0


def cmd_info(args):
    print(describe(args.file))
    return 0


def cmd_simulate(args):
    from .simulate import simulate

    sim = simulate(
        args.mode,
        args.out,
        nints=args.nints,
        ngroups=args.ngroups,
        seed=args.seed,
        one_over_f=args.one_over_f,
        segment=_parse_segment(args.segment),
    )
    print(sim.uncal)
    for reftype, path in sim.refs.items():
        print(f"  --ref {reftype}={path}")
    print(f"truth: {sim.truth}")
    return 0


def _parse_segment(text):
    k, sep, n = text.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise ConfigError(f"--segment {text!r}: expected K/N, e.g. --segment 2/4")
    return int(k), int(n)


def _add_batch_parser(sub):
    p = sub.add_parser(
        "batch",
        help="process many segments on a Dask cluster, resumably",
        description=BATCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="uncal files, globs, folders (their *_uncal.fits) or @LIST (a file of those)",
    )
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--force", action="store_true", help="redo complete products too")
    _add_run_options(p)
    c = p.add_argument_group("cluster")
    c.add_argument(
        "--cluster",
        choices=CLUSTERS,
        default=None,
        help="local: worker processes on this machine (default); slurm: jobs through "
        "dask-jobqueue; cuda: one worker per GPU through dask-cuda",
    )
    c.add_argument(
        "--workers", type=int, metavar="N", help="local worker processes (default: the cores)"
    )
    c.add_argument("--gpus", metavar="LIST", help="GPUs for --cluster cuda, e.g. 0,1 (default all)")
    c.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask scheduler")
    c.add_argument("--dashboard", metavar="ADDRESS", help="serve Dask's dashboard, e.g. :8787")
    from .clusters import SlurmOptions

    d = SlurmOptions()
    s = p.add_argument_group("slurm (--cluster slurm)")
    s.add_argument("--slurm-queue", metavar="NAME", help="partition")
    s.add_argument("--slurm-account", metavar="NAME")
    s.add_argument("--slurm-walltime", metavar="HH:MM:SS", help=f"per job (default {d.walltime})")
    s.add_argument("--slurm-memory", metavar="SIZE", help=f"per job (default {d.memory})")
    s.add_argument(
        "--slurm-cores",
        type=int,
        metavar="N",
        help=f"cores per job, one worker process each (default {d.cores})",
    )
    s.add_argument("--slurm-jobs", type=int, metavar="N", help=f"jobs to start (default {d.jobs})")
    s.add_argument(
        "--slurm-extra",
        action="append",
        default=[],
        metavar="DIRECTIVE",
        help="another #SBATCH directive, e.g. --slurm-extra=--gres=gpu:1 (repeatable)",
    )


BATCH_HELP = """\
Process many uncal segments on a Dask cluster, one task per segment, as `tsogpu run` would
(the same options and products). Inputs are files, globs, folders (their *_uncal.fits) and
@LIST files (one of those per line); segments are grouped into exposures by their keywords
(or names) and EXSEGNUM/EXSEGTOT, and missing segments are reported. With --exposure-wide a
task per exposure runs its first pass before its segments' tasks. Each worker's share:
--threads defaults to the cores over the local workers (1 on other clusters), --max-memory
to half the worker's memory limit, at most an eighth of the machine.

Resumable: each product records a hash of its inputs, references, parameters and tsogpu
version (TSOIHASH); a rerun skips segments whose products are complete with the same hash
and redoes the rest. Ctrl-C stops the batch; the same command resumes it. A failing file is
reported with its reason and the others go on. A line per finished segment on stderr, a
summary table on stdout. Exit codes: 0 every file ok or skipped, 2 any failed, 130 Ctrl-C.

Clusters (pip install 'tsogpu[dask]'): local worker processes, one thread each, --workers N
(default: the cores); --scheduler ADDRESS for a running one; --cluster slurm
('tsogpu[slurm]'), --slurm-jobs jobs of --slurm-cores one-thread workers; --cluster cuda
('tsogpu[cuda-cluster]'), one worker per GPU (--gpus 0,1), backend cupy.
"""


def cmd_batch(args):
    from . import batch, clusters
    from .memory import usable_cores

    cluster = args.cluster or ("cuda" if args.gpus else "local")
    if args.scheduler and args.cluster:
        raise ConfigError("--scheduler uses a running cluster; leave out --cluster")
    if args.gpus and cluster != "cuda":
        raise ConfigError(f"--gpus is for --cluster cuda, not --cluster {cluster}")
    for name in ("workers", "slurm_cores", "slurm_jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            option = "--" + name.replace("_", "-")
            raise ConfigError(f"{option} must be a positive integer, got {value}")
    # distributed logs every worker's start and stop; a failure is in the summary anyway.
    # Its import sets its loggers' levels, so they are set here after it.
    clusters.require("distributed")
    quiet_level = logging.INFO if args.verbose else logging.CRITICAL
    for name in ("distributed", "dask_jobqueue", "dask_cuda"):
        logging.getLogger(name).setLevel(quiet_level)
    config = clusters.batch_config(make_config(args), cluster, args.workers, args.scheduler)
    paths, exposures, warnings = batch.group_exposures(batch.expand_inputs(args.inputs))
    for warning in warnings:
        log.warning("%s", warning)
    given = {
        "queue": args.slurm_queue,
        "account": args.slurm_account,
        "walltime": args.slurm_walltime,
        "memory": args.slurm_memory,
        "cores": args.slurm_cores,
        "jobs": args.slurm_jobs,
        "extra": tuple(args.slurm_extra),
    }
    slurm = clusters.SlurmOptions(**{k: v for k, v in given.items() if v is not None})
    if args.scheduler:
        where = f"the scheduler at {args.scheduler}"
    elif cluster == "local":
        where = f"{args.workers or usable_cores()} local worker processes"
    elif cluster == "slurm":
        where = f"{slurm.jobs} SLURM job(s) of {slurm.cores} workers"
    else:
        where = f"one worker per GPU ({args.gpus or 'all'})"
    log.info("%d segment(s) of %d exposure(s) on %s", len(paths), len(exposures), where)

    def show(done, total, result):
        if not args.quiet:
            print(batch.format_progress(done, total, result), file=sys.stderr, flush=True)

    with clusters.connect(
        cluster,
        workers=args.workers,
        scheduler=args.scheduler,
        slurm=slurm,
        gpus=args.gpus,
        dashboard=args.dashboard,
        log_level=quiet_level,
    ) as client:
        report = batch.run_batch(
            paths,
            args.out,
            config,
            client,
            force=args.force,
            tune_malloc=not args.scheduler,  # workers made for this batch only
            on_result=show,
        )
        report.warnings = warnings
        print(batch.format_summary(report), flush=True)  # before the cluster closes
    if report.interrupted:
        print("tsogpu: interrupted; the same command resumes the batch", file=sys.stderr)
        return signals.exit_code()
    return 0 if report.ok else 2


COMMANDS = {
    "run": cmd_run,
    "demo": cmd_demo,
    "info": cmd_info,
    "simulate": cmd_simulate,
    "batch": cmd_batch,
    "compare": cmd_compare,
    "report": cmd_report,
    "sweep": lambda args: cmd_sweep(args, make_config),
}


def main(argv=None):
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # not "astropy": creating its logger before astropy is imported breaks its logger class
    for noisy in ("stpipe", "jwst", "stdatamodels", "asdf", "crds"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not args.verbose:
        warnings.simplefilter("ignore")
    signals.install()  # SIGTERM as Ctrl-C: cleanup, then exit 143
    try:
        return COMMANDS[args.command](args)
    except TsogpuError as exc:
        print(f"tsogpu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        code = signals.exit_code(exc)
        print(signals.describe(code), file=sys.stderr)
        return code
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"tsogpu: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
