"""Superbias rescaling (``superbias.scale``, docs/options.md; Eureka!'s bias_correction).

Hand-built frames whose bias is a known multiple of the superbias; the kernels (host build
and, with a GPU, CuPy) against NumPy bit for bit; simulated segments whose bias level is
shifted by a known factor per integration, in memory and in chunks on both backends; the
exposure-wide factors against the same computation over the concatenated segments; the
errors, the configuration, the command line and the ``_biasscale`` product.
"""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import batch, dq, exposure
from tsogpu.algorithms import superbias
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.cli import main
from tsogpu.config import PipelineConfig, dump_toml, from_dict
from tsogpu.errors import ConfigError, InputError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.launchers import superbias as ksuperbias
from tsogpu.pipeline import run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan
from tsogpu.pipeline.segment_wide import exposure_bias_scale
from tsogpu.simulate import simulate

F32 = np.float32
# the bias level of each integration, as a multiple of the superbias (6 integrations)
FACTORS = 1.0 + np.array([0.0, 0.01, -0.008, 0.015, 0.004, -0.012])


# ---------------------------------------------------------------------------------------------
# hand-built truth


def _frames(ny=16, nx=40, seed=0):
    """A bias of ~1e4 DN, and groups that are ``f[i, g]`` times it, with a bright trace."""
    rng = np.random.default_rng(seed)
    bias = (10000.0 + rng.normal(0.0, 50.0, (ny, nx))).astype(F32)
    f = np.array([[1.0, 1.001, 1.002], [0.999, 1.0005, 1.003]])
    data = (f[:, :, None, None] * bias).astype(F32)
    mask = np.zeros((ny, nx), bool)
    mask[5:9] = True
    data[:, :, 5:9] += F32(5000.0)
    return data, bias, f, mask


def test_factors_recover_a_known_scale_and_leave_out_flagged_pixels():
    data, bias, f, mask = _frames()
    ny, nx = bias.shape
    gdq = np.zeros(data.shape, np.uint8)
    pixeldq = np.zeros((ny, nx), np.uint32)
    bias_dq = np.zeros((ny, nx), np.uint32)
    # none of these may count: each would pull a median far off
    pixeldq[0, :10] = dq.DO_NOT_USE
    data[:, :, 0, :10] = 1e6
    pixeldq[15, :] = dq.REFERENCE_PIXEL
    data[:, :, 15] = 0.0
    bias_dq[1, :10] = dq.DO_NOT_USE
    data[:, :, 1, :10] = -1e6
    gdq[1, 2, 2, :] = dq.SATURATED
    data[1, 2, 2, :] = 1e6
    gdq[0, 1, 3, :] = dq.DO_NOT_USE
    data[0, 1, 3, :] = -1e6
    data[1, 0, 4, :30] = np.nan
    bias = bias.copy()
    bias[12, :20] = np.nan  # no superbias value: not sky
    data[:, :, 12, :20] = 1e6
    measured = superbias.scale_factors(data, gdq, pixeldq, bias, bias_dq, mask)
    assert measured.dtype == F32 and measured.shape == (2, 3)
    np.testing.assert_allclose(measured, f, rtol=2e-7)
    # the scaled superbias takes the sky to 0
    out, new_pixeldq, _ = superbias.subtract_superbias(data, pixeldq, bias, bias_dq, scale=measured)
    sky = superbias.sky_region(pixeldq, bias, bias_dq, mask).astype(bool)
    assert np.abs(out[0, 0][sky]).max() < 0.01
    assert (new_pixeldq == pixeldq | bias_dq).all()


