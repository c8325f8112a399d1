"""MIRI EMI correction (emicorr): jwst 3.0's ``jwst.emicorr.emicorr``, on plain arrays.

jwst's step is skipped by default. For each EMI frequency of the configuration (the EMICORR
reference file's, or ``onthefly_corr_freq``), in the reference file's order, a waveform is
fitted to the ramps and subtracted, the next frequency working on the corrected ramps:

* ``joint`` (the default; jwst ``emicorr_refwave``): the reference waveform's best phase and
  amplitude for ramps that are as straight as possible. Per integration and pixel the
  standard deviation over groups (:func:`group_std`, as ``np.std(data, axis=1)`` sums:
  float32, groups in order); pixels below twice its median (:func:`median_f32`) and with
  PIXELDQ 0 are summed per phase bin of their read time (:func:`bin_sums`, float64, pixels
  in row order); the chi-squared fit over 500 trial phases (:func:`fit_wave`, jwst's
  ``EMIfitter``, ``calc_chisq_amplitudes``, ``get_best_phase``) runs on those small sums;
  the phased, scaled waveform is subtracted from every sample (:func:`subtract_wave`).
* ``sequential`` (jwst ``_run_sequential_algorithm``): in
  :mod:`tsogpu.algorithms.emicorr_sequential`.

The waveform is jwst's ``scipy.interpolate.interp1d(kind="cubic")`` of the reference phase
amplitudes, wrapped by one sample at each end: the not-a-knot cubic spline through those
points, here in piecewise-polynomial form (:func:`spline_fit`, :func:`spline_eval`; equal to
SciPy's to rounding, ~1e-15 relative). kernels/emicorr.cu mirrors :func:`group_std`,
:func:`bin_sums` and :func:`subtract_wave` (one thread per pixel, per (integration, group,
bin), per sample); the rest is host NumPy shared by both backends, so they agree bit for bit.

The fit pools all integrations of the array it is given (one phase and amplitude for all, or
with ``fit_ints_separately`` one per integration from the same sums), and integration ``i``'s
phase is ``i`` integration times after ``data[0]``'s: like jwst, which runs on a segment
file, the correction needs the whole segment at once, never a chunk of its integrations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import oneoverf

ALLOWED_READPATTS = ("FAST", "FASTR1", "SLOW", "SLOWR1")

# jwst emicorr.subarray_clocks: the clocks of an on-the-fly correction (no reference file)
SUBARRAY_CLOCKS = {
    "SLITLESSPRISM": (28, 15904),
    "MASKLYOT": (90, 32400),
    "SUB64": (28, 8512),
    "SUB128": (44, 11904),
    "MASK1140": (82, 23968),
    "MASK1550": (82, 23968),
    "MASK1065": (82, 23968),
    "FULL_FAST": (271, 277504),
    "FULL_SLOW": (2333, 2388992),
    "BRIGHTSKY": (162, 86528),
    "SUB256": (96, 29952),
}

NPHASES_OPT = 500  # jwst emicorr_refwave's trial phases


@dataclass(frozen=True)
class Frequency:
    """One EMI frequency to correct: its name, value [Hz] and reference phase amplitudes
    (1-D, the file's dtype; None for an on-the-fly correction)."""

    name: str
    frequency: float
    wave: np.ndarray | None


@dataclass(frozen=True)
class Configuration:
    """What jwst ``apply_emicorr`` settles before fitting: the algorithm it runs, the
    subarray's clocks, the pixel sample count, the frequencies in order."""

    algorithm: str
    rowclocks: int
    frameclocks: int
    nsamples: int
    frequencies: tuple


def plain_reference(tree):
    """An EMICORR reference as :func:`correct_emi` takes it, from the file's tree.

    ``tree``: a mapping with ``frequencies`` and ``subarray_cases`` (an ASDF file's tree, or
    ``EmiModel.instance``). Returns ``{"frequencies": {name: {"frequency": float,
    "phase_amplitudes": 1-D ndarray}}, "subarray_cases": {name: {"rowclocks": int,
    "frameclocks": int, "freqs": {"FAST": [names], "SLOW": {detector: [names]}}}}}``.
    """

    def plain(v):
        if isinstance(v, dict) or hasattr(v, "items"):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            return np.array(v)
        return v

    freqs = {
        name: {
            "frequency": float(f["frequency"]),
            "phase_amplitudes": np.array(f["phase_amplitudes"]),
        }
        for name, f in tree["frequencies"].items()
    }
    return {"frequencies": freqs, "subarray_cases": plain(tree["subarray_cases"])}


def samples_per_pixel(exposure):
    """NSAMPLES: the exposure's ``nsamples`` where it has one, else MIRI's (1 FAST, 9 SLOW)."""
    n = getattr(exposure, "nsamples", None)
    if n is not None:
        return int(n)
    return 9 if "SLOW" in exposure.readpatt.upper() else 1


def subarray_case(ref, subarray, readpatt, detector):
    """jwst ``get_subarcase`` on a whole reference (:func:`plain_reference`): (rowclocks,
    frameclocks, frequency names) or None."""
    readpatt = readpatt.upper()
    if "SLOW" in readpatt:
        speed = "SLOW"
    elif "FAST" in readpatt:
        speed = "FAST"
    else:
        return None
    subname = f"{subarray}_{speed}" if "FULL" in subarray else subarray
    try:
        case = ref["subarray_cases"][subname]
        freqs = case["freqs"][speed]
        names = freqs if speed == "FAST" else freqs[detector]
        return case["rowclocks"], case["frameclocks"], list(names)
    except (KeyError, TypeError):
        return None


def reference_case(ref, exposure):
    """(rowclocks, frameclocks, [:class:`Frequency`]) of ``exposure`` in ``ref``, or None (no
    match: jwst skips).

    ``ref``: a whole reference (:func:`plain_reference`), or the case that
    ``tsogpu.io.reffiles`` has already picked for the exposure: an object with ``param``
    (``rowclocks``, ``frameclocks`` (None: no match), ``frequency_names``, ``frequencies``)
    and ``arrays`` (each frequency's phase amplitudes by name), as its ``Reference`` has.
    """
    if hasattr(ref, "param"):
        p = ref.param
        if p.get("rowclocks") is None:
            return None
        freqs = zip(p["frequency_names"], p["frequencies"], strict=True)
        return (
            p["rowclocks"],
            p["frameclocks"],
            [Frequency(n, float(f), np.array(ref.arrays[n])) for n, f in freqs],
        )
    case = subarray_case(ref, exposure.subarray, exposure.readpatt, exposure.detector)
    if case is None:
        return None
    rowclocks, frameclocks, names = case
    entries = [ref["frequencies"][name] for name in names]
    return (
        rowclocks,
        frameclocks,
        [
            Frequency(n, e["frequency"], np.array(e["phase_amplitudes"]))
            for n, e in zip(names, entries, strict=True)
        ],
    )


def configure(exposure, ngroups, params, ref):
    """jwst ``EmiCorrStep.process`` and ``apply_emicorr`` before the fit: the
    :class:`Configuration`, or None where jwst skips the step (not MIRI, a read pattern other
    than FAST/FASTR1/SLOW/SLOWR1, fewer than 3 groups, no reference and no on-the-fly
    frequency, no match for the subarray and read pattern)."""
    readpatt = exposure.readpatt
    if exposure.instrument != "MIRI" or readpatt.upper() not in ALLOWED_READPATTS:
        return None
    onthefly = params.onthefly_corr_freq or None  # EmiCorr's () is jwst's None
    if onthefly is not None:
        ref = None
    if ngroups < 3:
        return None
    algorithm = params.algorithm
    if algorithm == "joint" and ref is None:
        algorithm = "sequential"
    if ref is not None:
        case = reference_case(ref, exposure)
        if case is None:
            return None
        rowclocks, frameclocks, freqs = case
    elif onthefly is None:
        return None
    else:
        subname = exposure.subarray
        if subname == "FULL":
            if "FAST" in readpatt.upper():
                subname += "_FAST"
            elif "SLOW" in readpatt.upper():
                subname += "_SLOW"
        if subname not in SUBARRAY_CLOCKS:
            return None
        rowclocks, frameclocks = SUBARRAY_CLOCKS[subname]
        freqs = [Frequency(repr(f), f, None) for f in onthefly]
    if not freqs:
        return None
    return Configuration(
        algorithm, rowclocks, frameclocks, samples_per_pixel(exposure), tuple(freqs)
    )


# ---- the waveform: jwst's interp1d(kind="cubic") of the wrapped phase amplitudes -----------


@dataclass(frozen=True)
class Spline:
    """A cubic in each interval ``[knots[m], knots[m + 1])``: at ``t = p - knots[m]``,
    ``((c3[m] * t + c2[m]) * t + c1[m]) * t + c0[m]`` (float64, in that order)."""

    knots: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray


def spline_fit(x, y):
    """The not-a-knot cubic spline through ``(x, y)`` (``x`` increasing, 4 or more points),
    as SciPy's ``interp1d(x, y, kind="cubic")`` interpolates: slopes from the tridiagonal
    system with not-a-knot end rows (``scipy.interpolate.CubicSpline``'s), solved densely."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = x.size
    h = np.diff(x)
    d = np.diff(y) / h
    a = np.zeros((n, n))
    r = np.zeros(n)
    for i in range(1, n - 1):
        a[i, i - 1] = h[i]
        a[i, i] = 2.0 * (h[i - 1] + h[i])
        a[i, i + 1] = h[i - 1]
        r[i] = 3.0 * (h[i] * d[i - 1] + h[i - 1] * d[i])
    a[0, 0], a[0, 1] = h[1], h[0] + h[1]
    r[0] = ((h[0] + 2.0 * (h[0] + h[1])) * h[1] * d[0] + h[0] ** 2 * d[1]) / (h[0] + h[1])
    a[-1, -2], a[-1, -1] = h[-1] + h[-2], h[-2]
    r[-1] = (h[-1] ** 2 * d[-2] + (2.0 * (h[-2] + h[-1]) + h[-1]) * h[-2] * d[-1]) / (h[-2] + h[-1])
    s = np.linalg.solve(a, r)
    c2 = (3.0 * d - 2.0 * s[:-1] - s[1:]) / h
    c3 = (s[:-1] + s[1:] - 2.0 * d) / (h * h)
    return Spline(x, y[:-1].copy(), s[:-1].copy(), c2, c3)


def spline_eval(spline, p):
    """float64: the spline at ``p`` (the interval: ``np.searchsorted(knots, p, "right") - 1``,
    clipped to the first and last; the cubic in Horner's order)."""
    m = np.clip(np.searchsorted(spline.knots, p, side="right") - 1, 0, spline.knots.size - 2)
    t = p - spline.knots[m]
    return ((spline.c3[m] * t + spline.c2[m]) * t + spline.c1[m]) * t + spline.c0[m]


def wave_spline(wave):
    """jwst ``emicorr_refwave``'s ``phasefunc``, and the phases of its samples.

    Returns (:class:`Spline`, ``phase_extended`` float64 (len(wave) + 2,)).
    """
    wave = np.asarray(wave)
    extended = np.array([wave[-1]] + list(wave) + [wave[0]])
    phase_extended = (np.arange(len(wave) + 2) - 0.5) / len(wave)
    return spline_fit(phase_extended, extended), phase_extended


# ---- joint: the heavy per-pixel parts (kernels/emicorr.cu mirrors these) --------------------


def read_phases(ny, nx4, rowclocks, nsamples, period):
    """float64 (ny, nx4): jwst ``emicorr_refwave``'s ``phase`` of each read in a frame."""
    t0 = np.zeros((ny, nx4))
    for i in range(ny):
        t0[i] = i * rowclocks + np.arange(nx4) * nsamples
    return (t0 / period) % 1


def group_std(data):
    """float32 (nints, ny, nx): ``np.std(data, axis=1)`` as NumPy sums it (float32, groups in
    order: the mean, then the squared differences; each divided by ngroups, the root)."""
    ngroups = data.shape[1]
    acc = data[:, 0].copy()
    for g in range(1, ngroups):
        acc += data[:, g]
    mean = acc / np.float32(ngroups)
    dev = data[:, 0] - mean
    acc = dev * dev
    for g in range(1, ngroups):
        dev = data[:, g] - mean
        acc += dev * dev
    return np.sqrt(acc / np.float32(ngroups))


def median_of_sorted(lo, hi, last, n):
    """``np.median``'s float32 value from a sorted float32 array of ``n`` values: its middle
    values ``lo``, ``hi`` (indices ``(n - 1) // 2``, ``n // 2``) and its ``last``: NaN if the
    last is (NumPy sorts NaN last), the middle value for odd ``n``, else the float32 sum of
    the two halved."""
    lo, hi = np.float32(lo), np.float32(hi)
    if np.isnan(last):
        return np.float32(np.nan)
    if n % 2:
        return lo
    return np.float32((lo + hi) / np.float32(2))


def median_f32(values):
    """``np.median`` of a float32 array, as NumPy computes it (NaN if any value is)."""
    s = np.sort(np.asarray(values, np.float32).ravel())
    n = s.size
    if n == 0:
        return np.float32(np.nan)
    return median_of_sorted(s[(n - 1) // 2], s[n // 2], s[-1], n)


def phase_bins(phase, nphases, nx):
    """int32 (ny, nx): each pixel's phase bin ``int(phase * nphases)`` (its read's column
    ``x // 4``), or ``nphases`` (left out) in jwst's bad reference columns 1 and 2 and beyond
    ``4 * (nx // 4)``."""
    ny, nx4 = phase.shape
    bins = np.minimum((phase * nphases).astype(np.int64), nphases - 1)
    bins[:, 1:3] = nphases
    labels = np.full((ny, nx), nphases, np.int32)
    labels[:, : 4 * nx4] = np.repeat(bins, 4, axis=1)
    return labels


def bin_sums(data, std, threshold, pixeldq, labels, nphases):
    """jwst ``emicorr_refwave``'s ``all_y`` and ``all_n``: per integration and phase bin, the
    sum over good pixels of each group's values, and the good pixels' count.

    A pixel is good in an integration where ``std < threshold`` and PIXELDQ is 0; every pixel
    of a bin adds ``float32(value * good)`` to a float64 sum, in row order (jwst's loop).

    Returns
    -------
    all_y : float64 (nints, nphases, ngroups)
    all_n : float64 (nints, nphases)
    """
    nints, ngroups, ny, nx = data.shape
    start, order = oneoverf.members(labels, nphases + 1)
    counts = np.diff(start)[:nphases]
    width = int(counts.max()) if nphases else 0
    idx = np.zeros((nphases, width), np.int64)
    pad = np.ones((nphases, width), bool)
    for b in range(nphases):
        idx[b, : counts[b]] = order[start[b] : start[b + 1]]
        pad[b, : counts[b]] = False
    good = (std < np.float32(threshold)) & (np.asarray(pixeldq) == 0)[None]
    all_y = np.zeros((nints, nphases, ngroups))
    all_n = np.zeros((nints, nphases))
    for i in range(nints):
        ok = good[i].ravel()
        vals = data[i].reshape(ngroups, ny * nx) * ok.astype(np.float32)
        gathered = vals[:, idx].astype(np.float64)  # (ngroups, nphases, width)
        acc = np.zeros((ngroups, nphases))
        for w in range(width):
            acc = np.where(pad[:, w], acc, acc + gathered[:, :, w])
        all_y[i] = acc.T
        all_n[i] = (ok[idx] & ~pad).sum(axis=1)
    return all_y, all_n


def subtract_wave(data, phase, dphase, phases_to_correct, amplitudes, spline):
    """jwst ``emicorr_refwave``'s last loop: ``data[i, j, :, k::4] -= amplitudes[i] *
    phasefunc((phase + dphase * j + phases_to_correct[i]) % 1)``, a new float32 array
    (``float32(float64(x) - amplitude * wave)``)."""
    nints, ngroups, ny, nx = data.shape
    nx4 = phase.shape[1]
    out = np.empty_like(data)
    steps = dphase * np.arange(ngroups)
    for i in range(nints):
        arg = (phase[None] + steps[:, None, None] + phases_to_correct[i]) % 1
        emi = amplitudes[i] * spline_eval(spline, arg)  # (ngroups, ny, nx4)
        x = data[i].reshape(ngroups, ny, nx4, 4).astype(np.float64)
        out[i] = (x - emi[..., None]).astype(np.float32).reshape(ngroups, ny, nx)
    return out


# ---- joint: the fit on the binned sums (host, shared by every backend) ----------------------


def get_best_phase(phases, chisq):
    """jwst ``get_best_phase``: the vertex of the parabola through the lowest chi squared and
    its neighbours (periodic)."""
    chisq = np.asarray(chisq)
    if np.all(~np.isfinite(chisq)):
        return phases[0]
    ibest = np.nanargmin(chisq)
    ibest_m1 = ibest - 1
    ibest_p1 = ibest + 1 if ibest + 1 <= len(chisq) - 1 else 0
    chisq_opt = [chisq[ibest_m1], chisq[ibest], chisq[ibest_p1]]
    if np.any(~np.isfinite(chisq_opt)):
        return phases[ibest]
    x = [phases[ibest_m1], phases[ibest], phases[ibest_p1]]
    if np.nanstd(chisq_opt) == 0:
        return phases[ibest]
    a, b, _ = np.polyfit(x, chisq_opt, 2)
    return -b / (2 * a)


def chisq_terms(all_y, all_n, spline, phases_template, phaselist, dphase_frame, phases, ints):
    """Per integration of ``ints`` and requested phase, the three sums jwst
    ``calc_chisq_amplitudes`` adds over integrations (the ``EMIfitter`` sums, the waveform
    ``k`` nearest the phase plus the integration's offset), in jwst's operations.

    Returns float64 (len(ints), len(phases)) arrays ``a``, ``b`` (its ``(2 / delta) * sum``)
    and ``yz`` (``np.sum(s_yz)``).
    """
    ints = np.asarray(ints, np.int64)
    all_y, all_n = all_y[ints], all_n[ints]
    nints, nphases, ngroups = all_y.shape
    grouptimes = np.arange(ngroups)
    s_tt = np.sum(grouptimes**2)
    s_t = np.sum(grouptimes)
    delta = ngroups * s_tt - s_t**2
    all_sy = np.sum(all_y, axis=2)
    all_sty = np.sum(all_y * grouptimes, axis=2)
    phase_diff = dphase_frame * ints
    phases = np.asarray(phases, np.float64)
    ks = np.empty((nints, phases.size), np.int64)
    for p, phase in enumerate(phases):
        ks[:, p] = np.argmin(np.abs((phaselist[None, :] - phase - phase_diff[:, None]) % 1), axis=1)
    a = np.empty((nints, phases.size))
    b = np.empty((nints, phases.size))
    yz = np.empty((nints, phases.size))
    for k in np.unique(ks):
        z = spline_eval(spline, (phases_template.T + phaselist[k]) % 1).T  # (nphases, ngroups)
        s_tz = np.sum(grouptimes * z, axis=1)
        s_z = np.sum(z, axis=1)
        s_zz = np.sum(z**2, axis=1)
        ii, pp = np.nonzero(ks == k)
        dot = np.empty(ii.size)
        for c in range(0, ii.size, 64):  # bounds the (ints, nphases, ngroups) product
            dot[c : c + 64] = np.sum(np.sum(z * all_y[ii[c : c + 64]], axis=2), axis=1)
        n_ = all_n[ii]
        a[ii, pp] = np.sum(
            n_ / delta * (-s_tt * s_z**2 + 2 * s_t * s_z * s_tz - ngroups * s_tz**2 + s_zz * delta),
            axis=1,
        )
        s_y, s_ty = all_sy[ii], all_sty[ii]
        b[ii, pp] = (2 / delta) * np.sum(
            s_tt * s_z * s_y - s_t * s_tz * s_y - s_t * s_z * s_ty + ngroups * s_tz * s_ty, axis=1
        )
        yz[ii, pp] = dot
    return a, b, yz


def chisq_amplitude(a, b, yz):
    """jwst ``calc_chisq_amplitudes`` for one phase from its per-integration terms (1-D, the
    integrations to combine): (chi squared, amplitude), summed in integration order.

    Python floats: the same IEEE operations as jwst's NumPy scalars (``c**2`` is C's ``pow``
    in both); ``abs(a_) <= 1e-8`` is ``np.isclose(a_, 0, atol=1e-8)``.
    """
    a_, b_ = 0, 0
    for ai, bi, yi in zip(a.tolist(), b.tolist(), yz.tolist(), strict=True):
        a_ += ai
        b_ += bi
        b_ -= 2 * yi
    if abs(a_) <= 1e-8 or not math.isfinite(a_) or not math.isfinite(b_):
        return np.nan, 0.0
    c = -b_ / (2 * a_)
    return a_ * c**2 + b_ * c, c


def fit_wave(all_y, all_n, spline, phase_extended, dphase, dphase_frame, fit_ints_separately):
    """jwst ``emicorr_refwave``'s fit: (phases_to_correct float64 (nints,), amplitudes
    float64 (nints,)) of the waveform per integration."""
    nints, nphases, ngroups = all_y.shape
    phases_template = (phase_extended[1:-1, np.newaxis] + np.arange(ngroups) * dphase) % 1
    phaselist = np.arange(NPHASES_OPT) * 1.0 / NPHASES_OPT
    fitter = (all_y, all_n, spline, phases_template, phaselist, dphase_frame)
    terms = chisq_terms(*fitter, phaselist, np.arange(nints))
    if fit_ints_separately:
        ptc, amps = np.empty(nints), np.empty(nints)
        for i in range(nints):
            chisq = [
                chisq_amplitude(*(t[i, p : p + 1] for t in terms))[0] for p in range(NPHASES_OPT)
            ]
            best = get_best_phase(phaselist, chisq)
            ptc[i] = best + i * dphase_frame
            amps[i] = chisq_amplitude(*(t[0] for t in chisq_terms(*fitter, [best], [i])))[1]
        return ptc, amps
    chisq = [chisq_amplitude(*(t[:, p] for t in terms))[0] for p in range(NPHASES_OPT)]
    best = get_best_phase(phaselist, chisq)
    amp = chisq_amplitude(*(t[:, 0] for t in chisq_terms(*fitter, [best], np.arange(nints))))[1]
    return (best + np.arange(nints) * dphase_frame) % 1, np.full(nints, amp)


def joint_geometry(shape, rowclocks, frameclocks, nsamples, freq, readpatt):
    """jwst ``_run_joint_algorithm`` and the start of ``emicorr_refwave`` for one frequency:
    (read phases float64 (ny, nx4), dphase, dphase_frame)."""
    nints, ngroups, ny, nx = shape
    frameclocks = frameclocks if readpatt.upper() in ("FASTR1", "SLOWR1") else 0
    period = (1.0 / freq) / 10.0e-6
    extra_rowclocks = (1024.0 - ny) * (4 + 3.0)
    frametime = ny * rowclocks + extra_rowclocks
    phase = read_phases(ny, nx // 4, rowclocks, nsamples, period)
    dphase = (frametime / period) % 1
    dphase_frame = dphase * ngroups + frameclocks / period
    return phase, dphase, dphase_frame


def correct_joint(data, pixeldq, config, readpatt, fit_ints_separately, steps=None):
    """jwst ``_run_joint_algorithm``: each frequency's waveform fitted and subtracted.

    ``steps``: the functions (:func:`group_std`, :func:`median_f32`, :func:`bin_sums`,
    :func:`subtract_wave`) to run the per-sample work with; a kernel build's launchers, or
    these (None).
    """
    group_std_, median_, bin_sums_, subtract_ = steps or (
        group_std,
        median_f32,
        bin_sums,
        subtract_wave,
    )
    for f in config.frequencies:
        phase, dphase, dphase_frame = joint_geometry(
            data.shape, config.rowclocks, config.frameclocks, config.nsamples, f.frequency, readpatt
        )
        spline, phase_extended = wave_spline(f.wave)
        nphases = len(f.wave)
        std = group_std_(data)
        threshold = np.float32(2) * median_(std)
        labels = phase_bins(phase, nphases, data.shape[3])
        all_y, all_n = bin_sums_(data, std, threshold, pixeldq, labels, nphases)
        ptc, amps = fit_wave(
            all_y, all_n, spline, phase_extended, dphase, dphase_frame, fit_ints_separately
        )
        data = subtract_(data, phase, dphase, ptc, amps, spline)
    return data


def correct_emi(data, groupdq, pixeldq, exposure, params, ref):
    """The EMI correction of jwst 3.0 (``jwst.emicorr.emicorr.apply_emicorr``).

    Parameters
    ----------
    data : float32 (nints, ngroups, ny, nx), the whole segment (see the module docstring)
    groupdq : uint8 (nints, ngroups, ny, nx), unused (jwst reads none)
    pixeldq : uint32 (ny, nx)
    exposure : tsogpu.segment.Exposure (instrument, detector, readpatt, subarray,
        substrt1, subsize1, nsamples where present)
    params : the step's parameters (``tsogpu.config.EmiCorr``: algorithm, nints_to_phase,
        nbins, scale_reference, onthefly_corr_freq, use_n_cycles, fit_ints_separately)
    ref : the EMICORR reference (:func:`reference_case`: the whole file as
        :func:`plain_reference` gives it, or ``tsogpu.io``'s ``Reference`` with the case
        picked), or None (``onthefly_corr_freq`` only)

    Returns
    -------
    float32 (nints, ngroups, ny, nx), a new array; None where jwst skips the step (DQ is
    never changed).
    """
    config = configure(exposure, data.shape[1], params, ref)
    if config is None:
        return None
    data = np.asarray(data, np.float32)
    if config.algorithm == "joint":
        return correct_joint(data, pixeldq, config, exposure.readpatt, params.fit_ints_separately)
    from . import emicorr_sequential

    return emicorr_sequential.correct_sequential(data, exposure, config, params)
