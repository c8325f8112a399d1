"""Sky-pixel reference correction (``refpix.sky_method``, docs/options.md).

Hand-built frames with a known line pattern, odd/even offsets and a masked bright trace; the
kernels (kernels/oneoverf.cu, host build and, with a GPU, CuPy) against NumPy bit for bit; a
simulated segment with injected 1/f against its truth, in memory and in chunks on both
backends; the configuration, the ``_oneoverf`` product and the defaults.
"""

import json

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.algorithms import oneoverf
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.cli import main
from tsogpu.config import PipelineConfig, dump_toml, from_dict
from tsogpu.errors import ConfigError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.launchers import host_build
from tsogpu.launchers import oneoverf as koneoverf
from tsogpu.pipeline import run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan
from tsogpu.segment import Exposure

F32 = np.float32


def _exposure(fastaxis=2, slowaxis=1, noutputs=1, substrt=(1, 1013), size=(64, 16)):
    return Exposure(
        instrument="NIRSPEC", detector="NRS1", exp_type="TEST", readpatt="NRSRAPID", nints=2,
        ngroups=3, nframes=1, groupgap=0, tframe=1.0, tgroup=1.0, subarray="GENERIC",
        substrt1=substrt[0], substrt2=substrt[1], subsize1=size[0], subsize2=size[1],
        fastaxis=fastaxis, slowaxis=slowaxis, noutputs=noutputs,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# hand-built truth


def test_roeba_recovers_offsets_and_lines_exactly():
    exp = _exposure()  # NIRSpec: fast-read lines are DMS columns, parity by DMS row
    ny, nx = 16, 64
    rng = np.random.default_rng(1)
    line = rng.integers(-40, 40, nx).astype(F32)
    off = np.array([7.0, -3.0], F32)  # detector columns 1012 + y: even at even y
    trace = np.zeros((ny, nx), F32)
    trace[6:10] = 5000.0  # bright rows, masked
    frame = off[np.arange(ny) % 2][:, None] + line[None, :] + trace
    data = np.broadcast_to(frame, (2, 3, ny, nx)).astype(F32)
    gdq = np.zeros(data.shape, np.uint8)
    pixeldq = np.zeros((ny, nx), np.uint32)
    pixeldq[0, 5] = dq.DO_NOT_USE
    data = data.copy()
    data[0, 1, 0, 5] = 1e6  # a DO_NOT_USE pixel is never sky
    gdq[1, 2, 3, 7] = dq.SATURATED
    data[1, 2, 3, 7] = -1e6  # nor a saturated group
    data[0, 0, 2, 9] = np.nan  # nor NaN
    mask = np.zeros((ny, nx), bool)
    mask[5:11] = True
    out, levels = oneoverf.correct_sky(data, gdq, pixeldq, exp, "roeba", mask)
    sky = ~mask & (pixeldq == 0)
    good = np.broadcast_to(sky, data.shape) & np.isfinite(data) & (gdq == 0)
    assert (out[good] == 0.0).all()
    np.testing.assert_array_equal(out[:, :, 6:10], np.broadcast_to(trace[6:10], (2, 3, 4, nx)))
    med = np.median(line)
    np.testing.assert_array_equal(levels.offsets[..., 0, :], np.broadcast_to(off + med, (2, 3, 2)))
    np.testing.assert_array_equal(levels.lines[:, :, 0], np.broadcast_to(line - med, (2, 3, nx)))
    assert levels.line_axis == "x" and levels.lines.dtype == F32
    # glbs with equal parities: the line pattern, offsets included, per line
    flat = np.broadcast_to(line[None, :] + 4.0 + trace, data.shape).astype(F32)
    out, levels = oneoverf.correct_sky(flat, np.zeros_like(gdq), pixeldq, exp, "glbs", mask)
    assert levels.offsets is None
    assert (out[np.broadcast_to(sky, data.shape)] == 0.0).all()
    np.testing.assert_array_equal(levels.lines[0, 0, 0], line + 4.0)


def test_layout_follows_the_fast_axis_and_amplifiers():
    nircam = oneoverf.layout((4, 2048), _exposure(-1, 2, 4, (1, 1), (2048, 4)))
    assert nircam.line_axis == "y" and (nircam.namps, nircam.nlines) == (4, 4)
    # FASTAXIS -1: detector column 2047 - x, amplifier 3 at x = 0
    assert nircam.lines[1, 0] == 3 * 4 + 1 and nircam.lines[2, 2047] == 2
    assert nircam.parities[0, 0] == 3 * 2 + 1 and nircam.parities[0, 1] == 3 * 2
    soss = oneoverf.layout((8, 32), _exposure(-2, -1, 1, (1, 1793), (32, 8)))
    assert soss.line_axis == "x" and soss.namps == 1 and (soss.lines[3] == np.arange(32)).all()


def test_trace_mask_from_image_thresholds_and_grows():
    img = np.random.default_rng(0).normal(0.0, 1.0, (20, 30))
    img[10, 15] = 100.0
    mask = oneoverf.trace_mask_from_image(img, 5.0, 2)
    assert mask[8:13, 13:18].all() and mask.sum() == 25
    assert oneoverf.trace_mask_from_image(img, 5.0, 0).sum() == 1


def test_no_sky_pixel_leaves_the_line_alone():
    exp = _exposure()
    data = np.arange(2 * 3 * 16 * 64, dtype=F32).reshape(2, 3, 16, 64)
    mask = np.zeros((16, 64), bool)
    mask[:, 3] = True
    out, levels = oneoverf.correct_sky(
        data, np.zeros(data.shape, np.uint8), np.zeros((16, 64), np.uint32), exp, "glbs", mask
    )
    assert np.isnan(levels.lines[..., 0, 3]).all() and not np.isnan(levels.lines[..., 0, 4]).any()
    np.testing.assert_array_equal(out[..., 3], data[..., 3])


# ---------------------------------------------------------------------------------------------
# kernels against NumPy, bit for bit


def _same(kernels, got, want):
    got = np.asarray(kernels.get(got))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize(
    ("axes", "noutputs", "substrt", "size"),
    [
        ((2, 1), 1, (1, 1013), (40, 9)),
        ((-1, 2), 4, (1, 1), (2048, 6)),
        ((-2, -1), 1, (1, 1793), (33, 7)),
    ],
    ids=["nrs", "nircam-4amp", "soss"],
)  # fmt: skip
def test_kernels_equal_numpy(kernels, axes, noutputs, substrt, size):
    exp = _exposure(*axes, noutputs, substrt, size)
    nx, ny = size
    rng = np.random.default_rng(nx + ny)
    shape = (2, 3, ny, nx)
    data = rng.normal(0.0, 30.0, shape).astype(F32)
    data[rng.random(shape) < 0.2] = 2.0  # ties
    data[rng.random(shape) < 0.05] = -0.0
    data[rng.random(shape) < 0.02] = np.nan
    gdq = np.zeros(shape, np.uint8)
    gdq[rng.random(shape) < 0.05] = dq.SATURATED
    gdq[rng.random(shape) < 0.05] = dq.JUMP_DET  # not a reason to leave a pixel out
    pixeldq = np.where(rng.random((ny, nx)) < 0.05, dq.DO_NOT_USE, 0).astype(np.uint32)
    mask = rng.random((ny, nx)) < 0.3
    mask[:, 2] = True  # a line with no sky pixel (nx >= 3)
    for method in ("glbs", "roeba"):
        want, wl = oneoverf.correct_sky(data, gdq, pixeldq, exp, method, mask)
        got, gl = koneoverf.correct_sky(
            kernels, kernels.put(data), kernels.put(gdq), kernels.put(pixeldq), exp, method, mask
        )
        _same(kernels, got, want)
        _same(kernels, gl.lines, wl.lines)
        if method == "roeba":
            _same(kernels, gl.offsets, wl.offsets)
    _same(kernels, kernels.put(data), data)


# ---------------------------------------------------------------------------------------------
# a simulated segment with injected 1/f


@pytest.fixture(scope="module")
def noisy(simulated):
    sim = simulated("nrs_bots", nints=5, ngroups=4, ncols=192, seed=11, one_over_f=True)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, skip={"jump"})
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    return sim, config, exposure, shape, refs


