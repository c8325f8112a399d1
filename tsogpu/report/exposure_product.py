"""One exposure product: the segments' ``_rateints`` merged into ``<exposure>_tso.nc``.

A netCDF-4 file written with xarray (engine ``h5netcdf``), atomically
(:func:`tsogpu.io.atomic.write_atomically`). Its content, each variable with ``units`` and
``long_name``:

======================  =====================  ========  =====================================
variable                dims                   units     content
======================  =====================  ========  =====================================
``time`` (coordinate)   (time,)                d         mid-integration time, MJD (UTC), from
                                                         INT_TIMES ``int_mid_MJD_UTC`` (days,
                                                         not CF's "days since": xarray keeps
                                                         the floats)
``bjd_tdb`` (coord.)    (time,)                d         ``int_mid_BJD_TDB``, where every
                                                         segment has it
``integration`` (c.)    (time,)                1         integration number, 1-based
``rateints``, ``err``   (time, y, x)           DN/s      SCI and ERR; float32, zlib, one chunk
                                                         per integration
``dq``                  (time, y, x)           1         DQ, uint32, CF ``flag_masks``
``chi2``                (time, y, x)           1         CHI2, the reduced chi-square of each
                                                         ramp fit, where every segment has it
                                                         (``ramp_fit.goodness_of_fit``)
``white_light``         (time,)                DN/s      sum over the aperture (time_series)
``white_light_err``     (time,)                DN/s      ERR of the usable pixels in quadrature
``trace_centroid``      (time,)                pixel     flux-weighted cross-dispersion offset
                                                         from the aperture centre line
``trace_width``         (time,)                pixel     flux-weighted rms about it
``background``          (time,)                DN/s      median of the usable pixels more than
                                                         twice the half-width from the trace
``one_over_f_amplitude``(time,)                DN        rms of the 1/f line levels
                                                         (``_oneoverf`` LINES); NaN: no product
``bias_offset``         (time,)                DN        mean even/odd column offset
                                                         (``_oneoverf`` OFFSETS, ``roeba``)
``bias_scale``          (time,)                1         mean superbias factor applied
                                                         (``_biasscale`` APPLIED)
``miri_<step>``         (time,)                DN or 1   MIRI: what emicorr, reset (DN) removed;
                                                         groups x pixels firstframe, lastframe,
                                                         rscd marked DO_NOT_USE (``_removed``)
``n_jump``,             (time,)                pixel     pixels with JUMP_DET / SATURATED /
``n_saturated``,                                         DO_NOT_USE in DQ
``n_do_not_use``
``n_usable_groups``     (time,)                1         groups every pixel may use
                                                         (:func:`.segments.usable_groups`)
``read_offset``         (y, x)                 s         when each pixel is read in its frame
``group_time``          (time, group)          d         mean frame start of each group, MJD
                                                         (UTC); + read_offset / 86400
``median_rate``         (y, x)                 DN/s      median image the aperture is made from
``aperture``            (y, x)                 1         1 in the white-light aperture
``aperture_center``     (dispersion,)          pixel     the aperture's centre line
======================  =====================  ========  =====================================

The attributes hold the exposure's keywords (INSTRUME, EXP_TYPE, SUBSTRT1, ...), the
provenance of the first segment (TSOVER, TSOBACK, TSODEV, TSOKHASH, TSOPARS, R_* reference
files, S_* step statuses, CAL_VER, CRDS context), each segment's file and provenance
(``segments``, JSON), the aperture (``aperture_half_width``, ``dispersion_axis``) and CF's
``Conventions``, ``title``, ``source``, ``history``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np

from .. import __version__, dq
from ..errors import ConfigError, InputError
from ..segment import REMOVED
from . import require_report_extra
from .read_times import group_read_times, pixel_read_offsets, write_read_offsets
from .segments import read_exposure_segments, usable_groups
from .time_series import (
    DISPERSION_AXIS,
    aperture_light_curve,
    background,
    count_flag,
    mean_over_groups,
    one_over_f_amplitude,
    trace_aperture,
    trace_position,
    usable_pixels,
)

SUFFIX = "tso"  # <exposure>_tso.nc
READ_OFFSETS_SUFFIX = "readoffsets"  # <exposure>_readoffsets.fits
EXPOSURE_KEYWORDS = (
    "TELESCOP", "INSTRUME", "DETECTOR", "EXP_TYPE", "FILTER", "GRATING", "PUPIL", "FXD_SLIT",
    "PROGRAM", "OBSERVTN", "VISIT", "VISITGRP", "SEQ_ID", "ACT_ID", "EXPOSURE", "TSOVISIT",
    "READPATT", "NINTS", "NGROUPS", "NFRAMES", "GROUPGAP", "FRMDIVSR", "TFRAME", "TGROUP",
    "EFFINTTM", "EXSEGTOT", "SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2",
    "FASTAXIS", "SLOWAXIS", "NOUTPUTS", "DATE-OBS", "TIME-OBS", "EXPSTART", "EXPEND",
)  # fmt: skip
PROVENANCE_PREFIXES = ("TSO", "R_", "S_", "CRDS")
PROVENANCE_KEYWORDS = ("CAL_VER", "CAL_VCS", "DATAMODL")
DEFAULT_SMOOTH = 15  # columns, the running median along the dispersion


def build_exposure_product(
    rateints_paths,
    out_dir,
    *,
    aperture_half_width=None,
    name=None,
    dispersion_axis=None,
    smooth=DEFAULT_SMOOTH,
    write_read_offset_fits=True,
):
    """Merge an exposure's ``_rateints`` segments into ``<exposure>_tso.nc``.

    Parameters
    ----------
    rateints_paths : sequence of str or Path
        Every segment's ``_rateints.fits`` of one exposure, in any order, from any folders
        (segments run on different machines). ``_oneoverf.fits`` and ``_biasscale.fits``
        beside them are read when present.
    out_dir : str or Path; created if missing.
    aperture_half_width : float, optional
        Rows on either side of the trace centre in the white-light aperture. Default: 3 sigma
        of the trace's width in the median image, rounded up
        (:func:`.time_series.default_half_width`).
    name : str, optional
        The exposure's name in the file name (default the archive's, ``jw..._<detector>``).
    dispersion_axis : "x" or "y", optional
        Default from EXP_TYPE (:data:`.time_series.DISPERSION_AXIS`).
    smooth : int
        Columns of the running medians that find the trace (:func:`.time_series.trace_center`).
    write_read_offset_fits : bool
        Also write the read-offset map as ``<exposure>_readoffsets.fits``
        (:func:`.read_times.write_read_offsets`).

    Returns
    -------
    path : Path of the ``_tso.nc`` file
    dataset : xarray.Dataset, what the file holds (module docstring), in memory

    Raises
    ------
    tsogpu.errors.ConfigError
        The ``report`` extra is not installed, or a parameter is out of range.
    tsogpu.errors.InputError
        The files are not one whole exposure (:func:`.segments.read_exposure_segments`), or
        its mode's dispersion axis is unknown, or no trace is found.
    """
    require_report_extra()
    _check_parameters(aperture_half_width, dispersion_axis, smooth)
    exposure_name, segments = read_exposure_segments(rateints_paths)
    name = name or exposure_name
    out_dir = Path(out_dir)
    dataset = exposure_dataset(
        segments,
        aperture_half_width=aperture_half_width,
        dispersion_axis=dispersion_axis,
        smooth=smooth,
    )
    dataset.attrs["exposure"] = name
    if write_read_offset_fits:
        offsets = write_read_offsets(
            out_dir / f"{name}_{READ_OFFSETS_SUFFIX}.fits", segments[0].exposure
        )
        dataset.attrs["read_offset_file"] = offsets.name
    path = write_dataset(dataset, out_dir / f"{name}_{SUFFIX}.nc")
    return path, dataset


def _check_parameters(aperture_half_width, dispersion_axis, smooth):
    if aperture_half_width is not None:
        try:
            ok = float(aperture_half_width) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"aperture_half_width must be a number of rows > 0, got {aperture_half_width!r}"
            )
    if dispersion_axis not in (None, "x", "y"):
        raise ConfigError(f"dispersion_axis must be 'x' or 'y', got {dispersion_axis!r}")
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ConfigError(f"smooth must be a positive number of columns, got {smooth!r}")


def exposure_dataset(
    segments, *, aperture_half_width=None, dispersion_axis=None, smooth=DEFAULT_SMOOTH
):
    """The exposure product of ordered, checked segments as an ``xarray.Dataset``.

    Parameters
    ----------
    segments : list of tsogpu.report.segments.SegmentProducts, in integration order
    aperture_half_width, dispersion_axis, smooth : see :func:`build_exposure_product`
    """
    import xarray as xr

    first = segments[0]
    exposure = first.exposure
    axis = dispersion_axis or DISPERSION_AXIS.get(exposure.exp_type)
    if axis not in ("x", "y"):
        raise InputError(
            f"{first.path}: EXP_TYPE {exposure.exp_type!r}: dispersion axis unknown (known: "
            f"{', '.join(f'{k} {v}' for k, v in DISPERSION_AXIS.items())}); give "
            "dispersion_axis 'x' or 'y'"
        )
    rate = np.concatenate([s.data for s in segments])
    err = np.concatenate([s.err for s in segments])
    dq_cube = np.concatenate([s.dq for s in segments])
    series, images, half_width = _time_series(rate, err, dq_cube, axis, aperture_half_width, smooth)

    times = np.concatenate([s.int_times for s in segments])
    ngroups = int(exposure.ngroups)
    time = ("time",)
    coords = {
        "time": (time, times["int_mid_MJD_UTC"].astype(np.float64), _attrs(
            "d", "mid-integration time, MJD (UTC)", axis="T",
            time_scale="UTC", source="INT_TIMES int_mid_MJD_UTC")),
        "integration": (time, times["integration_number"].astype(np.int32), _attrs(
            "1", "integration number in the exposure, 1-based")),
    }  # fmt: skip
    if "int_mid_BJD_TDB" in times.dtype.names:
        bjd = times["int_mid_BJD_TDB"].astype(np.float64)
        if np.all(np.isfinite(bjd) & (bjd > 0)):
            coords["bjd_tdb"] = (time, bjd, _attrs(
                "d", "mid-integration time, BJD (TDB)", time_scale="TDB",
                source="INT_TIMES int_mid_BJD_TDB"))  # fmt: skip
    cube = ("time", "y", "x")
    data_vars = {
        "rateints": (cube, rate, _attrs("DN/s", "count rate per integration (SCI)")),
        "err": (cube, err, _attrs("DN/s", "error of the count rate (ERR)")),
        "dq": (cube, dq_cube, _dq_attrs()),
        **{k: (time, v, a) for k, (v, a) in series.items()},
        "n_jump": (time, count_flag(dq_cube, dq.PIXEL["JUMP_DET"]),
                   _attrs("pixel", "pixels with JUMP_DET in DQ")),
        "n_saturated": (time, count_flag(dq_cube, dq.PIXEL["SATURATED"]),
                        _attrs("pixel", "pixels with SATURATED in DQ")),
        "n_do_not_use": (time, count_flag(dq_cube, dq.DO_NOT_USE),
                         _attrs("pixel", "pixels with DO_NOT_USE in DQ")),
        "n_usable_groups": (time, np.concatenate(
            [np.full(s.nints, usable_groups(s), np.int32) for s in segments]), _attrs(
            "1", "groups every pixel may use: NGROUPS less those dq_init's options and "
            "ramp_fit.firstgroup/lastgroup leave out (TSOPARS)")),
        "read_offset": (("y", "x"), pixel_read_offsets(exposure), _attrs(
            "s", "read time of each pixel from the start of its frame")),
        "group_time": (("time", "group"), group_read_times(
            exposure, times["int_start_MJD_UTC"], ngroups), _attrs(
            "d", "mean start of the group's frames, MJD (UTC); a pixel is read at group_time "
            "+ read_offset / 86400", time_scale="UTC")),
        **images,
    }  # fmt: skip
    if all(s.chi2 is not None for s in segments):  # ramp_fit.goodness_of_fit
        data_vars["chi2"] = (cube, np.concatenate([s.chi2 for s in segments]), _attrs(
            "1", "reduced chi-square of the ramp fit per integration (CHI2)"))  # fmt: skip
    coords["group"] = (("group",), np.arange(ngroups, dtype=np.int32), _attrs(
        "1", "group index in the integration, 0-based"))  # fmt: skip
    data_vars.update(_side_series(segments))
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(_global_attrs(segments, axis, half_width, smooth))
    return ds


def _time_series(rate, err, dq_cube, axis, half_width, smooth):
    """The white light and the trace's series, and the aperture images, in DMS order."""
    flip = axis == "y"  # the time-series functions take the dispersion along x
    r = rate.transpose(0, 2, 1) if flip else rate
    e = err.transpose(0, 2, 1) if flip else err
    q = dq_cube.transpose(0, 2, 1) if flip else dq_cube
    usable = usable_pixels(r, q)
    curve = aperture_light_curve(r, e, usable, half_width, smooth)
    median, centre, half_width = curve.median, curve.centre, curve.half_width
    aperture, flux, flux_err = curve.aperture, curve.flux, curve.flux_err
    centroid, width = trace_position(curve.filled, curve.pixels, centre, r.shape[1:])
    outside = ~trace_aperture(centre, r.shape[1], 2.0 * half_width)
    sky = background(r, usable, outside)

    def back(img):
        return img.T if flip else img

    series = {
        "white_light": (flux, _attrs(
            "DN/s", "white light: sum of the rates over the aperture, bad pixels replaced by "
            "the scaled median image")),
        "white_light_err": (flux_err, _attrs(
            "DN/s", "error of white_light: ERR of the usable pixels in quadrature, scaled alike")),
        "trace_centroid": (centroid, _attrs(
            "pixel", "flux-weighted cross-dispersion offset of the trace from the aperture "
            "centre line")),
        "trace_width": (width, _attrs(
            "pixel", "flux-weighted cross-dispersion rms width of the trace")),
        "background": (sky, _attrs(
            "DN/s", "median rate of the usable pixels beyond twice the aperture half-width")),
    }  # fmt: skip
    dims = ("y", "x")
    images = {
        "median_rate": (dims, back(median).astype(np.float32), _attrs(
            "DN/s", "median over integrations of the usable rates")),
        "aperture": (dims, back(aperture).astype(np.uint8), _attrs(
            "1", "1 in the white-light aperture")),
        "aperture_center": (("dispersion",), centre, _attrs(
            "pixel", f"aperture centre line: the trace's {'x' if flip else 'y'} (0-based) in "
            f"each {'row' if flip else 'column'}")),
    }  # fmt: skip
    return series, images, half_width


