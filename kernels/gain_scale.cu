// gain_scale (tsogpu/algorithms/gain_scale.py: gain_scale); launcher in
// tsogpu/launchers/gain_scale.py.
#include "common.cuh"

// out = a * s, one float32 multiply, for each array of gain_scale in turn: s = float32(f) for
// SCI and ERR, float32(f**2) (squared in float64 on the host) for the variances.
// One index per element.
TSO_KERNEL void tso_gain_scale(const float* __restrict__ a, float* __restrict__ out, float s,
                               long long n) {
    TSO_FOR_EACH(i, n) { out[i] = a[i] * s; }
}
