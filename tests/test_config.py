import dataclasses

import pytest

from tsogpu import config
from tsogpu.config import PipelineConfig, dump_toml, from_dict, load_toml
from tsogpu.errors import ConfigError


def test_defaults_match_jwst_step_specs():
    jwst_steps = pytest.importorskip("jwst.step")
    cfg = PipelineConfig()
    sat = jwst_steps.SaturationStep()
    assert cfg.params("saturation").n_pix_grow_sat == sat.n_pix_grow_sat
    assert cfg.params("saturation").use_readpatt == sat.use_readpatt
    ref = jwst_steps.RefPixStep()
    for f in dataclasses.fields(config.Refpix):
        if f.name in TSOGPU_ONLY:
            continue
        assert getattr(cfg.params("refpix"), f.name) == getattr(ref, f.name), f.name
    assert cfg.params("dark_current").average_dark_current == (
        jwst_steps.DarkCurrentStep().average_dark_current
    )
    for step, jwst_step in (
        ("jump", jwst_steps.JumpStep()),
        ("ramp_fit", jwst_steps.RampFitStep()),
    ):
        for f in dataclasses.fields(config.STEP_PARAMS[step]):
            if f.name in TSOGPU_ONLY:
                continue
            assert getattr(cfg.params(step), f.name) == getattr(jwst_step, f.name), (step, f.name)
    assert cfg.params("jump").time_domain == "off"  # the options beyond jwst are off
    assert cfg.params("refpix").sky_method == "off"


# parameters of options beyond jwst (docs/options.md), absent from jwst's step specs
TSOGPU_ONLY = {
    "time_domain",
    "time_window",
    "time_threshold",
    "sky_method",
    "sky_mask",
    "sky_threshold",
    "sky_mask_grow",
    "weighting",
    "goodness_of_fit",
}


def test_set_overrides_are_typed():
    cfg = PipelineConfig().with_overrides(
        sets=[
            "saturation.n_pix_grow_sat=2",
            "refpix.odd_even_columns=false",
            "refpix.side_gain=0.5",
            "dark_current.average_dark_current=0.01",
        ]
    )
    assert cfg.params("saturation").n_pix_grow_sat == 2
    assert cfg.params("refpix").odd_even_columns is False
    assert cfg.params("refpix").side_gain == 0.5
    assert cfg.params("dark_current").average_dark_current == 0.01
    # the original is untouched (frozen, new object)
    assert PipelineConfig().params("saturation").n_pix_grow_sat == 1


@pytest.mark.parametrize(
    "item, words",
    [
        ("saturation.n_pix_grow=2", ["saturation", "n_pix_grow", "n_pix_grow_sat"]),
        ("nosuchstep.x=1", ["nosuchstep"]),
        ("saturation.n_pix_grow_sat=two", ["saturation.n_pix_grow_sat", "int", "two"]),
        ("refpix.odd_even_columns=maybe", ["true or false", "maybe"]),
        ("saturation", ["STEP.PARAM=VALUE"]),
    ],
)
def test_bad_set_names_the_problem(item, words):
    with pytest.raises(ConfigError) as err:
        PipelineConfig().with_overrides(sets=[item])
    for w in words:
        assert w in str(err.value)


def test_unknown_skip_and_ref_and_backend():
    with pytest.raises(ConfigError, match="unknown step 'jumpy'"):
        PipelineConfig(skip=frozenset({"jumpy"}))
    with pytest.raises(ConfigError, match="unknown reference type 'flat'"):
        PipelineConfig(refs={"flat": "x.fits"})
    with pytest.raises(ConfigError, match="backend"):
        PipelineConfig(backend="opencl")


def test_toml_round_trip(tmp_path):
    cfg = PipelineConfig().with_overrides(
        sets=["saturation.n_pix_grow_sat=0", "refpix.side_smoothing_length=21"],
        refs={"mask": "/data/mask.fits"},
        skip=["dark_current"],
        max_memory=3 * 2**30,
        threads=3,
    )
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(cfg))
    again = load_toml(path)
    assert again == cfg
    assert again.as_dict() == cfg.as_dict()


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        PipelineConfig(threads=threads)


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[saturation\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="missing.toml: configuration file not found"):
        load_toml(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="unknown key 'satuartion'"):
        from_dict({"satuartion": {"n_pix_grow_sat": 1}}, source="x.toml")
    with pytest.raises(ConfigError, match="x.toml saturation.n_pix_grow_sat: expected int"):
        from_dict({"saturation": {"n_pix_grow_sat": 1.5}}, source="x.toml")
