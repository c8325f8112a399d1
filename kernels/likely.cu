// ramp_fit LIKELY: tsogpu/algorithms/likely.py: fit_ramps_likely (stcal 1.20 likely_fit.py),
// and tsogpu/algorithms/likely_combine.py (compress_integration_dq, combine_integrations).
#include "common.cuh"
#include "likely.cuh"

// The group DQ of group g as fit_ramps_likely sees it: flag_group_range's DO_NOT_USE outside
// [first, last]; with the zero frame (use_zf) the extended ramp's row e is group max(e - 1, 0).
TSO_HD unsigned char lk_gdq(const unsigned char* gdq, long long a0, long long npix, long long e,
                            int use_zf, long long first, long long last, unsigned char dnu) {
    long long g = use_zf ? (e > 0 ? e - 1 : 0) : e;
    unsigned char v = gdq[a0 + g * npix];
    if (g < first || g > last) v |= dnu;
    return v;
}

// fit_ramps_likely's loop over integrations for the pixels [p0, p0 + nb): one item = one
// pixel, its integrations in order. data, gdq (nints, ngroups, npix); pixeldq, gain,
// readnoise, dark (npix); zeroframe (nints, npix), read only when use_zf (ZEROFRAME given and
// NFRAMES >= 2). Covar's terms for nd = ngroups - 1 + use_zf differences: delta_t, aph, arn,
// one_ok (nd), bph, brn, two_ok (nd - 1). sqrt2 = sqrt(2): readnoise / sqrt2 is stcal's
// per-read noise. first/last: the usable group range. Outputs (nints, npix): the rateints
// arrays and the chi-square. Scratch: LK_NARR * (nd + 1) doubles per item (TSO_SCRATCH_AT).
TSO_KERNEL void tso_lk_fit_pixels(
    const float* __restrict__ data, const unsigned char* __restrict__ gdq,
    const unsigned int* __restrict__ pixeldq, const float* __restrict__ gain,
    const float* __restrict__ readnoise, const float* __restrict__ dark,
    const float* __restrict__ zeroframe, const double* __restrict__ delta_t,
    const double* __restrict__ aph, const double* __restrict__ arn,
    const double* __restrict__ bph, const double* __restrict__ brn,
    const double* __restrict__ one_ok, const double* __restrict__ two_ok,
    float* __restrict__ ri_sci, float* __restrict__ ri_err, unsigned int* __restrict__ ri_dq,
    float* __restrict__ ri_vp, float* __restrict__ ri_vr, float* __restrict__ ri_chisq,
    const unsigned int* __restrict__ dqv, long long nints, long long ngroups, long long npix,
    long long first, long long last, int use_zf, long long nframes, double sqrt2, long long p0,
    long long nb, double* __restrict__ scratch) {
    const unsigned char dnu = (unsigned char)dqv[DQ_DO_NOT_USE];
    const unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    const unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    const long long nd = ngroups - 1 + use_zf;
    const long long len = nd + 1;
    LkCov cov = {aph, arn, bph, brn, one_ok, two_ok};
    TSO_FOR_EACH(t, nb) {
        const long long p = p0 + t;
        LkBuf buf = {scratch + TSO_SCRATCH_AT(t, nb, LK_NARR * len), len, TSO_SCRATCH_STRIDE(nb)};
        LkBuf* b = &buf;
        const double g = (double)gain[p];
        const double rn = (double)readnoise[p] / sqrt2;
        for (long long i = 0; i < nints; ++i) {
            const long long a0 = i * ngroups * npix + p;
            // the differences (float32 subtraction, then / delta_t) and diffs2use
            float prev = 0.f;
            for (long long e = 0; e <= nd; ++e) {
                float v;
                if (use_zf && e == 0) {
                    v = zeroframe[i * npix + p];
                } else if (use_zf && e == 1) {
                    v = (data[a0] * (float)nframes - zeroframe[i * npix + p]) / (float)(nframes - 1);
                } else {
                    v = data[a0 + (use_zf ? e - 1 : e) * npix];
                }
                if (e > 0) {
                    buf.base[((long long)LK_DIFF * len + e - 1) * buf.st] = (double)(float)(v - prev) / delta_t[e - 1];
                    unsigned char q0 = lk_gdq(gdq, a0, npix, e - 1, use_zf, first, last, dnu);
                    unsigned char q1 = lk_gdq(gdq, a0, npix, e, use_zf, first, last, dnu);
                    buf.base[((long long)LK_D2U * len + e - 1) * buf.st] = (q0 == 0 && q1 == 0) ? 1.0 : 0.0;
                }
                prev = v;
            }
            double countrate = lk_mask_jumps(b, &cov, nd, g, rn);
            // the integration's DQ (compress_integration_dq), with the jumps found: a used
            // difference now dropped flags its later row
            unsigned char all_bad = 1, any = 0;
            for (long long e = 0; e <= nd; ++e) {
                unsigned char q = lk_gdq(gdq, a0, npix, e, use_zf, first, last, dnu);
                if (e > 0) {
                    unsigned char q0 = lk_gdq(gdq, a0, npix, e - 1, use_zf, first, last, dnu);
                    int was_used = (q0 == 0 && q == 0);
                    if (was_used && buf.base[((long long)LK_D2U * len + e - 1) * buf.st] == 0.0) q |= jump;
                }
                all_bad &= (q & (sat | dnu)) != 0;
                any |= q;
            }
            unsigned int idq = pixeldq[p];
            if (all_bad) idq |= dnu;
            idq |= any & (sat | jump);
            LkFit r;
            double guess = countrate * lk_flag(countrate > 0) + (double)dark[p];
            lk_fit(b, &cov, nd, guess, g, rn, 0, &r);
            const long long o = i * npix + p;
            ri_sci[o] = (float)r.countrate;
            ri_err[o] = (float)r.uncert;
            ri_dq[o] = idq;
            ri_vp[o] = (float)r.var_p;
            ri_vr[o] = (float)r.var_r;
            ri_chisq[o] = (float)r.chisq;
        }
    }
}

