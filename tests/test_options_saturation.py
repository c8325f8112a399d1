"""Saturation and group-flagging options beyond jwst (docs/options.md).

Known truth on hand-built ramps and on simulated segments (the truth file's ``sat_group``),
the kernels (kernels/saturation.cu, kernels/dq_init.cu: host build and, with a GPU, CuPy)
against NumPy bit for bit, the whole chain in memory and in chunks on both backends, the
configuration (TOML, --set, provenance) and the defaults leaving jwst's flags alone.
"""

import json

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.algorithms import dq_init, saturation
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.cli import main
from tsogpu.config import PipelineConfig, dump_toml, from_dict
from tsogpu.errors import ConfigError, InputError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.launchers import dq_init as kdq_init
from tsogpu.launchers import host_build
from tsogpu.launchers import saturation as ksaturation
from tsogpu.pipeline import run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan

SAT = dq.SATURATED
DNU = dq.DO_NOT_USE
U8 = np.uint8


def _sat_from(groupdq):
    """Per (int, y, x) the first group with SATURATED, ngroups where none (for the checks)."""
    return saturation.first_saturated_group(groupdq)


def _ramp_with(first, ngroups):
    """GROUPDQ (nints, ngroups, ny, nx) with SATURATED from ``first`` (nints, ny, nx) on."""
    g = np.arange(ngroups)[None, :, None, None]
    return np.where(g >= first[:, None], U8(SAT), U8(0)).astype(U8)


# ---------------------------------------------------------------------------------------------
# hand-built truth


def test_one_pixel_saturating_flags_its_whole_column_from_that_group():
    gdq = np.zeros((1, 6, 4, 3), U8)
    gdq[0, 3:, 2, 1] = SAT  # pixel (y=2, x=1) saturates at group 3
    gdq[0, 1, 0, 0] = DNU  # other bits are kept
    out = saturation.extend_saturation(gdq, column_saturation=True)
    first = _sat_from(out)[0]
    assert (first[:, 1] == 3).all()  # every row of column 1, from group 3
    assert (first[:, [0, 2]] == 6).all()  # other columns untouched
    assert out[0, 1, 0, 0] == DNU and (out & ~U8(SAT) == gdq & ~U8(SAT)).all()
    assert (gdq[0, :, :, 1].sum() == 3 * SAT) and out is not gdq  # input not modified


def test_groups_before_flags_earlier_groups_saturated():
    gdq = np.zeros((2, 6, 2, 2), U8)
    gdq[0, 3:, 0, 0] = SAT
    gdq[1, 1:, 1, 1] = SAT
    out = saturation.extend_saturation(gdq, groups_before=2)
    first = _sat_from(out)
    assert first[0, 0, 0] == 1  # from group 3, two before: group 1
    assert first[1, 1, 1] == 0  # clipped at group 0
    assert first[0, 1, 1] == 6 and first[1, 0, 0] == 6  # per integration
    both = _sat_from(saturation.extend_saturation(gdq, column_saturation=True, groups_before=1))
    assert (both[0, :, 0] == 2).all() and (both[1, :, 1] == 0).all()
    assert (both[0, :, 1] == 6).all() and (both[1, :, 0] == 6).all()


def test_fraction_lowers_the_threshold():
    thresh = np.full((1, 2), 1000.0, np.float32)
    thresh[0, 1] = np.nan
    data = np.zeros((1, 3, 1, 2), np.float32)
    data[0, :, 0, 0] = [100.0, 920.0, 990.0]
    gdq = np.zeros(data.shape, U8)
    pdq = np.zeros((1, 2), np.uint32)
    sdq = np.zeros((1, 2), np.uint32)
    scaled = saturation.scale_thresholds(thresh, 0.9)
    assert scaled[0, 0] == np.float32(900.0) and np.isnan(scaled[0, 1])
    kw = dict(n_pix_grow_sat=0, use_readpatt=False)
    plain = saturation.flag_saturation(data, gdq, pdq, thresh, sdq, **kw)[0]
    lowered = saturation.flag_saturation(data, gdq, pdq, scaled, sdq, **kw)[0]
    assert _sat_from(plain)[0, 0, 0] == 3 and _sat_from(lowered)[0, 0, 0] == 1
    assert (saturation.scale_thresholds(thresh, 1.0)[0, :1] == thresh[0, :1]).all()


