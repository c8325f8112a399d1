"""The allowed range of every parameter: one table, checked where a configuration is built.

:data:`RANGES` gives, for every field of every step dataclass of :mod:`tsogpu.config` and for
the pipeline options, what it may hold. Every dataclass's ``__post_init__`` calls
:func:`check_ranges`, so the same check covers ``--set``, TOML files,
:func:`tsogpu.config.from_dict` and the stpipe layer (which goes through ``from_dict``), with
one message:
``<step>.<param> must be <range>, got <value>``. Numbers are finite (no ``nan``, no ``inf``).

Values legal alone but impossible for one file (flagging more groups than its ramp has) are
checked by :func:`check_against_segment` once the file's keywords are read, before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import dq
from .errors import ConfigError

BACKENDS = ("numpy", "native", "cupy", "auto")
TIME_DOMAIN_MODES = ("off", "alone", "with_ramp")  # jump.time_domain
SATURATION_MAPS = ("none", "pixel", "column")
SKY_METHODS = ("off", "glbs", "roeba")  # refpix.sky_method
BIAS_SCALES = ("off", "integration", "mean", "exposure")  # superbias.scale
RAMP_FIT_ALGORITHMS = ("OLS_C", "LIKELY")  # ramp_fit.algorithm, as jwst spells them
EMICORR_ALGORITHMS = ("sequential", "joint")  # emicorr.algorithm
DQ_BITS = tuple(name for name in dq.PIXEL if name != "GOOD")  # dq_init.user_mask_bit


@dataclass(frozen=True)
class Number:
    """A finite int or float in [low, high] (``open_low``/``open_high``: the bound excluded).

    ``low_field``: the name of a field of the same step whose value (where not None) is a
    further lower bound, with the same openness (``max_jump >= min_jump``).
    """

    kind: type
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False
    optional: bool = False
    odd: bool = False
    low_field: str = ""

    def bounds(self, step, instance):
        """(low, text of the low bound) with ``low_field`` resolved for ``instance``."""
        low, text = self.low, _num(self.low)
        if self.low_field and instance is None:  # the docs: no value yet
            return low, f"max({text}, {step}.{self.low_field})"
        other = getattr(instance, self.low_field, None) if self.low_field else None
        if other is not None and other >= low:
            low, text = other, f"{step}.{self.low_field} ({_num(other)})"
        return low, text

    def describe(self, step="", instance=None):
        low, low_text = self.bounds(step, instance)
        kind = (
            "an odd integer"
            if self.odd
            else ("an integer" if self.kind is int else "a finite number")
        )
        parts = []
        if low > -math.inf:
            parts.append(f"{'>' if self.open_low else '>='} {low_text}")
        if self.high < math.inf:
            parts.append(f"{'<' if self.open_high else '<='} {_num(self.high)}")
        text = f"{kind} {' and '.join(parts)}".strip()
        return text + (" (or none)" if self.optional else "")

    def ok(self, value, step, instance):
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, self.kind | int):
            return False
        if not math.isfinite(value) or (self.odd and value % 2 == 0):
            return False
        low, _ = self.bounds(step, instance)
        above = value > low if self.open_low else value >= low
        below = value < self.high if self.open_high else value <= self.high
        return above and below


@dataclass(frozen=True)
class Choice:
    values: tuple
    label: str = ""  # instead of the list, where it is long

    def describe(self, step="", instance=None):
        return self.label or f"one of {', '.join(map(str, self.values))}"

    def ok(self, value, step, instance):
        return isinstance(value, str) and value in self.values


@dataclass(frozen=True)
class Kind:
    """Any value of a type: ``bool``, ``str`` (a path, empty for none), ``tuple`` of ints,
    ``float``: a tuple of finite positive numbers."""

    kind: type

    def describe(self, step="", instance=None):
        return {
            bool: "true or false",
            str: "a string",
            tuple: "a list of integers",
            float: "a list of finite numbers > 0",
        }[self.kind]

    def ok(self, value, step, instance):
        if self.kind is tuple:
            return isinstance(value, tuple) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
        if self.kind is float:
            return isinstance(value, tuple) and all(
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v > 0
                for v in value
            )
        return isinstance(value, self.kind)


@dataclass(frozen=True)
class Weighting:
    """``ramp_fit.weighting``: optimal, unweighted or exponent:P (checked by weighting_power)."""

    def describe(self, step="", instance=None):
        return "optimal, unweighted or exponent:P with P a finite number >= 0"

    def ok(self, value, step, instance):
        weighting_power(value)  # raises with its own message
        return True


def _int(low=-math.inf, high=math.inf, **kw):
    return Number(int, low, high, **kw)


def _pos():
    return Number(float, 0.0, open_low=True)


def _nonneg():
    return Number(float, 0.0)


BOOL, TEXT = Kind(bool), Kind(str)

# step (or "pipeline") -> parameter -> its range. tests/test_parameter_ranges.py checks that
# every field has an entry and tries each bound from here.
RANGES = {
    "pipeline": {
        "backend": Choice(BACKENDS),
        "save_ramp": BOOL,
        "max_memory": _int(1, optional=True),  # bytes
        "threads": _int(1, optional=True),
        "exposure_wide": BOOL,
    },
    "group_scale": {},
    "dq_init": {
        "flag_first": _int(0),
        "flag_last": _int(0),
        "flag_groups": Kind(tuple),  # negative: from the end; checked per file
        "user_mask": TEXT,
        "user_mask_bit": Choice(DQ_BITS, "the name of a DQ bit of tsogpu.dq.PIXEL (not GOOD)"),
    },
    "saturation": {
        "n_pix_grow_sat": _int(0),
        "use_readpatt": BOOL,
        "fraction": _pos(),
        "column_saturation": BOOL,
        "groups_before": _int(0),
        "fixed_map": Choice(SATURATION_MAPS),
    },
    "emicorr": {
        "algorithm": Choice(EMICORR_ALGORITHMS),
        "nints_to_phase": _int(1, optional=True),
        "nbins": _int(1, optional=True),
        "scale_reference": BOOL,
        "onthefly_corr_freq": Kind(float),
        "use_n_cycles": _int(1, optional=True),
        "fit_ints_separately": BOOL,
    },
    "firstframe": {"bright_use_group1": BOOL, "ngroups": _int(1)},
    "lastframe": {"ngroups": _int(1)},
    "reset": {},
    "rscd": {"skip_int1": _int(0, optional=True), "skip_int2p": _int(0, optional=True)},
    "superbias": {"scale": Choice(BIAS_SCALES)},
    "refpix": {
        "odd_even_columns": BOOL,
        "use_side_ref_pixels": BOOL,
        "side_smoothing_length": _int(1),
        "side_gain": _nonneg(),
        "odd_even_rows": BOOL,
        "siglimit": _pos(),
        "sky_method": Choice(SKY_METHODS),
        "sky_mask": TEXT,
        "sky_threshold": _pos(),
        "sky_mask_grow": _int(0),
    },
    "linearity": {},
    "dark_current": {"average_dark_current": Number(float, 0.0, optional=True)},
    "jump": {
        "rejection_threshold": _pos(),
        "three_group_rejection_threshold": _pos(),
        "four_group_rejection_threshold": _pos(),
        "flag_4_neighbors": BOOL,
        "max_jump_to_flag_neighbors": Number(float, 0.0, low_field="min_jump_to_flag_neighbors"),
        "min_jump_to_flag_neighbors": _nonneg(),
        "after_jump_flag_dn1": _nonneg(),
        "after_jump_flag_time1": _nonneg(),
        "after_jump_flag_dn2": _nonneg(),
        "after_jump_flag_time2": _nonneg(),
        "expand_large_events": BOOL,
        "min_sat_area": _nonneg(),
        "min_jump_area": _nonneg(),
        "expand_factor": _pos(),
        "sat_required_snowball": BOOL,
        "min_sat_radius_extend": _nonneg(),
        "sat_expand": _int(0),
        "edge_size": _int(0),
        "mask_snowball_core_next_int": BOOL,
        "snowball_time_masked_next_int": _int(0),
        "max_extended_radius": _int(0),
        "min_diffs_single_pass": _int(1),
        "minimum_groups": _int(1),
        "minimum_sigclip_groups": _int(1),
        "only_use_ints": BOOL,
        "time_domain": Choice(TIME_DOMAIN_MODES),
        "time_window": _int(3, 63, odd=True),
        "time_threshold": _pos(),
    },
    "ramp_fit": {
        "suppress_one_group": BOOL,
        "firstgroup": _int(0, optional=True),
        # jwst ignores a range with firstgroup >= lastgroup; here it is an error
        "lastgroup": _int(0, open_low=True, optional=True, low_field="firstgroup"),
        "weighting": Weighting(),
        "goodness_of_fit": BOOL,
        "algorithm": Choice(RAMP_FIT_ALGORITHMS),
    },
    "gain_scale": {},
}


def check_ranges(step, instance):
    """Raise ConfigError for the first field of ``instance`` outside its range in RANGES."""
    for name, allowed in RANGES[step].items():
        value = getattr(instance, name)
        if not allowed.ok(value, step, instance):
            where = name if step == "pipeline" else f"{step}.{name}"
            raise ConfigError(f"{where} must be {allowed.describe(step, instance)}, got {value!r}")


def weighting_power(weighting):
    """``ramp_fit.weighting`` -> its fixed exponent P (a float), or None for ``optimal``.

    ``optimal``: OLS_C's exponent from each segment's SNR; ``unweighted``: P = 0 (every group
    weighs the same); ``exponent:P``: every segment uses P, a finite number >= 0.
    """
    text = str(weighting).strip().lower()
    if text == "optimal":
        return None
    if text == "unweighted":
        return 0.0
    kind, sep, value = text.partition(":")
    try:
        power = float(value) if sep and kind.strip() == "exponent" else None
    except ValueError:
        power = None
    if power is None or not 0.0 <= power < float("inf"):
        raise ConfigError(
            "ramp_fit.weighting must be optimal, unweighted or exponent:P with P a finite "
            f"number >= 0 (e.g. exponent:2), got {weighting!r}"
        )
    return power


def check_against_segment(config, shape, name):
    """Raise ConfigError where the parameters cannot apply to a segment of ``shape``.

    Parameters
    ----------
    config : tsogpu.config.PipelineConfig
    shape : tuple of int
        The segment's ``(nints, ngroups, ny, nx)``, from its keywords.
    name : str
        The file, named in the message.
    """
    ngroups = shape[1]
    ramp = f"a {ngroups}-group ramp ({name})"
    skip = config.skip
    if "dq_init" not in skip:
        init = config.steps["dq_init"]
        for g in init.flag_groups:
            if not -ngroups <= g < ngroups:
                raise ConfigError(
                    f"dq_init.flag_groups: group {g} is outside {ramp}: 0..{ngroups - 1}, "
                    f"or -{ngroups}..-1 from the end"
                )
        flagged = set(range(min(init.flag_first, ngroups)))
        flagged |= set(range(max(ngroups - init.flag_last, 0), ngroups))
        flagged |= {g % ngroups for g in init.flag_groups}
        if len(flagged) >= ngroups:
            given = ", ".join(
                f"dq_init.{k}={v}"
                for k, v in (
                    ("flag_first", init.flag_first),
                    ("flag_last", init.flag_last),
                    ("flag_groups", list(init.flag_groups)),
                )
                if v
            )
            raise ConfigError(f"{given} flags every group of {ramp}")
    if "saturation" not in skip and config.steps["saturation"].groups_before >= ngroups:
        before = config.steps["saturation"].groups_before
        raise ConfigError(
            f"saturation.groups_before={before} must be less than the {ngroups} groups of {ramp}"
        )
    fit = config.steps["ramp_fit"]
    if "ramp_fit" not in skip:
        for key in ("firstgroup", "lastgroup"):
            value = getattr(fit, key)
            if value is not None and value >= ngroups - (key == "firstgroup"):
                raise ConfigError(
                    f"ramp_fit.{key}={value} is beyond {ramp}: it must be <= "
                    f"{ngroups - 1 - (key == 'firstgroup')} (0-based)"
                )


def _num(value):
    """A bound as written in a message: 0 rather than 0.0."""
    return str(int(value)) if float(value).is_integer() else repr(value)
