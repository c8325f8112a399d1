"""The one table between jwst's Detector1Pipeline parameters and tsogpu's configuration.

Every parameter of the jwst 3.0 steps that tsogpu implements (near-infrared and MIRI) is, by
name, either

- a field of that step's dataclass in :mod:`tsogpu.config` (same name, same meaning, same
  default): it is passed on;
- listed in :data:`JWST_ONLY`: tsogpu does not implement it. Left at jwst's default it does
  nothing; set otherwise it is an error where it would change the products (``"error"``), and
  a warning where it cannot change them for the exposures tsogpu processes (``"ignore"``).

The fields of tsogpu's dataclasses that jwst does not have (the options of docs/options.md)
become extra step parameters of the same name, and :data:`PIPELINE_OPTIONS` the pipeline's.
:func:`pipeline_config` turns a pipeline's parameters into a :class:`tsogpu.config.PipelineConfig`
through :func:`tsogpu.config.from_dict`, the same checks a TOML file gets. The docs' page
"From jwst to tsogpu" is generated from this module (:func:`mapping_rows`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import typing
from dataclasses import dataclass

from ..config import DEFAULT_SKIP, REFTYPES, STEP_ORDER, STEP_PARAMS, from_dict, parse_size
from ..errors import ConfigError

log = logging.getLogger(__name__)

# jwst's Detector1Pipeline.step_defs, in its order: the pipeline has every one of them, so that
# jwst's parameter files (which list them all) load.
JWST_STEPS = (
    "group_scale",
    "dq_init",
    "emicorr",
    "saturation",
    "ipc",
    "superbias",
    "refpix",
    "rscd",
    "firstframe",
    "lastframe",
    "linearity",
    "dark_current",
    "reset",
    "persistence",
    "charge_migration",
    "jump",
    "picture_frame",
    "clean_flicker_noise",
    "ramp_fit",
    "gain_scale",
)
# The step classes (tsogpu.stpipe.steps), named as jwst's: CRDS's parameter references
# (pars-<class name, lower case>) then apply to them as to jwst's.
STEP_CLASS_NAMES = {
    "group_scale": "GroupScaleStep",
    "dq_init": "DQInitStep",
    "emicorr": "EmiCorrStep",
    "saturation": "SaturationStep",
    "ipc": "IPCStep",
    "superbias": "SuperBiasStep",
    "refpix": "RefPixStep",
    "rscd": "RscdStep",
    "firstframe": "FirstFrameStep",
    "lastframe": "LastFrameStep",
    "linearity": "LinearityStep",
    "dark_current": "DarkCurrentStep",
    "reset": "ResetStep",
    "persistence": "PersistenceStep",
    "charge_migration": "ChargeMigrationStep",
    "jump": "JumpStep",
    "picture_frame": "PictureFrameStep",
    "clean_flicker_noise": "CleanFlickerNoiseStep",
    "ramp_fit": "RampFitStep",
    "gain_scale": "GainScaleStep",
}
# Steps of jwst's near-infrared branch that tsogpu does not implement, and what to do instead.
NOT_IMPLEMENTED = {
    "ipc": "runs only where its IPC reference is N/A (as jwst's step then does nothing)",
    "persistence": "must be skipped (jwst's default)",
    "charge_migration": "must be skipped (jwst's default)",
    "picture_frame": "must be skipped (jwst's default)",
    "clean_flicker_noise": "must be skipped (jwst's default); refpix.sky_method is tsogpu's "
    "1/f correction",
}


@dataclass(frozen=True)
class Unsupported:
    """A jwst parameter tsogpu does not implement.

    Attributes
    ----------
    action : str
        ``"error"``: set away from jwst's default it would change the products, so it is an
        error; ``"ignore"``: it cannot change them for what tsogpu processes, so a warning.
    why : str
        Said in the error or warning, and on the docs page.
    """

    action: str
    why: str


_IRS2 = Unsupported("ignore", "NIRSpec IRS2 readout only, which tsogpu does not process")
_SIRS = Unsupported("ignore", "used by refpix_algorithm='sirs' only")
_SHOWERS = Unsupported("ignore", "used by the MIRI shower search (find_showers) only")
_CORES = Unsupported("ignore", "tsogpu's threads parameter sets the CPU threads")

JWST_ONLY = {
    "emicorr": {
        "user_supplied_reffile": Unsupported(
            "error", "deprecated in jwst; give the reference as override_emicorr"
        ),
        "save_intermediate_results": Unsupported(
            "error", "the reference made on the fly is not written"
        ),
    },
    "dq_init": {
        "user_supplied_dq": Unsupported(
            "error",
            "jwst's DQ file of bit values is not read; tsogpu's own user_mask (a file of "
            "pixels to flag with one bit, user_mask_bit) serves instead",
        ),
    },
    "refpix": {
        "ovr_corr_mitigation_ftr": _IRS2,
        "preserve_irs2_refpix": _IRS2,
        "irs2_mean_subtraction": _IRS2,
        "refpix_algorithm": Unsupported(
            "error", "only the median algorithm is implemented (not 'sirs')"
        ),
        "sigreject": _SIRS,
        "gaussmooth": _SIRS,
        "halfwidth": _SIRS,
    },
    "dark_current": {
        "dark_output": Unsupported("error", "the dark subtracted is not written"),
    },
    "jump": {
        "maximum_cores": _CORES,
        "use_ellipses": Unsupported("ignore", "deprecated in jwst, and without effect there"),
        "find_showers": Unsupported("error", "the MIRI shower search is not implemented"),
        "max_shower_amplitude": _SHOWERS,
        "extend_snr_threshold": _SHOWERS,
        "extend_min_area": _SHOWERS,
        "extend_inner_radius": _SHOWERS,
        "extend_outer_radius": _SHOWERS,
        "extend_ellipse_expand_ratio": _SHOWERS,
        "time_masked_after_shower": _SHOWERS,
    },
    "ramp_fit": {
        "save_opt": Unsupported("error", "the optional fit product is not written"),
        "opt_name": Unsupported("ignore", "names the optional product (save_opt) only"),
        "int_name": Unsupported(
            "ignore", "names ramp_fit's own rateints file, written when it runs alone"
        ),
        "maximum_cores": _CORES,
    },
}

# Pipeline parameters of tsogpu (the TOML file's top-level keys), as configobj specs.
PIPELINE_OPTIONS = {
    "backend": "option('numpy', 'native', 'cupy', 'auto', default='auto')"
    "  # tsogpu: compute backend",
    "max_memory": "pass(default=None)  # tsogpu: memory budget, 4G or 500M or bytes",
    "threads": "integer(default=None, min=1)  # tsogpu: pixel tiles processed at once",
    "exposure_wide": "boolean(default=False)  # tsogpu: first pass over the exposure's "
    "segments in the input's folder",
}

# jwst's pipeline parameters (stpipe's and Detector1Pipeline's), for the docs' table
PIPELINE_MAPPING = {
    "save_calibrated_ramp": ("`save_ramp`", "same: the ramp after jump, `<name>_ramp.fits`"),
    "output_dir": ("`tsogpu run --out`", "same"),
    "save_results": ("-", "same as jwst: `strun` sets it; `.call` writes files only with it"),
    "output_file": ("-", "same as jwst: the products' base name"),
    "pre_hooks, post_hooks": ("-", "same as jwst, on the pipeline"),
    "steps.<step>.skip": ("`skip`", "same (the steps tsogpu does not implement: see below)"),
    "steps.<step>.save_results": (
        "-",
        "jump's: its output, the ramp after jump, `<name>_jump.fits`; other steps': error "
        "(tsogpu writes no product of one step)",
    ),
    "steps.<step>.pre_hooks, post_hooks, output_file": ("-", "error if set"),
    "steps.<step>.config_file": ("-", "same as jwst: the step's parameter file"),
}

# stpipe's own step parameters, for a step inside tsogpu's pipeline (which runs the steps as one)
STEP_GENERIC_ERRORS = {
    "pre_hooks": "hooks on a step: tsogpu runs the steps as one; give them to the pipeline",
    "post_hooks": "hooks on a step: tsogpu runs the steps as one; give them to the pipeline",
    "output_file": "tsogpu writes no product of this step alone",
}


def jwst_step_class(name):
    """jwst's step class of Detector1Pipeline's step ``name``."""
    from jwst.pipeline import Detector1Pipeline

    return Detector1Pipeline.step_defs[name]


@functools.cache
def jwst_defaults(name):
    """{parameter: jwst's default} of the step ``name`` (its own parameters, not stpipe's);
    the same dict for each call: do not change it."""
    from stpipe import config_parser

    cls = jwst_step_class(name)
    spec = config_parser.load_spec_file(cls)
    if spec is None:
        return {}
    return dict(config_parser.config_from_dict({}, spec, allow_missing=True))


def tsogpu_options(step):
    """Fields of tsogpu's dataclass for ``step`` that jwst's step does not have."""
    if step not in STEP_PARAMS:
        return []
    jwst = set(jwst_defaults(step))
    return [f for f in dataclasses.fields(STEP_PARAMS[step]) if f.name not in jwst]


def option_spec(step, field):
    """A configobj spec line for a field of ``step``'s dataclass: its type and default."""
    hint = typing.get_type_hints(STEP_PARAMS[step])[field.name]
    default = field.default
    if typing.get_origin(hint) is tuple:
        kind, text = "int_list", repr(list(default)) if default else "list()"
    else:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if args else hint
        kind = {bool: "boolean", int: "integer", float: "float", str: "string"}[base]
        text = repr(default)
    return f"{kind}(default={text})  # tsogpu option (docs/options.md)"


