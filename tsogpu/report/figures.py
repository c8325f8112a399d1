"""The report's figures: one PNG each, readable on its own, beside the products.

Each figure is a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas: no pyplot, no
change to matplotlib's global state (backend, rcParams), so a notebook or a GUI that imports
tsogpu keeps its own. Every PNG names the exposure, has a title, and axis labels with units,
and is written by :func:`tsogpu.io.atomic.write_atomically`.
"""

import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .. import __version__
from ..io.atomic import write_atomically
from .maps import FLAGS, cube, pixel_maps, time_mjd
from .time_series import point_to_point_ppm

DPI = 100
WIDTH = 11.0  # inches: 1100-pixel-wide PNGs

# figure key -> (file suffix, caption): the HTML report shows them in this order
FIGURES = {
    "median_rate": (
        "median_rate",
        "Median rate over all integrations, with the pixels "
        "flagged DO_NOT_USE or SATURATED in any integration overlaid.",
    ),
    "light_curve": (
        "light_curve",
        "White-light curve and, beneath it on the same time axis, "
        "the time series of the trace, background, 1/f noise and bias.",
    ),
    "flags": (
        "flags",
        "Pixels flagged JUMP_DET, SATURATED and DO_NOT_USE in each "
        "integration, and in how many integrations each pixel was flagged.",
    ),
    "one_over_f": (
        "one_over_f",
        "1/f residual: the per-column median of the background "
        "pixels after the median image is subtracted, per integration, and its "
        "periodogram.",
    ),
    "trace": (
        "trace",
        "Trace centroid and width per integration, and the median cross-dispersion profile.",
    ),
}

# time series beneath the white-light curve: name -> (label, default unit)
SERIES = {
    "trace_centroid": ("trace centroid", "pixel"),
    "trace_width": ("trace width", "pixel"),
    "background": ("background", "DN/s"),
    "one_over_f_amplitude": ("1/f amplitude", "DN/s"),
    "bias_offset": ("bias offset", "DN"),
    "n_usable_groups": ("usable groups", "groups"),
    "miri_reset": ("reset removed", "DN"),
    "miri_emicorr": ("EMI removed", "DN"),
    "miri_rscd": ("rscd flags", "1"),
    "miri_firstframe": ("firstframe flags", "1"),
    "miri_lastframe": ("lastframe flags", "1"),
}

FLAG_COLOURS = {"JUMP_DET": "tab:blue", "SATURATED": "tab:orange", "DO_NOT_USE": "tab:red"}


def figure_path(out_dir, name, key):
    """The PNG of figure ``key`` (:data:`FIGURES`) of exposure ``name`` in ``out_dir``."""
    return Path(out_dir) / f"{name}_{FIGURES[key][0]}.png"


def make_figures(ds, out_dir, name, *, maps=None):
    """Draw every figure of the report and write each as a PNG in ``out_dir``.

    Parameters
    ----------
    ds : xarray.Dataset
        The exposure product: ``rateints``, ``dq`` ``(time, y, x)`` and the time series on
        ``time`` (those absent or all-NaN are left out of the figures).
    out_dir : str or os.PathLike
        The folder of the products; created if missing.
    name : str
        The exposure's name: in every title and file name (``<name>_<figure>.png``).
    maps : tsogpu.report.maps.PixelMaps, optional
        The per-pixel maps, when already computed (else computed here).

    Returns
    -------
    dict of str to pathlib.Path
        Figure key (:data:`FIGURES`) -> the PNG written.
    """
    maps = pixel_maps(ds) if maps is None else maps
    hours, t_label = _hours(ds)
    draw = {
        "median_rate": lambda: _median_rate(ds, name, maps),
        "light_curve": lambda: _light_curve(ds, name, hours, t_label),
        "flags": lambda: _flags(ds, name, maps, hours, t_label),
        "one_over_f": lambda: _one_over_f(ds, name, maps, hours, t_label),
        "trace": lambda: _trace(ds, name, maps, hours, t_label),
    }
    return {key: save_png(fn(), figure_path(out_dir, name, key)) for key, fn in draw.items()}


