"""Evidence for ``refpix.sky_method`` (docs/options.md): residual 1/f and white-light scatter.

Simulated NIRSpec BOTS (G395H, SUB2048 cut to 32 x 512) and NIRISS SOSS (SUBSTRIP256 cut to
96 x 512) segments with injected 1/f (6 DN rms per fast-read line), run with jump skipped:

* ``no 1/f injected``: the same seed without 1/f (the truth's noise floor);
* ``jwst refpix``: the default chain (jwst's reference-pixel correction only);
* ``glbs`` and ``roeba``: ``refpix.sky_method``, automatic trace mask.

Figures: ``line_rms``, the rms over integrations and lines of the per-line median of
(rateints - truth rate) over the sky pixels, DN/s; ``wlc_ppm``, the rms of the white light
curve (the sum of rateints over the trace mask, less pixels NaN in some integration)
divided by the injected light curve, normalised, in ppm.

Power spectra: per group, the residual is the ramp after dark subtraction less the truth
(``rate`` times the group's mean frame time), saturated groups left out. Its median over the
pixels of each fast-read line (a DMS column here) is a time series sampled once per line
time, ``(pixels per line + LINE_OVERHEAD) * PIXEL_TIME`` of tsogpu.simulate. Each plane's
series (lines with no pixel of the set left out, its mean removed) gives a one-sided PSD,
DN^2/Hz, averaged over integrations and groups. ``lowf_*_dn2``: its integral over
0 < f < Nyquist / 10, DN^2; ``lowf_highf_*``: its mean there over its mean above Nyquist / 2
(1 for white noise). Two pixel sets: ``sky`` (outside the trace mask: the pixels the sky
correction measures, so after glbs/roeba their line medians are near zero by construction)
and ``trace`` (inside the mask, which the correction does not measure: a held-out check).
The ``injected 1/f`` row is the truth's 1/f cube through the same medians;
``lowf_trace_excess`` is (run - no 1/f run) / injected, on the trace pixels.

Writes bench/results/oneoverf.json and docs/img/oneoverf_psd.svg (the PSDs, log-binned).
Run: ``python bench/oneoverf_evidence.py`` (under a minute on 2 cores).
"""

import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from tsogpu.config import PipelineConfig
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_primary_header, read_uncal
from tsogpu.pipeline import run_segment
from tsogpu.simulate import LINE_OVERHEAD, PIXEL_TIME, simulate

CASES = {
    "nrs_bots": dict(nints=40, ngroups=5, nrows=None, ncols=512),
    "niriss_soss": dict(nints=40, ngroups=5, nrows=96, ncols=512),
}
ROOT = Path(__file__).resolve().parent.parent
SATURATED = 2  # GROUPDQ bit
COLORS = {  # the figure's curves
    "injected 1/f": "#000000",
    "jwst refpix": "#d62728",
    "glbs": "#1f77b4",
    "roeba": "#2ca02c",
    "no 1/f injected": "#7f7f7f",
}


def _run(sim, sets, mask=None):
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, skip={"jump"})
    config = config.with_overrides(sets=sets)
    exposure, _, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    seg = read_uncal(sim.uncal)
    if mask is not None:
        seg.trace_mask = mask
    return run_segment(seg, refs, config)


