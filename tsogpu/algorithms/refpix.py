"""refpix: reference-pixel correction of near-infrared ramps (median algorithm).

Mirrors ``jwst/refpix/reference_pixels.py: correct_model`` as ``RefPixStep`` calls it with
``refpix_algorithm="median"``: paths (A) ``NIRDataset.do_fullframe_corrections`` (NIR full
frame, or a subarray with NOUTPUTS == 4) and (B) ``NIRDataset.do_subarray_corrections`` (a
subarray with any other NOUTPUTS), plus ``process_zeroframe_correction``. MIRI
(``MIRIDataset``) is ``refpix_miri.correct_refpix``, which ``correct_refpix`` hands MIRI
exposures to. Not covered: NIRSpec IRS2 (``NotImplementedError``), SIRS kernels, multistripe
reads.

Frames. jwst embeds a subarray in a zero 2048x2048 frame whose 4-pixel border has
DO_NOT_USE|REFERENCE_PIXEL in PIXELDQ (so border pixels outside the subarray are never used),
then flips/transposes the frame into the DETECTOR frame (``science_detector_frame_transform``).
Here only the subarray is handled: its detector-frame view plus its offset ``(row0, col0)`` in
the detector frame. Amplifiers, top/bottom rows, side columns and the odd/even column parity
are all defined by FULL-FRAME detector coordinates (``col0 + j``), as in jwst.

Loop order a kernel must copy: for each integration, then each group (then ZEROFRAME as a
1-group ramp, continuing the same state), one plane at a time:

(B) 1-output subarray. Reference pixels: REFERENCE_PIXEL set and DO_NOT_USE clear in PIXELDQ,
    split by detector-column parity when ``odd_even_columns``. Per plane: one clipped mean per
    parity (or one for all), then ``out = float32(float64(x) - float64(ref))`` for every pixel
    of that parity.

(A) Full frame / 4-output. Per plane:
    1. Clipped means of the top (rows 2044:2048) and bottom (rows 0:4) reference rows of each
       amplifier (columns 512*a : 512*a+512), per column parity or all columns; DO_NOT_USE
       pixels excluded; pixels are taken by position, REFERENCE_PIXEL is not consulted.
    2. Per amplifier and parity, ``average_with_none(top, bottom)``; an amplifier with a
       missing (None) odd or even value is not corrected. ``g = float64(x) - float64(ref)``.
    3. With ``use_side_ref_pixels``: a running median over ``side_smoothing_length`` rows x
       4 columns of the step-2 result in detector columns 0:4 and 2044:2048 (window rows
       reflected at the frame edges, DO_NOT_USE excluded; NaN where nothing is left), left
       and right combined per row (mean, the one present, or 0), then
       ``out = float32(g - side_gain * combined[row])`` in float64.

    jwst's group buffer is float32 until the first side correction returns a float64 array;
    from then on (later groups and the ZEROFRAME pass) the buffer is float64. So, with side
    pixels: the FIRST plane rounds ``g`` to float32 before the side step and its clipped
    means/medians work on float32 values; every later plane keeps ``g`` in float64 and its
    clipped means and medians are computed on float64 copies of the data. Without side
    pixels everything stays float32 (``out = float32(float64(x) - float64(ref))`` equals the
    float32 subtraction jwst does, because float64 has > 2*24+2 bits).

Clipped mean (``Dataset.sigma_clip`` -> ``scipy.stats.sigmaclip``), on the values gathered in
row-major order of the detector frame (the order matters for float32 sums):
    * if ``std(values) == 0`` in float64 (all values equal): the float64 mean (= that value);
    * else repeat ``m = mean(c); s = std(c)`` (ddof 0, in the data dtype);
      ``c = c[(c >= m - s*siglimit) & (c <= m + s*siglimit)]`` until no value is removed, and
      return ``mean(c)`` in the data dtype.
    NumPy sums float32 pairwise: ``0.0 + pw(x)`` with ``pw(x)`` = sequential for n < 8; for
    n <= 128 eight strided accumulators ``r[j] = x[j] + x[j+8] + ...`` over the first
    n - n%8 values, combined as ``((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))``, then the leftover
    values added in order; for n > 128 ``pw(x[:m]) + pw(x[m:])`` with ``m = n//2 - (n//2)%8``.
    A kernel must reproduce that order (no atomics, no tree of another shape). ``mean`` is
    ``sum / n`` and ``std`` is ``sqrt(sum((x - mean)**2) / n)``, each rounded to the data dtype.
    The bounds are ``mean - std * float(siglimit)`` in the data dtype.

Median of a window (``np.median``): with n valid values sorted, ``0 + s[n//2]`` for odd n and
``((0 + s[n/2-1]) + s[n/2]) / 2`` for even n, in the data dtype (float32 for the first plane,
float64 after), NaN if any valid value is NaN.
"""

