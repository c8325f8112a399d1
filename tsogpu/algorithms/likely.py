"""ramp_fit with ``algorithm = "LIKELY"``: the likelihood fit of stcal 1.20 (Brandt 2024).

Mirrors ``stcal/ramp_fitting/likely_fit.py`` (``likely_ramp_fit``, ``mask_jumps``,
``fit_ramps``, ``compute_alphas_betas``, ``compute_thetas`` ... ``compute_image_info``) and
``likely_algo_classes.py`` (``Covar``, ``RampResult.fill_masked_reads``), as jwst 3.0's
RampFitStep runs them: ``set_groupdq`` for firstgroup/lastgroup first, no one-good-group
suppression, no snowball expansion (jwst passes no ``jump_data``), the default rejection
thresholds (``rejection_threshold`` is None: 20.25 to drop one group difference, 23.8 to
drop two). Fewer than :data:`LIKELY_MIN_NGROUPS` groups: jwst fits with OLS_C instead; that
choice is the caller's (``tsogpu.pipeline.steps``), :func:`fit_ramps_likely` refuses.

The jump step runs as for OLS_C (jwst 3.0's jump step does not look at the ramp-fit
algorithm); LIKELY then finds further jumps itself (``mask_jumps``) and flags them JUMP_DET.

Everything is per pixel, and one pixel = one CUDA thread (``kernels/likely.cu``): stcal
vectorises over the columns of a row, here over all pixels of an integration, with the same
element-wise expressions in the same order. Sums over group differences and over
integrations are written as loops (NumPy's pairwise summation would otherwise depend on the
array's shape). Per integration and pixel:

1. ``diff = (data[g+1] - data[g])`` (float32) ``/ delta_t[g]`` (float64); a difference is
   used when neither of its groups has any DQ bit (``determine_diffs2use``). With a
   ZEROFRAME and NFRAMES >= 2 the zero frame becomes a resultant of its own.
2. ``mask_jumps``: a first guess of the rate, the median of all differences; then up to
   ``ndiffs`` rounds of a fit that also gives the chi-square with each difference (and each
   adjacent pair) left out; the best improvement above its threshold is dropped, and its
   later group gets JUMP_DET. A pixel stops at a round without a drop or at 3 or fewer
   differences left.
3. The fit (``fit_ramps``) with the rate guess ``max(rate, 0) + average_dark_current``:
   SCI = the rate, ERR = its uncertainty, VAR_POISSON and VAR_RNOISE from the weights.
4. DQ (``dq_compress_sect``): PIXELDQ, DO_NOT_USE where every group is SATURATED or
   DO_NOT_USE, SATURATED / JUMP_DET where any group has it.

The exposure (``compute_image_info``): one integration is copied; otherwise the NaN-median
of the integrations' rates, then two passes of weights ``1 / (var_p * median / rate +
var_r)``; ERR = sqrt(VAR_POISSON + VAR_RNOISE). stcal does this in float32, and so does
:func:`combine_integrations` (sums in integration order).

The one transcendental is ``theta ** (1 / i)`` in the rescaling of the covariance matrix
(``compute_alphas_betas``); here it is C's ``pow`` (glibc, :func:`power`), which the host
build of the kernel calls too, so the two agree bit for bit. NumPy's own float64 ``power``
(which stcal calls) is C's ``pow`` too, except on a CPU with AVX512, where a SIMD version
differs from it by an ulp in a few per cent of the values. The jump search is sensitive to
the last bit in two places: two usable differences that disagree (dropping either leaves a
chi-square of zero: a tie that rounding decides) and exact zeros in a two-omit denominator
(the NaN they give disables the search for that pixel in that round). There jwst's own
results differ between CPUs with and without AVX512; tsogpu's equal jwst's without it
(``NPY_DISABLE_CPU_FEATURES=X86_V4``), bit for bit in ``tests/test_likely.py``. CUDA's
``pow`` (within 2 ulp) has the same effect at those pixels.
"""

import math

import numpy as np

from .. import dq
from .likely_combine import combine_integrations, compress_integration_dq
from .ramp_fit import RampFitResult, RateProduct, flag_group_range

