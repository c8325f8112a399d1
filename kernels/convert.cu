// Raw ramps to float32 (tsogpu/io/uncal.py reads SCI unconverted; KernelOps.to_device
// launches one of these on the device, or on the host in the native build).
#include "common.cuh"

// out[i] = (float)raw[i]: every uint16 is exact in float32.
TSO_KERNEL void tso_u16_to_f32(const unsigned short* __restrict__ raw,
                               float* __restrict__ out, long long n) {
    TSO_FOR_EACH(i, n) { out[i] = (float)raw[i]; }
}

// SCI as the file stores it: big-endian int16 holding counts - 32768 (BZERO = 32768), its bytes
// loaded unchanged as unsigned shorts on a little-endian host. The count is the bytes swapped
// with the sign bit flipped (s + 32768 == s ^ 0x8000 read as uint16), exact in float32; the same
// value as tsogpu.segment.ramps_to_float32, the NumPy backend's conversion.
TSO_KERNEL void tso_be16_to_f32(const unsigned short* __restrict__ raw,
                                float* __restrict__ out, long long n) {
    TSO_FOR_EACH(i, n) {
        unsigned int b = raw[i];
        out[i] = (float)((((b & 0xffu) << 8) | (b >> 8)) ^ 0x8000u);
    }
}
