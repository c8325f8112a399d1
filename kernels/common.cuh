// tsogpu kernels: definitions shared by every kernel file, for the device and the host build.
//
// Every *.cu file in kernels/ includes this first. The same sources compile two ways:
//   - on the device, through CuPy's RawModule (NVRTC) or nvcc, with --fmad=false
//     --prec-div=true --prec-sqrt=true (tsogpu/launchers/sources.py, .ci/run);
//   - on the host, with g++ -x c++ -ffp-contract=off (tsogpu/launchers/host_build.py: the
//     native CPU backend, and the test suite): a kernel is then a plain function whose
//     TSO_FOR_EACH loop runs over every index, split over the cores by OpenMP when built
//     with -fopenmp.
// Per-element math lives in TSO_HD functions (in the *.cuh headers, or at the top of a step's
// .cu file where only that file uses them), so both builds run the same operations in the
// same order as the NumPy backend (tsogpu/algorithms/).
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
// the native CPU backend (tsogpu/launchers/host_build.py, -fopenmp): the indices split over
// the cores; every index writes only its own outputs (no atomics anywhere), so the split
// changes no result
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

// ---- Work items with several indices, without a 64-bit division per item ------------------
//
// TSO_FOR_EACH_2D(a, b, na, nb) and TSO_FOR_EACH_3D(a, b, c, na, nb, nc) run their body once
// for every (a, b) < (na, nb), resp. (a, b, c) < (na, nb, nc): the item of flat index
// (a * nb + b) or ((a * nb + b) * nc + c), the last index the fastest (e.g. (plane, pixel)
// or (plane, y, x)). The items are those of TSO_FOR_EACH over the flat index; only the way
// the indices are formed differs: on the device each thread splits its first flat index and
// the grid stride once, then carries (a, b, c) from item to item; on the host each thread
// takes a contiguous range of the flat index and walks it as rows of the last index (an
// inner loop over b, resp. c, that the compiler can vectorise). `continue` skips to the next
// item, as in TSO_FOR_EACH; the body must not `break` out of the item loop.
//
// TSO_FOR_EACH_RUN(p0, p1, n) and TSO_FOR_EACH_2D_RUN(a, p0, p1, na, n): the items are runs
// [p0, p1) of consecutive indices p < n (for every a < na): one index on the device
// (p1 = p0 + 1), up to TSO_RUN on the host. A kernel that loops over the groups or
// integrations of a pixel loops over the pixels of its run inside (state in arrays of
// TSO_RUN), so that on the host one pass reads a run of neighbouring values (one cache line)
// per plane instead of one value per plane and pixel (the planes lie npix values apart, often a
// multiple of 4 KiB: the values of one pixel share a few cache sets and evict each other). Each
// pixel sees the same operations in the same order as alone.
TSO_HD long long tso_minll(long long x, long long y) { return x < y ? x : y; }
// n items as rows of w (0 when w is 0, as then n is 0): the na of a flat count n = na * w
TSO_HD long long tso_rows_of(long long n, long long w) { return w > 0 ? n / w : 0; }

#if defined(TSO_DEVICE)
#define TSO_RUN 1
#define TSO_GRID_INDEX ((long long)blockIdx.x * blockDim.x + threadIdx.x)
#define TSO_GRID_STRIDE ((long long)blockDim.x * gridDim.x)

