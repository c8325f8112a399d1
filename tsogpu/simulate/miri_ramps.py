"""MIRI's source, its raw ramps and the detector effects jwst's MIRI steps correct.

Per pixel, integration ``i`` (``k`` = its index in the whole exposure) and group ``g``
(FASTR1/SLOWR1: one frame per group, ``t_g = (g + 1) * TFRAME``)::

    S_g   = Poisson(gain * (flux * lc[i] + dark) * t_g) / gain + dark_excess[k, g] + CRs
    raw_g = P^-1(P(bias) + S_g)                                # non-linear, bias included
            + reset[min(k, 1), g]                              # reset anomaly (jwst reset)
            + rscd[k, g]                                       # RSCD (jwst rscd flags it)
            + first_frame (g = 0) + last_frame (g = ngroups - 1)  # firstframe / lastframe
            + EMI(t_pixel)                                     # jwst emicorr
            + N(0, rn / sqrt 2)
    raw_g = clip(round(raw_g), 0, 65535)

``P`` is the linearity reference polynomial, applied by jwst to the raw DN with the bias in
(MIRI has no superbias step), and ``P^-1`` its exact inverse. ``dark_excess`` is the first
integrations' extra dark signal the 4-D dark reference carries; ``reset`` decays over the
first groups and is larger in the first integration; ``rscd`` follows the previous
integration's last frame and decays over the first groups; the EMI is a sum of periodic
waveforms at the pixels' read times (:func:`tsogpu.simulate.miri_modes.pixel_clocks`), phase
coherent over the exposure. Reference columns see bias, reset anomaly, frame offsets, EMI and
read noise only.
"""

from __future__ import annotations

import numpy as np

from .detector import pick_pixels
from .linearity import inverse_linearity, polynomial
from .miri_modes import SAMPLE_TIME, pixel_clocks

# (name in the EMICORR file, frequency in Hz, amplitude in DN)
EMI_COMPONENTS = (("Hz390", 390.625, 4.0), ("Hz218a", 218.52055, 1.5))
RESET_TAU = 1.5  # groups: e-folding of the reset anomaly
RSCD_FRACTION = 0.02  # of the previous integration's last-frame signal, at group 0
RSCD_TAU = 1.0  # groups
DARK_EXCESS = (12.0, 3.0, 0.0)  # DN reached by the extra dark of integrations 1, 2, 3+
DARK_TAU = 3.0  # groups
RESET_NINTS = 2  # reset reference integrations: the first, and the rest


def emi_waveform(phase):
    """One EMI period, ``phase`` in [0, 1): a sine and its second harmonic (peak ~1)."""
    phase = np.asarray(phase, dtype=np.float64)
    return np.sin(2.0 * np.pi * phase) + 0.3 * np.sin(4.0 * np.pi * phase + 0.7)


def emi_signal(geo, ngroups, exposure_int, phases, components=EMI_COMPONENTS):
    """EMI in DN of every sample of one integration: float32 (ngroups, ny, nx)."""
    seconds = pixel_clocks(geo, ngroups, exposure_int).astype(np.float64) * SAMPLE_TIME
    out = np.zeros(seconds.shape, np.float64)
    for (_name, freq, amplitude), phase0 in zip(components, phases, strict=True):
        cycles = freq * seconds + phase0
        out += amplitude * emi_waveform(cycles - np.floor(cycles))
    return out.astype(np.float32)


def reset_anomaly(amplitude, exposure_int, ngroups):
    """Reset anomaly (DN) of an integration: float32 (ngroups, ny, nx); ``amplitude``
    (2, ny, nx) holds the first integration's and the later ones'."""
    decay = np.exp(-np.arange(ngroups) / RESET_TAU).astype(np.float32)
    return amplitude[min(exposure_int, RESET_NINTS - 1)][None] * decay[:, None, None]


def dark_excess(exposure_int, ngroups):
    """The extra dark (DN, linear) of the early integrations: float32 (ngroups,)."""
    level = DARK_EXCESS[min(exposure_int, len(DARK_EXCESS) - 1)]
    return (level * (1.0 - np.exp(-(np.arange(ngroups) + 1.0) / DARK_TAU))).astype(np.float32)


