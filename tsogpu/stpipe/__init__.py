"""tsogpu behind jwst's stpipe: ``strun tsogpu_detector1``, ``TSODetector1Pipeline.call``.

- :class:`TSODetector1Pipeline` (``tsogpu.stpipe.pipeline``): jwst's Detector1Pipeline
  interface (step names, parameters, parameter files, ``override_<reftype>``, hooks) over
  tsogpu's runner;
- the step classes (``tsogpu.stpipe.steps``): jwst's parameters of each step, plus tsogpu's
  options;
- ``tsogpu.stpipe.parameters``: the one table from jwst's parameters to tsogpu's
  configuration;
- :func:`get_steps` (``tsogpu.stpipe.integration``): the ``stpipe.steps`` entry point.

Needs the ``stpipe`` extra (stpipe and jwst). Importing this package imports neither: each
name loads on first use, so ``strun``'s listing of the entry points stays quick.
"""

import importlib

from .parameters import STEP_CLASS_NAMES

_HOMES = {
    "TSODetector1Pipeline": "tsogpu.stpipe.pipeline",
    "get_steps": "tsogpu.stpipe.integration",
    **{cls: "tsogpu.stpipe.steps" for cls in STEP_CLASS_NAMES.values()},
}

__all__ = list(_HOMES)


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tsogpu.stpipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
