"""The simulated MIRI imager (MIRIMAGE): its TSO modes, subarrays, readout clocks and detector.

Geometry and clocks are the real ones: the subarrays' corners and sizes of the MIRI
documentation (``SUBSTRT1``/``SUBSTRT2`` 1-based, the DMS frame, which for MIRI is the detector
frame: FASTAXIS = 1, SLOWAXIS = 2), and the row and frame clocks that jwst's emicorr uses
(``jwst.emicorr.emicorr.subarray_clocks``). The four outputs read four adjacent columns at
once, one 10 us sample per pixel (NSAMPLES = 1 in FAST mode, 9 in SLOW), so a row of ``nx``
pixels takes ``rowclocks`` samples, and a frame ``ny * rowclocks + (1024 - ny) * 7`` (the rows
outside the subarray are reset two at a time): ``frameclocks``. TFRAME is ``frameclocks``
times 10 us. FASTR1 and SLOWR1 add one reset frame between integrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

FULL_MIRI = (1024, 1032)  # (ny, nx) of the MIRI detector, reference columns included
NREF_COLS = 4  # reference columns at the left and right edges of the full frame
SAMPLE_TIME = 1.0e-5  # seconds per 10 us clock
OUTSIDE_ROW_CLOCKS = 7  # clocks per detector row outside the subarray ((4 + 3) in emicorr)

# name: (SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2, rowclocks FAST)
SUBARRAYS = {
    "FULL": (1, 1, 1032, 1024, 271),
    "BRIGHTSKY": (457, 51, 512, 512, 162),
    "SUB256": (413, 51, 256, 256, 96),
    "SUB128": (1, 889, 136, 128, 44),
    "SUB64": (1, 779, 72, 64, 28),
    "SLITLESSPRISM": (1, 529, 72, 416, 28),
}
FULL_SLOW_ROWCLOCKS = 2333  # FULL read in SLOW mode (9 samples per pixel)
# READPATT: (NFRAMES, GROUPGAP, NSAMPLES); the R1 patterns reset once more between integrations
READ_PATTERNS = {"FASTR1": (1, 0, 1), "SLOWR1": (1, 0, 9)}


@dataclass(frozen=True)
class MiriMode:
    """One MIRI TSO mode: the keywords of the files, the source on the detector."""

    exp_type: str
    subarray: str
    source: str  # "trace" (a spectrum along the rows) or "point"
    file_stem: str
    keywords: dict = field(default_factory=dict)
    instrument: str = "MIRI"
    detector: str = "MIRIMAGE"
    readpatt: str = "FASTR1"
    fastaxis: int = 1
    slowaxis: int = 2
    noutputs: int = 4
    gain: float = 3.1  # e-/DN
    readnoise: float = 8.0  # CDS read noise, DN


MIRI_MODES = {
    "miri_lrs": MiriMode(
        exp_type="MIR_LRS-SLITLESS",
        subarray="SLITLESSPRISM",
        source="trace",
        file_stem="jw01366004001_04103_00001",
        keywords={"instrument.filter": "P750L"},
    ),
    "miri_image": MiriMode(
        exp_type="MIR_IMAGE",
        subarray="SUB64",
        source="point",
        file_stem="jw01366005001_04103_00001",
        keywords={"instrument.filter": "F1500W"},
    ),
}


@dataclass(frozen=True)
class MiriGeometry:
    """A MIRI subarray on the detector and its readout clocks (the attributes
    :func:`tsogpu.simulate.files.write_uncal` reads, plus MIRI's)."""

    subarray: str
    substrt1: int
    substrt2: int
    ny: int
    nx: int
    rowclocks: int
    frameclocks: int
    nsamples: int
    refpix: np.ndarray  # bool (ny, nx): the reference columns in the subarray
    noutputs: int = 4

    @property
    def tframe(self):
        return round(self.frameclocks * SAMPLE_TIME, 5)

    @property
    def ys(self):
        return slice(self.substrt2 - 1, self.substrt2 - 1 + self.ny)

    @property
    def xs(self):
        return slice(self.substrt1 - 1, self.substrt1 - 1 + self.nx)


def miri_geometry(subarray, readpatt):
    """The :class:`MiriGeometry` of a named MIRI subarray read with ``readpatt``."""
    if subarray not in SUBARRAYS:
        raise ConfigError(
            f"subarray {subarray!r} is not a simulated MIRI subarray; expected one of "
            f"{', '.join(SUBARRAYS)}"
        )
    if readpatt not in READ_PATTERNS:
        raise ConfigError(
            f"readpatt {readpatt!r} is not a MIRI TSO pattern; expected one of "
            f"{', '.join(READ_PATTERNS)}"
        )
    x0, y0, nx, ny, rowclocks = SUBARRAYS[subarray]
    nsamples = READ_PATTERNS[readpatt][2]
    if nsamples != 1:
        if subarray != "FULL":
            raise ConfigError(f"{readpatt} is read with the FULL subarray only, got {subarray}")
        rowclocks = FULL_SLOW_ROWCLOCKS
    frameclocks = ny * rowclocks + (FULL_MIRI[0] - ny) * OUTSIDE_ROW_CLOCKS
    cols = np.arange(x0 - 1, x0 - 1 + nx)
    refcol = (cols < NREF_COLS) | (cols >= FULL_MIRI[1] - NREF_COLS)
    return MiriGeometry(
        subarray=subarray,
        substrt1=x0,
        substrt2=y0,
        ny=ny,
        nx=nx,
        rowclocks=rowclocks,
        frameclocks=frameclocks,
        nsamples=nsamples,
        refpix=np.broadcast_to(refcol, (ny, nx)).copy(),
    )


def pixel_clocks(geo, ngroups, exposure_int):
    """When each pixel of each group of integration ``exposure_int`` (0-based in the whole
    exposure) is sampled, in 10 us clocks from the first pixel of the exposure: int64
    (ngroups, ny, nx). As jwst's emicorr counts: ``rowclocks`` per row, ``frameclocks`` per
    frame, four columns per sample, and one more frame (the R1 reset) per integration."""
    start = exposure_int * (ngroups + 1) * geo.frameclocks
    g = np.arange(ngroups, dtype=np.int64)[:, None, None] * geo.frameclocks
    y = np.arange(geo.ny, dtype=np.int64)[None, :, None] * geo.rowclocks
    x = (np.arange(geo.nx, dtype=np.int64) // 4)[None, None, :] * geo.nsamples
    return start + g + y + x


def miri_detector(m, rng):
    """Full-frame (1024 x 1032) MIRI detector properties, float32 unless stated.

    The linearity polynomial acts on the raw DN, bias included (MIRI has no superbias step):
    ``linear = c1 m + c2 m^2 + c3 m^3 + c4 m^4`` for the measured ``m``.
    """
    f32 = np.float32
    shape = FULL_MIRI

    def normal(scale):
        return f32(scale) * rng.standard_normal(shape, dtype=f32)

    cols = np.arange(shape[1])
    refpix = np.broadcast_to((cols < NREF_COLS) | (cols >= shape[1] - NREF_COLS), shape).copy()
    bias = f32(13000.0) + rng.normal(0.0, 150.0, shape[1]).astype(f32)[None, :] + normal(300.0)
    sat_thresh = f32(57000.0) + normal(800.0)
    hard_sat = np.minimum(sat_thresh + f32(600.0), f32(65535.0))
    c1 = f32(1.0) + normal(0.002)
    c2 = f32(1.1e-6) * (f32(1.0) + normal(0.05))
    c3 = f32(1.0e-12) * (f32(1.0) + normal(0.1))
    c4 = np.zeros(shape, f32)
    coeffs = np.stack([np.zeros(shape, f32), c1, c2, c3, c4])
    gain = f32(m.gain) * (f32(1.0) + normal(0.02))
    readnoise = f32(m.readnoise) * (f32(1.0) + normal(0.08))
    return {
        "refpix": refpix,
        "bias": bias,
        "sat_thresh": sat_thresh,
        "hard_sat": hard_sat,
        "coeffs": coeffs,
        "gain": gain,
        "readnoise": readnoise,
        # MIRI effects, per pixel: the reset anomaly's amplitude (DN, first integration and
        # later ones), the first and last frame offsets (DN), the dark current (DN/s)
        "reset_amp": np.stack([f32(350.0) + normal(30.0), f32(120.0) + normal(12.0)]),
        "first_frame": f32(-25.0) + normal(5.0),
        "last_frame": f32(-40.0) + normal(6.0),
        "dark_rate": np.abs(f32(0.25) + normal(0.05)),
    }
