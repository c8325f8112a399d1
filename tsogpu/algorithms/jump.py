"""jump: cosmic-ray detection by two-point differences (NIR), with optional snowball flagging.

This module and ``twopoint_difference.py`` are the readable specification: ``find_crs`` and
its helpers (``twopoint_difference.py``) follow stcal 1.20's ``jump/twopoint_difference.py``
function by function (same names, same loops, NumPy and astropy's ``sigma_clip`` as stcal
calls them). The machine runs the tuned path, ``tsogpu/algorithms/jump_fast.py``, which gives
the same bits (``tests/test_spec_vs_fast.py``); snowballs are shared (``snowball.py``).

Mirrors ``jwst/jump/jump_step.py: JumpStep`` (wrapper, PRIMECRS/EXTNCRS) and stcal 1.20
``jump/jump.py: detect_jumps_data`` + ``jump/twopoint_difference.py: find_crs`` run as jwst runs
them (``maximum_cores='1'``: one slice, ``minimum_groups`` forced to 3). MIRI showers
(``find_showers``) are not covered.

Order, as in stcal:

1. ``ngroups <= 2``: SKIPPED, nothing changes.
2. ``pixeldq |= NO_GAIN_VALUE | DO_NOT_USE`` where gain <= 0 or NaN. ``data_e = data * gain``
   and ``rn_e = readnoise * gain`` (float32). After-jump thresholds
   ``e = float32(dn) * nanmedian(gain)`` (float32, NumPy 2 scalar rules), group counts
   ``n = int(time // tgroup)``.
3. Two-point detection (``find_crs``): data NaN where GROUPDQ has DNU or SAT; float64 first
   differences (float32 difference, then ``/ 1.0`` in float64); per pixel the signed nanmedian of
   all differences of all integrations, ``sigma = sqrt(|median| + rn_e**2 / nframes)`` (0 -> NaN).
   Path: sigma clipping across integrations (``only_use_ints`` and nints >= minimum_sigclip_groups),
   else a single pass when ``min_usable_diffs >= min_diffs_single_pass``, else the iterative
   search. Then the count of JUMP bits (PRIMECRS numerator), 4-neighbour flagging, after-jump
   flagging.
4. JUMP removed where DNU or SAT is also set.
5. Snowballs (``flag_snowballs``) if ``expand_large_events``.

Locality (for chunking by rows; a CUDA thread per pixel):

* Per pixel: everything in step 3 except the items below (the median, sigma, the sigma clip
  across integrations, the iterative search and the after-jump propagation use only that
  pixel's own values over its integrations and groups).
* Whole-frame statistics (``FrameStats``, computed by ``frame_stats`` on the full arrays):
  - ``all_dnu[i, g]``: every pixel of plane (i, g) of the input GROUPDQ has DNU. It sets
    ``min_usable_groups = ngroups - max_i(sum_g all_dnu)`` which decides the internal skip
    (< 3 and no sigma clipping) and single pass vs iterative, and (with ``only_use_ints=False``)
    the sigma-clip switch.
  - ``gain_median``: nanmedian of the whole gain array (after-jump DN -> e- thresholds).
  - sigma-clip path only: after flagging, in every plane (i, g) where *every* pixel has JUMP or DNU,
    pixels whose GROUPDQ is exactly JUMP are reset to 0. This depends on the detection result of
    the whole plane. A chunk computes it over its own rows and returns it
    (``JumpResult.sigclip_planes``); the AND over all chunks is the whole-frame value; a chunk
    whose own value differs from it must be rerun with ``FrameStats.sigclip_planes`` set to
    the whole-frame value (the local value can only be True where the global one is False).
* Neighbour flagging: a pixel gets JUMP when one of its 4 neighbours is a seed (JUMP after
  detection and min < ratio < max). It needs a halo of 1 row (and column) on each side: run the
  chunk on rows ``[a-1, b+1)`` (clipped to the frame) and keep rows ``[a, b)``. After-jump
  flagging uses the JUMP bits after neighbour flagging, so it adds no further halo.
  ``JumpResult.crs_per_pixel`` gives the PRIMECRS count per pixel so a halo can be left out.
* Snowballs are not local (connected regions of any size, ellipses up to
  ``2*max_extended_radius`` pixels, ``near_edge`` uses the frame size): run ``flag_snowballs``
  on the whole assembled frame after the chunks (steps 1-4 with snowballs off).
* PRIMECRS/EXTNCRS (``cosmic_ray_rates``) use the whole output GROUPDQ (all-DNU planes) and the
  frame size.

Snowballs use scikit-image, imported lazily (``snowball.py``); the sigma clip uses astropy.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import dq
from ..errors import InputError
from .snowball import flag_snowballs
from .twopoint_difference import SIGCLIP_MAXITERS, choose_path, find_crs

__all__ = [
    "FrameStats",
    "SIGCLIP_MAXITERS",
    "JumpResult",
    "all_dnu_planes",
    "choose_path",
    "cosmic_ray_rates",
    "detect_jumps",
    "find_crs",
    "flag_snowballs",
    "frame_stats",
    "run_jump_step",
]

_JUMP = np.uint8(dq.JUMP_DET)
_DNU = np.uint8(dq.DO_NOT_USE)
_SAT = np.uint8(dq.SATURATED)


@dataclass(frozen=True)
class FrameStats:
    """Statistics over whole frames that the per-pixel detection needs (see module docstring).

    Attributes
    ----------
    all_dnu : ndarray of bool, (nints, ngroups)
        Plane (i, g) of the input GROUPDQ has DO_NOT_USE in every pixel.
    gain_median : numpy.float32
        ``nanmedian(gain)`` over the whole frame (NaN if all NaN).
    sigclip_planes : ndarray of bool, (nints, ngroups), or None
        Sigma-clip path: planes where every pixel has JUMP or DNU after flagging. None: take
        it from the rows given.
    """

    all_dnu: np.ndarray
    gain_median: np.float32
    sigclip_planes: np.ndarray | None = None


class JumpResult(NamedTuple):
    """What ``detect_jumps`` returns.

    Attributes
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    primary_cosmic_rays : float or None
        PRIMECRS as jwst writes it (None where jwst leaves it unset).
    number_extended_events : float or None
        EXTNCRS as jwst writes it (0.0 with snowballs off).
    status : str
        "COMPLETE" or "SKIPPED".
    number_crs : int
        stcal's count of JUMP bits after detection, before neighbour/after-jump flagging
        (-99 when stcal skips detection internally).
    n_snowballs : int
        stcal's ``number_extended_events`` (the snowball count).
    crs_per_pixel : ndarray of int32, (ny, nx)
        ``number_crs`` by row (zeros when skipped), for chunked runs.
    sigclip_planes : ndarray of bool, (nints, ngroups), or None
        Sigma-clip path: the plane test over the rows given (see module docstring).
    """

    groupdq: np.ndarray
    pixeldq: np.ndarray
    primary_cosmic_rays: float | None
    number_extended_events: float | None
    status: str
    number_crs: int = 0
    n_snowballs: int = 0
    crs_per_pixel: np.ndarray | None = None
    sigclip_planes: np.ndarray | None = None

    def primary_crs_in(self, window):
        """stcal's primary CR count over ``window`` (a slice, or (rows, cols) slices, of this
        result's frame).

        -99 when stcal skipped detection (this does not depend on the rows: with
        ``FrameStats`` every chunk skips or none does, and jwst's count is then -99 once).
        """
        if self.number_crs == -99:
            return -99
        return int(self.crs_per_pixel[window].sum())


def frame_stats(all_dnu, gain):
    """Whole-frame statistics for ``detect_jumps`` (pass them when running on row chunks).

    Parameters
    ----------
    all_dnu : ndarray of bool, (nints, ngroups)
        ``all_dnu_planes`` of the whole input GROUPDQ.
    gain : ndarray of float32, (ny, nx)
        The whole gain array.

    Returns
    -------
    FrameStats
    """
    return FrameStats(all_dnu=all_dnu, gain_median=np.nanmedian(gain))


def detect_jumps(
    data,
    groupdq,
    pixeldq,
    gain,
    readnoise,
    params,
    *,
    nframes,
    groupgap,
    tgroup,
    ngroups_total=None,
    frame=None,
    memo=None,
):
    """Flag cosmic-ray jumps in GROUPDQ as jwst 3.0's JumpStep does (NIR, one process).

    Parameters
    ----------
    data : ndarray of float32, (nints, ngroups, ny, nx)
        Calibrated ramp (after dark_current), DN.
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
    pixeldq : ndarray of uint32, (ny, nx)
    gain : ndarray of float32, (ny, nx)
        e-/DN, cut to the subarray.
    readnoise : ndarray of float32, (ny, nx)
        CDS read noise, DN, cut to the subarray.
    params : tsogpu.config.Jump
    nframes : int
        NFRAMES (frames averaged per group).
    groupgap : int
        GROUPGAP; accepted for a uniform signature, jump does not use it.
    tgroup : float
        TGROUP, seconds.
    ngroups_total : int or None
        If given, must equal ``data.shape[1]`` (jwst tests the data shape).
    frame : FrameStats or None
        Whole-frame statistics when ``data`` holds only some rows of the frame (see the module
        docstring); None computes them from the arrays given.
    memo : dict or None
        A dict kept between calls on the same ramp with other parameters (``tsogpu sweep``'s
        points), where an implementation may keep what the rejection threshold does not
        change (the sigma clip's first iteration). This specification and the NumPy backend
        compute everything; the kernels (``tsogpu/launchers/jump.py``) use it.

    Returns
    -------
    JumpResult
        New arrays; the inputs are not modified.
    """
    del memo  # everything is computed
    return run_jump_step(
        find_crs,
        data,
        groupdq,
        pixeldq,
        gain,
        readnoise,
        params,
        nframes=nframes,
        groupgap=groupgap,
        tgroup=tgroup,
        ngroups_total=ngroups_total,
        frame=frame,
    )


def run_jump_step(
    two_point,
    data,
    groupdq,
    pixeldq,
    gain,
    readnoise,
    params,
    *,
    nframes,
    groupgap,
    tgroup,
    ngroups_total=None,
    frame=None,
):
    """``detect_jumps`` around a given two-point search (stcal ``detect_jumps_data``).

    Shared by this specification (``two_point=find_crs``) and the tuned path
    (``jump_fast``): steps 1, 2, 4 and 5 of the module docstring, and the rates.

    Parameters
    ----------
    two_point : callable
        ``two_point(data, gain, gdq, rn_e, params, nframes, frame, e1, n1, e2, n2)`` ->
        ``(gdq, number_crs, crs_per_pixel, sigclip_planes)``, with ``gdq`` updated in place
        (see :func:`find_crs`).
    data, groupdq, pixeldq, gain, readnoise, params, nframes, groupgap, tgroup,
    ngroups_total, frame
        As :func:`detect_jumps`.

    Returns
    -------
    JumpResult
    """
    del groupgap  # not used by jump (stcal has no group-gap term)
    nints, ngroups, ny, nx = data.shape
    check_ngroups_total(ngroups, ngroups_total)
    gdq = np.array(groupdq, dtype=dq.GROUPDQ_DTYPE, copy=True)
    pdq = np.array(pixeldq, dtype=dq.PIXELDQ_DTYPE, copy=True)
    if ngroups <= 2:
        return JumpResult(gdq, pdq, None, None, "SKIPPED", 0, 0, np.zeros(ny, np.int64), None)
    if frame is None:
        frame = frame_stats(all_dnu_planes(groupdq), gain)

    # stcal setup_pdq
    bad_gain = (gain <= 0.0) | np.isnan(gain)
    pdq[bad_gain] |= np.uint32(dq.NO_GAIN_VALUE | dq.DO_NOT_USE)

    rn_e = np.multiply(readnoise, gain, dtype=np.float32)
    # NumPy 2: python float * float32 scalar stays float32
    e1 = np.float32(params.after_jump_flag_dn1) * np.float32(frame.gain_median)
    e2 = np.float32(params.after_jump_flag_dn2) * np.float32(frame.gain_median)
    n1 = int(params.after_jump_flag_time1 // tgroup)
    n2 = int(params.after_jump_flag_time2 // tgroup)

    gdq, number_crs, crs_per_pixel, sigclip_planes = two_point(
        data, gain, gdq, rn_e, params, nframes, frame, e1, n1, e2, n2
    )

    # stcal removes JUMP where DNU, then where SAT, is also set
    both = (gdq & (_JUMP | _DNU)) == (_JUMP | _DNU)
    gdq[both] ^= _JUMP
    both = (gdq & (_JUMP | _SAT)) == (_JUMP | _SAT)
    gdq[both] ^= _JUMP

    n_snowballs = 0
    if params.expand_large_events:
        gdq, n_snowballs = flag_snowballs(gdq, params, tgroup=tgroup)

    primecrs, extncrs = cosmic_ray_rates(
        number_crs, n_snowballs, all_dnu_planes(gdq), tgroup, gdq.shape[2] * gdq.shape[3]
    )
    return JumpResult(
        gdq,
        pdq,
        primecrs,
        extncrs,
        "COMPLETE",
        number_crs,
        n_snowballs,
        crs_per_pixel,
        sigclip_planes,
    )


def all_dnu_planes(groupdq):
    """(nints, ngroups) bool: planes of ``groupdq`` with DO_NOT_USE in every pixel.

    Over row chunks, the whole frame's value is the AND of the chunks'.
    """
    return np.all((groupdq & _DNU) != 0, axis=(2, 3))


def cosmic_ray_rates(number_crs, n_extended, all_dnu, tgroup, total_pixels):
    """PRIMECRS and EXTNCRS as jwst's JumpStep computes them.

    Parameters
    ----------
    number_crs : int
        stcal's primary CR count (-99 if detection was skipped internally).
    n_extended : int
        Snowball count.
    all_dnu : ndarray of bool, (nints, ngroups)
        ``all_dnu_planes`` of the whole output GROUPDQ.
    tgroup : float
        TGROUP, seconds.
    total_pixels : int
        ny * nx of the whole frame.

    Returns
    -------
    (float or None, float or None)
        None when jwst leaves the keywords unset (fewer than 1 usable group).
    """
    nints, ngroups = all_dnu.shape
    total_groups = nints * ngroups - int(np.count_nonzero(all_dnu)) - nints
    if total_groups < 1:
        return None, None
    total_time = tgroup * total_groups
    crs = 1000 * number_crs / (total_time * total_pixels)
    events = 1e6 * n_extended / (total_time * total_pixels)
    return float(crs), float(events)


def check_ngroups_total(ngroups, ngroups_total):
    """Raise InputError where ``ngroups_total`` (when given) is not the data's ``ngroups``
    (every backend checks it here)."""
    if ngroups_total is not None and ngroups_total != ngroups:
        raise InputError(
            f"ngroups_total={ngroups_total} does not match the data's {ngroups} groups"
        )
