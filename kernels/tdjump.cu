// Time-domain jump detection (exoTEDRF's running median across integrations):
// tsogpu/algorithms/tdjump.py flag_time_domain, launched by tsogpu/launchers/tdjump.py.
//
// One thread per (difference d, pixel p), item j = d * npix + p, in batches [j0, j0 + nb).
// Layouts: data/groupdq (nints, ngroups, npix); sample (i, g, p) is (i * ngroups + g) * npix
// + p. A thread reads groups d and d + 1 of gdq_in and writes only group d + 1 of gdq_out
// (a copy of gdq_in), its scatter[j] and count[j], so threads never share a written byte.
//
// Every value is a float64 difference of two float32 groups; the medians are exact order
// statistics (any exact selection gives NumPy's sorted values), the mean of the two middle
// ones is (lo + hi) / 2.0 as in NumPy, and the test |x - m| / s >= threshold is the same
// sequence of IEEE operations as in the NumPy code.
#include "common.cuh"

#define TDJ_MAX_WINDOW 63  // tsogpu.config.Jump checks time_window <= 63

// x[i]: group d + 1 minus group d of integration i (sample index a of group d), float64;
// NaN where either group has SATURATED or DO_NOT_USE (tdjump._differences)
TSO_HD double tdj_diff(const float* data, const unsigned char* gdq, long long a, long long npix,
                       unsigned int sat_dnu) {
    if ((gdq[a] | gdq[a + npix]) & sat_dnu) return TSO_NAN;
    return (double)data[a + npix] - (double)data[a];
}

// numpy.median of c values (tdjump._median_sorted): middle value or (lo + hi) / 2.0; NaN if none
TSO_HD double tdj_median(double* a, long long s, long long c) {
    if (c == 0) return TSO_NAN;
    double lo = tso_select<double>(a, s, c, (c - 1) / 2);  // exact: the sorted values
    double hi = tso_select<double>(a, s, c, c / 2);
    return (lo + hi) / 2.0;
}

// scratch: nints doubles per thread (TSO_SCRATCH_AT); scatter, count: one per item
TSO_KERNEL void tso_tdj_flag(const float* __restrict__ data,
                             const unsigned char* __restrict__ gdq_in,
                             unsigned char* __restrict__ gdq_out, double* __restrict__ scatter,
                             int* __restrict__ count, long long nints, long long ngroups,
                             long long npix, long long window, double threshold, long long j0,
                             long long nb, double* __restrict__ scratch,
                             const unsigned int* __restrict__ dqv) {
    const unsigned int sat_dnu = dqv[DQ_SATURATED] | dqv[DQ_DO_NOT_USE];
    const unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    const long long width = window < nints ? window : nints;
    const long long gstride = ngroups * npix;  // from one integration to the next
    TSO_FOR_EACH(t, nb) {
        long long j = j0 + t;
        long long d = j / npix, p = j % npix;
        long long a0 = d * npix + p;  // group d of integration 0
        double* buf = scratch + TSO_SCRATCH_AT(t, nb, nints);
        const long long st = TSO_SCRATCH_STRIDE(nb);

        // point-to-point scatter (tdjump._scatter)
        long long c = 0;
        for (long long i = 1; i + 1 < nints; ++i) {
            double xm = tdj_diff(data, gdq_in, a0 + (i - 1) * gstride, npix, sat_dnu);
            double x0 = tdj_diff(data, gdq_in, a0 + i * gstride, npix, sat_dnu);
            double xp = tdj_diff(data, gdq_in, a0 + (i + 1) * gstride, npix, sat_dnu);
            double r = fabs(0.5 * (xm + xp) - x0);
            if (!isnan(r)) {
                buf[c * st] = r;
                c++;
            }
        }
        double s = tdj_median(buf, st, c);
        scatter[j] = s;
        int n_new = 0;
        if (s > 0.0) {
            for (long long i = 0; i < nints; ++i) {
                double x = tdj_diff(data, gdq_in, a0 + i * gstride, npix, sat_dnu);
                if (isnan(x)) continue;
                // the window, shifted inward at the ends; its non-NaN values by insertion sort
                long long lo = i - window / 2;
                if (lo > nints - width) lo = nints - width;
                if (lo < 0) lo = 0;
                double w[TDJ_MAX_WINDOW];
                long long cw = 0;
                for (long long r = lo; r < lo + width; ++r) {
                    double v = tdj_diff(data, gdq_in, a0 + r * gstride, npix, sat_dnu);
                    if (isnan(v)) continue;
                    long long q = cw;
                    while (q > 0 && v < w[q - 1]) {
                        w[q] = w[q - 1];
                        q--;
                    }
                    w[q] = v;
                    cw++;
                }
                double m = (w[(cw - 1) / 2] + w[cw / 2]) / 2.0;
                if (fabs(x - m) / s >= threshold) {
                    long long g = a0 + i * gstride + npix;  // group d + 1
                    if ((gdq_in[g] & jump) == 0) n_new++;
                    gdq_out[g] = gdq_in[g] | jump;
                }
            }
        }
        count[j] = n_new;
    }
}
