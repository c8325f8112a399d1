"""The ``tsogpu`` command. The only module that configures logging.

Exit codes: 0 success; 2 bad input, bad option or a failed file (one line saying why);
1 an unexpected internal error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import __version__
from .config import BACKENDS, REFTYPES, STEP_ORDER, PipelineConfig, load_toml, parse_size
from .errors import ConfigError, TsogpuError

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

    sim = sub.add_parser("simulate", help="write a synthetic uncal segment and reference files")
    sim.add_argument("--mode", default="nrs_bots")
    sim.add_argument("--nints", type=int, default=20)
    sim.add_argument("--ngroups", type=int, default=10)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--one-over-f", action="store_true", help="add 1/f noise")
    sim.add_argument("--out", required=True, help="output folder")
    _add_common(sim)
    return parser


RUN_HELP = f"""\
Process uncal segments through the near-infrared Stage-1 steps, in jwst's order:
  {" -> ".join(STEP_ORDER)}
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
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STEP",
        choices=STEP_ORDER,
        help="skip a step (repeatable)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="compute backend (default numpy, or the config file's)",
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
    _add_common(p)


def _parse_refs(items):
    refs = {}
    for item in items:
        reftype, sep, path = item.partition("=")
        if not sep or not reftype or not path:
            raise ConfigError(f"--ref {item!r}: expected TYPE=PATH, e.g. --ref mask=mask.fits")
        refs[reftype.strip()] = path.strip()
    return refs


def make_config(args):
    base = load_toml(args.config) if args.config else PipelineConfig()
    return base.with_overrides(
        sets=args.sets,
        refs=_parse_refs(args.ref),
        skip=args.skip,
        backend=args.backend,
        save_ramp=args.save_ramp or None,
        max_memory=parse_size(args.max_memory) if args.max_memory else None,
        threads=args.threads,
    )


def cmd_run(args):
    from .pipeline import keep_freed_memory, process_file

    config = make_config(args)
    if not keep_freed_memory():
        log.debug("could not tune malloc (not glibc); large temporaries are mapped anew")
    failed = 0
    for path in args.uncal:
        t0 = time.perf_counter()
        try:
            outputs = process_file(path, args.out, config, progress=_progress(args, path))
        except TsogpuError as exc:
            failed += 1
            print(f"tsogpu: error: {exc}", file=sys.stderr)
            continue
        for out in outputs:
            print(out)
        log.info("%s done in %.2f s", path, time.perf_counter() - t0)
    if failed:
        print(f"tsogpu: {failed} of {len(args.uncal)} file(s) failed", file=sys.stderr)
        return 2
    return 0


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
    from .pipeline import keep_freed_memory, process_file
    from .simulate import simulate

    keep_freed_memory()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tsogpu-demo-"))
    sim = simulate(
        args.mode, out / "inputs", nints=args.nints, ngroups=args.ngroups, seed=args.seed
    )
    print(f"simulated {sim.uncal}")
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    t0 = time.perf_counter()
    outputs = process_file(sim.uncal, out, config, progress=_progress(args, sim.uncal))
    print(f"processed in {time.perf_counter() - t0:.2f} s")
    for path in outputs:
        print(describe(path))
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
    )
    print(sim.uncal)
    for reftype, path in sim.refs.items():
        print(f"  --ref {reftype}={path}")
    print(f"truth: {sim.truth}")
    return 0


def describe(path):
    """A short human-readable summary of an uncal file or a product."""
    from .io.uncal import image_dtype, open_fits

    lines = [str(path)]
    with open_fits(path) as hdul:
        h = hdul[0].header
        kind = h.get("DATAMODL", "FITS")
        lines.append(
            f"  {kind}: {h.get('INSTRUME', '?')} {h.get('DETECTOR', '?')} "
            f"{h.get('EXP_TYPE', '?')} {h.get('SUBARRAY', '?')} {h.get('READPATT', '?')}"
        )
        lines.append(
            f"  NINTS={h.get('NINTS')} NGROUPS={h.get('NGROUPS')} NFRAMES={h.get('NFRAMES')} "
            f"GROUPGAP={h.get('GROUPGAP')} TGROUP={h.get('TGROUP')} NOUTPUTS={h.get('NOUTPUTS')}"
        )
        if h.get("EXSEGNUM") is not None:
            lines.append(
                f"  segment {h.get('EXSEGNUM')} of {h.get('EXSEGTOT')}: "
                f"integrations {h.get('INTSTART')}-{h.get('INTEND')}"
            )
        for hdu in hdul[1:]:
            name = hdu.name
            if hdu.is_image and hdu.shape:
                lines.append(f"  {name:<12} {str(hdu.shape):<26} {image_dtype(hdu)}")
            elif not hdu.is_image:
                lines.append(f"  {name:<12} table, {hdu.header.get('NAXIS2', 0)} rows")
        steps = [f"{k[2:]}={h[k]}" for k in h if k.startswith("S_")]
        if steps:
            lines.append("  steps: " + " ".join(steps))
        refs = [f"{k}={h[k]}" for k in h if k.startswith("R_")]
        if refs:
            lines.append("  references: " + " ".join(refs))
        if "TSOVER" in h:
            lines.append(f"  made by tsogpu {h['TSOVER']} on backend {h.get('TSOBACK')}")
    return "\n".join(lines)


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "info": cmd_info, "simulate": cmd_simulate}


def main(argv=None):
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # not "astropy": creating its logger before astropy is imported breaks its logger class
    for noisy in ("stpipe", "jwst", "stdatamodels", "asdf", "crds"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not args.verbose:
        warnings.simplefilter("ignore")
    try:
        return COMMANDS[args.command](args)
    except TsogpuError as exc:
        print(f"tsogpu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tsogpu: interrupted", file=sys.stderr)
        return 130
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