def test_fixed_map_is_the_earliest_group_over_integrations():
    first = np.array([[[5, 2], [6, 6]], [[3, 6], [4, 6]], [[6, 6], [6, 6]]], np.int32)
    gdq = _ramp_with(first, 6)
    pixel = saturation.saturation_map(gdq, "pixel")
    np.testing.assert_array_equal(pixel, [[3, 2], [4, 6]])
    column = saturation.saturation_map(gdq, "column")
    np.testing.assert_array_equal(column, [[3, 2], [3, 2]])
    out = saturation.apply_saturation_map(gdq, pixel)
    for i in range(3):  # every integration now uses the same groups
        np.testing.assert_array_equal(_sat_from(out)[i], pixel)


def test_group_flags_first_last_and_list():
    mask = dq_init.flagged_groups(8, first=2, last=1, groups=(4, -2))
    np.testing.assert_array_equal(np.flatnonzero(mask), [0, 1, 4, 6, 7])
    assert dq_init.flagged_groups(3, first=5).all()
    assert not dq_init.flagged_groups(3).any()
    with pytest.raises(InputError, match=r"dq_init.flag_groups: group 3 .* 3 groups"):
        dq_init.flagged_groups(3, groups=(3,))
    with pytest.raises(InputError, match="group -4"):
        dq_init.flagged_groups(3, groups=(-4,))
    gdq = np.full((2, 4, 2, 3), SAT, U8)
    out = dq_init.flag_groups(gdq, dq_init.flagged_groups(4, groups=(0, -1)))
    assert (out[:, [0, 3]] == SAT | DNU).all() and (out[:, [1, 2]] == SAT).all()


# ---------------------------------------------------------------------------------------------
# kernels against NumPy, bit for bit


def _same(kernels, got, want):
    got = np.asarray(kernels.get(got)) if hasattr(kernels, "get") else np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 5, 7, 3), (3, 9, 16, 11)])
