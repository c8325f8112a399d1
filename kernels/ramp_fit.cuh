// ramp_fit (OLS_C) per pixel: tsogpu/algorithms/ramp_fit.py: fit_ramps, which follows
// stcal 1.20 src/slope_fitter.c (get_pixel_ramp, ramp_fit_pixel, ramp_fit_pixel_rnoise_chargeloss).
//
// One thread = one pixel, looping over its integrations as ols_slope_fit_pixels does: pass 1
// the median rate over every integration, pass 2 the per-integration fits with the exposure
// sums accumulated in integration order, the CHARGELOSS read-noise recomputation folded into
// pass 2 (each integration's term of its exposure sum depends on that integration only, and
// the terms are added in the same order). Every intermediate is double (real_t), as in C.
//
// GROUPDQ is read as given to fit_ramps; the preparation done on the Python side by jwst and
// stcal is applied per group on the fly:
//   rf_gdq_range: flag_group_range (jwst set_groupdq): DO_NOT_USE outside [first, last]; this
//                 is also the copy stcal keeps for CHARGELOSS (orig_gdq);
//   rf_gdq:       + suppress_one_good_group (DO_NOT_USE in every group of a ramp with exactly
//                 one group of gdq & ~PERSISTENCE == 0) + the ZEROFRAME clear of group 0.
// MIRI (ols_fit.py: discard_miri_groups): the thread sees groups g0 .. g0 + ngroups - 1 of
// gstride as its groups 0 .. ngroups - 1 (first/last already relative to them); with
// clear_jump, group 0's JUMP_DET is cleared after the suppression has counted it
// (rf_gdq_orig: the uncleared flags, also stcal's orig_gdq).
#pragma once

// Groups per integration RfGroups holds (the launcher checks NGROUPS against
// it: tsogpu/launchers/ramp_fit.py RF_MAX_GROUPS).
#define RF_MAX_GROUPS 512
// slope_fitter.c: LARGE_VARIANCE_THRESHOLD
#define RF_LARGE_VARIANCE_THRESHOLD 1.0e6
// tso_rf_fit_pixels' memo_have bits: the median-rate term, the slope kept
#define RF_MEMO_TERM 1
#define RF_MEMO_SLOPE 2
// Power classes of the weight table: snr_power's six, then ramp_fit.weighting's fixed P.
#define RF_NCLASS 7
#define RF_FIXED_CLASS 6

// What a thread knows about its pixel (pointers already offset to the pixel).
struct RfPixel {
    const float* data;          // group g of integration i at [(i * gstride + g0 + g) * npix]
    const unsigned char* gdq;   // same layout
    const unsigned char* ramp_or;  // integration i's groups' GROUPDQ OR-ed at [i * npix]
    const float* zf;            // ZEROFRAME, integration i at [i * npix]; 0: none
    long long ngroups, npix, first, last;
    long long gstride, g0;      // the groups of the arrays, the first one fitted (MIRI)
    int clear_jump;             // MIRI: groups were dropped before g0
    int suppress;               // suppress_one_group and NGROUPS > 1
    double gain, rnoise, dark, mrate;
    double tg, tf, t0;          // TGROUP, TFRAME (through float), one_group_time
    unsigned char dnu, sat, jump, pers, cl;
    const double* wtab;         // the optimal weights, tso_rf_weight_table's (lmax = ngroups)
    int fixed;                  // ramp_fit.weighting: 1 = every segment uses RF_FIXED_CLASS
};

// One integration of the pixel (get_pixel_ramp: the stats, is_0th, is_zframe).
struct RfRamp {
    unsigned char flags;        // OR of the groups' DQ (rf_gdq_range, + DNU if suppressed)
    int one_good;               // suppressed: DO_NOT_USE in every group
    long long cnt_sat, cnt_dnu_sat;
    int is_0th, is_zframe;
    double zf;                  // the ZEROFRAME value used as group 0 (is_zframe)
};

// A quiet NaN (0x7ff8000000000000, NumPy's np.nan) usable in TSO_HD functions: common.cuh's
// TSO_NAN calls a __device__-only intrinsic, which nvcc refuses in __host__ __device__ code.
TSO_HD double rf_nan(void) {
    union {
        unsigned long long u;
        double d;
    } v;
    v.u = 0x7ff8000000000000ULL;
    return v.d;
}

