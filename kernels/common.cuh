// tsogpu kernels: definitions shared by every kernel file, for the device and the host build.
//
// Every *.cu file in kernels/ includes this first. The same sources compile two ways:
//   - on the device, through CuPy's RawModule (NVRTC) or nvcc, with --fmad=false
//     --prec-div=true --prec-sqrt=true (tsogpu/cuda/sources.py, .ci/run);
//   - on the host, with g++ -x c++ -ffp-contract=off (tsogpu/native.py: the native CPU backend,
//     and the test suite): a kernel is then a plain function whose TSO_FOR_EACH loop runs over
//     every index, split over the cores by OpenMP when built with -fopenmp.
// Per-element math lives in TSO_HD functions in the *.cuh headers, so both builds run the
// same operations in the same order as the NumPy backend (tsogpu/algorithms/).
//
// Types: no <stdint.h> under NVRTC, so plain C types: unsigned char (GROUPDQ), unsigned int
// (PIXELDQ), unsigned short (raw uint16 ramps), long long (indices and sizes).
#pragma once

#if defined(__CUDACC__)
#define TSO_DEVICE 1
#define TSO_HD __host__ __device__ __forceinline__
#define TSO_KERNEL extern "C" __global__
#define TSO_FOR_EACH(i, n)                                                        \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;          \
         i < (long long)(n); i += (long long)blockDim.x * gridDim.x)
// quiet NaNs usable in TSO_HD functions (the __int_as_float intrinsics are device-only)
TSO_HD float tso_nanf(void) { union { unsigned int u; float f; } v; v.u = 0x7fc00000u; return v.f; }
TSO_HD double tso_nan(void) {
    union { unsigned long long u; double d; } v; v.u = 0x7ff8000000000000ULL; return v.d;
}
#define TSO_NANF tso_nanf()
#define TSO_NAN tso_nan()
#else
#include <math.h>
#include <string.h>
#define TSO_HD static inline
#define TSO_KERNEL extern "C"
#if defined(_OPENMP)
// the native CPU backend (tsogpu/native.py, -fopenmp): the indices split over the cores; every
// index writes only its own outputs (no atomics anywhere), so the split changes no result
static int tso_nthreads = 1;  // set by tso_set_threads, for every calling thread alike
extern "C" int tso_set_threads(int n) {
    if (n > 0) tso_nthreads = n;
    return tso_nthreads;
}
#define TSO_PRAGMA(x) _Pragma(#x)
#define TSO_FOR_EACH(i, n)                                                  \
    TSO_PRAGMA(omp parallel for schedule(static) num_threads(tso_nthreads)) \
    for (long long i = 0; i < (long long)(n); ++i)
#else
#define TSO_FOR_EACH(i, n) for (long long i = 0; i < (long long)(n); ++i)
#endif
TSO_HD float tso_nanf(void) { unsigned int u = 0x7fc00000u; float f; memcpy(&f, &u, 4); return f; }
TSO_HD double tso_nan(void) {
    unsigned long long u = 0x7ff8000000000000ULL; double d; memcpy(&d, &u, 8); return d;
}
#define TSO_NANF tso_nanf()
#define TSO_NAN tso_nan()
#endif

// A thread's scratch buffer of n elements in a batch of nb threads (base + TSO_SCRATCH_AT, then
// element r at r * TSO_SCRATCH_STRIDE): interleaved on the device (element r of thread t at
// r * nb + t, so a warp's accesses coalesce), contiguous on the host (t * n + r, so one thread's
// values share cache lines). The same values in the same order either way.
#if defined(TSO_DEVICE)
#define TSO_SCRATCH_AT(t, nb, n) (t)
#define TSO_SCRATCH_STRIDE(nb) (nb)
#else
#define TSO_SCRATCH_AT(t, nb, n) ((t) * (n))
#define TSO_SCRATCH_STRIDE(nb) 1
#endif

// DQ values are kernel arguments, never literals: every kernel that tests or sets a flag takes
// `const unsigned int* dqv`, an array of the values below in this order, built from
// tsogpu/dq.py by tsogpu.cuda.sources.dq_values() (a test checks the two lists agree).
enum TsoDq {
    DQ_DO_NOT_USE = 0,
    DQ_SATURATED,
    DQ_JUMP_DET,
    DQ_DROPOUT,
    DQ_PERSISTENCE,
    DQ_AD_FLOOR,
    DQ_CHARGELOSS,
    DQ_NO_GAIN_VALUE,
    DQ_NO_LIN_CORR,
    DQ_NO_SAT_CHECK,
    DQ_UNRELIABLE_BIAS,
    DQ_UNRELIABLE_DARK,
    DQ_REFERENCE_PIXEL,
    DQ_COUNT
};
