"""Launchers of kernels/emicorr.cu: jwst's EMI correction (``tsogpu.algorithms.emicorr``),
bit for bit. Each function takes the kernels object ``k`` first, then the parameters of the
NumPy function of the same name. Inputs are never modified.

The joint algorithm's per-sample work runs in the kernels; its fit on the binned sums, and
the whole sequential algorithm, run on the host with the NumPy functions themselves.
"""

from functools import partial
from types import SimpleNamespace

import numpy as np

from ..algorithms import emicorr as alg
from ..algorithms import emicorr_sequential as seq
from ..algorithms import oneoverf
from .marshal import contiguous, i64, to_host


def group_std(k, data):
    """``tsogpu.algorithms.emicorr.group_std``."""
    data = contiguous(k, data, np.float32)
    nints, ngroups, ny, nx = data.shape
    out = k.xp.empty((nints, ny, nx), np.float32)
    k.launch(
        "tso_emi_group_std", nints * ny * nx, data, out, i64(ngroups), i64(ny * nx), i64(nints)
    )
    return out


def median_f32(k, values):
    """``tsogpu.algorithms.emicorr.median_f32`` (the values sorted where they are)."""
    s = k.xp.sort(k.xp.asarray(values, np.float32).ravel())
    n = s.size
    if n == 0:
        return np.float32(np.nan)
    picks = to_host(s[k.xp.asarray([(n - 1) // 2, n // 2, n - 1])])
    return alg.median_of_sorted(picks[0], picks[1], picks[2], n)


def bin_sums(k, data, std, threshold, pixeldq, labels, nphases):
    """``tsogpu.algorithms.emicorr.bin_sums`` (NumPy arrays: the host fit takes them)."""
    xp = k.xp
    data = contiguous(k, data, np.float32)
    nints, ngroups, ny, nx = data.shape
    start, order = oneoverf.members(to_host(labels), nphases + 1)
    all_y = xp.empty((nints, nphases, ngroups), np.float64)
    all_n = xp.empty((nints, nphases), np.float64)
    k.launch(
        "tso_emi_bin_sums", nints * ngroups * nphases, data, contiguous(k, std, np.float32),
        contiguous(k, pixeldq, np.uint32), xp.asarray(start), xp.asarray(order),
        np.float32(threshold), all_y, all_n, i64(nints), i64(ngroups), i64(ny * nx),
        i64(nphases),
    )  # fmt: skip
    return to_host(all_y), to_host(all_n)


def subtract_wave(k, data, phase, dphase, phases_to_correct, amplitudes, spline):
    """``tsogpu.algorithms.emicorr.subtract_wave``."""
    xp = k.xp
    data = contiguous(k, data, np.float32)
    nints, ngroups, ny, nx = data.shape
    out = xp.empty(data.shape, np.float32)
    f64 = [contiguous(k, a, np.float64) for a in (phase, phases_to_correct, amplitudes)]
    coeffs = [
        contiguous(k, a, np.float64)
        for a in (spline.knots, spline.c0, spline.c1, spline.c2, spline.c3)
    ]
    k.launch(
        "tso_emi_subtract", data.size, data, *f64, *coeffs, i64(spline.knots.size),
        np.float64(dphase), out, i64(nints * ngroups), i64(ngroups), i64(ny), i64(nx),
    )  # fmt: skip
    return out


def correct_emi(k, data, groupdq, pixeldq, exposure, params, ref):
    """``tsogpu.algorithms.emicorr.correct_emi``."""
    if hasattr(ref, "arrays"):  # a Reference the backend has moved: its waveforms to the host
        ref = SimpleNamespace(
            param=ref.param, arrays={n: to_host(a) for n, a in ref.arrays.items()}
        )
    config = alg.configure(exposure, data.shape[1], params, ref)
    if config is None:
        return None
    if config.algorithm != "joint":
        host = np.asarray(to_host(data), np.float32)
        return k.xp.asarray(seq.correct_sequential(host, exposure, config, params))
    steps = tuple(partial(f, k) for f in (group_std, median_f32, bin_sums, subtract_wave))
    data = contiguous(k, data, np.float32)
    return alg.correct_joint(
        data, pixeldq, config, exposure.readpatt, params.fit_ints_separately, steps
    )
