"""The in-memory form of one uncal segment: plain arrays plus the keywords the steps need.

NumPy only (no astropy), so the array core runs where only NumPy and CuPy are installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# SCI as an uncal file stores it: big-endian int16 holding counts - 32768 (BZERO = 32768).
# tsogpu.io.uncal.read_uncal(raw=True) gives it so, read unconverted; each backend converts it
# in its own pass (ramps_to_float32 here, the kernel tso_be16_to_f32 on the device and in the
# native build), to the same float32 values.
FILE_COUNTS = np.dtype(">i2")

# MIRI: what each step removed from each integration (Segment.removed, written as the
# ``_removed`` side product for the report's systematics): step -> (unit, what)
REMOVED = {
    "emicorr": ("DN", "rms over pixels and groups of the EMI subtracted"),
    "firstframe": ("1", "groups x pixels firstframe newly marked DO_NOT_USE"),
    "lastframe": ("1", "groups x pixels lastframe newly marked DO_NOT_USE"),
    "reset": ("DN", "mean over pixels and groups of the reset anomaly subtracted"),
    "rscd": ("1", "groups x pixels rscd newly marked DO_NOT_USE"),
}


def ramps_to_float32(data):
    """float32 ramps from raw counts, exactly (every count is an integer below 2**16).

    ``data``: uint16 counts, or the file's :data:`FILE_COUNTS` (+ 32768); float32 comes back
    as it is.
    """
    if data.dtype == FILE_COUNTS:
        out = data.astype(np.float32)  # the byte swap happens in the cast
        out += np.float32(32768.0)
        return out
    return np.asarray(data, dtype=np.float32)


@dataclass(frozen=True)
class Exposure:
    """Keywords of a segment that the Stage-1 steps use (FITS keyword in each comment)."""

    instrument: str  # INSTRUME
    detector: str  # DETECTOR
    exp_type: str  # EXP_TYPE
    readpatt: str  # READPATT
    nints: int  # NINTS (whole exposure)
    ngroups: int  # NGROUPS
    nframes: int  # NFRAMES
    groupgap: int  # GROUPGAP
    tframe: float  # TFRAME [s]
    tgroup: float  # TGROUP [s]
    subarray: str  # SUBARRAY
    substrt1: int  # SUBSTRT1, 1-based, DMS frame
    substrt2: int  # SUBSTRT2
    subsize1: int  # SUBSIZE1
    subsize2: int  # SUBSIZE2
    fastaxis: int  # FASTAXIS
    slowaxis: int  # SLOWAXIS
    noutputs: int  # NOUTPUTS
    frame_divisor: int | None = None  # FRMDIVSR
    zero_frame: bool = False  # ZEROFRAM
    exsegnum: int | None = None  # EXSEGNUM
    exsegtot: int | None = None  # EXSEGTOT
    intstart: int | None = None  # INTSTART, 1-based
    intend: int | None = None  # INTEND, 1-based
    nsamples: int | None = None  # NSAMPLES: MIRI samples per pixel read (FAST 1), for emicorr


@dataclass
class Segment:
    """One segment's ramps and flags.

    Attributes
    ----------
    data : float32 (nints, ngroups, ny, nx); as read with ``raw=True``, before a backend's
        ``to_device``: the counts, uint16 or :data:`FILE_COUNTS`
    groupdq : uint8 (nints, ngroups, ny, nx)
    pixeldq : uint32 (ny, nx)
    zeroframe : float32 (nints, ny, nx) or None
    exposure : Exposure
    int_times : structured ndarray (INT_TIMES table) or None
    average_dark_current : float32 (ny, nx) or None, set by dark_current for ramp fitting
    first_integration : int, the segment index of ``data[0]`` when this is a chunk of
        integrations (jwst's refpix rounds the segment's first plane differently)
    trace_mask : bool (ny, nx) or None, pixels never used as sky by ``refpix.sky_method`` and
        ``superbias.scale``
    one_over_f : tsogpu.algorithms.oneoverf.Levels or None, what ``refpix.sky_method`` measured
    removed : dict or None, MIRI: step -> float64 (nints,), what the step removed from each
        integration (:data:`REMOVED`)
    bias_scale : tsogpu.algorithms.superbias.Factors or None, ``superbias.scale``'s factors:
        given before the steps with ``applied`` only (a chunked run's segment mean, the
        exposure's), else None; the superbias step sets them with what it measured
    """

    data: np.ndarray
    groupdq: np.ndarray
    pixeldq: np.ndarray
    exposure: Exposure
    zeroframe: np.ndarray | None = None
    int_times: np.ndarray | None = None
    average_dark_current: np.ndarray | None = None
    source: str = ""
    step_status: dict = field(default_factory=dict)
    first_integration: int = 0  # index in the segment of data[0] (chunks of integrations)
    # refpix.sky_method (tsogpu/algorithms/oneoverf.py): the trace mask, bool (ny, nx) on the
    # host, given before the steps run; the levels measured (oneoverf.Levels), set by refpix
    trace_mask: np.ndarray | None = None
    one_over_f: object | None = None
    # superbias.scale (tsogpu/algorithms/superbias.py): superbias.Factors, on the host
    bias_scale: object | None = None
    # MIRI: what each MIRI step removed from each integration of data, on the host (the
    # report's systematics): step -> float64 (nints,); None for the near-infrared detectors
    removed: dict | None = None

    @property
    def shape(self):
        return self.data.shape
