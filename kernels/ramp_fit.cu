// ramp_fit (OLS_C): tsogpu/algorithms/ramp_fit.py: fit_ramps (stcal 1.20 slope_fitter.c).
#include "common.cuh"
#include "ramp_fit.cuh"

// ramp_fit_pixel's exposure-level state of one pixel, accumulated integration by integration.
struct RfExposure {
    unsigned int pdq, rate_dq;
    double rate_vp, rate_vr, rate_num, evar_r;
    long long dnu_cnt, sat_cnt;
    int set_rate_sat, any_cl;
};

// fit_ramps: one item = a run of pixels [p0, p1) (of npix = ny * nx; one pixel on the device),
// all their integrations, each pixel as stcal fits it alone: pass 1 sums its median-rate terms
// in integration order, pass 2 fits its integrations in order; the run's pixels take turns
// within each integration (on the host, the groups of neighbouring pixels share cache lines).
//
// data (nints, ngroups, npix) float32, gdq the same in uint8 (as given to fit_ramps: the
// group range and the one-good-group suppression are applied here), ramp_or (nints, npix)
// tso_rf_ramp_flags' OR of each integration's fitted groups, pixeldq/gain/readnoise/
// dark (npix); zeroframe (nints, npix), read only when has_zf. readnoise is the CDS read noise
// in DN, converted as ols_readnoise does: float32(rn * (gain / sqrt(2 NFRAMES))), sqrt2n =
// sqrt(2.0 * NFRAMES). gstride, g0, clear_jump: MIRI's groups (ngroups of them from g0 of
// gstride; ramp_fit.cuh). first/last: the usable group range (flag_group_range); suppress:
// suppress_one_group and NGROUPS > 1; tg, tf: TGROUP and TFRAME through float; t0:
// one_group_time; wtab: tso_rf_weight_table's table for lmax = NGROUPS; fixed: 1 where
// ramp_fit.weighting fixes the exponent (the table's RF_FIXED_CLASS). Outputs: the rateints
// arrays (nints, npix) and the rate arrays (npix); with chi2 (ramp_fit.goodness_of_fit),
// ri_chi2 (nints, npix), each integration's reduced chi-square (rf_reduced_chi2).
//
// memo: what an integration without flags (r.flags == 0) gives depends on its data only, not
// on the other integrations' flags: its median-rate term and its slope are kept in
// memo_term / memo_slope (nints, npix) and reused by a later launch on the same data, params
// and references with other JUMP flags (a sweep's points). memo_have (nints, npix, zeroed
// before the first launch) records which are kept (RF_MEMO_TERM, RF_MEMO_SLOPE).
TSO_KERNEL void tso_rf_fit_pixels(
    const float* __restrict__ data, const unsigned char* __restrict__ gdq,
    const unsigned char* __restrict__ ramp_or, const unsigned int* __restrict__ pixeldq,
    const float* __restrict__ gain,
    const float* __restrict__ readnoise, const float* __restrict__ dark,
    const float* __restrict__ zeroframe, float* __restrict__ ri_sci, float* __restrict__ ri_err,
    unsigned int* __restrict__ ri_dq, float* __restrict__ ri_vp, float* __restrict__ ri_vr,
    float* __restrict__ r_sci, float* __restrict__ r_err, unsigned int* __restrict__ r_dq,
    float* __restrict__ r_vp, float* __restrict__ r_vr, float* __restrict__ ri_chi2,
    double* __restrict__ memo_term, double* __restrict__ memo_slope,
    unsigned char* __restrict__ memo_have,
    const double* __restrict__ wtab,
    const unsigned int* __restrict__ dqv,
    long long nints, long long ngroups, long long npix, long long first, long long last,
    long long gstride, long long g0, int clear_jump, int suppress, int has_zf, double sqrt2n, double tg, double tf, double t0, int fixed, int chi2, int memo) {
    const unsigned int dnu = dqv[DQ_DO_NOT_USE];
    const unsigned int sat = dqv[DQ_SATURATED];
    const unsigned int invalid = dnu | sat;
    const unsigned int jump_pers = dqv[DQ_JUMP_DET] | dqv[DQ_PERSISTENCE];
    const double thr = RF_LARGE_VARIANCE_THRESHOLD;
    TSO_FOR_EACH_RUN(p0, p1, npix) {
        RfPixel pxs[TSO_RUN];
        RfExposure exs[TSO_RUN];
        RfGroups G;
        for (long long p = p0; p < p1; ++p) {
            RfPixel* px = &pxs[p - p0];
            px->data = data + p;
            px->gdq = gdq + p;
            px->ramp_or = ramp_or + p;
            px->zf = has_zf ? zeroframe + p : 0;
            px->ngroups = ngroups;
            px->npix = npix;
            px->first = first;
            px->last = last;
            px->gstride = gstride;
            px->g0 = g0;
            px->clear_jump = clear_jump;
            px->suppress = suppress;
            px->tg = tg;
            px->tf = tf;
            px->t0 = t0;
            px->dnu = (unsigned char)dnu;
            px->sat = (unsigned char)sat;
            px->jump = (unsigned char)dqv[DQ_JUMP_DET];
            px->pers = (unsigned char)dqv[DQ_PERSISTENCE];
            px->cl = (unsigned char)dqv[DQ_CHARGELOSS];
            px->wtab = wtab;
            px->fixed = fixed;
            // get_pixel_ramp_meta; the read noise as ols_readnoise (float64 product -> float32)
            px->gain = (double)gain[p];
            px->rnoise = (double)(float)((double)readnoise[p] * (px->gain / sqrt2n));
            px->dark = (double)dark[p];
            px->mrate = 0.;  // the sum of pass 1, then the median rate
        }

        // Pass 1: compute_median_rate, the mean over every integration (summed in order).
        for (long long i = 0; i < nints; ++i) {
            for (long long p = p0; p < p1; ++p) {
                RfPixel* px = &pxs[p - p0];
                RfRamp r;
                rf_ramp_info(px, i, &r);
                long long o = i * npix + p;
                int kept = memo && r.flags == 0;
                double term;
                if (kept && (memo_have[o] & RF_MEMO_TERM)) {
                    term = memo_term[o];
                } else {
                    term = rf_median_rate_term(px, &r, i, &G);
                    if (kept) {
                        memo_term[o] = term;
                        memo_have[o] |= RF_MEMO_TERM;
                    }
                }
                px->mrate += term;
            }
        }
        for (long long p = p0; p < p1; ++p) {
            RfPixel* px = &pxs[p - p0];
            px->mrate /= (double)nints;
            RfExposure* e = &exs[p - p0];
            e->pdq = pixeldq[p];
            if (px->gain <= 0. || isnan(px->gain)) e->pdq |= dnu | dqv[DQ_NO_GAIN_VALUE];
            e->rate_dq = e->pdq;
            e->rate_vp = e->rate_vr = e->rate_num = e->evar_r = 0.;
            e->dnu_cnt = e->sat_cnt = 0;
            e->set_rate_sat = e->any_cl = 0;
        }

        // Pass 2: ramp_fit_pixel, with ramp_fit_pixel_rnoise_chargeloss's sum alongside.
        RfClean cls[TSO_RUN];
        for (long long p = p0; p < p1; ++p) cls[p - p0].ready = 0;
        for (long long i = 0; i < nints; ++i) {
            for (long long p = p0; p < p1; ++p) {
                const RfPixel* px = &pxs[p - p0];
                RfExposure* e = &exs[p - p0];
                RfRamp r;
                rf_ramp_info(px, i, &r);
                long long o = i * npix + p;
                int clean = r.flags == 0;
                int kept = memo && clean && !chi2;  // chi2 reads the groups
                int known = kept && (memo_have[o] & RF_MEMO_SLOPE);
                if (!known) rf_load(px, &r, i, &G);
                unsigned int idq = e->pdq | ((unsigned int)r.flags & jump_pers);
                e->rate_dq |= (unsigned int)r.flags & jump_pers;
                double sci = 0., vp = 0., vr = 0., err = 0.;
                // compute_integration_segments: group 0 SATURATED -> no segments
                int sat0 = !known && (G.f[0] & px->sat) != 0;  // no flags: group 0 unsaturated
                if (sat0) {
                    idq |= dnu | sat;
                    sci = TSO_NAN;
                }
                if (r.cnt_dnu_sat == ngroups) {  // ramp_fit_pixel_integration: whole ramp unusable
                    idq |= dnu;
                    if (r.cnt_sat == ngroups) idq |= sat;
                } else if (!sat0) {
                    RfIntSums t;
                    RfClean* c = &cls[p - p0];
                    if (clean) {  // one segment: only its slope is the ramp's own
                        if (!c->ready) rf_clean_sums(px, &r, c);
                        double slope =
                            known ? memo_slope[o] : rf_segment_slope(px, &r, &G, 0, ngroups);
                        rf_fit_clean(c, slope, &t);
                        if (kept && !known) {
                            memo_slope[o] = slope;
                            memo_have[o] |= RF_MEMO_SLOPE;
                        }
                    } else {
                        rf_fit_integration(px, &r, &G, &t);
                    }
                    if (t.nseg > 0) {  // ramp_fit_pixel_integration_fit_slope
                        double var_err;
                        if (clean) {
                            vp = c->vp;
                            vr = c->vr;
                            var_err = c->var_err;
                        } else {
                            if (t.invvar_p > 0.) vp = 1. / t.invvar_p;
                            if (vp >= thr) vp = 0.;
                            vr = 1. / t.invvar_r;
                            if (vr >= thr) vr = 0.;
                            var_err = 1. / t.invvar_e;
                        }
                        if (idq & invalid) {
                            sci = TSO_NAN;
                            vp = 0.;
                            vr = 0.;
                            err = 0.;
                        } else {
                            sci = t.slope_num * vr;  // JP-4318
                            err = (var_err > thr) ? 0. : sqrt(var_err);
                        }
                        if (t.invvar_p > 0.) e->rate_vp += t.invvar_p;
                        e->rate_vr += t.invvar_r;
                        e->rate_num += t.slope_num;
                    }
                }
                // ramp_fit_pixel
                if (idq & dnu) {
                    e->dnu_cnt++;
                    sci = TSO_NAN;
                }
                if (idq & sat) {
                    e->sat_cnt++;
                    sci = TSO_NAN;
                }
                if (r.cnt_sat > 0) {  // partial saturation
                    idq |= sat;
                    e->set_rate_sat = 1;
                }
                if (chi2) ri_chi2[i * npix + p] = (float)rf_reduced_chi2(px, &G, sci);
                // ramp_fit_pixel_rnoise_chargeloss, this integration's term
                if (r.flags & px->cl) {
                    e->any_cl = 1;
                    double inv = rf_chargeloss_invvar(px, &r, &G, i);
                    vr = 1. / inv;
                    if (vr >= thr) vr = 0.;
                    e->evar_r += inv;
                } else if (vr > 0.) {
                    e->evar_r += 1. / vr;
                }
                ri_sci[o] = (float)sci;
                ri_err[o] = (float)err;
                ri_dq[o] = idq;
                ri_vp[o] = (float)vp;
                ri_vr[o] = (float)vr;
            }
        }

        // ramp_fit_pixel: the exposure level
        for (long long p = p0; p < p1; ++p) {
            const RfExposure* e = &exs[p - p0];
            unsigned int rate_dq = e->rate_dq;
            double rate_vp = e->rate_vp, rate_vr = e->rate_vr;
            if (e->dnu_cnt == nints) rate_dq |= dnu;
            if (e->sat_cnt == nints) rate_dq |= sat;
            if (rate_vp > 0.) rate_vp = 1. / rate_vp;
            if ((rate_vp >= thr) || (rate_vp < 0.)) rate_vp = 0.;
            if (rate_vr > 0.) rate_vr = 1. / rate_vr;
            if (rate_vr >= thr) rate_vr = 0.;
            double rate_err = sqrt(rate_vp + rate_vr);
            double rate_sci = e->rate_num;
            if (rate_dq & invalid) {
                rate_sci = TSO_NAN;
                rate_vp = 0.;
                rate_vr = 0.;
                rate_err = 0.;
            }
            if (e->set_rate_sat) rate_dq |= sat;
            if (!isnan(rate_sci)) rate_sci = rate_sci * rate_vr;
            // ramp_fit_pixel_rnoise_chargeloss: only VAR_RNOISE changes
            if (e->any_cl) {
                if (e->evar_r > 0.) rate_vr = 1. / e->evar_r;
                if (rate_vr >= thr) rate_vr = 0.;
            }
            r_sci[p] = (float)rate_sci;
            r_err[p] = (float)rate_err;
            r_dq[p] = rate_dq;
            r_vp[p] = (float)rate_vp;
            r_vr[p] = (float)rate_vr;
        }
    }
}