def miri_scene(m, geo, det, rng, t_last, n_saturating, peak_fill):
    """Source and dark rates on the subarray, DN/s (linear), float64 (ny, nx)."""
    ys, xs = geo.ys, geo.xs
    ny, nx = geo.ny, geo.nx
    yy, xx = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64),
                         indexing="ij")  # fmt: skip
    if m.source == "trace":
        # LRS slitless: a spectrum dispersed along the rows, near the SIAF reference column
        # (x = 38.5, 1-based); the prism's throughput peaks in the lower two thirds
        x0 = min(37.5, nx / 2.0) + 0.3 * (yy / ny - 0.5)
        profile = np.exp(-0.5 * ((xx - x0) / 1.1) ** 2)
        v = yy / ny
        spectrum = 0.05 + np.exp(-0.5 * ((v - 0.62) / 0.18) ** 2)
        spectrum[v > 0.95] = 0.0
        for c in rng.uniform(0.3, 0.85, 4):  # a few absorption features
            spectrum *= 1.0 - 0.25 * np.exp(-0.5 * ((v - c) / 0.01) ** 2)
        shape = profile * spectrum
    else:
        cy, cx = (ny - 1) / 2.0 + 0.3, (nx + 4) / 2.0 - 0.2  # off the reference columns
        shape = np.exp(-0.5 * (((yy - cy) ** 2 + (xx - cx) ** 2) / 1.5**2))
    shape[shape < 1e-6] = 0.0
    coeffs = det["coeffs"][:, ys, xs]
    bias_lin = polynomial(coeffs, det["bias"][ys, xs].astype(np.float64))
    well = polynomial(coeffs, det["sat_thresh"][ys, xs].astype(np.float64)) - bias_lin
    peak_rate = peak_fill * float(np.min(well[shape > 0.5 * shape.max()])) / t_last
    flux = peak_rate * (shape / shape.max() + 0.01)  # + a faint sky background
    flux[geo.refpix] = 0.0
    ok = ~geo.refpix & (shape > 0.5 * shape.max())
    if n_saturating > 0 and ok.any():
        pick = pick_pixels(rng, ok, n_saturating)
        flux.flat[pick] = well.flat[pick] / (0.6 * t_last)
    dark = det["dark_rate"][ys, xs].astype(np.float64)
    dark[geo.refpix] = 0.0
    return {"flux": flux, "dark": dark, "bias_lin": bias_lin}


def miri_ramps(geo, det, scene, lc_all, crs, rng, nints, ngroups, intstart, emi_phases):
    """Integer ramps, uint16 (nints, ngroups, ny, nx), with the effects of the module doc;
    ``lc_all``: the light curve of the whole exposure, ``intstart``: 1-based, of ``data[0]``."""
    f32 = np.float32
    ys, xs = geo.ys, geo.xs
    ny, nx = geo.ny, geo.nx
    npix = ny * nx
    t_last = ngroups * geo.tframe
    gain = det["gain"][ys, xs].astype(f32).ravel()
    coeffs = det["coeffs"][:, ys, xs].astype(f32).reshape(5, 1, npix)
    m_cap = det["hard_sat"][ys, xs].astype(f32).ravel()
    bias_lin = scene["bias_lin"].astype(f32).ravel()
    sigma_read = (det["readnoise"][ys, xs] / np.sqrt(2.0)).astype(f32)
    flux = scene["flux"].ravel()
    dark = scene["dark"].ravel()
    sensitive = ~geo.refpix.ravel()
    amp = det["reset_amp"][:, ys, xs]
    first, last = det["first_frame"][ys, xs], det["last_frame"][ys, xs]
    rscd_decay = np.exp(-np.arange(ngroups) / RSCD_TAU).astype(f32)[:, None, None]
    data = np.empty((nints, ngroups, ny, nx), np.uint16)
    for i in range(nints):
        k = intstart - 1 + i
        electrons = (gain * (flux * lc_all[k] + dark) * geo.tframe).astype(np.float64)
        inc = rng.poisson(np.broadcast_to(electrons, (ngroups, npix))).astype(f32)
        charge = np.cumsum(inc, axis=0, dtype=f32) / gain
        charge += dark_excess(k, ngroups)[:, None]
        for c in crs[crs["int"] == i]:
            charge[int(c["group"]) :, c["y"] * nx + c["x"]] += c["amplitude"]
        charge[:, ~sensitive] = 0.0
        raw = inverse_linearity(coeffs, bias_lin + charge, m_cap).reshape(ngroups, ny, nx)
        raw += reset_anomaly(amp, k, ngroups)
        if k > 0:  # RSCD: the previous integration's last frame (its expected signal)
            signal = ((flux * lc_all[k - 1] + dark) * t_last).reshape(ny, nx).astype(f32)
            raw -= f32(RSCD_FRACTION) * signal[None] * rscd_decay
        raw[0] += first
        if ngroups > 1:
            raw[-1] += last
        raw += emi_signal(geo, ngroups, k, emi_phases)
        raw += sigma_read * rng.standard_normal(raw.shape, dtype=f32)
        data[i] = np.clip(np.rint(raw), 0.0, 65535.0)
    return data
