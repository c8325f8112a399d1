"""tsogpu behind jwst's stpipe (tsogpu/stpipe): strun's command line, parameter files, ``.call``.

stpipe finds ``tsogpu_detector1`` through the ``stpipe.steps`` entry point of an installed
tsogpu; here a ``tsogpu-*.dist-info`` made from pyproject.toml's entry point is put first on
``sys.path``, as an install would put it, so the tests need no install.
"""

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stpipe")
pytest.importorskip("jwst")

from stpipe import Step  # noqa: E402

import tsogpu  # noqa: E402
from tsogpu.compare import compare_products  # noqa: E402
from tsogpu.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEGMENT = dict(nints=4, ngroups=5, ncols=32, seed=7, cr_rate=1e-2)
# a jump threshold that changes this segment's products (noise flagged at 3 sigma), where 5
# and the default 4 would flag the same jumps: the tests then show that it reached the runner
THRESHOLD = 3.0
OVERRIDE = {  # reference type -> the steps that read it, jwst's override_<type> parameters
    "mask": ("dq_init",),
    "saturation": ("saturation",),
    "superbias": ("saturation", "superbias"),
    "linearity": ("linearity",),
    "dark": ("dark_current",),
    "gain": ("jump", "ramp_fit", "gain_scale"),
    "readnoise": ("jump", "ramp_fit"),
}


@pytest.fixture(scope="module", autouse=True)
def entry_point(tmp_path_factory):
    """pyproject.toml's ``stpipe.steps`` entry point, visible to stpipe as an install's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    points = project["entry-points"]["stpipe.steps"]
    where = tmp_path_factory.mktemp("site")
    info = where / f"tsogpu-{tsogpu.__version__}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tsogpu\nVersion: {tsogpu.__version__}\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in points.items())
    (info / "entry_points.txt").write_text(f"[stpipe.steps]\n{lines}")
    sys.path.insert(0, str(where))
    yield
    sys.path.remove(str(where))


@pytest.fixture(scope="module")
def segment(tmp_path_factory):
    from tsogpu.simulate import simulate

    return simulate("nrs_bots", tmp_path_factory.mktemp("bots"), full_frame_refs=False, **SEGMENT)


def override_args(refs):
    """``--steps.<step>.override_<type>=PATH`` for every reference, as jwst's users give them."""
    return [
        f"--steps.{step}.override_{reftype}={refs[reftype]}"
        for reftype, steps in OVERRIDE.items()
        for step in steps
    ]


def override_steps(refs, **params):
    """The same as the ``steps`` dict of ``.call``, with extra parameters per step."""
    steps = {}
    for reftype, names in OVERRIDE.items():
        for name in names:
            steps.setdefault(name, {})[f"override_{reftype}"] = str(refs[reftype])
    for name, extra in params.items():
        steps.setdefault(name, {}).update(extra)
    return steps


def test_entry_point_lists_the_pipeline_and_steps():
    from stpipe import entry_points
    from stpipe.utilities import resolve_step_class_alias

    ours = [s for s in entry_points.get_steps() if s.package_name == "tsogpu"]
    assert ("tsogpu.stpipe.TSODetector1Pipeline", "tsogpu_detector1", True) in [s[:3] for s in ours]
    assert {s.class_alias for s in ours} >= {"tsogpu_jump", "tsogpu_ramp_fit"}
    assert resolve_step_class_alias("tsogpu_detector1") == "tsogpu.stpipe.TSODetector1Pipeline"


def test_only_tsogpu_stpipe_imports_jwst_and_stpipe():
    """jwst and stpipe stay inside tsogpu/stpipe (the extra); the rest never needs them."""
    import ast

    found = []
    for path in (ROOT / "tsogpu").rglob("*.py"):
        if path.parent.name == "stpipe":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{path}: {n}" for n in names if n.split(".")[0] in ("jwst", "stpipe")]
    assert not found