def test_kernels_equal_numpy(kernels, shape):
    rng = np.random.default_rng(sum(shape))
    nints, ngroups, ny, nx = shape
    first = rng.integers(0, ngroups + 1, (nints, ny, nx))
    gdq = _ramp_with(first, ngroups) | rng.integers(0, 256, shape, dtype=U8) & ~U8(SAT)
    gdq[rng.random(shape) < 0.05] |= SAT  # scattered bits too, not only forward-propagated
    d = kernels.put(gdq)
    for col in (False, True):
        for before in (0, 1, 3):
            got = ksaturation.extend_saturation(
                kernels, d, column_saturation=col, groups_before=before
            )
            want = saturation.extend_saturation(gdq, column_saturation=col, groups_before=before)
            _same(kernels, got, want)
    for per in ("pixel", "column"):
        sat_map = saturation.saturation_map(gdq, per)
        _same(kernels, ksaturation.saturation_map(kernels, d, per), sat_map)
        got = ksaturation.apply_saturation_map(kernels, d, kernels.put(sat_map))
        _same(kernels, got, saturation.apply_saturation_map(gdq, sat_map))
    mask = rng.random(ngroups) < 0.4
    _same(kernels, kdq_init.flag_groups(kernels, d, mask), dq_init.flag_groups(gdq, mask))
    _same(kernels, d, gdq)  # input untouched
    thresh = rng.uniform(-1e5, 7e4, (ny, nx)).astype(np.float32)
    thresh.flat[:: max(1, thresh.size // 3)] = np.nan
    for fraction in (0.9, 0.8, 1.1, 1 / 3):
        got = ksaturation.scale_thresholds(kernels, kernels.put(thresh), fraction)
        _same(kernels, got, saturation.scale_thresholds(thresh, fraction))


# ---------------------------------------------------------------------------------------------
# simulated segments against their truth, both backends, in memory and in chunks

OPTIONS = [
    "saturation.n_pix_grow_sat=0",
    "saturation.column_saturation=true",
    "saturation.groups_before=1",
    "saturation.fixed_map=column",
]


@pytest.fixture(scope="module")
def bright(simulated):
    # the trace well past full well: many pixels saturate, at groups that vary by integration
    sim = simulated(
        "nrs_bots", nints=6, ngroups=8, ncols=64, seed=5, n_saturating=12, peak_fill=1.5
    )
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, skip={"jump"})
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    truth = np.load(sim.truth)["sat_group"].astype(np.int32)
    truth[truth < 0] = shape[1]
    return sim, config, exposure, shape, refs, truth


def _before(first, n, ngroups=8):
    """``first`` moved ``n`` groups earlier (not before 0) where it saturates at all."""
    return np.where(first < ngroups, np.maximum(first - n, 0), first)


def _groupdq(bright, sets):
    sim, config, *_, refs, _ = bright
    return run_segment(
        read_uncal(sim.uncal), refs, config.with_overrides(sets=sets)
    ).segment.groupdq


@pytest.mark.parametrize(
    ("sets", "expect"),
    [
        ([], lambda t: t),
        (OPTIONS[1:2], saturation.column_minimum),
        (OPTIONS[1:3], lambda t: _before(saturation.column_minimum(t), 1)),
        (["saturation.fixed_map=pixel"], lambda t: np.broadcast_to(t.min(axis=0), t.shape)),
        (
            OPTIONS[1:],
            lambda t: np.broadcast_to(
                saturation.column_minimum(_before(t, 1)).min(axis=0), t.shape
            ),
        ),
    ],
    ids=["jwst", "column", "column+before", "fixed-pixel", "all"],
)
def test_simulated_saturation_matches_truth(bright, sets, expect):
    *_, shape, _, truth = bright
    assert (truth < shape[1]).sum() > 100 and len(np.unique(truth)) > 3  # a real test
    first = _sat_from(_groupdq(bright, [OPTIONS[0], *sets]))
    # the truth is where the raw ramp reaches the reference, jwst's forward pass without growth
    np.testing.assert_array_equal(first, expect(truth))


def test_chain_with_options_equals_numpy_in_memory_and_chunked(bright, kernels, tmp_path):
    sim, config, exposure, shape, refs, truth = bright
    config = config.with_overrides(
        sets=[*OPTIONS, "saturation.fraction=0.9", "dq_init.flag_groups=0,-1"]
    )
    want = run_segment(read_uncal(sim.uncal), refs, config)
    got = run_segment(read_uncal(sim.uncal, raw=True), refs, config, ops=KernelOps(kernels))
    plan = Plan(0, ints=4, rows=5, cols=40, halo=1, in_memory=False, threads=1)
    for ops in (None, KernelOps(kernels)):
        args = (sim.uncal, exposure, shape, refs, config, plan, tmp_path, lambda *a: None)
        chunked = run_chunked(*args, *([ops] if ops else []))
        for a, b in zip(chunked.rateints, want.rateints, strict=True):
            assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(got.segment.groupdq, want.segment.groupdq)
    for a, b in zip(got.rateints, want.rateints, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and (np.isnan(a) == np.isnan(b)).all()
        np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])
    gdq = want.segment.groupdq
    assert (gdq[:, [0, -1]] & DNU).all() and not (gdq[:, 1:-1] & DNU).all()
    first = _sat_from(gdq)
    assert (first == first[:1]).all()  # one map for every integration
    assert (first <= _before(saturation.column_minimum(truth).min(axis=0), 1)).all()


