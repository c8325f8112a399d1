"""An exposure's report in one call: the figures, the DS9 images and the HTML page.

``tsogpu run --report`` and ``tsogpu report`` call :func:`make_report` with the exposure
product's Dataset (``tsogpu.report.exposure_product``) and the paths of the products to link.
"""

from pathlib import Path

from . import require_report_extra


def make_report(ds, out_dir, name, *, products=(), summary=None):
    """Write an exposure's figures (PNG), DS9 images (FITS) and HTML report into ``out_dir``.

    Parameters
    ----------
    ds : xarray.Dataset
        The exposure product: ``rateints``, ``err``, ``dq`` ``(time, y, x)``, the time
        series on ``time`` and the provenance attributes.
    out_dir : str or os.PathLike
        The folder of the products; created if missing.
    name : str
        The exposure's name (``jw..._nrs1``): every file is ``<name>_<what>.<ext>``.
    products : dict of str to path, or iterable of path
        The products to link from the report (rateints, rate, the ``_tso.nc``); the DS9
        images and the figures are added.
    summary : dict, optional
        Inputs, timings, peak memory, warnings (:func:`tsogpu.report.html.write_report`).

    Returns
    -------
    dict
        ``{"report": Path, "figures": {key: Path}, "ds9": {key: Path}}``.

    Raises
    ------
    ConfigError
        The ``report`` extra (matplotlib, xarray, h5netcdf) is not installed.
    """
    require_report_extra()
    from .ds9 import write_ds9_images
    from .figures import make_figures
    from .html import write_report
    from .maps import pixel_maps

    out_dir = Path(out_dir)
    maps = pixel_maps(ds)
    figures = make_figures(ds, out_dir, name, maps=maps)
    ds9 = write_ds9_images(ds, out_dir, name, maps=maps)
    links = (
        dict(products) if isinstance(products, dict) else {Path(p).name: Path(p) for p in products}
    )
    links.update({f"DS9 image: {k.replace('_', ' ')}": p for k, p in ds9.items()})
    links.update({f"figure: {k.replace('_', ' ')}": p for k, p in figures.items()})
    report = write_report(
        ds, out_dir, name, figures=figures, products=links, summary=summary, maps=maps
    )
    return {"report": report, "figures": figures, "ds9": ds9}
