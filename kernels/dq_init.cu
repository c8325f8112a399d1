// dq_init (tsogpu/algorithms/dq_init.py: dq_init, and the option flag_groups);
// launchers in tsogpu/launchers/dq_init.py (PIXELDQ's OR: elementwise.cu).
//
// Layouts: ramps (nints, ngroups, ny, nx), images (ny, nx), npix = ny*nx. The index of each
// kernel is said in its comment; "element" = one (integration, group, pixel) sample.
#include "common.cuh"

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

// dq_init.flag_groups: groupdq | DO_NOT_USE in the groups where mask[g] (uint8, ngroups).
// One index per element.
TSO_KERNEL void tso_opt_flag_groups(const unsigned char* __restrict__ gdq,
                                    const unsigned char* __restrict__ mask,
                                    const unsigned int* __restrict__ dqv,
                                    unsigned char* __restrict__ out, long long ngroups,
                                    long long npix, long long n) {
    unsigned char dnu = (unsigned char)dqv[DQ_DO_NOT_USE];
    TSO_FOR_EACH(i, n) {
        long long g = (i / npix) % ngroups;
        out[i] = (unsigned char)(gdq[i] | (mask[g] ? dnu : (unsigned char)0));
    }
}