def test_groups_without_sky_get_factor_one_and_the_mean_leaves_them_out():
    data, bias, f, mask = _frames()
    gdq = np.zeros(data.shape, np.uint8)
    gdq[1, 1] = dq.SATURATED  # every pixel of one group
    zero = np.zeros(bias.shape, np.uint32)
    measured = superbias.scale_factors(data, gdq, zero, bias, zero, mask)
    assert np.isnan(measured[1, 1]) and np.isfinite(np.delete(measured.ravel(), 4)).all()
    per_int = superbias.applied_factors(measured, "integration")
    assert per_int[1, 1] == 1.0 and (per_int[0] == measured[0]).all()
    mean = superbias.applied_factors(measured, "mean")
    m64 = measured.astype(np.float64)
    want = np.where(np.isnan(m64[1]), m64[0], (m64[0] + m64[1]) / 2.0).astype(F32)
    assert (mean == want).all() and mean[1, 1] == measured[0, 1]
    assert (superbias.mean_factors(np.full((3, 2), np.nan, F32)) == 1.0).all()


def test_empty_sky_or_zero_bias_is_an_input_error():
    data, bias, f, mask = _frames()
    gdq = np.zeros(data.shape, np.uint8)
    zero = np.zeros(bias.shape, np.uint32)
    with pytest.raises(InputError, match="no sky pixel to measure the bias on: of the 640"):
        superbias.scale_factors(data, gdq, zero, bias, zero, np.ones(bias.shape, bool))
    with pytest.raises(InputError, match="no sky pixel"):
        superbias.scale_factors(data, gdq, np.full(bias.shape, dq.DO_NOT_USE, np.uint32), bias,
                                zero, mask)  # fmt: skip
    with pytest.raises(InputError, match="superbias's median over the 480 sky pixels is 0"):
        superbias.scale_factors(data, gdq, zero, np.zeros_like(bias), zero, mask)


# ---------------------------------------------------------------------------------------------
# kernels against NumPy, bit for bit


def _same(kernels, got, want):
    got = np.asarray(kernels.get(got))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_kernels_equal_numpy(kernels):
    rng = np.random.default_rng(7)
    shape = (3, 4, 17, 23)
    bias = rng.normal(12000.0, 40.0, shape[2:]).astype(F32)
    bias[rng.random(shape[2:]) < 0.1] = 12000.0  # ties
    bias[rng.random(shape[2:]) < 0.03] = np.nan
    data = (bias * rng.uniform(0.99, 1.01, shape[:2] + (1, 1))).astype(F32)
    data += rng.normal(0.0, 5.0, shape).astype(F32)
    data[rng.random(shape) < 0.2] = 12000.0
    data[rng.random(shape) < 0.02] = np.nan
    gdq = np.zeros(shape, np.uint8)
    gdq[rng.random(shape) < 0.05] = dq.SATURATED
    gdq[rng.random(shape) < 0.05] = dq.JUMP_DET  # not a reason to leave a pixel out
    gdq[2, 3] = dq.DO_NOT_USE  # a group with no sky: NaN
    pixeldq = np.where(rng.random(shape[2:]) < 0.05, dq.DO_NOT_USE, 0).astype(np.uint32)
    bias_dq = np.where(rng.random(shape[2:]) < 0.05, dq.DO_NOT_USE, 0).astype(np.uint32)
    mask = rng.random(shape[2:]) < 0.3
    zeroframe = data[:, 0].copy()
    zeroframe[rng.random(zeroframe.shape) < 0.1] = 0.0
    zeroframe[0, 0, :3] = -0.0
    want = superbias.scale_factors(data, gdq, pixeldq, bias, bias_dq, mask)
    assert np.isnan(want[2, 3]) and np.isfinite(want[:2]).all()
    got = ksuperbias.scale_factors(
        kernels, kernels.put(data), kernels.put(gdq), kernels.put(pixeldq), kernels.put(bias),
        kernels.put(bias_dq), mask,
    )  # fmt: skip
    _same(kernels, got, want)
    scale = superbias.applied_factors(want, "integration")
    want_sub = superbias.subtract_superbias(data, pixeldq, bias, bias_dq, zeroframe, scale)
    got_sub = ksuperbias.subtract_superbias(
        kernels, kernels.put(data), kernels.put(pixeldq), kernels.put(bias),
        kernels.put(bias_dq), kernels.put(zeroframe), scale,
    )  # fmt: skip
    for g, w in zip(got_sub, want_sub, strict=True):
        _same(kernels, g, w)
    _same(kernels, kernels.put(data), data)  # inputs unchanged


