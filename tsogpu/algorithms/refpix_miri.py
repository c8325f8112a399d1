"""refpix for MIRI: the reference-column correction of a full frame; subarrays are skipped.

Mirrors ``jwst/refpix/reference_pixels.py: correct_model`` for MIRI (``MIRIDataset``) as
``RefPixStep`` calls it. A MIRI subarray (fewer than 1024 rows or 1032 columns,
``reffile_utils.is_subarray``) is not corrected: jwst returns ``SUBARRAY_SKIPPED`` and the
step's status is SKIPPED. A full frame (1024 x 1032; the DMS and detector frames are the
same) is corrected by ``MIRIDataset.do_fullframe_corrections``:

1. Per integration, the first group is subtracted from every group:
   ``x' = float32(float64(x[g]) - float64(x[0]))`` (jwst's float64 ``first_read``; the same
   bits as a float32 subtraction).
2. For every group g >= 1, one plane at a time in a float32 buffer: the four amplifiers A-D
   own the columns ``c % 4 == 0..3``; their reference pixels are column ``a`` (left) and
   column ``1028 + a`` (right), all 1024 rows. With ``odd_even_rows`` each column is split
   into rows 0, 2, 4, ... ("odd", 1-based) and 1, 3, 5, ...; else all rows form one set.
   Each set's clipped mean is ``refpix.clipped_mean`` of its values without DO_NOT_USE (in
   row order): float32, or float64 where all values are equal.
3. The signal of an amplifier (and row parity) is ``0.5 * (left + right)`` in the dtype of
   the sum (float32 when both means are float32, else float64: ``refpix.average_with_none``
   of two means), and
   ``x'' = float32(float64(x') - float64(signal))`` for every pixel of the amplifier's
   columns (the reference columns included) in the rows of that parity.
4. ``out = float32(float64(x'') + float64(x[0]))``: the first group is added back (group 0
   comes back exactly; the other groups are rounded twice, also where nothing is corrected).

If any reference set has no pixel without DO_NOT_USE, jwst flags bad reference pixels at the
first corrected plane and corrects nothing (its flag is never reset, and PIXELDQ is the same
for every plane), but steps 1 and 4 still run; the status is COMPLETE. A ramp of one group
is only steps 1 and 4. ZEROFRAME (which MIRI does not have), where ``exposure.zero_frame``,
goes through jwst as a 1-group ramp: ``(z - z) + z`` (NaN where z is infinite), then its
0.0 values (-0.0 included) are set to 0.0.

Loop order a kernel must copy: integrations, then groups, each plane on its own; every
plane is independent of the others, so chunks of integrations need no state.
"""

import numpy as np

from .. import dq
from ..errors import InputError
from .refpix import COMPLETE, SKIPPED, average_with_none, clipped_mean

MIRI_SHAPE = (1024, 1032)  # (rows, columns) of a MIRI full frame
NAMPS = 4  # amplifiers A-D: the columns c % 4 == a
RIGHT_COLUMN = 1028  # first right reference column (amplifier A); the left ones are 0..3


def correct_refpix(data, pixeldq, exposure, params, zeroframe=None):
    """Apply jwst's MIRI reference-pixel correction.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
        DO_NOT_USE excludes reference pixels.
    exposure : tsogpu.segment.Exposure
        Uses ``zero_frame``. The frame's shape tells the full frame (1024, 1032) from a
        subarray (anything smaller), as jwst does.
    params : tsogpu.config.Refpix
        Uses ``odd_even_rows`` and ``siglimit`` (the NIR parameters do not apply).
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
        Passed through as jwst does when ``exposure.zero_frame`` (see above), else copied.

    Returns
    -------
    data : ndarray of float32, shape (nints, ngroups, ny, nx), a new array
    zeroframe : ndarray of float32, shape (nints, ny, nx), or None
    status : str
        ``"SKIPPED"`` for a subarray, else ``"COMPLETE"``.

    Raises
    ------
    InputError
        A frame larger than MIRI's full frame on either axis.
    """
    new_zeroframe = None if zeroframe is None else np.array(zeroframe, dtype=np.float32)
    if not is_full_frame(data.shape[-2:]):
        return np.array(data, dtype=np.float32), new_zeroframe, SKIPPED
    nints, ngroups = data.shape[:2]
    sets = reference_sets(pixeldq, params.odd_even_rows)
    correct = all(rows.size for rows, _ in sets)
    npar = 2 if params.odd_even_rows else 1
    out = np.empty(data.shape, dtype=np.float32)
    for i in range(nints):
        first = data[i, 0].astype(np.float64)
        for g in range(ngroups):
            plane = (data[i, g].astype(np.float64) - first).astype(np.float32)
            if correct and g > 0:
                plane = _correct_plane(plane, sets, npar, params.siglimit)
            out[i, g] = (plane.astype(np.float64) + first).astype(np.float32)
    if zeroframe is not None and exposure.zero_frame:
        z = new_zeroframe.astype(np.float64)
        new_zeroframe = ((z - z).astype(np.float32).astype(np.float64) + z).astype(np.float32)
        new_zeroframe[zeroframe == np.float32(0.0)] = np.float32(0.0)
    return out, new_zeroframe, COMPLETE


def is_full_frame(shape):
    """Whether a (ny, nx) frame is MIRI's full frame (else a subarray, which jwst skips)."""
    ny, nx = shape
    if ny > MIRI_SHAPE[0] or nx > MIRI_SHAPE[1]:
        raise InputError(
            f"refpix: a MIRI frame of {ny} x {nx} pixels is larger than the full frame "
            f"({MIRI_SHAPE[0]} x {MIRI_SHAPE[1]})"
        )
    return (ny, nx) == MIRI_SHAPE


def reference_sets(pixeldq, odd_even_rows):
    """The reference sets of a full frame, in the order of ``set_index``.

    Returns
    -------
    list of (rows, column): the rows (int64, ascending) of the set's pixels without DO_NOT_USE
    and their column.
    """
    usable = (np.asarray(pixeldq) & dq.PIXELDQ_DTYPE(dq.DO_NOT_USE)) == 0
    npar = 2 if odd_even_rows else 1
    sets = []
    for amp in range(NAMPS):
        for parity in range(npar):
            for column in (amp, RIGHT_COLUMN + amp):
                rows = np.arange(parity, MIRI_SHAPE[0], npar, dtype=np.int64)
                sets.append((rows[usable[rows, column]], column))
    return sets


def set_index(amp, parity, side, npar):
    """The index of a reference set: amplifier, row parity (0 with one set a column), side (0
    left, 1 right)."""
    return (amp * npar + parity) * 2 + side


def _correct_plane(plane, sets, npar, siglimit):
    """Steps 2-3 on one first-read-subtracted float32 plane; a new array."""
    means = [clipped_mean(plane[rows, column], siglimit) for rows, column in sets]
    out = np.empty_like(plane)
    for amp in range(NAMPS):
        for parity in range(npar):
            s = set_index(amp, parity, 0, npar)
            signal = np.float64(average_with_none(means[s], means[s + 1]))
            cells = (slice(parity, None, npar), slice(amp, None, NAMPS))
            out[cells] = (plane[cells].astype(np.float64) - signal).astype(np.float32)
    return out