// One index per (integration, pixel): out[i * npix + p] = the OR of GROUPDQ over the groups
// fitted (g0 .. g0 + ngroups - 1 of gstride), which tells tso_rf_fit_pixels a ramp without
// flags in one load instead of one per group (the planes lie npix apart).
TSO_KERNEL void tso_rf_ramp_flags(const unsigned char* __restrict__ gdq,
                                  unsigned char* __restrict__ out, long long gstride,
                                  long long g0, long long ngroups, long long npix, long long n) {
    TSO_FOR_EACH_2D(i, p, tso_rows_of(n, npix), npix) {
        const unsigned char* q = gdq + (i * gstride + g0) * npix + p;
        unsigned char acc = 0;
        for (long long g = 0; g < ngroups; ++g) acc = (unsigned char)(acc | q[g * npix]);
        out[i * npix + p] = acc;
    }
}

// Every optimal weight the fit can use (rf_weight), for segment lengths len = 3..lmax, power
// class c (rf_snr_class: 0, 0.4, 1, 3, 6, 10; then RF_FIXED_CLASS: fixed_power, the exponent
// ramp_fit.weighting fixes) and group k < len, at out[(len * RF_NCLASS + c) * lmax + k]; 0
// elsewhere. One index = one table entry. tso_rf_fit_pixels looks its weights up here
// (lmax = NGROUPS) instead of a pow per group.
TSO_KERNEL void tso_rf_weight_table(double* __restrict__ out, long long lmax, double fixed_power) {
    const double powers[RF_NCLASS] = {0., 0.4, 1., 3., 6., 10., fixed_power};
    TSO_FOR_EACH(idx, (lmax + 1) * RF_NCLASS * lmax) {
        long long k = idx % lmax;
        long long c = (idx / lmax) % RF_NCLASS;
        long long len = idx / (RF_NCLASS * lmax);
        double v = 0.;
        if (len >= 3 && k < len) {
            double mid = (double)(len - 1) / 2.;
            v = rf_weight(mid, 1. / mid, k, powers[c]);
        }
        out[idx] = v;
    }
}