// The grid-stride walk of TSO_FOR_EACH_2D: this thread's item (x0, x1) (x0 >= n0 when it has
// none left) and the grid stride split as (s0, s1), s1 < n1, carried from item to item.
struct TsoGrid2 {
    long long x0, x1, s0, s1, n0, n1;
};
TSO_HD TsoGrid2 tso_grid2_begin(long long n0, long long n1) {
    TsoGrid2 g;
    const long long i = TSO_GRID_INDEX, s = TSO_GRID_STRIDE;
    g.n0 = n0;
    g.n1 = n1;
    g.x0 = n0;  // no item
    g.x1 = g.s1 = 0;
    g.s0 = n0;  // no second item: the first step ends the walk
    if (i < n0 * n1) {
        g.x0 = i / n1;
        g.x1 = i - g.x0 * n1;
        if (i + s < n0 * n1) {  // a second item: split the stride
            g.s0 = s / n1;
            g.s1 = s - g.s0 * n1;
        }
    }
    return g;
}
TSO_HD void tso_grid2_next(TsoGrid2* g) {
    g->x0 += g->s0;
    g->x1 += g->s1;
    if (g->x1 >= g->n1) {
        g->x1 -= g->n1;
        g->x0 += 1;
    }
}
// The same for TSO_FOR_EACH_3D: item (x0, x1, x2), stride (s0, s1, s2)
struct TsoGrid3 {
    long long x0, x1, x2, s0, s1, s2, n0, n1, n2;
};
TSO_HD void tso_split3(long long i, long long n1, long long n2, long long* x0, long long* x1,
                       long long* x2) {
    long long q = i / n2;
    *x2 = i - q * n2;
    *x0 = q / n1;
    *x1 = q - *x0 * n1;
}
TSO_HD TsoGrid3 tso_grid3_begin(long long n0, long long n1, long long n2) {
    TsoGrid3 g;
    const long long i = TSO_GRID_INDEX, s = TSO_GRID_STRIDE;
    g.n0 = n0;
    g.n1 = n1;
    g.n2 = n2;
    g.x0 = n0;  // no item
    g.x1 = g.x2 = g.s1 = g.s2 = 0;
    g.s0 = n0;  // no second item: the first step ends the walk
    if (i < n0 * n1 * n2) {
        tso_split3(i, n1, n2, &g.x0, &g.x1, &g.x2);
        if (i + s < n0 * n1 * n2) tso_split3(s, n1, n2, &g.s0, &g.s1, &g.s2);  // a second item
    }
    return g;
}
TSO_HD void tso_grid3_next(TsoGrid3* g) {
    g->x0 += g->s0;
    g->x1 += g->s1;
    g->x2 += g->s2;
    if (g->x2 >= g->n2) {
        g->x2 -= g->n2;
        g->x1 += 1;
    }
    if (g->x1 >= g->n1) {
        g->x1 -= g->n1;
        g->x0 += 1;
    }
}
#define TSO_FOR_EACH_2D(a, b, na, nb)                                                        \
    for (TsoGrid2 it_ = tso_grid2_begin((na), (nb)); it_.x0 < it_.n0; tso_grid2_next(&it_)) \
        for (long long a = it_.x0, b = it_.x1, once_ = 1; once_; once_ = 0)
#define TSO_FOR_EACH_3D(a, b, c, na, nb, nc)                                                    \
    for (TsoGrid3 it_ = tso_grid3_begin((na), (nb), (nc)); it_.x0 < it_.n0; tso_grid3_next(&it_)) \
        for (long long a = it_.x0, b = it_.x1, c = it_.x2, once_ = 1; once_; once_ = 0)
#define TSO_FOR_EACH_RUN(p0, p1, n) \
    TSO_FOR_EACH(p0, n)             \
    for (long long p1 = p0 + 1, once1_ = 1; once1_; once1_ = 0)
#define TSO_FOR_EACH_2D_RUN(a, p0, p1, na, n) \
    TSO_FOR_EACH_2D(a, p0, na, n)             \
    for (long long p1 = p0 + 1, once1_ = 1; once1_; once1_ = 0)

#else  // host
#define TSO_RUN 8  // pixels per run: a 32-byte run of float32 values per plane
#if defined(_OPENMP)
#include <omp.h>
#define TSO_PARALLEL TSO_PRAGMA(omp parallel num_threads(tso_nthreads))
#else
#define TSO_PARALLEL
#endif

// This thread's share of n flat indices, [lo, hi): contiguous, balanced
TSO_HD void tso_thread_range(long long n, long long* lo, long long* hi) {
#if defined(_OPENMP)
    long long t = omp_get_thread_num(), nt = omp_get_num_threads();
    long long q = n / nt, r = n % nt;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
#else
    *lo = 0;
    *hi = n;
#endif
}
// A thread's range [i, end) walked as rows: the current row (x0, x1) holds the flat indices
// i .. i + (x2end - x2) - 1, its last index x2 .. x2end - 1 (a whole row but at the two ends
// of the range).
struct TsoRows {
    long long i, end, x0, x1, x2, x2end, n1, n2;
};
TSO_HD TsoRows tso_rows_begin(long long na, long long nb, long long nc) {
    TsoRows r;
    tso_thread_range(na * nb * nc, &r.i, &r.end);
    r.n1 = nb;
    r.n2 = nc;
    r.x0 = r.x1 = r.x2 = r.x2end = 0;
    if (r.i < r.end) {
        long long ab = r.i / nc;
        r.x2 = r.i - ab * nc;
        r.x0 = ab / nb;
        r.x1 = ab - r.x0 * nb;
        r.x2end = tso_minll(nc, r.x2 + (r.end - r.i));
    }
    return r;
}
TSO_HD void tso_rows_next(TsoRows* r) {
    r->i += r->x2end - r->x2;
    r->x2 = 0;
    r->x2end = tso_minll(r->n2, r->end - r->i);
    if (++r->x1 == r->n1) {
        r->x1 = 0;
        r->x0 += 1;
    }
}
#define TSO_FOR_EACH_2D(a, b, na, nb)                                                    \
    TSO_PARALLEL                                                                         \
    for (TsoRows it_ = tso_rows_begin(1, (na), (nb)); it_.i < it_.end; tso_rows_next(&it_)) \
        for (long long a = it_.x1, b = it_.x2, end_ = it_.x2end; b < end_; ++b)
