// firstframe (tsogpu/algorithms/firstframe.py: flag_first_groups); launcher in
// tsogpu/launchers/firstframe.py.
//
// Layouts: groupdq (nints, ngroups, npix), pixeldq (npix). The launcher calls it only where
// firstframe.applies (ngroups > nflag + 2), so group nflag + 1 exists.
#include "common.cuh"

// DO_NOT_USE in groups 0 .. nflag-1 of every integration, except (bright != 0) in an
// integration whose group nflag + 1 is SATURATED; such pixels get FLUX_ESTIMATED.
// One index per pixel, walking its integrations and groups.
TSO_KERNEL void tso_firstframe(const unsigned char* __restrict__ gdq,
                               const unsigned int* __restrict__ pdq,
                               const unsigned int* __restrict__ dqv,
                               unsigned char* __restrict__ gdq_out,
                               unsigned int* __restrict__ pdq_out, long long nints,
                               long long ngroups, long long npix, long long nflag, int bright) {
    const unsigned char dnu = (unsigned char)dqv[DQ_DO_NOT_USE];
    const unsigned char sat = (unsigned char)dqv[DQ_SATURATED];
    const unsigned int flux_estimated = dqv[DQ_FLUX_ESTIMATED];
    TSO_FOR_EACH(p, npix) {
        int any_kept = 0;
        for (long long i = 0; i < nints; ++i) {
            const long long base = i * ngroups * npix + p;
            int kept = bright && (gdq[base + (nflag + 1) * npix] & sat) != 0;
            any_kept |= kept;
            const unsigned char flag = kept ? (unsigned char)0 : dnu;
            for (long long g = 0; g < ngroups; ++g) {
                const long long at = base + g * npix;
                gdq_out[at] = (unsigned char)(gdq[at] | (g < nflag ? flag : (unsigned char)0));
            }
        }
        pdq_out[p] = pdq[p] | (any_kept ? flux_estimated : 0u);
    }
}