__all__ = [
    "LIKELY_MIN_NGROUPS",
    "THRESHOLD_ONE_OMIT",
    "THRESHOLD_TWO_OMIT",
    "Covar",
    "covariance_terms",
    "fit_diffs",
    "fit_ramps_likely",
    "mask_jumps",
    "power",
]

LIKELY_MIN_NGROUPS = 4  # stcal likely_fit.LIKELY_MIN_NGROUPS
THRESHOLD_ONE_OMIT = 20.25  # mask_jumps defaults (rejection_threshold None)
THRESHOLD_TWO_OMIT = 23.8
DN_SCALE = 10  # fit_ramps(dn_scale=10.0): rescale every ten differences
PIXEL_BLOCK = 1 << 14  # pixels fitted at once (about 200 * ndiffs bytes of temporaries each)

_SQRT2 = np.sqrt(2)


def power(x, y):
    """``x ** y`` element-wise with C's ``pow`` (glibc), as the host kernels compute it.

    Parameters
    ----------
    x : ndarray of float64
    y : float, not an integer

    Returns
    -------
    ndarray of float64, the shape of ``x``
    """
    flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
    # C's pow: NaN for a negative base (y is never an integer here), where math.pow raises
    out = np.fromiter((math.pow(v, y) if v >= 0 else math.nan for v in flat.tolist()), np.float64)
    return out.reshape(np.shape(x))


class Covar:
    """The covariance terms of the resultant differences (stcal ``Covar``).

    Parameters
    ----------
    readtimes : list of ndarray of float64
        The times of the reads averaged into each resultant (``get_readtimes``).

    Attributes
    ----------
    delta_t : ndarray of float64, (nresultants - 1,)
    nreads : ndarray of int64, (nresultants,)
    one_omit_ok, two_omit_ok : ndarray of bool, (ndiffs,) and (ndiffs - 1,)
    alpha_readnoise, alpha_phnoise : ndarray of float64, (ndiffs,)
    beta_readnoise, beta_phnoise : ndarray of float64, (ndiffs - 1,)
    """

    def __init__(self, readtimes):
        mean_t, tau, nreads = [], [], []
        for times in readtimes:  # Eqs. (4) and (11) of paper 1
            mean_t.append(np.mean(times))
            length = len(times)
            nreads.append(length)
            k = np.arange(1, length + 1)
            weight = (2 * length + 1) - (2 * k)
            tau.append(np.sum(weight * np.array(times)) / length**2)
        mean_t, tau, n = np.array(mean_t), np.array(tau), np.array(nreads)
        dt = mean_t[1:] - mean_t[:-1]
        self.delta_t = dt
        self.nreads = n
        # mask_jumps: which omissions are searched (one: always; two: multi-read resultants)
        self.one_omit_ok = n[1:] * n[:-1] >= 1
        self.one_omit_ok[0] = self.one_omit_ok[-1] = True
        self.two_omit_ok = n[1:-1] > 1
        # Eqs. (28) and (29) of paper 1
        self.alpha_readnoise = (1 / n[:-1] + 1 / n[1:]) / dt**2
        self.beta_readnoise = -1 / (n[1:-1] * dt[1:] * dt[:-1])
        self.alpha_phnoise = (tau[:-1] + tau[1:] - 2 * mean_t[:-1]) / dt**2
        self.beta_phnoise = (mean_t[1:-1] - tau[1:-1]) / (dt[1:] * dt[:-1])

    @classmethod
    def for_exposure(cls, ngroups, nframes, groupgap, tframe, zeroframe):
        """The covariance of an evenly sampled exposure (``get_readtimes``), and whether the
        zero frame is a resultant of its own (only with NFRAMES >= 2, as stcal).

        Returns
        -------
        (Covar, bool)
        """
        tot_frames = nframes + groupgap
        reads = np.arange(1, nframes + 1)
        readtimes = [(reads + k * tot_frames) * float(tframe) for k in range(ngroups)]
        use_zeroframe = zeroframe is not None and nframes >= 2
        if use_zeroframe:
            readtimes = [readtimes[0][:1], readtimes[0][1:], *readtimes[1:]]
        return cls(readtimes), use_zeroframe


