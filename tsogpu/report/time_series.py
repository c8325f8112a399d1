"""The time series of an exposure, from plain arrays: white light, trace position, background,
flag counts and what the sky options measured. NumPy only; every function takes and returns
arrays and changes none of its inputs.

The dispersion runs along ``x`` (the last axis) here; :data:`DISPERSION_AXIS` says where it
runs in each mode, and a caller whose mode disperses along ``y`` passes transposed frames.

The aperture is fixed for the whole exposure: determined once, from the median rate image
(:func:`median_image`), as the cross-dispersion peak of each column, smoothed along the
dispersion (:func:`trace_center`), plus and minus a half-width (:func:`trace_aperture`).

Bad pixels and the depth. A pixel that is DO_NOT_USE in some integrations (a cosmic ray that
left no usable group, say) must not drop out of the sum in those integrations only: the white
light would dip there. So within the aperture every unusable pixel of an integration is
replaced by a template image scaled to that integration (the ratio of the usable pixels' sum
to the template's sum over the same pixels), and a pixel with no template value (never
usable) is left out of every integration. The white light is then ``F_i = S_i * M / m_i``
(``S_i``: sum of the usable aperture pixels, ``m_i``: the template over the same pixels,
``M``: the template over the aperture): a light curve that scales every pixel by
``1 - depth`` gives ``F_i = (1 - depth) M`` whichever pixels are missing. The template is
each pixel's median over integrations of its rate relative to the integration's flux
(:func:`white_light`), so that a pixel bad only in transit is not given an out-of-transit
level.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import dq
from ..errors import InputError

# EXP_TYPE -> the DMS axis the dispersion runs along
DISPERSION_AXIS = {
    "NRS_BRIGHTOBJ": "x",
    "NIS_SOSS": "x",
    "NRC_TSGRISM": "x",
    "MIR_LRS-SLITLESS": "y",
}

_UNUSABLE = np.uint32(dq.DO_NOT_USE | dq.PIXEL["REFERENCE_PIXEL"])


def usable_pixels(rateints, dq_cube):
    """bool (nints, ny, nx): finite, and neither DO_NOT_USE nor REFERENCE_PIXEL in DQ."""
    return np.isfinite(rateints) & ((np.asarray(dq_cube, np.uint32) & _UNUSABLE) == 0)


def median_image(rateints, usable):
    """The median over integrations of the usable pixels, float64 (ny, nx); NaN where none.

    Parameters
    ----------
    rateints : float32 (nints, ny, nx), DN/s
    usable : bool (nints, ny, nx), from :func:`usable_pixels`
    """
    # float32, as stored: a float64 copy of a whole exposure would double the memory
    masked = np.where(usable, np.asarray(rateints, np.float32), np.float32(np.nan))
    return nanmedian_first_axis(masked).astype(np.float64)


def nanmedian_first_axis(values):
    """``np.nanmedian(values, axis=0)`` of a float32 or float64 array, bit for bit (tests/
    test_report_product.py), by one sort along the axis (NaNs sort last): NumPy's own path
    for a short axis (a masked sort) took 1.2 s on a 200 x 32 x 2048 cube, this 0.2 s. The
    middle value, or the mean of the two middle ones in the array's type; NaN where all are
    NaN."""
    ordered = np.sort(values, axis=0)
    count = np.count_nonzero(~np.isnan(values), axis=0)
    lo = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(ordered, (count // 2)[None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        middle = np.where(count % 2 == 1, lo, (lo + hi) / np.float32(2))
    return np.where(count > 0, middle, np.float32(np.nan)).astype(values.dtype)


def _running_median(values, window, axis):
    """NaN-ignoring running median along ``axis``, the window clipped at the ends."""
    values = np.moveaxis(np.asarray(values, np.float64), axis, -1)
    half = max(int(window), 1) // 2
    padded = np.pad(values, [(0, 0)] * (values.ndim - 1) + [(half, half)], mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.moveaxis(np.nanmedian(windows, axis=-1), -1, axis)


def column_level(image):
    """The level of each column away from the trace: its 10th percentile, float64 (nx,).

    A low percentile rather than the median, so that a trace filling most of a short
    subarray's rows (NIRCam cut to 16 rows, SOSS's wide trace) does not raise the level.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(np.asarray(image, np.float64), 10.0, axis=0)


