// superbias (tsogpu/algorithms/superbias.py: subtract_superbias, with or without the
// superbias.scale factors); launchers in tsogpu/launchers/superbias.py (PIXELDQ's OR:
// elementwise.cu; the factors' medians: oneoverf.cu).
//
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. The index of each
// kernel is said in its comment; "element" = one (integration, group, pixel) sample.
#include "common.cuh"

// data - bias (NaN bias -> 0.0), float32. One index per element (``npix`` per plane).
TSO_KERNEL void tso_pj_superbias(const float* __restrict__ data, const float* __restrict__ bias,
                                 float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        out[i] = data[i] - (isnan(b) ? 0.0f : b);
    }
}

// ZEROFRAME: exactly-0.0 values stay +0.0, others zf - bias. One index per (integration, pixel).
TSO_KERNEL void tso_pj_superbias_zf(const float* __restrict__ zf, const float* __restrict__ bias,
                                    float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        const float v = zf[i];
        out[i] = (v == 0.0f) ? 0.0f : v - (isnan(b) ? 0.0f : b);
    }
}

// superbias.scale: float32(float64(x) - float64(bias) * float64(scale[plane])), NaN bias ->
// 0.0; one factor per (integration, group) plane. One index per element.
TSO_KERNEL void tso_pj_superbias_scaled(const float* __restrict__ data,
                                        const float* __restrict__ bias,
                                        const float* __restrict__ scale, float* __restrict__ out,
                                        long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        const double scaled = (double)(isnan(b) ? 0.0f : b) * (double)scale[pl];
        out[i] = (float)((double)data[i] - scaled);
    }
}

// ZEROFRAME with superbias.scale: exactly-0.0 values stay +0.0, others as above with one factor
// per integration (its group 0's). One index per (integration, pixel).
TSO_KERNEL void tso_pj_superbias_zf_scaled(const float* __restrict__ zf,
                                           const float* __restrict__ bias,
                                           const float* __restrict__ scale,
                                           float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        const float v = zf[i];
        const double scaled = (double)(isnan(b) ? 0.0f : b) * (double)scale[pl];
        out[i] = (v == 0.0f) ? 0.0f : (float)((double)v - scaled);
    }
}