// combine_integrations for the pixels [p0, p0 + nb), nints >= 2, in float32 as stcal:
// the NaN-median of the rates, two passes of weights, the variances; DQ as dq_compress_final.
// Scratch: nints floats per item (TSO_SCRATCH_AT), for the median.
TSO_KERNEL void tso_lk_combine(const float* __restrict__ sci, const unsigned int* __restrict__ idq,
                               const float* __restrict__ vp, const float* __restrict__ vr,
                               float* __restrict__ r_sci, float* __restrict__ r_err,
                               unsigned int* __restrict__ r_dq, float* __restrict__ r_vp,
                               float* __restrict__ r_vr, const unsigned int* __restrict__ dqv,
                               long long nints, long long npix, long long p0, long long nb,
                               float* __restrict__ scratch) {
    const unsigned int dnu = dqv[DQ_DO_NOT_USE];
    TSO_FOR_EACH(t, nb) {
        const long long p = p0 + t;
        float* buf = scratch + TSO_SCRATCH_AT(t, nb, nints);
        const long long st = TSO_SCRATCH_STRIDE(nb);
        long long c = 0;
        for (long long i = 0; i < nints; ++i) {
            float v = sci[i * npix + p];
            if (v == v) buf[(c++) * st] = v;
        }
        float slope = TSO_NANF;
        if (c > 0) {
            float lo = tso_select<float>(buf, st, c, (c - 1) / 2);
            float hi = tso_select<float>(buf, st, c, c / 2);
            slope = (c % 2 == 1) ? hi : (lo + hi) / 2.0f;
        }
        float used = slope;  // the slope the last pass's weights were made with
        float wsum = 0.f;
        for (int pass = 0; pass < 2; ++pass) {
            used = slope;
            wsum = 0.f;
            for (long long i = 0; i < nints; ++i) {
                const long long o = i * npix + p;
                float rs = used / sci[o];
                if (!isfinite(rs) || rs < 0.f) rs = 0.f;
                float w = 1.0f / (vp[o] * rs + vr[o]);
                wsum = wsum + (w != w ? 0.f : w);
            }
            float s = 0.f;
            bool all_nan = true;
            for (long long i = 0; i < nints; ++i) {
                const long long o = i * npix + p;
                float rs = used / sci[o];
                if (!isfinite(rs) || rs < 0.f) rs = 0.f;
                float w = 1.0f / (vp[o] * rs + vr[o]) / wsum;
                float term = sci[o] * w;
                all_nan = all_nan && (term != term);
                s = s + (term != term ? 0.f : term);
            }
            slope = all_nan ? TSO_NANF : s;
        }
        float sp = 0.f, sr = 0.f;
        bool nan_p = true, nan_r = true;
        unsigned int ored = 0, all_dnu = dnu;
        for (long long i = 0; i < nints; ++i) {
            const long long o = i * npix + p;
            float rs = used / sci[o];
            if (!isfinite(rs) || rs < 0.f) rs = 0.f;
            float avp = vp[o] * rs;
            float w = 1.0f / (avp + vr[o]) / wsum;
            float tp = avp * (w * w), tr = vr[o] * (w * w);
            nan_p = nan_p && (tp != tp);
            nan_r = nan_r && (tr != tr);
            sp = sp + (tp != tp ? 0.f : tp);
            sr = sr + (tr != tr ? 0.f : tr);
            ored |= idq[o];
            all_dnu &= idq[o];
        }
        if (nan_p) sp = TSO_NANF;
        if (nan_r) sr = TSO_NANF;
        r_sci[p] = slope;
        r_err[p] = sqrtf(sp + sr);
        r_dq[p] = (ored & ~dnu) | (all_dnu & dnu);
        r_vp[p] = sp;
        r_vr[p] = sr;
    }
}
