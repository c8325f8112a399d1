// Raw ramps to float32 on the device (tsogpu/io/uncal.py reads them as uint16).
#include "common.cuh"

// out[i] = (float)raw[i]: every uint16 is exact in float32.
TSO_KERNEL void tso_u16_to_f32(const unsigned short* __restrict__ raw,
                               float* __restrict__ out, long long n) {
    TSO_FOR_EACH(i, n) { out[i] = (float)raw[i]; }
}
