"""Run jwst 3.0's Detector1Pipeline offline on a simulated segment; a test helper, not tests.

``run_jwst_detector1(uncal, refs, out_dir)`` runs the pipeline with every reference file given
explicitly, saves the product of each listed step and reads them back as NumPy arrays::

    out = run_jwst_detector1(sim.uncal, sim.refs, tmp_path)
    out["saturation"]["groupdq"]        # uint8 (nints, ngroups, ny, nx)
    out["dark_current"]["cal_step"]     # {"S_DQINIT": "COMPLETE", ...}

jwst asks CRDS for a context even when every reference file is overridden. It works without a
network when ``CRDS_PATH`` holds ``config/jwst/server_config`` (a Python dict literal, as
``crds.core.heavy_client.load_server_info`` reads it), ``CRDS_SERVER_URL`` contains the word
"serverless" (so ``crds.client.api`` does not call the server and does not warn),
``CRDS_MODE=local``, ``CRDS_CONTEXT`` names a context, ``STPIPE_DISABLE_CRDS_STEPPARS`` is set
(no ``pars-*`` look-up), every reference type of every step that runs is overridden, and the
steps that need other references (ipc, rscd, reset, persistence, ...) are skipped.
:func:`configure_offline_crds` sets all of that up; it must run before crds reads its
configuration, i.e. before the first pipeline run (the test conftest calls it at start-up).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tsogpu.pipeline.steps import ramp_steps

CONTEXT = "jwst_1322.pmap"

# The near-infrared steps of Detector1Pipeline in the order it runs them.
NIR_ORDER = (
    "group_scale",
    "dq_init",
    "saturation",
    "ipc",
    "superbias",
    "refpix",
    "linearity",
    "dark_current",
    "charge_migration",
    "jump",
    "picture_frame",
    "clean_flicker_noise",
    "persistence",
    "ramp_fit",
    "gain_scale",
)
# The MIRI steps of Detector1Pipeline in the order it runs them.
MIRI_ORDER = (
    "group_scale",
    "dq_init",
    "emicorr",
    "saturation",
    "ipc",
    "firstframe",
    "lastframe",
    "reset",
    "linearity",
    "rscd",
    "dark_current",
    "refpix",
    "charge_migration",
    "jump",
    "picture_frame",
    "clean_flicker_noise",
    "persistence",
    "ramp_fit",
    "gain_scale",
)

# Reference types each step asks CRDS for (jwst's names; override_<type> step parameters).
STEP_REFTYPES = {
    "dq_init": ("mask",),
    "saturation": ("saturation", "superbias"),
    "superbias": ("superbias",),
    "refpix": ("refpix", "sirskernel"),
    "linearity": ("linearity",),
    "dark_current": ("dark",),
    "emicorr": ("emicorr",),
    "reset": ("reset",),
    "rscd": ("rscd",),
    "jump": ("gain", "readnoise"),
    "ramp_fit": ("gain", "readnoise"),
    "gain_scale": ("gain",),
    "ipc": ("ipc",),
}
# Steps that never run here: they need references the simulator does not make.
ALWAYS_SKIP = (
    "ipc",
    "charge_migration",
    "picture_frame",
    "clean_flicker_noise",
    "persistence",
)

# cal_step attribute -> FITS keyword, for the steps compared.
CAL_STEP_KEYWORDS = {
    "group_scale": "S_GRPSCL",
    "dq_init": "S_DQINIT",
    "saturation": "S_SATURA",
    "ipc": "S_IPC",
    "superbias": "S_SUPERB",
    "refpix": "S_REFPIX",
    "linearity": "S_LINEAR",
    "dark_current": "S_DARK",
    "jump": "S_JUMP",
    "ramp_fit": "S_RAMP",
    "gain_scale": "S_GANSCL",
    "emicorr": "S_MIREMI",
    "firstframe": "S_FRSTFR",
    "lastframe": "S_LASTFR",
    "reset": "S_RESET",
    "rscd": "S_RSCD",
}
PRE_JUMP = ramp_steps("NIRSPEC")

_CONFIGURED = {}


def configure_offline_crds(root=None):
    """Point CRDS at a private, serverless, local-mode cache; idempotent; returns CRDS_PATH.

    Parameters
    ----------
    root : str or Path or None; folder for the cache (a new temporary folder when None).
    """
    if "path" in _CONFIGURED:
        return _CONFIGURED["path"]
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="tsogpu_crds_"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    root = Path(root)
    cfg = root / "config" / "jwst"
    cfg.mkdir(parents=True, exist_ok=True)
    info = {
        "observatory": "jwst",
        "operational_context": CONTEXT,
        "edit_context": CONTEXT,
        "versions_context": CONTEXT,
        "last_synced": "2026-01-01 00:00:00",
        "bad_files": "",
        "bad_files_list": [],
        "force_remote_mode": False,
        "reference_url": "",
        "mapping_url": "",
        "download_metadata": {},
    }
    (cfg / "server_config").write_text(repr(info))
    os.environ.update(
        {
            "CRDS_PATH": str(root),
            "CRDS_SERVER_URL": "https://jwst-serverless-mode.stsci.edu",
            "CRDS_MODE": "local",
            "CRDS_CONTEXT": CONTEXT,
            "CRDS_OBSERVATORY": "jwst",
            "STPIPE_DISABLE_CRDS_STEPPARS": "True",
        }
    )
    _CONFIGURED["path"] = root
    return root


def step_config(
    refs, steps_to_compare=PRE_JUMP, skip=("jump", "ramp_fit", "gain_scale"), step_params=None
):
    """The ``steps`` dict for ``Detector1Pipeline.call``: overrides, skips, saves."""
    steps = {}
    for name in MIRI_ORDER + ("superbias",):
        cfg = {}
        for reftype in STEP_REFTYPES.get(name, ()):
            value = refs.get(reftype, "N/A")
            cfg[f"override_{reftype}"] = str(value)
        if name in ALWAYS_SKIP or name in skip:
            cfg["skip"] = True
        if name in steps_to_compare:
            cfg["save_results"] = True
            cfg["suffix"] = name
        cfg.update((step_params or {}).get(name, {}))
        steps[name] = cfg
    return steps


def run_jwst_detector1(
    uncal,
    refs,
    out_dir,
    *,
    steps_to_compare=PRE_JUMP,
    skip=("jump", "ramp_fit", "gain_scale"),
    step_params=None,
):
    """Run Detector1Pipeline offline and return the product of each compared step.

    Parameters
    ----------
    uncal : str or Path, the ``*_uncal.fits`` segment.
    refs : dict, reference type -> path (mask, saturation, superbias, linearity, dark, gain,
        readnoise; MIRI: emicorr, reset, rscd); a missing type is given to jwst as "N/A".
    out_dir : str or Path, where jwst writes the per-step files.
    steps_to_compare : sequence of step names whose output is returned.
    skip : sequence of step names to skip besides ipc, charge_migration, picture_frame,
        clean_flicker_noise and persistence (emicorr and firstframe: jwst's default, skipped,
        unless ``step_params`` says ``{"emicorr": {"skip": False}}``).
    step_params : dict step name -> dict of extra step parameters, or None.

    Returns
    -------
    dict step name -> dict with ``data`` float32 (nints, ngroups, ny, nx), ``groupdq`` uint8,
    ``pixeldq`` uint32 (ny, nx), ``zeroframe`` float32 (nints, ny, nx) or None,
    ``cal_step`` dict keyword (S_*) -> status, ``path`` Path of the file. A step that jwst
    skipped without writing a file gets the previous step's arrays and its own status.
    ramp_fit and gain_scale give the rate image instead (``data``, ``dq``, ``err``,
    ``var_poisson``, ``var_rnoise``) and the rateints cube under ``ints``.
    """
    configure_offline_crds()
    from jwst.pipeline import Detector1Pipeline
    from stdatamodels.jwst import datamodels

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = step_config(refs, steps_to_compare, skip, step_params)
    result = Detector1Pipeline.call(
        str(uncal), steps=steps, output_dir=str(out_dir), save_results=False
    )
    result.close()

    stem = Path(uncal).name
    stem = stem[: -len("_uncal.fits")] if stem.endswith("_uncal.fits") else Path(stem).stem
    from astropy.io import fits

    miri = fits.getval(uncal, "INSTRUME") == "MIRI"
    out = {}
    previous = None
    for name in MIRI_ORDER if miri else NIR_ORDER:
        if name not in steps_to_compare:
            continue
        # ramp_fit writes the rate as _0_ and the rateints as _1_; gain_scale writes both
        path, ints = {
            "ramp_fit": (f"{stem}_0_ramp_fit.fits", f"{stem}_1_ramp_fit.fits"),
            "gain_scale": (f"{stem}_gain_scale.fits", f"{stem}_gain_scaleints.fits"),
        }.get(name, (f"{stem}_{name}.fits", None))
        path = out_dir / path
        if path.exists():
            out[name] = _read_product(datamodels, path)
            if ints is not None and (out_dir / ints).exists():
                out[name]["ints"] = _read_product(datamodels, out_dir / ints)
        else:
            out[name] = {**(previous or {}), "cal_step": None, "path": None}
        previous = out[name]
    # a step without its own file takes its status from the next file written after it
    later = None
    for name in reversed(list(out)):
        if out[name]["path"] is not None:
            later = out[name]["cal_step"]
        elif later is not None:
            out[name]["cal_step"] = later
    return out


def _read_product(datamodels, path):
    """Arrays of one saved step product: a ramp (pre-jump, jump) or a rate image (ramp_fit)."""
    with datamodels.open(path) as model:
        if isinstance(model, datamodels.RampModel):
            zero = model.meta.exposure.zero_frame and model.hasattr("zeroframe")
            arrays = {
                "data": np.array(model.data, dtype=np.float32),
                "groupdq": np.array(model.groupdq, dtype=np.uint8),
                "pixeldq": np.array(model.pixeldq, dtype=np.uint32),
                "zeroframe": np.array(model.zeroframe, dtype=np.float32) if zero else None,
            }
        else:
            arrays = {
                key: np.array(getattr(model, key))
                for key in ("data", "dq", "err", "var_poisson", "var_rnoise")
                if model.hasattr(key)
            }
    return {**arrays, "cal_step": _cal_step_header(path), "path": path}


def _cal_step_header(path):
    """The S_* keywords of a FITS file's primary header (keyword -> status)."""
    from astropy.io import fits

    header = fits.getheader(path)
    return {k: header[k] for k in header if k.startswith("S_")}
