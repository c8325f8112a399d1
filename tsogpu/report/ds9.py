"""DS9-readable images of an exposure: plain single-HDU FITS files, no extensions, no tables.

``<name>_median_rate.fits`` (float32, the median over time of ``rateints``) and
``<name>_dq_map.fits`` (uint32, the OR over time of ``dq``), and with the ramp fit's CHI2
(``ramp_fit.goodness_of_fit``) ``<name>_median_chi2.fits`` (float32, its median over time):
DS9, ``fv`` or any FITS viewer shows them at once, without choosing an extension.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits

from .. import __version__
from ..io.atomic import write_atomically
from .maps import pixel_maps

# image key -> file suffix
DS9_IMAGES = {"median_rate": "median_rate", "dq_map": "dq_map", "median_chi2": "median_chi2"}


def ds9_path(out_dir, name, key):
    """The FITS image ``key`` (:data:`DS9_IMAGES`) of exposure ``name`` in ``out_dir``."""
    return Path(out_dir) / f"{name}_{DS9_IMAGES[key]}.fits"


def write_ds9_images(ds, out_dir, name, *, maps=None):
    """Write the median rate and the DQ map of ``ds`` as single-HDU FITS images.

    Parameters
    ----------
    ds : xarray.Dataset
        The exposure product (``rateints``, ``dq`` with dims time, y, x).
    out_dir : str or os.PathLike
        The folder of the products; created if missing.
    name : str
        The exposure's name (``<name>_median_rate.fits``, ``<name>_dq_map.fits``).
    maps : tsogpu.report.maps.PixelMaps, optional
        The per-pixel maps, when already computed (else computed here).

    Returns
    -------
    dict of str to pathlib.Path
        ``{"median_rate": ..., "dq_map": ...}`` (and ``"median_chi2"`` where ``ds`` has
        ``chi2``): the files written.
    """
    maps = pixel_maps(ds) if maps is None else maps
    unit = str(ds["rateints"].attrs.get("units", "DN/s"))
    images = {
        "median_rate": (
            maps.median_rate.astype(np.float32),
            unit,
            f"median over {maps.nints} integrations of rateints",
        ),
        "dq_map": (
            maps.dq_any.astype(np.uint32),
            "",
            f"bitwise OR over {maps.nints} integrations of the DQ",
        ),
    }
    if maps.median_chi2 is not None:
        images["median_chi2"] = (
            maps.median_chi2.astype(np.float32),
            "",
            f"median over {maps.nints} integrations of the ramp fit's reduced chi-square",
        )
    written = {}
    for key, (data, bunit, what) in images.items():
        hdu = fits.PrimaryHDU(data)
        hdr = hdu.header
        hdr["BUNIT"] = (bunit, "unit of the pixel values")
        hdr["EXPOSURE"] = (str(name)[:68], "exposure")
        hdr["TSOVER"] = (__version__, "tsogpu version")
        hdr["COMMENT"] = what
        for card in ("TSOBACK", "TSODEV"):
            value = ds.attrs.get(_ATTR_OF_CARD[card])
            if value is not None:
                hdr[card] = (str(value)[:68], _CARD_COMMENT[card])
        written[key] = write_atomically(ds9_path(out_dir, name, key), hdu.writeto)
    return written


_ATTR_OF_CARD = {"TSOBACK": "backend", "TSODEV": "device"}
_CARD_COMMENT = {"TSOBACK": "tsogpu compute backend", "TSODEV": "tsogpu compute device"}
