"""Exposure-wide two-pass processing (``exposure_wide``): pass 1 over three simulated segments
of one exposure, pass 2 on each, on both backends, in memory and in chunks, from the command
line and on a real Dask cluster; the defaults unchanged."""

import json
import os

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import batch, exposure
from tsogpu.algorithms import oneoverf, saturation
from tsogpu.backends import NumpyOps
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.cli import main
from tsogpu.config import PipelineConfig, dump_toml, from_dict
from tsogpu.errors import ConfigError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.pipeline import process_file, run_prejump, run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan
from tsogpu.pipeline.segment_wide import sky_trace_mask
from tsogpu.simulate import simulate

NSEG = 3
GROW0 = "saturation.n_pix_grow_sat=0"  # the truth is jwst's flags without growth


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    """Three segments of one exposure, the trace past full well (saturation varies by
    integration), a deep transit in the middle segment (it saturates later there)."""
    folder = tmp_path_factory.mktemp("exposure")
    for k in range(1, NSEG + 1):
        sim = simulate(
            "nrs_bots",
            folder,
            nints=6,
            ngroups=5,
            ncols=64,
            seed=5,
            segment=(k, NSEG),
            n_saturating=12,
            peak_fill=1.5,
            transit_depth=0.3,
            full_frame_refs=False,
        )
    paths = sorted(folder.glob("*_uncal.fits"))
    refs = {t: str(p) for t, p in sim.refs.items()}
    name = batch.group_exposures(paths)[1][0].key
    return paths, refs, name


def config_for(refs, sets=(), **kw):
    # threads and the budget given: recorded in TSOPARS, so every run uses the same
    return PipelineConfig(refs=refs, threads=1, max_memory=4 * 2**30, **kw).with_overrides(
        sets=sets
    )


def load_refs(path, config):
    exp, _, _ = inspect_uncal(path)
    return segment_references(path, config)[0]


def truth_first(path, ngroups):
    t = np.load(str(path).replace("_uncal.fits", "_truth.npz"))["sat_group"].astype(np.int32)
    return np.where(t < 0, ngroups, t)


def same_shared(a, b):
    assert a.hash == b.hash and a.key == b.key
    for x, y in ((a.saturation_map, b.saturation_map), (a.median_frame, b.median_frame)):
        assert x.tobytes() == y.tobytes()
    assert (a.trace_mask == b.trace_mask).all()


@pytest.fixture(scope="module")
def shared(segments, tmp_path_factory):
    paths, refs, name = segments
    config = config_for(refs, [GROW0], exposure_wide=True)
    scratch = tmp_path_factory.mktemp("scratch")
    return config, exposure.first_pass(paths, config, name, scratch)


def test_first_pass_map_is_the_minimum_over_segments_and_the_truth(segments, shared):
    paths, refs, name = segments
    config, sh = shared
    ngroups = 5
    own = []
    for path in paths:
        seg = run_prejump(read_uncal(path), load_refs(path, config), config)
        own.append(saturation.saturation_map(seg.groupdq, "pixel"))
    np.testing.assert_array_equal(sh.saturation_map, np.minimum.reduce(own))
    # a real test: some segment alone would use later groups than the exposure
    assert any((m != sh.saturation_map).any() for m in own)
    assert len(np.unique(sh.saturation_map)) > 2
    truth = np.minimum.reduce([truth_first(p, ngroups).min(axis=0) for p in paths])
    np.testing.assert_array_equal(sh.saturation_map, truth)
    assert (
        sh.saturation_map_for("column").tolist()
        == [list(sh.saturation_map.min(axis=0))] * sh.saturation_map.shape[0]
    )
    assert sh.segments == tuple(p.name for p in paths) and sh.exposure == name


