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
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import dq
from .errors import ConfigError

FULL = 2048  # near-infrared detector size, pixels
NREF = 4  # width of the reference-pixel border
AMP_WIDTH = 512  # detector columns per amplifier in 4-output mode
PIXEL_TIME = 1.0e-5  # seconds per pixel read (10 us)
LINE_OVERHEAD = 12  # extra pixel times per fast-read line
MJD_UNIX0 = 40587.0  # MJD of 1970-01-01
TDB_MINUS_UTC = 69.184 / 86400.0  # days (TT-UTC after 2017); TDB-TT neglected
BARY_OFFSET = 0.00312  # days: a constant, made-up light-travel correction for BJD
EXP_START_MJD = 60140.0 + 10.0 / 24.0  # 2023-07-15 10:00:00 UTC, start of every exposure

# (NFRAMES, GROUPGAP) of the readout patterns of each instrument.
READ_PATTERNS = {
    "NIRSPEC": {"NRSRAPID": (1, 0), "NRS": (4, 0), "NRSSLOW": (1, 0)},
    "NIRISS": {"NISRAPID": (1, 0), "NIS": (4, 0)},
    "NIRCAM": {
        "RAPID": (1, 0),
        "BRIGHT1": (1, 1),
        "BRIGHT2": (2, 0),
        "SHALLOW2": (2, 3),
        "SHALLOW4": (4, 1),
        "MEDIUM2": (2, 8),
        "MEDIUM8": (8, 2),
        "DEEP2": (2, 18),
        "DEEP8": (8, 12),
    },
}


@dataclass(frozen=True)
class Mode:
    """Fixed facts of one TSO observing mode (keywords as in real JWST files)."""

    instrument: str
    detector: str
    exp_type: str
    subarray: str
    substrt1: int
    substrt2: int
    subsize1: int
    subsize2: int
    fastaxis: int
    slowaxis: int
    readpatt: str
    noutputs: int
    zero_frame: bool
    row_pad: int  # extra line times per frame in the TFRAME formula
    gain: float  # e-/DN
    readnoise: float  # CDS read noise, DN
    trace_y: float  # trace centre as a fraction of the rows
    trace_sigma: float  # Gaussian profile width, rows
    trace_curve: float  # trace bend across the full width, rows
    file_stem: str  # jw<program><obs><visit>_<grp><seq><act>_<exp>
    keywords: dict = field(default_factory=dict)  # extra instrument keywords (meta paths)


MODES = {
    "nrs_bots": Mode(
        instrument="NIRSPEC",
        detector="NRS1",
        exp_type="NRS_BRIGHTOBJ",
        subarray="SUB2048",
        substrt1=1,
        substrt2=1013,
        subsize1=2048,
        subsize2=32,
        fastaxis=2,
        slowaxis=1,
        readpatt="NRSRAPID",
        noutputs=1,
        zero_frame=False,
        row_pad=1,
        gain=1.0,
        readnoise=14.0,
        trace_y=0.5,
        trace_sigma=0.9,
        trace_curve=1.0,
        file_stem="jw01366003001_04101_00001",
        keywords={
            "instrument.filter": "F290LP",
            "instrument.grating": "G395H",
            "instrument.fixed_slit": "S1600A1",
        },
    ),
    "niriss_soss": Mode(
        instrument="NIRISS",
        detector="NIS",
        exp_type="NIS_SOSS",
        subarray="SUBSTRIP256",
        substrt1=1,
        substrt2=1793,
        subsize1=2048,
        subsize2=256,
        fastaxis=-2,
        slowaxis=-1,
        readpatt="NISRAPID",
        noutputs=1,
        zero_frame=False,
        row_pad=2,
        gain=1.61,
        readnoise=11.0,
        trace_y=0.3,
        trace_sigma=6.0,
        trace_curve=25.0,
        file_stem="jw01366001001_04101_00001",
        keywords={"instrument.filter": "CLEAR", "instrument.pupil": "GR700XD"},
    ),
    "nircam_grism": Mode(
        instrument="NIRCAM",
        detector="NRCALONG",
        exp_type="NRC_TSGRISM",
        subarray="SUBGRISM64",
        substrt1=1,
        substrt2=1,
        subsize1=2048,
        subsize2=64,
        fastaxis=-1,
        slowaxis=2,
        readpatt="RAPID",
        noutputs=4,
        zero_frame=True,
        row_pad=1,
        gain=1.82,
        readnoise=9.0,
        trace_y=34.0 / 64.0,
        trace_sigma=1.5,
        trace_curve=0.5,
        file_stem="jw01366002001_04103_00001",
        keywords={
            "instrument.filter": "F322W2",
            "instrument.pupil": "GRISMR",
            "instrument.module": "A",
            "instrument.channel": "LONG",
        },
    ),
}

# The mask file's DQ_DEF: deliberately not the standard bit values, so that a reader that
# skips the DQ_DEF remapping gets the wrong flags. The last name is not a JWST mnemonic and
# is dropped on remapping (stdatamodels warns).
MASK_DQ_DEF = (
    (0, 1, "DO_NOT_USE", "Bad pixel, do not use"),
    (1, 2, "DEAD", "Dead pixel"),
    (2, 4, "HOT", "Hot pixel"),
    (3, 8, "WARM", "Warm pixel"),
    (4, 16, "REFERENCE_PIXEL", "Reference pixel"),
    (5, 32, "UNRELIABLE_SLOPE", "Slope variance large"),
    (6, 64, "SIM_NOT_A_MNEMONIC", "Not a JWST flag; ignored by readers"),
)
LINEARITY_DQ_DEF = (
    (0, 1, "DO_NOT_USE", "Bad pixel, do not use"),
    (1, 2, "NONLINEAR", "Pixel highly nonlinear"),
    (2, 4, "NO_LIN_CORR", "Linearity correction not available"),
)


def _standard_dq_def(names):
    return tuple(
        (int(np.log2(dq.PIXEL[n])), dq.PIXEL[n], n, n.replace("_", " ").capitalize()) for n in names
    )