def save_png(fig, path):
    """Write ``fig`` as a PNG at ``path`` (atomically) and return the path."""
    meta = {"Title": fig.get_suptitle() or path.stem, "Software": f"tsogpu {__version__}"}
    return write_atomically(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI, metadata=meta))


def _new_figure(height):
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _unit(ds, var, default):
    return str(ds[var].attrs.get("units", default)) if var in ds else default


def _series(ds, var):
    """``ds[var]`` as float64, or None when absent or without a finite value."""
    if var not in ds:
        return None
    v = np.asarray(ds[var].values, dtype=np.float64)
    return v if np.isfinite(v).any() else None


def _hours(ds):
    t = time_mjd(ds)
    t0 = float(np.nanmin(t)) if np.isfinite(t).any() else 0.0
    return (t - t0) * 24.0, f"time since MJD {t0:.5f} (UTC) [h]"


def _limits(image):
    finite = image[np.isfinite(image)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1.0, 99.5])
    return (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(lo) + 0.5)


def _image_height(ny, nx, panels=1):
    # pixels kept roughly square where the frame allows, within a readable height
    per = float(np.clip(WIDTH * 0.8 * ny / max(nx, 1), 1.2, 6.0))
    return per * panels + 1.0 + 0.4 * panels


def _show(ax, image, label, cmap="viridis", vmin=None, vmax=None):
    lo, hi = _limits(image)
    im = ax.imshow(
        image,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=lo if vmin is None else vmin,
        vmax=hi if vmax is None else vmax,
    )
    ax.set_xlabel("x (column) [pixel]")
    ax.set_ylabel("y (row) [pixel]")
    ax.figure.colorbar(im, ax=ax, label=label, pad=0.01)
    return im


def _median_rate(ds, name, maps):
    ny, nx = maps.median_rate.shape
    fig = _new_figure(_image_height(ny, nx))
    ax = fig.add_subplot()
    _show(ax, maps.median_rate, f"median rate [{_unit(ds, 'rateints', 'DN/s')}]", cmap="gray")
    overlay = np.zeros((ny, nx), dtype=np.uint8)
    handles = []
    for value, flag in ((1, "SATURATED"), (2, "DO_NOT_USE")):
        hit = (maps.dq_any & np.uint32(FLAGS[flag])) != 0
        overlay[hit] = value
        handles.append(Patch(color=FLAG_COLOURS[flag], label=f"{flag} ({int(hit.sum())} px)"))
    colours = ListedColormap([(0, 0, 0, 0), FLAG_COLOURS["SATURATED"], FLAG_COLOURS["DO_NOT_USE"]])
    ax.imshow(
        overlay,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=colours,
        vmin=-0.5,
        vmax=2.5,
        alpha=0.8,
    )
    ax.legend(
        handles=handles,
        loc="upper right",
        fontsize="small",
        framealpha=0.8,
        title="in any integration",
        title_fontsize="small",
    )
    fig.suptitle(f"{name}: median rate over {maps.nints} integrations, DQ overlaid")
    return fig


def _light_curve(ds, name, hours, t_label):
    below = [(v, _series(ds, v)) for v in SERIES]
    below = [(v, s) for v, s in below if s is not None]
    fig = _new_figure(2.8 + 1.3 * len(below))
    axes = fig.subplots(
        1 + len(below), 1, sharex=True, squeeze=False, height_ratios=[2.2] + [1.0] * len(below)
    )[:, 0]
    flux, err = _series(ds, "white_light"), _series(ds, "white_light_err")
    unit = _unit(ds, "white_light", "DN/s")
    if flux is None:
        axes[0].text(
            0.5,
            0.5,
            "no white-light curve in this product",
            ha="center",
            va="center",
            transform=axes[0].transAxes,
        )
        title = "white-light curve"
    else:
        axes[0].errorbar(hours, flux, yerr=err, fmt=".", ms=3, lw=0.6, color="k", ecolor="0.6")
        scatter = point_to_point_ppm(flux)
        title = f"white-light curve (point-to-point scatter {scatter:.0f} ppm)"
    axes[0].set_title(title, fontsize="medium")
    axes[0].set_ylabel(f"white light\n[{unit}]")
    for ax, (var, values) in zip(axes[1:], below, strict=True):
        label, default = SERIES[var]
        ax.plot(hours, values, ".-", ms=2.5, lw=0.6)
        ax.set_ylabel(f"{label}\n[{_unit(ds, var, default)}]")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(t_label)
    fig.suptitle(f"{name}: white-light curve and time series")
    return fig


