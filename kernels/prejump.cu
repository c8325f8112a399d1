// The simple pre-jump steps and gain_scale; launchers in tsogpu/cuda/prejump.py.
//
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. The index of each
// kernel is said in its comment; "element" = one (integration, group, pixel) sample.
#include "common.cuh"
#include "prejump.cuh"

// ---- generic -------------------------------------------------------------------------------

// group_scale.group_scale / gain_scale.gain_scale: out = in * s, one float32 multiply
// (s = float32(FRMDIVSR / NFRAMES), float32(f) or float32(f**2), rounded on the host).
// One index per element.
TSO_KERNEL void tso_pj_mul_f32(const float* __restrict__ in, float* __restrict__ out, float s,
                               long long n) {
    TSO_FOR_EACH(i, n) { out[i] = in[i] * s; }
}

// pixeldq | reference DQ (dq_init, superbias, dark_current). One index per pixel.
TSO_KERNEL void tso_pj_or_u32(const unsigned int* __restrict__ a,
                              const unsigned int* __restrict__ b, unsigned int* __restrict__ out,
                              long long n) {
    TSO_FOR_EACH(i, n) { out[i] = a[i] | b[i]; }
}

// ---- dq_init (dq_init.py: dq_init) --------------------------------------------------------

// groupdq | uint8(mask & DO_NOT_USE). One index per element.
TSO_KERNEL void tso_pj_dq_init_groups(const unsigned char* __restrict__ groupdq,
                                      const unsigned int* __restrict__ mask,
                                      const unsigned int* __restrict__ dqv,
                                      unsigned char* __restrict__ out, long long npix,
                                      long long n) {
    const unsigned int dnu = dqv[DQ_DO_NOT_USE];
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        out[i] = (unsigned char)(groupdq[i] | (unsigned char)(mask[p] & dnu));
    }
}

// ---- saturation (saturation.py: flag_saturation) ------------------------------------------

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

// ---- superbias (superbias.py: subtract_superbias) -----------------------------------------

// data - bias (NaN bias -> 0.0), float32. One index per element (``npix`` per plane).
TSO_KERNEL void tso_pj_superbias(const float* __restrict__ data, const float* __restrict__ bias,
                                 float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        out[i] = data[i] - (isnan(b) ? 0.0f : b);
    }
}

// ZEROFRAME: exactly-0.0 values stay +0.0, others zf - bias. One index per (integration, pixel).
TSO_KERNEL void tso_pj_superbias_zf(const float* __restrict__ zf, const float* __restrict__ bias,
                                    float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        const float v = zf[i];
        out[i] = (v == 0.0f) ? 0.0f : v - (isnan(b) ? 0.0f : b);
    }
}

// superbias.scale: float32(float64(x) - float64(bias) * float64(scale[plane])), NaN bias ->
// 0.0; one factor per (integration, group) plane. One index per element.
TSO_KERNEL void tso_pj_superbias_scaled(const float* __restrict__ data,
                                        const float* __restrict__ bias,
                                        const float* __restrict__ scale, float* __restrict__ out,
                                        long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        const double scaled = (double)(isnan(b) ? 0.0f : b) * (double)scale[pl];
        out[i] = (float)((double)data[i] - scaled);
    }
}

// ZEROFRAME with superbias.scale: exactly-0.0 values stay +0.0, others as above with one factor
// per integration (its group 0's). One index per (integration, pixel).
TSO_KERNEL void tso_pj_superbias_zf_scaled(const float* __restrict__ zf,
                                           const float* __restrict__ bias,
                                           const float* __restrict__ scale,
                                           float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float b = bias[p];
        const float v = zf[i];
        const double scaled = (double)(isnan(b) ? 0.0f : b) * (double)scale[pl];
        out[i] = (v == 0.0f) ? 0.0f : (float)((double)v - scaled);
    }
}

// ---- linearity (linearity.py) --------------------------------------------------------------

