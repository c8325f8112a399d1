"""ramp_fit: optimally weighted ordinary least squares per pixel (stcal 1.20 OLS_C).

Mirrors ``jwst/ramp_fitting/ramp_fit_step.py`` (``set_groupdq`` for firstgroup/lastgroup),
``stcal/ramp_fitting/ramp_fit.py`` (read-noise conversion, one-good-group suppression) and
the C extension ``stcal/ramp_fitting/src/slope_fitter.c`` (everything else), for the
products jwst writes as ``_rateints`` and ``_rate`` before gain_scale.

This module and ``slope_fitter.py`` are the readable specification: :func:`fit_ramps` does
the Python side, then runs the C code's functions one pixel at a time (``slope_fitter.py``,
under the C code's names: ``get_pixel_ramp``, ``compute_median_rate``,
``compute_integration_segments``, ``ramp_fit_pixel`` ...), in its operation order; it is
slow. The machine runs the tuned path, ``tsogpu/algorithms/ramp_fit_fast.py``, which gives
the same bits (``tests/test_spec_vs_fast.py``).

Everything is per pixel: a pixel's results depend only on its own ramp, PIXELDQ, gain, read
noise, dark current and ZEROFRAME, so any split of the pixels (rows) gives the same bits.
One pixel = one CUDA thread; the order below is the order that thread must follow.

Per pixel (``slope_fitter.c: get_pixel_ramp, ramp_fit_pixel``):

0. Before the C code (Python side): groups outside [firstgroup, lastgroup] get DO_NOT_USE;
   a copy of GROUPDQ is kept for the CHARGELOSS pass; with ``suppress_one_group`` (and
   NGROUPS > 1) an integration with exactly one group of ``gdq & ~PERSISTENCE == 0`` gets
   DO_NOT_USE in every group; read noise becomes ``float32(rn * (gain / sqrt(2 NFRAMES)))``
   (float64 product, electrons per read). TGROUP and TFRAME are rounded to float32 and used
   as doubles, as the C code reads them; ``one_group_time = (NFRAMES + 1) * TFRAME / 2``.
1. Load (``get_pixel_ramp``): float64 data, SATURATED groups -> NaN; per integration the
   counts of exactly-zero groups, DNU-or-SAT groups and SAT groups, and whether any group
   has JUMP, PERSISTENCE, CHARGELOSS. Bad gain (<= 0 or NaN) ORs DNU|NO_GAIN_VALUE into
   the pixel DQ that every output DQ starts from.
   Without suppression: one exactly-zero group that is group 0 -> "0th-group" timing; no
   exactly-zero group and a non-zero ZEROFRAME -> group 0 := ZEROFRAME, its DQ := 0,
   ZEROFRAME timing (TFRAME).
2. Median rate (``compute_median_rate``), over ALL integrations of the pixel before any
   fit: per integration the NaN-median of first differences of ``data / TGROUP`` (DNU
   groups NaN, a difference NaN when its later group has JUMP; if all differences are NaN
   the first rate value is used), NaN -> 0; the pixel's rate is the mean of those
   integration medians (float64, summed in integration order). NGROUPS == 1: mean of
   ``data[0] / one_group_time`` (NaN not replaced). The same rate serves every integration.
3. Per integration: segments (``compute_integration_segments``), segment fits
   (``fit_segment``), inverse read-noise-variance weighted slope (stcal >= 1.19, JP-4318),
   the thresholds at ``LARGE_VARIANCE_THRESHOLD`` and the DQ summary.
4. Exposure: sums over integrations of the inverse variances and of ``slope / var_r``.
5. CHARGELOSS pixels only: read-noise variances recomputed with CHARGELOSS|DNU toggled off
   in the copied GROUPDQ (``ramp_fit_pixel_rnoise_chargeloss``).

Float rules (as the C code, ``real_t = double``): every intermediate is float64, inputs are
widened from float32, outputs are rounded once to float32. The one transcendental is
``powf`` for the optimal weights: here it is ``float32(pow(float64(float32(x)),
float64(float32(P))))``, the correctly rounded single-precision power. glibc's ``powf``
(which stcal calls) is not correctly rounded in about 0.05 % of the (segment length, group,
P) combinations and then differs by one float32 ulp in that weight; NumPy's own float32
``power`` (SIMD) is worse, so it is not used (:func:`powf`). Sums run over groups, segments
and integrations in the C code's order.

Options beyond stcal, off by default (docs/options.md): ``weighting`` fixes the exponent P of
every segment's weights (``unweighted``: 0; ``exponent:P``) instead of ``snr_power``'s;
``goodness_of_fit`` returns each integration's reduced chi-square
(``slope_fitter.reduced_chi2``, after the integration's slope is final) as
``RampFitResult.chi2``.

Non-local behaviour of stcal, NOT done here (the caller must): if every pixel of every
integration of the whole exposure has SATURATED in group 0, stcal returns no products at all
(see :func:`exposure_fully_saturated`, tested on the first group fitted). MIRI's whole-array
group discard (``ols_fit.py: discard_miri_groups``): the caller decides the groups with
:func:`miri_groups` over the whole segment and passes them as ``groups``; :func:`fit_ramps`
then fits those groups only, JUMP_DET cleared in the first where groups before it were dropped.
"""

