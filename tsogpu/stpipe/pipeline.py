"""``TSODetector1Pipeline``: tsogpu's runner behind jwst's stpipe interface (``strun``, ``.call``).

A thin adapter: :meth:`TSODetector1Pipeline.process` maps the pipeline's and its steps'
parameters into one :class:`tsogpu.config.PipelineConfig` (:func:`.parameters.pipeline_config`)
and runs :func:`tsogpu.pipeline.process_file`, the same runner as ``tsogpu run`` (the whole
segment at once, or chunked within the memory budget). Its products are written by tsogpu's
writers into a hidden folder, then placed under jwst's names (``output_dir``, ``output_file``,
suffixes ``rate``, ``rateints``, ``ramp``) where jwst would save them; the model returned is
read back from them. A datamodel given as input is written to a temporary uncal file first.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from jwst.stpipe import Pipeline as JwstPipeline
from stdatamodels.jwst import datamodels

from .. import __version__
from ..errors import ConfigError, InputError
from ..pipeline import process_file
from .parameters import PIPELINE_OPTIONS, check_not_implemented, pipeline_config
from .steps import STEP_CLASSES

log = logging.getLogger(__name__)

__all__ = ["TSODetector1Pipeline"]

_SPEC = "\n".join(
    [
        "save_calibrated_ramp = boolean(default=False)  # Save the ramp after jump (_ramp)",
        *(f"{key} = {spec}" for key, spec in PIPELINE_OPTIONS.items()),
    ]
)


class TSODetector1Pipeline(JwstPipeline):
    """jwst's calwebb_detector1 for near-infrared time series, run by tsogpu.

    The same step names, parameters and parameter files as jwst's ``Detector1Pipeline``
    (``--steps.jump.rejection_threshold=5``, ``override_<reftype>``, ``skip``,
    ``save_calibrated_ramp``, ``output_dir``), plus tsogpu's ``backend``, ``max_memory``,
    ``threads``, ``exposure_wide`` and each step's options. Returns the rate image
    (``ImageModel``), or the ramp (``RampModel``) where ramp_fit is skipped; the rateints
    (``CubeModel``) is kept as the instance's ``rateints``. docs/jwst_to_tsogpu.md has the
    mapping of every parameter.
    """

    class_alias = "tsogpu_detector1"
    spec = _SPEC
    step_defs = STEP_CLASSES
    # tsogpu looks up its own reference files (tsogpu.io.reffiles), once per run
    prefetch_references = False

    @classmethod
    def get_config_reftype(cls):
        """CRDS's parameter reference of jwst's pipeline (``pars-detector1pipeline``)."""
        return "pars-detector1pipeline"

    @staticmethod
    def get_stpipe_loggers():
        """jwst's loggers and tsogpu's."""
        return (*JwstPipeline.get_stpipe_loggers(), "tsogpu")

    def run(self, *args):
        """Run as jwst's pipelines run (hooks, saving), then remove the staged products."""
        self._stage, self._products, self._placed = None, {}, {}
        try:
            result = super().run(*args)
            log.info("Results made by tsogpu %s", __version__)
            return result
        finally:
            if self._stage is not None:
                shutil.rmtree(self._stage, ignore_errors=True)

    def process(self, input_data):
        """Run every step on one uncal segment with tsogpu's runner.

        Parameters
        ----------
        input_data : str or Path or stdatamodels.jwst.datamodels.JwstDataModel
            An ``*_uncal.fits`` file, or a Level1bModel / RampModel of raw counts.

        Returns
        -------
        ImageModel or RampModel
            The rate image, or the ramp after jump where ramp_fit is skipped.
        """
        saving = bool(self.save_results or self.output_file)
        where = None  # not saving: a temporary folder
        if saving:  # beside the products, so that they are moved there, not copied
            where = os.path.expandvars(os.path.expanduser(self.search_attr("output_dir") or "."))
            Path(where).mkdir(parents=True, exist_ok=True)
        self._stage = Path(tempfile.mkdtemp(prefix=".tsogpu-stpipe-", dir=where))
        uncal = self._uncal_path(input_data)
        ipc = None
        if not self.ipc.skip:  # jwst's ipc does nothing where its reference is N/A
            try:
                ipc = self.ipc.get_reference_file(str(uncal), "ipc")
            except Exception as exc:  # the crds client raises many kinds
                raise ConfigError(
                    f"steps.ipc: tsogpu does not implement ipc and could not find its IPC "
                    f"reference ({type(exc).__name__}: {exc}); set steps.ipc.skip = true"
                ) from exc
        for name in STEP_CLASSES:
            check_not_implemented(name, getattr(self, name), ipc)
        config = pipeline_config(self)
        shared = self._shared(uncal, config, Path(where) if saving else self._stage)
        written = process_file(uncal, self._stage / "products", config, shared=shared)
        products = {p.name[: -len(".fits")].rsplit("_", 1)[1]: p for p in written}
        fitted = "rate" in products
        self.suffix = "rate" if fitted else "ramp"
        # read before any product is moved to its name
        self.rateints = _read_model(products["rateints"]) if fitted else None
        result = _read_model(products[self.suffix])
        self._products[id(result)] = products[self.suffix]
        if saving:  # as jwst's pipeline saves them; the result itself when it returns
            if self.save_calibrated_ramp:
                self._place(products["ramp"], "ramp")
            if self.jump.save_results and not self.jump.skip:
                self._place(products["ramp"], self.jump.suffix or "jump")
            for side in ("rateints", "oneoverf", "biasscale"):
                if side in products:
                    self._place(products[side], side)
        return result

    def finalize_result(self, result, reference_files_used):
        """Nothing to add: tsogpu's products carry their provenance (TSO* and R_* cards)."""

    def save_model(self, model, suffix=None, idx=None, output_file=None, force=False, **parts):
        """Save as stpipe does, but a product of this run is placed as tsogpu wrote it.

        The model returned by :meth:`process` is saved by copying (or moving) tsogpu's file to
        the name stpipe chooses; a model changed by post hooks, or any other, through
        stpipe's ``save_model``.
        """
        src = getattr(self, "_products", {}).get(id(model))
        if src is None or self._post_hooks or parts or idx is not None:
            return super().save_model(
                model, suffix=suffix, idx=idx, output_file=output_file, force=force, **parts
            )
        output_file = output_file or self.output_file
        if not force and not self.save_results and not output_file:
            return None
        if self.output_use_model or (output_file is None and not self.search_output_file):
            output_file = model.meta.filename
        return self._place(src, suffix, output_file)

    def _place(self, src, suffix, output_file=None):
        """Put tsogpu's product ``src`` where jwst would save a model with ``suffix``."""
        dst = Path(self.make_output_path(basepath=output_file or self.output_file, suffix=suffix))
        before = self._placed.get(src)
        if before is None:
            if _same_device(src, dst):
                os.replace(src, dst)
            else:
                shutil.copyfile(src, dst)
        elif before != dst:
            shutil.copyfile(before, dst)
        self._placed.setdefault(src, dst)
        log.info("Saved model in %s", dst)
        return str(dst)

    def _uncal_path(self, input_data):
        """The uncal file to run: the input's path, or a datamodel written to the stage."""
        if isinstance(input_data, (str, os.PathLike)):
            return Path(self.make_input_path(os.fspath(input_data)))
        if not isinstance(input_data, datamodels.JwstDataModel):
            raise InputError(
                f"input: expected an uncal file name or a datamodel, got {type(input_data)}"
            )
        name = Path(input_data.meta.filename or "input_uncal.fits").name
        path = self._stage / "input" / name
        path.parent.mkdir()
        write_uncal(input_data, path)
        return path

    def _shared(self, uncal, config, folder):
        """exposure_wide's first pass over the segments of the input's exposure in its folder."""
        if not config.exposure_wide:
            return None
        from ..batch import group_exposures
        from ..exposure import load_or_run

        siblings = sorted(uncal.parent.glob("*_uncal.fits*"))
        _, exposures, notes = group_exposures(siblings)
        for note in notes:
            log.warning("%s", note)
        exposure = next(e for e in exposures if uncal in e.paths())
        return load_or_run(exposure.paths(), folder, config, exposure.key)


