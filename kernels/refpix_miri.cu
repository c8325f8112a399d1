// refpix for MIRI full frames (tsogpu/algorithms/refpix_miri.py: correct_refpix; jwst
// refpix/reference_pixels.py MIRIDataset). Launched by tsogpu/launchers/refpix_miri.py.
//
// A "plane" is one (integration, group) frame (ny, nx) float32, numbered integrations first;
// plane p is group p % ngroups, and the first group of its integration is plane
// p - p % ngroups. The DMS and detector frames are the same for MIRI. Values are first-read
// subtracted on the fly, float32(float64(x) - float64(x0)), as refpix_miri step 1.
//
// Launches: tso_rpm_clipped_means (one index per (plane, reference set)), then tso_rpm_apply
// (one per pixel of every plane). The clipped mean and the amplifier signal are refpix.cuh's.
#include "common.cuh"
#include "refpix.cuh"

// The first-read-subtracted value at DMS offset o of plane p.
TSO_HD float rpm_value(const float* src, long long p, long long ngroups, long long plane_size,
                       long long o) {
    const float x = src[p * plane_size + o];
    const float x0 = src[(p - p % ngroups) * plane_size + o];
    return (float)((double)x - (double)x0);
}

// refpix.clipped_mean of set s of plane plane0 + pl, on first-read-subtracted values: set s
// gathers the DMS offsets idx[set_start[s] .. set_start[s+1]-1] (rows ascending). Planes of
// group 0 are never corrected and are left out (kind RP_NONE). `scratch` holds
// set_start[nsets] floats per plane of the batch. Writes value/kind[p * nsets + s].
TSO_KERNEL void tso_rpm_clipped_means(const float* __restrict__ src, long long plane_size,
                                      long long ngroups, long long plane0, long long nplanes,
                                      const long long* __restrict__ idx,
                                      const long long* __restrict__ set_start, long long nsets,
                                      long long bufsize, double siglimit,
                                      float* __restrict__ scratch, double* __restrict__ value,
                                      int* __restrict__ kind) {
    long long total = set_start[nsets];
    TSO_FOR_EACH_2D(pl, s, nplanes, nsets) {
        long long p = plane0 + pl;
        long long o = p * nsets + s;
        if (p % ngroups == 0) {
            value[o] = 0.0;
            kind[o] = RP_NONE;
            continue;
        }
        long long start = set_start[s], n = set_start[s + 1] - start;
        float* x = scratch + pl * total + start;
        for (long long k = 0; k < n; ++k) x[k] = rpm_value(src, p, ngroups, plane_size, idx[start + k]);
        rp_clipped_mean<float>(x, n, bufsize, siglimit, value + o, kind + o);
    }
}

// refpix_miri.correct_refpix per pixel: the first-read-subtracted value, less (groups >= 1,
// `correct`) its amplifier's signal average_with_none(left, right) for its row parity (npar 2)
// or all rows (npar 1), and the first read added back. Set numbering: refpix_miri.set_index,
// ((amp * npar + parity) * 2 + side). `keep_zero` (ZEROFRAME): a 0.0 input gives 0.0. One
// index per pixel of every plane.
TSO_KERNEL void tso_rpm_apply(const float* __restrict__ src, float* __restrict__ out,
                              long long nplanes, long long ngroups, long long ny, long long nx,
                              const double* __restrict__ value, const int* __restrict__ kind,
                              long long nsets, long long npar, int correct, int keep_zero) {
    TSO_FOR_EACH_3D(p, r, c, nplanes, ny, nx) {  // plane, row and column
        const long long o = r * nx + c;
        const float x0 = src[(p - p % ngroups) * ny * nx + o];
        float v = rpm_value(src, p, ngroups, ny * nx, o);
        if (correct && p % ngroups != 0) {
            const long long s = p * nsets + ((c % 4) * npar + r % npar) * 2;
            double signal;
            rp_average_with_none(kind[s], value[s], kind[s + 1], value[s + 1], &signal);
            v = (float)((double)v - signal);
        }
        v = (float)((double)v + (double)x0);
        if (keep_zero && src[p * ny * nx + o] == 0.0f) v = 0.0f;
        out[p * ny * nx + o] = v;
    }
}
