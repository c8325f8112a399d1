"""Time-domain jump detection (``jump.time_domain``, exoTEDRF's running median).

Hand-built pixels with the expected flags worked out (tsogpu/algorithms/tdjump.py), the
kernel (kernels/tdjump.cu) against the NumPy code bit for bit, and the option end to end:
in the pipeline on both backends, chunked and whole, and from the command line.
"""

import json

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.algorithms.tdjump import flag_time_domain
from tsogpu.backends import NumpyOps
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.cli import main
from tsogpu.config import Jump, PipelineConfig, from_dict
from tsogpu.errors import ConfigError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.launchers import tdjump as ctd
from tsogpu.pipeline import run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan

JUMP, SAT, DNU = dq.JUMP_DET, dq.SATURATED, dq.DO_NOT_USE


def _noisy_ramps(nints, ngroups, ny=2, nx=3, rate=100.0, sigma=5.0, seed=0):
    """Ramps of ``rate`` DN per group with Gaussian noise on every group (float32)."""
    rng = np.random.default_rng(seed)
    t = np.arange(ngroups, dtype=np.float64)[None, :, None, None]
    data = rate * t + rng.normal(0.0, sigma, (nints, ngroups, ny, nx))
    return data.astype(np.float32)


def _flags(data, gdq=None, window=5, threshold=10.0):
    gdq = np.zeros(data.shape, np.uint8) if gdq is None else gdq
    return flag_time_domain(data, gdq, window=window, threshold=threshold)


def _jumps(result):
    """Sorted (int, group, y, x) of the JUMP bits."""
    return sorted(map(tuple, np.argwhere(result.groupdq & JUMP).tolist()))


# --------------------------------------------------------------------------------------------
# hand-built pixels


def test_a_cosmic_ray_in_one_integration_of_a_2_group_ramp_is_flagged():
    data = _noisy_ramps(30, 2)
    data[12, 1, 1, 2] += 500.0
    out = _flags(data)
    assert _jumps(out) == [(12, 1, 1, 2)]
    assert out.jumps_per_pixel[1, 2] == 1 and out.jumps_per_pixel.sum() == 1


def test_a_3_group_ramp_is_flagged_at_the_group_after_the_jump_only():
    data = _noisy_ramps(30, 3)
    data[5, 1:, 0, 0] += 400.0  # hit between groups 0 and 1: every later group is higher
    data[9, 2:, 0, 1] += 400.0  # hit between groups 1 and 2
    data[14, :, 1, 1] += 400.0  # hit before the first read: the ramp's slope is unchanged
    assert _jumps(_flags(data)) == [(5, 1, 0, 0), (9, 2, 0, 1)]


def test_a_transit_across_integrations_is_not_flagged():
    nints = 200
    data = _noisy_ramps(nints, 2, rate=2.0e4, sigma=5.0)
    i = np.arange(nints)
    # a 2% transit with ingress and egress over 6 integrations, and a slow drift of 5%
    depth = 0.02 * np.clip(np.minimum(i - 60, 140 - i) / 6.0, 0.0, 1.0)
    flux = (1.0 - depth) * (1.0 + 0.05 * i / nints)
    data[:, 1] = data[:, 0] + (data[:, 1] - data[:, 0]) * flux[:, None, None].astype(np.float32)
    assert _jumps(_flags(data)) == []
    # the same pixels with a cosmic ray in transit: found
    data[100, 1, 0, 0] += 300.0
    assert _jumps(_flags(data)) == [(100, 1, 0, 0)]


@pytest.mark.parametrize("hit", [0, 1, 28, 29])
def test_the_window_is_shifted_inward_at_the_segment_ends(hit):
    data = _noisy_ramps(30, 2)
    data[hit, 1, 0, 1] += 500.0
    assert _jumps(_flags(data)) == [(hit, 1, 0, 1)]


def test_a_window_wider_than_the_segment_takes_every_integration():
    data = _noisy_ramps(12, 2, seed=3)
    data[6, 1, 0, 0] += 500.0
    assert _jumps(_flags(data, window=63)) == [(6, 1, 0, 0)]


