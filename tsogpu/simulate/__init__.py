"""Synthetic JWST time-series segments, matching reference files and the truth behind them.

``simulate(mode, out_dir, ...)`` writes three kinds of file:

* a Level-1b ``*_uncal.fits`` segment (written with stdatamodels' ``Level1bModel``, so it has
  jwst's own layout: uint16 SCI ``(nints, ngroups, ny, nx)``, optional ZEROFRAME, GROUP and
  INT_TIMES tables and the real keywords of the mode);
* the seven reference files the near-infrared Stage-1 steps read (mask, saturation, superbias,
  linearity, dark, gain, readnoise), each written with its stdatamodels model class. Mask,
  saturation, linearity, gain and readnoise are full frame (2048 x 2048) by default, so the
  subarray cut-out is exercised; superbias and dark match the science subarray. The mask and
  linearity DQ_DEF tables use non-standard bit values, so DQ_DEF remapping matters;
* a ``*_truth.npz`` file with what went in: rates, light curve, cosmic rays, saturation, 1/f.

Geometry follows jwst: SUBSTRT/SUBSIZE are 1-based in the DMS (science) frame; the detector
frame is reached with ``jwst.lib.reffile_utils.science_detector_frame_transform`` (flip by the
signs of FASTAXIS/SLOWAXIS, transpose when ``|FASTAXIS| == 2``). Reference pixels are the outer
4 rows and columns of the 2048 x 2048 detector; amplifiers split the detector columns (the fast
direction) into four 512-pixel stripes; 1/f noise is a time series per amplifier sampled once per
detector row (one fast-read line).

The signal model, per pixel and read frame k of an integration (``t_k = (k + 1) * TFRAME``)::

    S_k   = Poisson(gain * (flux * lc[i] + dark) * t_k) / gain + CRs hit before k   # linear DN
    m_k   = min(inverse_linearity(S_k), hard_saturation - bias)                       # measured DN
    raw_k = clip(round(bias + m_k + drift[amp, parity] + 1/f[amp, row] + N(0, rn / sqrt 2)),
                 0, 65535)

and a group is ``floor(sum of its NFRAMES frames / FRMDIVSR)``. ``inverse_linearity`` inverts the
linearity reference polynomial exactly (Newton), so jwst's linearity step undoes it up to noise.
Reference pixels see bias, drift, 1/f and read noise only.

MIRI (``miri_lrs``, ``miri_image``; :data:`MIRI_MODES`) has its own detector, physics and nine
reference files (mask, saturation, linearity, dark, reset, rscd, emicorr, gain, readnoise):
:mod:`~tsogpu.simulate.miri` and the ``miri_*`` modules.

The modules, by concern: ``modes`` (the instruments' modes, readout patterns, subarray geometry
and frame timing), ``times`` (the exposure clock and INT_TIMES), ``detector`` (the full-frame
detector and its flags), ``linearity`` (the polynomial and its inverses), ``scene`` (source,
dark, light curve, cosmic rays), ``ramps`` (the raw frames and groups) and ``files`` (the uncal
and reference files). This module ties them together in :func:`simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .detector import detector_properties
from .files import write_reference_files, write_uncal
from .miri import simulate_miri
from .miri_modes import MIRI_MODES
from .modes import (
    AMP_WIDTH,
    FULL,
    LINE_OVERHEAD,
    MODES,
    NREF,
    PIXEL_TIME,
    READ_PATTERNS,
    Mode,
    dms_to_detector,
    resolve_readout,
    subarray_geometry,
)
from .ramps import integer_ramps, write_truth
from .scene import draw_cosmic_rays, light_curve, scene_rates
from .times import int_times_table

__all__ = [
    "AMP_WIDTH",
    "FULL",
    "LINE_OVERHEAD",
    "MIRI_MODES",
    "MODES",
    "NREF",
    "PIXEL_TIME",
    "READ_PATTERNS",
    "Mode",
    "Simulation",
    "dms_to_detector",
    "simulate",
]


@dataclass(frozen=True)
class Simulation:
    """Paths written by :func:`simulate`.

    Attributes
    ----------
    uncal : Path of the ``*_uncal.fits`` segment.
    refs : dict mapping reference type (mask, saturation, superbias, linearity, dark, gain,
        readnoise; MIRI: mask, saturation, linearity, gain, readnoise, dark, reset, rscd,
        emicorr) to the Path of its file (FITS; emicorr ASDF).
    truth : Path of the ``*_truth.npz`` file (see :func:`simulate` for its arrays).
    mode : str, key of :data:`MODES`.
    shape : tuple (nints, ngroups, ny, nx) of the SCI array.
    """

    uncal: Path
    refs: dict
    truth: Path
    mode: str
    shape: tuple


def simulate(
    mode,
    out_dir,
    *,
    nints=4,
    ngroups=5,
    seed=0,
    one_over_f=False,
    cosmic_rays=True,
    segment=(1, 1),
    nrows=None,
    ncols=None,
    readpatt=None,
    nframes=None,
    groupgap=None,
    frame_divisor=None,
    noutputs=None,
    zeroframe=None,
    full_frame_refs=True,
    inv_coeffs=True,
    dark_ngroups=None,
    cr_rate=1.6e-5,
    n_saturating=4,
    peak_fill=0.5,
    transit_depth=0.01,
    subarray=None,
):
    """Write a synthetic uncal segment, its reference files and its truth file.

    Parameters
    ----------
    mode : str, a key of :data:`MODES` ("nrs_bots", "niriss_soss", "nircam_grism") or of
        :data:`MIRI_MODES` ("miri_lrs": SLITLESSPRISM, a spectrum along the rows;
        "miri_image": SUB64, a point source). MIRI takes nints, ngroups, seed, cosmic_rays,
        segment, readpatt (FASTR1, or SLOWR1 with FULL), subarray, full_frame_refs,
        dark_ngroups, cr_rate, n_saturating, peak_fill and transit_depth; the other options
        are near-infrared only (see :func:`tsogpu.simulate.miri.simulate_miri`).
    out_dir : str or Path; created if missing.
    nints : int, integrations in this segment.
    ngroups : int, groups per integration.
    seed : int; the detector (bias, reference files, scene) depends on ``seed`` only, the noise
        on ``seed`` and the segment number, so segments of one exposure share reference files.
    one_over_f : bool or float; True gives 1/f noise of 6 DN rms per fast-read line, a float
        sets that rms.
    cosmic_rays : bool; inject cosmic rays at ``cr_rate`` events per pixel per second.
    segment : (int, int), (EXSEGNUM, EXSEGTOT); INTSTART = (EXSEGNUM - 1) * nints + 1 and
        NINTS = nints * EXSEGTOT.
    nrows, ncols : int or None; cut the subarray to this size (SUBSIZE2, SUBSIZE1) for small
        tests. The cut keeps reference pixels at the edge and is named SUBARRAY = GENERIC.
    readpatt : str or None; a readout pattern of the instrument (default: the mode's).
    nframes, groupgap : int or None; override the pattern's NFRAMES / GROUPGAP (READPATT is
        renamed to the instrument's pattern with these values when there is one).
    frame_divisor : int or None; FRMDIVSR, the onboard divisor of the frame sum (default
        NFRAMES; another value makes jwst's group_scale step act).
    noutputs : int or None; NOUTPUTS (1 or 4), default the mode's.
    zeroframe : bool or None; write a ZEROFRAME extension (default: True for NIRCam only).
    full_frame_refs : bool; mask, saturation, linearity, gain and readnoise are 2048 x 2048
        (True) or cut to the science subarray (False).
    inv_coeffs : bool; give the linearity file an INV_COEFFS extension.
    dark_ngroups : int or None; groups in the dark (NFRAMES=1, GROUPGAP=0); default enough frames
        for the science ramp plus 3. Fewer makes jwst extrapolate the dark.
    cr_rate : float, cosmic-ray events per pixel per second.
    n_saturating : int, pixels on the trace made bright enough to saturate mid-ramp.
    peak_fill : float, fraction of the saturation level the trace peak reaches by the last frame.
    transit_depth : float, fractional depth of the transit in the light curve.
    subarray : str or None; MIRI only: a MIRI subarray (FULL, BRIGHTSKY, SUB256, SUB128,
        SUB64, SLITLESSPRISM) instead of the mode's.

    Returns
    -------
    Simulation
        Paths of the files. The truth ``.npz`` holds (0-based indices, ``i`` counts the
        integrations of this segment):

        - ``rate`` float32 (nints, ny, nx): linear source rate, DN/s, light curve applied
          (what dark-subtracted ramp fitting should recover); ``flux`` float32 (ny, nx) the
          out-of-transit source rate; ``dark_rate`` float32 (ny, nx), DN/s;
        - ``light_curve`` float64 (nints,) and ``int_mid_bjd`` float64 (nints,);
        - ``cr`` structured (int, group, y, x, amplitude[DN, linear]); the CR lands before the
          first frame of ``group``;
        - ``sat_group`` int16 (nints, ny, nx): first group whose raw value (times
          FRMDIVSR / NFRAMES, as jwst's group_scale leaves it) reaches the saturation
          reference (-1: none), and ``sat_pixels`` structured (int, group, y, x);
        - ``one_over_f`` float32 (nints, ngroups, ny, nx): injected 1/f in DN, group average
          (when 1/f is off: zeros of shape (nints, ngroups, 1, 1), which broadcast);
        - ``bias`` float32 (ny, nx), ``gain`` float32 (ny, nx), ``refpix`` bool (ny, nx).
    """
    if mode not in MODES and mode not in MIRI_MODES:
        raise ConfigError(f"mode must be one of {', '.join([*MODES, *MIRI_MODES])}, got {mode!r}")
    nints, ngroups = int(nints), int(ngroups)
    if nints < 1 or ngroups < 1:
        raise ConfigError(f"need nints >= 1 and ngroups >= 1, got {nints} and {ngroups}")
    segnum, segtot = (int(v) for v in segment)
    if not 1 <= segnum <= segtot:
        raise ConfigError(f"segment must be (k, n) with 1 <= k <= n, got {segment!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if mode in MIRI_MODES:
        near_ir = dict(nrows=nrows, ncols=ncols, nframes=nframes, groupgap=groupgap,
                       frame_divisor=frame_divisor, noutputs=noutputs, zeroframe=zeroframe,
                       one_over_f=one_over_f or None)  # fmt: skip
        given = [k for k, v in near_ir.items() if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)}: near-infrared options, not for {mode}")
        uncal, refs, truth, shape = simulate_miri(
            mode, out_dir, nints=nints, ngroups=ngroups, seed=seed, cosmic_rays=cosmic_rays,
            segment=(segnum, segtot), subarray=subarray, readpatt=readpatt,
            full_frame_refs=full_frame_refs, dark_ngroups=dark_ngroups, cr_rate=cr_rate,
            n_saturating=n_saturating, peak_fill=peak_fill, transit_depth=transit_depth,
        )  # fmt: skip
        return Simulation(uncal=uncal, refs=refs, truth=truth, mode=mode, shape=shape)
    if subarray is not None:
        raise ConfigError(f"subarray: a MIRI option, not for {mode}")
    m = MODES[mode]

    geo = subarray_geometry(m, nrows, ncols, noutputs)
    readpatt, nf, gg, divisor = resolve_readout(m, readpatt, nframes, groupgap, frame_divisor)
    zero_frame = m.zero_frame if zeroframe is None else bool(zeroframe)
    ntotal = nints * segtot
    intstart = (segnum - 1) * nints + 1
    nframes_int = ngroups * nf + (ngroups - 1) * gg  # frames from reset to the last read
    read_frames = (np.arange(ngroups)[:, None] * (nf + gg) + np.arange(nf)[None, :]).ravel()
    t_last = (read_frames[-1] + 1) * geo.tframe

    det = detector_properties(m, geo, np.random.default_rng([seed, 0]))
    scene = scene_rates(
        m, geo, det, np.random.default_rng([seed, 1]), t_last, n_saturating, peak_fill
    )

    cycle = (nframes_int + 1) * geo.tframe  # one reset frame between integrations
    times = int_times_table(intstart, nints, cycle, nframes_int * geo.tframe)
    lc_all = light_curve(np.arange(ntotal), ntotal, transit_depth)
    lc = lc_all[intstart - 1 : intstart - 1 + nints]

    noise_rng = np.random.default_rng([seed, 2, segnum])
    rms_1f = 6.0 if one_over_f is True else float(one_over_f or 0.0)
    crs = draw_cosmic_rays(noise_rng, geo, nints, ngroups, cr_rate * t_last if cosmic_rays else 0.0)
    ramps = integer_ramps(
        geo,
        det,
        scene,
        lc,
        crs,
        noise_rng,
        read_frames,
        nf,
        divisor,
        ngroups,
        rms_1f,
        nframes_int,
    )
    data, zframe, onef = ramps

    sat_thresh = det["sat_thresh"][geo.ys, geo.xs]
    # compare what jwst's saturation step sees: the data after group_scale's FRMDIVSR/NFRAMES
    seen = data if divisor == nf else data * np.float32(divisor / nf)
    sat_hit = (seen >= np.where(np.isnan(sat_thresh), np.inf, sat_thresh)) & ~geo.refpix
    any_hit = sat_hit.any(axis=1)
    sat_group = np.where(any_hit, sat_hit.argmax(axis=1), -1).astype(np.int16)

    exposure = {
        "readpatt": readpatt,
        "nframes": nf,
        "groupgap": gg,
        "frame_divisor": divisor,
        "ngroups": ngroups,
        "nints_total": ntotal,
        "intstart": intstart,
        "segnum": segnum,
        "segtot": segtot,
        "zero_frame": zero_frame,
        "nframes_int": nframes_int,
    }
    stem = f"{m.file_stem}-seg{segnum:03d}_{m.detector.lower()}"
    uncal = out_dir / f"{stem}_uncal.fits"
    write_uncal(uncal, m, geo, exposure, data, zframe if zero_frame else None, times)
    refs = write_reference_files(
        out_dir, m, geo, det, exposure, full_frame_refs, inv_coeffs, dark_ngroups, seed
    )

    truth = write_truth(
        out_dir / f"{stem}_truth.npz",
        mode,
        seed,
        scene,
        lc,
        times,
        crs,
        sat_group,
        det,
        geo,
        one_over_f=onef,
    )
    return Simulation(uncal=uncal, refs=refs, truth=truth, mode=mode, shape=data.shape)
