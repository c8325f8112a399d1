"""``tsogpu sweep``: each grid point's products bit for bit those of a full ``tsogpu run`` of
the point (every extension's data, as tests/product_digests.py compares them), whether the
shared ramp is kept in memory or in a scratch file; the summary; clear errors for bad grids."""

import csv
import logging

import numpy as np
import pytest
from product_digests import hdu_digests

from tsogpu.cli import main
from tsogpu.config import PipelineConfig
from tsogpu.errors import ConfigError
from tsogpu.sweep import first_changed_step, parse_grid, split_values


@pytest.fixture(scope="module")
def sim(simulated):
    return simulated("nrs_bots", nints=6, ngroups=6, seed=3, one_over_f=True, ncols=512)


def small_budget():
    """A --max-memory that leaves this process 30 MiB: too little for the segment whole."""
    from tsogpu.memory import current_rss

    return ["--max-memory", f"{(current_rss() >> 20) + 30}M"]


def ref_args(sim):
    return [a for k, v in sim.refs.items() for a in ("--ref", f"{k}={v}")]


def digests(folder):
    return {p.name: hdu_digests(p) for p in sorted(folder.glob("*.fits"))}


def sweep_and_compare(sim, tmp_path, grids, options, points, budget=()):
    """Sweep ``grids`` with ``options`` and ``budget`` (--max-memory), then run each of
    ``points`` ({folder: --set items}) in full with ``options`` (whole, in memory) and
    compare the products."""
    argv = ["sweep", str(sim.uncal), "--out", str(tmp_path / "sweep"), *ref_args(sim)]
    argv += [a for g in grids for a in ("--grid", g)] + options + list(budget)
    assert main([*argv, "-q"]) == 0
    for k, (folder, sets) in enumerate(points.items()):
        full = tmp_path / f"full{k}"
        run = ["run", str(sim.uncal), "--out", str(full), *ref_args(sim), *options, "-q"]
        assert main(run + [a for s in sets for a in ("--set", s)]) == 0
        want = digests(full)
        assert want and digests(tmp_path / "sweep" / folder) == want, folder


def test_jump_and_saturation_points_in_memory(sim, tmp_path, caplog):
    """A jump parameter and an earlier step's (saturation): the ramp after dq_init is shared."""
    caplog.set_level(logging.INFO, "tsogpu.sweep")
    grids = ["jump.rejection_threshold=3,5", "saturation.n_pix_grow_sat=0,2"]
    points = {
        f"jump.rejection_threshold={r},saturation.n_pix_grow_sat={n}": [
            f"jump.rejection_threshold={r}",
            f"saturation.n_pix_grow_sat={n}",
        ]
        for r, n in ((3, 0), (5, 0), (5, 2))
    }
    sweep_and_compare(sim, tmp_path, grids, [], points)
    assert "group_scale, dq_init once, then from saturation on" in caplog.text
    assert "kept in memory" in caplog.text
    rows = list(csv.DictReader(open(tmp_path / "sweep" / "sweep.csv")))
    assert [r["point"] for r in rows] == [
        f"jump.rejection_threshold={r},saturation.n_pix_grow_sat={n}"
        for r in (3, 5)
        for n in (0, 2)
    ]
    assert (
        rows[0]["jump.rejection_threshold"] == "3" and rows[1]["saturation.n_pix_grow_sat"] == "2"
    )
    # a lower threshold flags more jumps; growing saturation flags more saturated groups
    assert float(rows[0]["jump_groups"]) > float(rows[2]["jump_groups"]) > 0
    assert float(rows[1]["saturated_groups"]) > float(rows[0]["saturated_groups"])
    for row in rows:
        assert float(row["median_rate"]) > 0 and float(row["robust_scatter"]) > 0
        assert float(row["white_light_p2p_ppm"]) > 0  # the simulated trace is found


def test_a_failing_point_keeps_the_points_before(sim, tmp_path, monkeypatch, caplog, capsys):
    """The point before a failing one (its products written while the failing one ran) is
    complete and in the summary; the error is the failing point's."""
    from tsogpu import sweep

    caplog.set_level(logging.INFO, "tsogpu.sweep")
    run_point = sweep._InMemory.run_point
    calls = []

    def fail_second(self, point):
        calls.append(point.name)
        if len(calls) == 2:
            raise RuntimeError("injected failure of the second point")
        return run_point(self, point)

    monkeypatch.setattr(sweep._InMemory, "run_point", fail_second)
    argv = ["sweep", str(sim.uncal), "--out", str(tmp_path / "sweep"), *ref_args(sim)]
    assert main([*argv, "--grid", "jump.rejection_threshold=3,5", "-q"]) != 0
    assert "injected failure of the second point" in capsys.readouterr().err
    assert "written while the next point runs" in caplog.text
    rows = list(csv.DictReader(open(tmp_path / "sweep" / "sweep.csv")))
    assert [r["point"] for r in rows] == ["jump.rejection_threshold=3"]
    full = tmp_path / "full"
    run = ["run", str(sim.uncal), "--out", str(full), *ref_args(sim), "-q"]
    assert main([*run, "--set", "jump.rejection_threshold=3"]) == 0
    assert digests(tmp_path / "sweep" / "jump.rejection_threshold=3") == digests(full)
    assert not (tmp_path / "sweep" / "jump.rejection_threshold=5").exists()


