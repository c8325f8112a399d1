"""A small synthetic exposure product (the ``_tso.nc`` Dataset) for the report's tests and demo.

It follows the contract of ``tsogpu.report.exposure_product``: dims (time, y, x), ``rateints``,
``err``, ``dq``, the time series on ``time`` (MJD UTC), ``read_offset (y, x)``, provenance in
the attributes. The scene is a NIRSpec-like trace with a transit, column (1/f) stripes,
jumps, a few saturated and dead pixels.

As a script it makes the report of the docs (docs/report.md) and its screenshot::

    python tests/report_data.py OUT_DIR docs/img/report_demo.png [EXPOSURE_tso.nc]

from the synthetic exposure, or from an exposure product when one is given.
"""

import json
import sys
from pathlib import Path

import numpy as np

from tsogpu import dq


def synthetic_exposure(nints=40, ny=32, nx=256, *, seed=7, params=None, name="jw_demo_nrs1"):
    """An ``xarray.Dataset`` shaped as the exposure product (float32 rates, uint32 DQ)."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    t = np.arange(nints)
    mjd = 60300.25 + t * 60.0 / 86400.0
    phase = (t - nints / 2) / (nints / 6)
    depth = 0.01 * np.clip((1.0 - np.abs(phase)) / 0.2, 0.0, 1.0)  # a 1 % transit
    centroid = 15.6 + 0.05 * np.sin(t / 5.0) + rng.normal(0, 0.01, nints)
    width = 1.4 + 0.02 * np.cos(t / 7.0)
    yy = np.arange(ny)[None, :, None]
    xx = np.arange(nx)[None, None, :]
    spectrum = 80.0 * np.exp(-0.5 * ((xx - nx * 0.4) / (nx * 0.3)) ** 2)
    w = width[:, None, None]
    profile = 1.4 / w * np.exp(-0.5 * ((yy - centroid[:, None, None]) / w) ** 2)
    background = 0.5 + 0.002 * t
    stripes = np.cumsum(rng.normal(0, 0.03, (nints, 1, nx)), axis=2)  # red in x
    stripes -= stripes.mean(axis=2, keepdims=True)
    rate = (
        spectrum * profile * (1 - depth)[:, None, None]
        + background[:, None, None]
        + stripes
        + rng.normal(0, 0.2, (nints, ny, nx))
    ).astype(np.float32)
    err = np.full_like(rate, 0.2)
    flags = np.zeros((nints, ny, nx), dtype=np.uint32)
    jumps = rng.random((nints, ny, nx)) < 0.002
    flags[jumps] |= dq.JUMP_DET
    flags[:, int(round(centroid[0])), int(nx * 0.4) : int(nx * 0.4) + 3] |= dq.SATURATED
    dead = (rng.integers(0, ny, 6), rng.integers(0, nx, 6))
    flags[:, dead[0], dead[1]] |= dq.DO_NOT_USE | dq.PIXEL["DEAD"]
    rate[:, dead[0], dead[1]] = np.nan
    aperture = np.abs(np.arange(ny) - 15.6) <= 4
    white = np.nansum(rate[:, aperture] - background[:, None, None], axis=(1, 2))
    params = params or {
        "jump": {"rejection_threshold": 4.0, "flag_4_neighbors": True},
        "saturation": {"fraction": 0.9, "column_saturation": False},
        "ramp_fit": {"algorithm": "OLS_C", "firstgroup": 0},
    }
    per_time = lambda bit: ((flags & bit) != 0).sum(axis=(1, 2))  # noqa: E731
    ds = xr.Dataset(
        {
            "rateints": (("time", "y", "x"), rate, {"units": "DN/s"}),
            "err": (("time", "y", "x"), err, {"units": "DN/s"}),
            "dq": (("time", "y", "x"), flags),
            "white_light": ("time", white, {"units": "DN/s"}),
            "white_light_err": ("time", np.full(nints, 0.2 * np.sqrt(aperture.sum() * nx))),
            "trace_centroid": ("time", centroid, {"units": "pixel"}),
            "trace_width": ("time", width, {"units": "pixel"}),
            "background": ("time", background, {"units": "DN/s"}),
            "one_over_f_amplitude": ("time", stripes.std(axis=(1, 2)), {"units": "DN/s"}),
            "bias_offset": ("time", rng.normal(0, 0.5, nints), {"units": "DN"}),
            "n_jump": ("time", per_time(dq.JUMP_DET)),
            "n_saturated": ("time", per_time(dq.SATURATED)),
            "n_do_not_use": ("time", per_time(dq.DO_NOT_USE)),
            "n_usable_groups": ("time", np.full(nints, 12)),
            "read_offset": (("y", "x"), np.zeros((ny, nx), dtype=np.float32)),
        },
        coords={"time": ("time", mjd, {"units": "MJD (UTC)"}), "integration": ("time", t + 1)},
        attrs={
            "exposure": name,
            "TSOVER": "0.1.0",
            "TSOBACK": "numpy",
            "TSODEV": "cpu",
            "TSOPARS": json.dumps(params, sort_keys=True),
            "R_GAIN": "crds://jwst_nirspec_gain_0025.fits",
            "R_MASK": "mask.fits",
            "segments": json.dumps([{"file": f"{name}_seg00{i}_rateints.fits"} for i in (1, 2)]),
        },
    )
    return ds


def main(argv):
    """Write a demo report into ``argv[0]`` and its screenshot (the top) to ``argv[1]``."""
    from chromium_cdp import render

    from tsogpu.report.report import make_report

    out, shot = Path(argv[0]), Path(argv[1])
    if len(argv) > 2:
        import xarray as xr

        ds = xr.open_dataset(argv[2])
        name = Path(argv[2]).name.removesuffix("_tso.nc")
        products = [Path(argv[2])]
    else:
        name = "jw01366004001_04101_00001_nrs1"
        ds = synthetic_exposure(nints=150, ny=32, nx=512, name=name)
        products = {
            "rateints (segment 1)": out / f"{name}_seg001_rateints.fits",
            "rateints (segment 2)": out / f"{name}_seg002_rateints.fits",
            "exposure product": out / f"{name}_tso.nc",
        }
    summary = {
        "timings": {"pass 1": 41.2, "pass 2": 18.9, "total": 63.4},
        "peak_memory": 2.7 * 2**30,
        "warnings": ["demo: synthetic exposure"],
    }
    paths = make_report(ds, out, name, products=products, summary=summary)
    page = render(paths["report"], width=1280, height=1900, full_page=False)
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(page.screenshot)
    print(f"{paths['report']} -> {shot}: {len(page.images)} figures, errors {page.errors}")
    return 1 if page.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
