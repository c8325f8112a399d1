"""Launchers of kernels/saturation.cu: ``tsogpu.algorithms.saturation`` on ``k``, bit for bit.

``flag_saturation`` and the options beyond jwst that change saturation flags
(docs/options.md: ``scale_thresholds``, ``extend_saturation``, ``saturation_map``,
``apply_saturation_map``). Each function takes the kernels object ``k`` first, then the
parameters of the NumPy function of the same name, and returns what it returns. Inputs are
never modified. Host-side work is limited to scalars (read-pattern means, per-group dilution
factors).
"""

import numpy as np

from ..algorithms.saturation import dilutions, mean_reads, read_pattern
from .marshal import contiguous, dqv, i64


def flag_saturation(
    k,
    data,
    groupdq,
    pixeldq,
    sat_thresh,
    sat_dq,
    *,
    bias=None,
    zeroframe=None,
    nframes=1,
    n_pix_grow_sat=1,
    use_readpatt=True,
):
    """``tsogpu.algorithms.saturation.flag_saturation``.

    Launches: thresholds (per pixel); the forward pass (per integration and pixel) into a
    flags buffer; its growth (per sample) into the new GROUPDQ; with a read pattern, the
    partial-saturation mask (per sample) and its growth ORed in as DO_NOT_USE, then the group-2
    test (per integration and pixel); ZEROFRAME (per integration and pixel).
    """
    xp = k.xp
    data = contiguous(k, data, np.float32)
    groupdq = contiguous(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    nsamp = data.size
    half = max(int(n_pix_grow_sat), 0)
    dq_values = dqv(k)

    # 1. thresholds, and the final pixeldq
    thresh = xp.empty((ny, nx), dtype=np.float32)
    no_check = xp.empty((ny, nx), dtype=np.uint8)
    new_pixeldq = xp.empty((ny, nx), dtype=np.uint32)
    k.launch(
        "tso_pj_sat_refs",
        npix,
        contiguous(k, sat_thresh, np.float32),
        contiguous(k, sat_dq, np.uint32),
        contiguous(k, pixeldq, np.uint32),
        dq_values,
        thresh,
        no_check,
        new_pixeldq,
        i64(npix),
    )

    # 2. forward pass, then the growth in a separate launch (it reads neighbours' flags)
    gdq = xp.empty(data.shape, dtype=np.uint8)
    flags = xp.empty(data.shape, dtype=np.uint8) if half > 0 else gdq
    k.launch(
        "tso_pj_sat_forward",
        nints * npix,
        data,
        groupdq,
        thresh,
        dq_values,
        flags,
        i64(ngroups),
        i64(npix),
        i64(nints * npix),
    )
    if half > 0:
        k.launch(
            "tso_pj_sat_grow_sat",
            nsamp,
            flags,
            dq_values,
            gdq,
            i64(ny),
            i64(nx),
            i64(half),
            i64(nsamp),
        )
        del flags

    if use_readpatt:
        pattern = read_pattern(ngroups, nframes)
        mean_read = mean_reads(pattern)
        # 3. backward pass: groups 0..ngroups-2 whose dilution is not 1
        dilution = dilutions(pattern)
        active = (dilution != 1.0).astype(np.uint8)
        active[ngroups - 1 :] = 0  # the last group has no next group
        if active.any():
            partial = xp.empty(data.shape, dtype=np.uint8)
            k.launch(
                "tso_pj_sat_partial",
                nsamp,
                data,
                gdq,
                thresh,
                no_check,
                xp.asarray(dilution),
                xp.asarray(active),
                dq_values,
                partial,
                i64(ngroups),
                i64(npix),
                i64(nsamp),
            )
            k.launch(
                "tso_pj_sat_grow_partial",
                nsamp,
                partial,
                dq_values,
                gdq,
                i64(ny),
                i64(nx),
                i64(half),
                i64(nsamp),
            )
            del partial
        # 4. group-2 test (a missing bias is 0.0)
        if ngroups > 2:
            if bias is None:
                bias32 = xp.zeros((ny, nx), dtype=np.float32)
            else:
                bias32 = contiguous(k, bias, np.float32)
            k.launch(
                "tso_pj_sat_group2",
                nints * npix,
                data,
                gdq,
                thresh,
                bias32,
                dq_values,
                np.float64(mean_read[0]),
                np.float64(pattern[2][-1]),
                np.float32(len(pattern[1])),
                i64(ngroups),
                i64(npix),
                i64(nints * npix),
            )

    # 5. ZEROFRAME
    new_zeroframe = None
    if zeroframe is not None:
        zf = contiguous(k, zeroframe, np.float32)
        new_zeroframe = xp.empty(zf.shape, dtype=np.float32)
        k.launch(
            "tso_pj_sat_zeroframe",
            zf.size,
            zf,
            thresh,
            new_zeroframe,
            i64(ny),
            i64(nx),
            i64(half),
            i64(zf.size),
        )
    return gdq, new_pixeldq, new_zeroframe


def scale_thresholds(k, sat_thresh, fraction):
    """``tsogpu.algorithms.saturation.scale_thresholds``."""
    thresh = contiguous(k, sat_thresh, np.float32)
    out = k.xp.empty(thresh.shape, dtype=np.float32)
    k.launch(
        "tso_opt_scale_thresh", thresh.size, thresh, out, np.float64(fraction), i64(thresh.size)
    )
    return out


def first_saturated_group(k, groupdq):
    """``tsogpu.algorithms.saturation.first_saturated_group``."""
    gdq = contiguous(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = gdq.shape
    first = k.xp.empty((nints, ny, nx), dtype=np.int32)
    n = nints * ny * nx
    k.launch("tso_opt_first_sat", n, gdq, dqv(k), first, i64(ngroups), i64(ny * nx), i64(n))
    return first


def column_minimum(k, first):
    """``tsogpu.algorithms.saturation.column_minimum``."""
    first = contiguous(k, first, np.int32)
    ny, nx = first.shape[-2:]
    out = k.xp.empty(first.shape, dtype=np.int32)
    n = first.size // ny
    k.launch("tso_opt_column_min", n, first, out, i64(ny), i64(nx), i64(n))
    return out


def flag_from(k, groupdq, first, groups_before=0):
    """``tsogpu.algorithms.saturation.flag_from``."""
    gdq = contiguous(k, groupdq, np.uint8)
    first = contiguous(k, first, np.int32)
    _, ngroups, ny, nx = gdq.shape
    out = k.xp.empty(gdq.shape, dtype=np.uint8)
    stride = ny * nx if first.ndim == 3 else 0
    k.launch(
        "tso_opt_flag_from",
        gdq.size,
        gdq,
        first,
        dqv(k),
        out,
        np.int32(groups_before),
        i64(stride),
        i64(ngroups),
        i64(ny * nx),
        i64(gdq.size),
    )
    return out


def extend_saturation(k, groupdq, *, column_saturation=False, groups_before=0):
    """``tsogpu.algorithms.saturation.extend_saturation``."""
    first = first_saturated_group(k, groupdq)
    if column_saturation:
        first = column_minimum(k, first)
    return flag_from(k, groupdq, first, groups_before)


def saturation_map(k, groupdq, per="pixel"):
    """``tsogpu.algorithms.saturation.saturation_map``."""
    first = first_saturated_group(k, groupdq)
    nints, ny, nx = first.shape
    out = k.xp.empty((ny, nx), dtype=np.int32)
    k.launch("tso_opt_min_ints", ny * nx, first, out, i64(nints), i64(ny * nx))
    return column_minimum(k, out) if per == "column" else out


def apply_saturation_map(k, groupdq, sat_map):
    """``tsogpu.algorithms.saturation.apply_saturation_map``."""
    return flag_from(k, groupdq, sat_map)
