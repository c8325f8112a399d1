"""Every parameter's range, tried at each bound from the one table (tsogpu.parameter_ranges).

A parameter added to a step dataclass without an entry in ``RANGES`` fails the first test;
the cases of the others are generated from the table, through ``--set`` and through
``from_dict`` (TOML and the stpipe layer), and the checks that depend on one file through
``tsogpu run``.
"""

import dataclasses
import math

import pytest

from tsogpu.cli import main
from tsogpu.config import STEP_PARAMS, PipelineConfig, from_dict, load_toml
from tsogpu.errors import ConfigError
from tsogpu.parameter_ranges import RANGES, Choice, Number, Weighting, check_against_segment
from tsogpu.simulate import simulate

# PipelineConfig fields that are not options with a range: the step tables, skip and refs are
# checked by name (unknown steps and reference types)
NOT_OPTIONS = {"steps", "skip", "refs"}


def test_every_parameter_has_a_range():
    assert set(RANGES) == set(STEP_PARAMS) | {"pipeline"}
    for step, cls in STEP_PARAMS.items():
        assert [f.name for f in dataclasses.fields(cls)] == list(RANGES[step]), step
    options = {f.name for f in dataclasses.fields(PipelineConfig)} - NOT_OPTIONS
    assert options == set(RANGES["pipeline"])


def _number_cases(allowed, default):
    """(value, inside) at each finite bound of a Number, and nan/inf for a float."""
    low, _ = allowed.bounds("", default)
    step = 2 if allowed.odd else 1
    cases = []
    for bound, down, is_open in ((low, -1, allowed.open_low), (allowed.high, 1, allowed.open_high)):
        if not math.isfinite(bound):
            continue
        if allowed.kind is int:
            edge = int(bound)
            inside = edge - down * step if is_open else edge
            cases += [(inside, True), (inside + down * step, False)]
        else:
            inner = math.nextafter(bound, -down * math.inf)
            outer = math.nextafter(bound, down * math.inf)
            cases += [(inner, True), (bound, False)] if is_open else [(bound, True), (outer, False)]
    if allowed.odd:
        cases.append((int(low) + 1, False))
    if allowed.kind is float:
        cases += [(math.nan, False), (math.inf, False), (-math.inf, False)]
    if allowed.optional:
        cases.append((None, True))
    return cases


def _cases():
    for step, table in RANGES.items():
        default = PipelineConfig() if step == "pipeline" else STEP_PARAMS[step]()
        for name, allowed in table.items():
            if isinstance(allowed, Number):
                cases = _number_cases(allowed, default)
            elif isinstance(allowed, Choice):
                cases = [(v, True) for v in allowed.values] + [("nonsense", False)]
            elif isinstance(allowed, Weighting):
                cases = [("exponent:0", True), ("exponent:-0.5", False), ("exponent:nan", False)]
            else:  # true/false, a path, a list: any value of the type
                continue
            for value, inside in cases:
                yield pytest.param(step, name, value, inside, id=f"{step}.{name}={value!r}")


CASES = list(_cases())


def test_the_cases_cover_every_number_and_choice():
    tried = {(c.values[0], c.values[1]) for c in CASES}
    for step, table in RANGES.items():
        for name, allowed in table.items():
            if isinstance(allowed, Number | Choice | Weighting):
                assert (step, name) in tried
                values = [c.values for c in CASES if c.values[:2] == (step, name)]
                assert any(v[3] for v in values) and not all(v[3] for v in values), name


def _expect(build, step, name, value, inside):
    if inside:
        build()
        return
    with pytest.raises(ConfigError) as info:
        build()
    message = str(info.value)
    assert (name if step == "pipeline" else f"{step}.{name}") in message
    assert repr(value) in message or str(value) in message
    assert "must be" in message


@pytest.mark.parametrize(("step", "name", "value", "inside"), CASES)
def test_bounds_through_set(step, name, value, inside):
    if step == "pipeline":
        if value is None:  # the command line's default
            return
        kw = {"backend": value} if name == "backend" else {name: value}
        _expect(lambda: PipelineConfig().with_overrides(**kw), step, name, value, inside)
        return
    text = "none" if value is None else repr(value) if isinstance(value, float) else str(value)
    base = PipelineConfig(exposure_wide=True)  # superbias.scale=exposure needs it
    _expect(lambda: base.with_overrides(sets=[f"{step}.{name}={text}"]), step, name, value, inside)


@pytest.mark.parametrize(("step", "name", "value", "inside"), CASES)
def test_bounds_through_from_dict(step, name, value, inside):
    doc = {"exposure_wide": True}
    if step == "pipeline":
        doc[name] = value
    elif value is not None:  # TOML has no null: a missing key is the default
        doc[step] = {name: value}
    _expect(lambda: from_dict(doc), step, name, value, inside)