# ---------------------------------------------------------------------------------------------
# configuration, provenance, command line


def test_config_parses_validates_and_round_trips():
    cfg = PipelineConfig().with_overrides(
        sets=[
            "saturation.fraction=0.9",
            "saturation.fixed_map=pixel",
            "dq_init.flag_groups=[0, 1, -1]",
            "dq_init.flag_first=2",
        ]
    )
    assert cfg.params("dq_init").flag_groups == (0, 1, -1)
    d = cfg.as_dict()
    assert d["saturation"]["fraction"] == 0.9 and d["dq_init"]["flag_groups"] == (0, 1, -1)
    back = from_dict(__import__("tomllib").loads(dump_toml(cfg)))
    assert back == cfg
    assert from_dict({"dq_init": {"flag_groups": [3, -1]}}).params("dq_init").flag_groups == (
        3,
        -1,
    )
    assert (
        PipelineConfig()
        .with_overrides(sets=["dq_init.flag_groups=[]"])
        .params("dq_init")
        .flag_groups
        == ()
    )
    for bad, match in [
        ("saturation.fixed_map=row", "fixed_map must be one of none, pixel, column"),
        ("saturation.fraction=0", "fraction must be a finite number > 0,"),
        ("saturation.groups_before=-1", "groups_before must be an integer >= 0"),
        ("dq_init.flag_last=-2", "flag_last must be an integer >= 0"),
        ("dq_init.flag_groups=1,x", "expected int"),
    ]:
        with pytest.raises(ConfigError, match=match):
            PipelineConfig().with_overrides(sets=[bad])
    with pytest.raises(ConfigError, match="expected a list of int"):
        from_dict({"dq_init": {"flag_groups": 3}})


def test_defaults_are_jwst():
    sat = PipelineConfig().params("saturation")
    assert (sat.fraction, sat.column_saturation, sat.groups_before, sat.fixed_map) == (
        1.0,
        False,
        0,
        "none",
    )
    init = PipelineConfig().params("dq_init")
    assert (init.flag_first, init.flag_last, init.flag_groups) == (0, 0, ())


def test_run_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("fraction=1.0", "column_saturation=False", "groups_before=0", "fixed_map=none"):
        assert name in text
    for name in ("flag_first=0", "flag_last=0", "flag_groups=()"):
        assert name in text


@pytest.mark.skipif(host_build.compiler() is None, reason="no C++ compiler")
def test_cli_column_saturation_native_equals_numpy(bright, tmp_path):
    sim = bright[0]
    refs = [a for t, p in sim.refs.items() for a in ("--ref", f"{t}={p}")]
    sets = ["--set", "saturation.column_saturation=true", "--set", "dq_init.flag_groups=-1"]
    products = {}
    for backend in ("numpy", "native"):
        out = tmp_path / backend
        assert main(["run", str(sim.uncal), "--out", str(out), "-q", "--save-ramp", *refs,
                     *sets, "--backend", backend]) == 0  # fmt: skip
        products[backend] = {
            s: out / sim.uncal.name.replace("_uncal", f"_{s}") for s in ("ramp", "rateints")
        }
    for suffix in ("ramp", "rateints"):
        with (
            fits.open(products["numpy"][suffix]) as a,
            fits.open(products["native"][suffix]) as b,
        ):
            names = ("PIXELDQ", "GROUPDQ") if suffix == "ramp" else ("DQ", "ERR")
            for name in ("SCI", *names):
                assert a[name].data.tobytes() == b[name].data.tobytes(), (suffix, name)
            params = json.loads(b[0].header["TSOPARS"])
            assert params["saturation"]["column_saturation"] is True
            assert params["dq_init"]["flag_groups"] == [-1]
            if suffix == "ramp":
                first = _sat_from(a["GROUPDQ"].data)
                assert (first == saturation.column_minimum(first)).all()
                assert (a["GROUPDQ"].data[:, -1] & DNU).all()