import numpy as np

from .. import dq
from ..errors import ConfigError, InputError

FULL_SIZE = 2048  # NIR detector frame, pixels per side
REFPIX_WIDTH = 4  # reference rows/columns at each edge of a NIR detector
AMPLIFIER_WIDTH = 512  # detector columns per output amplifier (4 amplifiers)
NRS_EDGELESS_SUBARRAYS = ("SUB512", "SUB512S", "SUB32")  # jwst NRS_edgeless_subarrays

COMPLETE = "COMPLETE"
SKIPPED = "SKIPPED"


def correct_refpix(data, pixeldq, exposure, params, zeroframe=None, first_plane=True):
    """Apply the jwst reference-pixel correction (median algorithm; MIRI: ``refpix_miri``).

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        Ramps in the DMS frame (after superbias).
    pixeldq : ndarray of uint32, shape (ny, nx)
        PIXELDQ after dq_init/saturation/superbias: REFERENCE_PIXEL marks reference pixels
        (used by the 1-output path), DO_NOT_USE excludes pixels.
    exposure : tsogpu.segment.Exposure
        Uses instrument, subarray, substrt1/2, subsize1/2, fastaxis, slowaxis, noutputs and
        zero_frame.
    params : tsogpu.config.Refpix
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
        Corrected (as a 1-group ramp) only when ``exposure.zero_frame`` is true, as in jwst;
        pixels that are 0.0 on input are 0.0 on output.
    first_plane : bool
        ``data`` starts with the segment's first plane (integration 0, group 0). False for a
        later chunk of integrations: jwst's buffer turned float64 after that first plane
        (4-output path with side pixels, see above), and stays so for the whole segment.

    Returns
    -------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
        A new array (a copy when the step is skipped).
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    status : str
        ``"COMPLETE"`` or ``"SKIPPED"``, the S_REFPIX value jwst sets. An exposure without
        any usable reference pixel is left unchanged and still ``"COMPLETE"`` (jwst code).

    Raises
    ------
    NotImplementedError
        NIRSpec IRS2 data (an axis longer than 2048).
    InputError
        The data shape does not match SUBSIZE1/2, or (1-output path, ``odd_even_columns``)
        reference pixels exist in only one column parity, where jwst itself fails; MIRI: a
        frame larger than the full frame.
    ConfigError
        ``side_smoothing_length`` < 2 with side pixels in use (jwst fails on it).
    """
    if exposure.instrument.upper() == "MIRI":
        from . import refpix_miri  # imported here: it builds on this module (clipped_mean)

        return refpix_miri.correct_refpix(data, pixeldq, exposure, params, zeroframe)
    nints, ngroups, ny, nx = data.shape
    new_zeroframe = None if zeroframe is None else np.array(zeroframe, dtype=np.float32)
    geometry = frame_window((ny, nx), exposure)
    if geometry is None:
        return np.array(data, dtype=np.float32), new_zeroframe, SKIPPED
    is_subarray, (row_start, row_stop), (col_start, col_stop) = geometry

    to_det = frame_transform(exposure.fastaxis, exposure.slowaxis)
    full_dq = _full_frame_pixeldq(
        pixeldq, exposure, is_subarray, (row_start, row_stop), (col_start, col_stop)
    )
    det_dq = to_det(full_dq)
    window = detector_window(to_det, (row_start, row_stop), (col_start, col_stop), full_dq.shape)
    (r0, r1), (c0, c1) = window
    window_dq = np.ascontiguousarray(det_dq[r0:r1, c0:c1])

    out = np.array(data, dtype=np.float32)
    # (source, target) detector-frame views, in jwst's order: integrations, groups, then
    # ZEROFRAME as a 1-group ramp.
    data_det, out_det = to_det(data), to_det(out)
    planes = [(data_det[i, g], out_det[i, g]) for i in range(nints) for g in range(ngroups)]
    do_zeroframe = zeroframe is not None and bool(exposure.zero_frame)
    if do_zeroframe:
        zf_det, new_zf_det = to_det(zeroframe), to_det(new_zeroframe)
        planes += [(zf_det[i], new_zf_det[i]) for i in range(nints)]

    if is_subarray and exposure.noutputs != 4:
        correct = _subarray_corrector(window_dq, c0, params)
    else:
        correct = _fullframe_corrector(window_dq, (r0, c0), det_dq.shape, params, first_plane)
    if correct is not None:
        for source, target in planes:
            target[...] = correct(source)

    if do_zeroframe:
        new_zeroframe[zeroframe == np.float32(0.0)] = np.float32(0.0)
    return out, new_zeroframe, COMPLETE


