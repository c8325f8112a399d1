"""The summary of a parameter sweep: a row per grid point and segment, ``OUT/sweep.csv``.

The figures come from each point's :class:`tsogpu.pipeline.Result` while it is in memory:
flag fractions, the rates' median and robust scatter, and the white light's point-to-point
scatter through the trace's aperture (:mod:`tsogpu.report.time_series`, NumPy only) where a
trace is found. NumPy only; the file is written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings

import numpy as np

from . import dq
from .errors import InputError

log = logging.getLogger(__name__)

# column -> what it holds (docs/sweep.md); the grid's STEP.PARAM columns come after "point"
COLUMNS = {
    "point": "the point's folder under OUT",
    "segment": "the uncal file",
    "jump_groups": "fraction of the ramp's groups flagged JUMP_DET (blank: the ramp was not "
    "held in memory)",
    "saturated_groups": "fraction of the ramp's groups flagged SATURATED (blank: as above)",
    "do_not_use_groups": "fraction of the ramp's groups flagged DO_NOT_USE (blank: as above)",
    "do_not_use": "fraction of the rateints' pixels (all integrations) flagged DO_NOT_USE",
    "primary_cosmic_rays": "PRIMECRS: jump's primary cosmic rays per cm2 per second",
    "median_rate": "median of the usable rateints SCI values, DN/s",
    "robust_scatter": "1.4826 x their median absolute deviation, DN/s",
    "white_light_p2p_ppm": "point-to-point scatter of the white light, ppm, in the aperture of "
    "the segment's first point (blank: no trace "
    "found, or fewer than 3 integrations)",
    "seconds": "the point's own time (the later steps and the writing)",
}


def group_fractions(groupdq):
    """{jump_groups, saturated_groups, do_not_use_groups}: the fraction of groups with the bit,
    from GROUPDQ (uint8 (nints, ngroups, ny, nx)); blanks where it is None."""
    names = {"jump_groups": dq.JUMP_DET, "saturated_groups": dq.SATURATED}
    names["do_not_use_groups"] = dq.DO_NOT_USE
    if groupdq is None:
        return dict.fromkeys(names, "")
    flags = np.asarray(groupdq)
    return {
        name: float(np.count_nonzero(flags & np.uint8(bit)) / flags.size)
        for name, bit in names.items()
    }


def rate_figures(sci, err, dq_cube, exp_type, aperture=None):
    """The rateints' figures: DO_NOT_USE fraction, median and robust scatter of the usable
    SCI values, the white light's point-to-point scatter (blank where there is no trace).

    ``aperture``: (aperture, median image) of an earlier point (:class:`Summary`), else found
    here from these rates. Returns (the figures, the aperture used or None).
    """
    from .report.time_series import (
        DISPERSION_AXIS,
        aperture_light_curve,
        point_to_point_ppm,
        usable_pixels,
        white_light,
    )

    flags = np.asarray(dq_cube, np.uint32)
    row = {"do_not_use": float(np.count_nonzero(flags & np.uint32(dq.DO_NOT_USE)) / flags.size)}
    usable = usable_pixels(sci, flags)
    values = np.asarray(sci, np.float32)[usable]  # a copy: the medians partition it in place
    median = _median_in_place(values)
    mad = _median_in_place(np.abs(values - np.float32(median), out=values))
    row.update(median_rate=median, robust_scatter=1.4826 * mad, white_light_p2p_ppm="")
    axis = DISPERSION_AXIS.get(exp_type)
    if axis is None or sci.shape[0] < 3:
        return row, None
    flip = (lambda a: a.transpose(0, 2, 1)) if axis == "y" else (lambda a: a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if aperture is None:
            try:
                curve = aperture_light_curve(flip(sci), flip(err), flip(usable))
            except InputError as exc:  # no trace in these rates
                log.debug("no white light: %s", exc)
                return row, None
            flux, aperture = curve.flux, (curve.aperture, curve.median)
        else:
            flux = white_light(flip(sci), flip(err), flip(usable), *aperture)[0]
    ppm = point_to_point_ppm(flux)
    row["white_light_p2p_ppm"] = "" if not np.isfinite(ppm) else ppm
    return row, aperture


class Summary:
    """The rows of a sweep, a point at a time (:meth:`add`). Each segment's white-light
    aperture is found on its first point and kept for the others, so that the points'
    scatters compare the same pixels (and the trace is looked for once)."""

    def __init__(self):
        self.rows, self.apertures = [], {}

    def add(self, done):
        """The row of one point of one segment (a :class:`tsogpu.sweep.Done`)."""
        result, segment = done.result, done.uncal.name
        row = {"point": done.point.name, "segment": segment}
        row.update({f"{s}.{p}": v for s, p, v in done.point.settings})
        row.update(group_fractions(result.segment.groupdq))
        if result.rateints is not None:
            sci, err, dq_cube = result.rateints[:3]
            exp_type = result.segment.exposure.exp_type
            figures, aperture = rate_figures(
                sci, err, dq_cube, exp_type, self.apertures.get(segment)
            )
            row.update(figures)
            self.apertures.setdefault(segment, aperture)
        pcr = result.primary_cosmic_rays
        row["primary_cosmic_rays"] = "" if pcr is None else pcr
        row["seconds"] = round(done.seconds, 3)
        self.rows.append(row)
        return row


def _median_in_place(values):
    """``float(np.median(values))`` of a 1-d float32 array, NaN when empty, found by
    partitioning ``values`` itself (np.median partitions a copy)."""
    n = values.size
    if n == 0:
        return float("nan")
    half = n // 2
    if n % 2:
        values.partition(half)
        return float(values[half])
    values.partition((half - 1, half))
    return float(np.mean(values[half - 1 : half + 1]))


def write_csv(path, rows):
    """``rows`` (dicts) as CSV at ``path``, atomically: the point, the grid's parameters, then
    :data:`COLUMNS` in their order."""
    from .io.atomic import write_atomically

    params = [k for k in rows[0] if k not in COLUMNS] if rows else []
    fields = ["point", *params, *[c for c in COLUMNS if c != "point"]]
    text = io.StringIO()
    writer = csv.DictWriter(text, fields, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return write_atomically(path, lambda fh: fh.write(text.getvalue().encode()))


def _cell(value):
    return f"{value:.6g}" if isinstance(value, float) else value