@pytest.mark.parametrize("save_ramp", [True, False], ids=["ramp", "rates"])
def test_scratch_ramp_with_the_options(sim, tmp_path, caplog, save_ramp):
    """Under a small budget the shared ramp is a scratch file; the options' side products
    (refpix.sky_method's levels, superbias.scale's factors), saturation.fixed_map and the
    saved ramp come out as a full run's. Without the ramp product pass 2 reads the shared
    ramp itself; with it, each point's pass 1 copies it."""
    caplog.set_level(logging.INFO, "tsogpu.sweep")
    options = [
        "--set", "refpix.sky_method=roeba",
        "--set", "superbias.scale=mean",
        "--set", "saturation.fixed_map=pixel",
        *(["--save-ramp"] if save_ramp else []),
    ]  # fmt: skip
    points = {f"jump.rejection_threshold={r}": [f"jump.rejection_threshold={r}"] for r in (3, 5)}
    grids = ["jump.rejection_threshold=3,5"]
    sweep_and_compare(sim, tmp_path, grids, options, points, small_budget())
    assert "kept in a scratch file" in caplog.text
    assert "dark_current once, then from jump on" in caplog.text
    names = {
        p.name.rsplit("_", 1)[1]
        for p in (tmp_path / "sweep" / "jump.rejection_threshold=3").iterdir()
    }
    rates = {"rateints.fits", "rate.fits", "oneoverf.fits", "biasscale.fits"}
    assert names == rates | ({"ramp.fits"} if save_ramp else set())


@pytest.mark.parametrize("small", [False, True], ids=["memory", "scratch"])
def test_trace_mask_parameter_reruns_superbias(sim, tmp_path, small):
    """refpix.sky_threshold shapes the trace mask superbias.scale measures on: the sweep
    reruns from superbias, not from refpix."""
    options = ["--set", "refpix.sky_method=roeba", "--set", "superbias.scale=integration"]
    points = {f"refpix.sky_threshold={t}": [f"refpix.sky_threshold={t}"] for t in (3, 8)}
    budget = small_budget() if small else []
    sweep_and_compare(sim, tmp_path, ["refpix.sky_threshold=3,8"], options, points, budget)


def test_first_changed_step():
    base = PipelineConfig()
    assert first_changed_step(parse_grid(["ramp_fit.suppress_one_group=true,false"], base)) == (
        "ramp_fit"
    )
    grid = ["jump.rejection_threshold=4,5", "refpix.sky_method=off,glbs"]
    assert first_changed_step(parse_grid(grid, base)) == "refpix"
    scaled = base.with_overrides(sets=["superbias.scale=integration"])
    grid = ["refpix.sky_threshold=3,4"]
    assert first_changed_step(parse_grid(grid, base)) == "refpix"
    assert first_changed_step(parse_grid(grid, scaled)) == "superbias"


def test_points_and_names():
    points = parse_grid(
        ["dq_init.flag_groups=[0],[0,1]", "refpix.sky_mask=a/b.fits"], PipelineConfig()
    )
    assert [p.config.params("dq_init").flag_groups for p in points] == [(0,), (0, 1)]
    assert points[0].name == "dq_init.flag_groups=[0],refpix.sky_mask=a%2Fb.fits"
    assert split_values(" 4, 5 ,[1, 2]") == ["4", "5", "[1, 2]"]


@pytest.mark.parametrize(
    "grid, sets, message",
    [
        ([], [], "at least one --grid"),
        (["jump.rejection_threshold"], [], "expected STEP.PARAM=V1,V2"),
        (["rejection_threshold=4,5"], [], "expected STEP.PARAM=V1,V2"),
        (["jmp.rejection_threshold=4"], [], "unknown step 'jmp'"),
        (["jump.rejection=4"], [], "step 'jump' has no parameter 'rejection'"),
        (["jump.rejection_threshold="], [], "no values"),
        (["jump.rejection_threshold=4,,5"], [], "an empty value"),
        (["jump.rejection_threshold=4,four"], [], "expected float, got 'four'"),
        (["jump.rejection_threshold=4,-1"], [], "jump.rejection_threshold must be"),
        (["jump.rejection_threshold=4,4.0"], [], "the value 4.0 is given twice"),
        (["jump.rejection_threshold=4", "jump.rejection_threshold=5"], [], "swept twice"),
        (["jump.rejection_threshold=4,5"], ["jump.rejection_threshold=6"], "also given with --set"),
        (["ramp_fit.algorithm=LIKELY"], ["ramp_fit.goodness_of_fit=true"], "apply to OLS_C"),
        (
            ["ramp_fit.algorithm=OLS_C,LIKELY", "ramp_fit.goodness_of_fit=false,true"],
            [],
            "the point ramp_fit.algorithm=LIKELY,ramp_fit.goodness_of_fit=true",
        ),
    ],
)
def test_bad_grids(grid, sets, message):
    base = PipelineConfig().with_overrides(sets=sets)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_grid(grid, base, sets)