// One fitted segment (simple_ll_node).
struct RfSeg {
    double slope, var_p, var_r, var_e;
};

// GROUPDQ after flag_group_range (stcal's orig_gdq; what the suppression counts).
TSO_HD unsigned char rf_gdq_orig(const RfPixel* px, long long i, long long g) {
    unsigned char f = px->gdq[(i * px->gstride + px->g0 + g) * px->npix];
    if (g < px->first || g > px->last) f = (unsigned char)(f | px->dnu);
    return f;
}

// The same after discard_miri_groups' JUMP_DET clear in group 0.
TSO_HD unsigned char rf_gdq_range(const RfPixel* px, long long i, long long g) {
    unsigned char f = rf_gdq_orig(px, i, g);
    if (g == 0 && px->clear_jump) f = (unsigned char)(f & (unsigned char)~px->jump);
    return f;
}

// GROUPDQ as the C code sees it (pr->groupdq): suppression and the ZEROFRAME clear.
TSO_HD unsigned char rf_gdq(const RfPixel* px, const RfRamp* r, long long i, long long g) {
    if (g == 0 && r->is_zframe) return 0;
    unsigned char f = rf_gdq_range(px, i, g);
    if (r->one_good) f = (unsigned char)(f | px->dnu);
    return f;
}

// pr->data: float -> double, SATURATED groups NaN, group 0 ZEROFRAME (get_pixel_ramp).
TSO_HD double rf_data(const RfPixel* px, const RfRamp* r, long long i, long long g) {
    if (g == 0 && r->is_zframe) return r->zf;
    if (rf_gdq(px, r, i, g) & px->sat) return rf_nan();
    return (double)px->data[(i * px->gstride + px->g0 + g) * px->npix];
}

// get_pixel_ramp_integration (stats) + suppress_one_good_group_ramps + the 0th-group and
// ZEROFRAME checks of get_pixel_ramp.
TSO_HD void rf_ramp_info(const RfPixel* px, long long i, RfRamp* r) {
    unsigned char npers = (unsigned char)~px->pers;
    unsigned char flags = 0;
    long long n_not_pers = 0, cnt_good = 0, cnt_dnu_sat = 0, cnt_sat = 0;
    // a ramp without flags in the groups fitted (the common case)
    unsigned char raw = px->ramp_or[i * px->npix];
    if (raw == 0 && px->first == 0 && px->last == px->ngroups - 1) {
        n_not_pers = cnt_good = px->ngroups;  // the loop below, on groups all 0
    } else {
        for (long long g = 0; g < px->ngroups; ++g) {
            unsigned char f = rf_gdq_range(px, i, g);
            flags = (unsigned char)(flags | f);
            if ((rf_gdq_orig(px, i, g) & npers) == 0) n_not_pers++;
            if (f == 0) cnt_good++;
            if (f & (px->dnu | px->sat)) cnt_dnu_sat++;
            if (f & px->sat) cnt_sat++;
        }
    }
    r->one_good = px->suppress && n_not_pers == 1;
    if (r->one_good) {  // every group gains DO_NOT_USE
        flags = (unsigned char)(flags | px->dnu);
        cnt_good = 0;
        cnt_dnu_sat = px->ngroups;
    }
    r->flags = flags;
    r->is_0th = 0;
    r->is_zframe = 0;
    r->zf = 0.0;
    if (!px->suppress) {
        if (cnt_good == 1 && rf_gdq_range(px, i, 0) == 0) {
            r->is_0th = 1;
        } else if (cnt_good == 0 && px->zf) {
            double zf = (double)px->zf[i * px->npix];
            if (0.0 != zf) {  // a NaN ZEROFRAME is used, as in C
                r->zf = zf;
                r->is_zframe = 1;
                cnt_dnu_sat--;
                if (cnt_sat == px->ngroups) cnt_sat--;
            }
        }
    }
    r->cnt_sat = cnt_sat;
    r->cnt_dnu_sat = cnt_dnu_sat;
}

// One integration's groups as the C code sees them (pr->groupdq, pr->data), read once from the
// strided arrays (rf_load) and shared by the median rate, the segments and the fits.
struct RfGroups {
    unsigned char f[RF_MAX_GROUPS];  // rf_gdq
    double y[RF_MAX_GROUPS];         // rf_data
};

