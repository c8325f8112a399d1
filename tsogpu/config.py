"""A run's configuration: the steps' parameters (:mod:`tsogpu.step_params`), what to skip,
reference files, backend and memory; TOML in and out, ``--set`` overrides.

A configuration file looks like::

    backend = "auto"
    save_ramp = true
    skip = ["dark_current"]

    [ref]
    saturation = "/path/to/jwst_nirspec_saturation.fits"

    [saturation]
    n_pix_grow_sat = 1
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field

from .errors import ConfigError
from .parameter_ranges import (  # noqa: F401 (re-exported: the choices, weighting_power)
    BACKENDS,
    BIAS_SCALES,
    RAMP_FIT_ALGORITHMS,
    SATURATION_MAPS,
    SKY_METHODS,
    TIME_DOMAIN_MODES,
    check_ranges,
    weighting_power,
)
from .step_params import (  # noqa: F401 (re-exported: the steps, their order and parameters)
    DEFAULT_SKIP,
    MIRI_STEP_ORDER,
    NIR_STEP_ORDER,
    REFTYPES,
    STEP_ORDER,
    STEP_PARAMS,
    STEP_REFTYPES,
    DarkCurrent,
    DQInit,
    EmiCorr,
    FirstFrame,
    GainScale,
    GroupScale,
    Jump,
    LastFrame,
    Linearity,
    RampFit,
    Refpix,
    Reset,
    Rscd,
    Saturation,
    Superbias,
    step_order,
)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one run needs besides the input files.

    ``steps`` maps each step name to its parameter dataclass; ``refs`` maps a reference
    type to a path (or ``"N/A"`` to run the step without one, where the step allows it).
    """

    steps: dict = field(default_factory=lambda: {n: cls() for n, cls in STEP_PARAMS.items()})
    skip: frozenset = DEFAULT_SKIP
    refs: dict = field(default_factory=dict)
    backend: str = "auto"  # the GPU, else the native build, else NumPy
    save_ramp: bool = False
    max_memory: int | None = None  # bytes; None: a fraction of the machine's memory
    threads: int | None = None  # tiles processed at once; None: the usable CPU cores
    # option beyond jwst, off by default: pass 1 over all segments of an exposure, then
    # each segment with what it computed (tsogpu/exposure.py, docs/options.md)
    exposure_wide: bool = False

    def __post_init__(self):
        unknown = set(self.skip) - set(STEP_ORDER)
        if unknown:
            raise ConfigError(
                f"--skip: unknown step {sorted(unknown)[0]!r}; steps are {', '.join(STEP_ORDER)}"
            )
        bad_refs = set(self.refs) - set(REFTYPES)
        if bad_refs:
            raise ConfigError(
                f"--ref: unknown reference type {sorted(bad_refs)[0]!r}; "
                f"types are {', '.join(REFTYPES)}"
            )
        check_ranges("pipeline", self)
        if self.steps["superbias"].scale == "exposure" and not self.exposure_wide:
            raise ConfigError(
                "superbias.scale=exposure needs the exposure-wide first pass: set "
                "exposure_wide = true (--exposure-wide)"
            )

    def params(self, step):
        return self.steps[step]

    def with_overrides(
        self,
        *,
        sets=(),
        refs=None,
        skip=(),
        run=(),
        backend=None,
        save_ramp=None,
        max_memory=None,
        threads=None,
        exposure_wide=None,
    ):
        """Return a new config with ``--set step.param=value`` strings and other options applied.

        ``skip``: steps to skip as well; ``run``: steps to run although skipped (by default).
        """
        bad = set(run) - set(STEP_ORDER)
        if bad:
            raise ConfigError(
                f"--run-step: unknown step {sorted(bad)[0]!r}; steps are {', '.join(STEP_ORDER)}"
            )
        steps = dict(self.steps)
        for item in sets:
            step, name, value = _parse_set(item)
            steps[step] = _replace_param(steps[step], step, name, value, source="--set")
        return PipelineConfig(
            steps=steps,
            skip=(frozenset(self.skip) | frozenset(skip)) - frozenset(run),
            refs={**self.refs, **(refs or {})},
            backend=backend or self.backend,
            save_ramp=self.save_ramp if save_ramp is None else save_ramp,
            max_memory=self.max_memory if max_memory is None else max_memory,
            threads=self.threads if threads is None else threads,
            exposure_wide=self.exposure_wide if exposure_wide is None else exposure_wide,
        )

    def as_dict(self):
        """Plain dict of every parameter, for provenance and TOML output."""
        return {
            "backend": self.backend,
            "save_ramp": self.save_ramp,
            "max_memory": self.max_memory,
            "threads": self.threads,
            "exposure_wide": self.exposure_wide,
            "skip": sorted(self.skip),
            "run": sorted(DEFAULT_SKIP - self.skip),
            "ref": dict(sorted(self.refs.items())),
            **{name: dataclasses.asdict(self.steps[name]) for name in STEP_ORDER},
        }


def required_reftypes(config, instrument):
    """Reference types the steps that will run on an ``instrument`` (INSTRUME) exposure need,
    in step order, as jwst's steps list them.

    The near-infrared saturation step lists superbias (for its group-2 test) as jwst's does;
    give ``superbias=N/A`` to run saturation without it. MIRI has no superbias.
    """
    order = step_order(instrument)
    needed = []
    for step in order:
        if step not in config.skip:
            types = STEP_REFTYPES[step]
            if step == "saturation" and "superbias" not in order:
                types = types[:1]
            needed += [t for t in types if t not in needed]
    return needed


