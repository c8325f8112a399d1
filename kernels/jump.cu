// Jump detection (NIR two-point differences): tsogpu/algorithms/jump_fast.py (the tuned path of
// the specification tsogpu/algorithms/jump.py) detect_jumps, which
// mirrors stcal 1.20 jump/jump.py detect_jumps_data + jump/twopoint_difference.py find_crs as
// jwst 3.0 runs them. Launched by tsogpu/launchers/jump.py in this order:
//
//   tso_jp_plane_all      whole-plane tests (all_dnu_planes, the sigma-clip plane test)
//   tso_jp_pixel_setup    bad gain -> PIXELDQ, rn_e**2 / nframes
//   tso_jp_diffs          float32 first differences, NaN where SAT or DNU
//   tso_jp_median         per-pixel nanmedian of the differences and sigma
//   then one path:  tso_jp_sigclip_bounds + tso_jp_sigclip_flag (+ tso_jp_plane_reset)
//                   | tso_jp_single | tso_jp_iterative
//   tso_jp_count_jumps    PRIMECRS numerator per pixel
//   tso_jp_seeds + tso_jp_neighbours   4-neighbour flagging (two launches: seeds first)
//   tso_jp_after_jumps    after-jump flagging
//   tso_jp_cleanup        JUMP removed where DNU, then where SAT, is also set
//
// Layouts: data/groupdq (nints, ngroups, npix), differences (nints, nd, npix) with
// nd = ngroups - 1 and npix = ny * nx; sample (i, g, p) of groupdq is (i * ngroups + g) * npix
// + p, difference (i, d, p) is (i * nd + d) * npix + p and belongs to group d + 1.
#include "common.cuh"
#include "jump.cuh"

// One index per sample of groupdq (nplanes * npix; on the host one per plane). out[plane]
// must be 1 before the launch; a sample lacking the bits clears its plane (every writer
// stores the same 0, so the result does not depend on the order). with_jump == 0:
// jump.all_dnu_planes (DNU in every pixel); with_jump != 0: the sigma-clip plane test of
// jump_fast._flag_sigma_clip (JUMP or DNU everywhere).
TSO_KERNEL void tso_jp_plane_all(const unsigned char* __restrict__ gdq,
                                 unsigned char* __restrict__ out, long long npix,
                                 long long with_jump, long long n,
                                 const unsigned int* __restrict__ dqv) {
    unsigned int bits = dqv[DQ_DO_NOT_USE] | (with_jump ? dqv[DQ_JUMP_DET] : 0u);
#if defined(TSO_DEVICE)
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        if ((gdq[pl * npix + p] & bits) == 0) out[pl] = 0;
    }
#else
    // the host: one plane an index, read up to its first sample lacking the bits (most
    // planes: the first sample), and no two threads storing into the same byte of out
    TSO_FOR_EACH(pl, tso_rows_of(n, npix)) {
        const unsigned char* plane = gdq + pl * npix;
        for (long long p = 0; p < npix; ++p) {
            if ((plane[p] & bits) == 0) {
                out[pl] = 0;
                break;
            }
        }
    }
#endif
}

// One index per pixel (detect_jumps): PIXELDQ |= NO_GAIN_VALUE | DO_NOT_USE where gain <= 0 or
// NaN; rn2_nf = float64(float32(rn_e)**2) / divisor with rn_e = float32(readnoise * gain) and
// divisor = 0.5 * (2.0 * nframes) (jump_fast._two_point).
TSO_KERNEL void tso_jp_pixel_setup(const float* __restrict__ gain,
                                   const float* __restrict__ readnoise,
                                   unsigned int* __restrict__ pdq, double* __restrict__ rn2_nf,
                                   double divisor, long long npix,
                                   const unsigned int* __restrict__ dqv) {
    TSO_FOR_EACH(p, npix) {
        float g = gain[p];
        if (g <= 0.0f || isnan(g)) pdq[p] |= dqv[DQ_NO_GAIN_VALUE] | dqv[DQ_DO_NOT_USE];
        float rn_e = readnoise[p] * g;
        float rn2 = rn_e * rn_e;
        rn2_nf[p] = (double)rn2 / divisor;
    }
}