def _side_series(segments):
    """``one_over_f_amplitude``, ``bias_offset``, ``bias_scale`` and (MIRI) ``miri_<step>``
    from the side products."""

    def gather(suffix, ext, reduce):
        parts = []
        for s in segments:
            arrays = s.side.get(suffix, {})
            if ext in arrays:
                parts.append(reduce(arrays[ext]))
            else:
                parts.append(np.full(s.nints, np.nan))
        return np.concatenate(parts).astype(np.float64)

    time = ("time",)
    miri = {  # what each MIRI step removed, where the segments have _removed
        f"miri_{step}": (time, gather("removed", step.upper(), np.asarray), _attrs(
            unit, f"{what}, per integration (_removed {step.upper()}); NaN: step not run"))
        for step, (unit, what) in REMOVED.items()
        if any(step.upper() in s.side.get("removed", {}) for s in segments)
    }  # fmt: skip
    return miri | {
        "one_over_f_amplitude": (time, gather("oneoverf", "LINES", one_over_f_amplitude), _attrs(
            "DN", "1/f amplitude: rms over the fast-read lines of the levels refpix.sky_method "
            "subtracted (_oneoverf LINES), over groups and outputs in quadrature; NaN: none")),
        "bias_offset": (time, gather("oneoverf", "OFFSETS", mean_over_groups), _attrs(
            "DN", "mean even/odd detector-column offset refpix.sky_method=roeba subtracted "
            "(_oneoverf OFFSETS); NaN: none")),
        "bias_scale": (time, gather("biasscale", "APPLIED", mean_over_groups), _attrs(
            "1", "mean over groups of the superbias factor superbias.scale applied "
            "(_biasscale APPLIED); NaN: none")),
    }  # fmt: skip


