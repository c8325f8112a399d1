"""The exposure product and its report from the command line: ``tsogpu report PRODUCTS...``
and ``tsogpu run --report`` (and the demo's).

Importing this module imports none of the ``report`` extra's packages; :func:`report_products`
checks for them first (:func:`tsogpu.report.require_report_extra`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError
from . import require_report_extra

log = logging.getLogger(__name__)

REPORT_HELP = """\
Merge the _rateints products of an exposure's segments (any order, from any machine) into
<exposure>_tso.nc (netCDF-4: rateints, err, dq on (time, y, x); the white-light curve and the
detector-systematics time series on time; per-pixel read times), then write its figures
(PNG), the median rate and DQ map as DS9-readable FITS images, and <exposure>_report.html, a
self-contained page with all of them. Folders given are searched for *_rateints.fits; each
exposure found gets its own product and report. Needs pip install 'tsogpu[report]'.
"""


def add_report_options(p):
    """The options ``tsogpu report`` and ``tsogpu run --report`` share."""
    p.add_argument(
        "--aperture-half-width",
        type=int,
        default=None,
        metavar="PIXELS",
        help="half-width of the white-light aperture across the dispersion (default: 3 sigma "
        "of the trace's measured width)",
    )


def add_report_parser(sub):
    """``tsogpu report`` in the command line's subparsers ``sub``."""
    p = sub.add_parser(
        "report",
        help="the exposure product (_tso.nc), figures and HTML report of rateints products",
        description=REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("products", nargs="+", help="_rateints.fits files, or folders holding them")
    p.add_argument("--out", default=None, help="output folder (default: the first product's)")
    add_report_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the files written")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages")
    return p


def cmd_report(args):
    """``tsogpu report``: 0 when every exposure got its report."""
    paths = rateints_paths(args.products)
    out = Path(args.out) if args.out else paths[0].parent
    for made in report_products(paths, out, aperture_half_width=args.aperture_half_width):
        print(made["report"])
    return 0


def rateints_paths(items):
    """The ``_rateints.fits`` files among ``items`` (files, and folders searched one level)."""
    paths = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(item.glob("*_rateints.fits"))
            if not found:
                raise InputError(f"{item}: no *_rateints.fits in this folder")
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            raise InputError(f"{item}: no such file or folder")
    return paths


def report_products(rateints_paths, out_dir, *, aperture_half_width=None, summary=None):
    """For each exposure among ``rateints_paths``: its ``_tso.nc``, figures, DS9 images and
    HTML report in ``out_dir``; a list of :func:`tsogpu.report.report.make_report`'s dicts,
    each with ``product`` (the ``_tso.nc``) added."""
    require_report_extra()
    from ..batch import group_exposures
    from .exposure_product import build_exposure_product
    from .report import make_report

    _, exposures, notes = group_exposures([Path(p) for p in rateints_paths])
    for note in notes:
        log.warning("%s", note)
    made = []
    for exposure in exposures:
        segments = exposure.paths()
        path, ds = build_exposure_product(
            segments, out_dir, aperture_half_width=aperture_half_width
        )
        products = {"exposure product": path}
        for seg in segments:
            products[seg.name] = seg
            rate = seg.with_name(seg.name.replace("_rateints.fits", "_rate.fits"))
            if rate.is_file():
                products[rate.name] = rate
        info = dict(summary or {})
        info.setdefault("inputs", [str(p) for p in segments])
        out = make_report(ds, out_dir, ds.attrs["exposure"], products=products, summary=info)
        out["product"] = path
        log.info("%s: exposure product %s, report %s", exposure.key, path, out["report"])
        made.append(out)
    return made
