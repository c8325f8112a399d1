// ramp_fit LIKELY, per-pixel math: tsogpu/algorithms/likely.py (stcal 1.20 likely_fit.py).
//
// One pixel's arrays over its group differences live in a scratch buffer (LkBuf: LK_NARR
// arrays of len doubles; element r of array a at base[(a * len + r) * st], TSO_SCRATCH_AT);
// the expressions are NumPy's, operand for operand, so each rounds as NumPy's does; sums run
// over the differences in order from 0.0 (likely._seq_sum), maxima as np.amax (NaN wins).
// The covariance constants (likely.Covar) come from the launcher; the photon and read-noise
// parts of alpha and beta are recomputed where they are used (the same operations each time).
#pragma once
#include "common.cuh"

#define LK_DN_SCALE 10              // likely.DN_SCALE
#define LK_THRESHOLD_ONE_OMIT 20.25  // likely.THRESHOLD_ONE_OMIT
#define LK_THRESHOLD_TWO_OMIT 23.8   // likely.THRESHOLD_TWO_OMIT

enum LkArray {
    LK_DIFF,    // the differences (DN/s)
    LK_D2U,     // diffs2use, 1.0 or 0.0
    LK_THETA,   // theta (nd + 1)
    LK_PHI,     // phi (nd + 1)
    LK_BPHI,    // Phi
    LK_PHID,    // PhiD
    LK_BTHETA,  // Theta
    LK_THETAD,  // ThetaD (nd + 1)
    LK_DC,      // dC
    LK_DB,      // dB
    LK_RATE1,   // countrate_one_omit
    LK_CHI1,    // chisq_one_omit
    LK_RATE2,   // countrate_two_omit
    LK_CHI2,    // chisq_two_omit
    LK_TMP,     // the median's copy of the differences
    LK_ALPHA,   // alpha / scale
    LK_BETA,    // beta / scale, masked (lk_beta_m)
    LK_NARR
};

struct LkBuf {
    double* base;
    long long len, st;
};

// Covar's terms: aph, arn (nd), bph, brn (nd - 1); one_ok (nd), two_ok (nd - 1) as 1.0 / 0.0
struct LkCov {
    const double *aph, *arn, *bph, *brn, *one_ok, *two_ok;
};

struct LkFit {
    double countrate, chisq, uncert, var_p, var_r;
};

#define LK(a, r) (b->base[((long long)(a) * b->len + (r)) * b->st])

TSO_HD double lk_sgn(long long d) { return (d % 2 == 0) ? -1.0 : 1.0; }
TSO_HD double lk_flag(bool v) { return v ? 1.0 : 0.0; }

// compute_alphas_betas: alpha = cg * aph + rn2 * arn, beta likewise (unscaled)
TSO_HD double lk_alpha(const LkCov* c, double cg, double rn2, long long d) {
    return cg * c->aph[d] + rn2 * c->arn[d];
}
TSO_HD double lk_beta(const LkCov* c, double cg, double rn2, long long d) {
    return cg * c->bph[d] + rn2 * c->brn[d];
}

// compute_alphas_betas (rescale=True): the scale (theta in LK_THETA as scratch)
TSO_HD double lk_scale(LkBuf* b, const LkCov* c, long long nd, double cg, double rn2) {
    LK(LK_THETA, 0) = 1.0;
    LK(LK_THETA, 1) = lk_alpha(c, cg, rn2, 0);
    double scale = 1.0;
    for (long long i = 2; i <= nd; ++i) {
        double bm = lk_beta(c, cg, rn2, i - 2);
        LK(LK_THETA, i) = lk_alpha(c, cg, rn2, i - 1) / scale * LK(LK_THETA, i - 1) -
                          bm * bm / (scale * scale) * LK(LK_THETA, i - 2);
        if (i % LK_DN_SCALE == 0 || i == nd) {
            double f = pow(LK(LK_THETA, i), 1.0 / (double)i);
            scale = scale * f;
            double tmp = LK(LK_THETA, i) / f;
            LK(LK_THETA, i - 1) = LK(LK_THETA, i - 1) / tmp;
            LK(LK_THETA, i - 2) = LK(LK_THETA, i - 2) / (tmp / f);
            LK(LK_THETA, i) = 1.0;
        }
    }
    return scale;
}

