// dark_current (tsogpu/algorithms/dark_current.py: prepare_dark, subtract_dark); launchers
// in tsogpu/launchers/dark_current.py (PIXELDQ's OR: elementwise.cu).
//
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. The index of each
// kernel is said in its comment; "element" = one (integration, group, pixel) sample.
#include "common.cuh"

// Frame f of the dark as prepare_dark sees it after extrapolation and NaN -> 0, in float64
// (the extrapolated dark): frames past the reference's ``ngd`` groups are
// float64(k) * float64(float32(d[-1] - d[-2])) + float64(d[-1]), k = f - ngd + 1.
TSO_HD double pj_dark_frame64(const float* d, long long f, long long ngd, long long npix) {
    double v;
    if (f < ngd) {
        v = (double)d[f * npix];
    } else {
        const float rate = d[(ngd - 1) * npix] - d[(ngd - 2) * npix];
        v = (double)(f - ngd + 1) * (double)rate;
        v = v + (double)d[(ngd - 1) * npix];
    }
    return isnan(v) ? 0.0 : v;
}

// Frame f of the dark that was not extrapolated (float32), NaN -> 0.
TSO_HD float pj_dark_frame32(const float* d, long long f, long long npix) {
    const float v = d[f * npix];
    return isnan(v) ? 0.0f : v;
}

// The per-group dark D[g] of prepare_dark. ``extended``: the dark is extrapolated to
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

// data[i, g] - D[pick[i], g], float32: ``dark`` holds one per-group dark per dark integration
// used (one for a 3-D dark, pick all 0), ``pick`` the one of each science integration
// (dark_current.dark_integrations less the first used). One index per element.
TSO_KERNEL void tso_pj_dark_sub32(const float* __restrict__ data, const float* __restrict__ dark,
                                  const long long* __restrict__ pick, float* __restrict__ out,
                                  long long ngroups, long long npix, long long n) {
    const long long nd = ngroups * npix;  // one dark per integration
    TSO_FOR_EACH_2D(it, k, tso_rows_of(n, nd), nd) {
        const long long i = it * nd + k;
        out[i] = data[i] - dark[pick[it] * nd + k];
    }
}

// float32(float64(data[i, g]) - D[pick[i], g]) for a float64 (extrapolated) dark. One index per
// element.
TSO_KERNEL void tso_pj_dark_sub64(const float* __restrict__ data, const double* __restrict__ dark,
                                  const long long* __restrict__ pick, float* __restrict__ out,
                                  long long ngroups, long long npix, long long n) {
    const long long nd = ngroups * npix;  // one dark per integration
    TSO_FOR_EACH_2D(it, k, tso_rows_of(n, nd), nd) {
        const long long i = it * nd + k;
        out[i] = (float)((double)data[i] - dark[pick[it] * nd + k]);
    }
}