def test_median_frame_and_trace_mask(segments, shared):
    paths, refs, name = segments
    config, sh = shared
    stack = np.concatenate([oneoverf.last_minus_first(read_uncal(p, raw=True).data) for p in paths])
    median = np.median(stack, axis=0)
    assert sh.median_frame.dtype == np.float32 and sh.median_frame.tobytes() == median.tobytes()
    sky = config.params("refpix")
    want = oneoverf.trace_mask_from_image(median, sky.sky_threshold, sky.sky_mask_grow)
    np.testing.assert_array_equal(sh.trace_mask, want)
    # the trace: each science column's brightest row of the source
    flux = np.load(str(paths[0]).replace("_uncal.fits", "_truth.npz"))["flux"]
    cols = np.flatnonzero(flux.max(axis=0) > 0.2 * flux.max())
    assert cols.size > 40 and sh.trace_mask[np.argmax(flux, axis=0)[cols], cols].all()
    assert 0 < sh.trace_mask.mean() < 0.7


def test_one_segment_mask_is_the_sky_options_own(segments, tmp_path):
    """An exposure of one segment: the mask refpix.sky_method makes for that segment alone."""
    paths, refs, name = segments
    sets = ["refpix.sky_method=glbs", "refpix.sky_threshold=3", "refpix.sky_mask_grow=2"]
    config = config_for(refs, sets, exposure_wide=True)
    sh = exposure.first_pass(paths[:1], config, name, tmp_path)
    shape = inspect_uncal(paths[0])[1]
    data = read_uncal(paths[0]).data
    own = sky_trace_mask(config, shape, lambda: oneoverf.last_minus_first(data))
    np.testing.assert_array_equal(sh.trace_mask, own)
    assert sky_trace_mask(config, shape, None, sh) is not None


def test_first_pass_chunked_native_and_saved_are_identical(segments, shared, tmp_path):
    paths, refs, name = segments
    config, sh = shared
    same_shared(exposure.first_pass(paths, config, name, tmp_path, chunk_ints=4), sh)
    same_shared(exposure.first_pass(paths, config, name, tmp_path, chunk_ints=1), sh)
    from tsogpu.launchers import host_build

    ok, why = host_build.available()
    if ok:
        native_config = config.with_overrides(backend="native")
        same_shared(exposure.first_pass(paths, native_config, name, tmp_path), sh)
    from tsogpu.launchers import cuda_build

    if cuda_build.available()[0]:
        same_shared(
            exposure.first_pass(paths, config.with_overrides(backend="cupy"), name, tmp_path), sh
        )
    path = exposure.save(sh, tmp_path / exposure.shared_name(name))
    same_shared(exposure.load(path), sh)
    assert fits.getval(path, "TSOSHASH") == sh.hash
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    if not ok:
        pytest.skip(f"native backend: {why}")


def test_pass2_both_backends_in_memory_and_chunked(segments, shared, kernels, tmp_path):
    paths, refs, _ = segments
    config, sh = shared
    config = config.with_overrides(sets=["saturation.fixed_map=pixel"])
    path = paths[1]  # the transit segment: its own map differs from the exposure's
    refs = load_refs(path, config)
    want = run_segment(read_uncal(path), refs, config, shared=sh)
    first = saturation.first_saturated_group(want.segment.groupdq)
    np.testing.assert_array_equal(first, np.broadcast_to(sh.saturation_map, first.shape))
    alone = run_segment(read_uncal(path), refs, config)
    assert (saturation.first_saturated_group(alone.segment.groupdq) != first).any()
    got = run_segment(read_uncal(path, raw=True), refs, config, ops=KernelOps(kernels), shared=sh)
    np.testing.assert_array_equal(np.asarray(got.segment.groupdq), want.segment.groupdq)
    exp, shape, _ = inspect_uncal(path)
    plan = Plan(0, ints=4, rows=5, cols=40, halo=1, in_memory=False, threads=1)
    results = [got]
    for ops in (NumpyOps, KernelOps(kernels)):
        args = (path, exp, shape, refs, config, plan, tmp_path, lambda *a: None, ops)
        results.append(run_chunked(*args, shared=sh))
    for res in results:
        for a, b in zip(res.rateints, want.rateints, strict=True):
            assert np.asarray(a).tobytes() == b.tobytes()


