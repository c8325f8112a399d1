"""dark_current: subtract a (frame-averaged, possibly extrapolated) dark; NIR 3-D darks and
MIRI's integration-dependent 4-D darks.

Mirrors ``stcal/dark_current/dark_sub.py: do_correction_data`` with ``extrapolate_dark``,
``average_dark_frames_3d``, ``average_dark_frames_4d`` and ``subtract_dark``, and
``jwst/dark_current/dark_current_step.py: DarkCurrentStep.set_average_dark_current``.

Host-side preparation of the per-group dark ``D[g]`` (ngroups, ny, nx), in stcal's order:

1. If the science spans more frames than the dark
   (``ngroups*nframes + (ngroups-1)*groupgap``), append
   ``ceil((missing + dark_groupgap) / (dark_nframes + dark_groupgap))`` groups
   ``last + k*(last - second_last)``, k = 1, 2, ...: ``last - second_last`` in float32, the
   rest in float64 (NumPy's int64 * float32 -> float64), and the whole dark becomes float64.
2. jwst skips the step (returns the input) if ``dark_nframes > nframes`` or
   ``dark_groupgap > groupgap``; this function returns None then.
3. NaN dark values become 0.
4. Same NFRAMES and GROUPGAP: ``D[g] = dark[g]``. Otherwise dark groups are treated as frames:
   ``D[g] = mean(dark[start:start+nframes])``, ``start += nframes + groupgap`` (a copy when
   nframes == 1). The mean is a sequential sum over frames divided by the count, in the dark's
   dtype (float32, or float64 after extrapolation), stored as float32; slices running past the
   end are shortened (empty gives NaN), as NumPy slicing does in stcal.

Per pixel: ``pixeldq |= dark_dq``; ``data[i, g] -= D[g]`` for every integration and group
regardless of GROUPDQ. The subtraction is in float32 when ``D`` is float32; when ``D`` is
float64 (extrapolated, direct path) it is ``float32(float64(data) - D)`` as NumPy's in-place
``float32 -= float64`` does. (For float32 values both give the same bits.)

MIRI (a 4-D dark, (dark_nints, dark_ngroups, ny, nx), and 4-D DQ): each dark integration is
prepared as above on its own (stcal extrapolates and averages each one alike), and science
integration ``j`` of the exposure (0-based; ``j = int_start + i`` for ``data[i]``) subtracts
dark integration ``min(j, dark_nints - 1)``: the first integrations their own, every later
one the last. PIXELDQ is ORed with ``dark_dq[n, 0]`` of every dark integration ``n`` (stcal
reads only the first DQ plane of each). Two stcal corners this does not copy, neither
reachable with MIRI's readouts (NFRAMES 1, GROUPGAP 0) and darks (2 integrations):

* stcal decides by the file's INTSTART: in a segment with INTSTART > 1 every integration
  gets the last dark integration. That equals the rule above unless the segment starts
  before the dark's last integration, i.e. INTSTART - 1 < dark_nints - 1 (a dark of 3 or
  more integrations and a first segment shorter than dark_nints - 1 integrations).
* frame averaging (NFRAMES or GROUPGAP differ from the dark's) averages only the first
  ``min(dark_nints, nints of the segment)`` dark integrations and leaves the others zero,
  so a segment with INTSTART > 1 and fewer integrations than the dark has no dark
  subtracted at all; here the last dark integration is averaged and subtracted.
"""

import numpy as np

from .. import dq


def jwst_skips(nframes, groupgap, dark_nframes, dark_groupgap):
    """Whether jwst skips the step: the dark's NFRAMES or GROUPGAP is larger than the
    science's."""
    return dark_nframes > nframes or dark_groupgap > groupgap


