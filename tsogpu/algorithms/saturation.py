"""saturation: flag saturated and A/D-floor groups.

Mirrors ``stcal/saturation/saturation.py: flag_saturated_pixels`` called as
``jwst/saturation/saturation.py: flag_saturation`` calls it: ``atod_limit = 65535``,
``read_pattern[g] = [g*nframes + 1, ..., g*nframes + nframes]`` (1-based frame numbers
that IGNORE GROUPGAP, exactly as jwst builds it) when ``use_readpatt``, the superbias SCI
as ``bias`` with its NaNs left in, and ZEROFRAME only when ZEROFRAM is true. NIRSpec IRS2
(``irs2_flag_saturation``) and superstripe data are not covered.

Per integration, in this order (a kernel must keep it):

1. Thresholds: pixels whose ``sat_dq`` has NO_SAT_CHECK, or whose threshold is NaN, get
   threshold ``65536.0`` (never reached); NaN thresholds also get NO_SAT_CHECK in ``sat_dq``.
2. Forward pass, groups 0..ngroups-1, with a running per-pixel ``ever_sat``:
   ``ever_sat |= data >= thresh`` (float32 compare); OR SATURATED where ``ever_sat``; OR
   AD_FLOOR|DO_NOT_USE where ``data <= 0`` (this group only, never grown); then grow: every
   pixel within a (2n+1)x(2n+1) box (clipped at the image edge) of a pixel whose GROUPDQ of
   this group now has SATURATED (including SATURATED bits that were already in the input)
   gets SATURATED.
3. Backward pass (only with a read pattern and NFRAMES > 1, where the dilution factor
   ``mean(read_pattern[g]) / read_pattern[g][-1]`` is not 1), groups ngroups-2..0:
   ``partial = float64(data) >= float64(thresh) * dil`` (dil = 1.0 for no-sat-check pixels;
   the product and compare are float64 as in stcal) and the group has neither SATURATED nor
   DO_NOT_USE after pass 2 and the next group has SATURATED. ``partial`` is grown with the
   same box and ORed in as DO_NOT_USE. Each group's test reads only pass-2 bits, so the
   groups are independent.
4. Group-2 test (read pattern given and ngroups > 2): group 1 gets DO_NOT_USE where
   ``float64(data[0] - bias) / mean(rp[0]) * rp[2][-1] + float64(bias) < thresh`` (float64,
   the ``data[0] - bias`` difference in float32) and ``data[1] - data[0] >
   (thresh - data[0]) / len(rp[1])`` (float32) and group 2 has SATURATED and group 1 has not.
   Not grown. A NaN bias makes the test false.
5. ZEROFRAME: SATURATED where ``zf >= thresh``, grown; AD_FLOOR|DO_NOT_USE where ``zf <= 0``;
   ``zf = 0.0`` wherever any of those is set.

Finally ``pixeldq |= sat_dq`` (with the added NO_SAT_CHECK bits).

Spatial step: the growth in passes 2, 3 and 5 reads a halo of ``n_pix_grow_sat`` pixels on
each side, and pass 2's growth must see the neighbours' SATURATED bits of the same group
after their own step-2 update. A CUDA kernel needs a barrier (or a separate launch) per group
between the flag update and the growth, or tiles with an ``n_pix_grow_sat`` halo.
"""

import numpy as np

from .. import dq

ATOD_LIMIT = 65535.0  # jwst.saturation.saturation.ATOD_LIMIT


def read_pattern(ngroups, nframes):
    """The read pattern jwst builds for saturation and linearity (GROUPGAP ignored).

    Returns
    -------
    list of list of int
        ``[[g*nframes + 1, ..., g*nframes + nframes] for g in range(ngroups)]``.
    """
    return [[x + 1 + g * nframes for x in range(nframes)] for g in range(ngroups)]