SATURATION_DQ_DEF = _standard_dq_def(("DO_NOT_USE", "NO_SAT_CHECK"))
SUPERBIAS_DQ_DEF = _standard_dq_def(("DO_NOT_USE", "UNRELIABLE_BIAS"))
DARK_DQ_DEF = _standard_dq_def(("DO_NOT_USE", "HOT", "WARM", "UNRELIABLE_DARK"))


@dataclass(frozen=True)
class Simulation:
    """Paths written by :func:`simulate`.

    Attributes
    ----------
    uncal : Path of the ``*_uncal.fits`` segment.
    refs : dict mapping reference type (mask, saturation, superbias, linearity, dark, gain,
        readnoise) to the Path of its FITS file.
    truth : Path of the ``*_truth.npz`` file (see :func:`simulate` for its arrays).
    mode : str, key of :data:`MODES`.
    shape : tuple (nints, ngroups, ny, nx) of the SCI array.
    """

    uncal: Path
    refs: dict
    truth: Path
    mode: str
    shape: tuple


@dataclass(frozen=True)
class _Geometry:
    """Subarray placement and the per-pixel detector facts the physics needs."""

    substrt1: int
    substrt2: int
    ny: int
    nx: int
    subarray: str
    noutputs: int
    amp: np.ndarray  # int (ny, nx), amplifier index
    line: np.ndarray  # int (ny, nx), detector row relative to the first one read
    parity: np.ndarray  # int (ny, nx), detector column parity
    refpix: np.ndarray  # bool (ny, nx)
    nlines: int  # detector rows (fast-read lines) in the subarray
    nfast: int  # detector columns in the subarray
    tframe: float

    @property
    def ys(self):
        return slice(self.substrt2 - 1, self.substrt2 - 1 + self.ny)

    @property
    def xs(self):
        return slice(self.substrt1 - 1, self.substrt1 - 1 + self.nx)


def dms_to_detector(y, x, fastaxis, slowaxis):
    """Full-frame DMS pixel indices to detector (row, column), as jwst's frame transform does.

    Parameters
    ----------
    y, x : int ndarray, 0-based full-frame DMS row and column (broadcastable)
    fastaxis, slowaxis : int, FASTAXIS and SLOWAXIS keywords

    Returns
    -------
    (row, col) : int ndarrays, 0-based detector indices; columns run along the fast direction.
    """
    if abs(fastaxis) == 1:
        row, col = y, x
    else:
        row, col = x, y
    row = row if slowaxis > 0 else FULL - 1 - row
    col = col if fastaxis > 0 else FULL - 1 - col
    return np.asarray(row), np.asarray(col)


def _geometry(mode, nrows, ncols, noutputs):
    ny = mode.subsize2 if nrows is None else int(nrows)
    nx = mode.subsize1 if ncols is None else int(ncols)
    if not (1 <= ny <= mode.subsize2 and 1 <= nx <= mode.subsize1):
        raise ConfigError(
            f"nrows/ncols must be within the {mode.subarray} size "
            f"{mode.subsize2} x {mode.subsize1}, got {ny} x {nx}"
        )
    # A narrower cut keeps the subarray's first column (DMS column 1 holds reference pixels in
    # every mode); a shorter cut keeps the rows next to the detector edge when the subarray
    # touches one (SOSS top, NIRCam bottom) and stays centred otherwise (NIRSpec).
    x0 = mode.substrt1
    if mode.substrt2 + mode.subsize2 - 1 == FULL:
        y0 = FULL - ny + 1
    elif mode.substrt2 == 1:
        y0 = 1
    else:
        y0 = mode.substrt2 + (mode.subsize2 - ny) // 2
    noutputs = mode.noutputs if noutputs is None else int(noutputs)
    if noutputs not in (1, 4):
        raise ConfigError(f"noutputs must be 1 or 4, got {noutputs}")
    name = mode.subarray if (ny, nx) == (mode.subsize2, mode.subsize1) else "GENERIC"

    yy, xx = np.meshgrid(
        np.arange(y0 - 1, y0 - 1 + ny), np.arange(x0 - 1, x0 - 1 + nx), indexing="ij"
    )
    row, col = dms_to_detector(yy, xx, mode.fastaxis, mode.slowaxis)
    refpix = (row < NREF) | (row >= FULL - NREF) | (col < NREF) | (col >= FULL - NREF)
    amp = col // AMP_WIDTH if noutputs == 4 else np.zeros_like(col)
    nlines = int(row.max() - row.min() + 1)
    nfast = int(col.max() - col.min() + 1)
    per_amp = nfast // noutputs if noutputs == 4 and nfast == FULL else nfast
    tframe = round((per_amp + LINE_OVERHEAD) * (nlines + mode.row_pad) * PIXEL_TIME, 5)
    return _Geometry(
        substrt1=x0,
        substrt2=y0,
        ny=ny,
        nx=nx,
        subarray=name,
        noutputs=noutputs,
        amp=amp.astype(np.intp),
        line=(row - row.min()).astype(np.intp),
        parity=(col % 2).astype(np.intp),
        refpix=refpix,
        nlines=nlines,
        nfast=nfast,
        tframe=tframe,
    )


