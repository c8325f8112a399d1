"""One stpipe step class per step of jwst's Detector1Pipeline, with jwst's parameters.

Each class takes its spec (parameters, defaults, reference types) from jwst's class of the same
name, plus the tsogpu options of the step's :mod:`tsogpu.config` dataclass, so that
``--steps.<step>.<param>``, ``skip``, ``override_<reftype>`` and jwst's parameter files
(``pars-<class name>``, from CRDS or a file) work on :class:`TSODetector1Pipeline` as on
jwst's pipeline. The steps do not run alone: the pipeline runs them as one (tsogpu's runner),
and a step's :meth:`process` says so.
"""

from __future__ import annotations

import textwrap

from jwst.stpipe import Step as JwstStep

from .parameters import (
    JWST_STEPS,
    NOT_IMPLEMENTED,
    STEP_CLASS_NAMES,
    jwst_step_class,
    option_spec,
    tsogpu_options,
)

__all__ = ["STEP_CLASSES", *STEP_CLASS_NAMES.values()]


class TsogpuStep(JwstStep):
    """A step of tsogpu's pipeline: its parameters only; the pipeline runs all steps as one."""

    def process(self, *args):
        """Refuse to run alone: tsogpu runs the steps as one, in :class:`TSODetector1Pipeline`.

        Raises
        ------
        NotImplementedError
            Always, saying what to run instead.
        """
        raise NotImplementedError(
            f"tsogpu's {type(self).__name__} does not run alone: tsogpu runs its steps as one "
            "(strun tsogpu_detector1 UNCAL --steps.<step>.<param>=...); run jwst's "
            f"{self.name} step for a single step"
        )


def _make(name):
    """The step class for jwst's step ``name``."""
    jwst_cls = jwst_step_class(name)
    spec = textwrap.dedent(jwst_cls.spec or "").strip("\n")
    options = [f"{f.name} = {option_spec(name, f)}" for f in tsogpu_options(name)]
    if name == "ipc":  # not implemented: skipped unless asked (and then checked)
        options.append("skip = boolean(default=True)  # tsogpu: not implemented, skipped")
    spec = "\n".join([spec, *options]) + "\n"
    if name in NOT_IMPLEMENTED:
        what = f"Not implemented by tsogpu: it {NOT_IMPLEMENTED[name]}."
    else:
        what = "Run by tsogpu inside TSODetector1Pipeline."
    doc = (
        f"jwst's {jwst_cls.__name__} parameters for tsogpu's pipeline.\n\n{what}\n"
        f"Same parameters and defaults as jwst's ``{jwst_cls.__module__}.{jwst_cls.__name__}``"
        ", plus tsogpu's options of the step (docs/jwst_to_tsogpu.md)."
    )
    return type(
        STEP_CLASS_NAMES[name],
        (TsogpuStep,),
        {
            "__doc__": doc,
            "__module__": __name__,
            "spec": spec,
            "class_alias": f"tsogpu_{name}",
            "reference_file_types": list(jwst_cls.reference_file_types),
        },
    )


STEP_CLASSES = {name: _make(name) for name in JWST_STEPS}

GroupScaleStep = STEP_CLASSES["group_scale"]
DQInitStep = STEP_CLASSES["dq_init"]
EmiCorrStep = STEP_CLASSES["emicorr"]
SaturationStep = STEP_CLASSES["saturation"]
IPCStep = STEP_CLASSES["ipc"]
SuperBiasStep = STEP_CLASSES["superbias"]
RefPixStep = STEP_CLASSES["refpix"]
RscdStep = STEP_CLASSES["rscd"]
FirstFrameStep = STEP_CLASSES["firstframe"]
LastFrameStep = STEP_CLASSES["lastframe"]
LinearityStep = STEP_CLASSES["linearity"]
DarkCurrentStep = STEP_CLASSES["dark_current"]
ResetStep = STEP_CLASSES["reset"]
PersistenceStep = STEP_CLASSES["persistence"]
ChargeMigrationStep = STEP_CLASSES["charge_migration"]
JumpStep = STEP_CLASSES["jump"]
PictureFrameStep = STEP_CLASSES["picture_frame"]
CleanFlickerNoiseStep = STEP_CLASSES["clean_flicker_noise"]
RampFitStep = STEP_CLASSES["ramp_fit"]
GainScaleStep = STEP_CLASSES["gain_scale"]