def test_saturated_and_do_not_use_groups_are_left_out():
    data = _noisy_ramps(30, 3)
    gdq = np.zeros(data.shape, np.uint8)
    data[7, 2, 0, 0] += 5000.0
    gdq[7, 2, 0, 0] = SAT  # saturated: not a jump
    data[8, 1:, 0, 1] += 500.0
    gdq[8, 0, 0, 1] = DNU  # difference 0 unusable; difference 1 unchanged
    data[20, 1:, 1, 0] += 500.0
    gdq[20, 1, 1, 0] = JUMP  # already flagged: kept, not counted again
    out = _flags(data, gdq)
    assert _jumps(out) == [(20, 1, 1, 0)]
    assert out.jumps_per_pixel.sum() == 0
    assert (out.groupdq & ~np.uint8(JUMP) == gdq & ~np.uint8(JUMP)).all()


def test_no_scatter_no_flags():
    # fewer than 3 integrations: no point-to-point scatter
    data = _noisy_ramps(2, 2)
    data[0, 1] += 1e4
    assert _jumps(_flags(data)) == [] and np.isnan(_flags(data).scatter).all()
    # noise-free ramps: a scatter of 0 (exoTEDRF divides by infinity there)
    data = np.broadcast_to(np.float32([0.0, 100.0])[None, :, None, None], (20, 2, 1, 1)).copy()
    data[10, 1] += 1e4
    out = _flags(data)
    assert _jumps(out) == [] and out.scatter[0, 0, 0] == 0.0


def test_inputs_are_not_modified():
    data = _noisy_ramps(20, 2)
    data[3, 1, 0, 0] += 500.0
    gdq = np.zeros(data.shape, np.uint8)
    before = data.copy(), gdq.copy()
    _flags(data, gdq)
    assert np.array_equal(data, before[0]) and np.array_equal(gdq, before[1])


# --------------------------------------------------------------------------------------------
# parameters


def test_parameters_default_off_and_are_checked():
    assert Jump().time_domain == "off"
    config = PipelineConfig().with_overrides(
        sets=["jump.time_domain=alone", "jump.time_window=7", "jump.time_threshold=8"]
    )
    p = config.params("jump")
    assert (p.time_domain, p.time_window, p.time_threshold) == ("alone", 7, 8.0)
    assert from_dict({"jump": {"time_domain": "with_ramp"}}).params("jump").time_domain == (
        "with_ramp"
    )
    for bad, match in [
        ("jump.time_domain=on", "jump.time_domain must be one of off, alone, with_ramp"),
        ("jump.time_window=4", "odd integer"),
        ("jump.time_window=65", "odd integer"),
        ("jump.time_threshold=0", "finite number > 0,"),
        ("jump.time_threshold=inf", "finite number > 0,"),
    ]:
        with pytest.raises(ConfigError, match=match):
            PipelineConfig().with_overrides(sets=[bad])


# --------------------------------------------------------------------------------------------
# the kernel against the NumPy code


def _random_case(shape, seed):
    rng = np.random.default_rng(seed)
    nints, ngroups = shape[:2]
    data = rng.normal(0.0, 10.0 ** rng.uniform(-2, 3, shape), shape)
    data += (rng.random(shape) < 0.03) * 10.0 ** rng.uniform(1, 4, shape)
    data = np.cumsum(data, axis=1)
    # exact ties (quantised values) and non-finite values
    ties = rng.random(shape) < 0.3
    data[ties] = np.round(data[ties] / 10.0) * 10.0
    data = data.astype(np.float32)
    data[rng.random(shape) < 0.01] = np.nan
    data[rng.random(shape) < 0.002] = np.inf
    gdq = np.zeros(shape, np.uint8)
    for bit, p in ((SAT, 0.03), (DNU, 0.03), (JUMP, 0.03), (dq.PIXEL["PERSISTENCE"], 0.02)):
        gdq[rng.random(shape) < p] |= np.uint8(bit)
    return data, gdq


@pytest.mark.parametrize("scratch_words", [ctd.SCRATCH_WORDS, 50])
@pytest.mark.parametrize("window", [3, 5, 9, 63])
@pytest.mark.parametrize(
    "shape", [(1, 2, 2, 3), (2, 3, 3, 2), (3, 2, 4, 5), (12, 3, 5, 7), (101, 2, 6, 11)]
)
def test_kernel_equals_numpy(kernels, monkeypatch, shape, window, scratch_words):
    monkeypatch.setattr(ctd, "SCRATCH_WORDS", scratch_words)  # 50: many batches
    data, gdq = _random_case(shape, sum(shape) + window)
    for threshold in (2.0, 10.0):
        want = flag_time_domain(data, gdq, window=window, threshold=threshold)
        dev_data, dev_gdq = kernels.put(data), kernels.put(gdq)
        got = ctd.flag_time_domain(kernels, dev_data, dev_gdq, window=window, threshold=threshold)
        np.testing.assert_array_equal(kernels.get(dev_data), data)  # inputs intact
        np.testing.assert_array_equal(kernels.get(dev_gdq), gdq)
        np.testing.assert_array_equal(kernels.get(got.groupdq), want.groupdq)
        counts = kernels.get(got.jumps_per_pixel)
        assert counts.dtype == np.int32
        np.testing.assert_array_equal(counts, want.jumps_per_pixel)
        scatter = kernels.get(got.scatter)
        assert scatter.dtype == np.float64 and scatter.shape == want.scatter.shape
        same = (scatter == want.scatter) | (np.isnan(scatter) & np.isnan(want.scatter))
        assert same.all()