def check_step(name, step):
    """Check a step's jwst-only and stpipe parameters; returns its tsogpu parameters.

    Parameters
    ----------
    name : str
        The step's name in the pipeline (one of :data:`STEP_ORDER`).
    step : stpipe.Step
        The configured step.

    Returns
    -------
    dict
        ``{parameter: value}`` for the fields of the step's :mod:`tsogpu.config` dataclass.

    Raises
    ------
    ConfigError
        A jwst parameter tsogpu does not implement, set where it would change the products.
    """
    for key, why in STEP_GENERIC_ERRORS.items():
        if getattr(step, key, None):
            raise ConfigError(f"steps.{name}.{key}: {why}")
    if getattr(step, "save_results", False) and name != "jump":
        raise ConfigError(
            f"steps.{name}.save_results: tsogpu writes no product of {name} alone; only "
            "steps.jump.save_results (the ramp after jump) and save_calibrated_ramp"
        )
    defaults = jwst_defaults(name)
    for key, how in JWST_ONLY.get(name, {}).items():
        value = getattr(step, key, defaults.get(key))
        if value == defaults.get(key):
            continue
        where = f"steps.{name}.{key} = {value!r}"
        if how.action == "error":
            raise ConfigError(f"{where}: not supported by tsogpu ({how.why})")
        log.warning("%s has no effect in tsogpu: %s", where, how.why)
    params = {f.name: getattr(step, f.name) for f in dataclasses.fields(STEP_PARAMS[name])}
    for f in dataclasses.fields(STEP_PARAMS[name]):
        if params[f.name] is None and f.default == ():  # jwst's empty float_list
            params[f.name] = ()
    return params


