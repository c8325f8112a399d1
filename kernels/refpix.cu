// refpix: reference-pixel correction (tsogpu/algorithms/refpix.py: correct_refpix; jwst
// refpix/reference_pixels.py, median algorithm). Launched by tsogpu/launchers/refpix.py.
//
// A "plane" is one (integration, group) frame of the ramp, or one ZEROFRAME frame, (ny, nx)
// float32 in the DMS frame; planes are numbered in jwst's order (integrations, then groups).
// The reference sets, per-amplifier references and side medians live in the detector frame
// of the data window (dny, dnx) at offset (row0, col0) of the 2048x2048 detector frame.
// Per plane p, plane p is in float64 mode (jwst's group buffer turned float64, see the
// refpix.py docstring) when p >= f64_from.
//
// Launches: tso_rp_clipped_means (one index per (plane, reference set)), then for the full
// frame / 4-output path tso_rp_amp_refs (per (plane, amplifier)) and tso_rp_side_medians
// (per (plane, detector row)), and tso_rp_apply (per pixel of every plane).
#include "common.cuh"
#include "refpix.cuh"

// refpix.clipped_mean of every (plane, set): set s gathers the values
// plane[idx[set_start[s]] .. idx[set_start[s+1]-1]] (DMS offsets, in jwst's order: row-major
// in the detector frame). One index per (plane plane0 + pl, set s), pl < nplanes; `scratch`
// holds set_start[nsets] floats per plane of the batch. Writes value/kind[p * nsets + s].
TSO_KERNEL void tso_rp_clipped_means(const float* __restrict__ src, long long plane_size,
                                     long long plane0, long long nplanes,
                                     const long long* __restrict__ idx,
                                     const long long* __restrict__ set_start, long long nsets,
                                     long long f64_from, long long bufsize, double siglimit,
                                     float* __restrict__ scratch, double* __restrict__ value,
                                     int* __restrict__ kind) {
    long long total = set_start[nsets];
    TSO_FOR_EACH_2D(pl, s, nplanes, nsets) {
        long long p = plane0 + pl;
        long long start = set_start[s], n = set_start[s + 1] - start;
        const float* plane = src + p * plane_size;
        float* x = scratch + pl * total + start;
        for (long long k = 0; k < n; ++k) x[k] = plane[idx[start + k]];
        long long o = p * nsets + s;
        if (p >= f64_from) {
            rp_clipped_mean<double>(x, n, bufsize, siglimit, value + o, kind + o);
        } else {
            rp_clipped_mean<float>(x, n, bufsize, siglimit, value + o, kind + o);
        }
    }
}

// _fullframe_corrector, per plane and amplifier: signal = average_with_none(bottom, top) per
// column parity (npar = 2) or for all columns (npar = 1); an amplifier with any parity
// lacking a signal is not corrected (reference 0.0, as column_ref's zeros). Sets are numbered
// ((amp * npar + parity) * 2 + edge), edge 0 bottom, 1 top; refs[p, amp * npar + parity].
TSO_KERNEL void tso_rp_amp_refs(const double* __restrict__ value, const int* __restrict__ kind,
                                long long nplanes, long long namps, long long npar,
                                double* __restrict__ refs) {
    long long nsets = namps * npar * 2, nref = namps * npar;
    TSO_FOR_EACH_2D(p, amp, nplanes, namps) {
        double signal[2] = {0.0, 0.0};
        int ok = 1;
        for (long long par = 0; par < npar; ++par) {
            long long s = p * nsets + (amp * npar + par) * 2;
            int k = rp_average_with_none(kind[s], value[s], kind[s + 1], value[s + 1],
                                         &signal[par]);
            if (k == RP_NONE) ok = 0;
        }
        for (long long par = 0; par < npar; ++par) {
            refs[p * nref + amp * npar + par] = ok ? signal[par] : 0.0;
        }
    }
}

// One side (detector columns lo .. lo+3) of one row of one plane, for _running_median.
struct RpSide {
    const float* plane;            // the plane, DMS frame
    const double* refs;            // the plane's per-column-group references
    const int* colgroup;           // column group of each window column
    const unsigned int* wdq;       // detector-frame PIXELDQ of the window (dny, dnx)
    unsigned int dnu;              // DO_NOT_USE
    long long ny, nx, dny, dnx, row0, col0, nrows_full;
    int fast, slow;
    long long row;                 // full-frame detector row of the window centre
    long long half, length, lo;
};

// Window value w (window row w / 4, side column lo + w % 4) of _side_window: the full-frame
// row R - half + w/4, reflected at the frame edges without repeating the edge row; valid when
// inside the data window and not DO_NOT_USE. The value is the top/bottom-corrected pixel
// float64(x) - ref, rounded to T (float32 on the float32 buffer).
template <typename T>
TSO_HD int rp_side_value(const RpSide& g, long long w, T* v) {
    long long fr = g.row - g.half + w / 4;
    if (fr < 0) fr = -fr;
    if (fr >= g.nrows_full) fr = 2 * g.nrows_full - 2 - fr;
    long long lr = fr - g.row0, lc = g.lo + w % 4 - g.col0;
    if (lr < 0 || lr >= g.dny || lc < 0 || lc >= g.dnx) return 0;
    if (g.wdq[lr * g.dnx + lc] & g.dnu) return 0;
    float x = g.plane[rp_dms_offset(lr, lc, g.ny, g.nx, g.fast, g.slow)];
    *v = (T)((double)x - g.refs[g.colgroup[lc]]);
    return 1;
}