from typing import NamedTuple

import numpy as np

from .. import dq
from .slope_fitter import LARGE_VARIANCE_THRESHOLD, SNR_POWERS, Times, ols_slope_fit_pixel, powf

__all__ = [
    "LARGE_VARIANCE_THRESHOLD",
    "SNR_POWERS",
    "RampFitResult",
    "RateProduct",
    "exposure_fully_saturated",
    "fit_ramps",
    "flag_group_range",
    "group_range",
    "miri_groups",
    "ols_readnoise",
    "powf",
    "suppress_one_good_group",
]

_DNU8 = np.uint8(dq.DO_NOT_USE)
_CHARGELOSS8 = np.uint8(dq.CHARGELOSS)


class RateProduct(NamedTuple):
    """One rate product: SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE.

    Arrays are float32 (DQ uint32), shape (ny, nx) for ``rate`` and (nints, ny, nx) for
    ``rateints``; units DN/s (variances (DN/s)^2).
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray


class RampFitResult(NamedTuple):
    """Output of :func:`fit_ramps`: the ``_rateints`` and ``_rate`` arrays.

    ``chi2``: with ``ramp_fit.goodness_of_fit`` (beyond jwst), float32 (nints, ny, nx), each
    integration's reduced chi-square (``slope_fitter.reduced_chi2``); else None.
    """

    rateints: RateProduct
    rate: RateProduct
    chi2: np.ndarray | None = None


# ---------------------------------------------------------------------------------------
# Python-side preparation (jwst ramp_fit_step.py, stcal ramp_fit.py)


def flag_group_range(groupdq, firstgroup, lastgroup):
    """OR DO_NOT_USE into groups outside [firstgroup, lastgroup] (jwst ``set_groupdq``).

    jwst's quirks are kept: ``firstgroup < 0`` becomes 0; ``lastgroup >= ngroups`` is only
    warned about (no group after it exists); ``firstgroup >= lastgroup`` ignores both.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    firstgroup, lastgroup : int or None, 0-based

    Returns
    -------
    ndarray of uint8, same shape; a new array.
    """
    out = groupdq.copy()
    first, last = group_range(groupdq.shape[1], firstgroup, lastgroup)
    out[:, :first] |= _DNU8
    out[:, last + 1 :] |= _DNU8
    return out


def group_range(ngroups, firstgroup, lastgroup):
    """The groups [first, last] (0-based, inclusive) that jwst's ``set_groupdq`` leaves usable
    (see :func:`flag_group_range`)."""
    if firstgroup is None and lastgroup is None:
        return 0, ngroups - 1
    first = 0 if firstgroup is None else int(firstgroup)
    last = ngroups - 1 if lastgroup is None else int(lastgroup)
    if first < 0:
        first = 0
    if first >= last:
        first, last = 0, ngroups - 1
    return first, last


def suppress_one_good_group(groupdq):
    """DO_NOT_USE in every group of integrations with exactly one good group.

    Mirrors ``stcal ramp_fit.py: suppress_one_good_group_ramps``: "good" is
    ``gdq & ~PERSISTENCE == 0``.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)

    Returns
    -------
    ndarray of uint8, same shape; a new array.
    """
    not_pers = np.uint8(~np.uint8(dq.PIXEL["PERSISTENCE"]))
    ngood = np.zeros((groupdq.shape[0],) + groupdq.shape[2:], dtype=np.int32)
    for g in range(groupdq.shape[1]):
        ngood += (groupdq[:, g] & not_pers) == 0
    out = groupdq.copy()
    out |= np.where(ngood == 1, np.uint8(dq.DO_NOT_USE), np.uint8(0))[:, None]
    return out


def miri_groups(all_dnu, params):
    """The groups OLS_C fits for MIRI (stcal ``ols_fit.py: discard_miri_groups``).

    stcal drops the leading groups that are DO_NOT_USE in every pixel and integration of the
    whole array, then the final group if it is, and fits nothing if fewer than 2 groups are
    left (or none); where leading groups were dropped, JUMP_DET is cleared in the new first
    group (:func:`fit_ramps` does that, given ``groups``). It applies to MIRI with NGROUPS > 1,
    fitted with OLS_C (also where LIKELY falls back to it below 4 groups), not to LIKELY.

    Parameters
    ----------
    all_dnu : ndarray of bool, (nints, ngroups)
        The planes DO_NOT_USE in every pixel of the GROUPDQ ramp fitting gets
        (``jump.all_dnu_planes``), ANDed over the tiles and chunks of the whole segment.
    params : tsogpu.config.RampFit
        Its ``firstgroup`` and ``lastgroup``: jwst flags the groups outside them DO_NOT_USE
        before stcal looks.

    Returns
    -------
    (first, stop) : the groups ``first .. stop - 1`` to fit, or None: stcal fits nothing and
        jwst writes no rate products.

    Notes
    -----
    stcal tests the GROUPDQ after the one-good-group suppression too; a group that only the
    suppression makes DO_NOT_USE everywhere (every pixel and integration either DO_NOT_USE
    there or a ramp with one good group) is not seen here.
    """
    all_dnu = np.asarray(all_dnu, dtype=bool)
    ngroups = all_dnu.shape[1]
    if ngroups <= 1:
        return 0, ngroups
    first, last = group_range(ngroups, params.firstgroup, params.lastgroup)
    groups = np.arange(ngroups)
    dnu = np.logical_and.reduce(all_dnu, axis=0) | (groups < first) | (groups > last)
    start, stop = 0, ngroups
    while dnu[start]:
        start += 1
        if start == ngroups:
            return None
    if dnu[stop - 1]:
        stop -= 1
    if stop - start < 2:
        return None
    return start, stop


def ols_readnoise(readnoise, gain, nframes):
    """Per-read read noise in electrons, as OLS_C converts it in place.

    ``readnoise_2d *= gain_2d / np.sqrt(2.0 * nframes)`` with float32 arrays: the quotient
    is float64 (``np.sqrt`` returns a float64 scalar), so the product is float64, rounded
    to float32 by the in-place store.

    Parameters
    ----------
    readnoise, gain : ndarray of float32, (ny, nx); readnoise in DN (CDS), gain in e/DN
    nframes : int

    Returns
    -------
    ndarray of float32, (ny, nx)
    """
    factor = gain.astype(np.float64) / np.sqrt(np.float64(2.0 * nframes))
    return (readnoise.astype(np.float64) * factor).astype(np.float32)


def exposure_fully_saturated(groupdq):
    """True when stcal would return no products: group 0 SATURATED in every pixel and int.

    This is the only whole-array statistic of OLS_C (``ols_fit.py: ols_ramp_fit_multi``);
    jwst then writes neither ``_rate`` nor ``_rateints``. A caller that fits the exposure in
    chunks must AND this over all chunks (and all integrations) itself.

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    """
    return bool(np.all((groupdq[:, 0] & np.uint8(dq.SATURATED)) != 0))


def saturated_planes(groupdq):
    """bool (nints, ngroups): the planes SATURATED in every pixel (ANDed over chunks, the
    fully-saturated test of the first group fitted, :func:`exposure_fully_saturated`)."""
    return np.all((groupdq & np.uint8(dq.SATURATED)) != 0, axis=(2, 3))


# ---------------------------------------------------------------------------------------
# The step: the Python side, then slope_fitter.c one pixel at a time


def fit_ramps(
    data,
    groupdq,
    pixeldq,
    gain,
    readnoise,
    params,
    *,
    nframes,
    groupgap,
    tgroup,
    tframe,
    dropframes1=0,
    average_dark_current=None,
    zeroframe=None,
    groups=None,
    memo=None,
):
    """Fit every pixel's ramps as jwst 3.0 RampFitStep does with OLS_C (stcal 1.20).

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx), DN, after jump
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    gain : ndarray of float32, (ny, nx), e/DN, cut to the subarray
    readnoise : ndarray of float32, (ny, nx), DN (CDS), cut to the subarray
    params : tsogpu.config.RampFit
    nframes : int, NFRAMES
    groupgap, dropframes1 : int, GROUPGAP and DRPFRMS1; OLS_C uses them only for the
        optional pedestal product, so they do not change the results here.
    tgroup, tframe : float, TGROUP and TFRAME [s]
    average_dark_current : ndarray of float32, (ny, nx), or None (zeros)
    zeroframe : ndarray of float32, (nints, ny, nx), or None; used only when
        ``suppress_one_group`` is off (or NGROUPS == 1).
    groups : (first, stop) or None
        MIRI: the groups to fit, from :func:`miri_groups` (None: all). They are cut after the
        group range and the suppression, and JUMP_DET is cleared in group ``first`` where
        ``first > 0``, as stcal's ``discard_miri_groups``; the copy kept for CHARGELOSS keeps it.

    memo : dict or None
        A dict kept between calls on the same ramp and references with other JUMP flags
        (``tsogpu sweep``'s points), where an implementation may keep what an integration
        without flags gives (its data alone decide it). This specification and the NumPy
        backend compute everything; the kernels (``tsogpu/launchers/ramp_fit.py``) use it.
    Returns
    -------
    RampFitResult
        ``rateints``: float32 (nints, ny, nx) arrays (DQ uint32); ``rate``: (ny, nx).
        Not gain-scaled. The caller must check :func:`exposure_fully_saturated` over the
        whole exposure: where it is true jwst writes no products.
    """
    del groupgap, dropframes1  # pedestal only (fitopt product)
    del memo  # everything is computed
    nints, ngroups, ny, nx = data.shape
    # jwst ramp_fit_step.py and stcal ramp_fit.py, on the whole arrays
    gdq = flag_group_range(groupdq, params.firstgroup, params.lastgroup)
    orig_gdq = gdq.copy() if np.any(gdq & _CHARGELOSS8) else None
    suppress1g = bool(params.suppress_one_group) and ngroups > 1
    if suppress1g:
        gdq = suppress_one_good_group(gdq)
    if groups is not None:  # ols_fit.py: discard_miri_groups
        first, stop = groups
        data, gdq = data[:, first:stop], gdq[:, first:stop].copy()
        orig_gdq = None if orig_gdq is None else orig_gdq[:, first:stop]
        if first > 0:
            gdq[:, 0] &= np.uint8(~np.uint8(dq.JUMP_DET))
    rnoise = ols_readnoise(readnoise, gain, nframes)
    dark = np.zeros((ny, nx), np.float32) if average_dark_current is None else average_dark_current
    # the C code reads TGROUP and TFRAME through a float cast
    times = Times(
        group_time=np.float64(np.float32(tgroup)),
        frame_time=np.float64(np.float32(tframe)),
        one_group_time=(np.float64(nframes) + 1.0) * np.float64(np.float32(tframe)) / 2.0,
        suppress1g=suppress1g,
        power=params.fixed_power,
    )

    out_ints = {k: np.zeros((nints, ny, nx), np.float32) for k in _FIELDS}
    out_ints["dq"] = np.zeros((nints, ny, nx), np.uint32)
    out_rate = {k: np.zeros((ny, nx), np.float32) for k in _FIELDS}
    out_rate["dq"] = np.zeros((ny, nx), np.uint32)
    chi2 = np.zeros((nints, ny, nx), np.float32)
    with np.errstate(all="ignore"):
        for row in range(ny):  # ols_slope_fit_pixels
            for col in range(nx):
                zf = None if zeroframe is None else zeroframe[:, row, col]
                pr = ols_slope_fit_pixel(
                    data[:, :, row, col],
                    gdq[:, :, row, col],
                    None if orig_gdq is None else orig_gdq[:, :, row, col],
                    pixeldq[row, col],
                    gain[row, col],
                    rnoise[row, col],
                    dark[row, col],
                    zf,
                    times,
                )
                # save_ramp_fit: one rounding to float32
                for integ, res in enumerate(pr.rateints):
                    for k in _FIELDS:
                        out_ints[k][integ, row, col] = np.float32(getattr(res, k))
                    out_ints["dq"][integ, row, col] = res.dq
                    chi2[integ, row, col] = np.float32(res.chi2)
                for k in _FIELDS:
                    out_rate[k][row, col] = np.float32(getattr(pr.rate, k))
                out_rate["dq"][row, col] = pr.rate.dq
    return RampFitResult(
        rateints=RateProduct(*(out_ints[k] for k in RateProduct._fields)),
        rate=RateProduct(*(out_rate[k] for k in RateProduct._fields)),
        chi2=chi2 if params.goodness_of_fit else None,
    )


_FIELDS = ("sci", "err", "var_poisson", "var_rnoise")