def check_not_implemented(name, step, ipc_reference=None):
    """Raise ConfigError where a step tsogpu does not implement is asked to run.

    ``ipc_reference`` is the IPC reference jwst would use (a path or ``"N/A"``), asked only
    where ipc is not skipped.
    """
    if name not in NOT_IMPLEMENTED or step.skip:
        return  # implemented, MIRI only (no effect here) or skipped
    if name == "ipc" and ipc_reference is not None and str(ipc_reference).strip() == "N/A":
        log.info("ipc: the IPC reference is N/A, so the step does nothing (as in jwst)")
        return
    raise ConfigError(
        f"steps.{name}: tsogpu does not implement {name}; it {NOT_IMPLEMENTED[name]}: set "
        f"steps.{name}.skip = true (--steps.{name}.skip=true)"
    )


def pipeline_config(pipe, source="stpipe parameters"):
    """The :class:`tsogpu.config.PipelineConfig` of a configured tsogpu pipeline.

    Parameters
    ----------
    pipe : tsogpu.stpipe.TSODetector1Pipeline
        With its steps as attributes; the IPC check is made before (:meth:`process`).
    source : str
        Named in the errors.

    Returns
    -------
    PipelineConfig

    Raises
    ------
    ConfigError
        An unsupported parameter (see :data:`JWST_ONLY`), a step tsogpu does not implement
        asked to run, two steps giving different files for one reference type, a reference
        given as a datamodel, or a value tsogpu's own checks refuse.
    """
    doc = {
        "backend": pipe.backend,
        "save_ramp": bool(
            pipe.save_calibrated_ramp or (pipe.jump.save_results and not pipe.jump.skip)
        ),
        "threads": pipe.threads,
        "exposure_wide": bool(pipe.exposure_wide),
        "skip": [],
        "run": [],
        "ref": {},
    }
    if pipe.max_memory not in (None, ""):
        doc["max_memory"] = parse_size(pipe.max_memory, "max_memory")
    given = {}  # reftype -> (path, step)
    for name in STEP_ORDER:
        step = getattr(pipe, name)
        if step.skip:
            doc["skip"].append(name)
            continue
        if name in DEFAULT_SKIP:
            doc["run"].append(name)
        doc[name] = check_step(name, step)
        for reftype in step.reference_file_types:
            path = step.get_ref_override(reftype)
            if path is None or reftype not in REFTYPES:
                continue  # CRDS's choice; or refpix/sirskernel: IRS2 and SIRS only
            if not isinstance(path, str):
                raise ConfigError(
                    f"steps.{name}.override_{reftype}: give a file path (or N/A), not a "
                    f"{type(path).__name__}"
                )
            if reftype in given and given[reftype][0] != path:
                raise ConfigError(
                    f"steps.{name}.override_{reftype} = {path} but steps.{given[reftype][1]}."
                    f"override_{reftype} = {given[reftype][0]}: tsogpu uses one {reftype} "
                    "reference for all its steps"
                )
            given[reftype] = (path, name)
    doc["ref"] = {t: p for t, (p, _) in given.items()}
    return from_dict(doc, source=source)


