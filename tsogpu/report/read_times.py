"""When each pixel of each group was read: a map of offsets per pixel plus group times.

NumPy only (the FITS writer imports astropy when called). The model is the one the simulator
injects 1/f noise with (:mod:`tsogpu.simulate.modes`), as Rauscher et al.'s NGHXRG and the
JWST user documentation describe the near-infrared detectors:

- a frame is read one detector row (a *line*, along the fast axis) after the other, in the
  order of the slow axis; the signs of FASTAXIS and SLOWAXIS say which way
  (:func:`tsogpu.simulate.modes.dms_to_detector`, jwst's frame transform);
- each pixel takes :data:`~tsogpu.simulate.modes.PIXEL_TIME` (10 us); each line ends with
  :data:`~tsogpu.simulate.modes.LINE_OVERHEAD` (12) more pixel times;
- with NOUTPUTS = 4 the four outputs (:data:`~tsogpu.simulate.modes.AMP_WIDTH` = 512 detector
  columns each) read their part of a line at the same time, each along the fast direction,
  so a line lasts as long as the widest output's part; with 1 output the whole line is one;
- the overhead at the end of the frame (TFRAME less the lines) comes after the last line.

So the pixel on line ``l`` at position ``k`` of its output's part of the line is read
``l * (n_per_output + 12) * 10 us + k * 10 us`` after the frame starts. Group ``g`` of an
integration averages NFRAMES frames, the first starting ``g * TGROUP`` after the
integration's first frame; :func:`group_read_times` gives the mean start of the group's
frames, so that ``group_time + read_offset / 86400`` is when the pixel was read, averaged
over the group's frames, exactly. The start of the first frame is INT_TIMES'
``int_start_MJD_UTC``, as the GROUP table's end times imply (group ``g``, 1-based, ends
``(g (NFRAMES + GROUPGAP) - GROUPGAP) TFRAME`` after it).

Not modelled: alternating read directions between outputs (some SIDECAR ASIC modes), IRS2's
interleaved reference pixels, and frame resets between integrations (INT_TIMES holds them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..simulate.modes import AMP_WIDTH, LINE_OVERHEAD, PIXEL_TIME, dms_to_detector

SECONDS_PER_DAY = 86400.0


def _detector_indices(exposure):
    """Full-frame detector (row, col) of each pixel of the subarray, int (ny, nx)."""
    ny, nx = int(exposure.subsize2), int(exposure.subsize1)
    y0, x0 = int(exposure.substrt2) - 1, int(exposure.substrt1) - 1
    yy, xx = np.meshgrid(np.arange(y0, y0 + ny), np.arange(x0, x0 + nx), indexing="ij")
    return dms_to_detector(yy, xx, exposure.fastaxis, exposure.slowaxis)


def _check(exposure):
    if abs(int(exposure.fastaxis)) not in (1, 2) or abs(int(exposure.slowaxis)) not in (1, 2):
        raise InputError(
            f"FASTAXIS and SLOWAXIS must be +-1 or +-2, got {exposure.fastaxis} and "
            f"{exposure.slowaxis}"
        )
    if abs(int(exposure.fastaxis)) == abs(int(exposure.slowaxis)):
        raise InputError(
            f"FASTAXIS ({exposure.fastaxis}) and SLOWAXIS ({exposure.slowaxis}) name the same axis"
        )
    if int(exposure.noutputs) not in (1, 4):
        raise InputError(f"NOUTPUTS must be 1 or 4, got {exposure.noutputs}")


def line_read_layout(exposure):
    """The read order of a frame: line, output and position in the output's part of a line.

    Parameters
    ----------
    exposure : tsogpu.segment.Exposure
        Uses SUBSTRT1/2, SUBSIZE1/2, FASTAXIS, SLOWAXIS and NOUTPUTS.

    Returns
    -------
    line : int (ny, nx)
        The fast-read line of each pixel, 0 for the first line read.
    output : int (ny, nx)
        The output (amplifier) that reads the pixel, 0..3 (0 with one output).
    position : int (ny, nx)
        The pixel's place in its output's part of the line, 0 for the first read.
    per_line : int
        Pixel reads of one output per line, the overhead left out.
    """
    _check(exposure)
    row, col = _detector_indices(exposure)
    line = row - row.min()
    if int(exposure.noutputs) == 4:
        output = col // AMP_WIDTH
    else:
        output = np.zeros_like(col)
    position = np.empty_like(col)
    per_line = 0
    for amp in np.unique(output):
        here = output == amp
        first = col[here].min()
        position[here] = col[here] - first
        per_line = max(per_line, int(col[here].max() - first + 1))
    return line, output, position, per_line


def line_time(exposure):
    """Seconds from the start of one fast-read line to the next, float."""
    return (line_read_layout(exposure)[3] + LINE_OVERHEAD) * PIXEL_TIME


def pixel_read_offsets(exposure):
    """When each pixel is read, in seconds from the start of its frame.

    Parameters
    ----------
    exposure : tsogpu.segment.Exposure
        Uses SUBSTRT1/2, SUBSIZE1/2, FASTAXIS, SLOWAXIS and NOUTPUTS.

    Returns
    -------
    float64 (ny, nx)
        Seconds, in the DMS (science) frame of the products, ``ny = SUBSIZE2``,
        ``nx = SUBSIZE1``; 0 for the first pixel read. Pixels read by different outputs at
        the same moment share a value.
    """
    line, _, position, per_line = line_read_layout(exposure)
    t_line = (per_line + LINE_OVERHEAD) * PIXEL_TIME
    return line.astype(np.float64) * t_line + position.astype(np.float64) * PIXEL_TIME


def group_read_times(exposure, int_start_mjd, ngroups=None):
    """The mean start time of each group's frames, per integration.

    Parameters
    ----------
    exposure : tsogpu.segment.Exposure
        Uses NGROUPS, NFRAMES, TFRAME and TGROUP.
    int_start_mjd : float64 (nints,)
        INT_TIMES' ``int_start_MJD_UTC`` of the integrations, MJD (UTC), days: the start of
        each integration's first frame.
    ngroups : int, optional
        Groups per integration (default NGROUPS).

    Returns
    -------
    float64 (nints, ngroups)
        MJD (UTC), days. The pixel ``(y, x)`` of group ``g`` of integration ``i`` was read at
        ``group_times[i, g] + pixel_read_offsets(exposure)[y, x] / 86400`` (the mean over the
        group's NFRAMES frames).
    """
    ngroups = int(exposure.ngroups if ngroups is None else ngroups)
    start = np.asarray(int_start_mjd, dtype=np.float64).reshape(-1, 1)
    seconds = np.arange(ngroups, dtype=np.float64) * float(exposure.tgroup)
    seconds += 0.5 * (int(exposure.nframes) - 1) * float(exposure.tframe)
    return start + seconds[None, :] / SECONDS_PER_DAY


def read_offset_cards(exposure):
    """The keywords that define a read-offset map: (key, value, comment) tuples."""
    line, _, _, per_line = line_read_layout(exposure)
    return [
        ("BUNIT", "s", "seconds from the start of the frame"),
        ("SUBSTRT1", int(exposure.substrt1), "starting pixel in axis 1 direction"),
        ("SUBSTRT2", int(exposure.substrt2), "starting pixel in axis 2 direction"),
        ("SUBSIZE1", int(exposure.subsize1), "number of pixels in axis 1 direction"),
        ("SUBSIZE2", int(exposure.subsize2), "number of pixels in axis 2 direction"),
        ("FASTAXIS", int(exposure.fastaxis), "fast readout axis direction"),
        ("SLOWAXIS", int(exposure.slowaxis), "slow readout axis direction"),
        ("NOUTPUTS", int(exposure.noutputs), "number of detector outputs used"),
        ("READPATT", str(exposure.readpatt), "readout pattern"),
        ("NFRAMES", int(exposure.nframes), "number of frames per group"),
        ("GROUPGAP", int(exposure.groupgap), "number of frames dropped between groups"),
        ("TFRAME", float(exposure.tframe), "[s] time between frames"),
        ("TGROUP", float(exposure.tgroup), "[s] time between groups"),
        ("PIXTIME", PIXEL_TIME, "[s] time to read one pixel"),
        ("LINEOVH", LINE_OVERHEAD, "pixel times of overhead at the end of each line"),
        ("NPERLINE", per_line, "pixels each output reads per line"),
        ("NLINES", int(line.max()) + 1, "fast-read lines per frame"),
        ("LINETIME", (per_line + LINE_OVERHEAD) * PIXEL_TIME, "[s] time per line"),
    ]


def write_read_offsets(path, exposure):
    """Write :func:`pixel_read_offsets` as a FITS image, atomically.

    One HDU: the primary, float64 (ny, nx) in seconds, with the keywords that define it
    (:func:`read_offset_cards`). Returns the Path written.
    """
    from astropy.io import fits

    from .. import __version__
    from ..io.atomic import write_atomically

    hdu = fits.PrimaryHDU(pixel_read_offsets(exposure))
    for key, value, comment in read_offset_cards(exposure):
        hdu.header[key] = (value, comment)
    hdu.header["TSOVER"] = (__version__, "tsogpu version")
    hdu.header["FILENAME"] = Path(path).name
    hdu.header.add_comment(
        "Read time of pixel (y, x) in group g of integration i: the group's mean frame start "
        "(group_time in the _tso.nc file) plus this offset."
    )
    return write_atomically(path, hdu.writeto)
