"""The HTML report of an exposure: one self-contained ``<name>_report.html``.

The page needs nothing but itself: the figures are embedded as ``data:`` URIs, the style is
inline, there is no script, and its Content-Security-Policy forbids anything else, so a copy
mailed or archived shows the same as the original and the browser refuses, loudly, any
resource a later edit might add. Links to the products are relative, so the folder can move.
Every string that comes from a file (attributes, parameters, paths, warnings) is escaped.
"""

import base64
import datetime
import json
import os
from collections.abc import Mapping
from html import escape
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..io.atomic import write_atomically
from .figures import FIGURES
from .maps import pixel_maps, time_mjd

# the Dataset attributes (tsogpu.report.exposure_product: the products' own header cards)
# each row of the summary is read from
PROVENANCE_ATTRS = {
    "tsogpu version": ("TSOVER",),
    "backend": ("TSOBACK",),
    "device": ("TSODEV",),
    "kernel hash": ("TSOKHASH",),
    "CRDS context": ("CRDS_CTX",),
}
PARAMETER_ATTRS = ("TSOPARS",)  # JSON
INPUT_ATTRS = ("segments",)  # JSON: one record per segment file
REFERENCE_PREFIX = "R_"  # R_<TYPE> cards: the reference files

# no script, no external resource of any kind: images from data: URIs, inline style only
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 72rem; padding: 1rem 1.5rem 3rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; word-break: break-all; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2rem; }
.sub { color: #555; margin-top: 0; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; font-size: 0.92rem; }
th { background: #f2f2f4; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .path { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.88rem;
              word-break: break-all; }
ul.warnings li { color: #8a4b00; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; font-size: 0.92rem; margin-top: 0.3rem; }
.missing { color: #a00; }
details summary { cursor: pointer; margin: 0.4rem 0; }
"""


def report_path(out_dir, name):
    """``<out_dir>/<name>_report.html``."""
    return Path(out_dir) / f"{name}_report.html"


def write_report(ds, out_dir, name, *, figures, products, summary=None, maps=None):
    """Write the self-contained HTML report of an exposure.

    Parameters
    ----------
    ds : xarray.Dataset
        The exposure product; its attributes give the provenance (:data:`PROVENANCE_ATTRS`),
        the parameters (TSOPARS, JSON), the reference files (the R_<TYPE> cards) and the
        segment files (``segments``, JSON).
    out_dir : str or os.PathLike
        The folder of the products, where the report is written.
    name : str
        The exposure's name.
    figures : dict of str to path
        Figure key (:data:`tsogpu.report.figures.FIGURES`) -> PNG, embedded in that order.
    products : dict of str to path, or iterable of path
        The files to link to (label -> path, or paths labelled by their file names),
        linked relative to ``out_dir``.
    summary : dict, optional
        What the run knows and the product does not: ``inputs`` (the segment files),
        ``timings`` (label -> seconds), ``peak_memory`` (bytes, or label -> bytes),
        ``warnings`` (strings); ``backend`` and ``device`` override the attributes. Any other
        key is shown as a row of the summary.
    maps : tsogpu.report.maps.PixelMaps, optional
        The per-pixel maps, when already computed (else computed here).

    Returns
    -------
    pathlib.Path
        The report written.
    """
    out_dir = Path(out_dir)
    maps = pixel_maps(ds) if maps is None else maps
    summary = dict(summary or {})
    warnings = [str(w) for w in summary.pop("warnings", ()) or ()]
    parts = [
        _head(name),
        _summary_section(ds, name, summary, maps),
        _warnings_section(warnings),
        _figures_section(figures),
        _products_section(products, out_dir),
        _parameters_section(ds),
        "</body>\n</html>\n",
    ]
    text = "\n".join(p for p in parts if p)
    return write_atomically(report_path(out_dir, name), lambda fh: fh.write(text.encode()))


def _e(value):
    return escape(str(value), quote=True)


def _attr(ds, names):
    for n in names:
        value = ds.attrs.get(n)
        if value is not None and not (isinstance(value, str) and not value):
            return value
    return None


def _json(value):
    """An attribute that may hold JSON (a string) or the object itself."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _rows(rows):
    return "\n".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)


def _head(name):
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tsogpu {_e(__version__)}">
<link rel="icon" href="data:,">
<title>{_e(name)}: tsogpu Stage-1 report</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{_e(name)}</h1>
<p class="sub">tsogpu {_e(__version__)} Stage-1 (calwebb_detector1) report, generated {now}</p>
<nav><a href="#summary">Summary</a><a href="#figures">Figures</a><a href="#products">Products</a>
<a href="#parameters">Parameters and reference files</a></nav>"""


def _list(values):
    values = _json(values)
    if isinstance(values, str):
        values = [v for v in values.splitlines() if v.strip()]
    if isinstance(values, Mapping):
        values = [f"{k}: {v}" for k, v in values.items()]
    # the exposure product's "segments": one record per file, named by its "file"
    values = [v.get("file", v) if isinstance(v, Mapping) else v for v in values]
    return "<br>".join(f'<span class="path">{_e(v)}</span>' for v in values)


def _seconds(s):
    s = float(s)
    return f"{s:.3g} s" if s < 60 else f"{s:.1f} s ({s / 60:.1f} min)"


def _bytes(n):
    n = float(n)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def _summary_section(ds, name, summary, maps):
    rows = [("exposure", _e(name))]
    inputs = summary.pop("inputs", None) or _attr(ds, INPUT_ATTRS)
    if inputs is not None:
        rows.append(("inputs", _list(inputs)))
    ny, nx = maps.median_rate.shape
    rows.append(("integrations × rows × columns", f"{maps.nints} × {ny} × {nx}"))
    t = time_mjd(ds)
    if t.size:
        span = (float(t.max()) - float(t.min())) * 24.0
        rows.append(
            ("time (MJD UTC)", f"{float(t.min()):.6f} to {float(t.max()):.6f} ({span:.3f} h)")
        )
    for label, names in PROVENANCE_ATTRS.items():
        value = summary.pop(label, None) or _attr(ds, names)
        if value is not None:
            rows.append((label, f"<code>{_e(value)}</code>"))
    timings = summary.pop("timings", None)
    if timings:
        cells = "<br>".join(f"{_e(k)}: {_e(_seconds(v))}" for k, v in dict(timings).items())
        rows.append(("timings", cells))
    peak = summary.pop("peak_memory", None)
    if peak is not None:
        if isinstance(peak, Mapping):
            cell = "<br>".join(f"{_e(k)}: {_e(_bytes(v))}" for k, v in peak.items())
        else:
            cell = _e(_bytes(peak))
        rows.append(("peak memory", cell))
    for key, value in summary.items():
        rows.append((str(key), _e(value)))
    fractions = maps.fractions()
    flag_rows = "\n".join(
        f'<tr><th>{_e(k)}</th><td class="num">{100.0 * f:.4g} %</td>'
        f'<td class="num">{int(maps.per_time[k].sum())}</td></tr>'
        for k, f in fractions.items()
    )
    return f"""<h2 id="summary">Summary</h2>
<table class="summary">
{_rows(rows)}
</table>
<h3>Flagged pixels</h3>
<table class="flags">
<tr><th>flag</th><th>fraction of pixel-integrations</th><th>pixel-integrations</th></tr>
{flag_rows}
</table>"""


def _warnings_section(warnings):
    if not warnings:
        return '<h2 id="warnings">Warnings</h2>\n<p>None.</p>'
    items = "\n".join(f"<li>{_e(w)}</li>" for w in warnings)
    return f'<h2 id="warnings">Warnings</h2>\n<ul class="warnings">\n{items}\n</ul>'


def _figures_section(figures):
    order = [k for k in FIGURES if k in figures] + [k for k in figures if k not in FIGURES]
    blocks = []
    for key in order:
        path = Path(figures[key])
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = FIGURES[key][1] if key in FIGURES else key
        blocks.append(
            f'<figure id="fig-{_e(key)}">\n'
            f'<img src="data:image/png;base64,{data}" alt="{_e(caption)}">\n'
            f'<figcaption>{_e(caption)} <span class="path">({_e(path.name)})</span>'
            f"</figcaption>\n</figure>"
        )
    return '<h2 id="figures">Figures</h2>\n' + "\n".join(blocks)


def _products_section(products, out_dir):
    if isinstance(products, Mapping):
        items = list(products.items())
    else:
        items = [(Path(p).name, p) for p in products]
    if not items:
        return '<h2 id="products">Products</h2>\n<p>None given.</p>'
    rows = []
    for label, path in items:
        path = Path(path)
        href = quote(Path(os.path.relpath(path, out_dir)).as_posix())
        note = "" if path.exists() else ' <span class="missing">(missing)</span>'
        size = f"{_bytes(path.stat().st_size)}" if path.exists() else ""
        rows.append(
            f'<tr><th>{_e(label)}</th><td><a class="path" href="{_e(href)}">{_e(path.name)}</a>'
            f'{note}</td><td class="num">{_e(size)}</td></tr>'
        )
    return (
        '<h2 id="products">Products</h2>\n<table class="products">\n'
        + "\n".join(rows)
        + ("\n</table>")
    )


def _flatten(obj, prefix=""):
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], obj


def _parameters_section(ds):
    params = _json(_attr(ds, PARAMETER_ATTRS))
    refs = {
        k[len(REFERENCE_PREFIX) :].lower(): v
        for k, v in ds.attrs.items()
        if k.startswith(REFERENCE_PREFIX)
    }
    out = ['<h2 id="parameters">Parameters and reference files</h2>']
    if isinstance(params, Mapping):
        rows = [
            (k, f"<code>{_e(json.dumps(v) if not isinstance(v, str) else v)}</code>")
            for k, v in _flatten(params)
        ]
        out.append(
            f"<details open><summary>Parameters ({len(rows)})</summary>\n<table>\n"
            f"{_rows(rows)}\n</table>\n</details>"
        )
    elif params is not None:
        out.append(f"<p>Parameters: <code>{_e(params)}</code></p>")
    if isinstance(refs, Mapping):
        rows = [(k, f'<span class="path">{_e(v)}</span>') for k, v in refs.items()]
        out.append(
            f"<details open><summary>Reference files ({len(rows)})</summary>\n<table>\n"
            f"{_rows(rows)}\n</table>\n</details>"
        )
    elif refs is not None:
        out.append(f"<p>Reference files: <code>{_e(refs)}</code></p>")
    shown = set(PARAMETER_ATTRS + INPUT_ATTRS).union(*PROVENANCE_ATTRS.values())
    shown |= {k for k in ds.attrs if k.startswith(REFERENCE_PREFIX)}  # the reference files
    rest = [(k, f"<code>{_e(v)}</code>") for k, v in ds.attrs.items() if k not in shown]
    if rest:
        out.append(
            f"<details><summary>Other attributes ({len(rest)})</summary>\n<table>\n"
            f"{_rows(rest)}\n</table>\n</details>"
        )
    return "\n".join(out)