// np.median of the valid window values (NaN when none is valid or one is NaN). Selection by
// rank: a value whose sorted positions lt .. le-1 contain k is the k-th smallest.
template <typename T>
TSO_HD double rp_side_median(const RpSide& g) {
    long long m = g.length * 4, count = 0;
    for (long long w = 0; w < m; ++w) {
        T v;
        if (!rp_side_value<T>(g, w, &v)) continue;
        if (isnan(v)) return rp_nan();
        ++count;
    }
    if (count == 0) return rp_nan();
    long long k = count / 2;
    T lo = (T)0, hi = (T)0;
    for (long long w = 0; w < m; ++w) {
        T a;
        if (!rp_side_value<T>(g, w, &a)) continue;
        long long lt = 0, le = 0;
        for (long long u = 0; u < m; ++u) {
            T b;
            if (!rp_side_value<T>(g, u, &b)) continue;
            lt += (b < a);
            le += (b <= a);
        }
        if (lt <= k && k < le) hi = a;
        if (lt <= k - 1 && k - 1 < le) lo = a;
    }
    return rp_median_of<T>(lo, hi, count);
}

// Side reference pixels (_fullframe_corrector with use_side_ref_pixels): for each plane and
// window row, the running medians of the left (detector columns 0:4) and right (ncols_full-4:
// ncols_full) sides, combined by _combine_with_nans. One index per (plane, row);
// combined[p * dny + dr].
TSO_KERNEL void tso_rp_side_medians(const float* __restrict__ src, long long nplanes,
                                    long long ny, long long nx, int fast, int slow,
                                    const unsigned int* __restrict__ wdq,
                                    const unsigned int* __restrict__ dqv, long long dny,
                                    long long dnx, long long row0, long long col0,
                                    long long nrows_full, long long ncols_full,
                                    long long length, const double* __restrict__ refs,
                                    long long nref, const int* __restrict__ colgroup,
                                    long long f64_from, double* __restrict__ combined) {
    TSO_FOR_EACH_2D(p, dr, nplanes, dny) {
        RpSide g;
        g.plane = src + p * ny * nx;
        g.refs = refs + p * nref;
        g.colgroup = colgroup;
        g.wdq = wdq;
        g.dnu = dqv[DQ_DO_NOT_USE];
        g.ny = ny;
        g.nx = nx;
        g.dny = dny;
        g.dnx = dnx;
        g.row0 = row0;
        g.col0 = col0;
        g.nrows_full = nrows_full;
        g.fast = fast;
        g.slow = slow;
        g.row = row0 + dr;
        g.half = (length + (1 - length % 2)) / 2;  // L rounded up to odd, halved
        g.length = length;
        double side[2];
        for (int k = 0; k < 2; ++k) {
            g.lo = k == 0 ? 0 : ncols_full - 4;
            side[k] = p >= f64_from ? rp_side_median<double>(g) : rp_side_median<float>(g);
        }
        combined[p * dny + dr] = rp_combine_with_nans(side[0], side[1]);
    }
}

// The corrected planes: out = float32(float64(x) - ref[column group]) without side pixels;
// with them, g = float64(x) - ref (rounded to float32 on the float32 buffer) and
// out = float32(g - side_gain * combined[row]). correct == 0 copies (no reference pixel);
// keep_zero (ZEROFRAME) writes 0.0 where the input is 0.0. One index per pixel of every plane.
TSO_KERNEL void tso_rp_apply(const float* __restrict__ src, float* __restrict__ out,
                             long long nplanes, long long ny, long long nx, int fast, int slow,
                             const double* __restrict__ refs, long long nref,
                             const int* __restrict__ colgroup,
                             const double* __restrict__ combined, long long dny, int use_side,
                             double side_gain, long long f64_from, int correct,
                             int keep_zero) {
    TSO_FOR_EACH_3D(p, r, c, nplanes, ny, nx) {  // plane, DMS row and column
        const long long i = (p * ny + r) * nx + c;
        float x = src[i];
        float o = x;
        if (correct) {
            long long dr, dc;
            rp_detector_pos(r, c, ny, nx, fast, slow, &dr, &dc);
            double g = (double)x - refs[p * nref + colgroup[dc]];
            if (use_side) {
                if (p < f64_from) g = (double)(float)g;
                o = (float)(g - side_gain * combined[p * dny + dr]);
            } else {
                o = (float)g;
            }
        }
        if (keep_zero && x == 0.0f) o = 0.0f;
        out[i] = o;
    }
}

// Check hook for the tests (tests/test_kernels_refpix.py), not used by the launcher: rp_sum
// of the values x[start[a] .. start[a+1]) in float (f64 == 0) or double, in runs of `chunk`
// values (chunk <= 0: one run), against np.add.reduce / np.sum(dtype=np.float64).
TSO_KERNEL void tso_rp_sum_check(const float* __restrict__ x, const long long* __restrict__ start,
                                 long long narrays, long long chunk, int f64,
                                 double* __restrict__ out) {
    TSO_FOR_EACH(a, narrays) {
        long long n = start[a + 1] - start[a];
        long long c = (chunk > 0 && chunk < n) ? chunk : n;
        const float* v = x + start[a];
        out[a] = f64 ? rp_sum<double>(v, n, c, 0, 0.0) : (double)rp_sum<float>(v, n, c, 0, 0.0f);
    }
}