def _readout(mode, readpatt, nframes, groupgap, frame_divisor):
    patterns = READ_PATTERNS[mode.instrument]
    if readpatt is None:
        readpatt = mode.readpatt
        if nframes is not None or groupgap is not None:
            want = (
                patterns[mode.readpatt][0] if nframes is None else int(nframes),
                patterns[mode.readpatt][1] if groupgap is None else int(groupgap),
            )
            # name the pattern that has these values, if the instrument has one
            readpatt = next((k for k, v in patterns.items() if v == want), readpatt)
    elif readpatt not in patterns:
        raise ConfigError(
            f"readpatt {readpatt!r} is not a {mode.instrument} pattern; "
            f"expected one of {', '.join(patterns)}"
        )
    nf = patterns[readpatt][0] if nframes is None else int(nframes)
    gg = patterns[readpatt][1] if groupgap is None else int(groupgap)
    if nf < 1 or gg < 0:
        raise ConfigError(f"need nframes >= 1 and groupgap >= 0, got {nf} and {gg}")
    divisor = nf if frame_divisor is None else int(frame_divisor)
    return readpatt, nf, gg, divisor


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
):
    """Write a synthetic uncal segment, its reference files and its truth file.

    Parameters
    ----------
    mode : str, a key of :data:`MODES` ("nrs_bots", "niriss_soss", "nircam_grism").
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
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    m = MODES[mode]
    nints, ngroups = int(nints), int(ngroups)
    if nints < 1 or ngroups < 1:
        raise ConfigError(f"need nints >= 1 and ngroups >= 1, got {nints} and {ngroups}")
    segnum, segtot = (int(v) for v in segment)
    if not 1 <= segnum <= segtot:
        raise ConfigError(f"segment must be (k, n) with 1 <= k <= n, got {segment!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    geo = _geometry(m, nrows, ncols, noutputs)
    readpatt, nf, gg, divisor = _readout(m, readpatt, nframes, groupgap, frame_divisor)
    zero_frame = m.zero_frame if zeroframe is None else bool(zeroframe)
    ntotal = nints * segtot
    intstart = (segnum - 1) * nints + 1
    nframes_int = ngroups * nf + (ngroups - 1) * gg  # frames from reset to the last read
    read_frames = (np.arange(ngroups)[:, None] * (nf + gg) + np.arange(nf)[None, :]).ravel()
    t_last = (read_frames[-1] + 1) * geo.tframe

    det = _detector(m, geo, np.random.default_rng([seed, 0]))
    scene = _scene(m, geo, det, np.random.default_rng([seed, 1]), t_last, n_saturating, peak_fill)

    cycle = (nframes_int + 1) * geo.tframe  # one reset frame between integrations
    times = _int_times(intstart, nints, cycle, nframes_int * geo.tframe)
    lc_all = _light_curve(np.arange(ntotal), ntotal, transit_depth)
    lc = lc_all[intstart - 1 : intstart - 1 + nints]

    noise_rng = np.random.default_rng([seed, 2, segnum])
    rms_1f = 6.0 if one_over_f is True else float(one_over_f or 0.0)
    crs = _cosmic_rays(noise_rng, geo, nints, ngroups, cr_rate * t_last if cosmic_rays else 0.0)
    ramps = _ramps(
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
    _write_uncal(uncal, m, geo, exposure, data, zframe if zero_frame else None, times)
    refs = _write_refs(
        out_dir, m, geo, det, exposure, full_frame_refs, inv_coeffs, dark_ngroups, seed
    )

    ys, xs = geo.ys, geo.xs
    truth = out_dir / f"{stem}_truth.npz"
    sat_idx = np.argwhere(sat_group >= 0)
    sat_pixels = np.zeros(
        len(sat_idx), dtype=[("int", "i4"), ("group", "i4"), ("y", "i4"), ("x", "i4")]
    )
    if len(sat_idx):
        sat_pixels["int"], sat_pixels["y"], sat_pixels["x"] = sat_idx.T
        sat_pixels["group"] = sat_group[tuple(sat_idx.T)]
    np.savez(
        truth,
        mode=np.array(mode),
        seed=np.array(seed),
        rate=(scene["flux"][None] * lc[:, None, None]).astype(np.float32),
        flux=scene["flux"].astype(np.float32),
        dark_rate=scene["dark"].astype(np.float32),
        light_curve=lc,
        int_mid_bjd=times["int_mid_BJD_TDB"],
        cr=crs,
        sat_group=sat_group,
        sat_pixels=sat_pixels,
        one_over_f=onef,
        bias=det["bias"][ys, xs].astype(np.float32),
        gain=det["gain"][ys, xs].astype(np.float32),
        refpix=geo.refpix,
    )
    return Simulation(uncal=uncal, refs=refs, truth=truth, mode=mode, shape=data.shape)


# --------------------------------------------------------------------------------------------
# detector and scene


def _detector(m, geo, rng):
    """Full-frame (2048 x 2048, DMS frame) detector properties, float32 unless stated."""
    f32 = np.float32
    shape = (FULL, FULL)

    def normal(scale):
        return f32(scale) * rng.standard_normal(shape, dtype=f32)

    def uniform(lo, hi):
        return f32(lo) + f32(hi - lo) * rng.random(shape, dtype=f32)

    yy, xx = np.meshgrid(
        np.arange(FULL, dtype=np.int32), np.arange(FULL, dtype=np.int32), indexing="ij"
    )
    row, col = dms_to_detector(yy, xx, m.fastaxis, m.slowaxis)
    amp = col // AMP_WIDTH
    col_pattern = rng.normal(0.0, 30.0, FULL).astype(f32)
    amp_offset = rng.uniform(-400.0, 400.0, 4).astype(f32)
    bias = (
        f32(12500.0)
        + amp_offset[amp]
        + col_pattern[col]
        + f32(40.0) * (col % 2).astype(f32)
        + f32(0.4) * row.astype(f32)
        + normal(20.0)
    )
    well = uniform(38000.0, 45000.0)
    sat_thresh = bias + well
    hard_sat = np.minimum(sat_thresh + uniform(300.0, 800.0), f32(65535.0))

    c1 = f32(1.0) + normal(0.002)
    c2 = f32(2.5e-6) * (f32(1.0) + normal(0.1))
    c3 = f32(2.0e-12) * (f32(1.0) + normal(0.2))
    c4 = np.full(shape, -1.0e-17, f32)
    coeffs = np.stack([np.zeros(shape, f32), c1, c2, c3, c4])

    gain = f32(m.gain) * (f32(1.0) + normal(0.03))
    readnoise = f32(m.readnoise) * (f32(1.0) + normal(0.1))

    refpix = (row < NREF) | (row >= FULL - NREF) | (col < NREF) | (col >= FULL - NREF)
    # mask in standard bits; MaskModel.save packs them into MASK_DQ_DEF's bit values
    mask = np.zeros((FULL, FULL), np.uint32)
    mask[refpix] |= dq.REFERENCE_PIXEL
    n_bad = FULL * FULL // 2000
    bad = _pick(rng, ~refpix, 4 * n_bad)
    dead, hot, warm, unrel = np.array_split(bad, 4)
    mask.flat[dead] |= dq.DO_NOT_USE | dq.PIXEL["DEAD"]
    mask.flat[hot] |= dq.DO_NOT_USE | dq.PIXEL["HOT"]
    mask.flat[warm] |= dq.PIXEL["WARM"]
    mask.flat[unrel] |= dq.PIXEL["UNRELIABLE_SLOPE"]
    dark_rate = np.full((FULL, FULL), 0.01, f32)
    dark_rate.flat[hot] = rng.uniform(5.0, 50.0, hot.size)
    dark_rate.flat[warm] = rng.uniform(0.5, 5.0, warm.size)
    dark_rate[refpix] = 0.0
    response = np.ones((FULL, FULL), f32)
    response.flat[dead] = 0.0

    # saturation reference: NaN thresholds, most flagged NO_SAT_CHECK in the file, some not
    sat_ref = sat_thresh.copy()
    sat_dq = np.zeros((FULL, FULL), np.uint32)
    nan_sat = _pick(rng, ~refpix, 200)
    sat_ref.flat[nan_sat] = np.nan
    sat_dq.flat[nan_sat[:150]] |= dq.NO_SAT_CHECK
    sat_dq.flat[_pick(rng, ~refpix, 100)] |= dq.NO_SAT_CHECK  # finite but not to be checked

    # linearity reference: NO_LIN_CORR, NaN coefficients, zero linear term (standard bits;
    # LinearityModel.save packs them into LINEARITY_DQ_DEF's bit values)
    lin_dq = np.zeros((FULL, FULL), np.uint32)
    lin_coeffs = coeffs.copy()
    no_lin = _pick(rng, ~refpix, 200)
    lin_dq.flat[no_lin] |= dq.NO_LIN_CORR
    lin_dq.flat[_pick(rng, ~refpix, 200)] |= dq.PIXEL["NONLINEAR"]
    nan_lin = _pick(rng, ~refpix, 100)
    lin_coeffs[2].flat[nan_lin] = np.nan
    zero_lin = _pick(rng, ~refpix, 50)
    lin_coeffs[1].flat[zero_lin] = 0.0

    gain_ref = gain.copy()
    gain_ref.flat[_pick(rng, ~refpix, 20)] = np.nan
    return {
        "bias": bias,
        "sat_thresh": sat_ref,
        "sat_dq": sat_dq,
        "hard_sat": hard_sat,
        "coeffs": coeffs,
        "lin_coeffs": lin_coeffs,
        "lin_dq": lin_dq,
        "gain": gain,
        "gain_ref": gain_ref,
        "readnoise": readnoise,
        "mask": mask,
        "mask_extra": unrel,  # flat indices that get the non-mnemonic raw bit 64
        "dark_rate": dark_rate,
        "response": response,
        "dead": dead,
        "hot": hot,
    }


def _pick(rng, allowed, n):
    """``n`` distinct flat indices, sorted, among the True pixels of ``allowed``."""
    idx = np.flatnonzero(allowed)
    return np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))


def _scene(m, geo, det, rng, t_last, n_saturating, peak_fill):
    """Source and dark rates on the science subarray, DN/s (linear), float64 (ny, nx)."""
    ys, xs = geo.ys, geo.xs
    ny, nx = geo.ny, geo.nx
    x_full = np.arange(geo.substrt1 - 1, geo.substrt1 - 1 + nx, dtype=np.float64)
    u = x_full / (FULL - 1) - 0.5
    centre = m.trace_y * ny + m.trace_curve * (u**2 - 1.0 / 12.0) * min(1.0, ny / m.subsize2)
    yrel = np.arange(ny, dtype=np.float64)[:, None] - centre[None, :]
    profile = np.exp(-0.5 * (yrel / m.trace_sigma) ** 2)
    profile[profile < 1e-6] = 0.0  # no denormal float32 rates far from the trace
    spectrum = 0.25 + 0.75 * np.exp(-0.5 * ((u + 0.1) / 0.3) ** 2)
    lines = rng.uniform(-0.5, 0.5, 8)
    for c in lines:  # a few absorption lines
        spectrum *= 1.0 - 0.3 * np.exp(-0.5 * ((u - c) / 0.004) ** 2)
    shape = profile * spectrum[None, :]

    # scale so the brightest pixel reaches peak_fill of the smallest well by the last frame
    well = np.nan_to_num(det["sat_thresh"][ys, xs] - det["bias"][ys, xs], nan=38000.0)
    peak_rate = peak_fill * float(np.min(well)) / t_last
    flux = peak_rate * shape / shape.max() * det["response"][ys, xs]
    flux[geo.refpix] = 0.0

    # a few pixels on the trace bright enough to saturate at ~60% of the ramp
    sat_ok = ~geo.refpix & np.isfinite(det["sat_thresh"][ys, xs])
    sat_ok &= (det["sat_dq"][ys, xs] & dq.NO_SAT_CHECK) == 0
    sat_ok &= det["response"][ys, xs] > 0
    sat_ok &= profile > 0.5
    if n_saturating > 0 and sat_ok.any():
        pick = _pick(rng, sat_ok, n_saturating)
        lin_at_sat = _poly(det["coeffs"][:, ys, xs].reshape(5, -1)[:, pick], well.flat[pick])
        flux.flat[pick] = lin_at_sat / (0.6 * t_last)
    dark = det["dark_rate"][ys, xs] * det["response"][ys, xs]
    return {"flux": flux, "dark": dark}


def _light_curve(index, n, depth):
    """Relative flux per integration: a limb-darkened-looking transit centred in the exposure."""
    phase = (index + 0.5) / n - 0.5  # -0.5 .. 0.5 over the exposure
    half = 0.2  # half duration, in units of the exposure
    ingress = 0.04
    z = np.clip((half - np.abs(phase)) / ingress, 0.0, 1.0)  # 0 outside, 1 in full transit
    # quadratic dip shape inside transit mimics limb darkening
    shape = z * (1.0 - 0.3 * (phase / half) ** 2)
    return 1.0 - depth * shape


def _int_times(intstart, nints, cycle, duration):
    """INT_TIMES rows of this segment; MJD (UTC) and a made-up BJD (TDB), float64."""
    start = EXP_START_MJD + (intstart - 1 + np.arange(nints)) * cycle / 86400.0
    end = start + duration / 86400.0
    mid = 0.5 * (start + end)
    table = np.zeros(nints, dtype=_INT_TIMES_DTYPE)
    table["integration_number"] = intstart + np.arange(nints)
    table["int_start_MJD_UTC"], table["int_mid_MJD_UTC"], table["int_end_MJD_UTC"] = start, mid, end
    bjd = 2400000.5 + TDB_MINUS_UTC + BARY_OFFSET
    table["int_start_BJD_TDB"] = start + bjd
    table["int_mid_BJD_TDB"] = mid + bjd
    table["int_end_BJD_TDB"] = end + bjd
    return table


_INT_TIMES_DTYPE = [
    ("integration_number", ">i4"),
    ("int_start_MJD_UTC", ">f8"),
    ("int_mid_MJD_UTC", ">f8"),
    ("int_end_MJD_UTC", ">f8"),
    ("int_start_BJD_TDB", ">f8"),
    ("int_mid_BJD_TDB", ">f8"),
    ("int_end_BJD_TDB", ">f8"),
]

_CR_DTYPE = [("int", "i4"), ("group", "i4"), ("y", "i4"), ("x", "i4"), ("amplitude", "f4")]


def _cosmic_rays(rng, geo, nints, ngroups, per_pixel):
    """Cosmic rays on light-sensitive pixels, one per (int, y, x) at most; structured array."""
    if ngroups < 2 or per_pixel <= 0:
        return np.zeros(0, dtype=_CR_DTYPE)
    active = np.flatnonzero(~geo.refpix)
    counts = rng.poisson(per_pixel * active.size, nints)
    rows = []
    for i, n in enumerate(counts):
        pix = rng.choice(active, size=min(int(n), active.size), replace=False)
        for p in np.sort(pix):
            rows.append((i, 0, p // geo.nx, p % geo.nx, 0.0))
    crs = np.array(rows, dtype=_CR_DTYPE)
    crs["group"] = rng.integers(1, ngroups, crs.size)
    crs["amplitude"] = 10.0 ** rng.uniform(2.0, 4.0, crs.size)
    return crs


# --------------------------------------------------------------------------------------------
# ramps


def _poly(coeffs, x):
    """Horner evaluation of ``sum_j coeffs[j] * x**j`` along axis 0 of ``coeffs``."""
    r = coeffs[-1] * x
    for c in coeffs[-2:0:-1]:
        r = (r + c) * x
    return r + coeffs[0]


def _series_inverse(coeffs, s):
    """Third-order series reversion of the linearity polynomial (c0 = 0), float32."""
    b2 = coeffs[2] / coeffs[1]
    b3 = coeffs[3] / coeffs[1]
    t = s / coeffs[1]
    return t * (np.float32(1.0) - t * (b2 - t * (np.float32(2.0) * b2 * b2 - b3)))


def _inverse_linearity(coeffs, s, m_cap):
    """Solve ``poly(m) = s`` for the measured signal m, capped at ``m_cap``.

    float32 throughout: two Newton steps from the series start reach ~1e-6 relative, far
    below the read noise.
    """
    c1, c2, c3, c4 = coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    m = _series_inverse(coeffs, s)
    for _ in range(2):
        f = (((c4 * m + c3) * m + c2) * m + c1) * m - s
        fp = ((np.float32(4.0) * c4 * m + np.float32(3.0) * c3) * m + np.float32(2.0) * c2) * m
        m -= f / (fp + c1)
    return np.minimum(m, m_cap, out=m)


def _one_over_f(rng, nseries, nlines_total, rms):
    """``nseries`` independent 1/f (pink) series of ``nlines_total`` samples, float64."""
    n = 1 << max(1, int(nlines_total - 1).bit_length())  # a fast FFT length
    freq = np.fft.rfftfreq(n)
    scale = np.zeros_like(freq)
    scale[1:] = freq[1:] ** -0.5
    spec = (
        rng.standard_normal((nseries, freq.size)) + 1j * rng.standard_normal((nseries, freq.size))
    ) * scale
    series = np.fft.irfft(spec, n=n, axis=1)[:, :nlines_total]
    series -= series.mean(axis=1, keepdims=True)
    return series * (rms / series.std(axis=1, keepdims=True))


def _ramps(geo, det, scene, lc, crs, rng, read_frames, nf, divisor, ngroups, rms_1f, nframes_int):
    """Integer ramps (uint16), zero frames (uint16) and the injected 1/f per group (float32).

    Works one integration at a time in float32 (the noise is far above float32 rounding).
    """
    f32 = np.float32
    ys, xs = geo.ys, geo.xs
    ny, nx = geo.ny, geo.nx
    npix = ny * nx
    nints = lc.size
    nread = read_frames.size
    bias = det["bias"][ys, xs].astype(f32).ravel()
    gain = det["gain"][ys, xs].astype(f32).ravel()
    coeffs = det["coeffs"][:, ys, xs].astype(f32).reshape(5, 1, npix)
    m_cap = (det["hard_sat"][ys, xs] - det["bias"][ys, xs]).astype(f32).ravel()
    sigma_read = (det["readnoise"][ys, xs] / np.sqrt(2.0)).astype(f32).ravel()
    dframes = np.diff(np.concatenate([[-1], read_frames])).astype(f32)[:, None]
    flux = (scene["flux"].ravel() * gain * geo.tframe).astype(f32)
    dark = (scene["dark"].ravel() * gain * geo.tframe).astype(f32)
    # Shot noise, split by brightness for speed: pixels that collect few electrons in a whole
    # integration get one Poisson draw for the total and a multinomial split over the read
    # intervals (an exact Poisson process); bright pixels get the normal approximation, whose
    # error is far below the read noise; the rest get one Poisson draw per read interval.
    per_frame = (flux * f32(lc.max()) + dark) * dframes.max()
    total = (flux * f32(lc.max()) + dark) * dframes.sum()
    sensitive = ~geo.refpix.ravel()
    sparse = np.flatnonzero(sensitive & (total < 5.0))
    bright = np.flatnonzero(sensitive & (per_frame >= 30.0))
    faint = np.flatnonzero(sensitive & (total >= 5.0) & (per_frame < 30.0))
    frame_p = dframes[:, 0].astype(np.float64)
    frame_p /= frame_p.sum()

    namps = 4 if geo.noutputs == 4 else 1
    frames_per_int = nframes_int + 1  # + one reset frame
    if rms_1f > 0:
        # one series per amplifier plus a common one (the amplifiers are read together); one
        # sample per fast-read line, plus one line of overhead per frame
        lines_per_frame = geo.nlines + 1
        series = _one_over_f(rng, namps + 1, nints * frames_per_int * lines_per_frame, rms_1f)
        series = (
            (np.sqrt(0.5) * series[:namps] + np.sqrt(0.5) * series[namps:])
            .reshape(namps, nints, frames_per_int, lines_per_frame)[..., : geo.nlines]
            .astype(f32)
        )
    pix_series = (geo.amp * geo.nlines + geo.line).ravel()  # index into (amp, line)
    pix_drift = (geo.amp * 2 + geo.parity).ravel()  # index into (amp, parity)

    # per (int, read frame, amp, parity) bias drift that the reference pixels track
    drift = rng.normal(0.0, 8.0, (nints, 1, namps * 2)) + rng.normal(
        0.0, 2.0, (nints, nread, namps * 2)
    )
    drift = drift.astype(f32)
    data = np.empty((nints, ngroups, ny, nx), np.uint16)
    zframe = np.empty((nints, ny, nx), np.uint16)
    # without 1/f the truth holds a broadcastable zero array instead of a full-size one
    onef_out = np.zeros((nints, ngroups, ny, nx) if rms_1f > 0 else (nints, ngroups, 1, 1), f32)
    for i in range(nints):
        lam = (flux * f32(lc[i]) + dark)[None] * dframes  # electrons per read interval
        inc = np.zeros((nread, npix), f32)
        lb = lam[:, bright]
        inc[:, bright] = lb + np.sqrt(lb) * rng.standard_normal(lb.shape, dtype=f32)
        inc[:, faint] = rng.poisson(lam[:, faint])
        counts = rng.poisson((flux[sparse] * f32(lc[i]) + dark[sparse]) * dframes.sum())
        hit = np.repeat(sparse, counts)
        np.add.at(inc, (rng.choice(nread, size=hit.size, p=frame_p), hit), f32(1.0))
        for k in range(1, nread):  # cumulative charge; faster than cumsum along axis 0
            inc[k] += inc[k - 1]
        charge = inc
        charge /= gain
        for c in crs[crs["int"] == i]:
            charge[int(c["group"]) * nf :, c["y"] * nx + c["x"]] += c["amplitude"]
        # Non-linearity: the series start is exact to < 1e-3 DN below 1000 DN; solve the rest.
        meas = _series_inverse(coeffs[:, 0], charge)
        strong = np.flatnonzero(sensitive & (charge[-1] > 1000.0))
        meas[:, strong] = _inverse_linearity(coeffs[:, :, strong], charge[:, strong], m_cap[strong])
        meas[:, ~sensitive] = 0.0
        raw = meas
        raw += bias
        raw += drift[i][:, pix_drift]
        if rms_1f > 0:
            frame_1f = series[:, i, read_frames, :].transpose(1, 0, 2).reshape(nread, -1)
            frame_1f = frame_1f[:, pix_series]
            raw += frame_1f
            if nf == 1:
                onef_out[i] = frame_1f.reshape(ngroups, ny, nx)
            else:
                onef_out[i] = frame_1f.reshape(ngroups, nf, ny, nx).mean(axis=1)
        raw += sigma_read * rng.standard_normal(raw.shape, dtype=f32)
        raw = np.clip(np.rint(raw, out=raw), 0.0, 65535.0, out=raw)  # A/D of every frame
        raw = raw.reshape(nread, ny, nx)
        zframe[i] = raw[0]
        if nf == 1 and divisor == 1:
            data[i] = raw
        else:
            # onboard frame averaging: integer sum divided by FRMDIVSR, truncated
            sums = raw.reshape(ngroups, nf, ny, nx).astype(np.float64).sum(axis=1)
            data[i] = np.clip(np.floor(sums / divisor), 0.0, 65535.0)
    return data, zframe, onef_out


# --------------------------------------------------------------------------------------------
# files


def _iso(mjd):
    return _dt.datetime(1970, 1, 1) + _dt.timedelta(days=float(mjd) - MJD_UNIX0)


def _set(meta, path, value):
    obj = meta
    parts = path.split(".")
    for p in parts[:-1]:
        obj = getattr(obj, p)
    setattr(obj, parts[-1], value)


def _write_uncal(path, m, geo, e, data, zframe, times):
    from stdatamodels.jwst import datamodels

    nints, ngroups = data.shape[:2]
    tframe = geo.tframe
    tgroup = round(tframe * (e["nframes"] + e["groupgap"]), 5)
    t_int = (ngroups * (e["nframes"] + e["groupgap"]) - e["groupgap"]) * tframe
    start_mjd = float(times["int_start_MJD_UTC"][0])
    end_mjd = float(times["int_end_MJD_UTC"][-1])
    start = _iso(EXP_START_MJD)

    model = datamodels.Level1bModel()
    model.data = data
    if zframe is not None:
        model.zeroframe = zframe
    meta = model.meta
    values = {
        "model_type": "Level1bModel",
        "filename": path.name,
        "telescope": "JWST",
        "time_sys": "UTC",
        "instrument.name": m.instrument,
        "instrument.detector": m.detector,
        "exposure.type": m.exp_type,
        "exposure.readpatt": e["readpatt"],
        "exposure.nints": e["nints_total"],
        "exposure.ngroups": ngroups,
        "exposure.nframes": e["nframes"],
        "exposure.groupgap": e["groupgap"],
        "exposure.frame_divisor": e["frame_divisor"],
        "exposure.drop_frames1": 0,
        "exposure.drop_frames3": 0,
        "exposure.nresets_at_start": 1,
        "exposure.nresets_between_ints": 1,
        "exposure.nsamples": 1,
        "exposure.sample_time": 10,
        "exposure.frame_time": tframe,
        "exposure.group_time": tgroup,
        "exposure.integration_time": t_int,
        "exposure.exposure_time": t_int * e["nints_total"],
        "exposure.duration": (end_mjd - start_mjd) * 86400.0,
        "exposure.noutputs": geo.noutputs,
        "exposure.zero_frame": bool(e["zero_frame"]),
        "exposure.segment_number": e["segnum"],
        "exposure.segment_total": e["segtot"],
        "exposure.integration_start": e["intstart"],
        "exposure.integration_end": e["intstart"] + nints - 1,
        "exposure.start_time": start_mjd,
        "exposure.mid_time": 0.5 * (start_mjd + end_mjd),
        "exposure.end_time": end_mjd,
        "observation.date": start.strftime("%Y-%m-%d"),
        "observation.time": start.strftime("%H:%M:%S.%f")[:12],
        "observation.program_number": m.file_stem[2:7],
        "observation.observation_number": m.file_stem[7:10],
        "observation.visit_number": m.file_stem[10:13],
        "observation.visit_group": m.file_stem[14:16],
        "observation.sequence_id": m.file_stem[16],
        "observation.activity_id": m.file_stem[17:19],
        "observation.exposure_number": m.file_stem[20:25],
        "visit.tsovisit": True,
        "subarray.name": geo.subarray,
        "subarray.xstart": geo.substrt1,
        "subarray.ystart": geo.substrt2,
        "subarray.xsize": geo.nx,
        "subarray.ysize": geo.ny,
        "subarray.fastaxis": m.fastaxis,
        "subarray.slowaxis": m.slowaxis,
        **m.keywords,
    }
    for key, value in values.items():
        _set(meta, key, value)
    model.int_times = times
    model.group = _group_table(times, ngroups, tgroup, tframe, e, geo)
    model.save(path)
    model.close()


def _group_table(times, ngroups, tgroup, tframe, e, geo):
    dtype = [
        ("integration_number", ">i4"),
        ("group_number", ">i2"),
        ("end_day", ">i2"),
        ("end_milliseconds", ">i4"),
        ("end_submilliseconds", ">i2"),
        ("group_end_time", "S26"),
        ("number_of_columns", ">i2"),
        ("number_of_rows", ">i2"),
        ("number_of_gaps", ">i2"),
        ("completion_code_number", ">i2"),
        ("completion_code_text", "S36"),
        ("bary_end_time", ">f8"),
        ("helio_end_time", ">f8"),
    ]
    nints = times.size
    table = np.zeros(nints * ngroups, dtype=dtype)
    ints = np.repeat(times["integration_number"], ngroups)
    groups = np.tile(np.arange(1, ngroups + 1), nints)
    start = np.repeat(times["int_start_MJD_UTC"], ngroups)
    end = start + (groups * (e["nframes"] + e["groupgap"]) - e["groupgap"]) * tframe / 86400.0
    day0 = 51544.0  # 2000-01-01, the GROUP table's day zero
    table["integration_number"] = ints
    table["group_number"] = groups
    table["end_day"] = np.floor(end - day0)
    ms = (end - np.floor(end)) * 86400.0e3
    table["end_milliseconds"] = np.floor(ms)
    table["end_submilliseconds"] = np.floor((ms - np.floor(ms)) * 1000.0)
    table["group_end_time"] = [_iso(t).strftime("%Y-%m-%dT%H:%M:%S.%f").encode() for t in end]
    table["number_of_columns"] = geo.nx
    table["number_of_rows"] = geo.ny
    table["completion_code_text"] = b"COMPLETE"
    table["bary_end_time"] = end + TDB_MINUS_UTC + BARY_OFFSET
    table["helio_end_time"] = end + TDB_MINUS_UTC + BARY_OFFSET
    return table


def _dq_def(rows):
    return np.array(
        [(b, v, n, d) for b, v, n, d in rows],
        dtype=[("BIT", ">i4"), ("VALUE", ">u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")],
    )


def _ref_meta(model, m, geo, reftype, full, description, e, *, readpatt=True, exp_type=True):
    meta = model.meta
    meta.reftype = reftype
    meta.author = "tsogpu.simulate"
    meta.pedigree = "DUMMY"
    meta.useafter = "2022-01-01T00:00:00"
    meta.description = description
    meta.telescope = "JWST"
    meta.instrument.name = m.instrument
    meta.instrument.detector = m.detector
    if full:
        meta.subarray.name = "FULL"
        meta.subarray.xstart, meta.subarray.ystart = 1, 1
        meta.subarray.xsize, meta.subarray.ysize = FULL, FULL
    else:
        meta.subarray.name = geo.subarray
        meta.subarray.xstart, meta.subarray.ystart = geo.substrt1, geo.substrt2
        meta.subarray.xsize, meta.subarray.ysize = geo.nx, geo.ny
    meta.subarray.fastaxis = m.fastaxis
    meta.subarray.slowaxis = m.slowaxis
    if readpatt:
        meta.exposure.readpatt = e["readpatt"] if not full else "ANY"
    if exp_type:
        meta.exposure.type = m.exp_type


def _write_refs(out_dir, m, geo, det, e, full_frame_refs, inv_coeffs, dark_ngroups, seed):
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    inst = m.instrument.lower()
    det_name = m.detector.lower()
    ys, xs = geo.ys, geo.xs
    full = bool(full_frame_refs)

    def cut(a):
        return a if full else a[..., ys, xs]

    def path(reftype):
        return out_dir / f"jwst_{inst}_{det_name}_{reftype}_sim{seed}.fits"

    refs = {}

    mask = datamodels.MaskModel()
    mask.dq = cut(det["mask"])
    mask.dq_def = _dq_def(MASK_DQ_DEF)
    _ref_meta(mask, m, geo, "MASK", full, "Simulated bad-pixel mask (non-standard DQ bits)", e)
    refs["mask"] = _save(mask, path("mask"))
    # save() packs only mnemonics it knows; set the DQ_DEF row that names no JWST flag by hand
    extra = np.zeros((FULL, FULL), bool)
    extra.flat[det["mask_extra"]] = True
    with fits.open(refs["mask"], mode="update") as hdul:
        hdul["DQ"].data[cut(extra)] |= np.uint32(64)

    sat = datamodels.SaturationModel()
    sat.data = cut(det["sat_thresh"])
    sat.dq = cut(det["sat_dq"])
    sat.dq_def = _dq_def(SATURATION_DQ_DEF)
    _ref_meta(
        sat,
        m,
        geo,
        "SATURATION",
        full,
        "Simulated saturation (raw DN incl. bias)",
        e,
        readpatt=False,
        exp_type=False,
    )
    refs["saturation"] = _save(sat, path("saturation"))

    rng = np.random.default_rng([seed, 3])
    bias = det["bias"][ys, xs]
    sb = datamodels.SuperBiasModel()
    sb.data = (bias + rng.normal(0.0, 1.0, bias.shape)).astype(np.float32)
    sb.err = np.full(bias.shape, 1.0, np.float32)
    sb_dq = np.zeros(bias.shape, np.uint32)
    active = ~geo.refpix
    sb_dq.flat[_pick(rng, active, max(1, bias.size // 5000))] |= dq.PIXEL["UNRELIABLE_BIAS"]
    nan_bias = _pick(rng, active, 2)
    sb.data.flat[nan_bias] = np.nan
    sb_dq.flat[nan_bias] |= dq.PIXEL["UNRELIABLE_BIAS"]
    sb.dq = sb_dq
    sb.dq_def = _dq_def(SUPERBIAS_DQ_DEF)
    _ref_meta(sb, m, geo, "SUPERBIAS", False, "Simulated superbias", e, exp_type=False)
    sb.meta.exposure.noutputs = geo.noutputs
    sb.meta.bunit_data = "DN"
    refs["superbias"] = _save(sb, path("superbias"))

    lin = datamodels.LinearityModel()
    lin.coeffs = cut(det["lin_coeffs"])
    if inv_coeffs:
        lin.inv_coeffs = cut(_inverse_coeffs(det["coeffs"]))
    lin.dq = cut(det["lin_dq"])
    lin.dq_def = _dq_def(LINEARITY_DQ_DEF)
    _ref_meta(
        lin,
        m,
        geo,
        "LINEARITY",
        full,
        "Simulated linearity (non-standard DQ bits)",
        e,
        readpatt=False,
        exp_type=False,
    )
    refs["linearity"] = _save(lin, path("linearity"))

    # dark: NFRAMES=1, GROUPGAP=0, matching the science subarray (jwst does not cut darks)
    nd = e["nframes_int"] + 3 if dark_ngroups is None else int(dark_ngroups)
    rate = det["dark_rate"][ys, xs]
    frames = np.arange(1, nd + 1, dtype=np.float64)[:, None, None] * geo.tframe
    dark_model = (
        datamodels.DarkNirspecModel() if m.instrument == "NIRSPEC" else (datamodels.DarkModel())
    )
    dark_model.data = (rate[None] * frames + rng.normal(0.0, 0.2, (nd, *rate.shape))).astype(
        np.float32
    )
    dark_model.data[:, geo.refpix] = 0.0
    dark_model.err = np.full((nd, *rate.shape), 0.2, np.float32)
    dark_dq = np.zeros(rate.shape, np.uint32)
    hot_sub = np.zeros((FULL, FULL), bool)
    hot_sub.flat[det["hot"]] = True
    dark_dq[hot_sub[ys, xs]] |= dq.PIXEL["HOT"]
    dark_dq.flat[_pick(rng, active, max(1, rate.size // 5000))] |= dq.PIXEL["UNRELIABLE_DARK"]
    dark_model.dq = dark_dq
    dark_model.dq_def = _dq_def(DARK_DQ_DEF)
    _ref_meta(dark_model, m, geo, "DARK", False, "Simulated dark (cumulative DN per frame)", e)
    dark_model.meta.exposure.readpatt = m.readpatt  # the one-frame-per-group pattern
    dark_model.meta.exposure.nframes = 1
    dark_model.meta.exposure.groupgap = 0
    dark_model.meta.exposure.ngroups = nd
    dark_model.meta.exposure.nints = 1
    dark_model.meta.exposure.noutputs = geo.noutputs
    refs["dark"] = _save(dark_model, path("dark"))

    gain = datamodels.GainModel()
    gain.data = cut(det["gain_ref"])
    _ref_meta(
        gain, m, geo, "GAIN", full, "Simulated gain (e-/DN)", e, readpatt=False, exp_type=False
    )
    gain.meta.bunit_data = "electrons/DN"
    refs["gain"] = _save(gain, path("gain"))

    rn = datamodels.ReadnoiseModel()
    rn.data = cut(det["readnoise"].astype(np.float32))
    _ref_meta(rn, m, geo, "READNOISE", full, "Simulated CDS read noise (DN)", e, exp_type=False)
    rn.meta.exposure.noutputs = geo.noutputs
    rn.meta.bunit_data = "DN"
    refs["readnoise"] = _save(rn, path("readnoise"))
    return refs


def _save(model, path):
    model.meta.filename = path.name
    model.save(path)
    model.close()
    return path


def _inverse_coeffs(coeffs):
    """Series reversion of ``S = c1 m + c2 m^2 + c3 m^3 + c4 m^4`` (c0 = 0): float32 (5, ...)."""
    c1, c2, c3, c4 = coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    b2, b3, b4 = c2 / c1, c3 / c1, c4 / c1
    d1 = 1.0 / c1
    d2 = -b2 * d1**2
    d3 = (2.0 * b2**2 - b3) * d1**3
    d4 = (-5.0 * b2**3 + 5.0 * b2 * b3 - b4) * d1**4
    return np.stack([np.zeros_like(c1), d1, d2, d3, d4]).astype(np.float32)