def _line_rms(result, sim):
    """rms over integrations and sky lines of the per-line median of (rateints - truth)."""
    truth = np.load(sim.truth)
    res = np.where(result.segment.trace_mask, np.nan, result.rateints[0] - truth["rate"])
    return float(np.nanstd(np.nanmedian(res[:, :, 4:], axis=1)))


def test_simulated_one_over_f_is_removed(noisy):
    sim, config, _, _, refs = noisy
    off = run_segment(read_uncal(sim.uncal), refs, config)
    config = config.with_overrides(sets=["refpix.sky_method=roeba"])
    on = run_segment(read_uncal(sim.uncal), refs, config)
    off.segment.trace_mask = on.segment.trace_mask
    before, after = _line_rms(off, sim), _line_rms(on, sim)
    assert after < 0.4 * before, (before, after)
    # the measured line levels follow the injected 1/f (group average, per DMS column)
    injected = np.load(sim.truth)["one_over_f"][:, :, 0, 4:]  # constant along a column
    measured = on.one_over_f.lines[:, :, 0, 4:]
    diff = measured - injected
    diff -= diff.mean(axis=-1, keepdims=True)  # a level per group (bias, dark) is not 1/f
    assert np.std(diff) < 0.5 * np.std(injected), (np.std(diff), np.std(injected))


