// lastframe (tsogpu/algorithms/lastframe.py: flag_last_groups); launcher in
// tsogpu/launchers/lastframe.py.
//
// Layout: groupdq (nints, ngroups, npix).
#include "common.cuh"

// DO_NOT_USE in the groups g >= first (first = ngroups - nflag). One index per element.
TSO_KERNEL void tso_lastframe(const unsigned char* __restrict__ gdq,
                              const unsigned int* __restrict__ dqv,
                              unsigned char* __restrict__ out, long long nints, long long ngroups,
                              long long npix, long long first) {
    const unsigned char dnu = (unsigned char)dqv[DQ_DO_NOT_USE];
    TSO_FOR_EACH_3D(i, g, p, nints, ngroups, npix) {
        const long long at = (i * ngroups + g) * npix + p;
        out[at] = (unsigned char)(gdq[at] | (g >= first ? dnu : (unsigned char)0));
    }
}