def _flags(ds, name, maps, hours, t_label):
    ny, nx = maps.median_rate.shape
    fig = _new_figure(3.6 + _image_height(ny, nx, 2))
    grid = fig.add_gridspec(5, 1, height_ratios=[0.6, 0.6, 0.6, 1.4, 1.4])
    counts = [fig.add_subplot(grid[0])]
    counts += [fig.add_subplot(grid[i], sharex=counts[0]) for i in (1, 2)]
    for ax, (flag, var) in zip(
        counts,
        (("JUMP_DET", "n_jump"), ("SATURATED", "n_saturated"), ("DO_NOT_USE", "n_do_not_use")),
        strict=True,
    ):
        values = _series(ds, var)
        values = maps.per_time[flag] if values is None else values
        ax.plot(hours, values, ".-", ms=3, lw=0.7, color=FLAG_COLOURS[flag])
        ax.set_ylabel(f"{flag}\n[pixels]", fontsize="small")
        ax.grid(alpha=0.3)
    for ax in counts[:-1]:
        ax.tick_params(labelbottom=False)
    counts[0].set_title("pixels flagged in each integration", fontsize="medium")
    counts[-1].set_xlabel(t_label)
    for i, flag in ((3, "JUMP_DET"), (4, "SATURATED")):
        ax = fig.add_subplot(grid[i])
        _show(
            ax,
            maps.counts[flag],
            "integrations flagged",
            cmap="magma",
            vmin=0,
            vmax=max(1, int(maps.counts[flag].max())),
        )
        ax.set_title(f"integrations with {flag} per pixel (of {maps.nints})", fontsize="medium")
    fig.suptitle(f"{name}: jumps and saturation")
    return fig


def _sky_rows(ds, maps):
    """Rows far from the trace: more than 3 widths (at least 4 pixels) from its centroid."""
    ny = maps.median_rate.shape[0]
    rows = np.arange(ny)
    centre, width = _series(ds, "trace_centroid"), _series(ds, "trace_width")
    if centre is not None:
        c = float(np.nanmedian(centre))
        w = float(np.nanmedian(width)) if width is not None else 2.0
        sky = np.abs(rows - c) > max(3.0 * w, 4.0)
    else:  # the brightest rows of the median image are taken as the trace
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            profile = np.nanmedian(maps.median_rate, axis=1)
        sky = (
            ~(profile > np.nanpercentile(profile, 75)) if np.isfinite(profile).any() else rows >= 0
        )
    return sky if sky.sum() >= 2 else np.ones(ny, dtype=bool)