def write_uncal(model, path):
    """Write a datamodel of raw counts as an uncal file tsogpu reads.

    Parameters
    ----------
    model : Level1bModel or RampModel
        Its ``data`` integer counts in [0, 65535] (uint16, or float as RampModel holds them),
        its GROUPDQ and PIXELDQ, where it has them, zero: tsogpu runs from raw counts.
    path : Path
        Where to write it.

    Raises
    ------
    InputError
        The model holds anything but raw counts.
    """
    data = np.asarray(model.data)
    if data.ndim != 4:
        raise InputError(f"input model: data has shape {data.shape}, expected 4 dimensions")
    if data.dtype != np.uint16:
        if not (np.all(np.isfinite(data)) and np.all(data == np.round(data))) or (
            data.size and (data.min() < 0 or data.max() > 65535)
        ):
            raise InputError(
                "input model: data are not raw counts (integers in 0..65535): tsogpu runs "
                "Stage 1 from the uncal data"
            )
    for ext in ("groupdq", "pixeldq"):
        if model.hasattr(ext) and np.any(getattr(model, ext)):
            raise InputError(f"input model: {ext} is set; tsogpu runs from the uncal data")
    out = datamodels.Level1bModel(data=data.astype(np.uint16))
    out.update(model)
    for ext in ("zeroframe", "int_times", "group"):
        if model.hasattr(ext):
            value = getattr(model, ext)
            setattr(out, ext, value.astype(np.uint16) if ext == "zeroframe" else value)
    out.save(path)
    out.close()


def _read_model(path):
    """A product read into memory (its file may then be moved or removed)."""
    with datamodels.open(path) as model:
        return model.copy()


def _same_device(src, dst):
    return os.stat(src).st_dev == os.stat(Path(dst).parent).st_dev