// beta after scaling and masking: beta / scale * d2u[d + 1] * d2u[d]
TSO_HD double lk_beta_m(const LkBuf* b, const LkCov* c, double cg, double rn2, double scale,
                        long long d) {
    return lk_beta(c, cg, rn2, d) / scale * LK(LK_D2U, d + 1) * LK(LK_D2U, d);
}

// fit_diffs (stcal fit_ramps), and with detect the omit fits (_omit_fits) into LK_RATE1/2,
// LK_CHI1/2
TSO_HD void lk_fit(LkBuf* b, const LkCov* c, long long nd, double guess, double gain, double rn,
                   int detect, LkFit* out) {
    const double cg = guess / gain;
    const double rn2 = rn * rn;
    const double scale = lk_scale(b, c, nd, cg, rn2);
    for (long long d = 0; d < nd; ++d) {
        LK(LK_ALPHA, d) = lk_alpha(c, cg, rn2, d) / scale;
        if (d + 1 < nd) LK(LK_BETA, d) = lk_beta_m(b, c, cg, rn2, scale, d);
    }
    // compute_thetas, compute_phis
    LK(LK_THETA, 0) = 1.0;
    LK(LK_THETA, 1) = LK(LK_ALPHA, 0);
    for (long long i = 2; i <= nd; ++i) {
        double bm = LK(LK_BETA, i - 2);
        LK(LK_THETA, i) = LK(LK_ALPHA, i - 1) * LK(LK_THETA, i - 1) - bm * bm * LK(LK_THETA, i - 2);
    }
    LK(LK_PHI, nd) = 1.0;
    LK(LK_PHI, nd - 1) = LK(LK_ALPHA, nd - 1);
    for (long long i = nd - 2; i >= 0; --i) {
        double bm = LK(LK_BETA, i);
        LK(LK_PHI, i) = LK(LK_ALPHA, i) * LK(LK_PHI, i + 1) - bm * bm * LK(LK_PHI, i + 2);
    }
    // compute_Phis, compute_PhiDs, compute_Thetas, compute_ThetaDs
    LK(LK_BPHI, nd - 1) = 0.0;
    LK(LK_PHID, nd - 1) = 0.0;
    for (long long i = nd - 2; i >= 0; --i) {
        double bm = LK(LK_BETA, i);
        double dm1 = LK(LK_DIFF, i + 1) * LK(LK_D2U, i + 1);
        LK(LK_BPHI, i) = LK(LK_BPHI, i + 1) * bm + lk_sgn(i + 1) * bm * LK(LK_PHI, i + 2);
        LK(LK_PHID, i) = (LK(LK_PHID, i + 1) + lk_sgn(i + 1) * dm1 * LK(LK_PHI, i + 2)) * bm;
    }
    LK(LK_BTHETA, 0) = -LK(LK_THETA, 0);
    LK(LK_THETAD, 0) = 0.0;
    LK(LK_THETAD, 1) = -(LK(LK_DIFF, 0) * LK(LK_D2U, 0)) * LK(LK_THETA, 0);
    for (long long i = 1; i < nd; ++i) {
        double bm = LK(LK_BETA, i - 1);
        double dm = LK(LK_DIFF, i) * LK(LK_D2U, i);
        LK(LK_BTHETA, i) = LK(LK_BTHETA, i - 1) * bm + lk_sgn(i) * LK(LK_THETA, i);
        LK(LK_THETAD, i + 1) = bm * LK(LK_THETAD, i) + lk_sgn(i) * dm * LK(LK_THETA, i);
    }
    // matrix_computations
    const double tn = LK(LK_THETA, nd);
    double sa = 0.0, sa2 = 0.0, sb = 0.0, sc = 0.0;
    for (long long d = 0; d < nd; ++d) {
        double s = lk_sgn(d);
        double dm = LK(LK_DIFF, d) * LK(LK_D2U, d);
        double dc = s / tn * (LK(LK_PHI, d + 1) * LK(LK_BTHETA, d) + LK(LK_THETA, d) * LK(LK_BPHI, d));
        dc = dc * LK(LK_D2U, d);
        LK(LK_DC, d) = dc;
        LK(LK_DB, d) = s / tn * (LK(LK_PHI, d + 1) * LK(LK_THETAD, d + 1) + LK(LK_THETA, d) * LK(LK_PHID, d));
        double bext = d == 0 ? 1.0 : LK(LK_BETA, d - 1);
        sa = sa + dm * s / tn * bext * LK(LK_PHI, d + 1) * LK(LK_THETAD, d);
        sa2 = sa2 + dm * dm * LK(LK_THETA, d) * LK(LK_PHI, d + 1) / tn;
        sb = sb + dm * dc;
        sc = sc + dc;
    }
    const double big_a = 2 * sa + sa2, big_b = sb, big_c = sc;
    // get_ramp_result
    out->countrate = big_b * (1 / big_c);
    out->chisq = (big_a - big_b * big_b / big_c) / scale;
    out->uncert = sqrt(scale / big_c);
    double vp1 = 0.0, vp2 = 0.0, vr1 = 0.0, vr2 = 0.0;
    for (long long d = 0; d < nd; ++d) {
        double w = LK(LK_DC, d) / big_c;
        vp1 = vp1 + w * w * (cg * c->aph[d]);
        vr1 = vr1 + w * w * (rn2 * c->arn[d]);
    }
    for (long long d = 0; d + 1 < nd; ++d) {
        double ww = LK(LK_DC, d + 1) / big_c * (LK(LK_DC, d) / big_c);
        vp2 = vp2 + ww * (cg * c->bph[d]);
        vr2 = vr2 + ww * (rn2 * c->brn[d]);
    }
    out->var_p = vp1 + 2 * vp2;
    out->var_r = vr1 + 2 * vr2;
    if (!detect) return;
    // compute_jump_detects: one difference left out
    for (long long d = 0; d < nd; ++d) {
        double dc = LK(LK_DC, d), db = LK(LK_DB, d);
        double cd = LK(LK_THETA, d) * LK(LK_PHI, d + 1) / tn * LK(LK_D2U, d);
        double a = (cd * big_b - db * dc) / (big_c * cd - dc * dc);
        double bb = (db - a * dc) / cd;
        double chi = big_a + a * a * big_c - 2 * a * big_b + bb * bb * cd - 2 * bb * db + 2 * a * bb * dc;
        chi = chi / scale;
        if (LK(LK_D2U, d) == 0.0) {  // fill_masked_reads
            a = out->countrate;
            chi = out->chisq;
        }
        LK(LK_RATE1, d) = a;
        LK(LK_CHI1, d) = chi;
    }
    // two adjacent differences left out
    for (long long d = 0; d + 1 < nd; ++d) {
        double dc0 = LK(LK_DC, d), dc1 = LK(LK_DC, d + 1);
        double db0 = LK(LK_DB, d), db1 = LK(LK_DB, d + 1);
        double cd0 = LK(LK_THETA, d) * LK(LK_PHI, d + 1) / tn * LK(LK_D2U, d);
        double cd1 = LK(LK_THETA, d + 1) * LK(LK_PHI, d + 2) / tn * LK(LK_D2U, d + 1);
        double co = -LK(LK_BETA, d) * LK(LK_THETA, d) * LK(LK_PHI, d + 2) / tn;
        double cpj = dc0 * dc0 - big_c * cd0;
        double cjck = dc0 * dc1 - big_c * co;
        double bcpj = big_b * dc0 - db0 * big_c;
        double cc = bcpj / cpj - (big_b * dc1 - db1 * big_c) / cjck;
        cc = cc / (cjck / cpj - (dc1 * dc1 - big_c * cd1) / cjck);
        double bb = (bcpj - cc * cjck) / cpj;
        double a = (big_b - bb * dc0 - cc * dc1) / big_c;
        double chi = big_a + a * a * big_c + bb * bb * cd0 + cc * cc * cd1;
        chi = chi - (2 * a * big_b + 2 * bb * db0 + 2 * cc * db1);
        chi = chi + (2 * a * bb * dc0 + 2 * a * cc * dc1 + 2 * bb * cc * co);
        chi = chi / scale;
        if (LK(LK_D2U, d + 1) == 0.0) {
            a = LK(LK_RATE1, d);
            chi = LK(LK_CHI1, d);
        }
        if (LK(LK_D2U, d) == 0.0) {
            a = LK(LK_RATE1, d + 1);
            chi = LK(LK_CHI1, d + 1);
        }
        LK(LK_RATE2, d) = a;
        LK(LK_CHI2, d) = chi;
    }
}

