"""Launcher of kernels/refpix.cu: the reference-pixel correction (median algorithm) on ``k``.

``correct_refpix(k, ...)`` takes the kernels object ``k`` (``cuda_build.DeviceKernels``, or
the host build) and then the parameters of ``tsogpu.algorithms.refpix.correct_refpix``, and
returns what it returns, bit for bit (NaN payloads aside on the device). Host/array-code
work is per exposure only: the geometry, the detector-frame PIXELDQ of the window and the
gather lists of the reference sets (DMS offsets in jwst's order); every per-plane statistic
and every pixel is computed by the kernels:

* ``tso_rp_clipped_means``, one index per (plane, reference set): ``clipped_mean`` with
  NumPy's pairwise summation order, in float32 or, on jwst's float64 buffer, float64;
* full frame / 4-output path: ``tso_rp_amp_refs`` (per plane and amplifier:
  ``average_with_none`` and the amplifier rule), ``tso_rp_side_medians`` (per plane and
  detector row: the running medians of both sides and ``_combine_with_nans``);
* ``tso_rp_apply``, one index per pixel of every plane: the correction.

ZEROFRAME is a second pass over its planes, in float64 mode where jwst's buffer is float64.
"""

import numpy as np

from .. import dq
from ..algorithms import refpix as np_refpix
from . import refpix_miri
from .marshal import contiguous, dqv

# Scratch of tso_rp_clipped_means (one float per reference value per plane); the planes are
# launched in batches that fit in it.
SCRATCH_BYTES = 64 * 2**20
NEVER = np.iinfo(np.int64).max  # f64_from of a pass that never uses the float64 buffer


def _to_detector(a, fastaxis, slowaxis):
    """``refpix.frame_transform``, with array methods only (NumPy or CuPy view)."""
    fast = 1 if fastaxis > 0 else -1
    slow = 1 if slowaxis > 0 else -1
    if abs(fastaxis) == 1:
        return a[..., ::slow, ::fast]
    return a[..., ::fast, ::slow].swapaxes(-2, -1)


