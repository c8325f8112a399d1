"""A small synthetic exposure product (the ``_tso.nc`` Dataset) for the report's tests and demo.

It follows the contract of ``tsogpu.report.exposure_product``: dims (time, y, x), ``rateints``,
``err``, ``dq``, the time series on ``time`` (MJD UTC), ``read_offset (y, x)``, provenance in
the attributes. The scene is a NIRSpec-like trace with a transit, column (1/f) stripes,
jumps, a few saturated and dead pixels.
"""

import json

import numpy as np

from tsogpu import dq


def synthetic_exposure(nints=40, ny=32, nx=256, *, seed=7, params=None, name="jw_demo_nrs1"):
    """An ``xarray.Dataset`` shaped as the exposure product (float32 rates, uint32 DQ)."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    t = np.arange(nints)
    mjd = 60300.25 + t * 60.0 / 86400.0
    phase = (t - nints / 2) / (nints / 6)
    depth = 0.01 * (np.abs(phase) < 1)  # a box-shaped 1 % transit
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
    white = np.nansum(rate[:, aperture], axis=(1, 2))
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
            "tsogpu_version": "0.1.0",
            "backend": "numpy",
            "device": "cpu",
            "parameters": json.dumps(params, sort_keys=True),
            "reference_files": json.dumps(
                {"gain": "crds://jwst_nirspec_gain_0025.fits", "mask": "mask.fits"}
            ),
            "inputs": json.dumps([f"{name}_seg00{i}_rateints.fits" for i in (1, 2)]),
        },
    )
    return ds