def frame_window(shape, exposure):
    """Where the data sit in the full frame, with the checks both backends make.

    Near-infrared detectors (MIRI is ``refpix_miri``). Returns None where jwst skips the step
    (a subarray reaching outside the full frame), else ``(is_subarray, (row_start, row_stop),
    (col_start, col_stop))`` in the DMS frame. Raises NotImplementedError (IRS2) or
    InputError (the shape does not match SUBSIZE1/2).
    """
    ny, nx = shape
    if max(ny, nx) > FULL_SIZE:
        raise NotImplementedError(
            f"refpix: data of shape ({ny}, {nx}) have an axis longer than {FULL_SIZE}, i.e. "
            "NIRSpec IRS2 readout; the IRS2 reference-pixel correction is not implemented"
        )
    is_subarray = ny < FULL_SIZE or nx < FULL_SIZE
    if not is_subarray:
        return False, (0, ny), (0, nx)
    row_start, col_start = exposure.substrt2 - 1, exposure.substrt1 - 1
    row_stop, col_stop = row_start + exposure.subsize2, col_start + exposure.subsize1
    if row_start < 0 or col_start < 0 or row_stop > FULL_SIZE or col_stop > FULL_SIZE:
        return None
    if (exposure.subsize2, exposure.subsize1) != (ny, nx):
        raise InputError(
            f"refpix: SUBSIZE2 x SUBSIZE1 = {exposure.subsize2} x {exposure.subsize1} "
            f"does not match the data shape {ny} x {nx}"
        )
    return True, (row_start, row_stop), (col_start, col_stop)


def clipped_mean(values, siglimit):
    """Sigma-clipped mean of DO_NOT_USE-free reference pixels (jwst ``Dataset.sigma_clip``).

    Parameters
    ----------
    values : ndarray of float32 or float64, shape (n,)
        In the order jwst gathers them (row-major in the detector frame).
    siglimit : float
        Clipping limit in standard deviations, both sides.

    Returns
    -------
    numpy.float32, numpy.float64 or None
        None when ``values`` is empty; ``float64(mean)`` when all values are equal; otherwise
        the scipy.stats.sigmaclip mean in the dtype of ``values``.
    """
    if values.size == 0:
        return None
    if np.std(values, dtype=np.float64) == 0.0:
        return np.mean(values, dtype=np.float64)
    limit = values.dtype.type(siglimit)
    clipped = values
    while True:
        std = np.std(clipped)
        mean = np.mean(clipped)
        size = clipped.size
        lower = mean - std * limit
        upper = mean + std * limit
        clipped = clipped[(clipped >= lower) & (clipped <= upper)]
        if clipped.size == size or clipped.size == 0:
            break
    if clipped.size == 0:  # NaN or inf values: every comparison is False, as in scipy
        return values.dtype.type(np.nan)
    return np.mean(clipped)