def mean_reads(pattern):
    """Per-group mean frame number as stcal computes it (``np.mean`` of the list, float64).

    Returns
    -------
    ndarray of float64, shape (ngroups,)
    """
    # The integer sum is exact in float64; np.mean then divides once by the count.
    return np.array([np.float64(sum(reads)) / len(reads) for reads in pattern], dtype=np.float64)


def dilutions(pattern):
    """Per-group dilution factor of the backward pass, ``mean(reads) / last read`` (float64),
    as stcal computes it; 1.0 means the group is not tested.

    Returns
    -------
    ndarray of float64, shape (ngroups,)
    """
    mean_read = mean_reads(pattern)
    return np.array(
        [mean_read[g] / np.float64(reads[-1]) for g, reads in enumerate(pattern)], np.float64
    )


def grow(mask, n_pix):
    """Square dilation of a boolean image, clipped at the image edges.

    Equal to ``scipy.ndimage.binary_dilation`` with a ``(2n+1, 2n+1)`` structure of ones
    and a zero border (stcal's ``_adjacent_pixels``).

    Parameters
    ----------
    mask : ndarray of bool, shape (..., ny, nx)
    n_pix : int
        Half width of the box; 0 returns a copy.

    Returns
    -------
    ndarray of bool, same shape.
    """
    if n_pix <= 0:
        return mask.copy()
    ny, nx = mask.shape[-2:]
    padded = np.zeros(mask.shape[:-2] + (ny + 2 * n_pix, nx + 2 * n_pix), dtype=bool)
    padded[..., n_pix : n_pix + ny, n_pix : n_pix + nx] = mask
    out = np.zeros_like(mask, dtype=bool)
    # One thread per output pixel ORs its (2n+1)^2 neighbours; outside the image is False.
    for dy in range(2 * n_pix + 1):
        for dx in range(2 * n_pix + 1):
            out |= padded[..., dy : dy + ny, dx : dx + nx]
    return out