def _seq_sum(terms):
    """Sum over the first axis in index order (as one thread adds)."""
    total = np.zeros(terms.shape[1:])
    for t in terms:
        total = total + t
    return total


def _seq_max(terms):
    """``np.amax`` over the first axis: NaN if any term is NaN."""
    best = terms[0]
    for t in terms[1:]:
        best = np.where(best != best, best, np.where((t != t) | (t > best), t, best))
    return best


def covariance_terms(count_rate_guess, gain, rnoise, covar):
    """``compute_alphas_betas`` with ``rescale=True``.

    Parameters
    ----------
    count_rate_guess, gain, rnoise : ndarray, (n,) (float64, float32, float64)
    covar : Covar

    Returns
    -------
    alpha, beta : ndarray of float64, (ndiffs, n) and (ndiffs - 1, n), scaled
    alpha_ph, alpha_rn, beta_ph, beta_rn : the unscaled photon / read-noise parts
    scale : ndarray of float64, (n,)
    """
    cg = count_rate_guess / gain
    alpha_ph = cg * covar.alpha_phnoise[:, None]
    alpha_rn = rnoise**2 * covar.alpha_readnoise[:, None]
    alpha = alpha_ph + alpha_rn
    beta_ph = cg * covar.beta_phnoise[:, None]
    beta_rn = rnoise**2 * covar.beta_readnoise[:, None]
    beta = beta_ph + beta_rn
    ndiffs = alpha.shape[0]
    theta = np.ones((ndiffs + 1,) + alpha.shape[1:])
    theta[1] = alpha[0]
    scale = theta[0] * 1
    for i in range(2, ndiffs + 1):
        theta[i] = alpha[i - 1] / scale * theta[i - 1] - beta[i - 2] ** 2 / scale**2 * theta[i - 2]
        if i % DN_SCALE == 0 or i == ndiffs:
            f = power(theta[i], 1 / i)
            scale = scale * f
            tmp = theta[i] / f
            theta[i - 1] = theta[i - 1] / tmp
            theta[i - 2] = theta[i - 2] / (tmp / f)
            theta[i] = 1
    return alpha / scale, beta / scale, alpha_ph, alpha_rn, beta_ph, beta_rn, scale


