"""tsogpu: JWST Stage-1 (calwebb_detector1) for time-series observations.

The public API (``__all__``; docs/api.md has each with an example):

- :func:`run`: one uncal segment in, its jwst-compatible products out
  (``tsogpu.pipeline.process_file``);
- :func:`run_segment`: every step on a :class:`Segment` held in memory, a :class:`Result` back;
- :func:`read_uncal`, :func:`inspect_uncal`: an uncal file as a :class:`Segment` (arrays and
  the :class:`Exposure` keywords), or its keywords and shape alone;
- :func:`segment_references`: the reference files a segment's run needs, read;
- :class:`PipelineConfig` and :func:`load_toml`: every parameter, one frozen dataclass per
  step (``tsogpu.config``), defaults as jwst's;
- :func:`select_backend`: ``numpy | native | cupy | auto`` resolved, as ``--backend`` is;
- :func:`compare_products`: two products of the same exposure compared (``tsogpu compare``);
- the errors: :class:`TsogpuError` and its kinds, each also a built-in exception type.

Importing tsogpu imports none of these modules: each loads on first use, so ``import
tsogpu`` never imports CuPy, astropy or stdatamodels, and the array core runs where only
NumPy is installed. The file side (:func:`run`, :func:`read_uncal`) needs astropy and
stdatamodels, as does ``tsogpu.simulate.simulate`` (a synthetic segment with its reference
files; not a name here, since ``tsogpu.simulate`` is its package).
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_HOMES = {
    "run": ("tsogpu.pipeline", "process_file"),
    "run_segment": ("tsogpu.pipeline", "run_segment"),
    "Result": ("tsogpu.pipeline", "Result"),
    "Segment": ("tsogpu.segment", "Segment"),
    "Exposure": ("tsogpu.segment", "Exposure"),
    "read_uncal": ("tsogpu.io.uncal", "read_uncal"),
    "inspect_uncal": ("tsogpu.io.uncal", "inspect_uncal"),
    "segment_references": ("tsogpu.io.reffiles", "segment_references"),
    "PipelineConfig": ("tsogpu.config", "PipelineConfig"),
    "load_toml": ("tsogpu.config", "load_toml"),
    "select_backend": ("tsogpu.backends", "select_backend"),
    "compare_products": ("tsogpu.compare", "compare_products"),
    "TsogpuError": ("tsogpu.errors", "TsogpuError"),
    "InputError": ("tsogpu.errors", "InputError"),
    "ReferenceFileError": ("tsogpu.errors", "ReferenceFileError"),
    "ConfigError": ("tsogpu.errors", "ConfigError"),
    "BackendError": ("tsogpu.errors", "BackendError"),
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tsogpu' has no attribute {name!r}")
    value = getattr(importlib.import_module(home[0]), home[1])
    globals()[name] = value  # once
    return value


def __dir__():
    return sorted(__all__)