def test_cli_run_exposure_wide(segments, tmp_path, capsys):
    paths, refs, name = segments
    out = tmp_path / "out"
    ref_args = [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    args = ["run", *map(str, paths), "--out", str(out), *ref_args, "--threads", "1"]
    args += ["--max-memory", "4G", "--exposure-wide", "--set", "saturation.fixed_map=pixel"]
    assert main([*args, "--save-ramp", "-q"]) == 0
    shared_path = out / exposure.shared_name(name)
    sh = exposure.load(shared_path)
    assert sh.segments == tuple(p.name for p in paths)
    for path in paths:
        stem = path.name.removesuffix("_uncal.fits")
        with fits.open(out / f"{stem}_ramp.fits") as hdul:
            first = saturation.first_saturated_group(hdul["GROUPDQ"].data)
        np.testing.assert_array_equal(first, np.broadcast_to(sh.saturation_map, first.shape))
        h = fits.getheader(out / f"{stem}_rateints.fits")
        assert h["TSOSHARE"] == shared_path.name and h["TSOSHASH"] == sh.hash
        assert json.loads(h["TSOPARS"])["exposure_wide"] is True
    # a rerun reuses the first pass
    before = shared_path.stat().st_mtime_ns
    assert main([*args, "-q"]) == 0
    assert shared_path.stat().st_mtime_ns == before
    # one segment fewer: another first pass, other products
    assert main([*args[:1], *map(str, paths[:2]), *args[1 + NSEG :], "-q"]) == 0
    sh2 = exposure.load(shared_path)
    assert sh2.segments == tuple(p.name for p in paths[:2]) and sh2.hash != sh.hash
    stem = paths[0].name.removesuffix("_uncal.fits")
    assert fits.getval(out / f"{stem}_rate.fits", "TSOSHASH") == sh2.hash
    capsys.readouterr()


def test_defaults_and_config(segments, tmp_path):
    paths, refs, _ = segments
    assert PipelineConfig().exposure_wide is False
    assert PipelineConfig().as_dict()["exposure_wide"] is False
    cfg = PipelineConfig(exposure_wide=True)
    assert from_dict(__import__("tomllib").loads(dump_toml(cfg))) == cfg
    assert from_dict({"exposure_wide": True}).exposure_wide is True
    with pytest.raises(ConfigError, match="exposure_wide must be true or false"):
        from_dict({"exposure_wide": "yes"})
    config = config_for(refs)
    written = process_file(paths[0], tmp_path, config)
    h = fits.getheader(written[0])
    assert "TSOSHARE" not in h and "TSOSHASH" not in h
    assert not list(tmp_path.glob("*_shared.fits"))
    with pytest.raises(ConfigError, match="exposure_wide needs the exposure's first pass"):
        process_file(paths[0], tmp_path, config.with_overrides(exposure_wide=True))


@pytest.mark.slow
def test_batch_exposure_wide_equals_run(segments, tmp_path):
    distributed = pytest.importorskip("distributed", reason="tsogpu[dask] is not installed")
    from test_batch import assert_same_product

    paths, refs, name = segments
    config = config_for(refs, ["saturation.fixed_map=column"], exposure_wide=True)
    serial = tmp_path / "serial"
    sh = exposure.load_or_run(paths, serial, config, name)
    want = [p for path in paths for p in process_file(path, serial, config, shared=sh)]
    out = tmp_path / "batch"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        report = batch.run_batch(paths, out, config, client)
        assert report.ok and [r["status"] for r in report.results] == ["ok"] * NSEG
        for p in want:
            assert_same_product(out / p.name, p)
        assert exposure.load(out / exposure.shared_name(name)).hash == sh.hash
        report = batch.run_batch(paths, out, config, client)
        assert [r["status"] for r in report.results] == ["skipped"] * NSEG
        # the run's products are complete for the batch too
        report = batch.run_batch(paths, serial, config, client)
        assert [r["status"] for r in report.results] == ["skipped"] * NSEG
