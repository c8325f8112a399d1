// saturation (tsogpu/algorithms/saturation.py: flag_saturation, and the options
// scale_thresholds, extend_saturation, saturation_map, apply_saturation_map); launchers in
// tsogpu/launchers/saturation.py.
//
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. The index of each
// kernel is said in its comment; "element" = one (integration, group, pixel) sample.
#include "common.cuh"

// ---- per-element math of flag_saturation ----------------------------------------------

// 65536.0f: the threshold of NO_SAT_CHECK / NaN-threshold pixels (ATOD_LIMIT + 1).
#define PJ_SAT_NEVER 65536.0f

// Step 1 for one pixel: the threshold used, whether the pixel is unchecked, and the
// reference DQ with NO_SAT_CHECK added where the threshold is NaN.
TSO_HD float pj_sat_threshold(float sat_thresh, unsigned int sat_dq, const unsigned int* dqv,
                              unsigned char* no_check, unsigned int* new_sat_dq) {
    const unsigned int nsc = dqv[DQ_NO_SAT_CHECK];
    const int nan_thresh = isnan(sat_thresh) ? 1 : 0;
    const int unchecked = ((sat_dq & nsc) != 0u) || nan_thresh;
    *no_check = (unsigned char)unchecked;
    *new_sat_dq = nan_thresh ? (sat_dq | nsc) : sat_dq;
    return unchecked ? PJ_SAT_NEVER : sat_thresh;
}

// grow(): whether any pixel of the (2*half+1)^2 box around (y, x), clipped at the image
// edges, has one of ``bits`` in ``plane`` (ny x nx). half = 0 tests the pixel itself.
TSO_HD int pj_box_any(const unsigned char* plane, long long y, long long x, long long ny,
                      long long nx, long long half, unsigned int bits) {
    const long long y0 = y - half < 0 ? 0 : y - half;
    const long long y1 = y + half > ny - 1 ? ny - 1 : y + half;
    const long long x0 = x - half < 0 ? 0 : x - half;
    const long long x1 = x + half > nx - 1 ? nx - 1 : x + half;
    // the OR of the box, tested once (no branch per value); the box is at most 2*half+1 wide
    const int h = (int)(y1 - y0), w = (int)(x1 - x0);
    const unsigned char* row = plane + y0 * nx + x0;
    unsigned int any = 0;
    for (int dy = 0; dy <= h; ++dy, row += nx) {
        for (int dx = 0; dx <= w; ++dx) any |= row[dx];
    }
    return (any & bits) != 0u;
}

#if !defined(TSO_DEVICE)
// The host's saturation growth of row y, columns [xa, xb), of one plane: out = flags, with
// ``bits`` added where pj_box_any(flags, y, x, ..., half, bits). The box's rows are ORed into
// a buffer a block of columns at a time (one pass per row, which the compiler vectorizes),
// then each pixel ORs its box's columns of it; boxes wider than the buffer's margin go
// pixel by pixel.
inline void pj_grow_row(const unsigned char* flags, unsigned char* out, long long y,
                        long long xa, long long xb, long long ny, long long nx, long long half,
                        unsigned int bits) {
    enum { BLOCK = 1024, MARGIN = 64 };
    if (half > MARGIN) {
        for (long long x = xa; x < xb; ++x) {
            unsigned int f = flags[y * nx + x];
            if (pj_box_any(flags, y, x, ny, nx, half, bits)) f |= bits;
            out[y * nx + x] = (unsigned char)f;
        }
        return;
    }
    const long long y0 = y - half < 0 ? 0 : y - half;
    const long long y1 = y + half > ny - 1 ? ny - 1 : y + half;
    unsigned char vor[BLOCK + 2 * MARGIN];
    for (long long x0 = xa; x0 < xb; x0 += BLOCK) {
        const long long x1 = x0 + BLOCK < xb ? x0 + BLOCK : xb;
        const long long a = x0 - half < 0 ? 0 : x0 - half;  // vor[k] = column a + k
        const long long b = x1 + half > nx ? nx : x1 + half;
        for (long long k = 0; k < b - a; ++k) vor[k] = 0;
        for (long long yy = y0; yy <= y1; ++yy) {
            const unsigned char* row = flags + yy * nx + a;
            for (long long k = 0; k < b - a; ++k) vor[k] |= row[k];
        }
        unsigned int block_any = 0;  // no box of the block has ``bits``: the flags as they are
        for (long long k = 0; k < b - a; ++k) block_any |= vor[k];
        if ((block_any & bits) == 0u) {
            for (long long x = x0; x < x1; ++x) out[y * nx + x] = flags[y * nx + x];
            continue;
        }
        for (long long x = x0; x < x1; ++x) {
            const long long lo = x - half < a ? a : x - half;
            const long long hi = x + half > b - 1 ? b - 1 : x + half;
            unsigned int any = 0;
            for (long long k = lo; k <= hi; ++k) any |= vor[k - a];
            unsigned int f = flags[y * nx + x];
            if (any & bits) f |= bits;
            out[y * nx + x] = (unsigned char)f;
        }
    }
}
#endif