// np.amax step: NaN wins, else the larger
TSO_HD double lk_max(double best, double t) {
    if (best != best) return best;
    return (t != t || t > best) ? t : best;
}

// np.median of the nd differences (NaN if any is NaN), from a copy in LK_TMP
TSO_HD double lk_median(LkBuf* b, long long nd) {
    for (long long d = 0; d < nd; ++d) {
        double v = LK(LK_DIFF, d);
        if (v != v) return v;
        LK(LK_TMP, d) = v;
    }
    double* tmp = &LK(LK_TMP, 0);
    double lo = tso_select<double>(tmp, b->st, nd, (nd - 1) / 2);
    double hi = tso_select<double>(tmp, b->st, nd, nd / 2);
    return (nd % 2 == 1) ? hi : (lo + hi) / 2.0;
}

// mask_jumps for one pixel: LK_D2U updated in place; returns the count rate it gives
TSO_HD double lk_mask_jumps(LkBuf* b, const LkCov* c, long long nd, double gain, double rn) {
    double guess = lk_median(b, nd);
    guess = guess * lk_flag(guess > 0);
    double countrate = 0.0;
    LkFit r;
    for (long long j = 0; j < nd; ++j) {
        lk_fit(b, c, nd, guess, gain, rn, 1, &r);
        if (j == 0) countrate = r.countrate * 1.0;
        double best_one = 0.0, best_two = 0.0;
        for (long long d = 0; d < nd; ++d) {
            double v = (r.chisq - LK(LK_CHI1, d)) * c->one_ok[d];
            best_one = d == 0 ? v : lk_max(best_one, v);
        }
        for (long long d = 0; d + 1 < nd; ++d) {
            double v = (r.chisq - LK(LK_CHI2, d)) * c->two_ok[d];
            best_two = d == 0 ? v : lk_max(best_two, v);
        }
        bool one_better = best_one - LK_THRESHOLD_ONE_OMIT > best_two - LK_THRESHOLD_TWO_OMIT;
        double best = best_one * lk_flag(best_one > LK_THRESHOLD_ONE_OMIT) * lk_flag(one_better);
        best = best + best_two * lk_flag(best_two > LK_THRESHOLD_TWO_OMIT) * lk_flag(!one_better);
        if (best == 0) best = TSO_NAN;
        bool any_one = false, any_two = false;
        double sum_one = 0.0, sum_two = 0.0;
        for (long long d = 0; d < nd; ++d) {
            bool drop = (r.chisq - LK(LK_CHI1, d) == best) && one_better;
            any_one = any_one || drop;
            sum_one = sum_one + LK(LK_RATE1, d) * lk_flag(drop);
        }
        for (long long d = 0; d + 1 < nd; ++d) {
            bool drop = (r.chisq - LK(LK_CHI2, d) == best) && !one_better;
            any_two = any_two || drop;
            sum_two = sum_two + LK(LK_RATE2, d) * lk_flag(drop);
        }
        if (!(any_one || any_two)) break;
        double fresh = 0.0;
        if (any_one) fresh = sum_one;
        if (any_two) fresh = sum_two;
        countrate = countrate * 0.0 + fresh;
        // drop: every difference whose omission gave the best improvement
        for (long long d = nd - 1; d >= 0; --d) {
            bool d1 = (r.chisq - LK(LK_CHI1, d) == best) && one_better;
            bool d2a = d + 1 < nd && (r.chisq - LK(LK_CHI2, d) == best) && !one_better;
            bool d2b = d >= 1 && (r.chisq - LK(LK_CHI2, d - 1) == best) && !one_better;
            if (d1 || d2a || d2b) LK(LK_D2U, d) = 0.0;
        }
        double used = 0.0;
        for (long long d = 0; d < nd; ++d) used += LK(LK_D2U, d);
        if (used <= 3) break;
    }
    return countrate;
}

#undef LK
