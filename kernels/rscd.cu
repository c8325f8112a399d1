// rscd (tsogpu/algorithms/rscd.py: flag_rscd); launcher in tsogpu/launchers/rscd.py.
//
// Layouts: groupdq (nints, ngroups, npix), pixeldq (npix). The launcher checks that each skip
// used leaves group skip + 1 to test (skip + 2 <= ngroups where skip > 0).
#include "common.cuh"

// Per integration i (e = int_start + i in the exposure): skip0 = skip1 where e == 0, else
// skip2p; lowered by one (not below 0) for each group skip0+1 .. 1 that is SATURATED where
// group 0 is not; DO_NOT_USE in the groups g < skip. FLUX_ESTIMATED where skip < skip0 in any
// integration. One index per pixel, walking its integrations and groups.
TSO_KERNEL void tso_rscd(const unsigned char* __restrict__ gdq,
                         const unsigned int* __restrict__ pdq,
                         const unsigned int* __restrict__ dqv,
                         unsigned char* __restrict__ gdq_out, unsigned int* __restrict__ pdq_out,
                         long long nints, long long ngroups, long long npix, long long skip1,
                         long long skip2p, long long int_start) {
    const unsigned char dnu = (unsigned char)dqv[DQ_DO_NOT_USE];
    const unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    const unsigned int flux_estimated = dqv[DQ_FLUX_ESTIMATED];
    TSO_FOR_EACH(p, npix) {
        int backed_off = 0;
        for (long long i = 0; i < nints; ++i) {
            const long long base = i * ngroups * npix + p;
            const long long skip0 = (int_start + i == 0) ? skip1 : skip2p;
            long long skip = skip0;
            if (skip0 > 0) {
                const int sat0 = (gdq[base] & sat) != 0;
                for (long long g = skip0 + 1; g > 0; --g) {
                    if (!sat0 && (gdq[base + g * npix] & sat) != 0) skip = skip > 0 ? skip - 1 : 0;
                }
                backed_off |= skip < skip0;
            }
            for (long long g = 0; g < ngroups; ++g) {
                const long long at = base + g * npix;
                gdq_out[at] = (unsigned char)(gdq[at] | (g < skip ? dnu : (unsigned char)0));
            }
        }
        pdq_out[p] = pdq[p] | (backed_off ? flux_estimated : 0u);
    }
}
