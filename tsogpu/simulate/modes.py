"""The simulated instruments' modes: readout patterns, subarray geometry and frame timing.

:data:`MODES` holds the fixed facts of each TSO mode (keywords as in real JWST files);
:func:`subarray_geometry` places a (possibly cut) subarray on the 2048 x 2048 detector and gives
the per-pixel detector facts (amplifier, fast-read line, column parity, reference pixels) and
the frame time; :func:`resolve_readout` turns the readout options into READPATT, NFRAMES,
GROUPGAP and FRMDIVSR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

FULL = 2048  # near-infrared detector size, pixels
NREF = 4  # width of the reference-pixel border
AMP_WIDTH = 512  # detector columns per amplifier in 4-output mode
PIXEL_TIME = 1.0e-5  # seconds per pixel read (10 us)
LINE_OVERHEAD = 12  # extra pixel times per fast-read line

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


@dataclass(frozen=True)
class Geometry:
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


def subarray_geometry(mode, nrows, ncols, noutputs):
    """The :class:`Geometry` of ``mode``'s subarray, cut to ``nrows`` x ``ncols`` if given."""
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
    return Geometry(
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


def resolve_readout(mode, readpatt, nframes, groupgap, frame_divisor):
    """(READPATT, NFRAMES, GROUPGAP, FRMDIVSR) from the readout options; None takes the default."""
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