# --------------------------------------------------------------------------------------------
# the option in the pipeline


@pytest.fixture(scope="module", params=[2, 3])
def short(request, simulated):
    sim = simulated("nrs_bots", nints=24, ngroups=request.param, ncols=64, seed=71, cr_rate=1e-2)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    return sim, config, exposure, shape, refs


@pytest.mark.parametrize("mode", ["alone", "with_ramp"])
def test_pipeline_backends_and_chunks_agree(short, host_kernels, tmp_path, mode):
    sim, config, exposure, shape, refs = short
    config = config.with_overrides(sets=[f"jump.time_domain={mode}"])
    want = run_segment(read_uncal(sim.uncal), refs, config, ops=NumpyOps)
    got = run_segment(read_uncal(sim.uncal), refs, config, ops=KernelOps(host_kernels))
    plan = Plan(0, ints=5, rows=7, cols=20, halo=1, in_memory=False, threads=2)
    chunked = run_chunked(
        sim.uncal, exposure, shape, refs, config.with_overrides(save_ramp=True), plan,
        tmp_path, lambda *a: None,
    )  # fmt: skip
    assert want.step_status["jump"] == "COMPLETE"
    for other in (got, chunked):
        np.testing.assert_array_equal(other.segment.groupdq, want.segment.groupdq)
        assert other.primary_cosmic_rays == want.primary_cosmic_rays
        for a, b in zip(other.rateints, want.rateints, strict=True):
            np.testing.assert_array_equal(a, b)
    # the union: every up-the-ramp flag is kept
    off = run_segment(read_uncal(sim.uncal), refs, PipelineConfig(refs=config.refs))
    ramp_flags = (off.segment.groupdq & JUMP) != 0
    assert ramp_flags.any() == (shape[1] > 2)  # jwst skips jump for 2 groups
    if mode == "with_ramp":
        assert (want.segment.groupdq[ramp_flags] & JUMP).all()
    # most injected cosmic rays are found (amplitudes of 100 to 10^4 DN)
    cr = np.load(sim.truth)["cr"]
    found = want.segment.groupdq[cr["int"], cr["group"], cr["y"], cr["x"]] & JUMP
    assert cr.size > 20 and np.count_nonzero(found) >= 0.7 * cr.size


def test_cli_numpy_and_native_give_identical_products(simulated, tmp_path):
    sim = simulated("nrs_bots", nints=24, ngroups=2, ncols=64, seed=71, cr_rate=1e-2)
    refs = [a for t, p in sim.refs.items() for a in ("--ref", f"{t}={p}")]
    out = {}
    for backend in ("numpy", "native"):
        folder = tmp_path / backend
        args = ["run", str(sim.uncal), "--out", str(folder), "-q", "--backend", backend]
        assert main([*args, *refs, "--set", "jump.time_domain=alone", "--save-ramp"]) == 0
        out[backend] = folder
    for suffix in ("ramp", "rateints", "rate"):
        name = sim.uncal.name.replace("_uncal", f"_{suffix}")
        with fits.open(out["numpy"] / name) as a, fits.open(out["native"] / name) as b:
            for ext in ("SCI", "DQ", "ERR", "GROUPDQ", "PIXELDQ"):
                if ext in a:
                    assert a[ext].data.tobytes() == b[ext].data.tobytes(), (suffix, ext)
            params = json.loads(a[0].header["TSOPARS"])["jump"]
            assert params["time_domain"] == "alone" and params["time_window"] == 5
            assert a[0].header["S_JUMP"] == "COMPLETE"
    with fits.open(out["numpy"] / sim.uncal.name.replace("_uncal", "_ramp")) as a:
        assert (a["GROUPDQ"].data & JUMP).any()