// One index per difference (i, d, p) (n = nints * nd * npix): data_e = float32(data * gain),
// NaN where GROUPDQ has SAT or DNU, then np.diff along groups in float32 (jump_fast._two_point's
// diffs32).
TSO_KERNEL void tso_jp_diffs(const float* __restrict__ data, const unsigned char* __restrict__ gdq,
                             const float* __restrict__ gain, float* __restrict__ diffs,
                             long long ngroups, long long npix, long long n,
                             const unsigned int* __restrict__ dqv) {
    unsigned int sd = dqv[DQ_SATURATED] | dqv[DQ_DO_NOT_USE];
    long long nd = ngroups - 1;
    TSO_FOR_EACH_3D(i, d, p, tso_rows_of(n, nd * npix), nd, npix) {
        long long j = (i * nd + d) * npix + p;
        long long a = (i * ngroups + d) * npix + p;  // group d; group d+1 is a + npix
        float g = gain[p];
        float x0 = (gdq[a] & sd) ? TSO_NANF : data[a] * g;
        float x1 = (gdq[a + npix] & sd) ? TSO_NANF : data[a + npix] * g;
        diffs[j] = x1 - x0;
    }
}

// One index per pixel of the batch [p0, p0 + nb), in runs (jump_fast._two_point): median_diffs =
// jump_fast._nanmedian(diffs32) over the nvals = nints * nd differences of the pixel (the non-NaN
// ones packed into scratch, nvals floats per pixel, TSO_SCRATCH_AT), sigma = jump_fast._sigma; only
// for the pixels with want[p] != 0 (jump_fast._nanmedian_at), the others are left as they are.
TSO_KERNEL void tso_jp_median(const float* __restrict__ diffs, const double* __restrict__ rn2_nf,
                              const unsigned char* __restrict__ want, double* __restrict__ median,
                              double* __restrict__ sigma, long long nvals, long long npix,
                              long long p0, long long nb, float* __restrict__ scratch) {
    const long long st = TSO_SCRATCH_STRIDE(nb);
    TSO_FOR_EACH_RUN(t0, t1, nb) {
        long long count[TSO_RUN];
        int any = 0;
        for (long long t = t0; t < t1; ++t) {
            count[t - t0] = 0;
            any |= want[p0 + t] != 0;
        }
        if (!any) continue;
        for (long long r = 0; r < nvals; ++r) {
            for (long long t = t0; t < t1; ++t) {
                float v = diffs[r * npix + p0 + t];
                if (want[p0 + t] && !isnan(v)) {
                    scratch[TSO_SCRATCH_AT(t, nb, nvals) + count[t - t0] * st] = v;
                    count[t - t0]++;
                }
            }
        }
        for (long long t = t0; t < t1; ++t) {
            long long p = p0 + t;
            if (!want[p]) continue;
            float* buf = scratch + TSO_SCRATCH_AT(t, nb, nvals);
            double med = jp_median_packed(buf, st, count[t - t0]);
            median[p] = med;
            sigma[p] = jp_sigma(med, rn2_nf[p]);
        }
    }
}