def frame_transform(fastaxis, slowaxis):
    """DMS -> detector view of the last two axes (jwst science_detector_frame_transform)."""
    fast = 1 if fastaxis > 0 else -1
    slow = 1 if slowaxis > 0 else -1

    def to_detector(a):
        if abs(fastaxis) == 1:
            return a[..., ::slow, ::fast]
        return np.swapaxes(a[..., ::fast, ::slow], -2, -1)

    return to_detector


def _full_frame_pixeldq(pixeldq, exposure, is_subarray, rows, cols):
    """PIXELDQ of the whole frame in the DMS frame, as jwst ``Dataset.get_pixeldq`` builds it.

    Returns
    -------
    ndarray of uint32, shape (2048, 2048) for a subarray, else a copy of ``pixeldq``.
    """
    if not is_subarray:
        return np.array(pixeldq, dtype=dq.PIXELDQ_DTYPE)
    border = dq.PIXELDQ_DTYPE(dq.DO_NOT_USE | dq.REFERENCE_PIXEL)
    full = np.zeros((FULL_SIZE, FULL_SIZE), dtype=dq.PIXELDQ_DTYPE)
    full[:REFPIX_WIDTH, :] = border
    full[-REFPIX_WIDTH:, :] = border
    full[:, :REFPIX_WIDTH] = border
    full[:, -REFPIX_WIDTH:] = border
    (r0, r1), (c0, c1) = rows, cols
    full[r0:r1, c0:c1] = pixeldq
    if exposure.subarray in NRS_EDGELESS_SUBARRAYS:
        # NIRSpec subarrays away from the detector edges: jwst makes the first and last four
        # DMS columns reference pixels.
        ref = dq.PIXELDQ_DTYPE(dq.REFERENCE_PIXEL)
        full[r0:r1, c0 : c0 + REFPIX_WIDTH] |= ref
        full[r0:r1, c1 - REFPIX_WIDTH : c1] |= ref
    return full