// prepare_coefficients: NO_LIN_CORR in lin_dq -> identity; else any NaN -> identity and
// NO_LIN_CORR; else zero linear term -> identity and NO_LIN_CORR (the NumPy masks applied in
// turn give exactly this). pixeldq_out = pixeldq | lin_dq (| NO_LIN_CORR). One index per pixel.
TSO_KERNEL void tso_pj_lin_prepare(const float* __restrict__ coeffs,
                                   const unsigned int* __restrict__ lin_dq,
                                   const unsigned int* __restrict__ pixeldq,
                                   const unsigned int* __restrict__ dqv,
                                   float* __restrict__ coeffs_out,
                                   unsigned int* __restrict__ pixeldq_out, long long ncoeffs,
                                   long long npix) {
    TSO_FOR_EACH(p, npix) {
        const unsigned int nlc = dqv[DQ_NO_LIN_CORR];
        unsigned int pdq = pixeldq[p] | lin_dq[p];
        int identity = (lin_dq[p] & nlc) != 0u;
        if (!identity) {
            int has_nan = 0;
            for (long long k = 0; k < ncoeffs; ++k) has_nan = has_nan || isnan(coeffs[k * npix + p]);
            if (has_nan || coeffs[npix + p] == 0.0f) {
                identity = 1;
                pdq |= nlc;
            }
        }
        for (long long k = 0; k < ncoeffs; ++k) {
            coeffs_out[k * npix + p] = identity ? (k == 1 ? 1.0f : 0.0f) : coeffs[k * npix + p];
        }
        pixeldq_out[p] = pdq;
    }
}

// _correct_groups: float32 Horner unless SATURATED. One index per element.
TSO_KERNEL void tso_pj_lin_groups(const float* __restrict__ data,
                                  const unsigned char* __restrict__ gdq,
                                  const float* __restrict__ coeffs, long long ncoeffs,
                                  const unsigned int* __restrict__ dqv, float* __restrict__ out,
                                  long long npix, long long n) {
    const unsigned int sat = dqv[DQ_SATURATED];
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float v = data[i];
        out[i] = ((unsigned int)gdq[i] & sat) ? v : pj_horner32(v, coeffs + p, ncoeffs, npix);
    }
}

// _correct_reads (stcal _linearity_correction_tile), read pattern g*nframes + 1 ..
// g*nframes + nframes; ``mean_read`` float64 per group from the host (saturation.mean_reads).
// The unlinearised reads U_j are recomputed (same operations, same bits) in the second sum
// instead of being stored, so no per-thread array is needed. One index per (integration, pixel).
TSO_KERNEL void tso_pj_lin_reads(const float* __restrict__ data,
                                 const unsigned char* __restrict__ gdq,
                                 const float* __restrict__ coeffs, long long ncoeffs,
                                 const float* __restrict__ inv, long long ninv,
                                 const double* __restrict__ mean_read, long long nframes,
                                 const unsigned int* __restrict__ dqv, float* __restrict__ out,
                                 long long ngroups, long long npix, long long n) {
    TSO_FOR_EACH(i, n) {
        const long long p = i % npix;
        const long long base = (i / npix) * ngroups * npix + p;
        const unsigned int sat = dqv[DQ_SATURATED];
        const float* c = coeffs + p;
        const float* ci = inv + p;
        // n_unsat = (groups without SATURATED) - 1, at least 2; last = n_unsat - 1
        long long n_unsat = -1;
        for (long long g = 0; g < ngroups; ++g) n_unsat += ((unsigned int)gdq[base + g * npix] & sat) == 0u;
        if (n_unsat < 2) n_unsat = 2;
        const long long last = n_unsat - 1;
        const float d0 = data[base];
        const float first_lin = ((unsigned int)gdq[base] & sat) ? d0 : pj_horner32(d0, c, ncoeffs, npix);
        const float dl = data[base + last * npix];
        const float last_lin =
            ((unsigned int)gdq[base + last * npix] & sat) ? dl : pj_horner32(dl, c, ncoeffs, npix);
        const double d_reads = mean_read[last] - mean_read[0];
        const double rate = (double)(last_lin - first_lin) / d_reads;
        const double first64 = (double)first_lin;
        const double nreads = (double)nframes;
        for (long long g = 0; g < ngroups; ++g) {
            const long long e = base + g * npix;
            const float v = data[e];
            if ((unsigned int)gdq[e] & sat) {
                out[e] = v;
                continue;
            }
            // predicted = sequential sum of U_j, then / nreads
            double predicted = 0.0;
            for (long long j = 0; j < nframes; ++j) {
                const double since_first = (double)(g * nframes + j + 1) - mean_read[0];
                const double u = pj_horner64(first64 + rate * since_first, ci, ninv, npix);
                predicted = (j == 0) ? u : predicted + u;
            }
            predicted = predicted / nreads;
            const double offset = (double)v - predicted;
            double total = 0.0;
            for (long long j = 0; j < nframes; ++j) {
                const double since_first = (double)(g * nframes + j + 1) - mean_read[0];
                const double u = pj_horner64(first64 + rate * since_first, ci, ninv, npix);
                const double corr = pj_horner64(u + offset, c, ncoeffs, npix);
                total = (j == 0) ? corr : total + corr;
            }
            out[e] = (float)(total / nreads);
        }
    }
}