# ---------------------------------------------------------------------------------------------
# simulated segments whose bias is a known multiple of the superbias per integration


def shift_bias(path, out, factors, bias):
    """A copy of the uncal ``path`` at ``out`` with integration i's counts raised by
    ``(factors[i] - 1) * bias``, rounded: its bias is ``factors[i]`` times the superbias."""
    shutil.copy(path, out)
    bias = np.nan_to_num(np.asarray(bias, np.float64))
    with fits.open(out, mode="update") as hdul:
        sci = hdul["SCI"].data.astype(np.float64)
        shift = (np.asarray(factors) - 1.0)[:, None, None, None] * bias
        hdul["SCI"].data = np.clip(np.rint(sci + shift), 0, 65535).astype(np.uint16)
    return out


def load_refs(path, config):
    return segment_references(path, config)[0]


@pytest.fixture(scope="module")
def shifted(simulated, tmp_path_factory):
    sim = simulated("nrs_bots", nints=6, ngroups=3, ncols=64, seed=3)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, skip={"jump"})
    refs = load_refs(sim.uncal, config)
    folder = tmp_path_factory.mktemp("shifted")
    path = shift_bias(sim.uncal, folder / sim.uncal.name, FACTORS, refs["superbias"].arrays["data"])
    return sim, path, config, refs


def after_superbias(path, refs, config, mask=None):
    """The run's result and its ramp right after the superbias step (``mask``: the trace
    mask to use instead of the automatic one)."""
    kept = {}

    def keep(step, seg):
        if step == "superbias":
            kept["data"] = seg.data.copy()

    res = run_segment(replace(read_uncal(path), trace_mask=mask), refs, config, on_step=keep)
    return res, kept["data"]


def test_simulated_factors_follow_the_injected_bias(shifted):
    sim, path, config, refs = shifted
    config = config.with_overrides(sets=["superbias.scale=integration"])
    plain, plain_ramp = after_superbias(sim.uncal, refs, config)
    mask = plain.segment.trace_mask
    moved, moved_ramp = after_superbias(path, refs, config, mask)
    # the bias drift, dark and noise are common to both: the difference is the injected factor
    diff = moved.bias_scale.measured - plain.bias_scale.measured
    truth = np.broadcast_to(FACTORS[:, None] - 1.0, diff.shape)
    assert np.abs(diff - truth).max() < 3e-4, diff - truth
    assert (moved.bias_scale.applied == moved.bias_scale.measured).all()
    # the scaled superbias removes the shift from the sky; jwst's subtraction leaves it
    sky = ~moved.segment.trace_mask & (moved.segment.pixeldq & dq.REFERENCE_PIXEL == 0)
    residual = np.median((moved_ramp - plain_ramp)[:, :, sky], axis=-1)
    assert np.abs(residual).max() < 5.0, residual
    off = config.with_overrides(sets=["superbias.scale=off"])
    unscaled = np.median((after_superbias(path, refs, off)[1] - plain_ramp)[:, :, sky], axis=-1)
    assert np.abs(unscaled[1:]).min() > 30.0, unscaled
    # mean: one factor per group, the mean over the integrations
    mean = after_superbias(path, refs, config.with_overrides(sets=["superbias.scale=mean"]), mask)[
        0
    ]
    assert mean.bias_scale.measured.tobytes() == moved.bias_scale.measured.tobytes()
    want = superbias.mean_factors(moved.bias_scale.measured)
    assert (mean.bias_scale.applied == want).all()
    np.testing.assert_allclose(want, plain.bias_scale.measured.mean(axis=0) + 0.0015, atol=2e-4)