// rf_gdq and rf_data of every group of integration i (after rf_ramp_info). A ramp without any
// flag (r->flags == 0, the common case) has every rf_gdq 0: no suppression, no ZEROFRAME.
TSO_HD void rf_load(const RfPixel* px, const RfRamp* r, long long i, RfGroups* G) {
    const float* d = px->data + (i * px->gstride + px->g0) * px->npix;
    if (r->flags == 0) {
        for (long long g = 0; g < px->ngroups; ++g) {
            G->f[g] = 0;
            G->y[g] = (double)d[g * px->npix];
        }
        return;
    }
    for (long long g = 0; g < px->ngroups; ++g) {
        unsigned char f = rf_gdq(px, r, i, g);
        G->f[g] = f;
        G->y[g] = (g == 0 && r->is_zframe) ? r->zf
                  : (f & px->sat)          ? rf_nan()
                                           : (double)d[g * px->npix];
    }
}

// real_nan_median of the n non-NaN values in a (their order does not matter). The selection
// (tso_select) returns only values; equal values (0.0 and -0.0) may come out in any order,
// which can only flip the sign of a zero median: the caller adds the median to a sum that
// starts at +0.0, which forgets that sign (as NumPy's and C's sorts do).
TSO_HD double rf_nan_median(double* a, long long n) {
    if (n == 0) return rf_nan();
    long long h = n >> 1;
    double hi = tso_select<double>(a, 1, n, h);
    if (n & 1) return hi;
    double lo = a[0];  // the largest of a[0..h-1], the (h-1)-th smallest
    for (long long j = 1; j < h; ++j) {
        if (a[j] > lo) lo = a[j];
    }
    return (hi + lo) / 2.;
}

// median_rate_default, one integration (NGROUPS > 1), NaN -> 0: median_rate_integration and
// median_rate_integration_sort. The differences overwrite G->y (each group is read before its
// place is written).
TSO_HD double rf_median_rate_int(const RfPixel* px, const RfRamp* r, RfGroups* G) {
    double* buf = G->y;
    double mrate;
    if (r->is_0th) {
        mrate = G->y[0] / px->t0;
    } else if (r->is_zframe) {
        mrate = r->zf / px->tf;
    } else {
        // loc_integ[k]: NaN for DO_NOT_USE, else data / TGROUP (SATURATED data is NaN);
        // first differences, NaN where the later group has JUMP_DET; only non-NaN kept.
        long long n = 0;
        double prev = (G->f[0] & px->dnu) ? rf_nan() : G->y[0] / px->tg;
        double loc0 = prev;
        for (long long g = 1; g < px->ngroups; ++g) {
            unsigned char f = G->f[g];
            double cur = (f & px->dnu) ? rf_nan() : G->y[g] / px->tg;
            double d = (f & px->jump) ? rf_nan() : cur - prev;
            if (!isnan(d)) buf[n++] = d;
            prev = cur;
        }
        if (n == 0 && !isnan(loc0)) buf[n++] = loc0;  // all differences NaN
        mrate = rf_nan_median(buf, n);
    }
    if (isnan(mrate)) mrate = 0.;
    return mrate;
}

// compute_median_rate: integration i's term of the pixel's rate (the caller sums the terms in
// integration order and divides by nints); r: rf_ramp_info's. G: scratch.
TSO_HD double rf_median_rate_term(const RfPixel* px, const RfRamp* r, long long i, RfGroups* G) {
    if (px->ngroups == 1) return rf_data(px, r, i, 0) / px->t0;  // median_rate_1ngroup: NaN kept
    rf_load(px, r, i, G);
    return rf_median_rate_int(px, r, G);
}

// segment_len1_timing (is_0th and is_zframe are only set without suppression)
TSO_HD double rf_len1_timing(const RfPixel* px, const RfRamp* r) {
    if (r->is_0th) return px->t0;
    if (r->is_zframe) return px->tf;
    return px->tg;
}

// segment_rnoise_len1 / segment_rnoise_len2: 12 (R/t)^2 / (6 G^2), in the C order.
TSO_HD double rf_rnoise_short(const RfPixel* px, double timing) {
    double rnum = px->rnoise / timing;
    rnum = 12. * rnum * rnum;
    double rden = 6.;
    rden = rden * px->gain * px->gain;
    return rnum / rden;
}