def mapping_rows():
    """Rows ``(step, jwst parameter, tsogpu, notes)`` of the docs' mapping table, in order."""
    rows = []
    for name in JWST_STEPS:
        if name in NOT_IMPLEMENTED:
            rows.append((name, "skip", "-", f"not implemented: {NOT_IMPLEMENTED[name]}"))
            continue
        cls = jwst_step_class(name)
        defaults = jwst_defaults(name)
        fields = {f.name for f in dataclasses.fields(STEP_PARAMS[name])}
        for key, value in defaults.items():
            if key == "skip":  # jwst's steps skipped by default: the skip row below
                continue
            if key in fields:
                rows.append((name, key, f"`{name}.{key}`", f"same (default {value!r})"))
            else:
                how = JWST_ONLY[name][key]
                verb = "error" if how.action == "error" else "warning, ignored"
                rows.append((name, key, "-", f"{verb} if not {value!r}: {how.why}"))
        for reftype in cls.reference_file_types:
            if reftype in REFTYPES:
                rows.append((name, f"override_{reftype}", f"`[ref] {reftype}`", "same"))
            else:
                rows.append((name, f"override_{reftype}", "-", "accepted, not used"))
        default = " (default: skipped, `--run-step`)" if name in DEFAULT_SKIP else ""
        rows.append((name, "skip", "`skip`", f"same{default}"))
    return rows