def test_nan_in_a_toml_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[jump]\nrejection_threshold = nan\n")
    with pytest.raises(ConfigError, match=r"jump.rejection_threshold must be .*> 0.*got nan"):
        load_toml(path)


def test_cross_parameter_bounds_name_both():
    with pytest.raises(ConfigError, match=r"max_jump_to_flag_neighbors .*min_jump_to_flag_neig"):
        PipelineConfig().with_overrides(sets=["jump.min_jump_to_flag_neighbors=2000"])
    with pytest.raises(ConfigError, match=r"ramp_fit.lastgroup must be .*> ramp_fit.firstgroup"):
        PipelineConfig().with_overrides(sets=["ramp_fit.firstgroup=3", "ramp_fit.lastgroup=3"])
    PipelineConfig().with_overrides(sets=["ramp_fit.firstgroup=3", "ramp_fit.lastgroup=4"])


# --- checks against one file -----------------------------------------------------------


def _config(*sets):
    return PipelineConfig().with_overrides(sets=sets)


@pytest.mark.parametrize(
    "sets",
    [
        ("dq_init.flag_first=3",),
        ("dq_init.flag_first=1", "dq_init.flag_last=2"),
        ("dq_init.flag_groups=0,1,-1",),
        ("dq_init.flag_groups=-4",),
        ("saturation.groups_before=3",),
        ("ramp_fit.firstgroup=2",),
        ("ramp_fit.lastgroup=3",),
    ],
)
def test_what_a_4_group_ramp_can_take(sets):
    check_against_segment(_config(*sets), (3, 4, 8, 8), "x_uncal.fits")


@pytest.mark.parametrize(
    "sets",
    [
        ("dq_init.flag_first=4",),
        ("dq_init.flag_first=100",),
        ("dq_init.flag_first=2", "dq_init.flag_last=2"),
        ("dq_init.flag_groups=0,1,2,-1",),
        ("dq_init.flag_groups=4",),
        ("dq_init.flag_groups=-5",),
        ("saturation.groups_before=4",),
        ("ramp_fit.firstgroup=3",),
        ("ramp_fit.lastgroup=4",),
    ],
)
def test_what_a_4_group_ramp_cannot_take(sets):
    with pytest.raises(ConfigError, match=r"4-group ramp \(x_uncal.fits\)"):
        check_against_segment(_config(*sets), (3, 4, 8, 8), "x_uncal.fits")


def test_skipped_steps_are_not_checked():
    config = _config("dq_init.flag_first=9").with_overrides(skip=["dq_init"])
    check_against_segment(config, (3, 4, 8, 8), "x_uncal.fits")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate("nrs_bots", tmp_path_factory.mktemp("bots"), nints=3, ngroups=6, seed=2)


@pytest.mark.parametrize(
    ("sets", "words"),
    [
        (["dq_init.flag_first=100"], ["dq_init.flag_first=100", "6-group"]),
        (["dq_init.flag_first=3", "dq_init.flag_last=3"], ["flag_last=3", "6-group"]),
        (["dq_init.flag_groups=7"], ["group 7", "6-group"]),
        (["saturation.groups_before=6"], ["groups_before=6", "6 groups"]),
        (["ramp_fit.lastgroup=9"], ["lastgroup=9", "6-group", "<= 5"]),
    ],
)
def test_run_refuses_before_any_work(sim, tmp_path, capsys, sets, words):
    out = tmp_path / "out"
    out.mkdir()
    refs = [a for k, v in sim.refs.items() for a in ("--ref", f"{k}={v}")]
    args = ["run", str(sim.uncal), "--out", str(out), *refs, "-q"]
    assert main([*args, *(a for s in sets for a in ("--set", s))]) == 2
    err = capsys.readouterr().err
    assert sim.uncal.name in err and all(w in err for w in words), err
    assert not list(out.iterdir())


def test_exposure_wide_run_refuses_before_its_first_pass(sim, tmp_path, capsys):
    out = tmp_path / "out"
    refs = [a for k, v in sim.refs.items() for a in ("--ref", f"{k}={v}")]
    args = ["run", str(sim.uncal), "--out", str(out), *refs, "-q", "--exposure-wide"]
    assert main([*args, "--set", "dq_init.flag_first=100"]) == 2
    err = capsys.readouterr().err
    assert "dq_init.flag_first=100 flags every group of a 6-group ramp" in err, err
    assert not [p for p in out.rglob("*") if p.is_file()]