// segment_rnoise_default: 12 (R/t)^2 / ((n^3 - n) G^2); 0 for a bad gain.
TSO_HD double rf_rnoise_long(const RfPixel* px, double seglen) {
    if ((px->gain <= 0.) || isnan(px->gain)) return 0.;
    double rnum = px->rnoise / px->tg;
    rnum = 12. * rnum * rnum;
    double rden = seglen * seglen * seglen - seglen;
    rden = rden * px->gain * px->gain;
    return rnum / rden;
}

// snr_power as its class c: the power is 0, 0.4, 1, 3, 6 or 10 (a NaN SNR gives 10)
TSO_HD int rf_snr_class(double snr) {
    if (snr < 5.) return 0;
    if (snr < 10.) return 1;
    if (snr < 20.) return 2;
    if (snr < 50.) return 3;
    if (snr < 100.) return 4;
    return 5;
}

// The optimal weight of group k of a segment before the read-noise factor:
// powf(fabs((k - mid) * invmid), power), both arguments rounded to float as C's powf call
// does. powf is taken as the correctly rounded float of the exact power, as the NumPy
// backend does (_powf): (float)pow((double)x, (double)p). Host build: glibc pow, within
// 1 ulp in double; checked against NumPy for every segment length <= RF_MAX_GROUPS, group
// and power (tests/test_kernels_ramp_fit.py: test_weight_table). Device: CUDA's double pow
// (at most 2 ulp in double): its float rounding is the correctly rounded one except where the
// exact power lies within 2 double ulps of a float rounding boundary (astronomically rare for
// these arguments; the same test checks every weight on a GPU).
TSO_HD double rf_weight(double mid, double invmid, long long k, double power) {
    double w = fabs(((double)k - mid) * invmid);
    return (double)(float)pow((double)(float)w, (double)(float)power);
}

// Poisson variance numerator / pden (the segment fits' var_p).
TSO_HD double rf_var_p(const RfPixel* px, double pden) {
    if (px->mrate > 0.) return (px->mrate + px->dark) / pden;
    return px->dark / pden;
}

// The variances of a segment of len groups (the _seg_len1, _seg_len2 and _seg_default
// branches of ramp_fit_pixel_integration_fit_slope_seg), beside its slope.
TSO_HD void rf_seg_variances(const RfPixel* px, const RfRamp* r, long long len, RfSeg* s) {
    if (len == 1) {
        double timing = rf_len1_timing(px, r);
        s->var_p = rf_var_p(px, timing * px->gain);
        s->var_r = rf_rnoise_short(px, timing);
    } else if (len == 2) {
        s->var_p = rf_var_p(px, px->tg * px->gain);
        s->var_r = rf_rnoise_short(px, px->tg);
    } else {
        double seglen = (double)len;
        s->var_p = rf_var_p(px, px->tg * px->gain * (seglen - 1.));
        s->var_r = rf_rnoise_long(px, seglen);
    }
    s->var_e = s->var_p + s->var_r;
}

// The slope of segment [start, start + len) of integration i (the slope part of
// ramp_fit_pixel_integration_fit_slope_seg).
TSO_HD double rf_segment_slope(const RfPixel* px, const RfRamp* r, const RfGroups* G,
                               long long start, long long len) {
    const double* y = G->y;
    if (len == 1) return y[start] / rf_len1_timing(px, r);  // _seg_len1
    if (len == 2) return (y[start + 1] - y[start]) / px->tg;  // _seg_len2
    {  // _seg_default: segment_snr, snr_power, _weighted_ols, _weighted_seg
        double diff = y[start + len - 1] - y[start];
        double den = px->rnoise * px->rnoise + diff * px->gain;
        double snr;
        if ((den <= 0.) || (px->gain == 0.)) {
            snr = 0.;
        } else {
            double sn = (diff * px->gain) / sqrt(den);
            snr = (sn < 0.) ? 0. : sn;
        }
        // rf_weight(mid, 1 / mid, k, power), mid = (len - 1) / 2, from the table; with
        // ramp_fit.weighting (unweighted, exponent:P) the fixed P whatever the SNR
        int cls = px->fixed ? RF_FIXED_CLASS : rf_snr_class(snr);
        const double* wt = px->wtab + (len * RF_NCLASS + cls) * px->ngroups;
        double invrn2 = 1. / (px->rnoise * px->rnoise);
        double sumw = 0., sumx = 0., sumxx = 0., sumy = 0., sumxy = 0.;
        for (long long k = 0; k < len; ++k) {
            double weight = wt[k] * invrn2;
            double xval = (double)k + (double)start;
            double yk = y[start + k];
            yk = isnan(yk) ? 0. : yk;
            double xwt = xval * weight;
            sumw += weight;
            sumx += xwt;
            sumxx += (xval * xwt);
            sumy += (yk * weight);
            sumxy += (yk * xwt);
        }
        double dden = (sumw * sumxx - sumx * sumx);
        double num = (sumw * sumxy - sumx * sumy);
        double invden = 1. / dden;
        return (num * invden) / px->tg;
    }
}