def extrapolated_groups(ngroups, nframes, groupgap, dark_ngroups, dark_nframes, dark_groupgap):
    """The groups stcal appends to the dark (0: none), once the dark is checked to cover the
    science's ``ngroups`` groups.

    Both backends ask this before they prepare the dark. Raises IndexError where stcal fails
    on an index past the end of the dark: a one-group dark to extrapolate (its ``dark[-2]``),
    or a science group whose frame the (extrapolated) dark does not have.
    """
    sci_total = ngroups * nframes + (ngroups - 1) * groupgap
    drk_total = dark_ngroups * dark_nframes + (dark_ngroups - 1) * dark_groupgap
    n_new = 0
    if sci_total > drk_total:
        missing = sci_total - drk_total
        n_new = int(np.ceil((missing + dark_groupgap) / (dark_nframes + dark_groupgap)))
        if dark_ngroups < 2:
            raise IndexError(
                f"the dark has {dark_ngroups} group, too few to extrapolate it to the "
                f"science's {sci_total} frames (stcal reads its last two groups)"
            )
    frames = dark_ngroups + n_new
    direct = nframes == dark_nframes and groupgap == dark_groupgap
    last_start = (ngroups - 1) * (nframes + groupgap)
    if (direct and ngroups > frames) or (not direct and nframes == 1 and last_start >= frames):
        raise IndexError(
            f"the dark has {frames} frames, too few for {ngroups} groups of NFRAMES={nframes} "
            f"and GROUPGAP={groupgap}"
        )
    return n_new


def prepare_dark(dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap):
    """The per-group dark stcal subtracts: shape (ngroups, ny, nx), float32 or float64."""
    d = np.asarray(dark)
    n_new = extrapolated_groups(ngroups, nframes, groupgap, d.shape[0], dark_nframes, dark_groupgap)
    if n_new:
        rate = np.subtract(d[-1], d[-2], dtype=np.float32)
        steps = np.arange(1, n_new + 1, dtype=np.float64)[:, None, None]
        new = steps * rate.astype(np.float64) + d[-1].astype(np.float64)
        d = np.concatenate((d.astype(np.float64), new))
    d = np.where(np.isnan(d), d.dtype.type(0.0), d)

    if nframes == dark_nframes and groupgap == dark_groupgap:
        return d[:ngroups]

    averaged = np.zeros((ngroups,) + d.shape[1:], dtype=np.float32)
    start = 0
    for g in range(ngroups):
        end = start + nframes
        if nframes == 1:
            averaged[g] = d[start]
        else:
            frames = d[start:end]
            if frames.shape[0] == 0:
                averaged[g] = np.float32(np.nan)
            else:
                total = frames[0].copy()
                for k in range(1, frames.shape[0]):
                    total += frames[k]
                # float32 dark: float32 sum / float32(count); float64 dark: float64 throughout
                averaged[g] = total / d.dtype.type(frames.shape[0])
        start = end + groupgap
    return averaged


def dark_integrations(nints, int_start, dark_nints):
    """The dark integration each science integration subtracts (MIRI's 4-D darks).

    Parameters
    ----------
    nints : int
        Integrations in ``data``.
    int_start : int
        0-based index in the whole exposure of ``data[0]``.
    dark_nints : int
        Integrations in the dark.

    Returns
    -------
    ndarray of int64, shape (nints,): ``min(int_start + i, dark_nints - 1)``.
    """
    return np.minimum(np.arange(int_start, int_start + nints, dtype=np.int64), dark_nints - 1)


def dark_dq_image(dark_dq):
    """The dark's DQ as one (ny, nx) image: itself (3-D darks), or for a 4-D DQ
    (dark_nints, ngroups, ny, nx) the OR of each integration's first plane, as stcal takes it."""
    dark_dq = np.asarray(dark_dq)
    if dark_dq.ndim == 2:
        return dark_dq
    image = np.array(dark_dq[0, 0], dtype=dq.PIXELDQ_DTYPE)
    for n in range(1, dark_dq.shape[0]):
        image |= dark_dq[n, 0]
    return image