def flag_saturation(
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
    """Flag saturation, A/D floor and frame-averaging partial saturation.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Raw DN (before superbias).
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    sat_thresh : ndarray of float32, shape (ny, nx)
        SATURATION SCI (DN), cut to the subarray.
    sat_dq : ndarray of uint32, shape (ny, nx)
        SATURATION DQ, remapped to standard bits.
    bias : ndarray of float32, shape (ny, nx), or None
        SUPERBIAS SCI (NaNs kept) for the group-2 test; None means 0.
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
        Pass it only when ZEROFRAM is true.
    nframes : int
        NFRAMES.
    n_pix_grow_sat : int
        Half width of the growth box.
    use_readpatt : bool
        Use the read pattern (backward pass and group-2 test).

    Returns
    -------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    """
    nints, ngroups, ny, nx = data.shape
    sat = dq.GROUPDQ_DTYPE(dq.SATURATED)
    dnu = dq.GROUPDQ_DTYPE(dq.DO_NOT_USE)
    floor = dq.GROUPDQ_DTYPE(dq.AD_FLOOR | dq.DO_NOT_USE)
    zero_u8 = dq.GROUPDQ_DTYPE(0)

    # 1. thresholds
    thresh = np.array(sat_thresh, dtype=np.float32)
    new_sat_dq = np.array(sat_dq, dtype=dq.PIXELDQ_DTYPE)
    nan_thresh = np.isnan(thresh)
    no_sat_check = (new_sat_dq & dq.PIXELDQ_DTYPE(dq.NO_SAT_CHECK)) != 0
    no_sat_check |= nan_thresh
    new_sat_dq[nan_thresh] |= dq.PIXELDQ_DTYPE(dq.NO_SAT_CHECK)
    thresh[no_sat_check] = np.float32(ATOD_LIMIT + 1.0)

    gdq = np.array(groupdq, dtype=dq.GROUPDQ_DTYPE)

    # 2. forward pass (vectorised over integrations: one thread per (int, y, x))
    ever_sat = np.zeros((nints, ny, nx), dtype=bool)
    for g in range(ngroups):
        plane = data[:, g]
        ever_sat |= plane >= thresh
        flags = gdq[:, g] | np.where(ever_sat, sat, zero_u8)
        flags |= np.where(plane <= np.float32(0.0), floor, zero_u8)
        if n_pix_grow_sat > 0:
            flags |= np.where(grow((flags & sat) != 0, n_pix_grow_sat), sat, zero_u8)
        gdq[:, g] = flags

    pattern = read_pattern(ngroups, nframes) if use_readpatt else None

    # 3. backward pass for frame-averaged groups
    if pattern is not None:
        mean_read = mean_reads(pattern)
        dilution_of = dilutions(pattern)
        thresh64 = thresh.astype(np.float64)
        for g in range(ngroups - 2, -1, -1):
            dilution = dilution_of[g]
            if dilution == 1.0:
                continue
            dil = np.where(no_sat_check, np.float64(1.0), dilution)
            partial = (
                (data[:, g].astype(np.float64) >= thresh64 * dil)
                & ((gdq[:, g] & (sat | dnu)) == 0)
                & ((gdq[:, g + 1] & sat) != 0)
            )
            if n_pix_grow_sat > 0:
                partial = grow(partial, n_pix_grow_sat)
            gdq[:, g] |= np.where(partial, dnu, zero_u8)

    # 4. group-2 test
    if pattern is not None and ngroups > 2:
        bias32 = np.float32(0.0) if bias is None else np.asarray(bias, dtype=np.float32)
        data0 = data[:, 0]
        scigp1 = np.subtract(data0, bias32, dtype=np.float32)
        # stcal: (float32 difference) / np.float64 mean -> float64, then * int, + bias (float64)
        predicted = scigp1.astype(np.float64) / mean_read[0] * np.float64(pattern[2][-1])
        predicted += np.asarray(bias32, dtype=np.float64)
        mask = predicted < thresh64
        step = np.subtract(data[:, 1], data0, dtype=np.float32)
        room = np.subtract(thresh, data0, dtype=np.float32) / np.float32(len(pattern[1]))
        mask &= step > room
        mask &= ((gdq[:, 2] & sat) != 0) & ((gdq[:, 1] & sat) == 0)
        gdq[:, 1] |= np.where(mask, dnu, zero_u8)

    # 5. ZEROFRAME
    new_zeroframe = None
    if zeroframe is not None:
        new_zeroframe = np.array(zeroframe, dtype=np.float32)
        zsat = new_zeroframe >= thresh
        bad = (new_zeroframe <= np.float32(0.0)) | zsat
        if n_pix_grow_sat > 0:
            bad |= grow(zsat, n_pix_grow_sat)
        new_zeroframe[bad] = np.float32(0.0)

    new_pixeldq = np.bitwise_or(pixeldq, new_sat_dq, dtype=dq.PIXELDQ_DTYPE)
    return gdq, new_pixeldq, new_zeroframe


# ---------------------------------------------------------------------------------------------
# Options beyond jwst (tsogpu.config.Saturation; docs/options.md). Each leaves
# flag_saturation untouched: ``scale_thresholds`` changes its threshold input, the others
# work on the GROUPDQ it returns. A group counts as saturated when its GROUPDQ has SATURATED
# (jwst's own flags, grown neighbours included; the DO_NOT_USE of partial saturation does
# not count). Flags only ever propagate forward: every group from a pixel's first saturated
# group on is SATURATED, as in jwst.


def scale_thresholds(sat_thresh, fraction):
    """The saturation thresholds times ``fraction`` (``saturation.fraction``).

    Parameters
    ----------
    sat_thresh : ndarray of float32, shape (ny, nx)
    fraction : float

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        ``float32(float64(sat_thresh) * fraction)``; NaN thresholds stay NaN (NO_SAT_CHECK).
    """
    scaled = np.asarray(sat_thresh, dtype=np.float32).astype(np.float64) * np.float64(fraction)
    return scaled.astype(np.float32)


def first_saturated_group(groupdq):
    """Per integration and pixel, the first group with SATURATED (``ngroups`` where none).

    Parameters
    ----------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)

    Returns
    -------
    ndarray of int32, shape (nints, ny, nx)
    """
    nints, ngroups, ny, nx = groupdq.shape
    first = np.full((nints, ny, nx), ngroups, dtype=np.int32)
    sat = dq.GROUPDQ_DTYPE(dq.SATURATED)
    for g in range(ngroups - 1, -1, -1):  # one thread per (int, pixel) scans its groups
        first[(groupdq[:, g] & sat) != 0] = np.int32(g)
    return first


def column_minimum(first):
    """``first`` (..., ny, nx) with every pixel replaced by the minimum of its column."""
    return np.broadcast_to(first.min(axis=-2, keepdims=True), first.shape).copy()


def flag_from(groupdq, first, groups_before=0):
    """OR SATURATED into every group ``g >= first - groups_before``.

    Parameters
    ----------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    first : ndarray of int32, shape (nints, ny, nx), or (ny, nx) for every integration
        First group to flag (before ``groups_before``); ``ngroups`` or more flags none
        (``groups_before`` then too).
    groups_before : int
        Groups before ``first`` flagged too (clipped at group 0).

    Returns
    -------
    ndarray of uint8, shape (nints, ngroups, ny, nx)
    """
    ngroups = groupdq.shape[1]
    first = np.asarray(first, dtype=np.int32)
    # a pixel that never saturates (first >= ngroups) gets nothing
    start = np.where(first < ngroups, first - np.int32(groups_before), first)
    start = start if start.ndim == 3 else start[None]
    groups = np.arange(ngroups, dtype=np.int32)[None, :, None, None]
    flags = np.where(groups >= start[:, None], dq.GROUPDQ_DTYPE(dq.SATURATED), dq.GROUPDQ_DTYPE(0))
    return np.bitwise_or(groupdq, flags, dtype=dq.GROUPDQ_DTYPE)


def extend_saturation(groupdq, *, column_saturation=False, groups_before=0):
    """Whole-column saturation and N groups before saturation, per integration.

    ``column_saturation``: every pixel of a column (fixed x, all rows of the frame) is
    SATURATED from the first group in which any pixel of that column is SATURATED (Tiberius'
    ``saturation_dq_override``, Eureka's ``update_sat_flags``, jtow's custom group DQ).
    ``groups_before``: the ``groups_before`` groups before a pixel's (or, with
    ``column_saturation``, its column's) first saturated group are SATURATED too (Eureka's
    ``expand_prev_group``, which flags one).

    Parameters
    ----------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
        As :func:`flag_saturation` returns it.

    Returns
    -------
    ndarray of uint8, shape (nints, ngroups, ny, nx)
    """
    first = first_saturated_group(groupdq)
    if column_saturation:
        first = column_minimum(first)
    return flag_from(groupdq, first, groups_before)


def saturation_map(groupdq, per="pixel"):
    """The earliest saturated group over the integrations of ``groupdq`` (``fixed_map``).

    Maps of several chunks (or segments) combine with ``np.minimum``; apply one with
    :func:`apply_saturation_map`.

    Parameters
    ----------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    per : {"pixel", "column"}
        ``column``: the minimum over each column's pixels too.

    Returns
    -------
    ndarray of int32, shape (ny, nx)
        ``ngroups`` where no integration saturates.
    """
    first = first_saturated_group(groupdq).min(axis=0)
    return column_minimum(first) if per == "column" else first


def apply_saturation_map(groupdq, sat_map):
    """SATURATED in every integration from the group ``sat_map`` gives (see
    :func:`saturation_map`), so that every integration uses the same groups.

    Parameters
    ----------
    groupdq : ndarray of uint8, shape (nints, ngroups, ny, nx)
    sat_map : ndarray of int32, shape (ny, nx)

    Returns
    -------
    ndarray of uint8, shape (nints, ngroups, ny, nx)
    """
    return flag_from(groupdq, sat_map)
