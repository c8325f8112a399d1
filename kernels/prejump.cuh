// Per-element math of the simple pre-jump steps (group_scale, dq_init, saturation, superbias,
// linearity, dark_current) and of gain_scale. Each function names the NumPy function of
// tsogpu/algorithms/ it mirrors; the floating-point operations are the same, in the same
// order and precision (float32 stays float32, float64 where NumPy promotes).
#pragma once
#include "common.cuh"

// ---- saturation (tsogpu/algorithms/saturation.py: flag_saturation) -------------------------

// 65536.0f: the threshold of NO_SAT_CHECK / NaN-threshold pixels (ATOD_LIMIT + 1).
#define PJ_SAT_NEVER 65536.0f

// Step 1 for one pixel: the threshold used, whether the pixel is unchecked, and the
// reference DQ with NO_SAT_CHECK added where the threshold is NaN.
TSO_HD float pj_sat_threshold(float sat_thresh, unsigned int sat_dq, const unsigned int* dqv,
                              unsigned char* no_check, unsigned int* new_sat_dq) {
    const unsigned int nsc = dqv[DQ_NO_SAT_CHECK];
    const int nan_thresh = isnan(sat_thresh) ? 1 : 0;
    const int unchecked = ((sat_dq & nsc) != 0u) || nan_thresh;
    *no_check = (unsigned char)unchecked;
    *new_sat_dq = nan_thresh ? (sat_dq | nsc) : sat_dq;
    return unchecked ? PJ_SAT_NEVER : sat_thresh;
}

// grow(): whether any pixel of the (2*half+1)^2 box around (y, x), clipped at the image
// edges, has one of ``bits`` in ``plane`` (ny x nx). half = 0 tests the pixel itself.
TSO_HD int pj_box_any(const unsigned char* plane, long long y, long long x, long long ny,
                      long long nx, long long half, unsigned int bits) {
    const long long y0 = y - half < 0 ? 0 : y - half;
    const long long y1 = y + half > ny - 1 ? ny - 1 : y + half;
    const long long x0 = x - half < 0 ? 0 : x - half;
    const long long x1 = x + half > nx - 1 ? nx - 1 : x + half;
    // the OR of the box, tested once (no branch per value); the box is at most 2*half+1 wide
    const int h = (int)(y1 - y0), w = (int)(x1 - x0);
    const unsigned char* row = plane + y0 * nx + x0;
    unsigned int any = 0;
    for (int dy = 0; dy <= h; ++dy, row += nx) {
        for (int dx = 0; dx <= w; ++dx) any |= row[dx];
    }
    return (any & bits) != 0u;
}

#if !defined(TSO_DEVICE)
// The host's saturation growth of row y, columns [xa, xb), of one plane: out = flags, with
// ``bits`` added where pj_box_any(flags, y, x, ..., half, bits). The box's rows are ORed into
// a buffer a block of columns at a time (one pass per row, which the compiler vectorizes),
// then each pixel ORs its box's columns of it; boxes wider than the buffer's margin go
// pixel by pixel.
inline void pj_grow_row(const unsigned char* flags, unsigned char* out, long long y,
                        long long xa, long long xb, long long ny, long long nx, long long half,
                        unsigned int bits) {
    enum { BLOCK = 1024, MARGIN = 64 };
    if (half > MARGIN) {
        for (long long x = xa; x < xb; ++x) {
            unsigned int f = flags[y * nx + x];
            if (pj_box_any(flags, y, x, ny, nx, half, bits)) f |= bits;
            out[y * nx + x] = (unsigned char)f;
        }
        return;
    }
    const long long y0 = y - half < 0 ? 0 : y - half;
    const long long y1 = y + half > ny - 1 ? ny - 1 : y + half;
    unsigned char vor[BLOCK + 2 * MARGIN];
    for (long long x0 = xa; x0 < xb; x0 += BLOCK) {
        const long long x1 = x0 + BLOCK < xb ? x0 + BLOCK : xb;
        const long long a = x0 - half < 0 ? 0 : x0 - half;  // vor[k] = column a + k
        const long long b = x1 + half > nx ? nx : x1 + half;
        for (long long k = 0; k < b - a; ++k) vor[k] = 0;
        for (long long yy = y0; yy <= y1; ++yy) {
            const unsigned char* row = flags + yy * nx + a;
            for (long long k = 0; k < b - a; ++k) vor[k] |= row[k];
        }
        for (long long x = x0; x < x1; ++x) {
            const long long lo = x - half < a ? a : x - half;
            const long long hi = x + half > b - 1 ? b - 1 : x + half;
            unsigned int any = 0;
            for (long long k = lo; k <= hi; ++k) any |= vor[k - a];
            unsigned int f = flags[y * nx + x];
            if (any & bits) f |= bits;
            out[y * nx + x] = (unsigned char)f;
        }
    }
}
#endif