def trace_center(median, smooth=15, threshold=5.0):
    """The trace's cross-dispersion centre in each column, smoothed along the dispersion.

    The median image is smoothed along x by a running median of ``smooth`` columns (cosmic
    rays and bad pixels out); each column's peak row is refined to the vertex of a Gaussian
    through it and its two neighbours. Columns whose peak stands less than ``threshold``
    robust sigmas of the pixel noise above the column's level (:func:`column_level`) hold no
    trace: their centre is interpolated from the others. The centres are then smoothed by a
    running median of ``smooth`` columns.

    Parameters
    ----------
    median : float64 (ny, nx), DN/s; NaN: no value
    smooth : int, columns
    threshold : float, robust sigmas

    Returns
    -------
    centre : float64 (nx,), rows (0-based DMS y)
    on_trace : bool (nx,), the columns where a trace was found

    Raises
    ------
    InputError
        No column holds a trace.
    """
    ny, nx = median.shape
    img = _running_median(median, smooth, axis=1)
    resid = img - column_level(img)[None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # the pixel noise, from neighbours along the dispersion (the trace changes slowly
        # there); the smoothed image is quieter, so the threshold errs on the safe side
        step = np.diff(median, axis=1)
        sigma = 1.4826 * np.nanmedian(np.abs(step - np.nanmedian(step))) / np.sqrt(2.0)
    filled = np.where(np.isfinite(resid), resid, -np.inf)
    peak = np.argmax(filled, axis=0)
    peak_value = filled[peak, np.arange(nx)]
    on_trace = np.isfinite(peak_value) & (peak_value > threshold * max(sigma, 1e-30))
    if not on_trace.any():
        raise InputError(
            "no trace found in the median rate image: no column peaks "
            f"{threshold} robust sigmas above its level"
        )
    xs = np.arange(nx)
    # sub-pixel: the vertex of the parabola through the logarithms of the peak and its two
    # neighbours (exact for a Gaussian profile); where one is not positive, the peak row
    near = resid[np.clip(peak[None, :] + np.arange(-1, 2)[:, None], 0, ny - 1), xs]
    ok = (peak > 0) & (peak < ny - 1) & np.all(np.nan_to_num(near) > 0, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(np.where(ok, near, 1.0))
        curvature = logs[0] - 2.0 * logs[1] + logs[2]
        ok &= curvature < 0
        shift = np.where(ok, 0.5 * (logs[0] - logs[2]) / np.where(ok, curvature, -1.0), 0.0)
    centroid = peak + np.clip(shift, -0.5, 0.5)
    centre = np.interp(xs, xs[on_trace], centroid[on_trace])
    return _running_median(centre, smooth, axis=0), on_trace


def trace_fwhm(median, on_trace):
    """The trace's full width at half maximum, rows: the median over the trace's columns of the
    number of rows above half the column's peak (the column's level removed,
    :func:`column_level`).

    Parameters
    ----------
    median : float64 (ny, nx); on_trace : bool (nx,), from :func:`trace_center`

    Returns
    -------
    float, rows (at least 1)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        resid = median - column_level(median)[None, :]
        peak = np.nanmax(resid, axis=0)
    counts = np.sum(np.nan_to_num(resid, nan=-np.inf) >= 0.5 * peak[None, :], axis=0)
    return max(1.0, float(np.median(counts[on_trace])))


def default_half_width(fwhm):
    """The aperture half-width used when none is given: 3 sigma of a Gaussian of this FWHM,
    rounded up, in rows (int, at least 1)."""
    return max(1, int(np.ceil(3.0 * fwhm / 2.3548)))


def trace_aperture(centre, ny, half_width):
    """bool (ny, nx): the pixels within ``half_width`` rows of the trace centre of their column.

    Parameters
    ----------
    centre : float64 (nx,), rows
    ny : int
    half_width : float, rows
    """
    dy = np.arange(ny, dtype=np.float64)[:, None] - np.asarray(centre, np.float64)[None, :]
    return np.abs(dy) <= float(half_width)


def white_light(rateints, err, usable, aperture, median):
    """The white light of each integration, bad pixels replaced by the scaled template.

    The template of an aperture pixel is the median over integrations of its rate divided by
    the integration's sum over the aperture pixels usable in every integration (times the
    median of those sums): a pixel that is bad only in some integrations (in transit, say)
    gets the same template as its neighbours, which a plain median image would not give it.

    Parameters
    ----------
    rateints, err : float32 (nints, ny, nx), DN/s
    usable : bool (nints, ny, nx)
    aperture : bool (ny, nx)
    median : float64 (ny, nx), from :func:`median_image`; aperture pixels where it is NaN
        are left out

    Returns
    -------
    flux : float64 (nints,), DN/s, ``S_i * M / m_i`` (module docstring); NaN where an
        integration has no usable aperture pixel
    flux_err : float64 (nints,), DN/s, the usable pixels' ERR in quadrature, scaled alike
    filled : float64 (nints, npix), the aperture pixels (those of ``pixels``) with bad ones
        replaced
    pixels : int (npix,), flat indices of the aperture pixels used
    """
    nints = rateints.shape[0]
    pixels = np.flatnonzero(aperture & np.isfinite(median))
    rate = rateints.reshape(nints, -1)[:, pixels].astype(np.float64)
    sigma = err.reshape(nints, -1)[:, pixels].astype(np.float64)
    good = usable.reshape(nints, -1)[:, pixels] & np.isfinite(sigma)
    always = good.all(axis=0)
    norm = rate[:, always].sum(axis=1) if always.any() else np.ones(nints)
    norm = np.where(np.isfinite(norm) & (norm > 0), norm, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        template = nanmedian_first_axis(np.where(good, rate / norm[:, None], np.nan))
        template *= np.nanmedian(norm)
    keep = np.isfinite(template)
    pixels, rate, sigma, good, template = (
        pixels[keep],
        rate[:, keep],
        sigma[:, keep],
        good[:, keep],
        template[keep],
    )
    s = np.where(good, rate, 0.0).sum(axis=1)
    m = np.where(good, template[None, :], 0.0).sum(axis=1)
    total = template.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(m != 0, s / m, np.nan)
        factor = np.where(m != 0, total / m, np.nan)
    flux = s * factor
    flux_err = np.sqrt(np.where(good, sigma * sigma, 0.0).sum(axis=1)) * factor
    filled = np.where(good, rate, template[None, :] * scale[:, None])
    return flux, flux_err, filled, pixels


@dataclass(frozen=True)
class LightCurve:
    """The white light through an aperture on the trace, and what it is made from (the arrays
    of :func:`median_image`, :func:`trace_center`, :func:`trace_aperture`, :func:`white_light`)."""

    median: np.ndarray
    centre: np.ndarray
    half_width: float
    aperture: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    filled: np.ndarray
    pixels: np.ndarray


def aperture_light_curve(rateints, err, usable, half_width=None, smooth=15):
    """The white light of each integration through the trace's aperture, both found from the
    rates: the trace centre from the median image, the half-width (rows) given or
    :func:`default_half_width` of the trace's FWHM.

    Parameters
    ----------
    rateints, err : float32 (nints, ny, nx), DN/s, dispersion along x
    usable : bool (nints, ny, nx), from :func:`usable_pixels`
    half_width : float, rows, optional
    smooth : int, columns (:func:`trace_center`)

    Returns
    -------
    LightCurve

    Raises
    ------
    InputError
        No column holds a trace.
    """
    median = median_image(rateints, usable)
    centre, on_trace = trace_center(median, smooth=smooth)
    if half_width is None:
        half_width = default_half_width(trace_fwhm(median, on_trace))
    half_width = float(half_width)
    aperture = trace_aperture(centre, rateints.shape[1], half_width)
    flux, flux_err, filled, pixels = white_light(rateints, err, usable, aperture, median)
    return LightCurve(median, centre, half_width, aperture, flux, flux_err, filled, pixels)


def point_to_point_ppm(flux):
    """Point-to-point scatter of a light curve in ppm of its median (robust to a transit):
    1.4826 MAD of the successive differences over sqrt(2); NaN with fewer than 3 points."""
    good = flux[np.isfinite(flux)]
    if good.size < 3 or np.median(good) == 0:
        return float("nan")
    diff = np.diff(good)
    mad = 1.4826 * np.median(np.abs(diff - np.median(diff)))
    return float(mad / np.sqrt(2.0) / abs(np.median(good)) * 1e6)


def trace_position(filled, pixels, centre, shape):
    """Flux-weighted cross-dispersion position and width of the trace in each integration.

    Weights are the aperture pixels' rates (bad pixels replaced, :func:`white_light`),
    negative ones counted as 0; ``dy`` is a pixel's row less the aperture centre of its
    column.

    Parameters
    ----------
    filled : float64 (nints, npix); pixels : int (npix,) flat indices into ``shape``
    centre : float64 (nx,), rows; shape : (ny, nx)

    Returns
    -------
    centroid : float64 (nints,), rows, the weighted mean of ``dy`` (positive: towards +y)
    width : float64 (nints,), rows, the weighted rms of ``dy`` about ``centroid``
    """
    y, x = np.unravel_index(pixels, shape)
    dy = y - np.asarray(centre, np.float64)[x]
    w = np.clip(np.nan_to_num(filled), 0.0, None)
    wsum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (w * dy[None, :]).sum(axis=1) / wsum
        var = (w * (dy[None, :] - centroid[:, None]) ** 2).sum(axis=1) / wsum
    return centroid, np.sqrt(var)


def background(rateints, usable, outside):
    """The median of each integration's usable pixels in ``outside``, float64 (nints,), DN/s;
    NaN where none is usable.

    Parameters
    ----------
    rateints : float32 (nints, ny, nx); usable : bool (nints, ny, nx)
    outside : bool (ny, nx), the pixels far from the trace
    """
    pixels = np.flatnonzero(outside)
    nints = rateints.shape[0]
    values = np.where(
        usable.reshape(nints, -1)[:, pixels],
        np.asarray(rateints, np.float32).reshape(nints, -1)[:, pixels],
        np.float32(np.nan),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=1).astype(np.float64)


def count_flag(dq_cube, flag):
    """int32 (nints,): the pixels of each integration with any bit of ``flag`` set in DQ."""
    hit = (np.asarray(dq_cube, np.uint32) & np.uint32(flag)) != 0
    return hit.reshape(hit.shape[0], -1).sum(axis=1).astype(np.int32)


def one_over_f_amplitude(lines):
    """The 1/f amplitude of each integration from the levels ``refpix.sky_method`` subtracted.

    Parameters
    ----------
    lines : float32 (nints, ngroups, namps, nlines), DN, the ``_oneoverf`` LINES extension

    Returns
    -------
    float64 (nints,), DN: the rms over the lines of each group and output's levels (their mean
    removed: it holds the sky background), averaged in quadrature over groups and outputs
    """
    lines = np.asarray(lines, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanvar(lines, axis=3)
        return np.sqrt(np.nanmean(var, axis=(1, 2)))


def mean_over_groups(values):
    """float64 (nints,): the NaN-ignoring mean over every axis but the first."""
    values = np.asarray(values, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values.reshape(values.shape[0], -1), axis=1)
