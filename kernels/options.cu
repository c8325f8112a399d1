// Options beyond jwst, off by default (docs/options.md); launchers in tsogpu/cuda/options.py.
//
// Mirrors tsogpu/algorithms/saturation.py (scale_thresholds, first_saturated_group,
// column_minimum, flag_from, saturation_map) and tsogpu/algorithms/dq_init.py (flag_groups).
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. Integer and bit
// work only, besides one float64 multiply rounded once to float32.
#include "common.cuh"

// saturation.scale_thresholds: float32(float64(t) * fraction). One index per pixel.
TSO_KERNEL void tso_opt_scale_thresh(const float* __restrict__ in, float* __restrict__ out,
                                     double fraction, long long n) {
    TSO_FOR_EACH(i, n) { out[i] = (float)((double)in[i] * fraction); }
}

// saturation.first_saturated_group: the first group with SATURATED, ngroups where none.
// One index per (integration, pixel); i = int * npix + p, first[i] int32.
TSO_KERNEL void tso_opt_first_sat(const unsigned char* __restrict__ gdq,
                                  const unsigned int* __restrict__ dqv, int* __restrict__ first,
                                  long long ngroups, long long npix, long long n) {
    unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    TSO_FOR_EACH(i, n) {
        long long it = i / npix, p = i % npix;
        const unsigned char* g0 = gdq + it * ngroups * npix + p;
        int f = (int)ngroups;
        for (long long g = 0; g < ngroups; ++g) {
            if (g0[g * npix] & sat) {
                f = (int)g;
                break;
            }
        }
        first[i] = f;
    }
}

// saturation.column_minimum: every pixel of a column gets the column's minimum. One index
// per (plane, column) of ``nplanes`` (ny, nx) planes; i = plane * nx + x.
TSO_KERNEL void tso_opt_column_min(const int* __restrict__ in, int* __restrict__ out,
                                   long long ny, long long nx, long long n) {
    TSO_FOR_EACH(i, n) {
        long long plane = i / nx, x = i % nx;
        const int* col = in + plane * ny * nx + x;
        int m = col[0];
        for (long long y = 1; y < ny; ++y) m = col[y * nx] < m ? col[y * nx] : m;
        for (long long y = 0; y < ny; ++y) out[plane * ny * nx + y * nx + x] = m;
    }
}

// saturation.saturation_map before column_minimum: the minimum over integrations of
// first (nints, npix). One index per pixel.
TSO_KERNEL void tso_opt_min_ints(const int* __restrict__ first, int* __restrict__ out,
                                 long long nints, long long npix) {
    TSO_FOR_EACH(p, npix) {
        int m = first[p];
        for (long long it = 1; it < nints; ++it) m = first[it * npix + p] < m ? first[it * npix + p] : m;
        out[p] = m;
    }
}

// saturation.flag_from: groupdq | SATURATED where g >= first - before (where first <
// ngroups; g >= first elsewhere, which flags nothing). ``first`` holds one
// (ny, nx) plane per integration (first_stride = npix) or one for all (first_stride = 0).
// One index per element.
TSO_KERNEL void tso_opt_flag_from(const unsigned char* __restrict__ gdq,
                                  const int* __restrict__ first,
                                  const unsigned int* __restrict__ dqv,
                                  unsigned char* __restrict__ out, int before,
                                  long long first_stride, long long ngroups, long long npix,
                                  long long n) {
    unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    TSO_FOR_EACH(i, n) {
        long long p = i % npix, g = (i / npix) % ngroups, it = i / (npix * ngroups);
        int f = first[it * first_stride + p];
        int start = (long long)f < ngroups ? f - before : f;  // never saturated: nothing
        out[i] = (unsigned char)(gdq[i] | ((long long)start <= g ? sat : (unsigned char)0));
    }
}

// dq_init.flag_groups: groupdq | DO_NOT_USE in the groups where mask[g] (uint8, ngroups).
// One index per element.
TSO_KERNEL void tso_opt_flag_groups(const unsigned char* __restrict__ gdq,
                                    const unsigned char* __restrict__ mask,
                                    const unsigned int* __restrict__ dqv,
                                    unsigned char* __restrict__ out, long long ngroups,
                                    long long npix, long long n) {
    unsigned char dnu = (unsigned char)dqv[DQ_DO_NOT_USE];
    TSO_FOR_EACH(i, n) {
        long long g = (i / npix) % ngroups;
        out[i] = (unsigned char)(gdq[i] | (mask[g] ? dnu : (unsigned char)0));
    }
}