// ramp_fit_pixel_integration_fit_slope_seg: one segment [start, start + len) of integration i.
TSO_HD void rf_fit_segment(const RfPixel* px, const RfRamp* r, const RfGroups* G,
                           long long start, long long len, RfSeg* s) {
    s->slope = rf_segment_slope(px, r, G, start, len);
    rf_seg_variances(px, r, len, s);
}

// The DQ compute_integration_segments reads: pr->groupdq, or for the CHARGELOSS pass
// orig_gdq with CHARGELOSS|DO_NOT_USE toggled in CHARGELOSS groups
// (ramp_fit_pixel_rnoise_chargeloss_remove: a CHARGELOSS group without DNU gains DNU).
TSO_HD unsigned char rf_seg_flag(const RfPixel* px, const RfGroups* G, long long i, long long g,
                                 int chargeloss) {
    if (!chargeloss) return G->f[g];
    unsigned char f = rf_gdq_orig(px, i, g);
    if (f & px->cl) f = (unsigned char)(f ^ (px->cl | px->dnu));
    return f;
}

// compute_integration_segments: the next run of groups with gdq & ~PERSISTENCE == 0 at or
// after group g, [*start, *end); it starts one group earlier when that group's flags are
// exactly JUMP_DET (ignoring PERSISTENCE). Returns 0 when there is none.
TSO_HD int rf_next_run(const RfPixel* px, const RfGroups* G, long long i, int chargeloss,
                       long long g, long long* start, long long* end) {
    unsigned char npers = (unsigned char)~px->pers;
    while (g < px->ngroups && (rf_seg_flag(px, G, i, g, chargeloss) & npers) != 0) g++;
    if (g >= px->ngroups) return 0;
    *start = g;
    if (g > 0 && (rf_seg_flag(px, G, i, g - 1, chargeloss) & npers) == px->jump) *start = g - 1;
    while (g < px->ngroups && (rf_seg_flag(px, G, i, g, chargeloss) & npers) == 0) g++;
    *end = g;
    return 1;
}

// Integration sums over the segments (ramp_fit_pixel_integration_fit_slope), in order.
struct RfIntSums {
    double invvar_r, invvar_p, invvar_e, slope_num;
    long long nseg;
};

// An integration's sums with no segment yet.
TSO_HD void rf_no_segments(RfIntSums* t) {
    t->invvar_r = 0.;
    t->invvar_p = 0.;
    t->invvar_e = 0.;
    t->slope_num = 0.;
    t->nseg = 0;
}

// Segment s added to the integration's sums (in segment order).
TSO_HD void rf_add_segment(RfIntSums* t, const RfSeg* s) {
    t->nseg++;
    t->invvar_r += (1. / s->var_r);
    if (s->var_p > 0.) t->invvar_p += (1. / s->var_p);
    t->invvar_e += (1. / s->var_e);
    t->slope_num += (s->slope / s->var_r);  // JP-4318
}

// The segments stcal keeps (add_segment_to_list + prune_segment_list): every run of length
// >= 2 in order or, when there is none, only the first run of length 1.
TSO_HD void rf_fit_integration(const RfPixel* px, const RfRamp* r, const RfGroups* G,
                               RfIntSums* t) {
    rf_no_segments(t);
    long long g = 0, start, end, first1 = -1;
    RfSeg s;
    while (rf_next_run(px, G, 0, 0, g, &start, &end)) {
        if (end - start >= 2) {
            rf_fit_segment(px, r, G, start, end - start, &s);
            rf_add_segment(t, &s);
        } else if (first1 < 0) {
            first1 = start;
        }
        g = end;
    }
    if (t->nseg == 0 && first1 >= 0) {
        rf_fit_segment(px, r, G, first1, 1, &s);
        rf_add_segment(t, &s);
    }
}