// ZEROFRAME: float32 Horner; exactly-0.0 values stay +0.0. One index per (integration, pixel).
TSO_KERNEL void tso_pj_lin_zeroframe(const float* __restrict__ zf,
                                     const float* __restrict__ coeffs, long long ncoeffs,
                                     float* __restrict__ out, long long npix, long long n) {
    TSO_FOR_EACH_2D(pl, p, tso_rows_of(n, npix), npix) {
        const long long i = pl * npix + p;
        const float v = zf[i];
        out[i] = (v == 0.0f) ? 0.0f : pj_horner32(v, coeffs + p, ncoeffs, npix);
    }
}

// ---- dark_current (dark_current.py: _prepare_dark, subtract_dark) --------------------------

// The per-group dark D[g] of _prepare_dark. ``extended``: the dark is extrapolated to
// ``nframes_d`` frames (float64 frames, pj_dark_frame64), else it has ``ngd`` float32 frames.
// ``direct`` (same NFRAMES and GROUPGAP): D[g] = frame g, into out64 when extended, else out32.
// Otherwise D[g] (into out32) averages frames start..start+nframes-1, start = g*(nframes +
// groupgap), cut at the end of the dark (none left: NaN): a sequential sum in the dark's
// precision divided by the count (nframes == 1: the frame itself; the host checks it exists).
// One index per (group, pixel).
TSO_KERNEL void tso_pj_dark_prepare(const float* __restrict__ dark, long long ngd,
                                    long long extended, long long nframes_d, long long direct,
                                    long long nframes, long long groupgap,
                                    float* __restrict__ out32, double* __restrict__ out64,
                                    long long npix, long long n) {
    TSO_FOR_EACH(i, n) {
        const long long p = i % npix;
        const long long g = i / npix;
        const float* d = dark + p;
        if (direct) {
            if (extended) {
                out64[i] = pj_dark_frame64(d, g, ngd, npix);
            } else {
                out32[i] = pj_dark_frame32(d, g, npix);
            }
            continue;
        }
        const long long start = g * (nframes + groupgap);
        if (nframes == 1) {
            out32[i] = extended ? (float)pj_dark_frame64(d, start, ngd, npix)
                                : pj_dark_frame32(d, start, npix);
            continue;
        }
        long long end = start + nframes;
        if (end > nframes_d) end = nframes_d;
        const long long count = end - start;
        if (count <= 0) {
            out32[i] = TSO_NANF;
        } else if (extended) {
            double total = pj_dark_frame64(d, start, ngd, npix);
            for (long long f = start + 1; f < end; ++f) total = total + pj_dark_frame64(d, f, ngd, npix);
            out32[i] = (float)(total / (double)count);
        } else {
            float total = pj_dark_frame32(d, start, npix);
            for (long long f = start + 1; f < end; ++f) total = total + pj_dark_frame32(d, f, npix);
            out32[i] = total / (float)count;
        }
    }
}

// data[i, g] - D[g], float32. One index per element.
TSO_KERNEL void tso_pj_dark_sub32(const float* __restrict__ data, const float* __restrict__ dark,
                                  float* __restrict__ out, long long ngroups, long long npix,
                                  long long n) {
    const long long nd = ngroups * npix;  // one dark per integration
    TSO_FOR_EACH_2D(it, k, tso_rows_of(n, nd), nd) {
        const long long i = it * nd + k;
        out[i] = data[i] - dark[k];
    }
}

// float32(float64(data[i, g]) - D[g]) for a float64 (extrapolated) dark. One index per element.
TSO_KERNEL void tso_pj_dark_sub64(const float* __restrict__ data, const double* __restrict__ dark,
                                  float* __restrict__ out, long long ngroups, long long npix,
                                  long long n) {
    const long long nd = ngroups * npix;  // one dark per integration
    TSO_FOR_EACH_2D(it, k, tso_rows_of(n, nd), nd) {
        const long long i = it * nd + k;
        out[i] = (float)((double)data[i] - dark[k]);
    }
}