def detector_window(to_det, rows, cols, full_shape):
    """Rows and columns that the DMS rectangle ``rows x cols`` occupies in the detector frame.

    Returns
    -------
    ((row0, row1), (col0, col1)) : half-open ranges of detector-frame indices.
    """
    mask = np.zeros(full_shape, dtype=bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    det = to_det(mask)
    det_rows = np.flatnonzero(det.any(axis=1))
    det_cols = np.flatnonzero(det.any(axis=0))
    return (int(det_rows[0]), int(det_rows[-1]) + 1), (int(det_cols[0]), int(det_cols[-1]) + 1)


def check_parities(counts):
    """Raise InputError unless both detector-column parities have reference pixels
    (``counts``: how many each has; the subarray path with ``odd_even_columns``)."""
    if any(n == 0 for n in counts):
        raise InputError(
            "refpix: reference pixels exist in only one detector-column parity; "
            "jwst 3.0 fails on this input (odd_even_columns=True)"
        )


def uses_side_pixels(params):
    """Whether the full-frame path uses the side reference pixels; raises ConfigError where
    ``side_smoothing_length`` is below 2 then (jwst fails on it)."""
    if not params.use_side_ref_pixels:
        return False
    if params.side_smoothing_length < 2:
        raise ConfigError(
            f"refpix.side_smoothing_length must be >= 2 when side reference pixels are "
            f"used, got {params.side_smoothing_length} (jwst fails on it)"
        )
    return True


def _usable(pixeldq):
    return (pixeldq & dq.PIXELDQ_DTYPE(dq.DO_NOT_USE)) == 0


def _subarray_corrector(window_dq, col0, params):
    """Path (B): return ``correct(plane) -> plane`` for a 1-output subarray, or None.

    ``window_dq`` is the detector-frame PIXELDQ of the subarray, uint32 (dny, dnx); ``col0``
    its first detector column. None means no reference pixel: nothing is changed.
    """
    is_ref = ((window_dq & dq.PIXELDQ_DTYPE(dq.REFERENCE_PIXEL)) != 0) & _usable(window_dq)
    if not is_ref.any():
        return None
    # Column-slice start of the even (0-based, full-frame) detector columns.
    even_start = col0 % 2
    if params.odd_even_columns:
        parity_cols = np.zeros(window_dq.shape[1], dtype=bool)
        parity_cols[even_start::2] = True
        sets = [
            (slice(even_start, None, 2), np.nonzero(is_ref & parity_cols[None, :])),
            (slice(1 - even_start, None, 2), np.nonzero(is_ref & ~parity_cols[None, :])),
        ]
        check_parities([idx[0].size for _, idx in sets])
    else:
        sets = [(slice(None), np.nonzero(is_ref))]

    def correct(plane):
        result = np.empty(plane.shape, dtype=np.float32)
        for columns, index in sets:
            ref = np.float64(clipped_mean(plane[index], params.siglimit))
            result[:, columns] = (plane[:, columns].astype(np.float64) - ref).astype(np.float32)
        return result

    return correct


def average_with_none(a, b):
    """jwst ``average_with_none``: ``0.5 * (a + b)`` in float32 only if both are float32."""
    if a is None:
        return b
    if b is None:
        return a
    if a.dtype == np.float32 and b.dtype == np.float32:
        return np.float32(0.5) * (a + b)
    return np.float64(0.5) * (np.float64(a) + np.float64(b))


def _fullframe_corrector(window_dq, origin, full_shape, params, first_plane=True):
    """Path (A): return ``correct(plane) -> plane`` for full frame or 4-output subarrays.

    ``window_dq`` is the detector-frame PIXELDQ of the data, uint32 (dny, dnx); ``origin``
    its (row, column) offset in the detector frame of shape ``full_shape``. The returned
    function keeps jwst's buffer-dtype state across calls (see the module docstring), so it
    must be called on the planes in jwst's order.
    """
    dny, dnx = window_dq.shape
    row0, col0 = origin
    nrows_full, ncols_full = full_shape
    usable = _usable(window_dq)
    det_cols = col0 + np.arange(dnx)
    det_rows = row0 + np.arange(dny)

    # Top/bottom reference sets per amplifier: (amplifier, parity) -> [(rows, cols), ...]
    # with parity 0 for even detector columns, 1 for odd, None for all columns.
    parities = (0, 1) if params.odd_even_columns else (None,)
    edges = ((0, REFPIX_WIDTH), (nrows_full - REFPIX_WIDTH, nrows_full))  # bottom, top
    ref_sets = {}
    for amp in range(ncols_full // AMPLIFIER_WIDTH):
        in_amp = (det_cols // AMPLIFIER_WIDTH) == amp
        for parity in parities:
            in_cols = in_amp if parity is None else in_amp & (det_cols % 2 == parity)
            ref_sets[amp, parity] = [
                np.nonzero(usable & ((det_rows >= lo) & (det_rows < hi))[:, None] & in_cols)
                for lo, hi in edges
            ]
    column_groups = {
        key: np.flatnonzero(
            ((det_cols // AMPLIFIER_WIDTH) == key[0])
            & ((det_cols % 2 == key[1]) if key[1] is not None else True)
        )
        for key in ref_sets
    }

    side = None
    if uses_side_pixels(params):
        length = params.side_smoothing_length
        side = [
            _side_window(usable, (row0, col0), nrows_full, (lo, lo + REFPIX_WIDTH), length)
            for lo in (0, ncols_full - REFPIX_WIDTH)
        ]
    side_gain = np.float64(params.side_gain)
    state = {"float64_buffer": not first_plane}

    def correct(plane):
        work = plane.astype(np.float64) if state["float64_buffer"] else plane
        column_ref = np.zeros(dnx, dtype=np.float64)
        signals = {
            key: average_with_none(
                *(clipped_mean(work[index], params.siglimit) for index in index_pair)
            )
            for key, index_pair in ref_sets.items()
        }
        for amp in range(ncols_full // AMPLIFIER_WIDTH):
            amp_signals = [signals[amp, parity] for parity in parities]
            if any(signal is None for signal in amp_signals):
                continue  # jwst leaves an amplifier without odd or even reference alone
            for parity, signal in zip(parities, amp_signals, strict=True):
                column_ref[column_groups[amp, parity]] = np.float64(signal)
        corrected = plane.astype(np.float64) - column_ref[None, :]
        if side is None:
            return corrected.astype(np.float32)
        if not state["float64_buffer"]:
            corrected = corrected.astype(np.float32)  # jwst's buffer is still float32
        left, right = (_running_median(corrected, *window) for window in side)
        combined = _combine_with_nans(left, right)
        state["float64_buffer"] = True  # jwst's group buffer is float64 from here on
        return (corrected.astype(np.float64) - side_gain * combined[:, None]).astype(np.float32)

    return correct


def _side_window(usable, origin, nrows_full, cols, length):
    """Gather indices of the running-median windows of one side (detector columns ``cols``).

    For each data row (full-frame row R), the window is ``length`` full-frame rows starting at
    ``R - b``, ``b = L // 2`` with ``L`` = length rounded up to odd (so an even length gives
    an asymmetric window, as in jwst ``median_filter``), reflected at the frame edges without
    repeating the edge row. Rows or columns outside the data are unusable.

    Returns
    -------
    rows : ndarray of intp, shape (dny, length, 1), local row index (clipped)
    columns : ndarray of intp, shape (1, 1, ncols), local column index (clipped)
    valid : ndarray of bool, shape (dny, length * ncols)
    """
    dny, dnx = usable.shape
    row0, col0 = origin
    half = (length + (1 - length % 2)) // 2
    full_rows = (row0 + np.arange(dny))[:, None] - half + np.arange(length)[None, :]
    full_rows = np.where(full_rows < 0, -full_rows, full_rows)
    full_rows = np.where(full_rows >= nrows_full, 2 * nrows_full - 2 - full_rows, full_rows)
    local_rows = full_rows - row0
    local_cols = np.arange(cols[0], cols[1]) - col0
    row_in = (local_rows >= 0) & (local_rows < dny)
    col_in = (local_cols >= 0) & (local_cols < dnx)
    rows = np.clip(local_rows, 0, dny - 1)[:, :, None]
    columns = np.clip(local_cols, 0, dnx - 1)[None, None, :]
    valid = row_in[:, :, None] & col_in[None, None, :] & usable[rows, columns]
    return rows, columns, valid.reshape(dny, -1)


def _running_median(plane, rows, columns, valid):
    """Median of the valid window values per row, as ``np.median`` computes it.

    Parameters
    ----------
    plane : ndarray of float32 or float64, shape (dny, dnx)
    rows, columns, valid : from :func:`_side_window`

    Returns
    -------
    ndarray of float64, shape (dny,); NaN where no value is valid or a valid value is NaN.
    """
    values = plane[rows, columns].reshape(valid.shape)
    dtype = values.dtype.type
    count = valid.sum(axis=1)
    has_nan = (valid & np.isnan(values)).any(axis=1)
    # Invalid entries sort last; a valid +inf equals the filler, so the picks stay right.
    ordered = np.sort(np.where(valid, values, dtype(np.inf)), axis=1)
    upper = np.take_along_axis(ordered, (count // 2)[:, None], axis=1)[:, 0]
    lower = np.take_along_axis(ordered, np.maximum(count // 2 - 1, 0)[:, None], axis=1)[:, 0]
    # np.median is np.mean of the middle one or two values: a sum that starts at +0.0.
    odd = dtype(0.0) + upper
    even = ((dtype(0.0) + lower) + upper) / dtype(2.0)
    median = np.where(count % 2 == 1, odd, even).astype(np.float64)
    median[(count == 0) | has_nan] = np.nan
    return median


def _combine_with_nans(left, right):
    """jwst ``combine_with_nans``: mean where both are non-NaN, the non-NaN one, else 0."""
    left_ok = ~np.isnan(left)
    right_ok = ~np.isnan(right)
    combined = np.zeros(left.shape, dtype=np.float64)
    combined[left_ok & ~right_ok] = left[left_ok & ~right_ok]
    combined[right_ok & ~left_ok] = right[right_ok & ~left_ok]
    both = left_ok & right_ok
    combined[both] = np.float64(0.5) * (left[both] + right[both])
    return combined