def test_entry_point_module_imports_neither_jwst_nor_stpipe():
    import subprocess

    code = (
        "import sys, tsogpu.stpipe; from tsogpu.stpipe.integration import get_steps; get_steps();"
        "bad = [m for m in ('jwst', 'stpipe', 'astropy') if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_parameters_have_jwst_names_and_defaults_plus_tsogpu_options():
    from jwst.pipeline import Detector1Pipeline

    from tsogpu.stpipe import TSODetector1Pipeline

    ours = TSODetector1Pipeline().get_pars()
    theirs = Detector1Pipeline().get_pars()
    assert set(ours["steps"]) == set(theirs["steps"])
    for name, pars in theirs["steps"].items():
        for key, value in pars.items():
            if (name, key) == ("ipc", "skip"):
                continue  # not implemented, so skipped by default
            assert ours["steps"][name][key] == value, (name, key)
    for key in ("backend", "max_memory", "threads", "exposure_wide", "save_calibrated_ramp"):
        assert key in ours
    assert ours["steps"]["jump"]["time_domain"] == "off"
    assert ours["steps"]["refpix"]["sky_method"] == "off"
    # CRDS's parameter references (pars-detector1pipeline, pars-jumpstep, ...) apply as to jwst's
    assert TSODetector1Pipeline.get_config_reftype() == Detector1Pipeline.get_config_reftype()
    for name, cls in Detector1Pipeline.step_defs.items():
        ours_cls = TSODetector1Pipeline.step_defs[name]
        assert ours_cls.get_config_reftype() == cls.get_config_reftype()
        assert ours_cls.reference_file_types == cls.reference_file_types


def test_help_lists_tsogpu_options():
    """``strun tsogpu_detector1 --help`` lists tsogpu's parameters under the TOML names."""
    from stpipe import _cmdline

    from tsogpu.stpipe import TSODetector1Pipeline

    spec = TSODetector1Pipeline.load_spec_file()
    parser = _cmdline._build_arg_parser_from_spec(
        spec, TSODetector1Pipeline, parent=_cmdline._build_parent_arg_parser()
    )
    options = {o for a in parser._actions for o in a.option_strings}
    expected = {f"--{k}" for k in ("backend", "max_memory", "threads", "exposure_wide")}
    expected |= {"--save_calibrated_ramp", "--steps.jump.rejection_threshold"}
    expected |= {"--steps.jump.time_domain", "--steps.saturation.fraction"}
    expected |= {"--steps.refpix.sky_method", "--steps.dq_init.flag_groups"}
    expected |= {"--steps.saturation.override_saturation", "--steps.ipc.skip"}
    assert expected <= options


def test_every_jwst_parameter_is_mapped():
    """Each parameter of jwst's steps is a tsogpu parameter or in JWST_ONLY (``skip``:
    stpipe's, in the specs of the steps jwst skips by default)."""
    import dataclasses

    from tsogpu.config import STEP_ORDER, STEP_PARAMS
    from tsogpu.stpipe.parameters import JWST_ONLY, jwst_defaults, mapping_rows

    for name in STEP_ORDER:
        fields = {f.name for f in dataclasses.fields(STEP_PARAMS[name])}
        for key in set(jwst_defaults(name)) - {"skip"}:
            assert key in fields or key in JWST_ONLY.get(name, {}), (name, key)
    assert any(row[1] == "find_showers" for row in mapping_rows())


@pytest.mark.parametrize(
    "steps, message",
    [
        ({"ramp_fit": {"algorithm": "LIKELY", "goodness_of_fit": True}}, "apply to OLS_C"),
        ({"jump": {"find_showers": True}}, "shower"),
        ({"refpix": {"refpix_algorithm": "sirs"}}, "median"),
        ({"persistence": {"skip": False}}, "persistence.skip = true"),
        ({"superbias": {"save_results": True}}, "no product of superbias"),
        ({"jump": {"time_domain": "sometimes"}}, "jump.time_domain"),
    ],
)
def test_unsupported_parameters_are_errors(segment, tmp_path, steps, message):
    from tsogpu.stpipe import TSODetector1Pipeline

    with pytest.raises(ConfigError, match=message):
        TSODetector1Pipeline.call(
            str(segment.uncal),
            steps=override_steps(segment.refs, **steps),
            output_dir=str(tmp_path),
        )


def test_ipc_runs_only_where_its_reference_is_na(segment, tmp_path):
    """tsogpu does not implement ipc; asked to run, it goes on where jwst's step would do
    nothing (reference N/A), and is an error where the reference cannot be found (here: CRDS
    offline, as it would be a real IPC reference)."""
    from tsogpu.stpipe import TSODetector1Pipeline

    steps = override_steps(segment.refs, ipc={"skip": False, "override_ipc": "N/A"})
    plain = TSODetector1Pipeline.call(str(segment.uncal), steps=override_steps(segment.refs))
    na = TSODetector1Pipeline.call(str(segment.uncal), steps=steps)
    np.testing.assert_array_equal(na.data, plain.data)
    del steps["ipc"]["override_ipc"]
    with pytest.raises(ConfigError, match="ipc.skip = true"):
        TSODetector1Pipeline.call(str(segment.uncal), steps=steps)


def test_tsogpu_options_take_toml_values():
    """max_memory as in the TOML file (bytes or 4G), checked by tsogpu's own checks."""
    from tsogpu.stpipe import TSODetector1Pipeline
    from tsogpu.stpipe.parameters import pipeline_config

    for value, size in ((2**30, 2**30), ("2G", 2**31), (None, None)):
        assert pipeline_config(TSODetector1Pipeline(max_memory=value)).max_memory == size
    with pytest.raises(ConfigError, match="max_memory: expected a size"):
        pipeline_config(TSODetector1Pipeline(max_memory="lots"))
    config = pipeline_config(TSODetector1Pipeline(backend="native", threads=3))
    assert (config.backend, config.threads) == ("native", 3)


def test_conflicting_overrides_are_an_error(segment, tmp_path):
    from tsogpu.stpipe import TSODetector1Pipeline

    steps = override_steps(segment.refs)
    steps["ramp_fit"]["override_gain"] = str(segment.refs["readnoise"])
    with pytest.raises(ConfigError, match="one gain reference"):
        TSODetector1Pipeline.call(str(segment.uncal), steps=steps)


def test_ignored_parameter_warns(segment, caplog):
    from tsogpu.stpipe import TSODetector1Pipeline

    steps = override_steps(segment.refs, jump={"maximum_cores": "all"})
    result = TSODetector1Pipeline.call(str(segment.uncal), steps=steps)
    assert "maximum_cores" in caplog.text and "no effect" in caplog.text
    assert result.__class__.__name__ == "ImageModel"


def test_call_returns_models_and_writes_nothing_unless_asked(segment, tmp_path, monkeypatch):
    from stdatamodels.jwst import datamodels

    from tsogpu.stpipe import TSODetector1Pipeline

    monkeypatch.chdir(tmp_path)
    pipe = TSODetector1Pipeline(steps=override_steps(segment.refs))
    rate = pipe.run(str(segment.uncal))
    assert isinstance(rate, datamodels.ImageModel)
    assert isinstance(pipe.rateints, datamodels.CubeModel)
    assert pipe.rateints.data.shape == (SEGMENT["nints"], *rate.data.shape)
    assert list(tmp_path.iterdir()) == []  # no save_results: no file, no leftover folder


SEEN = []


def record_hook(model):
    """A post hook (stpipe takes functions by their dotted name)."""
    SEEN.append(type(model).__name__)


def test_datamodel_input_and_hooks(segment, tmp_path):
    """A RampModel in, as jwst's pipeline takes; a post hook sees the rate model."""
    from stdatamodels.jwst import datamodels

    from tsogpu.stpipe import TSODetector1Pipeline

    SEEN.clear()
    with datamodels.RampModel(str(segment.uncal)) as ramp:
        from_model = TSODetector1Pipeline.call(
            ramp, steps=override_steps(segment.refs), post_hooks=[f"{__name__}.record_hook"]
        )
    from_file = TSODetector1Pipeline.call(str(segment.uncal), steps=override_steps(segment.refs))
    assert SEEN == ["ImageModel"]
    np.testing.assert_array_equal(from_model.data, from_file.data)
    np.testing.assert_array_equal(from_model.dq, from_file.dq)


def test_step_does_not_run_alone(segment):
    from tsogpu.stpipe import JumpStep

    with pytest.raises(NotImplementedError, match="does not run alone"):
        JumpStep.call(str(segment.uncal))


def _jwst_parameter_file(path, **parameters):
    """jwst's JumpStep parameter file, as ``export_config`` writes it, with ``parameters`` set."""
    from jwst.step import JumpStep

    step = JumpStep()
    for key, value in parameters.items():
        setattr(step, key, value)
    step.export_config(path, include_metadata=True)
    return path


@pytest.mark.jwst
@pytest.mark.slow
def test_strun_matches_jwst(segment, tmp_path):
    """``strun tsogpu_detector1 UNCAL --output_dir DIR --steps.jump.rejection_threshold=3``
    with jwst's override parameters writes jwst 3.0's rateints and rate, bit for bit."""
    import jwst_oracle

    ours = tmp_path / "ours"
    Step.from_cmdline(
        [
            "tsogpu_detector1",
            str(segment.uncal),
            "--output_dir",
            str(ours),
            f"--steps.jump.rejection_threshold={THRESHOLD}",
            *override_args(segment.refs),
        ]
    )
    stem = segment.uncal.name.removesuffix("_uncal.fits")
    assert sorted(p.name for p in ours.iterdir()) == [f"{stem}_rate.fits", f"{stem}_rateints.fits"]
    jwst_oracle.run_jwst_detector1(
        segment.uncal,
        segment.refs,
        tmp_path / "jwst",
        steps_to_compare=("gain_scale",),
        skip=(),
        step_params={"jump": {"rejection_threshold": THRESHOLD}},
    )
    for ours_name, theirs_name in (("rateints", "gain_scaleints"), ("rate", "gain_scale")):
        comparison = compare_products(
            tmp_path / "jwst" / f"{stem}_{theirs_name}.fits",
            ours / f"{stem}_{ours_name}.fits",
            rtol=0,
        )
        assert comparison.within(0), ours_name
        assert comparison.dq.within(), ours_name


@pytest.mark.jwst
@pytest.mark.slow
def test_jwst_parameter_files_load(segment, tmp_path):
    """jwst's own parameter files (JumpStep's; Detector1Pipeline's, with ipc skipped) load
    unchanged, by --steps.jump.config_file and by .call's config_file."""
    from jwst.pipeline import Detector1Pipeline

    from tsogpu.stpipe import TSODetector1Pipeline

    jump_file = _jwst_parameter_file(tmp_path / "jump.asdf", rejection_threshold=THRESHOLD)
    out_a = tmp_path / "a"
    Step.from_cmdline(
        [
            "tsogpu_detector1",
            str(segment.uncal),
            f"--output_dir={out_a}",
            f"--steps.jump.config_file={jump_file}",
            *override_args(segment.refs),
        ]
    )
    # the whole pipeline's file, as jwst exports it, run through .call
    jwst_pipe = Detector1Pipeline()
    jwst_pipe.jump.rejection_threshold = THRESHOLD
    jwst_pipe.ipc.skip = True
    pipe_file = tmp_path / "detector1.asdf"
    jwst_pipe.export_config(pipe_file)
    out_b = tmp_path / "b"
    TSODetector1Pipeline.call(
        str(segment.uncal),
        config_file=str(pipe_file),
        steps=override_steps(segment.refs),
        output_dir=str(out_b),
        save_results=True,
    )
    # the default threshold, for contrast
    out_c = tmp_path / "c"
    TSODetector1Pipeline.call(
        str(segment.uncal),
        steps=override_steps(segment.refs),
        output_dir=str(out_c),
        save_results=True,
    )
    name = segment.uncal.name.replace("_uncal", "_rateints")
    assert compare_products(out_a / name, out_b / name, rtol=0).within(0)
    assert compare_products(out_a / name, out_b / name, rtol=0).dq.within()
    differ = compare_products(out_a / name, out_c / name, rtol=0)
    assert not (differ.within(0) and differ.dq.within()), "the file's threshold had no effect"


def test_saved_products_and_names(segment, tmp_path, monkeypatch, caplog):
    """jwst's names: output_file, save_calibrated_ramp (_ramp), steps.jump.save_results
    (_jump, the ramp after jump); the chunked runner (a small max_memory) gives the same
    products as the whole segment in memory."""
    from tsogpu.stpipe import TSODetector1Pipeline

    steps = override_steps(segment.refs, jump={"save_results": True})
    TSODetector1Pipeline.call(
        str(segment.uncal),
        steps=steps,
        output_dir=str(tmp_path / "a"),
        output_file="seg",
        save_calibrated_ramp=True,
    )
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["seg_jump.fits", "seg_ramp.fits", "seg_rate.fits", "seg_rateints.fits"]
    # a budget of 1 MB beside what the process holds: chunks of integrations, then tiles
    monkeypatch.setattr("tsogpu.pipeline.planning.current_rss", lambda: 0)
    TSODetector1Pipeline.call(
        str(segment.uncal),
        steps=override_steps(segment.refs),
        output_dir=str(tmp_path / "b"),
        output_file="seg",
        max_memory="1M",
        threads=1,
    )
    assert "integrations per chunk" in caplog.text
    for kind in ("rate", "rateints"):
        a, b = tmp_path / "a" / f"seg_{kind}.fits", tmp_path / "b" / f"seg_{kind}.fits"
        assert compare_products(a, b, rtol=0).within(0)
    # without ramp fitting the ramp is the result, saved once under _ramp
    ramp = TSODetector1Pipeline.call(
        str(segment.uncal),
        steps=override_steps(segment.refs, ramp_fit={"skip": True}, gain_scale={"skip": True}),
        output_dir=str(tmp_path / "c"),
        save_results=True,
        save_calibrated_ramp=True,
    )
    assert ramp.__class__.__name__ == "RampModel"
    assert [p.name for p in (tmp_path / "c").iterdir()] == [
        segment.uncal.name.replace("_uncal", "_ramp")
    ]


def test_saved_parameters_load_back(segment, tmp_path, monkeypatch):
    """``strun ... --save-parameters FILE`` writes a file that ``strun FILE UNCAL`` runs."""
    monkeypatch.chdir(tmp_path)
    pars = tmp_path / "pars.asdf"
    first = Step.from_cmdline(
        [
            "tsogpu_detector1",
            str(segment.uncal),
            "--save-parameters",
            str(pars),
            "--output_dir=a",
            "--steps.saturation.n_pix_grow_sat=0",
            "--threads=1",
            *override_args(segment.refs),
        ]
    )
    # as with jwst, the reference overrides are not saved with the parameters
    second = Step.from_cmdline(
        [str(pars), str(segment.uncal), "--output_dir=b", *override_args(segment.refs)]
    )
    assert type(second) is type(first)
    assert second.saturation.n_pix_grow_sat == 0 and second.threads == 1
    name = segment.uncal.name.replace("_uncal", "_rateints")
    assert compare_products(tmp_path / "a" / name, tmp_path / "b" / name, rtol=0).within(0)


def test_exposure_wide_runs_the_first_pass(segment, tmp_path):
    from tsogpu.stpipe import TSODetector1Pipeline

    rate = TSODetector1Pipeline.call(
        str(segment.uncal),
        steps=override_steps(segment.refs),
        output_dir=str(tmp_path),
        save_results=True,
        exposure_wide=True,
    )
    assert len(list(tmp_path.glob("*_shared.fits"))) == 1
    plain = TSODetector1Pipeline.call(str(segment.uncal), steps=override_steps(segment.refs))
    np.testing.assert_array_equal(rate.data, plain.data)
