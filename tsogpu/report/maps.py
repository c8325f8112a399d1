"""What the report shows per pixel, computed once from an exposure product's Dataset.

The figures, the DS9 images and the HTML summary all read these maps, so the median rate
in the PNG, in the FITS image and the flag fractions in the table come from one pass over
the cube. The pass goes by blocks of rows, so a lazily opened ``_tso.nc`` is read once and
never held whole in memory.
"""

from dataclasses import dataclass

import numpy as np

from .. import dq
from .time_series import nanmedian_first_axis

# the flags the report counts, in the order it shows them
FLAGS = {
    "JUMP_DET": dq.JUMP_DET,
    "SATURATED": dq.SATURATED,
    "DO_NOT_USE": dq.DO_NOT_USE,
}

# at most this many bytes of rateints are read at a time
BLOCK_BYTES = 64 * 2**20

# MJD 0 as a datetime64, for a time coordinate that xarray decoded into datetimes
_MJD_EPOCH = np.datetime64("1858-11-17T00:00:00", "ns")


@dataclass(frozen=True)
class PixelMaps:
    """Per-pixel summaries of an exposure over its integrations.

    Attributes
    ----------
    median_rate : numpy.ndarray
        float32 ``(ny, nx)``: the NaN-ignoring median of ``rateints`` over time (NaN where a
        pixel has no finite rate in any integration).
    dq_any : numpy.ndarray
        uint32 ``(ny, nx)``: the bitwise OR of ``dq`` over time.
    counts : dict of str to numpy.ndarray
        Flag name (:data:`FLAGS`) -> int32 ``(ny, nx)``: the integrations in which each pixel
        has that flag.
    per_time : dict of str to numpy.ndarray
        Flag name -> int64 ``(nints,)``: the pixels with that flag in each integration.
    nints : int
        The number of integrations.
    median_chi2 : numpy.ndarray or None
        float32 ``(ny, nx)``: the NaN-ignoring median over time of ``chi2`` (the ramp fit's
        reduced chi-square, ``ramp_fit.goodness_of_fit``); None where the product has none.
    """

    median_rate: np.ndarray
    dq_any: np.ndarray
    counts: dict
    per_time: dict
    nints: int
    median_chi2: np.ndarray | None = None

    def fractions(self):
        """Flag name -> the fraction of all pixel-integrations with that flag (0 to 1)."""
        total = self.nints * self.median_rate.size
        return {
            k: (float(c.sum(dtype=np.int64)) / total if total else 0.0)
            for k, c in self.counts.items()
        }


def cube(ds, name):
    """``ds[name]`` with its axes in ``(time, y, x)`` order (lazily, as the Dataset holds it)."""
    return ds[name].transpose("time", "y", "x")


def pixel_maps(ds, block_bytes=BLOCK_BYTES):
    """Compute :class:`PixelMaps` from ``ds`` (``rateints`` and ``dq``, dims time, y, x).

    Parameters
    ----------
    ds : xarray.Dataset
        The exposure product (``tsogpu.report.exposure_product``).
    block_bytes : int
        Roughly the most bytes of ``rateints`` read at one time.

    Returns
    -------
    PixelMaps
    """
    rate, flags = cube(ds, "rateints"), cube(ds, "dq")
    nints, ny, nx = rate.shape
    median = np.full((ny, nx), np.nan, dtype=np.float32)
    chi2 = cube(ds, "chi2") if "chi2" in ds else None
    median_chi2 = None if chi2 is None else np.full((ny, nx), np.nan, dtype=np.float32)
    dq_any = np.zeros((ny, nx), dtype=np.uint32)
    counts = {k: np.zeros((ny, nx), dtype=np.int32) for k in FLAGS}
    per_time = {k: np.zeros(nints, dtype=np.int64) for k in FLAGS}
    rows = max(1, int(block_bytes) // max(1, nints * nx * 4))
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        block = np.asarray(rate[:, y0:y1, :].values, dtype=np.float32)
        median[y0:y1] = nanmedian_first_axis(block)  # all-NaN pixels stay NaN
        if chi2 is not None:
            values = np.asarray(chi2[:, y0:y1, :].values, dtype=np.float32)
            median_chi2[y0:y1] = nanmedian_first_axis(values)
        bits = np.asarray(flags[:, y0:y1, :].values).astype(np.uint32)
        dq_any[y0:y1] = np.bitwise_or.reduce(bits, axis=0)
        for k, bit in FLAGS.items():
            hit = (bits & np.uint32(bit)) != 0
            counts[k][y0:y1] = hit.sum(axis=0, dtype=np.int32)
            per_time[k] += hit.sum(axis=(1, 2), dtype=np.int64)
    return PixelMaps(median, dq_any, counts, per_time, nints, median_chi2)


def time_mjd(ds):
    """The ``time`` coordinate as float64 MJD (UTC), decoded datetimes included."""
    t = np.asarray(ds["time"].values)
    if np.issubdtype(t.dtype, np.datetime64):
        return (t.astype("datetime64[ns]") - _MJD_EPOCH) / np.timedelta64(1, "D")
    return t.astype(np.float64)
