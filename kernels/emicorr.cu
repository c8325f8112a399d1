// MIRI EMI correction, jwst's 'joint' algorithm (emicorr); launchers in
// tsogpu/launchers/emicorr.py.
//
// Mirrors tsogpu/algorithms/emicorr.py: group_std (one thread per integration and pixel:
// np.std over groups as NumPy sums it, float32), bin_sums (one thread per integration, group
// and phase bin: the bin's pixels in row order, float32 products added to a float64 sum) and
// subtract_wave (one thread per sample: the read's phase, the waveform's cubic in Horner's
// order, float64, one rounding at the store). The fit on the binned sums runs on the host.
#include "common.cuh"

// np.remainder(x, 1.0): fmod, moved into [0, 1) (a zero remainder is +0.0)
TSO_HD double emi_mod1(double x) {
    double m = fmod(x, 1.0);
    if (m != 0.0) {
        if (m < 0.0) m += 1.0;
    } else {
        m = 0.0;
    }
    return m;
}

// emicorr.spline_eval: the interval np.searchsorted(knots, p, "right") - 1, clipped to
// [0, nknots - 2], then ((c3 t + c2) t + c1) t + c0 at t = p - knots[m]
TSO_HD double emi_spline(const double* knots, const double* c0, const double* c1,
                         const double* c2, const double* c3, long long nknots, double p) {
    long long a = 0, b = nknots;  // knots[0 .. a) <= p < knots[b .. nknots)
    while (a < b) {
        const long long mid = (a + b) / 2;
        if (knots[mid] <= p) a = mid + 1;
        else b = mid;
    }
    long long m = a - 1;
    if (m < 0) m = 0;
    if (m > nknots - 2) m = nknots - 2;
    const double t = p - knots[m];
    return ((c3[m] * t + c2[m]) * t + c1[m]) * t + c0[m];
}

// emicorr.group_std: out[i, p] over data (nints, ngroups, npix), float32 throughout.
TSO_KERNEL void tso_emi_group_std(const float* __restrict__ data, float* __restrict__ out,
                                  long long ngroups, long long npix, long long nints) {
    TSO_FOR_EACH_2D(i, p, nints, npix) {
        const float* x = data + i * ngroups * npix + p;
        float acc = x[0];
        for (long long g = 1; g < ngroups; ++g) acc += x[g * npix];
        const float mean = acc / (float)ngroups;
        float dev = x[0] - mean;
        acc = dev * dev;
        for (long long g = 1; g < ngroups; ++g) {
            dev = x[g * npix] - mean;
            acc += dev * dev;
        }
        out[i * npix + p] = sqrtf(acc / (float)ngroups);
    }
}

// emicorr.bin_sums: all_y (nints, nbins, ngroups) and all_n (nints, nbins), float64. The
// pixels of bin b are order[start[b] .. start[b + 1]) (row order); a pixel is good in
// integration i where std[i, p] < threshold and pixeldq[p] == 0.
TSO_KERNEL void tso_emi_bin_sums(const float* __restrict__ data, const float* __restrict__ sdev,
                                 const unsigned int* __restrict__ pixeldq,
                                 const long long* __restrict__ start,
                                 const long long* __restrict__ order, float threshold,
                                 double* __restrict__ all_y, double* __restrict__ all_n,
                                 long long nints, long long ngroups, long long npix,
                                 long long nbins) {
    TSO_FOR_EACH_3D(i, g, b, nints, ngroups, nbins) {
        const float* x = data + (i * ngroups + g) * npix;
        const float* s = sdev + i * npix;
        double acc = 0.0, n = 0.0;
        for (long long m = start[b]; m < start[b + 1]; ++m) {
            const long long p = order[m];
            const int ok = (s[p] < threshold) && pixeldq[p] == 0u;
            const float v = x[p] * (ok ? 1.0f : 0.0f);
            acc += (double)v;
            n += ok ? 1.0 : 0.0;
        }
        all_y[(i * nbins + b) * ngroups + g] = acc;
        if (g == 0) all_n[i * nbins + b] = n;
    }
}

// emicorr.subtract_wave: out = float32(float64(x) - amplitudes[i] * wave(((phase[y, x / 4] +
// dphase * g) + phases_to_correct[i]) % 1)), one index per sample of (nints * ngroups, ny, nx).
TSO_KERNEL void tso_emi_subtract(const float* __restrict__ data, const double* __restrict__ phase,
                                 const double* __restrict__ ptc, const double* __restrict__ amps,
                                 const double* __restrict__ knots, const double* __restrict__ c0,
                                 const double* __restrict__ c1, const double* __restrict__ c2,
                                 const double* __restrict__ c3, long long nknots, double dphase,
                                 float* __restrict__ out, long long nplanes, long long ngroups,
                                 long long ny, long long nx) {
    const long long nx4 = nx / 4;
    TSO_FOR_EACH_3D(plane, y, x, nplanes, ny, nx) {
        const long long i = plane / ngroups, g = plane - i * ngroups;
        const double arg = emi_mod1(phase[y * nx4 + x / 4] + dphase * (double)g + ptc[i]);
        const double emi = amps[i] * emi_spline(knots, c0, c1, c2, c3, nknots, arg);
        const long long at = (plane * ny + y) * nx + x;
        out[at] = (float)((double)data[at] - emi);
    }
}