def load_toml(path):
    """Read a TOML configuration file into a :class:`PipelineConfig`."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(doc, source=str(path))


def from_dict(doc, source="config"):
    steps = {n: cls() for n, cls in STEP_PARAMS.items()}
    top_keys = {"backend", "save_ramp", "max_memory", "threads", "exposure_wide"}
    top_keys |= {"skip", "run", "ref"}
    for key, value in doc.items():
        if key in STEP_PARAMS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table of parameters")
            for name, v in value.items():
                steps[key] = _replace_param(steps[key], key, name, v, source=source)
        elif key not in top_keys:
            raise ConfigError(
                f"{source}: unknown key {key!r}; expected a step name "
                f"({', '.join(STEP_ORDER)}) or one of {', '.join(sorted(top_keys))}"
            )
    refs = doc.get("ref", {})
    if not isinstance(refs, dict):
        raise ConfigError(f"{source}: [ref] must be a table of TYPE = PATH")
    skip, run = doc.get("skip", []), doc.get("run", [])
    for key, names in (("skip", skip), ("run", run)):
        if isinstance(names, str) or not isinstance(names, list):
            raise ConfigError(f"{source}: {key} must be a list of step names")
    unknown = set(run) - set(STEP_ORDER)
    if unknown:
        raise ConfigError(f"{source}: run: unknown step {sorted(unknown)[0]!r}")
    return PipelineConfig(
        steps=steps,
        skip=(DEFAULT_SKIP | frozenset(skip)) - frozenset(run),
        refs={str(k): str(v) for k, v in refs.items()},
        backend=doc.get("backend", "auto"),
        save_ramp=bool(doc.get("save_ramp", False)),
        max_memory=None
        if doc.get("max_memory") is None
        else parse_size(doc["max_memory"], f"{source}: max_memory"),
        threads=doc.get("threads"),
        exposure_wide=doc.get("exposure_wide", False),
    )


def dump_toml(config):
    """TOML text of a config (round-trips through :func:`from_dict`)."""
    d = config.as_dict()
    lines = [
        f"backend = {_toml_value(d['backend'])}",
        f"save_ramp = {_toml_value(d['save_ramp'])}",
        *([f"max_memory = {d['max_memory']}"] if d["max_memory"] is not None else []),
        *([f"threads = {d['threads']}"] if d["threads"] is not None else []),
        f"exposure_wide = {_toml_value(d['exposure_wide'])}",
        f"skip = {_toml_value(d['skip'])}",
        f"run = {_toml_value(d['run'])}",
        "",
        "[ref]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in d["ref"].items()]
    for step in STEP_ORDER:
        lines += ["", f"[{step}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in d[step].items() if v is not None]
    return "\n".join(lines) + "\n"


def parse_size(text, where="--max-memory"):
    """``4G``, ``500M``, ``2.5GB``, ``1024`` (bytes) -> int bytes (powers of 1024)."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = text, ""
    else:
        raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
        unit = raw[-1:] if raw[-1:] in units else ""
        try:
            value = float(raw[: len(raw) - len(unit)])
        except ValueError:
            raise ConfigError(f"{where}: expected a size like 4G or 500M, got {text!r}") from None
    size = int(value * units[unit])
    if size <= 0:
        raise ConfigError(f"{where}: the size must be positive, got {text!r}")
    return size


def parse_refs(items):
    """``--ref TYPE=PATH`` items -> {type: path}; a type given twice is an error."""
    refs = {}
    for item in items or ():
        reftype, sep, path = item.partition("=")
        reftype, path = reftype.strip(), path.strip()
        if not sep or not reftype or not path:
            raise ConfigError(f"--ref {item!r}: expected TYPE=PATH, e.g. --ref mask=mask.fits")
        if reftype in refs:
            raise ConfigError(
                f"--ref {reftype}= given twice ({refs[reftype]} and {path}); give each type once"
            )
        refs[reftype] = path
    return refs


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_set(item):
    try:
        lhs, value = item.split("=", 1)
        step, name = lhs.strip().split(".", 1)
    except ValueError:
        raise ConfigError(f"--set {item!r}: expected STEP.PARAM=VALUE") from None
    if step not in STEP_PARAMS:
        raise ConfigError(
            f"--set {item!r}: unknown step {step!r}; steps are {', '.join(STEP_ORDER)}"
        )
    return step, name.strip(), value.strip()


def _replace_param(params, step, name, value, source):
    fields = {f.name: f for f in dataclasses.fields(params)}
    if name not in fields:
        known = ", ".join(fields) or "none"
        raise ConfigError(
            f"{source}: step {step!r} has no parameter {name!r} (parameters: {known})"
        )
    hints = typing.get_type_hints(type(params))
    return dataclasses.replace(
        params, **{name: _coerce(value, hints[name], f"{source} {step}.{name}")}
    )


def _coerce(value, hint, where):
    """Convert a TOML value or a --set string to the parameter's declared type."""
    if typing.get_origin(hint) is tuple:  # tuple[int, ...]: a TOML list, or "1,2,-1"
        return _coerce_tuple(value, typing.get_args(hint)[0], where)
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if isinstance(value, str):
        text = value.strip()
        if optional and text.lower() in ("none", "null", ""):
            return None
        if base is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        try:
            return base(text)
        except ValueError:
            raise ConfigError(f"{where}: expected {base.__name__}, got {value!r}") from None
    if value is None and optional:
        return None
    if base is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if base in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{where}: expected {base.__name__}, got {value!r}")
    if base is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where}: expected int, got {value!r}")
    return base(value)


def _coerce_tuple(value, item, where):
    """A TOML list, or a --set string ``1,2,-1`` / ``[1, 2, -1]`` / ``[]``, to a tuple."""
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]").strip()
        value = [t for t in (x.strip() for x in text.split(",")) if t] if text else []
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of {item.__name__}, got {value!r}")
    return tuple(_coerce(v, item, where) for v in value)