def fit_diffs(diffs, diffs2use, count_rate_guess, gain, rnoise, covar, detect_jumps=False):
    """stcal ``fit_ramps`` (and ``compute_jump_detects``) on the differences of n pixels.

    Parameters
    ----------
    diffs : ndarray of float64, (ndiffs, n), DN/s
    diffs2use : ndarray of uint8, (ndiffs, n)
    count_rate_guess : ndarray of float64, (n,)
    gain : ndarray of float32, (n,)
    rnoise : ndarray of float64, (n,), read noise / sqrt(2)
    covar : Covar
    detect_jumps : bool
        Also give the fits leaving one difference, or two adjacent ones, out.

    Returns
    -------
    dict of ndarray of float64
        ``countrate, chisq, uncert, var_poisson, var_rnoise`` (n,); with ``detect_jumps``
        also ``countrate_one_omit, chisq_one_omit`` (ndiffs, n) and ``countrate_two_omit,
        chisq_two_omit`` (ndiffs - 1, n), masked entries filled (``fill_masked_reads``).
    """
    alpha, beta, a_ph, a_rn, b_ph, b_rn, scale = covariance_terms(
        count_rate_guess, gain, rnoise, covar
    )
    nd = diffs.shape[0]
    d2u = diffs2use
    dm = diffs * d2u
    beta = beta * d2u[1:] * d2u[:-1]
    shape = diffs.shape[1:]
    # compute_thetas, compute_phis (Eqs. 38-43)
    theta = np.ones((nd + 1,) + shape)
    theta[1] = alpha[0]
    for i in range(2, nd + 1):
        theta[i] = alpha[i - 1] * theta[i - 1] - beta[i - 2] ** 2 * theta[i - 2]
    phi = np.ones((nd + 1,) + shape)
    phi[nd - 1] = alpha[nd - 1]
    for i in range(nd - 2, -1, -1):
        phi[i] = alpha[i] * phi[i + 1] - beta[i] ** 2 * phi[i + 2]
    sgn = np.where(np.arange(nd) % 2 == 0, -1.0, 1.0)
    # compute_Phis, compute_PhiDs, compute_Thetas, compute_ThetaDs (Eqs. 46-48)
    big_phi = np.zeros((nd,) + shape)
    phi_d = np.zeros((nd,) + shape)
    for i in range(nd - 2, -1, -1):
        big_phi[i] = big_phi[i + 1] * beta[i] + sgn[i + 1] * beta[i] * phi[i + 2]
        phi_d[i] = (phi_d[i + 1] + sgn[i + 1] * dm[i + 1] * phi[i + 2]) * beta[i]
    big_theta = np.zeros((nd,) + shape)
    big_theta[0] = -theta[0]
    theta_d = np.zeros((nd + 1,) + shape)
    theta_d[1] = -dm[0] * theta[0]
    for i in range(1, nd):
        big_theta[i] = big_theta[i - 1] * beta[i - 1] + sgn[i] * theta[i]
        theta_d[i + 1] = beta[i - 1] * theta_d[i] + sgn[i] * dm[i] * theta[i]
    # matrix_computations (Eqs. 61-63, 71, 75)
    sg = sgn[:, None] if shape else sgn
    tn = theta[nd]
    beta_ext = np.ones((nd,) + shape)
    beta_ext[1:] = beta
    d_c = sg / tn * (phi[1:] * big_theta + theta[:-1] * big_phi)
    d_c = d_c * d2u
    d_b = sg / tn * (phi[1:] * theta_d[1:] + theta[:-1] * phi_d)
    big_a = 2 * _seq_sum(dm * sg / theta[-1] * beta_ext * phi[1:] * theta_d[:-1])
    big_a = big_a + _seq_sum(dm**2 * theta[:-1] * phi[1:] / tn)
    big_b = _seq_sum(dm * d_c)
    big_c = _seq_sum(d_c)
    # get_ramp_result
    res = {"countrate": big_b * (1 / big_c)}
    res["chisq"] = (big_a - big_b**2 / big_c) / scale
    res["uncert"] = np.sqrt(scale / big_c)
    w = d_c / big_c
    res["var_poisson"] = _seq_sum(w**2 * a_ph) + 2 * _seq_sum(w[1:] * w[:-1] * b_ph)
    res["var_rnoise"] = _seq_sum(w**2 * a_rn) + 2 * _seq_sum(w[1:] * w[:-1] * b_rn)
    if detect_jumps:
        _omit_fits(res, d2u, d_c, d_b, big_a, big_b, big_c, scale, beta, phi, theta)
    return res


def _omit_fits(res, d2u, d_c, d_b, big_a, big_b, big_c, scale, beta, phi, theta):
    """``compute_jump_detects`` (paper II, sections 3.1-3.2) and ``fill_masked_reads``:
    the rate and chi-square leaving out one difference, or two adjacent ones."""
    nd = d_c.shape[0]
    tn = theta[nd]
    cd = theta[:-1] * phi[1:] / tn
    cd = cd * d2u
    co = -beta * theta[:-2] * phi[2:] / tn
    a = (cd * big_b - d_b * d_c) / (big_c * cd - d_c**2)
    b = (d_b - a * d_c) / cd
    rate1 = a
    chisq1 = big_a + a**2 * big_c - 2 * a * big_b + b**2 * cd - 2 * b * d_b + 2 * a * b * d_c
    chisq1 = chisq1 / scale
    cpj = d_c[:-1] ** 2 - big_c * cd[:-1]
    cjck = d_c[:-1] * d_c[1:] - big_c * co
    bcpj = big_b * d_c[:-1] - d_b[:-1] * big_c
    c = bcpj / cpj - (big_b * d_c[1:] - d_b[1:] * big_c) / cjck
    c = c / (cjck / cpj - (d_c[1:] ** 2 - big_c * cd[1:]) / cjck)
    b = (bcpj - c * cjck) / cpj
    a = (big_b - b * d_c[:-1] - c * d_c[1:]) / big_c
    rate2 = a
    chisq2 = big_a + a**2 * big_c + b**2 * cd[:-1] + c**2 * cd[1:]
    chisq2 = chisq2 - (2 * a * big_b + 2 * b * d_b[:-1] + 2 * c * d_b[1:])
    chisq2 = chisq2 + (2 * a * b * d_c[:-1] + 2 * a * c * d_c[1:] + 2 * b * c * co)
    chisq2 = chisq2 / scale
    # fill_masked_reads
    omit = d2u == 0
    rate1 = np.where(omit, res["countrate"], rate1)
    chisq1 = np.where(omit, res["chisq"], chisq1)
    omit = d2u[1:] == 0
    rate2 = np.where(omit, rate1[:-1], rate2)
    chisq2 = np.where(omit, chisq1[:-1], chisq2)
    omit = d2u[:-1] == 0
    rate2 = np.where(omit, rate1[1:], rate2)
    chisq2 = np.where(omit, chisq1[1:], chisq2)
    res.update(
        countrate_one_omit=rate1,
        chisq_one_omit=chisq1,
        countrate_two_omit=rate2,
        chisq_two_omit=chisq2,
    )