def _attrs(units, long_name, **more):
    return {"units": units, "long_name": long_name, **more}


def _dq_attrs():
    names = [n for n, v in dq.PIXEL.items() if v]
    return {
        "long_name": "data quality flags (JWST DQ bits)",
        "flag_masks": np.array([dq.PIXEL[n] for n in names], dtype=np.uint32),
        "flag_meanings": " ".join(names),
    }


def _netcdf_value(value):
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value
    return str(value)


def _global_attrs(segments, axis, half_width, smooth):
    first = segments[0]
    header = first.header
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"JWST time series after Stage 1: {header.get('INSTRUME', '')} "
        f"{header.get('DETECTOR', '')} {header.get('EXP_TYPE', '')}",
        "source": f"tsogpu {header.get('TSOVER', '')} (calwebb_detector1), "
        f"merged by tsogpu {__version__}",
        "history": f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}: "
        f"tsogpu.report.build_exposure_product from {len(segments)} segment(s)",
        "aperture_half_width": half_width,
        "aperture_smooth": int(smooth),
        "dispersion_axis": axis,
    }
    for key in EXPOSURE_KEYWORDS:
        if header.get(key) is not None:
            attrs[key] = _netcdf_value(header[key])
    for key, value in header.items():
        if key.startswith(PROVENANCE_PREFIXES) or key in PROVENANCE_KEYWORDS:
            if value is not None and key not in ("TSOIHASH",):
                attrs[key] = _netcdf_value(value)
    attrs["segments"] = json.dumps(
        [
            {
                "file": s.path.name,
                "EXSEGNUM": s.header.get("EXSEGNUM"),
                "INTSTART": s.exposure.intstart,
                "INTEND": s.exposure.intend,
                **{k: s.header.get(k) for k in ("TSOVER", "TSOBACK", "TSODEV", "TSOKHASH",
                                                "TSOIHASH", "DATE") if k in s.header},
                "side_products": [p.name for p in s.side_files],
            }
            for s in segments
        ]
    )  # fmt: skip
    return attrs


def write_dataset(dataset, path):
    """Write ``dataset`` to ``path`` as netCDF-4 (h5netcdf), atomically; returns the Path.

    ``rateints``, ``err``, ``dq`` (and ``chi2``) are stored one chunk per integration,
    zlib-compressed (level 4, byte shuffle).
    """
    from ..io.atomic import write_atomically

    encoding = {}
    for var in ("rateints", "err", "dq", "chi2"):
        if var in dataset:
            shape = dataset[var].shape
            encoding[var] = {
                "zlib": True,
                "complevel": 4,
                "shuffle": True,
                "chunksizes": (1, *shape[1:]),
            }

    def write(fh):
        dataset.to_netcdf(fh, engine="h5netcdf", encoding=encoding)

    return write_atomically(path, write)
