"""MIRI EMI correction, the ``sequential`` algorithm: jwst 3.0 ``_run_sequential_algorithm``.

Per frequency: each integration's ramps less a crude slope (:func:`sloper`) and a
self-superbias (:func:`minmed`), the four output channels averaged (``dd``); every read's
phase from its time in pixel clocks, counted from the first read of ``data[0]`` across
integrations (:func:`read_phases`); the phase amplitude per bin, the sigma-clipped mean of
the first ``nints_to_phase`` integrations' ``dd`` (:func:`sigma_clipped_mean`, astropy's
``sigma_clipped_stats`` with its defaults, NumPy's nan-functions as astropy calls them
without bottleneck); the reference waveform rolled to that phase by cross-correlation and
scaled (or the binned amplitudes themselves, on the fly); the waveform looked up at each
read's phase and subtracted from its four channels.

Host NumPy for every backend (the kernel backend brings the ramps to the host for it): the
phases and the clipped means pool the whole segment. See :mod:`tsogpu.algorithms.emicorr`.
"""

from __future__ import annotations

import warnings

import numpy as np


def sloper(data):
    """jwst ``sloper``: per-pixel least-squares slope and intercept over the groups of a
    (ngroups, ny, nx) integration, float64, groups summed in order."""
    ngroups, ny, nx = np.shape(data)
    grouptimes = np.arange(ngroups) * 1.0
    sxy = np.zeros((ny, nx))
    sx = np.zeros((ny, nx))
    sy = np.zeros((ny, nx))
    sxx = np.zeros((ny, nx))
    for g in range(ngroups):
        sxy = sxy + grouptimes[g] * data[g, ...]
        sx = sx + grouptimes[g]
        sy = sy + data[g, ...]
        sxx = sxx + grouptimes[g] ** 2
    slope = (ngroups * sxy - sx * sy) / (ngroups * sxx - sx * sx)
    intercept = (sxx * sy - sx * sxy) / (ngroups * sxx - sx * sx)
    return slope, intercept


def minmed(data):
    """jwst ``minmed``: the NaN-ignoring median over the first axis (minimum for 2 or fewer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if data.shape[0] <= 2:
            return np.nanmin(data, axis=0)
        return np.nanmedian(data, axis=0)


def rebin(arr, newshape):
    """jwst ``rebin`` (IDL ``congrid`` without interpolation): nearest smaller samples."""
    slices = [
        slice(0, old, float(old) / new) for old, new in zip(arr.shape, newshape, strict=False)
    ]
    indices = np.mgrid[slices].astype("i")
    return arr[tuple(indices)]


def sigma_clipped_mean(values):
    """astropy ``sigma_clipped_stats(values)[0]`` (sigma 3, 5 iterations, median centre,
    std width, the flattened array; non-finite values dropped): the clipped values' mean."""
    v = np.ravel(values)
    good = np.isfinite(v)
    if np.any(~good):
        v = v[good]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(5):
            size = v.size
            cen = np.nanmedian(v)
            std = np.nanstd(v)
            v = v[(v >= cen - std * 3.0) & (v <= cen + std * 3.0)]
            if size == v.size:
                break
        return np.nanmean(v)