def mask_jumps(diffs, diffs2use, gain, rnoise, covar):
    """stcal ``mask_jumps``: the iterative, likelihood-based jump search.

    Parameters
    ----------
    diffs : ndarray of float64, (ndiffs, n)
    diffs2use : ndarray of uint8, (ndiffs, n); not changed
    gain : ndarray of float32, (n,)
    rnoise : ndarray of float64, (n,)
    covar : Covar

    Returns
    -------
    diffs2use : ndarray of uint8, (ndiffs, n), with the dropped differences 0
    countrate : ndarray of float64, (n,), the last fit's rate (for the final rate guess)
    """
    nd, n = diffs.shape
    d2u = diffs2use.copy()
    one_ok, two_ok = covar.one_omit_ok, covar.two_omit_ok
    guess = np.median(diffs, axis=0)
    guess = guess * (guess > 0)
    recheck = np.ones(n, bool)
    countrate = None
    for j in range(nd):
        idx = np.flatnonzero(recheck)
        r = fit_diffs(diffs[:, idx], d2u[:, idx], guess[idx], gain[idx], rnoise[idx], covar, True)
        if j == 0:
            countrate = r["countrate"] * 1.0
        d_two = r["chisq"] - r["chisq_two_omit"]
        d_one = r["chisq"] - r["chisq_one_omit"]
        best_one = _seq_max(d_one * one_ok[:, None])
        best_two = _seq_max(d_two * two_ok[:, None])
        one_better = best_one - THRESHOLD_ONE_OMIT > best_two - THRESHOLD_TWO_OMIT
        best = best_one * (best_one > THRESHOLD_ONE_OMIT) * one_better
        best = best + best_two * (best_two > THRESHOLD_TWO_OMIT) * (~one_better)
        best[best == 0] = np.nan
        drop_one = (d_one == best) & one_better
        drop_two = (d_two == best) & (~one_better)
        any_one = drop_one.any(axis=0)
        any_two = drop_two.any(axis=0)
        drop = any_one | any_two
        if not drop.any():
            break
        new = np.zeros(idx.size)
        new = np.where(any_one, _seq_sum(r["countrate_one_omit"] * drop_one), new)
        new = np.where(any_two, _seq_sum(r["countrate_two_omit"] * drop_two), new)
        countrate[idx] = countrate[idx] * (~drop) + new
        sub = d2u[:, idx]
        sub *= ~drop_one
        sub[:-1] *= ~drop_two
        sub[1:] *= ~drop_two
        d2u[:, idx] = sub
        recheck[:] = False
        recheck[idx] = drop
        recheck[d2u.sum(axis=0) <= 3] = False
    return d2u, countrate