// Step 3 for one (integration, group g < ngroups-1, pixel): float64 ``data >= thresh * dil``
// (dil = 1.0 for unchecked pixels), the group neither SATURATED nor DO_NOT_USE after step 2,
// and the next group SATURATED.
TSO_HD int pj_sat_partial(float data, float thresh, int no_check, double dilution,
                          unsigned char flags_g, unsigned char flags_next,
                          const unsigned int* dqv) {
    const unsigned int sat = dqv[DQ_SATURATED];
    const unsigned int dnu = dqv[DQ_DO_NOT_USE];
    const double dil = no_check ? 1.0 : dilution;
    return ((double)data >= (double)thresh * dil) && (((unsigned int)flags_g & (sat | dnu)) == 0u)
           && (((unsigned int)flags_next & sat) != 0u);
}

// Step 4 (the group-2 test) for one (integration, pixel); stcal's order:
// float64(float32(d0 - bias)) / mean_read0 * last_read2 + float64(bias) < float64(thresh), and
// float32 (d1 - d0) > float32(thresh - d0) / float32(nreads1).
TSO_HD int pj_sat_group2(float d0, float d1, float thresh, float bias, double mean_read0,
                         double last_read2, float nreads1) {
    const float scigp1 = d0 - bias;
    double predicted = (double)scigp1 / mean_read0 * last_read2;
    predicted = predicted + (double)bias;
    if (!(predicted < (double)thresh)) return 0;
    const float step = d1 - d0;
    const float room = (thresh - d0) / nreads1;
    return step > room;
}

// ---- flag_saturation ----------------------------------------------------------------------

// Step 1 and the final pixeldq: per pixel the threshold used, the no-check mask, and
// pixeldq | sat_dq (with NO_SAT_CHECK added for NaN thresholds). One index per pixel.
TSO_KERNEL void tso_pj_sat_refs(const float* __restrict__ sat_thresh,
                                const unsigned int* __restrict__ sat_dq,
                                const unsigned int* __restrict__ pixeldq,
                                const unsigned int* __restrict__ dqv, float* __restrict__ thresh,
                                unsigned char* __restrict__ no_check,
                                unsigned int* __restrict__ pixeldq_out, long long npix) {
    TSO_FOR_EACH(p, npix) {
        unsigned int new_sat_dq;
        thresh[p] = pj_sat_threshold(sat_thresh[p], sat_dq[p], dqv, &no_check[p], &new_sat_dq);
        pixeldq_out[p] = pixeldq[p] | new_sat_dq;
    }
}

// Step 2 before the growth: groups 0..ngroups-1 in order with the running ``ever_sat``
// (data >= thresh, float32); flags = groupdq | SATURATED where ever_sat | AD_FLOOR|DO_NOT_USE
// where data <= 0. One item per integration and run of pixels (n = nints * npix).
TSO_KERNEL void tso_pj_sat_forward(const float* __restrict__ data,
                                   const unsigned char* __restrict__ groupdq,
                                   const float* __restrict__ thresh,
                                   const unsigned int* __restrict__ dqv,
                                   unsigned char* __restrict__ flags, long long ngroups,
                                   long long npix, long long n) {
    const unsigned int sat = dqv[DQ_SATURATED];
    const unsigned int floor_bits = dqv[DQ_AD_FLOOR] | dqv[DQ_DO_NOT_USE];
    TSO_FOR_EACH_2D_RUN(it, p0, p1, tso_rows_of(n, npix), npix) {
        const long long base = it * ngroups * npix;
        int ever_sat[TSO_RUN];
        for (long long p = p0; p < p1; ++p) ever_sat[p - p0] = 0;
        for (long long g = 0; g < ngroups; ++g) {
            for (long long p = p0; p < p1; ++p) {
                const long long e = base + g * npix + p;
                const float v = data[e];
                ever_sat[p - p0] = ever_sat[p - p0] || (v >= thresh[p]);
                unsigned int f = groupdq[e];
                if (ever_sat[p - p0]) f |= sat;
                if (v <= 0.0f) f |= floor_bits;
                flags[e] = (unsigned char)f;
            }
        }
    }
}

