"""The observer's products after Stage 1: one file per exposure, its light curve and plots.

Stage 1 ends with one ``_rateints.fits`` per segment. This package merges the segments of an
exposure into ``<exposure>_tso.nc`` (netCDF-4 written with xarray: the rates on ``(time, y,
x)``, the white-light curve and the detector's time series on ``time``, the per-pixel read
times and the provenance), from which the figures and the HTML report are made.

- :mod:`.read_times`: when each pixel of each group was read (NumPy only);
- :mod:`.time_series`: the white light, trace position, background and flag counts of each
  integration, from plain arrays (NumPy only);
- :mod:`.segments`: the segments' products read and checked to be one whole exposure;
- :mod:`.exposure_product`: ``build_exposure_product``, the ``_tso.nc`` file.

Everything past the arrays needs the ``report`` extra (xarray, h5netcdf and h5py,
matplotlib): ``pip install 'tsogpu[report]'``. :func:`require_report_extra` says so, naming
what is missing; importing this package imports none of them.
"""

import importlib

# import name -> the distribution that provides it (pip's name)
REPORT_MODULES = {
    "xarray": "xarray",
    "h5netcdf": "h5netcdf",
    "h5py": "h5py",
    "matplotlib": "matplotlib",
}

__all__ = ["REPORT_MODULES", "require_report_extra"]


def require_report_extra():
    """Import the ``report`` extra's packages, or say which are missing and how to install them.

    Raises
    ------
    tsogpu.errors.ConfigError
        One or more of xarray, h5netcdf, h5py and matplotlib cannot be imported; the message
        names them and the extra (``pip install 'tsogpu[report]'``).
    """
    from ..errors import ConfigError

    missing = []
    for module, dist in REPORT_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise ConfigError(
            f"the exposure product and the report need {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            "pip install 'tsogpu[report]'"
        )