// One index per column of the batch [c0, c0 + nb), in runs (jump_fast._flag_sigma_clip, astropy
// sigma_clip along axis 0): the differences seen as an (nrows, ncols) array, column c = its values
// diffs[r * ncols + c] in row order: only_use_ints -> (nints, nd * npix), one clip per
// (difference, pixel) over integrations; else (nints * nd, npix), one clip per pixel over
// (integration, difference). The finite values are packed into scratch (nrows floats per
// thread, TSO_SCRATCH_AT) and clipped by jp_sigclip_bounds_fast; a column it is unsure of
// (a value within JP_SIGCLIP_TOL of a bound: ties, constant columns) is packed again and
// clipped by jp_sigclip_bounds, astropy's exact arithmetic. lo/hi: the final bounds, which
// decide every value as astropy's would (the NumPy path's _sigma_clip_mask argument).
//
// memo: a column's first iteration does not depend on nsigma (its median and std; JpClipStats,
// kept in stats[c] by a launch on the same differences, stats[c].kept != 0 once kept): where
// it clips nothing at this nsigma, its bounds are final and jp_sigclip_from_stats gives them
// without reading the column (a sweep of rejection thresholds).
TSO_KERNEL void tso_jp_sigclip_bounds(const float* __restrict__ diffs, double* __restrict__ lo,
                                      double* __restrict__ hi, long long nrows, long long ncols,
                                      double nsigma, long long maxiters, long long c0,
                                      long long nb, float* __restrict__ scratch,
                                      JpClipStats* __restrict__ stats, int memo) {
    const long long st = TSO_SCRATCH_STRIDE(nb);
    TSO_FOR_EACH_RUN(t0, t1, nb) {
        long long count[TSO_RUN];
        bool done[TSO_RUN], any = false;
        for (long long t = t0; t < t1; ++t) {
            long long c = c0 + t;
            count[t - t0] = 0;
            done[t - t0] = memo && stats[c].kept &&
                           jp_sigclip_from_stats(&stats[c], nsigma, &lo[c], &hi[c]);
            any |= !done[t - t0];
        }
        if (!any) continue;
        for (long long r = 0; r < nrows; ++r) {
            for (long long t = t0; t < t1; ++t) {
                float v = diffs[r * ncols + c0 + t];
                if (!done[t - t0] && jp_finitef(v)) {
                    scratch[TSO_SCRATCH_AT(t, nb, nrows) + count[t - t0] * st] = v;
                    count[t - t0]++;
                }
            }
        }
        for (long long t = t0; t < t1; ++t) {
            if (done[t - t0]) continue;
            double l, h;
            float* buf = scratch + TSO_SCRATCH_AT(t, nb, nrows);
            const float* col = diffs + c0 + t;
            JpClipStats* keep = (memo && !stats[c0 + t].kept) ? &stats[c0 + t] : 0;
            if (keep) jp_clip_extremes(buf, st, count[t - t0], keep);
            int unsure =
                jp_sigclip_bounds_fast(buf, st, count[t - t0], nsigma, maxiters, &l, &h, keep);
            if (!unsure && count[t - t0] > 0) unsure = jp_sigclip_near(col, ncols, nrows, l, h);
            if (unsure) {  // the exact clip, on the column packed again
                long long c = 0;
                for (long long r = 0; r < nrows; ++r) {
                    float v = col[r * ncols];
                    if (jp_finitef(v)) buf[st * c++] = v;
                }
                jp_sigclip_bounds(buf, st, c, nsigma, maxiters, &l, &h);
            }
            lo[c0 + t] = l;
            hi[c0 + t] = h;
        }
    }
}

// One index per difference (nints * nd * npix; flat index j = r * ncols + c in either view):
// JUMP on group d + 1 where the finite difference lies outside its column's bounds and the
// group lacks SAT and DNU (clipped & finite & ok in jump_fast._flag_sigma_clip). Difference
// j = (i * nd + d) * npix + p belongs to sample (i * ngroups + d + 1) * npix + p, which is
// j + (i + 1) * npix.
TSO_KERNEL void tso_jp_sigclip_flag(const float* __restrict__ diffs,
                                    const double* __restrict__ lo, const double* __restrict__ hi,
                                    unsigned char* __restrict__ gdq, long long ncols,
                                    long long ngroups, long long npix, long long n,
                                    const unsigned int* __restrict__ dqv) {
    unsigned int sd = dqv[DQ_SATURATED] | dqv[DQ_DO_NOT_USE];
    unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    long long nd = ngroups - 1;
    TSO_FOR_EACH_2D(r, c, tso_rows_of(n, ncols), ncols) {
        long long j = r * ncols + c;
        float v = diffs[j];
        double x = (double)v;
        if (jp_finitef(v) && (x < lo[c] || x > hi[c])) {
            long long g = j + (j / (nd * npix) + 1) * npix;
            if ((gdq[g] & sd) == 0) gdq[g] |= jump;
        }
    }
}