def test_off_is_the_jwst_default(shifted):
    sim, path, config, refs = shifted
    assert PipelineConfig().params("superbias").scale == "off"
    default = run_segment(read_uncal(path), refs, config)
    off = run_segment(read_uncal(path), refs, config.with_overrides(sets=["superbias.scale=off"]))
    for a, b in zip(default.rateints, off.rateints, strict=True):
        assert a.tobytes() == b.tobytes()
    assert default.bias_scale is None and default.segment.trace_mask is None
    on = run_segment(read_uncal(path), refs, config.with_overrides(sets=["superbias.scale=mean"]))
    assert on.rateints[0].tobytes() != default.rateints[0].tobytes()
    # the superbias step skipped: nothing to scale, nothing recorded
    skipped = config.with_overrides(sets=["superbias.scale=mean"], skip=["superbias"])
    assert run_segment(read_uncal(path), refs, skipped).bias_scale is None


@pytest.mark.parametrize("mode", ["integration", "mean"])
def test_chain_equals_numpy_in_memory_and_chunked(shifted, host_kernels, tmp_path, mode):
    sim, path, config, refs = shifted
    config = config.with_overrides(sets=[f"superbias.scale={mode}", "refpix.sky_mask_grow=2"])
    want = run_segment(read_uncal(path), refs, config)
    got = run_segment(read_uncal(path, raw=True), refs, config, ops=KernelOps(host_kernels))
    exp, shape, _ = inspect_uncal(path)
    plan = Plan(0, ints=4, rows=9, cols=40, halo=1, in_memory=False, threads=1)
    runs = [got]
    for ops in (None, KernelOps(host_kernels)):
        args = (path, exp, shape, refs, config, plan, tmp_path, lambda *a: None)
        runs.append(run_chunked(*args, *([ops] if ops else [])))
    for run in runs:
        for a, b in zip(run.rateints, want.rateints, strict=True):
            assert np.asarray(a).tobytes() == b.tobytes()
        assert run.bias_scale.measured.tobytes() == want.bias_scale.measured.tobytes()
        assert run.bias_scale.applied.tobytes() == want.bias_scale.applied.tobytes()
    if mode == "mean":  # every integration the segment's mean, whatever the chunks
        assert (want.bias_scale.applied == want.bias_scale.applied[0]).all()


def test_bad_masks_are_input_errors(shifted, tmp_path):
    sim, path, config, refs = shifted
    shape = inspect_uncal(path)[1]
    np.save(tmp_path / "all.npy", np.ones(shape[2:], np.uint8))
    np.save(tmp_path / "small.npy", np.zeros((5, 5), np.uint8))
    sets = ["superbias.scale=integration"]
    cfg = config.with_overrides(sets=[*sets, f"refpix.sky_mask={tmp_path / 'all.npy'}"])
    with pytest.raises(InputError, match="no sky pixel to measure the bias on"):
        run_segment(read_uncal(path), refs, cfg)
    cfg = config.with_overrides(sets=[*sets, f"refpix.sky_mask={tmp_path / 'small.npy'}"])
    with pytest.raises(InputError, match=r"shape \(5, 5\), the segment's frame is"):
        run_segment(read_uncal(path), refs, cfg)
    cfg = config.with_overrides(sets=[*sets, f"refpix.sky_mask={tmp_path / 'missing.npy'}"])
    with pytest.raises(InputError, match="refpix.sky_mask: .*missing.npy: file not found"):
        run_segment(read_uncal(path), refs, cfg)


# ---------------------------------------------------------------------------------------------
# the exposure's factors


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    """Two segments of one exposure (3 integrations each), their bias shifted by FACTORS."""
    raw = tmp_path_factory.mktemp("raw")
    folder = tmp_path_factory.mktemp("exposure")
    for k in (1, 2):
        sim = simulate(
            "nrs_bots", raw, nints=3, ngroups=3, ncols=64, seed=9, segment=(k, 2),
            full_frame_refs=False,
        )  # fmt: skip
    refs = {t: str(p) for t, p in sim.refs.items()}
    paths = sorted(raw.glob("*_uncal.fits"))
    bias = load_refs(paths[0], PipelineConfig(refs=refs))["superbias"].arrays["data"]
    paths = [
        shift_bias(p, folder / p.name, FACTORS[3 * k : 3 * k + 3], bias)
        for k, p in enumerate(paths)
    ]
    name = batch.group_exposures(paths)[1][0].key
    return paths, refs, name