def test_bad_grid_on_the_command_line(sim, tmp_path, capsys):
    """Exit 2 with a one-line reason, before any work."""
    out = tmp_path / "out"
    base = ["sweep", str(sim.uncal), "--out", str(out), *ref_args(sim)]
    assert main([*base, "--grid", "jump.nope=1,2"]) == 2
    assert "step 'jump' has no parameter 'nope'" in capsys.readouterr().err
    assert main([*base, "--skip", "jump", "--grid", "jump.rejection_threshold=4,5"]) == 2
    assert "step 'jump' is skipped" in capsys.readouterr().err
    assert main([*base, "--grid", "dq_init.flag_first=1,7"]) == 2  # 6 groups: checked per file
    assert "dq_init.flag_first" in capsys.readouterr().err
    assert not out.exists()


def test_native_backend(sim, tmp_path):
    """The native kernels: the shared ramp is not changed by a point's run."""
    grids = ["jump.rejection_threshold=3,5", "saturation.n_pix_grow_sat=0,2"]
    points = {
        "jump.rejection_threshold=5,saturation.n_pix_grow_sat=2": [
            "jump.rejection_threshold=5",
            "saturation.n_pix_grow_sat=2",
        ]
    }
    sweep_and_compare(sim, tmp_path, grids, ["--backend", "native"], points)


@pytest.mark.parametrize("small", [False, True], ids=["memory", "scratch"])
def test_jump_points_reuse_ramp_fits(sim, tmp_path, caplog, small):
    """A jump-only grid: every point fits the same ramp with its own flags, and the kernels
    keep what an integration without flags gives (its median-rate term and slope) from one
    point to the next; each point still equals a full run of it."""
    caplog.set_level(logging.INFO, "tsogpu.sweep")
    values = (3, 8, 4, 5)
    points = {f"jump.rejection_threshold={r}": [f"jump.rejection_threshold={r}"] for r in values}
    grids = ["jump.rejection_threshold=" + ",".join(map(str, values))]
    budget = small_budget() if small else []
    sweep_and_compare(sim, tmp_path, grids, ["--backend", "native"], points, budget)
    assert "jump keeps what the rejection threshold does not change" in caplog.text
    assert ("kept in a scratch file" in caplog.text) == small


@pytest.mark.gpu
def test_gpu_backend(sim, tmp_path):
    """On a GPU the shared ramp stays on the device; the products equal a full run's there."""
    from tsogpu.launchers import cuda_build

    ok, why = cuda_build.available()
    if not ok:
        pytest.skip(why)
    points = {f"jump.rejection_threshold={r}": [f"jump.rejection_threshold={r}"] for r in (3, 5)}
    grids = ["jump.rejection_threshold=3,5"]
    sweep_and_compare(sim, tmp_path, grids, ["--backend", "cupy"], points)


@pytest.mark.parametrize("small", [False, True], ids=["memory", "scratch"])
def test_miri_rscd_points(simulated, tmp_path, small):
    """MIRI: an rscd parameter reruns from rscd (the ramp after linearity is shared, its
    _removed records kept); each point equals a full run, its _removed too."""
    miri = simulated("miri_image", nints=4, ngroups=7, seed=9)
    points = {f"rscd.skip_int1={n}": [f"rscd.skip_int1={n}"] for n in (0, 2)}
    budget = small_budget() if small else ()
    sweep_and_compare(miri, tmp_path, ["rscd.skip_int1=0,2"], [], points, budget)
    kinds = {p.name.rsplit("_", 1)[1] for p in (tmp_path / "sweep/rscd.skip_int1=2").iterdir()}
    assert kinds == {"rateints.fits", "rate.fits", "removed.fits"}


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 4, 5), (1, 1, 1)])
def test_rate_figures_are_numpys_medians(shape):
    """sweep.csv's median_rate and robust_scatter: np.median of the usable SCI values and
    1.4826 x their median absolute deviation (odd and even counts, flagged and NaN values
    left out; NaN when none is usable)."""
    from tsogpu import dq
    from tsogpu.sweep_summary import rate_figures

    rng = np.random.default_rng(sum(shape))
    sci = rng.normal(5.0, 2.0, shape).astype(np.float32)
    flags = np.zeros(shape, np.uint32)
    flags.flat[::3] = dq.DO_NOT_USE
    sci.flat[1::7] = np.nan
    usable = np.isfinite(sci) & (flags == 0)
    row, _ = rate_figures(sci, np.ones(shape, np.float32), flags, "NIS_SOSS")
    values = sci[usable]
    if values.size == 0:
        assert np.isnan(row["median_rate"]) and np.isnan(row["robust_scatter"])
        return
    median = np.median(values)
    assert row["median_rate"] == float(median)
    assert row["robust_scatter"] == 1.4826 * float(np.median(np.abs(values - median)))