def subtract_dark(
    data,
    pixeldq,
    dark,
    dark_dq,
    *,
    nframes,
    groupgap,
    dark_nframes,
    dark_groupgap,
    int_start=0,
):
    """Subtract the dark reference, matched to the science group structure.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, shape (ny, nx)
    dark : ndarray of float32, shape (ngroups_d, ny, nx) or (nints_d, ngroups_d, ny, nx)
        DARK SCI (already matching the science subarray); 4-D for MIRI, one dark per
        integration.
    dark_dq : ndarray of uint32, shape (ny, nx) or (nints_d, ngroups_dq, ny, nx)
        DARK DQ, remapped to standard bits (4-D for MIRI: only plane ``[n, 0]`` is used).
    nframes, groupgap : int
        Science NFRAMES and GROUPGAP.
    dark_nframes, dark_groupgap : int
        The dark's NFRAMES and GROUPGAP.
    int_start : int
        0-based index in the whole exposure of ``data[0]`` (INTSTART - 1 plus the chunk's
        first integration in the segment); picks the dark integration of a 4-D dark, unused
        for a 3-D one.

    Returns
    -------
    (data, pixeldq) : float32 (nints, ngroups, ny, nx) and uint32 (ny, nx), new arrays;
        or None where jwst skips the step (dark NFRAMES or GROUPGAP larger than the science).
    """
    if jwst_skips(nframes, groupgap, dark_nframes, dark_groupgap):
        return None
    dark = np.asarray(dark)
    nints, ngroups = data.shape[:2]
    args = (ngroups, nframes, groupgap, dark_nframes, dark_groupgap)
    new_pixeldq = np.bitwise_or(pixeldq, dark_dq_image(dark_dq), dtype=dq.PIXELDQ_DTYPE)
    new_data = np.empty_like(data, dtype=np.float32)
    if dark.ndim == 4:
        index = dark_integrations(nints, int_start, dark.shape[0])
        first = int(index[0])
        # the dark integrations used, prepared one by one: index - first picks from them
        per_int = np.stack([prepare_dark(dark[n], *args) for n in range(first, int(index[-1]) + 1)])
        pick = index - first
        for g in range(ngroups):
            new_data[:, g] = _minus(data[:, g], per_int[pick, g])
        return new_data, new_pixeldq
    per_group = prepare_dark(dark, *args)
    for g in range(ngroups):
        new_data[:, g] = _minus(data[:, g], per_group[g])
    return new_data, new_pixeldq


def _minus(data, dark):
    """``data - dark`` as stcal's in-place ``float32 -= dark`` stores it (float32 or float64
    dark)."""
    if dark.dtype == np.float64:
        return (data.astype(np.float64) - dark).astype(np.float32)
    return np.subtract(data, dark, dtype=np.float32)


def average_dark_current(
    shape, param_value, dark_avg_array, dark_avg_keyword, *, ramp_avg_array=None
):
    """The average dark current (e-/s) that ramp fitting uses for Poisson variance.

    Follows ``DarkCurrentStep.set_average_dark_current`` as it behaves in jwst 3.0:

    1. the step parameter ``average_dark_current``, if set, as a float32 image;
    2. else, if the dark has no AVDRKCUR image or its (float32) sum is 0.0, the dark's
       AVDRKCUR keyword (0 if absent);
    3. else the AVDRKCUR image is used only if its shape equals that of the science ramp's
       OWN AVDRKCUR array. A ramp read from an uncal file has none (the Level-1b schema has
       no AVDRKCUR), so jwst logs "does not match shape of data", leaves the attribute unset,
       and ramp fitting uses zeros. This returns zeros then: the dark's image is, in effect,
       never used for uncal input.

    Parameters
    ----------
    shape : tuple of int
        (ny, nx) of the science data.
    param_value : float or None
        Step parameter ``average_dark_current``.
    dark_avg_array : ndarray of float32, shape (ny, nx), or None
        The dark's AVDRKCUR extension.
    dark_avg_keyword : float or None
        The dark's AVDRKCUR header keyword.
    ramp_avg_array : ndarray, or None
        The science ramp's own AVDRKCUR array (None for uncal input).

    Returns
    -------
    ndarray of float32, shape ``shape``; a new array.
    """
    zeros = np.zeros(shape, dtype=np.float32)
    if param_value is not None:
        # jwst: get_default (float32 zeros) + Python float -> float32
        return zeros + np.float32(param_value)
    if dark_avg_array is None or np.sum(dark_avg_array) == 0.0:
        scalar = 0.0 if dark_avg_keyword is None else dark_avg_keyword
        return zeros + np.float32(scalar)
    if np.shape(ramp_avg_array) != np.shape(dark_avg_array):
        if ramp_avg_array is None:
            return zeros
        return np.array(ramp_avg_array, dtype=np.float32)
    return np.array(dark_avg_array, dtype=np.float32)
