"""``tsogpu sweep`` on the command line: the parser and the command (:mod:`tsogpu.sweep`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SWEEP_HELP = """\
Run the pipeline over a grid of parameter values, the steps the grid leaves alone once.

  tsogpu sweep UNCAL... --out DIR --grid STEP.PARAM=V1,V2,... [--grid ...] [run options]

Each --grid gives a parameter's values (a list value in brackets: [0,1],[2]); the points are
the cartesian product of the grids. The steps before the first one a grid parameter belongs
to run once per segment, and their ramp is kept (in memory when it fits --max-memory beside a
run, else in a scratch file in DIR); each point then runs the later steps: for jump.* and
ramp_fit.* parameters, jump, ramp_fit and gain_scale. Each point's products go to
DIR/STEP.PARAM=VALUE[,STEP.PARAM=VALUE...]/, bit for bit those of
  tsogpu run UNCAL --out DIR/... --set STEP.PARAM=VALUE ...
with the same other options; DIR/sweep.csv has a row per point and segment (flag fractions,
the median and robust scatter of the rates, the white light's point-to-point scatter).
"""


def add_sweep_parser(sub, add_run_options):
    """``tsogpu sweep`` in the subparsers ``sub``; ``add_run_options(parser)`` adds the options
    it shares with ``tsogpu run`` (``--ref``, ``--set``, ``--backend``, ``--max-memory``, ...)."""
    p = sub.add_parser(
        "sweep",
        help="run a grid of parameter values, the shared steps once",
        description=SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("uncal", nargs="+", help="uncal segment files (*_uncal.fits)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="STEP.PARAM=V1,V2,...",
        help="a parameter's values (repeatable: the points are the cartesian product)",
    )
    add_run_options(p)
    return p


def cmd_sweep(args, make_config):
    """``tsogpu sweep``: 0 when every point of every segment is written; its products' folders
    on stdout, then the summary's path. ``make_config(args)``: the run options' config."""
    from .batch import check_distinct
    from .errors import ConfigError
    from .memory import keep_freed_memory
    from .sweep import parse_grid, sweep_file
    from .sweep_summary import Summary, write_csv

    if args.exposure_wide:
        raise ConfigError("sweep: --exposure-wide is not supported by sweep")
    config = make_config(args)
    points = parse_grid(args.grid, config, args.sets)
    check_distinct(args.uncal)
    keep_freed_memory()
    out = Path(args.out)
    summary = Summary()

    def done(point):
        summary.add(point)
        for path in point.written:
            print(path, flush=True)

    try:
        for path in args.uncal:
            sweep_file(path, out, points, on_point=done)
    finally:
        if summary.rows:  # what was done, even when a segment failed
            print(write_csv(out / "sweep.csv", summary.rows), file=sys.stdout)
    return 0