def _line_medians(cube, pixels, line_axis):
    """(nints, ngroups, nlines) medians of ``cube`` over ``pixels`` along each line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lines with no pixel of the set
        return np.nanmedian(np.where(pixels, cube, np.nan), axis=2 if line_axis == "x" else 3)


def _psd(per_line, dt):
    """Frequencies (Hz) and the mean one-sided PSD (DN^2/Hz) of the per-plane line series."""
    x = per_line[..., np.isfinite(per_line).all(axis=(0, 1))]
    x = x - x.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    power = (np.abs(np.fft.rfft(x, axis=-1)) ** 2).mean(axis=(0, 1)) * 2 * dt / n
    return np.fft.rfftfreq(n, dt), power


def _low(freq, power):
    """The PSD's integral over 0 < f < Nyquist / 10 (DN^2), and its mean there over its mean
    above Nyquist / 2 (1 for white noise)."""
    band = (freq > 0) & (freq < 0.1 * freq[-1])
    return float(power[band].sum() * freq[1]), float(
        power[band].mean() / power[freq > 0.5 * freq[-1]].mean()
    )


def _binned(freq, power, nbins=24):
    """The PSD averaged in log-spaced frequency bins (for the JSON and the figure)."""
    idx = np.digitize(freq[1:], np.geomspace(freq[1], freq[-1] * 1.001, nbins + 1))
    keep = np.unique(idx)
    f = [float(freq[1:][idx == b].mean()) for b in keep]
    p = [float(power[1:][idx == b].mean()) for b in keep]
    return [round(v, 3) for v in f], [float(f"{v:.4g}") for v in p]


def _figures(result, sim, mask, line_axis, sets, dt):
    truth = np.load(sim.truth)
    refpix = truth["refpix"]
    res = result.rateints[0] - truth["rate"]
    res = np.where(mask | refpix, np.nan, res)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lines of reference pixels only
        per_line = np.nanmedian(res, axis=1 if line_axis == "x" else 2)
    per_line -= np.nanmedian(per_line, axis=-1, keepdims=True)  # a level is not 1/f
    aperture = mask & ~refpix & np.isfinite(result.rateints[0]).all(axis=0)  # no saturated
    flux = np.where(aperture, result.rateints[0], 0.0).sum(axis=(1, 2), dtype=np.float64)
    wlc = flux / truth["light_curve"]
    row = {
        "line_rms": float(np.sqrt(np.nanmean(per_line**2))),
        "wlc_ppm": float(np.std(wlc / wlc.mean()) * 1e6),
    }
    # per-group residual: the ramp (after dark) less the truth rate times the group time
    hdr = read_primary_header(sim.uncal)
    nf, gg, ngroups = hdr["NFRAMES"], hdr["GROUPGAP"], result.segment.data.shape[1]
    frames = np.arange(ngroups)[:, None] * (nf + gg) + np.arange(nf)[None, :]
    t_group = (frames + 1).mean(axis=1) * hdr["TFRAME"]
    cube = result.segment.data - truth["rate"][:, None] * t_group[:, None, None]
    cube[(result.segment.groupdq & SATURATED) != 0] = np.nan
    psds = {k: _psd(_line_medians(cube, pix, line_axis), dt) for k, pix in sets.items()}
    return row | _lows(psds), psds


def _lows(psds):
    out = {}
    for k, fp in psds.items():
        out[f"lowf_{k}_dn2"], out[f"lowf_highf_{k}"] = _low(*fp)
    return out


def _svg(table, path):
    """Log-log PSD panels (rows: modes, columns: pixel sets), hand-written SVG."""
    w, h, left, top = 330, 230, 70, 30
    modes = [m for m in CASES if m in table]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w + 150}" '
        f'height="{len(modes) * h + 20}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]

    def text(x, y, s, anchor="middle", extra=""):
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{s}</text>')

    def line(pts, name):
        dash = {"roeba": "6,3", "no 1/f injected": "2,2"}.get(name)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        xy = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        out.append(f'<polyline points="{xy}" fill="none" stroke="{COLORS[name]}" '
                   f'stroke-width="1.5"{style}/>')  # fmt: skip

    for r, mode in enumerate(modes):
        for c, key in enumerate(("sky", "trace")):
            psd = table[mode]["psd"][key]
            x0, y0, pw, ph = c * w + left, r * h + top, w - left - 15, h - top - 45
            lf = np.log10(psd["freq_hz"])
            lp = {n: np.log10(np.maximum(psd[n], 1e-30)) for n in COLORS}
            xlo, xhi = np.floor(lf.min()), np.ceil(lf.max())
            ylo = np.floor(min(v.min() for v in lp.values()))
            yhi = np.ceil(max(v.max() for v in lp.values()))
            sx = np.poly1d([pw / (xhi - xlo), x0 - xlo * pw / (xhi - xlo)])  # log f to x
            sy = np.poly1d([-ph / (yhi - ylo), y0 + yhi * ph / (yhi - ylo)])  # log PSD to y
            text(x0 + pw / 2, y0 - 8, f"{mode}, {key} pixels")
            out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" '
                       'stroke="black"/>')  # fmt: skip
            for d in range(int(xlo), int(xhi) + 1):
                text(sx(d), y0 + ph + 14, f"1e{d}")
            for d in range(int(ylo), int(yhi) + 1):
                text(x0 - 4, sy(d) + 4, f"1e{d}", "end")
            text(x0 + pw / 2, y0 + ph + 30, "frequency (Hz)")
            ym = y0 + ph / 2
            text(x0 - 45, ym, "PSD (DN²/Hz)", extra=f' transform="rotate(-90 {x0 - 45} {ym})"')
            for name in COLORS:
                line(zip(sx(lf), sy(lp[name]), strict=True), name)
    for i, name in enumerate(COLORS):
        y = top + 10 + 16 * i
        line([(2 * w, y), (2 * w + 20, y)], name)
        text(2 * w + 25, y + 4, name, "start")
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def main(
    out=ROOT / "bench" / "results" / "oneoverf.json",
    figure=ROOT / "docs" / "img" / "oneoverf_psd.svg",
):
    table = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM",
        "date": time.strftime("%Y-%m-%d"),
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for mode, kw in CASES.items():
            kw = {k: v for k, v in kw.items() if v is not None}
            noisy = simulate(mode, Path(tmp) / mode, seed=7, one_over_f=True,
                             full_frame_refs=False, **kw)  # fmt: skip
            clean = simulate(mode, Path(tmp) / f"{mode}_clean", seed=7, one_over_f=False,
                             full_frame_refs=False, **kw)  # fmt: skip
            runs = {m: _run(noisy, [f"refpix.sky_method={m}"]) for m in ("glbs", "roeba")}
            mask = runs["glbs"].segment.trace_mask  # one aperture and sky for every run
            axis = runs["glbs"].one_over_f.line_axis
            refpix = np.load(noisy.truth)["refpix"]
            sets = {"sky": ~(mask | refpix), "trace": mask & ~refpix}
            line_pixels = noisy.shape[2] if axis == "x" else noisy.shape[3]
            dt = (line_pixels + LINE_OVERHEAD) * PIXEL_TIME  # one fast-read line, s
            runs = {"no 1/f injected": _run(clean, []), "jwst refpix": _run(noisy, []), **runs}
            rows, psds = {}, {}
            for name, r in runs.items():
                sim = clean if name == "no 1/f injected" else noisy
                rows[name], psds[name] = _figures(r, sim, mask, axis, sets, dt)
            injected = np.load(noisy.truth)["one_over_f"]
            psds["injected 1/f"] = {
                k: _psd(_line_medians(injected, pix, axis), dt) for k, pix in sets.items()
            }
            for row in rows.values():
                row["lowf_trace_excess"] = (
                    row["lowf_trace_dn2"] - rows["no 1/f injected"]["lowf_trace_dn2"]
                ) / _low(*psds["injected 1/f"]["trace"])[0]
            rows["injected 1/f"] = _lows(psds["injected 1/f"])
            freq = psds["injected 1/f"]["sky"][0]
            table[mode] = {
                "shape": list(noisy.shape),
                "masked_pixels": int(mask.sum()),
                "injected_rms_dn": float(injected.std()),
                "line_time_s": dt,
                "lowf_band_hz": [float(freq[1]), float(0.1 * freq[-1])],
                "runs": rows,
                "psd": {
                    k: {
                        "freq_hz": _binned(*psds["injected 1/f"][k])[0],
                        **{name: _binned(*p[k])[1] for name, p in psds.items()},
                    }
                    for k in sets
                },
            }
            print(mode, json.dumps(rows, indent=1), file=sys.stderr)
    table["seconds"] = round(time.perf_counter() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2) + "\n")
    _svg(table, figure)
    return table


if __name__ == "__main__":
    main()