def fit_ramps_likely(
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
):
    """Fit every pixel's ramps as jwst 3.0 RampFitStep does with LIKELY (stcal 1.20).

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx), DN, after jump
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    gain : ndarray of float32, (ny, nx), e/DN, cut to the subarray
    readnoise : ndarray of float32, (ny, nx), DN (CDS), cut to the subarray
    params : tsogpu.config.RampFit; ``firstgroup``/``lastgroup`` apply,
        ``suppress_one_group`` does not (stcal suppresses only for OLS_C)
    nframes, groupgap : int, NFRAMES and GROUPGAP (the read times)
    tgroup : float, TGROUP [s]; unused (the read times come from TFRAME)
    tframe : float, TFRAME [s]
    dropframes1 : int, unused (as stcal)
    average_dark_current : ndarray of float32, (ny, nx), or None (zeros)
    zeroframe : ndarray of float32, (nints, ny, nx), or None; a resultant of its own when
        NFRAMES >= 2

    Returns
    -------
    RampFitResult
        ``rateints``: float32 (nints, ny, nx) arrays (DQ uint32); ``rate``: (ny, nx).
        Not gain-scaled.

    Raises
    ------
    ValueError
        With fewer than :data:`LIKELY_MIN_NGROUPS` groups (jwst then uses OLS_C).
    """
    del tgroup, dropframes1
    nints, ngroups, ny, nx = data.shape
    if ngroups < LIKELY_MIN_NGROUPS:
        raise ValueError(
            f"LIKELY ramp fitting needs at least {LIKELY_MIN_NGROUPS} groups, got {ngroups}"
        )
    gdq_all = flag_group_range(groupdq, params.firstgroup, params.lastgroup)
    covar, use_zf = Covar.for_exposure(ngroups, nframes, groupgap, tframe, zeroframe)
    npix = ny * nx
    gain1 = gain.reshape(npix)
    rnoise = readnoise.reshape(npix) / _SQRT2
    dark = np.zeros(npix, np.float32) if average_dark_current is None else average_dark_current
    dark = dark.reshape(npix)
    ints = {k: np.zeros((nints, npix), np.float32) for k in ("sci", "err", "vp", "vr", "chi")}
    int_dq = np.zeros((nints, npix), np.uint32)
    jump8 = np.uint8(dq.JUMP_DET)
    with np.errstate(all="ignore"):
        for integ in range(nints):
            for p0 in range(0, npix, PIXEL_BLOCK):  # bounded temporaries; pixels independent
                px = slice(p0, min(p0 + PIXEL_BLOCK, npix))
                d = data[integ].reshape(ngroups, npix)[:, px]
                gdq = gdq_all[integ].reshape(ngroups, npix)[:, px]
                if use_zf:
                    zf = zeroframe[integ].reshape(npix)[px]
                    first = (d[0] * nframes - zf) / (nframes - 1)
                    d = np.concatenate([zf[None], first[None], d[1:]])
                    gdq = np.concatenate([gdq[:1], gdq])
                diffs = (d[1:] - d[:-1]) / covar.delta_t[:, None]
                d2u = ((gdq[1:] == 0) & (gdq[:-1] == 0)).astype(np.uint8)
                new_d2u, countrate = mask_jumps(diffs, d2u, gain1[px], rnoise[px], covar)
                gdq = gdq.copy()
                gdq[1:] |= np.where(new_d2u != d2u, jump8, np.uint8(0))
                guess = countrate * (countrate > 0) + dark[px]
                r = fit_diffs(diffs, new_d2u, guess, gain1[px], rnoise[px], covar)
                ints["sci"][integ, px] = r["countrate"]
                ints["err"][integ, px] = r["uncert"]
                ints["vp"][integ, px] = r["var_poisson"]
                ints["vr"][integ, px] = r["var_rnoise"]
                ints["chi"][integ, px] = r["chisq"]
                int_dq[integ, px] = compress_integration_dq(gdq, pixeldq.reshape(npix)[px])
        rate = combine_integrations(ints["sci"], ints["err"], ints["vp"], ints["vr"], int_dq)
    shape3 = (nints, ny, nx)
    rateints = RateProduct(
        ints["sci"].reshape(shape3),
        ints["err"].reshape(shape3),
        int_dq.reshape(shape3),
        ints["vp"].reshape(shape3),
        ints["vr"].reshape(shape3),
    )
    return RampFitResult(rateints, RateProduct(*(a.reshape(ny, nx) for a in rate)))
