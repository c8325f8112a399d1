// An elementwise kernel that several steps launch (tsogpu/launchers/elementwise.py): dq_init,
// superbias and dark_current OR their reference file's DQ into PIXELDQ.
#include "common.cuh"

// pixeldq | reference DQ. One index per pixel.
TSO_KERNEL void tso_or_u32(const unsigned int* __restrict__ a,
                           const unsigned int* __restrict__ b, unsigned int* __restrict__ out,
                           long long n) {
    TSO_FOR_EACH(i, n) { out[i] = a[i] | b[i]; }
}
