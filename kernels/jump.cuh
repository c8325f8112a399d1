// Jump detection (two-point differences): per-element math of tsogpu/algorithms/jump.py
// (stcal 1.20 jump/twopoint_difference.py: find_crs; astropy stats/src/compute_bounds.c and
// wirth_select.c for the sigma clipping across integrations).
//
// Every value the NumPy code sorts or clips is a float32 first difference (exact in float64),
// so the scratch buffers hold float32 and every sum, median and ratio is formed in float64 as
// NumPy forms it. Scratch buffers are strided: element r of a thread's buffer is buf[r * s]
// (s = TSO_SCRATCH_STRIDE: on the device the number of threads of the launch, so consecutive
// threads touch consecutive words; 1 on the host).
#pragma once

#define JP_FLT_MAX 3.40282346638528859812e+38f
// quiet NaN (0x7ff8000000000000) usable in TSO_HD functions (TSO_NAN is device-only under nvcc)
#define JP_NAN nan("")

// np.isfinite for float32 (NaN and +-inf fail the comparison)
TSO_HD bool jp_finitef(float x) { return fabsf(x) <= JP_FLT_MAX; }

// N. Wirth's kth_smallest (astropy wirth_select.c; jump_fast._kth_smallest): the k-th smallest of
// the n values a[0], a[s], ..., a[(n-1)*s], permuting them in place exactly as astropy does.
// The values are float32 and never NaN; comparisons in float32 equal those in float64.
TSO_HD float jp_kth_smallest(float* a, long long s, long long n, long long k) {
    long long l = 0, m = n - 1;
    while (l < m) {
        float x = a[k * s];
        long long i = l, j = m;
        do {
            while (a[i * s] < x) i++;
            while (x < a[j * s]) j--;
            if (i <= j) {
                float t = a[i * s];
                a[i * s] = a[j * s];
                a[j * s] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < k) l = i;
        if (k < i) m = j;
    }
    return a[k * s];
}

// jump_fast._nanmedian of the c (non-NaN) values packed in a: the middle value, or the mean of the
// two middle ones, in float64: (float64(lo) + hi) / 2; NaN when c == 0. Any exact selection
// gives NumPy's sorted values (a -0.0/+0.0 tie may give the other sign of zero: every use of
// a median takes |median| or compares a difference with it, so the sign never shows). One
// selection (tso_select): it leaves a[0..k-1] <= a[k] <= a[k+1..c-1], so for even c the upper
// middle value is the least of a[k+1..c-1].
TSO_HD double jp_median_packed(float* a, long long s, long long c) {
    if (c == 0) return JP_NAN;
    long long k = (c - 1) / 2;
    float lo = tso_select<float>(a, s, c, k);
    float hi = lo;
    if (c % 2 == 0) {
        hi = a[(k + 1) * s];
        for (long long r = k + 2; r < c; ++r) hi = a[r * s] < hi ? a[r * s] : hi;
    }
    return ((double)lo + (double)hi) / 2.0;
}

// jump_fast._sigma: sqrt(|median| * 1.0 + rn2_nf) / 1.0 in float64; 0 -> NaN
TSO_HD double jp_sigma(double median, double rn2_nf) {
    double s = sqrt(fabs(median) * 1.0 + rn2_nf) / 1.0;
    return s == 0.0 ? JP_NAN : s;
}

// The standard deviation of the count values buf[0], buf[s], ...: the mean, then the
// squared deviations, each summed sequentially in float64 in buffer order.
TSO_HD double jp_std(const float* buf, long long s, long long count) {
    double mean = 0.0;
    for (long long r = 0; r < count; ++r) mean += (double)buf[r * s];
    mean /= (double)count;
    double ss = 0.0;
    for (long long r = 0; r < count; ++r) {
        double dev = (double)buf[r * s] - mean;
        ss += dev * dev;
    }
    return sqrt(ss / (double)count);
}

// jump_fast._sigma_clip_bounds / astropy compute_sigma_clipped_bounds (use_median, std, maxiters)
// on the count values packed in buf (float32, exact): per pass the Wirth median (n even:
// kth(n/2) first, then kth(n/2 - 1), on the buffer it permuted), the mean and the std summed
// sequentially in float64 over the permuted buffer, bounds median -/+ nsigma * std, then the
// buffer packed, in order, to the values inside [lower, upper]. Stops when nothing or
// everything was clipped, or after maxiters passes. NaN bounds when count == 0.
TSO_HD void jp_sigclip_bounds(float* buf, long long s, long long count, double nsigma,
                              long long maxiters, double* lo, double* hi) {
    *lo = JP_NAN;
    *hi = JP_NAN;
    if (count <= 0) return;
    long long iteration = 0;
    while (1) {
        double median;
        if (count % 2 == 0) {
            double m1 = (double)jp_kth_smallest(buf, s, count, count / 2);
            double m2 = (double)jp_kth_smallest(buf, s, count, count / 2 - 1);
            median = 0.5 * (m1 + m2);
        } else {
            median = (double)jp_kth_smallest(buf, s, count, (count - 1) / 2);
        }
        double std = jp_std(buf, s, count);
        double lower = median - nsigma * std;
        double upper = median + nsigma * std;
        *lo = lower;
        *hi = upper;
        long long new_count = 0;
        for (long long r = 0; r < count; ++r) {
            float v = buf[r * s];
            if ((double)v >= lower && (double)v <= upper) {
                buf[new_count * s] = v;
                new_count++;
            }
        }
        if (new_count == count || new_count == 0) return;
        count = new_count;
        iteration++;
        if (iteration >= maxiters) return;
    }
}

// jump_fast._sigma_clip_sorted's shortcut for one column: the same iterations with one selection
// per median (jp_median_packed) and the sums in whatever order that leaves, so the bounds may
// differ from jp_sigclip_bounds's in the last bits. Returns 1 (unsure) as soon as a value an
// iteration compares lies within JP_SIGCLIP_TOL (relative, far above that rounding) of one of
// its bounds; otherwise every iteration kept the same values as the exact clip, and *lo/*hi
// decide every value of the kept set as the exact bounds would (jp_sigclip_near checks the
// values clipped on the way).
#define JP_SIGCLIP_TOL 1e-9

// What a column's first iteration of jp_sigclip_bounds_fast computes whatever nsigma (its
// median and std), with its extremes and count of finite values: a sweep's memo.
struct JpClipStats {
    double median, std;
    float vmin, vmax;
    long long count;
    long long kept;
};
// JpClipStats in float64 words (the launcher's arrays: zeros = nothing kept)
#define JP_CLIP_STATS_WORDS 5
static_assert(sizeof(JpClipStats) == JP_CLIP_STATS_WORDS * sizeof(double), "JpClipStats");

// The extremes and count of the n values in buf (strided by s) into st.
TSO_HD void jp_clip_extremes(const float* buf, long long s, long long n, JpClipStats* st) {
    float lo = 0.0f, hi = 0.0f;
    for (long long r = 0; r < n; ++r) {
        float v = buf[r * s];
        if (r == 0 || v < lo) lo = v;
        if (r == 0 || v > hi) hi = v;
    }
    st->vmin = lo;
    st->vmax = hi;
    st->count = n;
}

// Whether x (the smallest or the largest value of a column, all of them inside
// [lower, upper]) lies within tol of a bound. Rounding is monotonic, so no other value of
// the column is nearer a bound than these two.
TSO_HD bool jp_near_bounds(double x, double lower, double upper, double tol) {
    return (fabs(x - lower) <= tol) | (fabs(x - upper) <= tol);
}

// The bounds jp_sigclip_bounds_fast and jp_sigclip_near would decide from the column's kept
// first iteration st at nsigma, when that iteration clips nothing and no value lies near its
// bounds (then it is the last one); returns false (the column is clipped in full) otherwise.
TSO_HD bool jp_sigclip_from_stats(const JpClipStats* st, double nsigma, double* lo, double* hi) {
    if (st->count <= 0) {
        *lo = JP_NAN;
        *hi = JP_NAN;
        return true;
    }
    double lower = st->median - nsigma * st->std;
    double upper = st->median + nsigma * st->std;
    double a = (double)st->vmin, b = (double)st->vmax;
    if (!(a >= lower && a <= upper && b >= lower && b <= upper)) return false;  // clips
    double tol = JP_SIGCLIP_TOL * (fabs(st->median) + nsigma * st->std);
    if (jp_near_bounds(a, lower, upper, tol) || jp_near_bounds(b, lower, upper, tol)) return false;
    double tol2 = JP_SIGCLIP_TOL * (fabs(0.5 * (lower + upper)) + 0.5 * (upper - lower));
    if (jp_near_bounds(a, lower, upper, tol2) || jp_near_bounds(b, lower, upper, tol2)) {
        return false;
    }
    *lo = lower;
    *hi = upper;
    return true;
}

// keep: where not 0, the first iteration's median and std are stored there (kept = 1).
TSO_HD int jp_sigclip_bounds_fast(float* buf, long long s, long long count, double nsigma,
                                  long long maxiters, double* lo, double* hi,
                                  JpClipStats* keep) {
    *lo = JP_NAN;
    *hi = JP_NAN;
    if (keep) keep->kept = 1;
    if (count <= 0) return 0;
    long long iteration = 0;
    while (1) {
        double median = jp_median_packed(buf, s, count);
        double std = jp_std(buf, s, count);
        if (keep && iteration == 0) {
            keep->median = median;
            keep->std = std;
        }
        double lower = median - nsigma * std;
        double upper = median + nsigma * std;
        double tol = JP_SIGCLIP_TOL * (fabs(median) + nsigma * std);
        *lo = lower;
        *hi = upper;
        long long new_count = 0;
        int near = 0;
        for (long long r = 0; r < count; ++r) {
            float v = buf[r * s];
            double d = (double)v;
            near |= (fabs(d - lower) <= tol) | (fabs(d - upper) <= tol);
            if (d >= lower && d <= upper) {
                buf[new_count * s] = v;
                new_count++;
            }
        }
        if (near) return 1;
        if (new_count == count || new_count == 0) return 0;
        count = new_count;
        iteration++;
        if (iteration >= maxiters) return 0;
    }
}

// Whether one of the n values v[0], v[s], ... that are finite lies within JP_SIGCLIP_TOL of
// the final bounds lo/hi (jump_fast._sigma_clip_sorted's last test: every valid value is compared
// with them, those clipped on the way too).
TSO_HD int jp_sigclip_near(const float* v, long long s, long long n, double lo, double hi) {
    double tol = JP_SIGCLIP_TOL * (fabs(0.5 * (lo + hi)) + 0.5 * (hi - lo));
    int near = 0;
    for (long long r = 0; r < n; ++r) {
        float x = v[r * s];
        if (!jp_finitef(x)) continue;
        double d = (double)x;
        near |= (fabs(d - lo) <= tol) | (fabs(d - hi) <= tol);
    }
    return near;
}

// jump_fast._calc_med_first_diffs for one pixel: fda (strided by s, n values, NaN = unusable) is
// left as it is; sel (strided by s) is scratch. usable >= 4: every value equal to the max is
// set aside, then nanmedian; 3: nanmedian; 2: nanmin; < 2: NaN. float64.
TSO_HD double jp_med_first_diffs(const float* fda, float* sel, long long s, long long n) {
    long long usable = 0;
    float maxval = 0.0f, minval = 0.0f;
    for (long long r = 0; r < n; ++r) {
        float v = fda[r * s];
        if (isnan(v)) continue;
        if (usable == 0 || v > maxval) maxval = v;
        if (usable == 0 || v < minval) minval = v;
        usable++;
    }
    if (usable < 2) return JP_NAN;
    if (usable == 2) return (double)minval;  // np.fmin.reduce: the smaller of the two
    long long c = 0;
    for (long long r = 0; r < n; ++r) {
        float v = fda[r * s];
        if (isnan(v) || (usable >= 4 && v == maxval)) continue;
        sel[c * s] = v;
        c++;
    }
    return jp_median_packed(sel, s, c);
}

// jump_fast._cr_locs ratio: |float32(fda - median)| / sigma in float64 (NaN stays NaN)
TSO_HD double jp_iter_ratio(float fda, double median, double sigma) {
    float e_jump = (float)((double)fda - median);
    return (double)fabsf(e_jump) / sigma;
}

// |first_diff - median| / sigma in float64 (single pass and neighbour seeds)
TSO_HD double jp_ratio(float diff, double median, double sigma) {
    return fabs((double)diff - median) / sigma;
}
