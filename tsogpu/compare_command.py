"""``tsogpu compare A B``: its options and what it prints (the comparison is tsogpu.compare)."""

from __future__ import annotations

import argparse

from .errors import ConfigError


def add_compare_parser(sub, add_common):
    from .compare import COMMAND_HELP  # beside what it describes; NumPy only

    p = sub.add_parser(
        "compare",
        help="compare two products of the same exposure (tsogpu, jwst, another pipeline)",
        description=COMMAND_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A", help="a _rateints or _rate product (SCI, ERR, DQ)")
    p.add_argument("b", metavar="B", help="the same kind of product of the same segment")
    p.add_argument("--rtol", type=float, default=1e-5, metavar="R", help="tolerance (default 1e-5)")
    p.add_argument("--figure", metavar="PATH", help="also draw it (.png, .pdf; matplotlib)")
    p.add_argument(
        "--extensions", metavar="LIST", help="e.g. SCI,ERR,DQ (default: all in both products)"
    )
    add_common(p)


def cmd_compare(args):
    from .compare import compare_figure, compare_products, format_comparison

    extensions = None
    if args.extensions is not None:
        extensions = [e for e in args.extensions.split(",") if e.strip()]
    if extensions == []:
        raise ConfigError(f"--extensions {args.extensions!r}: expected e.g. SCI,ERR,DQ")
    comparison = compare_products(args.a, args.b, rtol=args.rtol, extensions=extensions)
    print(format_comparison(comparison))
    if args.figure:
        written = compare_figure(comparison, args.figure)
        print(f"figure: {written}" if written else "figure skipped: matplotlib is not installed")
    return 0 if comparison.within() else 1  # 1: a result (not within), not an error