#define TSO_FOR_EACH_3D(a, b, c, na, nb, nc)                                                  \
    TSO_PARALLEL                                                                              \
    for (TsoRows it_ = tso_rows_begin((na), (nb), (nc)); it_.i < it_.end; tso_rows_next(&it_)) \
        for (long long a = it_.x0, b = it_.x1, c = it_.x2, end_ = it_.x2end; c < end_; ++c)
#define TSO_FOR_EACH_RUN(p0, p1, n)                                        \
    TSO_FOR_EACH(run_, ((n) + TSO_RUN - 1) / TSO_RUN)                      \
    for (long long p0 = run_ * TSO_RUN, p1 = tso_minll(p0 + TSO_RUN, (n)); \
         p0 < p1; p0 = p1)
#define TSO_FOR_EACH_2D_RUN(a, p0, p1, na, n)                              \
    TSO_FOR_EACH_2D(a, run_, na, ((n) + TSO_RUN - 1) / TSO_RUN)            \
    for (long long p0 = run_ * TSO_RUN, p1 = tso_minll(p0 + TSO_RUN, (n)); \
         p0 < p1; p0 = p1)
#endif

// ---- Selection ------------------------------------------------------------------------------

// The median of three values (no NaN)
template <typename T>
TSO_HD T tso_med3(T x, T y, T z) {
    T lo = x < y ? x : y, hi = x < y ? y : x;
    return z < lo ? lo : (hi < z ? hi : z);
}

// The k-th smallest of the n values a[0], a[s], ..., a[(n-1)*s] (no NaN), permuting them so
// that a[0..k-1] <= a[k] <= a[k+1..n-1]; for medians, where only values matter (the order the
// values are left in is not NumPy's or astropy's). Quickselect with branch-free passes: each
// round moves the values below a pivot (the median of three of the range [l, m]) to its front
// and keeps the side holding k; when none is below (the pivot is the least), a second pass
// gathers the values equal to the pivot, which either hold k or are dropped. Equal values
// (0.0 and -0.0) may come out in any order.
template <typename T>
TSO_HD T tso_select(T* a, long long s, long long n, long long k) {
    long long l = 0, m = n - 1;
    while (l < m) {
        T pivot = tso_med3<T>(a[l * s], a[((l + m) / 2) * s], a[m * s]);
        long long lt = l;  // a[l..lt-1] < pivot
        for (long long i = l; i <= m; ++i) {
            T v = a[i * s];
            a[i * s] = a[lt * s];
            a[lt * s] = v;
            lt += v < pivot;
        }
        if (k < lt) {
            m = lt - 1;
        } else if (lt > l) {
            l = lt;
        } else {
            long long le = lt;  // a[lt..le-1] == pivot (every value of [lt, m] is >= pivot)
            for (long long i = lt; i <= m; ++i) {
                T v = a[i * s];
                a[i * s] = a[le * s];
                a[le * s] = v;
                le += !(pivot < v);
            }
            if (k < le) return a[k * s];
            l = le;
        }
    }
    return a[k * s];
}

// DQ values are kernel arguments, never literals: every kernel that tests or sets a flag takes
// `const unsigned int* dqv`, an array of the values below in this order, built from
// tsogpu/dq.py by tsogpu.launchers.sources.dq_values() (a test checks the two lists agree).
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
    DQ_FLUX_ESTIMATED,
    DQ_COUNT
};