// Step 3 for one (integration, group g < ngroups-1, pixel): float64 ``data >= thresh * dil``
// (dil = 1.0 for unchecked pixels), the group neither SATURATED nor DO_NOT_USE after step 2,
// and the next group SATURATED.
TSO_HD int pj_sat_partial(float data, float thresh, int no_check, double dilution,
                          unsigned char flags_g, unsigned char flags_next,
                          const unsigned int* dqv) {
    const unsigned int sat = dqv[DQ_SATURATED];
    const unsigned int dnu = dqv[DQ_DO_NOT_USE];
    const double dil = no_check ? 1.0 : dilution;
    return ((double)data >= (double)thresh * dil) && (((unsigned int)flags_g & (sat | dnu)) == 0u)
           && (((unsigned int)flags_next & sat) != 0u);
}

// Step 4 (the group-2 test) for one (integration, pixel); stcal's order:
// float64(float32(d0 - bias)) / mean_read0 * last_read2 + float64(bias) < float64(thresh), and
// float32 (d1 - d0) > float32(thresh - d0) / float32(nreads1).
TSO_HD int pj_sat_group2(float d0, float d1, float thresh, float bias, double mean_read0,
                         double last_read2, float nreads1) {
    const float scigp1 = d0 - bias;
    double predicted = (double)scigp1 / mean_read0 * last_read2;
    predicted = predicted + (double)bias;
    if (!(predicted < (double)thresh)) return 0;
    const float step = d1 - d0;
    const float room = (thresh - d0) / nreads1;
    return step > room;
}

// ---- linearity (tsogpu/algorithms/linearity.py) -------------------------------------------

// horner(x, coeffs, np.float32): r = c[n-1]*x; r = (r + c[j]) * x for j = n-2..1; r + c[0].
// ``c`` points at coefficient 0 of the pixel, ``stride`` = ny*nx apart.
TSO_HD float pj_horner32(float x, const float* c, long long ncoeffs, long long stride) {
    float r = c[(ncoeffs - 1) * stride] * x;
    for (long long j = ncoeffs - 2; j > 0; --j) {
        r = r + c[j * stride];
        r = r * x;
    }
    return r + c[0];
}

// horner(x, coeffs, np.float64): the same order in float64 with the float32 coefficients.
TSO_HD double pj_horner64(double x, const float* c, long long ncoeffs, long long stride) {
    double r = (double)c[(ncoeffs - 1) * stride] * x;
    for (long long j = ncoeffs - 2; j > 0; --j) {
        r = r + (double)c[j * stride];
        r = r * x;
    }
    return r + (double)c[0];
}

// ---- dark_current (tsogpu/algorithms/dark_current.py: _prepare_dark) ----------------------

// Frame f of the dark as _prepare_dark sees it after extrapolation and NaN -> 0, in float64
// (the extrapolated dark): frames past the reference's ``ngd`` groups are
// float64(k) * float64(float32(d[-1] - d[-2])) + float64(d[-1]), k = f - ngd + 1.
TSO_HD double pj_dark_frame64(const float* d, long long f, long long ngd, long long npix) {
    double v;
    if (f < ngd) {
        v = (double)d[f * npix];
    } else {
        const float rate = d[(ngd - 1) * npix] - d[(ngd - 2) * npix];
        v = (double)(f - ngd + 1) * (double)rate;
        v = v + (double)d[(ngd - 1) * npix];
    }
    return isnan(v) ? 0.0 : v;
}

// Frame f of the dark that was not extrapolated (float32), NaN -> 0.
TSO_HD float pj_dark_frame32(const float* d, long long f, long long npix) {
    const float v = d[f * npix];
    return isnan(v) ? 0.0f : v;
}
