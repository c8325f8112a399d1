// refpix: per-element math of the reference-pixel correction (median algorithm).
//
// Mirrors tsogpu/algorithms/refpix.py (jwst/refpix/reference_pixels.py as RefPixStep runs it):
// clipped_mean (jwst Dataset.sigma_clip -> scipy.stats.sigmaclip, with NumPy's np.mean/np.std
// arithmetic), average_with_none, _running_median, _combine_with_nans and the detector-frame
// transform. Every function works on float32 input values; `T` is the arithmetic type of the
// NumPy code: float for a float32 buffer, double for jwst's float64 buffer (first_plane quirk).
#pragma once

// NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src, @TYPE@_pairwise_sum):
// blocks of at most RP_PW_BLOCKSIZE values are summed with 8 strided accumulators; longer runs
// are split at n/2 rounded down to a multiple of 8. RP_PW_DEPTH bounds the explicit recursion
// stack: the right half of a split is at most n/2 + 8 values, so a run of n values nests about
// log2(n) - 6 levels; 32 levels cover n far beyond any frame (2^37 values).
#define RP_PW_BLOCKSIZE 128
#define RP_PW_DEPTH 32

// Result kinds of a clipped mean (refpix.clipped_mean returns None, numpy.float32 or float64).
#define RP_NONE 0
#define RP_F32 1
#define RP_F64 2

// One summand: the value itself, or its squared deviation (x - center)**2 as np.var forms it
// (um.subtract then um.square, both in T).
template <typename T>
TSO_HD T rp_term(float v, int squared, T center) {
    T t = (T)v;
    if (squared) {
        T d = t - center;
        return d * d;
    }
    return t;
}

// pairwise_sum on a block of n <= RP_PW_BLOCKSIZE values.
template <typename T>
TSO_HD T rp_pairwise_block(const float* x, long long n, int squared, T center) {
    if (n < 8) {
        T res = (T)-0.0;  // NumPy starts at -0.0 to keep a sum of -0.0 values -0.0
        for (long long i = 0; i < n; ++i) res = res + rp_term<T>(x[i], squared, center);
        return res;
    }
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = rp_term<T>(x[j], squared, center);
    long long i;
    for (i = 8; i < n - (n % 8); i += 8) {
        for (int j = 0; j < 8; ++j) r[j] = r[j] + rp_term<T>(x[i + j], squared, center);
    }
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res = res + rp_term<T>(x[i], squared, center);
    return res;
}

// pairwise_sum on n values: the recursion pw(x[:h]) + pw(x[h:]), h = n/2 - (n/2)%8, run with
// an explicit stack (stage 0: left half pending, 1: right half pending, 2: both done).
template <typename T>
TSO_HD T rp_pairwise(const float* x, long long n, int squared, T center) {
    long long off[RP_PW_DEPTH], len[RP_PW_DEPTH];
    int stage[RP_PW_DEPTH];
    T left[RP_PW_DEPTH];
    T result = (T)0;
    int top = 0;
    off[0] = 0;
    len[0] = n;
    stage[0] = 0;
    while (top >= 0) {
        long long o = off[top], m = len[top];
        long long h = m / 2;
        h -= h % 8;
        if (m <= RP_PW_BLOCKSIZE) {  // a leaf: its sum goes back to the parent
            result = rp_pairwise_block<T>(x + o, m, squared, center);
            --top;
        } else if (stage[top] == 0) {  // descend into the left half
            stage[top] = 1;
            ++top;
            off[top] = o;
            len[top] = h;
            stage[top] = 0;
        } else if (stage[top] == 1) {  // left sum in `result`: keep it, descend right
            left[top] = result;
            stage[top] = 2;
            ++top;
            off[top] = o + h;
            len[top] = m - h;
            stage[top] = 0;
        } else {  // both halves done
            result = left[top] + result;
            --top;
        }
    }
    return result;
}

// np.add.reduce of n values in T: the identity 0.0 plus the pairwise sum of each run the
// reduction hands its inner loop. A reduction that casts (float32 values with dtype=float64)
// goes through NumPy's buffers, so the runs are `chunk` = np.getbufsize() values, added in
// order; without a cast the whole array is one run (chunk = n).
template <typename T>
TSO_HD T rp_sum(const float* x, long long n, long long chunk, int squared, T center) {
    T total = (T)0;
    for (long long start = 0; start < n; start += chunk) {
        long long m = (n - start < chunk) ? n - start : chunk;
        total = total + rp_pairwise<T>(x + start, m, squared, center);
    }
    return total;
}

// A quiet NaN (+, as np.nan) usable in TSO_HD code: TSO_NAN is a device intrinsic under
// nvcc, which rejects it in __host__ __device__ functions.
TSO_HD double rp_nan(void) {
    union {
        unsigned long long u;
        double d;
    } bits;
    bits.u = 0x7ff8000000000000ULL;
    return bits.d;
}

TSO_HD float rp_sqrt(float v) { return sqrtf(v); }
TSO_HD double rp_sqrt(double v) { return sqrt(v); }