// One index per sample of groupdq (jump_fast._flag_sigma_clip): in planes with planes[plane] != 0,
// a GROUPDQ value of exactly JUMP becomes 0.
TSO_KERNEL void tso_jp_plane_reset(unsigned char* __restrict__ gdq,
                                   const unsigned char* __restrict__ planes, long long npix,
                                   long long n, const unsigned int* __restrict__ dqv) {
    unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        long long s = pl * npix + p;
        if (planes[pl] && gdq[s] == jump) gdq[s] = 0;
    }
}

// One index per difference (jump_fast._two_point, single pass): JUMP on group d + 1 where
// |first_diff - median| / sigma > threshold (float64) and the difference is finite.
TSO_KERNEL void tso_jp_single(const float* __restrict__ diffs, const double* __restrict__ median,
                              const double* __restrict__ sigma, unsigned char* __restrict__ gdq,
                              double threshold, long long ngroups, long long npix, long long n,
                              const unsigned int* __restrict__ dqv) {
    unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    long long nd = ngroups - 1;
    TSO_FOR_EACH_3D(i, d, p, tso_rows_of(n, nd * npix), nd, npix) {
        float v = diffs[(i * nd + d) * npix + p];
        if (jp_ratio(v, median[p], sigma[p]) > threshold && jp_finitef(v)) {
            gdq[(i * ngroups + d + 1) * npix + p] |= jump;
        }
    }
}

// One index per pixel of the batch [p0, p0 + nb), in runs (jump_fast._flag_iterative, stcal
// iterative_jump).
// Scratch: 2 * nvals floats per thread (TSO_SCRATCH_AT): fda = |diffs| in (int, diff) order,
// NaN where unusable or already flagged, and the selection buffer of jp_med_first_diffs.
// Per pass (at most nvals = ndiffs passes): sigma from the current median, ratio =
// |float32(fda - median)| / sigma, peak = nanmax of the ratios over every (int, diff); the
// candidates are the ratios equal to the peak in integrations whose max ratio passes the
// threshold of the pixel's usable count (jump_fast._cr_locs). An integration holding the peak has
// max ratio == peak, so that test is the threshold test of the peak itself. No candidate: the
// pixel is done (stcal drops it). Else they get JUMP on group d + 1, are set to NaN in fda,
// and the median is recomputed and stored in float32 (stcal's median_diffs_iter). The first
// pass uses the float64 median.
TSO_KERNEL void tso_jp_iterative(const float* __restrict__ diffs, unsigned char* __restrict__ gdq,
                                 const double* __restrict__ rn2_nf, double thr, double thr4,
                                 double thr3, long long ngroups, long long nvals, long long npix,
                                 long long p0, long long nb, float* __restrict__ scratch,
                                 const unsigned int* __restrict__ dqv) {
    unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    long long nd = ngroups - 1;
    const long long st = TSO_SCRATCH_STRIDE(nb);
    TSO_FOR_EACH_RUN(t0, t1, nb) {
        for (long long r = 0; r < nvals; ++r) {
            for (long long t = t0; t < t1; ++t) {
                scratch[TSO_SCRATCH_AT(t, nb, nvals) + r * st] = fabsf(diffs[r * npix + p0 + t]);
            }
        }
        for (long long t = t0; t < t1; ++t) {
            long long p = p0 + t;
            float* fda = scratch + TSO_SCRATCH_AT(t, nb, nvals);
            float* sel = scratch + nvals * nb + TSO_SCRATCH_AT(t, nb, nvals);
            double rn2 = rn2_nf[p];
            double med = jp_med_first_diffs(fda, sel, st, nvals);
            for (long long pass = 0; pass < nvals; ++pass) {
                double sig = jp_sigma(med, rn2);
                long long usable = 0;
                double peak = TSO_NAN;
                for (long long r = 0; r < nvals; ++r) {
                    float v = fda[r * st];
                    if (!isnan(v)) usable++;
                    double ratio = jp_iter_ratio(v, med, sig);
                    if (!isnan(ratio) && (isnan(peak) || ratio > peak)) peak = ratio;  // np.fmax
                }
                bool cr = (usable >= 4 && peak > thr) || (usable == 3 && peak > thr4) ||
                          (usable == 2 && peak > thr3);
                if (!cr) break;
                for (long long r = 0; r < nvals; ++r) {
                    float v = fda[r * st];
                    if (jp_iter_ratio(v, med, sig) == peak) {
                        gdq[((r / nd) * ngroups + r % nd + 1) * npix + p] |= jump;
                        fda[r * st] = TSO_NANF;
                    }
                }
                med = (double)(float)jp_med_first_diffs(fda, sel, st, nvals);
            }
        }
    }
}