def correct_refpix(k, data, pixeldq, exposure, params, zeroframe=None, first_plane=True):
    """``tsogpu.algorithms.refpix.correct_refpix`` on the device; same arguments after ``k``,
    same returns (new ``data`` and ``zeroframe`` arrays, status) and the same errors. MIRI
    exposures go to ``launchers.refpix_miri``, as the NumPy function hands them on."""
    if exposure.instrument.upper() == "MIRI":
        return refpix_miri.correct_refpix(k, data, pixeldq, exposure, params, zeroframe)
    xp = k.xp
    nints, ngroups, ny, nx = data.shape
    new_zeroframe = None if zeroframe is None else xp.array(zeroframe, dtype=np.float32)
    full = np_refpix.FULL_SIZE
    width = np_refpix.REFPIX_WIDTH
    geometry = np_refpix.frame_window((ny, nx), exposure)
    if geometry is None:
        return xp.array(data, dtype=np.float32), new_zeroframe, np_refpix.SKIPPED
    is_subarray, (row_start, row_stop), (col_start, col_stop) = geometry

    fast, slow = exposure.fastaxis, exposure.slowaxis
    (r0, r1), (c0, c1) = np_refpix.detector_window(
        np_refpix.frame_transform(fast, slow),
        (row_start, row_stop),
        (col_start, col_stop),
        (full, full),
    )
    dny, dnx = r1 - r0, c1 - c0

    # The window of _full_frame_pixeldq in the detector frame (the border outside is unused).
    pdq = contiguous(k, pixeldq, np.uint32)
    if is_subarray and exposure.subarray in np_refpix.NRS_EDGELESS_SUBARRAYS:
        ref = np.uint32(dq.REFERENCE_PIXEL)
        pdq = pdq.copy()
        pdq[:, :width] |= ref
        if col_stop >= width:  # full[r0:r1, c1 - 4:c1] (empty when c1 - 4 wraps negative)
            pdq[:, max(nx - width, 0) :] |= ref
    window_dq = xp.ascontiguousarray(_to_detector(pdq, fast, slow))
    usable = (window_dq & np.uint32(dq.DO_NOT_USE)) == 0
    # DMS offset of each window pixel: boolean indexing gathers in detector row-major order,
    # the order of np.nonzero in the NumPy correctors.
    dms_offset = _to_detector(xp.arange(ny * nx, dtype=np.int64).reshape(ny, nx), fast, slow)
    det_cols = c0 + xp.arange(dnx, dtype=np.int64)

    if is_subarray and exposure.noutputs != 4:
        path = _subarray_sets(xp, window_dq, usable, dms_offset, det_cols, c0, params)
    else:
        path = _fullframe_sets(xp, usable, dms_offset, det_cols, r0, params)
    # path: None (nothing to correct) or (sets, colgroup, namps, npar, side)

    out = xp.empty(data.shape, dtype=np.float32)
    passes = [(contiguous(k, data, np.float32), out, nints * ngroups, False)]
    do_zeroframe = zeroframe is not None and bool(exposure.zero_frame)
    if do_zeroframe:
        passes.append((contiguous(k, zeroframe, np.float32), new_zeroframe, nints, True))

    geometry = dict(ny=ny, nx=nx, fast=fast, slow=slow, dny=dny, dnx=dnx, r0=r0, c0=c0)
    for src, dst, nplanes, is_zf in passes:
        if path is None:
            _apply(k, src, dst, nplanes, geometry, None, None, None, params, NEVER, is_zf)
            continue
        sets, colgroup, namps, npar, side = path
        if namps is None:  # 1-output path: always the float32 buffer
            f64_from = NEVER
        elif not first_plane:
            f64_from = 0
        elif side:  # float64 after the segment's first plane (always before ZEROFRAME)
            f64_from = 0 if is_zf else 1
        else:
            f64_from = NEVER
        values, kinds = _clipped_means(k, src, nplanes, sets, ny * nx, f64_from, params)
        if namps is None:
            refs, nref = values, len(sets)
        else:
            nref = namps * npar
            refs = xp.empty(nplanes * nref, dtype=np.float64)
            k.launch(
                "tso_rp_amp_refs", nplanes * namps, values, kinds, np.int64(nplanes),
                np.int64(namps), np.int64(npar), refs,
            )  # fmt: skip
        combined = None
        if side:
            combined = xp.empty(nplanes * dny, dtype=np.float64)
            k.launch(
                "tso_rp_side_medians", nplanes * dny, src, np.int64(nplanes), np.int64(ny),
                np.int64(nx), np.int32(fast), np.int32(slow), window_dq,
                dqv(k), np.int64(dny), np.int64(dnx), np.int64(r0),
                np.int64(c0), np.int64(full), np.int64(full),
                np.int64(params.side_smoothing_length), refs, np.int64(nref), colgroup,
                np.int64(f64_from), combined,
            )  # fmt: skip
        _apply(k, src, dst, nplanes, geometry, refs, colgroup, combined, params, f64_from, is_zf)
    return out, new_zeroframe, np_refpix.COMPLETE


def _subarray_sets(xp, window_dq, usable, dms_offset, det_cols, col0, params):
    """``_subarray_corrector``'s reference sets: (sets, colgroup, None, 1, False) or None.

    Set 0 holds the even detector columns' reference pixels (all of them without
    ``odd_even_columns``), set 1 the odd ones; ``colgroup`` gives each window column its set.
    """
    is_ref = ((window_dq & np.uint32(dq.REFERENCE_PIXEL)) != 0) & usable
    if int(xp.count_nonzero(is_ref)) == 0:
        return None
    if not params.odd_even_columns:
        return [dms_offset[is_ref]], xp.zeros(det_cols.size, dtype=np.int32), None, 1, False
    even = (det_cols % 2) == 0  # parity_cols: the slice col0 % 2 :: 2 of window columns
    sets = [dms_offset[is_ref & even[None, :]], dms_offset[is_ref & ~even[None, :]]]
    np_refpix.check_parities([int(s.size) for s in sets])
    colgroup = xp.where(even, 0, 1).astype(np.int32)
    return sets, colgroup, None, 1, False