// refpix.clipped_mean on the n values x[0..n) (float32, in jwst's gather order); `x` is
// scratch: the clipping compacts it in place. T = float for a float32 buffer, double for a
// float64 one. Writes the value (a float32 result is exact in double) and its kind.
template <typename T>
TSO_HD void rp_clipped_mean(float* x, long long n, long long bufsize, double siglimit,
                            double* value, int* kind) {
    if (n == 0) {  // None
        *value = 0.0;
        *kind = RP_NONE;
        return;
    }
    // np.std(values, dtype=np.float64) == 0: mean = sum / n (the sum buffered when the
    // values are float32), then sqrt(sum((x - mean)**2) / n) over float64 values.
    double n64 = (double)n;
    long long chunk = (sizeof(T) == sizeof(float)) ? bufsize : n;
    double mean64 = rp_sum<double>(x, n, chunk, 0, 0.0) / n64;
    double var64 = rp_sum<double>(x, n, n, 1, mean64) / n64;
    if (sqrt(var64) == 0.0) {  // all equal: np.mean(values, dtype=np.float64), the same sum
        *value = mean64;
        *kind = RP_F64;
        return;
    }
    // scipy.stats.sigmaclip in T: np.std/np.mean divide a T sum by the intp count in float64
    // and round back to T (ret.dtype.type(ret / rcount)).
    T limit = (T)siglimit;
    T mean = (T)0;
    long long size = n;
    while (1) {
        mean = (T)((double)rp_sum<T>(x, size, size, 0, (T)0) / (double)size);
        T var = (T)((double)rp_sum<T>(x, size, size, 1, mean) / (double)size);
        T std = rp_sqrt(var);
        T lower = mean - std * limit;
        T upper = mean + std * limit;
        long long kept = 0;
        for (long long i = 0; i < size; ++i) {
            T v = (T)x[i];
            if (v >= lower && v <= upper) x[kept++] = x[i];
        }
        if (kept == size || kept == 0) {
            size = kept;
            break;
        }
        size = kept;
    }
    // Nothing removed: np.mean(clipped) is `mean` (same values). All removed (NaN/inf): NaN.
    *value = (size == 0) ? rp_nan() : (double)mean;
    *kind = (sizeof(T) == sizeof(float)) ? RP_F32 : RP_F64;
}

// refpix.average_with_none(bottom, top) of two clipped means given as (kind, value): the
// other when one is None; 0.5*(a+b) in float32 when both are float32, else in float64.
TSO_HD int rp_average_with_none(int ka, double a, int kb, double b, double* out) {
    if (ka == RP_NONE) {
        *out = b;
        return kb;
    }
    if (kb == RP_NONE) {
        *out = a;
        return ka;
    }
    if (ka == RP_F32 && kb == RP_F32) {
        *out = (double)(0.5f * ((float)a + (float)b));
        return RP_F32;
    }
    *out = 0.5 * (a + b);
    return RP_F64;
}

// refpix._frame_transform: DMS offset y*nx + x of the detector-frame pixel (dr, dc) of a
// (ny, nx) DMS array; |FASTAXIS| == 1 flips rows/columns by the signs of SLOWAXIS/FASTAXIS,
// |FASTAXIS| == 2 flips DMS rows by FASTAXIS, DMS columns by SLOWAXIS, then transposes.
TSO_HD long long rp_dms_offset(long long dr, long long dc, long long ny, long long nx, int fast,
                               int slow) {
    long long y, x;
    if (fast == 1 || fast == -1) {
        y = slow > 0 ? dr : ny - 1 - dr;
        x = fast > 0 ? dc : nx - 1 - dc;
    } else {
        y = fast > 0 ? dc : ny - 1 - dc;
        x = slow > 0 ? dr : nx - 1 - dr;
    }
    return y * nx + x;
}

// The inverse: detector-frame (dr, dc) of DMS pixel (y, x).
TSO_HD void rp_detector_pos(long long y, long long x, long long ny, long long nx, int fast,
                            int slow, long long* dr, long long* dc) {
    if (fast == 1 || fast == -1) {
        *dr = slow > 0 ? y : ny - 1 - y;
        *dc = fast > 0 ? x : nx - 1 - x;
    } else {
        *dc = fast > 0 ? y : ny - 1 - y;
        *dr = slow > 0 ? x : nx - 1 - x;
    }
}

// Median of a valid set as _running_median computes it (np.median): with the n values sorted
// s[], 0 + s[n/2] for odd n, ((0 + s[n/2-1]) + s[n/2]) / 2 for even n, in T. The `0 +`
// makes the sign of a zero pick irrelevant, so any selection of equal values gives the bits.
template <typename T>
TSO_HD double rp_median_of(T lo, T hi, long long n) {
    if (n % 2 == 1) return (double)((T)0 + hi);
    return (double)((((T)0 + lo) + hi) / (T)2);
}

// refpix._combine_with_nans: the mean of left and right where both are non-NaN, the non-NaN
// one, else 0.
TSO_HD double rp_combine_with_nans(double left, double right) {
    int lok = !isnan(left), rok = !isnan(right);
    if (lok && rok) return 0.5 * (left + right);
    if (lok) return left;
    if (rok) return right;
    return 0.0;
}