// One index per pixel, in runs: the number of samples (all integrations and groups) with JUMP,
// int32 (jump_fast._two_point's crs_per_pixel).
TSO_KERNEL void tso_jp_count_jumps(const unsigned char* __restrict__ gdq, int* __restrict__ out,
                                   long long nplanes, long long npix,
                                   const unsigned int* __restrict__ dqv) {
    unsigned int jump = dqv[DQ_JUMP_DET];
    TSO_FOR_EACH_RUN(p0, p1, npix) {
        int c[TSO_RUN];
        for (long long p = p0; p < p1; ++p) c[p - p0] = 0;
        for (long long k = 0; k < nplanes; ++k) {
            for (long long p = p0; p < p1; ++p) c[p - p0] += (gdq[k * npix + p] & jump) != 0;
        }
        for (long long p = p0; p < p1; ++p) out[p] = c[p - p0];
    }
}

// One index per difference (jump_fast._flag_neighbours, first half): seed = min < ratio < max with
// ratio = |first_diff - median| / sigma (float64) and JUMP on group d + 1 (as detected, before
// any neighbour flag: the seeds of every plane are taken in this launch, before
// tso_jp_neighbours writes).
TSO_KERNEL void tso_jp_seeds(const float* __restrict__ diffs, const double* __restrict__ median,
                             const double* __restrict__ sigma,
                             const unsigned char* __restrict__ gdq, unsigned char* __restrict__ seed,
                             double min_ratio, double max_ratio, long long ngroups, long long npix,
                             long long n, const unsigned int* __restrict__ dqv) {
    unsigned int jump = dqv[DQ_JUMP_DET];
    long long nd = ngroups - 1;
    TSO_FOR_EACH_3D(i, d, p, tso_rows_of(n, nd * npix), nd, npix) {
        long long j = (i * nd + d) * npix + p;
        long long g = (i * ngroups + d + 1) * npix + p;
        bool s = false;
        if (gdq[g] & jump) {  // the ratio only where it can matter (most groups have no JUMP)
            double ratio = jp_ratio(diffs[j], median[p], sigma[p]);
            s = (ratio < max_ratio) && (ratio > min_ratio);
        }
        seed[j] = s;
    }
}

