// linearity (tsogpu/algorithms/linearity.py); launchers in tsogpu/launchers/linearity.py.
//
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. The index of each
// kernel is said in its comment; "element" = one (integration, group, pixel) sample.
#include "common.cuh"

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

// prepare_coefficients: NO_LIN_CORR in lin_dq -> identity; else any NaN -> identity and
// NO_LIN_CORR; else zero linear term -> identity and NO_LIN_CORR (the NumPy masks applied in
// turn give exactly this). pixeldq_out = pixeldq | lin_dq (| NO_LIN_CORR). One index per pixel.
TSO_KERNEL void tso_pj_lin_prepare(const float* __restrict__ coeffs,
                                   const unsigned int* __restrict__ lin_dq,
                                   const unsigned int* __restrict__ pixeldq,
                                   const unsigned int* __restrict__ dqv,
                                   float* __restrict__ coeffs_out,
                                   unsigned int* __restrict__ pixeldq_out, long long ncoeffs,
                                   long long npix) {
    TSO_FOR_EACH(p, npix) {
        const unsigned int nlc = dqv[DQ_NO_LIN_CORR];
        unsigned int pdq = pixeldq[p] | lin_dq[p];
        int identity = (lin_dq[p] & nlc) != 0u;
        if (!identity) {
            int has_nan = 0;
            for (long long k = 0; k < ncoeffs; ++k) has_nan = has_nan || isnan(coeffs[k * npix + p]);
            if (has_nan || coeffs[npix + p] == 0.0f) {
                identity = 1;
                pdq |= nlc;
            }
        }
        for (long long k = 0; k < ncoeffs; ++k) {
            coeffs_out[k * npix + p] = identity ? (k == 1 ? 1.0f : 0.0f) : coeffs[k * npix + p];
        }
        pixeldq_out[p] = pdq;
    }
}

// _correct_groups: float32 Horner unless SATURATED. One index per element.
TSO_KERNEL void tso_pj_lin_groups(const float* __restrict__ data,
                                  const unsigned char* __restrict__ gdq,
                                  const float* __restrict__ coeffs, long long ncoeffs,
                                  const unsigned int* __restrict__ dqv, float* __restrict__ out,
                                  long long npix, long long n) {
    const unsigned int sat = dqv[DQ_SATURATED];
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float v = data[i];
        out[i] = ((unsigned int)gdq[i] & sat) ? v : pj_horner32(v, coeffs + p, ncoeffs, npix);
    }
}

// _correct_reads (stcal _linearity_correction_tile), read pattern g*nframes + 1 ..
// g*nframes + nframes; ``mean_read`` float64 per group from the host (saturation.mean_reads).
// The unlinearised reads U_j are recomputed (same operations, same bits) in the second sum
// instead of being stored, so no per-thread array is needed. One index per (integration, pixel).
TSO_KERNEL void tso_pj_lin_reads(const float* __restrict__ data,
                                 const unsigned char* __restrict__ gdq,
                                 const float* __restrict__ coeffs, long long ncoeffs,
                                 const float* __restrict__ inv, long long ninv,
                                 const double* __restrict__ mean_read, long long nframes,
                                 const unsigned int* __restrict__ dqv, float* __restrict__ out,
                                 long long ngroups, long long npix, long long n) {
    TSO_FOR_EACH(i, n) {
        const long long p = i % npix;
        const long long base = (i / npix) * ngroups * npix + p;
        const unsigned int sat = dqv[DQ_SATURATED];
        const float* c = coeffs + p;
        const float* ci = inv + p;
        // n_unsat = (groups without SATURATED) - 1, at least 2; last = n_unsat - 1
        long long n_unsat = -1;
        for (long long g = 0; g < ngroups; ++g) n_unsat += ((unsigned int)gdq[base + g * npix] & sat) == 0u;
        if (n_unsat < 2) n_unsat = 2;
        const long long last = n_unsat - 1;
        const float d0 = data[base];
        const float first_lin = ((unsigned int)gdq[base] & sat) ? d0 : pj_horner32(d0, c, ncoeffs, npix);
        const float dl = data[base + last * npix];
        const float last_lin =
            ((unsigned int)gdq[base + last * npix] & sat) ? dl : pj_horner32(dl, c, ncoeffs, npix);
        const double d_reads = mean_read[last] - mean_read[0];
        const double rate = (double)(last_lin - first_lin) / d_reads;
        const double first64 = (double)first_lin;
        const double nreads = (double)nframes;
        for (long long g = 0; g < ngroups; ++g) {
            const long long e = base + g * npix;
            const float v = data[e];
            if ((unsigned int)gdq[e] & sat) {
                out[e] = v;
                continue;
            }
            // predicted = sequential sum of U_j, then / nreads
            double predicted = 0.0;
            for (long long j = 0; j < nframes; ++j) {
                const double since_first = (double)(g * nframes + j + 1) - mean_read[0];
                const double u = pj_horner64(first64 + rate * since_first, ci, ninv, npix);
                predicted = (j == 0) ? u : predicted + u;
            }
            predicted = predicted / nreads;
            const double offset = (double)v - predicted;
            double total = 0.0;
            for (long long j = 0; j < nframes; ++j) {
                const double since_first = (double)(g * nframes + j + 1) - mean_read[0];
                const double u = pj_horner64(first64 + rate * since_first, ci, ninv, npix);
                const double corr = pj_horner64(u + offset, c, ncoeffs, npix);
                total = (j == 0) ? corr : total + corr;
            }
            out[e] = (float)(total / nreads);
        }
    }
}

// ZEROFRAME: float32 Horner; exactly-0.0 values stay +0.0. One index per (integration, pixel).
TSO_KERNEL void tso_pj_lin_zeroframe(const float* __restrict__ zf,
                                     const float* __restrict__ coeffs, long long ncoeffs,
                                     float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float v = zf[i];
        out[i] = (v == 0.0f) ? 0.0f : pj_horner32(v, coeffs + p, ncoeffs, npix);
    }
}