def _fullframe_sets(xp, usable, dms_offset, det_cols, row0, params):
    """``_fullframe_corrector``'s sets: ((amp * npar + parity) * 2 + edge) with edge 0 the
    bottom rows, 1 the top rows; ``colgroup`` = amp * npar + parity of each window column."""
    side = np_refpix.uses_side_pixels(params)
    full, width, amp_width = np_refpix.FULL_SIZE, np_refpix.REFPIX_WIDTH, np_refpix.AMPLIFIER_WIDTH
    npar = 2 if params.odd_even_columns else 1
    namps = full // amp_width
    det_rows = row0 + xp.arange(usable.shape[0], dtype=np.int64)
    amp_of = det_cols // amp_width
    edges = ((0, width), (full - width, full))  # bottom, top
    sets = []
    for amp in range(namps):
        for parity in range(npar):
            in_cols = amp_of == amp
            if npar == 2:
                in_cols = in_cols & (det_cols % 2 == parity)
            for lo, hi in edges:
                rows = (det_rows >= lo) & (det_rows < hi)
                sets.append(dms_offset[usable & rows[:, None] & in_cols[None, :]])
    parity_of = det_cols % 2 if npar == 2 else 0
    colgroup = (amp_of * npar + parity_of).astype(np.int32)
    return sets, colgroup, namps, npar, side


def _clipped_means(k, src, nplanes, sets, plane_size, f64_from, params):
    """``clipped_mean`` of every (plane, set): (values float64, kinds int32), each of
    shape (nplanes * nsets,); kinds 0 None, 1 float32, 2 float64 (refpix.cuh RP_*)."""
    xp = k.xp
    nsets = len(sets)
    sizes = np.array([int(s.size) for s in sets], dtype=np.int64)
    set_start = xp.asarray(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
    total = int(sizes.sum())
    idx = xp.ascontiguousarray(xp.concatenate(sets).astype(np.int64))
    values = xp.empty(nplanes * nsets, dtype=np.float64)
    kinds = xp.empty(nplanes * nsets, dtype=np.int32)
    batch = max(1, min(nplanes, SCRATCH_BYTES // max(1, 4 * total)))
    scratch = xp.empty(max(1, batch * total), dtype=np.float32)
    for p0 in range(0, nplanes, batch):
        nb = min(batch, nplanes - p0)
        k.launch(
            "tso_rp_clipped_means", nb * nsets, src, np.int64(plane_size), np.int64(p0),
            np.int64(nb), idx, set_start, np.int64(nsets), np.int64(f64_from),
            np.int64(np.getbufsize()), np.float64(params.siglimit), scratch, values, kinds,
        )  # fmt: skip
    return values, kinds


def _apply(k, src, dst, nplanes, g, refs, colgroup, combined, params, f64_from, keep_zero):
    """``tso_rp_apply`` over every pixel of the pass (refs None: copy, no reference pixel)."""
    xp = k.xp
    correct = refs is not None
    use_side = combined is not None
    dummy_f64 = xp.zeros(1, dtype=np.float64)
    k.launch(
        "tso_rp_apply", nplanes * g["ny"] * g["nx"], src, dst, np.int64(nplanes),
        np.int64(g["ny"]), np.int64(g["nx"]), np.int32(g["fast"]), np.int32(g["slow"]),
        refs if correct else dummy_f64, np.int64(refs.size // nplanes if correct else 1),
        colgroup if correct else xp.zeros(1, dtype=np.int32),
        combined if use_side else dummy_f64, np.int64(g["dny"]), np.int32(use_side),
        np.float64(params.side_gain), np.int64(f64_from), np.int32(correct),
        np.int32(keep_zero),
    )  # fmt: skip