// Step 2's growth, a separate launch on the flags of tso_pj_sat_forward: gdq = flags, plus
// SATURATED where any pixel of the box in the same plane has SATURATED. One index per element.
TSO_KERNEL void tso_pj_sat_grow_sat(const unsigned char* __restrict__ flags,
                                    const unsigned int* __restrict__ dqv,
                                    unsigned char* __restrict__ gdq, long long ny, long long nx,
                                    long long half, long long n) {
    const long long npix = ny * nx;
    const unsigned int sat = dqv[DQ_SATURATED];
#if defined(TSO_DEVICE)
    TSO_FOR_EACH_3D(pl, y, x, tso_rows_of(n, npix), ny, nx) {
        const long long i = pl * npix + y * nx + x;
        unsigned int f = flags[i];
        if (pj_box_any(flags + pl * npix, y, x, ny, nx, half, sat)) f |= sat;
        gdq[i] = (unsigned char)f;
    }
#else
    // the host: a thread's rows, each box's OR as the OR over the columns of the OR over
    // its rows (pj_grow_row); the same ORs as pj_box_any's, so the same flags
    TSO_PARALLEL
    for (TsoRows r = tso_rows_begin(tso_rows_of(n, npix), ny, nx); r.i < r.end;
         tso_rows_next(&r)) {
        const long long at = r.x0 * npix;
        pj_grow_row(flags + at, gdq + at, r.x1, r.x2, r.x2end, ny, nx, half, sat);
    }
#endif
}

// Step 3 before the growth: partial[i] = 1 where group g (< ngroups-1, dilution != 1) is
// partially saturated (pj_sat_partial), else 0; reads the step-2 flags only, so the groups are
// independent. ``dilution`` and ``active`` per group. One index per element.
TSO_KERNEL void tso_pj_sat_partial(const float* __restrict__ data,
                                   const unsigned char* __restrict__ gdq,
                                   const float* __restrict__ thresh,
                                   const unsigned char* __restrict__ no_check,
                                   const double* __restrict__ dilution,
                                   const unsigned char* __restrict__ active,
                                   const unsigned int* __restrict__ dqv,
                                   unsigned char* __restrict__ partial, long long ngroups,
                                   long long npix, long long n) {
    TSO_FOR_EACH_3D(it, g, p, tso_rows_of(n, ngroups * npix), ngroups, npix) {
        const long long i = (it * ngroups + g) * npix + p;
        int hit = 0;
        if (g < ngroups - 1 && active[g]) {
            hit = pj_sat_partial(data[i], thresh[p], no_check[p], dilution[g], gdq[i],
                                 gdq[i + npix], dqv);
        }
        partial[i] = (unsigned char)hit;
    }
}

// Step 3's growth, a separate launch: gdq |= DO_NOT_USE where any pixel of the box in the
// same plane of ``partial`` is set. Reads gdq[i] only at its own index (in place).
// One index per element.
TSO_KERNEL void tso_pj_sat_grow_partial(const unsigned char* __restrict__ partial,
                                        const unsigned int* __restrict__ dqv, unsigned char* gdq,
                                        long long ny, long long nx, long long half, long long n) {
    const long long npix = ny * nx;
    TSO_FOR_EACH_3D(pl, y, x, tso_rows_of(n, npix), ny, nx) {
        const long long i = pl * npix + y * nx + x;
        if (pj_box_any(partial + pl * npix, y, x, ny, nx, half, 1u)) {
            gdq[i] = (unsigned char)(gdq[i] | dqv[DQ_DO_NOT_USE]);
        }
    }
}

// Step 4 (ngroups > 2): group 1 gets DO_NOT_USE where pj_sat_group2 holds, group 2 is
// SATURATED and group 1 is not (not grown). One index per (integration, pixel).
TSO_KERNEL void tso_pj_sat_group2(const float* __restrict__ data, unsigned char* __restrict__ gdq,
                                  const float* __restrict__ thresh,
                                  const float* __restrict__ bias,
                                  const unsigned int* __restrict__ dqv, double mean_read0,
                                  double last_read2, float nreads1, long long ngroups,
                                  long long npix, long long n) {
    TSO_FOR_EACH(i, n) {
        const long long p = i % npix;
        const long long e0 = (i / npix) * ngroups * npix + p;
        const unsigned int sat = dqv[DQ_SATURATED];
        const unsigned int g1 = gdq[e0 + npix];
        const unsigned int g2 = gdq[e0 + 2 * npix];
        if ((g2 & sat) != 0u && (g1 & sat) == 0u
            && pj_sat_group2(data[e0], data[e0 + npix], thresh[p], bias[p], mean_read0,
                             last_read2, nreads1)) {
            gdq[e0 + npix] = (unsigned char)(g1 | dqv[DQ_DO_NOT_USE]);
        }
    }
}