def column_residuals(ds, maps, sky_rows):
    """Per integration and column, the median over ``sky_rows`` of ``rateints`` minus the
    median image (DO_NOT_USE pixels left out): float64 ``(nints, nx)``."""
    rate, flags = cube(ds, "rateints"), cube(ds, "dq")
    rows = np.flatnonzero(sky_rows)
    ref = maps.median_rate[rows][None]
    out = np.full((maps.nints, maps.median_rate.shape[1]), np.nan)
    step = max(1, (64 * 2**20) // max(1, rows.size * ref.shape[2] * 4))
    for t0 in range(0, maps.nints, step):
        t1 = min(maps.nints, t0 + step)
        block = np.asarray(rate[t0:t1].values[:, rows], dtype=np.float64) - ref
        bad = (
            np.asarray(flags[t0:t1].values[:, rows]).astype(np.uint32)
            & np.uint32(FLAGS["DO_NOT_USE"])
        ) != 0
        block[bad] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[t0:t1] = np.nanmedian(block, axis=1)
    return out


def _one_over_f(ds, name, maps, hours, t_label):
    resid = column_residuals(ds, maps, _sky_rows(ds, maps))
    unit = _unit(ds, "rateints", "DN/s")
    fig = _new_figure(7.0)
    img, psd = fig.subplots(2, 1, height_ratios=[1.3, 1.0])
    nx = resid.shape[1]
    finite = resid[np.isfinite(resid)]
    lim = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    im = img.imshow(
        resid,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap="RdBu_r",
        vmin=-lim or -1,
        vmax=lim or 1,
        extent=(-0.5, nx - 0.5, hours[0], hours[-1]) if len(hours) > 1 else None,
    )
    img.set_xlabel("x (column) [pixel]")
    img.set_ylabel(t_label.replace(" (UTC)", "\n(UTC)"))
    fig.colorbar(im, ax=img, label=f"column residual [{unit}]", pad=0.01)
    img.set_title(
        "per-column median of the background rows, minus the median image", fontsize="medium"
    )
    freq, power = periodogram(resid)
    if freq.size:
        psd.loglog(freq, power, lw=0.8, color="k")
    else:
        psd.text(0.5, 0.5, "no background pixels", ha="center", transform=psd.transAxes)
    psd.set_xlabel("spatial frequency along x [cycles/pixel]")
    psd.set_ylabel(f"power [({unit})$^2$ pixel]")
    psd.set_title(
        "periodogram of the column residual, averaged over integrations", fontsize="medium"
    )
    psd.grid(alpha=0.3, which="both")
    fig.suptitle(f"{name}: 1/f residual")
    return fig


def periodogram(resid):
    """Mean periodogram over integrations of column residuals ``(nints, nx)`` (NaN -> 0 after
    each row's mean is removed); returns (frequency [cycles/pixel], power), both without the
    zero frequency, or two empty arrays when nothing is finite."""
    rows = resid[np.isfinite(resid).any(axis=1)]
    if rows.shape[0] == 0 or rows.shape[1] < 4:
        return np.array([]), np.array([])
    centred = np.nan_to_num(rows - np.nanmean(rows, axis=1, keepdims=True))
    power = (np.abs(np.fft.rfft(centred, axis=1)) ** 2).mean(axis=0) / rows.shape[1]
    freq = np.fft.rfftfreq(rows.shape[1])
    return freq[1:], power[1:]


def _trace(ds, name, maps, hours, t_label):
    fig = _new_figure(5.0)
    grid = fig.add_gridspec(2, 2, width_ratios=[2.2, 1.0])
    cen = fig.add_subplot(grid[0, 0])
    wid = fig.add_subplot(grid[1, 0], sharex=cen)
    prof = fig.add_subplot(grid[:, 1])
    for ax, var in ((cen, "trace_centroid"), (wid, "trace_width")):
        values = _series(ds, var)
        label, default = SERIES[var]
        if values is None:
            ax.text(0.5, 0.5, f"no {label} in this product", ha="center", transform=ax.transAxes)
        else:
            ax.plot(hours, values, ".-", ms=3, lw=0.7)
        ax.set_ylabel(f"{label} [{_unit(ds, var, default)}]")
        ax.grid(alpha=0.3)
    cen.set_title("trace per integration", fontsize="medium")
    wid.set_xlabel(t_label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        profile = np.nansum(maps.median_rate, axis=1)
    prof.plot(profile, np.arange(profile.size), color="k", lw=0.9)
    centre, width = _series(ds, "trace_centroid"), _series(ds, "trace_width")
    if centre is not None:
        c = float(np.nanmedian(centre))
        prof.axhline(c, color="tab:blue", lw=0.8, label=f"median centroid {c:.2f}")
        if width is not None:
            w = float(np.nanmedian(width))
            prof.axhspan(c - w, c + w, color="tab:blue", alpha=0.15, label=f"± width {w:.2f}")
        prof.legend(fontsize="small")
    prof.set_xlabel(f"median rate summed over x [{_unit(ds, 'rateints', 'DN/s')}]")
    prof.set_ylabel("y (row) [pixel]")
    prof.set_title("cross-dispersion profile", fontsize="medium")
    prof.grid(alpha=0.3)
    fig.suptitle(f"{name}: trace centroid and width")
    return fig