def clean_channels(data):
    """jwst's first loop, one integration (float32 (ngroups, ny, nx)): the ramp less its slope
    and self-superbias, the four output channels averaged, the bad reference columns 1 and 2
    replaced, less the frame's median: float32 (ngroups, ny, nx // 4)."""
    ngroups, ny, nx = data.shape
    work = data.copy()
    s0, _ = sloper(data[1 : ngroups - 1])
    for g in range(ngroups):
        work[g] = data[g] - (s0 * g)
    m0 = minmed(work[1 : ngroups - 1])
    out = np.empty((ngroups, ny, nx // 4), np.float32)
    for g in range(ngroups):
        work[g] = work[g] - m0
        dd = (
            work[g, :, 0:nx:4] + work[g, :, 1:nx:4] + work[g, :, 2:nx:4] + work[g, :, 3:nx:4]
        ) / 4.0
        dd[:, 1] = (dd[:, 0] + dd[:, 3]) / 2
        dd[:, 2] = (dd[:, 0] + dd[:, 3]) / 2
        out[g] = dd - np.median(dd)
    return out


def read_phases(shape, rowclocks, frameclocks, nsamples, period, readpatt, colstop):
    """float64 (nints, ngroups, ny, nx4): jwst's ``phaseall``, each read's phase at
    ``period`` from its time in pixel clocks since ``data[0]``'s first read (rows
    ``rowclocks`` apart, frames ``(1024 - ny) * 7`` more, integrations ``frameclocks`` more
    for FASTR1/SLOWR1; jwst's ``2**32 + 3`` on the last column when ``colstop == 258``)."""
    nints, ngroups, ny, nx = shape
    nx4 = int(nx / 4)
    extra_rowclocks = int((1024.0 - ny) * (4 + 3.0))
    frame = ny * rowclocks + extra_rowclocks
    reset = frameclocks if readpatt.upper() in ("FASTR1", "SLOWR1") else 0
    within = (np.arange(ny, dtype=np.uint64)[:, None] * np.uint64(rowclocks)
              + np.arange(nx4, dtype=np.uint64)[None, :] * np.uint64(nsamples))  # fmt: skip
    if colstop == 258:
        within[:, nx4 - 1] += np.uint64(3 + 2**32)
    phaseall = np.zeros((nints, ngroups, ny, nx4))
    for i in range(nints):
        for g in range(ngroups):
            times = within + np.uint64((i * ngroups + g) * frame + i * reset)
            p = times / period
            phaseall[i, g] = p - p.astype("ulonglong")
    return phaseall


def phases_to_use(nints, ngroups, nints_to_phase, use_n_cycles, period, frameclocks):
    """jwst's ``nints_to_phase`` rules."""
    if nints_to_phase is None and use_n_cycles is None:
        return nints
    if nints_to_phase is None:
        return int(np.ceil((use_n_cycles * period) / (frameclocks * ngroups)))
    if use_n_cycles == 3 and nints_to_phase > nints:
        return nints
    return nints_to_phase


def phase_amplitudes(phase, dd, nbins):
    """jwst's ``pa``: per bin ``(nb / nbins, (nb + 1) / nbins]`` of phase, the sigma-clipped
    mean of ``dd`` (in C order), less the median over bins. float64 (nbins,)."""
    edges = np.array([nb / nbins for nb in range(nbins)] + [nbins / nbins])
    flat_phase = phase.ravel()
    bins = np.searchsorted(edges, flat_phase, side="left") - 1  # phase in (edge, next edge]
    order = np.argsort(bins, kind="stable")
    counts = np.bincount(bins[bins >= 0], minlength=nbins)
    first = int(np.count_nonzero(bins < 0))
    flat_dd = dd.ravel()[order]
    pa = np.arange(nbins, dtype=float)
    pos = first
    for nb in range(nbins):
        pa[nb] = sigma_clipped_mean(flat_dd[pos : pos + counts[nb]])
        pos += counts[nb]
    pa -= np.median(pa)
    return pa


def noise_table(pa, period, reference_wave, scale_reference):
    """jwst's ``lut``: ``pa`` resampled to one period, or the reference waveform rolled to
    ``pa``'s phase (the best Pearson correlation) and scaled to it by a line fit."""
    lut = rebin(pa, [period])
    if reference_wave is None:
        return lut
    reference_wave = np.array(reference_wave)
    size = np.size(reference_wave)
    rebinned_pa = rebin(pa, [size])
    cc = np.zeros(size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(size):
            cc[i] = np.corrcoef(np.roll(reference_wave, i), rebinned_pa)[0, 1]
        u = np.argmax(cc)
        lut_reference = rebin(np.roll(reference_wave, u), [period])
        m, _ = np.polyfit(lut_reference, lut, 1)
    if scale_reference:
        lut_reference = lut_reference * m
    return lut_reference


def correct_frequency(data, frequency, wave, exposure, config, params):
    """One frequency of jwst ``_run_sequential_algorithm``: a new float32 array."""
    nints, ngroups, ny, nx = data.shape
    period = (1.0 / frequency) / 10.0e-6
    nints_to_phase = phases_to_use(
        nints, ngroups, params.nints_to_phase, params.use_n_cycles, period, config.frameclocks
    )
    colstop = int(exposure.subsize1 / 4 + exposure.substrt1 - 1)
    phaseall = read_phases(
        data.shape, config.rowclocks, config.frameclocks, config.nsamples, period,
        exposure.readpatt, colstop,
    )  # fmt: skip
    dd_all = np.stack([clean_channels(data[i]) for i in range(nints)]).astype(np.float64)
    nbins = int(period / 2.0) if params.nbins is None else params.nbins
    if nbins > 501:
        nbins = 500
    pa = phase_amplitudes(phaseall[0:nints_to_phase], dd_all[0:nints_to_phase], nbins)
    lut = noise_table(pa, period, wave, params.scale_reference)
    noise = lut[(phaseall * period).astype(int)]
    noise[~np.isfinite(noise)] = 0.0
    out = data.copy()
    for k in range(4):
        out[..., k::4] -= noise
    return out


def correct_sequential(data, exposure, config, params):
    """jwst ``_run_sequential_algorithm``: every frequency in turn, a new float32 array."""
    for f in config.frequencies:
        data = correct_frequency(data, f.frequency, f.wave, exposure, config, params)
    return data
