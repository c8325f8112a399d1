"""The whole chain on the kernels: every step through ``KernelOps`` (the CUDA backend's
launchers) gives the NumPy backend's products. Here on the host build of the kernels; on a
GPU machine the same bodies run through CuPy (the ``kernels`` fixture)."""

import numpy as np
import pytest

from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.config import PipelineConfig
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.pipeline import run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan

CASES = {
    "nrs_bots": dict(nints=4, ngroups=6, ncols=64, seed=41, cr_rate=3e-3),
    "nrs_bots_sigclip": dict(nints=100, ngroups=4, ncols=16, seed=42, cr_rate=3e-3),
    "niriss_soss": dict(nints=3, ngroups=9, ncols=48, seed=43, cr_rate=3e-3),
    "nircam_grism": dict(nints=3, ngroups=5, ncols=96, seed=44, zeroframe=True),
    "nircam_grism_nframes": dict(nints=2, ngroups=5, ncols=64, seed=45, nframes=2, groupgap=1),
}


def _same(a, b, name, device):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, name
    if a.dtype.kind != "f":
        np.testing.assert_array_equal(a, b, err_msg=name)
        return
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    np.testing.assert_array_equal(nan_a, nan_b, err_msg=f"{name}: NaN positions")
    bits = a.view(np.uint32 if a.itemsize == 4 else np.uint64)
    other = b.view(bits.dtype)
    # on the host even NaN payloads agree; a GPU gives canonical NaNs
    where = ~nan_a if device else slice(None)
    assert np.array_equal(bits[where], other[where]), f"{name}: bits differ"


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, simulated):
    name = request.param
    mode = name.split("_")[0] + "_" + name.split("_")[1]
    sim = simulated(mode, **CASES[name])
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    return sim, config, exposure, shape, refs, run_segment(read_uncal(sim.uncal), refs, config)


def _compare(got, want, device):
    assert got.step_status == want.step_status
    assert got.primary_cosmic_rays == want.primary_cosmic_rays
    assert got.extended_emission_events == want.extended_emission_events
    for product in ("rateints", "rate"):
        for i, (a, b) in enumerate(zip(getattr(got, product), getattr(want, product), strict=True)):
            _same(a, b, f"{product}[{i}]", device)
    _same(got.segment.pixeldq, want.segment.pixeldq, "pixeldq", device)


def test_in_memory_chain_equals_numpy(case, kernels):
    sim, config, exposure, shape, refs, want = case
    ops = KernelOps(kernels)
    got = run_segment(read_uncal(sim.uncal, raw=True), refs, config, ops=ops)
    assert want.step_status["jump"] == "COMPLETE" and want.step_status["refpix"] == "COMPLETE"
    _compare(got, want, kernels.name == "cuda")
    for name in ("data", "groupdq", "zeroframe"):
        a, b = getattr(got.segment, name), getattr(want.segment, name)
        assert (a is None) == (b is None)
        if a is not None:
            _same(a, b, name, kernels.name == "cuda")


def test_chunked_chain_equals_numpy(case, kernels, tmp_path):
    sim, config, exposure, shape, refs, want = case
    plan = Plan(0, ints=2, rows=5, cols=40, halo=1, in_memory=False, threads=1)
    got = run_chunked(
        sim.uncal,
        exposure,
        shape,
        refs,
        config,
        plan,
        tmp_path,
        lambda *a: None,
        KernelOps(kernels),
    )
    _compare(got, want, kernels.name == "cuda")
