// group_scale (tsogpu/algorithms/group_scale.py: group_scale); launcher in
// tsogpu/launchers/group_scale.py.
#include "common.cuh"

// out = data * s, one float32 multiply; s = float32(FRMDIVSR / NFRAMES), the quotient in
// float64 rounded once on the host. One index per element.
TSO_KERNEL void tso_group_scale(const float* __restrict__ data, float* __restrict__ out, float s,
                                long long n) {
    TSO_FOR_EACH(i, n) { out[i] = data[i] * s; }
}
