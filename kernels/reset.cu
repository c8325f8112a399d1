// reset (tsogpu/algorithms/reset.py: subtract_reset); launcher in tsogpu/launchers/reset.py
// (PIXELDQ's OR with the reference DQ: elementwise.cu).
//
// Layouts: data (nints, ngroups, npix), reset (reset_nints, reset_ngroups, npix).
#include "common.cuh"

// data - reset[ir, g] in the groups g < ncorr (= min(ngroups, reset_ngroups)), where
// ir = min(int_start + i, reset_nints - 1); a NaN in the reference counts as 0. One float32
// subtraction. One index per element.
TSO_KERNEL void tso_reset(const float* __restrict__ data, const float* __restrict__ reset,
                          float* __restrict__ out, long long nints, long long ngroups,
                          long long npix, long long reset_nints, long long reset_ngroups,
                          long long ncorr, long long int_start) {
    TSO_FOR_EACH_3D(i, g, p, nints, ngroups, npix) {
        const long long at = (i * ngroups + g) * npix + p;
        if (g < ncorr) {
            const long long ir = tso_minll(int_start + i, reset_nints - 1);
            float r = reset[(ir * reset_ngroups + g) * npix + p];
            if (isnan(r)) r = 0.0f;
            out[at] = data[at] - r;
        } else {
            out[at] = data[at];
        }
    }
}
