"""What falls on the detector: the source trace and dark rates, the transit light curve and
the cosmic rays."""

import numpy as np

from .. import dq
from .detector import pick_pixels
from .linearity import polynomial
from .modes import FULL


def scene_rates(m, geo, det, rng, t_last, n_saturating, peak_fill):
    """Source and dark rates on the science subarray, DN/s (linear), float64 (ny, nx)."""
    ys, xs = geo.ys, geo.xs
    ny, nx = geo.ny, geo.nx
    x_full = np.arange(geo.substrt1 - 1, geo.substrt1 - 1 + nx, dtype=np.float64)
    u = x_full / (FULL - 1) - 0.5
    centre = m.trace_y * ny + m.trace_curve * (u**2 - 1.0 / 12.0) * min(1.0, ny / m.subsize2)
    yrel = np.arange(ny, dtype=np.float64)[:, None] - centre[None, :]
    profile = np.exp(-0.5 * (yrel / m.trace_sigma) ** 2)
    profile[profile < 1e-6] = 0.0  # no denormal float32 rates far from the trace
    spectrum = 0.25 + 0.75 * np.exp(-0.5 * ((u + 0.1) / 0.3) ** 2)
    lines = rng.uniform(-0.5, 0.5, 8)
    for c in lines:  # a few absorption lines
        spectrum *= 1.0 - 0.3 * np.exp(-0.5 * ((u - c) / 0.004) ** 2)
    shape = profile * spectrum[None, :]

    # scale so the brightest pixel reaches peak_fill of the smallest well by the last frame
    well = np.nan_to_num(det["sat_thresh"][ys, xs] - det["bias"][ys, xs], nan=38000.0)
    peak_rate = peak_fill * float(np.min(well)) / t_last
    flux = peak_rate * shape / shape.max() * det["response"][ys, xs]
    flux[geo.refpix] = 0.0

    # a few pixels on the trace bright enough to saturate at ~60% of the ramp
    sat_ok = ~geo.refpix & np.isfinite(det["sat_thresh"][ys, xs])
    sat_ok &= (det["sat_dq"][ys, xs] & dq.NO_SAT_CHECK) == 0
    sat_ok &= det["response"][ys, xs] > 0
    sat_ok &= profile > 0.5
    if n_saturating > 0 and sat_ok.any():
        pick = pick_pixels(rng, sat_ok, n_saturating)
        lin_at_sat = polynomial(det["coeffs"][:, ys, xs].reshape(5, -1)[:, pick], well.flat[pick])
        flux.flat[pick] = lin_at_sat / (0.6 * t_last)
    dark = det["dark_rate"][ys, xs] * det["response"][ys, xs]
    return {"flux": flux, "dark": dark}


def light_curve(index, n, depth):
    """Relative flux per integration: a limb-darkened-looking transit centred in the exposure."""
    phase = (index + 0.5) / n - 0.5  # -0.5 .. 0.5 over the exposure
    half = 0.2  # half duration, in units of the exposure
    ingress = 0.04
    z = np.clip((half - np.abs(phase)) / ingress, 0.0, 1.0)  # 0 outside, 1 in full transit
    # quadratic dip shape inside transit mimics limb darkening
    shape = z * (1.0 - 0.3 * (phase / half) ** 2)
    return 1.0 - depth * shape


CR_DTYPE = [("int", "i4"), ("group", "i4"), ("y", "i4"), ("x", "i4"), ("amplitude", "f4")]


def draw_cosmic_rays(rng, geo, nints, ngroups, per_pixel):
    """Cosmic rays on light-sensitive pixels, one per (int, y, x) at most; structured array."""
    if ngroups < 2 or per_pixel <= 0:
        return np.zeros(0, dtype=CR_DTYPE)
    active = np.flatnonzero(~geo.refpix)
    counts = rng.poisson(per_pixel * active.size, nints)
    rows = []
    for i, n in enumerate(counts):
        pix = rng.choice(active, size=min(int(n), active.size), replace=False)
        for p in np.sort(pix):
            rows.append((i, 0, p // geo.nx, p % geo.nx, 0.0))
    crs = np.array(rows, dtype=CR_DTYPE)
    crs["group"] = rng.integers(1, ngroups, crs.size)
    crs["amplitude"] = 10.0 ** rng.uniform(2.0, 4.0, crs.size)
    return crs