def exposure_config(refs, sets=()):
    return PipelineConfig(
        refs=refs, threads=1, max_memory=4 * 2**30, skip={"jump"}, exposure_wide=True
    ).with_overrides(sets=["superbias.scale=exposure", *sets])


def test_exposure_factors_are_those_of_the_concatenated_segments(segments, tmp_path):
    paths, refs, name = segments
    config = exposure_config(refs)
    sh = exposure.first_pass(paths, config, name, tmp_path)
    assert sh.bias_scale.dtype == F32 and sh.bias_scale.shape == (6, 3)
    # each segment alone, with the exposure's trace mask: per integration, the same factors
    per_int = config.with_overrides(sets=["superbias.scale=integration"], exposure_wide=False)
    own = [
        run_segment(read_uncal(p), load_refs(p, per_int), per_int, shared=sh).bias_scale.measured
        for p in paths
    ]
    assert np.concatenate(own).tobytes() == sh.bias_scale.tobytes()
    # the injected factors show through, to the simulated bias drift (8 DN rms per
    # integration, 6e-4 of the bias), which the factors also follow
    diff = sh.bias_scale - sh.bias_scale[0]
    assert np.abs(diff - (FACTORS - FACTORS[0])[:, None]).max() < 3e-3
    # pass 2 applies their mean over the exposure, per group, in every segment
    mean = superbias.mean_factors(np.concatenate(own))
    want = np.concatenate(own).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(mean, want, rtol=1e-7)
    for p in paths:
        res = run_segment(read_uncal(p), load_refs(p, config), config, shared=sh)
        assert (res.bias_scale.applied == mean).all()
    assert (exposure_bias_scale(sh, 2).applied == mean).all()
    # chunked, native, saved and read back: the same
    again = exposure.first_pass(paths, config, name, tmp_path, chunk_ints=2)
    assert again.bias_scale.tobytes() == sh.bias_scale.tobytes() and again.hash == sh.hash
    native = exposure.first_pass(paths, config.with_overrides(backend="native"), name, tmp_path)
    assert native.bias_scale.tobytes() == sh.bias_scale.tobytes() and native.hash == sh.hash
    loaded = exposure.load(exposure.save(sh, tmp_path / "x_shared.fits"))
    assert loaded.bias_scale.tobytes() == sh.bias_scale.tobytes() and loaded.hash == sh.hash
    # the user's mask: used by pass 1 as by pass 2
    mask = np.zeros(sh.trace_mask.shape, np.uint8)
    mask[10:22] = 1
    np.save(tmp_path / "mask.npy", mask)
    user = exposure_config(refs, [f"refpix.sky_mask={tmp_path / 'mask.npy'}"])
    sh_user = exposure.first_pass(paths, user, name, tmp_path)
    per_int = user.with_overrides(sets=["superbias.scale=integration"], exposure_wide=False)
    own = [
        run_segment(read_uncal(p), load_refs(p, per_int), per_int).bias_scale.measured
        for p in paths
    ]
    assert np.concatenate(own).tobytes() == sh_user.bias_scale.tobytes()
    with pytest.raises(ConfigError, match="needs bias scale factors from the exposure's first"):
        run_segment(read_uncal(paths[0]), load_refs(paths[0], config), config)