def test_chain_equals_numpy_in_memory_and_chunked(noisy, kernels, tmp_path):
    sim, config, exposure, shape, refs = noisy
    config = config.with_overrides(sets=["refpix.sky_method=roeba", "refpix.sky_mask_grow=2"])
    want = run_segment(read_uncal(sim.uncal), refs, config)
    got = run_segment(read_uncal(sim.uncal, raw=True), refs, config, ops=KernelOps(kernels))
    plan = Plan(0, ints=2, rows=7, cols=50, halo=1, in_memory=False, threads=2)
    runs = [got]
    for ops in (None, KernelOps(kernels)):
        args = (sim.uncal, exposure, shape, refs, config, plan, tmp_path, lambda *a: None)
        runs.append(run_chunked(*args, *([ops] if ops else [])))
    for run in runs:
        for a, b in zip(run.rateints, want.rateints, strict=True):
            assert np.asarray(a).tobytes() == b.tobytes()
        assert run.one_over_f.lines.tobytes() == want.one_over_f.lines.tobytes()
        assert run.one_over_f.offsets.tobytes() == want.one_over_f.offsets.tobytes()
        np.testing.assert_array_equal(run.segment.trace_mask, want.segment.trace_mask)


def test_user_mask_file_is_used(noisy, tmp_path):
    sim, config, _, shape, refs = noisy
    mask = np.zeros(shape[2:], np.uint8)
    mask[10:22] = 1
    np.save(tmp_path / "mask.npy", mask)
    fits.PrimaryHDU(mask).writeto(tmp_path / "mask.fits")
    for name in ("mask.npy", "mask.fits"):
        cfg = config.with_overrides(
            sets=["refpix.sky_method=glbs", f"refpix.sky_mask={tmp_path / name}"]
        )
        res = run_segment(read_uncal(sim.uncal), refs, cfg)
        np.testing.assert_array_equal(res.segment.trace_mask, mask != 0)
    np.save(tmp_path / "bad.npy", mask[:5])
    cfg = config.with_overrides(
        sets=["refpix.sky_method=glbs", f"refpix.sky_mask={tmp_path / 'bad.npy'}"]
    )
    with pytest.raises(Exception, match="shape"):
        run_segment(read_uncal(sim.uncal), refs, cfg)


# ---------------------------------------------------------------------------------------------
# configuration, provenance, command line


def test_config_parses_validates_and_round_trips():
    cfg = PipelineConfig().with_overrides(
        sets=["refpix.sky_method=roeba", "refpix.sky_threshold=3", "refpix.sky_mask_grow=0"]
    )
    p = cfg.params("refpix")
    assert (p.sky_method, p.sky_threshold, p.sky_mask_grow, p.sky_mask) == ("roeba", 3.0, 0, "")
    assert from_dict(__import__("tomllib").loads(dump_toml(cfg))) == cfg
    for bad, match in [
        ("refpix.sky_method=loom", "sky_method must be one of off, glbs, roeba"),
        ("refpix.sky_threshold=0", "sky_threshold must be a finite number > 0,"),
        ("refpix.sky_mask_grow=-1", "sky_mask_grow must be an integer >= 0"),
    ]:
        with pytest.raises(ConfigError, match=match):
            PipelineConfig().with_overrides(sets=[bad])


def test_defaults_are_jwst(noisy):
    p = PipelineConfig().params("refpix")
    assert (p.sky_method, p.sky_mask) == ("off", "")
    sim, config, _, _, refs = noisy
    res = run_segment(read_uncal(sim.uncal), refs, config)
    assert res.one_over_f is None and res.segment.trace_mask is None


@pytest.mark.skipif(host_build.compiler() is None, reason="no C++ compiler")
def test_cli_native_equals_numpy_and_writes_levels(noisy, tmp_path):
    sim = noisy[0]
    refs = [a for t, p in sim.refs.items() for a in ("--ref", f"{t}={p}")]
    sets = ["--set", "refpix.sky_method=roeba", "--skip", "jump"]
    out = {}
    for backend in ("numpy", "native"):
        folder = tmp_path / backend
        assert main(["run", str(sim.uncal), "--out", str(folder), "-q", *refs, *sets,
                     "--backend", backend]) == 0  # fmt: skip
        out[backend] = {
            s: folder / sim.uncal.name.replace("_uncal", f"_{s}") for s in ("rateints", "oneoverf")
        }
    with fits.open(out["numpy"]["rateints"]) as a, fits.open(out["native"]["rateints"]) as b:
        for name in ("SCI", "ERR", "DQ"):
            assert a[name].data.tobytes() == b[name].data.tobytes()
        assert json.loads(b[0].header["TSOPARS"])["refpix"]["sky_method"] == "roeba"
        assert [h.name for h in a] == [h.name for h in b]  # jwst's layout, no extra extension
    with fits.open(out["numpy"]["oneoverf"]) as a, fits.open(out["native"]["oneoverf"]) as b:
        for name in ("LINES", "OFFSETS", "MASK"):
            assert a[name].data.tobytes() == b[name].data.tobytes()
        nints, ngroups, _, nx = noisy[3]
        assert a["LINES"].data.shape == (nints, ngroups, 1, nx)
        assert a["OFFSETS"].data.shape == (nints, ngroups, 1, 2)
        assert a[0].header["LINEAXIS"] == "x"
        assert json.loads(a[0].header["TSOPARS"])["refpix"]["sky_method"] == "roeba"