// What a ramp without flags (r->flags == 0: one segment of all NGROUPS groups) gives besides
// its slope; in pass 2 the same for every such ramp of a pixel (its median rate is known).
struct RfClean {
    int ready;
    double var_r;      // the segment's
    RfIntSums t;       // rf_fit_integration's sums, slope_num aside
    double vp, vr, var_err;  // as tso_rf_fit_pixels derives them from t
};

// c made for the pixel's ramps without flags (r: one of them).
TSO_HD void rf_clean_sums(const RfPixel* px, const RfRamp* r, RfClean* c) {
    const double thr = RF_LARGE_VARIANCE_THRESHOLD;
    RfSeg s;
    s.slope = 0.;
    rf_seg_variances(px, r, px->ngroups, &s);
    rf_no_segments(&c->t);
    rf_add_segment(&c->t, &s);
    c->var_r = s.var_r;
    c->vp = 0.;
    if (c->t.invvar_p > 0.) c->vp = 1. / c->t.invvar_p;
    if (c->vp >= thr) c->vp = 0.;
    c->vr = 1. / c->t.invvar_r;
    if (c->vr >= thr) c->vr = 0.;
    c->var_err = 1. / c->t.invvar_e;
    c->ready = 1;
}

// rf_fit_integration of a ramp without flags whose slope is known, from the pixel's c.
TSO_HD void rf_fit_clean(const RfClean* c, double slope, RfIntSums* t) {
    *t = c->t;
    t->slope_num = 0.;
    t->slope_num += (slope / c->var_r);  // rf_add_segment's
}

// ramp_fit_pixel_rnoise_chargeloss_segs: the integration's 1 / var_r sum on the segments of
// orig_gdq with CHARGELOSS|DNU toggled (no group-0 SATURATED shortcut); positive only.
TSO_HD double rf_chargeloss_invvar(const RfPixel* px, const RfRamp* r, const RfGroups* G,
                                   long long i) {
    double invvar_r = 0.;
    long long g = 0, start, end, first1 = -1;
    int nlong = 0;
    while (rf_next_run(px, G, i, 1, g, &start, &end)) {
        long long len = end - start;
        if (len >= 2) {
            double svar = (len == 2) ? rf_rnoise_short(px, px->tg)
                                     : rf_rnoise_long(px, (double)len);
            if (svar > 0.) invvar_r += (1. / svar);
            nlong++;
        } else if (first1 < 0) {
            first1 = start;
        }
        g = end;
    }
    if (nlong == 0 && first1 >= 0) {
        double svar = rf_rnoise_short(px, rf_len1_timing(px, r));
        if (svar > 0.) invvar_r += (1. / svar);
    }
    return invvar_r;
}

// ramp_fit.goodness_of_fit (beyond stcal): slope_fitter.reduced_chi2. The squared residuals
// r = (y[g+1] - y[g]) - slope * TGROUP of the first differences in the fitted runs of two
// groups or more (in run and group order), over var_d = 2 (rnoise / gain)^2 + step / gain
// (step > 0), divided by N - 1; NaN where the slope is NaN, N < 2, var_d <= 0 or NaN data.
TSO_HD double rf_reduced_chi2(const RfPixel* px, const RfGroups* G, double slope) {
    if (isnan(slope)) return rf_nan();
    double step = slope * px->tg;
    double ssr = 0.;
    long long ndiff = 0, g = 0, start, end;
    while (rf_next_run(px, G, 0, 0, g, &start, &end)) {
        for (long long k = start; k < end - 1; ++k) {
            double res = (G->y[k + 1] - G->y[k]) - step;
            ssr += (res * res);
            ndiff++;
        }
        g = end;
    }
    double rn = px->rnoise / px->gain;
    double var_d = 2. * (rn * rn) + ((step > 0.) ? step / px->gain : 0.);
    if (ndiff < 2 || !(var_d > 0.)) return rf_nan();
    double chi2 = (ssr / var_d) / (double)(ndiff - 1);
    return isnan(chi2) ? rf_nan() : chi2;
}
