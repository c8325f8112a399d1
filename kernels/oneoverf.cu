// Sky-pixel reference correction (refpix.sky_method, docs/options.md); launchers in
// tsogpu/launchers/oneoverf.py.
//
// Mirrors tsogpu/algorithms/oneoverf.py: label_medians (one thread per plane and label: the
// label's sky values, or an image's values at those pixels, gathered into scratch,
// heap-sorted, the median taken as NumPy's code takes it) and subtract_levels (one thread per element). Layouts: ramps (nplanes, npix),
// levels (nplanes, nlabels); the pixels of label l are order[start[l] .. start[l + 1]).
#include "common.cuh"

// Sift element r of the heap a[0 .. n) (stride st) down: a max-heap of floats (no NaN).
TSO_HD void oof_sift(float* a, long long st, long long r, long long n) {
    for (;;) {
        long long c = 2 * r + 1;
        if (c >= n) return;
        if (c + 1 < n && a[(c + 1) * st] > a[c * st]) c += 1;
        if (!(a[c * st] > a[r * st])) return;
        float t = a[r * st];
        a[r * st] = a[c * st];
        a[c * st] = t;
        r = c;
    }
}

// Ascending heapsort of a[0 .. n) (stride st); a sorted order is unique up to equal values,
// and equal values give the same median (but -0.0 / +0.0, which the + 0.0 below resolves).
TSO_HD void oof_sort(float* a, long long st, long long n) {
    for (long long r = n / 2 - 1; r >= 0; --r) oof_sift(a, st, r, n);
    for (long long e = n - 1; e > 0; --e) {
        float t = a[0];
        a[0] = a[e * st];
        a[e * st] = t;
        oof_sift(a, st, 0, e);
    }
}

// oneoverf.label_medians for items j0 .. j0 + nb of (plane, label), plane = j / nlabels.
// Scratch: width floats per item (TSO_SCRATCH_AT), width = the largest label's pixel count.
// With use_image, the values taken at the selected pixels are image[p] (ny, nx), not x[p]
// (label_medians' ``image``: superbias.scale's superbias median).
TSO_KERNEL void tso_oof_medians(const float* __restrict__ data,
                                const unsigned char* __restrict__ gdq,
                                const unsigned char* __restrict__ sky,
                                const long long* __restrict__ start,
                                const long long* __restrict__ order,
                                const unsigned int* __restrict__ dqv,
                                const float* __restrict__ image, long long use_image,
                                float* __restrict__ levels, float* __restrict__ scratch,
                                long long nlabels, long long npix, long long width,
                                long long j0, long long nb) {
    const unsigned char bad = (unsigned char)(dqv[DQ_DO_NOT_USE] | dqv[DQ_SATURATED]);
    const long long st = TSO_SCRATCH_STRIDE(nb);
    TSO_FOR_EACH(t, nb) {
        const long long j = j0 + t;
        const long long plane = j / nlabels, label = j - plane * nlabels;
        const float* x = data + plane * npix;
        const unsigned char* g = gdq + plane * npix;
        float* s = scratch + TSO_SCRATCH_AT(t, nb, width);
        long long n = 0;
        for (long long k = start[label]; k < start[label + 1]; ++k) {
            const long long p = order[k];
            const float v = x[p];
            if (sky[p] && !(g[p] & bad) && !(v != v)) {
                s[n * st] = use_image ? image[p] : v;
                ++n;
            }
        }
        float med = TSO_NANF;
        if (n > 0) {
            oof_sort(s, st, n);
            const double lo = (double)s[((n - 1) / 2) * st], hi = (double)s[(n / 2) * st];
            med = (float)((lo + hi) * 0.5 + 0.0);
        }
        levels[j] = med;
    }
}

// oneoverf.subtract_levels: out = float32(float64(x) - float64(level)), x where the level is
// NaN. One index per element of (nplanes, npix).
TSO_KERNEL void tso_oof_subtract(const float* __restrict__ data, const int* __restrict__ labels,
                                 const float* __restrict__ levels, float* __restrict__ out,
                                 long long nlabels, long long npix, long long n) {
    TSO_FOR_EACH(i, n) {
        const long long plane = i / npix, p = i - plane * npix;
        const float lev = levels[plane * nlabels + labels[p]];
        out[i] = (lev != lev) ? data[i] : (float)((double)data[i] - (double)lev);
    }
}