// One index per difference (jump_fast._flag_neighbours, second half): JUMP on group d + 1 where the
// pixel or one of its 4 neighbours in the same plane is a seed and the group lacks SAT and DNU.
// Difference plane k = i * nd + d; its sample is j + (i + 1) * npix (see tso_jp_sigclip_flag).
TSO_KERNEL void tso_jp_neighbours(const unsigned char* __restrict__ seed,
                                  unsigned char* __restrict__ gdq, long long ngroups,
                                  long long ny, long long nx, long long n,
                                  const unsigned int* __restrict__ dqv) {
    unsigned int sd = dqv[DQ_SATURATED] | dqv[DQ_DO_NOT_USE];
    unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    long long npix = ny * nx;
    long long nd = ngroups - 1;
    TSO_FOR_EACH_3D(k, y, x, tso_rows_of(n, npix), ny, nx) {
        long long j = k * npix + y * nx + x;
        bool flag = seed[j] || (y > 0 && seed[j - nx]) || (y < ny - 1 && seed[j + nx]) ||
                    (x > 0 && seed[j - 1]) || (x < nx - 1 && seed[j + 1]);
        if (flag) {
            long long g = j + (k / nd + 1) * npix;
            if ((gdq[g] & sd) == 0) gdq[g] |= jump;
        }
    }
}

// One index per (integration, pixel), in runs (jump_fast._flag_after_jumps, stcal transient_jumps):
// a group g >= 1 with JUMP (after neighbour flagging) whose (first_diff[g-1] - median) * 1.0 >= e1
// (float64 against the float32 e1) flags groups g .. g + m1 (m1 = min(n1, ngroups - 2), the
// extent of jump_fast._propagate), likewise e2 / m2; the flagged groups get JUMP unless SAT or DNU.
// Groups are visited in order and a group's own JUMP bit is read before it is written, so
// every test sees the JUMP bits as they were before this flagging.
TSO_KERNEL void tso_jp_after_jumps(const float* __restrict__ diffs,
                                   const double* __restrict__ median,
                                   unsigned char* __restrict__ gdq, double e1, long long m1,
                                   double e2, long long m2, long long ngroups, long long npix,
                                   long long n, const unsigned int* __restrict__ dqv) {
    unsigned int sd = dqv[DQ_SATURATED] | dqv[DQ_DO_NOT_USE];
    unsigned char jump = (unsigned char)dqv[DQ_JUMP_DET];
    long long nd = ngroups - 1;
    TSO_FOR_EACH_2D_RUN(i, p0, p1, tso_rows_of(n, npix), npix) {
        long long last1[TSO_RUN], last2[TSO_RUN];  // latest group that started a propagation
        for (long long p = p0; p < p1; ++p) last1[p - p0] = last2[p - p0] = -1;
        for (long long g = 1; g < ngroups; ++g) {
            for (long long p = p0; p < p1; ++p) {
                long long k = (i * ngroups + g) * npix + p;
                unsigned char v = gdq[k];
                if (v & jump) {
                    double ejump = ((double)diffs[(i * nd + g - 1) * npix + p] - median[p]) * 1.0;
                    if (ejump >= e1) last1[p - p0] = g;
                    if (ejump >= e2) last2[p - p0] = g;
                }
                bool big = last1[p - p0] >= 0 && g - last1[p - p0] <= m1;
                bool verybig = last2[p - p0] >= 0 && g - last2[p - p0] <= m2;
                if ((big || verybig) && (v & sd) == 0) gdq[k] = v | jump;
            }
        }
    }
}

// One index per sample of groupdq (detect_jumps): JUMP removed where DNU is also set, then
// where SAT is also set.
TSO_KERNEL void tso_jp_cleanup(unsigned char* __restrict__ gdq, long long n,
                               const unsigned int* __restrict__ dqv) {
    unsigned int jump = dqv[DQ_JUMP_DET], dnu = dqv[DQ_DO_NOT_USE], sat = dqv[DQ_SATURATED];
    TSO_FOR_EACH(s, n) {
        unsigned int v = gdq[s];
        if ((v & (jump | dnu)) == (jump | dnu)) v ^= jump;
        if ((v & (jump | sat)) == (jump | sat)) v ^= jump;
        gdq[s] = (unsigned char)v;
    }
}