// Step 5: ZEROFRAME values become 0.0 where zf <= 0, or where any pixel of the box has
// zf >= thresh (the growth reads only the input, so it needs no separate launch).
// One index per (integration, pixel).
TSO_KERNEL void tso_pj_sat_zeroframe(const float* __restrict__ zf,
                                     const float* __restrict__ thresh, float* __restrict__ out,
                                     long long ny, long long nx, long long half, long long n) {
    const long long npix = ny * nx;
    TSO_FOR_EACH_3D(pl, y, x, tso_rows_of(n, npix), ny, nx) {
        const long long p = y * nx + x;
        const float* plane = zf + pl * npix;
        int bad = plane[p] <= 0.0f;
        const long long y0 = y - half < 0 ? 0 : y - half;
        const long long y1 = y + half > ny - 1 ? ny - 1 : y + half;
        const long long x0 = x - half < 0 ? 0 : x - half;
        const long long x1 = x + half > nx - 1 ? nx - 1 : x + half;
        for (long long yy = y0; yy <= y1 && !bad; ++yy) {
            for (long long xx = x0; xx <= x1; ++xx) {
                if (plane[yy * nx + xx] >= thresh[yy * nx + xx]) {
                    bad = 1;
                    break;
                }
            }
        }
        out[pl * npix + p] = bad ? 0.0f : plane[p];
    }
}

// ---- options beyond jwst, off by default (docs/options.md): integer and bit work only,
// besides one float64 multiply rounded once to float32 --------------------------------------

// saturation.scale_thresholds: float32(float64(t) * fraction). One index per pixel.
TSO_KERNEL void tso_opt_scale_thresh(const float* __restrict__ in, float* __restrict__ out,
                                     double fraction, long long n) {
    TSO_FOR_EACH(i, n) { out[i] = (float)((double)in[i] * fraction); }
}

// saturation.first_saturated_group: the first group with SATURATED, ngroups where none.
// One index per (integration, pixel); i = int * npix + p, first[i] int32.
TSO_KERNEL void tso_opt_first_sat(const unsigned char* __restrict__ gdq,
                                  const unsigned int* __restrict__ dqv, int* __restrict__ first,
                                  long long ngroups, long long npix, long long n) {
    unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    TSO_FOR_EACH(i, n) {
        long long it = i / npix, p = i % npix;
        const unsigned char* g0 = gdq + it * ngroups * npix + p;
        int f = (int)ngroups;
        for (long long g = 0; g < ngroups; ++g) {
            if (g0[g * npix] & sat) {
                f = (int)g;
                break;
            }
        }
        first[i] = f;
    }
}

// saturation.column_minimum: every pixel of a column gets the column's minimum. One index
// per (plane, column) of ``nplanes`` (ny, nx) planes; i = plane * nx + x.
TSO_KERNEL void tso_opt_column_min(const int* __restrict__ in, int* __restrict__ out,
                                   long long ny, long long nx, long long n) {
    TSO_FOR_EACH(i, n) {
        long long plane = i / nx, x = i % nx;
        const int* col = in + plane * ny * nx + x;
        int m = col[0];
        for (long long y = 1; y < ny; ++y) m = col[y * nx] < m ? col[y * nx] : m;
        for (long long y = 0; y < ny; ++y) out[plane * ny * nx + y * nx + x] = m;
    }
}

// saturation.saturation_map before column_minimum: the minimum over integrations of
// first (nints, npix). One index per pixel.
TSO_KERNEL void tso_opt_min_ints(const int* __restrict__ first, int* __restrict__ out,
                                 long long nints, long long npix) {
    TSO_FOR_EACH(p, npix) {
        int m = first[p];
        for (long long it = 1; it < nints; ++it) m = first[it * npix + p] < m ? first[it * npix + p] : m;
        out[p] = m;
    }
}

// saturation.flag_from: groupdq | SATURATED where g >= first - before (where first <
// ngroups; g >= first elsewhere, which flags nothing). ``first`` holds one
// (ny, nx) plane per integration (first_stride = npix) or one for all (first_stride = 0).
// One index per element.
TSO_KERNEL void tso_opt_flag_from(const unsigned char* __restrict__ gdq,
                                  const int* __restrict__ first,
                                  const unsigned int* __restrict__ dqv,
                                  unsigned char* __restrict__ out, int before,
                                  long long first_stride, long long ngroups, long long npix,
                                  long long n) {
    unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    TSO_FOR_EACH(i, n) {
        long long p = i % npix, g = (i / npix) % ngroups, it = i / (npix * ngroups);
        int f = first[it * first_stride + p];
        int start = (long long)f < ngroups ? f - before : f;  // never saturated: nothing
        out[i] = (unsigned char)(gdq[i] | ((long long)start <= g ? sat : (unsigned char)0));
    }
}