def test_cli_exposure_wide_both_backends_write_the_factors(segments, tmp_path, capsys):
    paths, refs, name = segments
    ref_args = [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    out = {}
    for backend in ("numpy", "native"):
        folder = tmp_path / backend
        args = ["run", *map(str, paths), "--out", str(folder), *ref_args, "--threads", "1"]
        args += ["--exposure-wide", "--set", "superbias.scale=exposure", "--skip", "jump"]
        assert main([*args, "--backend", backend, "-q"]) == 0
        out[backend] = folder
    sh = exposure.load(out["numpy"] / exposure.shared_name(name))
    mean = superbias.mean_factors(sh.bias_scale)
    for k, path in enumerate(paths):
        stem = path.name.removesuffix("_uncal.fits")
        with (
            fits.open(out["numpy"] / f"{stem}_biasscale.fits") as a,
            fits.open(out["native"] / f"{stem}_biasscale.fits") as b,
        ):
            for ext in ("APPLIED", "MEASURED", "MASK"):
                assert a[ext].data.tobytes() == b[ext].data.tobytes()
            assert (a["APPLIED"].data == mean).all()
            assert (
                a["MEASURED"].data.astype(F32).tobytes()
                == sh.bias_scale[3 * k : 3 * k + 3].tobytes()
            )
            assert a[0].header["SBSCALE"] == "exposure" and a[0].header["INTSTART"] == 3 * k + 1
            np.testing.assert_array_equal(a["MASK"].data, sh.trace_mask)
        with (
            fits.open(out["numpy"] / f"{stem}_rateints.fits") as a,
            fits.open(out["native"] / f"{stem}_rateints.fits") as b,
        ):
            for ext in ("SCI", "ERR", "DQ"):
                assert a[ext].data.tobytes() == b[ext].data.tobytes()
            assert json.loads(a[0].header["TSOPARS"])["superbias"]["scale"] == "exposure"
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------
# configuration, command line


def test_config_parses_validates_and_round_trips(tmp_path):
    cfg = PipelineConfig().with_overrides(sets=["superbias.scale=mean"])
    assert cfg.params("superbias").scale == "mean"
    assert cfg.as_dict()["superbias"] == {"scale": "mean"}
    assert from_dict(__import__("tomllib").loads(dump_toml(cfg))) == cfg
    assert from_dict({"superbias": {"scale": "integration"}}).params("superbias").scale == (
        "integration"
    )
    with pytest.raises(ConfigError, match="superbias.scale must be one of off, integration, mean"):
        PipelineConfig().with_overrides(sets=["superbias.scale=smooth"])
    with pytest.raises(ConfigError, match="superbias.scale=exposure needs the exposure-wide"):
        PipelineConfig().with_overrides(sets=["superbias.scale=exposure"])
    both = PipelineConfig(exposure_wide=True).with_overrides(sets=["superbias.scale=exposure"])
    assert from_dict(__import__("tomllib").loads(dump_toml(both))) == both


def test_cli_help_lists_the_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "superbias: scale=off" in capsys.readouterr().out


def test_cli_run_writes_the_factors(shifted, tmp_path, capsys):
    sim, path, config, refs = shifted
    ref_args = [a for t, p in config.refs.items() for a in ("--ref", f"{t}={p}")]
    args = ["run", str(path), "--out", str(tmp_path), *ref_args, "--skip", "jump", "-q"]
    assert main([*args, "--set", "superbias.scale=integration"]) == 0
    stem = path.name.removesuffix("_uncal.fits")
    want = run_segment(
        read_uncal(path), refs, config.with_overrides(sets=["superbias.scale=integration"])
    )
    with fits.open(tmp_path / f"{stem}_biasscale.fits") as hdul:
        assert hdul["APPLIED"].data.astype(F32).tobytes() == want.bias_scale.applied.tobytes()
        assert hdul["MEASURED"].data.shape == (6, 3)
        assert json.loads(hdul[0].header["TSOPARS"])["superbias"]["scale"] == "integration"
    h = fits.getheader(tmp_path / f"{stem}_rateints.fits")
    assert json.loads(h["TSOPARS"])["superbias"]["scale"] == "integration"
    capsys.readouterr()
