"""Bounded memory: chunked runs give the same products as a whole-segment run, bit for bit,
and stay within the memory budget."""

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.config import PipelineConfig
from tsogpu.errors import ConfigError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.memory import current_rss
from tsogpu.pipeline import process_file, run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import BYTES_PER_SAMPLE_IN_MEMORY, Plan, plan_chunks, tiles
from tsogpu.pipeline.preflight import bytes_needed, product_bytes
from tsogpu.pipeline.scratch import ScratchRamp
from tsogpu.simulate import simulate

EXTS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")


@pytest.fixture(scope="module", params=["nircam_grism", "nrs_bots"])
def case(request, tmp_path_factory):
    kw = dict(nints=5, ngroups=6, ncols=96, seed=31, cr_rate=2e-3)
    sim = simulate(request.param, tmp_path_factory.mktemp(request.param), **kw)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    whole = run_segment(read_uncal(sim.uncal), refs, config)
    return sim, config, exposure, shape, refs, whole


@pytest.mark.parametrize(
    "ints, rows, cols, threads",
    [(1, 1, 1000, 1), (2, 5, 7, 1), (2, 5, 7, 3), (4, 7, 96, 2), (5, 100, 33, 1), (3, 2, 1, 2)],
)
def test_chunked_equals_whole(case, tmp_path, ints, rows, cols, threads):
    sim, config, exposure, shape, refs, whole = case
    plan = Plan(0, ints=ints, rows=rows, cols=cols, halo=1, in_memory=False, threads=threads)
    chunked = run_chunked(sim.uncal, exposure, shape, refs, config, plan, tmp_path, lambda *a: None)
    assert chunked.step_status == whole.step_status
    assert chunked.primary_cosmic_rays == whole.primary_cosmic_rays
    for product in ("rateints", "rate"):
        pairs = zip(EXTS, getattr(chunked, product), getattr(whole, product), strict=True)
        for name, a, b in pairs:
            # NaN where NaN, identical elsewhere
            np.testing.assert_array_equal(a, b, err_msg=f"{product} {name}")
    np.testing.assert_array_equal(chunked.segment.pixeldq, whole.segment.pixeldq)
    # the jump step found something, so the halo mattered
    assert whole.step_status["jump"] == "COMPLETE"


# pass 2's windows of a 7 x 11 frame in 3 x 4 tiles with a one-pixel halo
TILES = Plan(0, ints=2, rows=3, cols=4, halo=1, in_memory=False)
WINDOWS = [np.s_[ylo:yhi, xlo:xhi] for _, _, ylo, yhi, xlo, xhi in tiles(TILES, 7, 11).values()]


@pytest.mark.parametrize("layout", ["frames", "windows"])
def test_scratch_ramp_reads_back_what_was_written(tmp_path, layout):
    """The ramp as in memory: whole integrations and full-width bands go by positional I/O,
    other regions by a map. By windows: each window's region, a halo in every window that
    holds it. Any mix reads back as the same array would."""
    shape = (5, 3, 7, 11)
    rng = np.random.default_rng(8)
    data = rng.normal(size=shape).astype(np.float32)
    gdq = rng.integers(0, 256, shape).astype(np.uint8)
    ramp = ScratchRamp(
        tmp_path, shape, batch_bytes=1, windows=None if layout == "frames" else WINDOWS
    )
    ramp.write(np.s_[0:2], data[0:2], gdq[0:2])  # whole integrations
    ramp.write(np.s_[2:5], data[2:5], None)
    ramp.write(np.s_[:, :, 0:4, :], None, gdq[:, :, 0:4].copy())  # a full-width band
    ramp.write(np.s_[:, :, 4:7, 0:5], None, gdq[:, :, 4:7, 0:5].copy())  # a tile
    ramp.write(np.s_[2:5, :, 4:7, 5:11], None, gdq[2:5, :, 4:7, 5:11].copy())
    ramp.write(np.s_[0:2, :, 4:7, 5:11], None, gdq[0:2, :, 4:7, 5:11].copy())
    regions = [(np.s_[:], np.s_[:]), (np.s_[1:6], np.s_[:]), (np.s_[2:4], np.s_[3:9])]
    for rows, cols in regions + WINDOWS:
        got_data, got_gdq = ramp.read(rows, cols)
        np.testing.assert_array_equal(got_data, data[:, :, rows, cols])
        np.testing.assert_array_equal(got_gdq, gdq[:, :, rows, cols])
    whole_data, whole_gdq = ramp.read_all()
    np.testing.assert_array_equal(whole_data, data)
    np.testing.assert_array_equal(whole_gdq, gdq)
    assert list(tmp_path.iterdir()) == []  # anonymous files: nothing a kill could leave
    os.ftruncate(ramp.files[0].fileno(), 100)  # a scratch file cut short: an error naming it
    with pytest.raises(OSError, match=f"scratch in {tmp_path}"):
        ramp.read(np.s_[1:6], np.s_[:])
    ramp.close()


def test_preflight_counts_the_scratch_ramp(tmp_path):
    """bytes_needed's scratch ramp is the scratch files' size: by windows, halos in each."""
    shape, config = (5, 3, 7, 11), PipelineConfig()
    assert len(WINDOWS) == 9 and WINDOWS[4] == np.s_[2:7, 3:9]
    ramp = ScratchRamp(tmp_path, shape, windows=WINDOWS)
    on_disk = sum(os.fstat(f.fileno()).st_size for f in ramp.files)
    ramp.close()
    assert on_disk == 5 * 3 * (4 + 1) * (4 + 5 + 2) * (5 + 6 + 4)  # rows, columns of windows
    assert bytes_needed(shape, config, TILES) - product_bytes(shape, config) == on_disk
    saved = config.with_overrides(save_ramp=True)  # kept as in memory
    assert bytes_needed(shape, saved, TILES) - product_bytes(shape, saved) == 5 * 3 * 5 * 77


def test_ramp_read_back_from_the_windows(tmp_path):
    """A segment saturated everywhere fits no ramp (OLS_C): the chunked run reads the ramp
    back whole from its windows (pass 2's GROUPDQ written into each window holding it), equal
    to the whole-segment run's."""
    from test_likely import _saturated_everywhere

    sim, refs_paths = _saturated_everywhere(tmp_path)
    config = PipelineConfig(refs=refs_paths)
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    whole = run_segment(read_uncal(sim.uncal), refs, config)
    plan = Plan(0, ints=1, rows=3, cols=5, halo=1, in_memory=False)
    chunked = run_chunked(sim.uncal, exposure, shape, refs, config, plan, tmp_path, lambda *a: None)
    assert whole.rateints is None and chunked.rateints is None
    np.testing.assert_array_equal(chunked.segment.data, whole.segment.data)
    np.testing.assert_array_equal(chunked.segment.groupdq, whole.segment.groupdq)


def test_products_do_not_depend_on_the_budget(tmp_path):
    sim = simulate("nrs_bots", tmp_path / "in", nints=20, ngroups=6, ncols=256, seed=33)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    _, shape, zf = inspect_uncal(sim.uncal)
    nints, ngroups, ny, nx = shape
    # half of what the whole segment in memory needs: chunked, with ~30 MB to spare
    products = nints * ny * nx * 4 * 7
    small = current_rss() + products + BYTES_PER_SAMPLE_IN_MEMORY * nints * ngroups * ny * nx // 2
    assert not plan_chunks(shape, config.with_overrides(max_memory=small), zf).in_memory
    a = process_file(sim.uncal, tmp_path / "a", config.with_overrides(max_memory=small))
    b = process_file(sim.uncal, tmp_path / "b", config.with_overrides(max_memory=8 * 2**30))
    assert [p.name for p in a] == [p.name for p in b]
    for pa, pb in zip(a, b, strict=True):
        for ext in EXTS:
            np.testing.assert_array_equal(fits.getdata(pa, ext), fits.getdata(pb, ext))


def test_too_small_a_budget_is_a_clear_error(case):
    sim, config = case[0], case[1]
    _, shape, zf = inspect_uncal(sim.uncal)
    with pytest.raises(
        ConfigError, match=r"seg.*memory budget of 0.00 GiB is too small.*--max-memory"
    ):
        plan_chunks(shape, config.with_overrides(max_memory=1000), zf, source=str(sim.uncal))


@pytest.mark.slow
def test_peak_memory_within_budget(tmp_path):
    """A real run in a fresh process: peak RSS within 20% of --max-memory."""
    sim = simulate("nrs_bots", tmp_path / "in", nints=60, ngroups=10, seed=4)
    raw = fits.getdata(sim.uncal, "SCI")
    assert raw.nbytes > 60e6  # the float32 ramp (~160 MB) would not fit twice in the budget
    budget = 400 * 2**20
    refs = [a for k, v in sim.refs.items() for a in ("--ref", f"{k}={v}")]
    # VmHWM: the peak of this process's own memory (ru_maxrss would include the parent's,
    # which Linux carries over fork and exec)
    code = (
        "import re, sys; from tsogpu.cli import main; rc = main(sys.argv[1:]); "
        "status = open('/proc/self/status').read(); "
        "print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)); sys.exit(rc)"
    )
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            str(sim.uncal),
            "--out",
            str(tmp_path / "out"),
            "--max-memory",
            str(budget),
            "-q",
            *refs,
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    peak = int(res.stdout.split("MAXRSS")[1]) * 1024
    assert peak <= 1.2 * budget, f"peak {peak / 2**20:.0f} MiB over budget {budget / 2**20:.0f} MiB"


OOM_RUN = """
import logging, resource, sys
from tsogpu.config import PipelineConfig
from tsogpu.errors import BackendError
from tsogpu.pipeline import process_file
import tsogpu.io.products, tsogpu.io.reffiles, tsogpu.io.uncal  # imported before the limit
from stdatamodels.jwst import datamodels
datamodels.RampModel().close()  # asdf loads its extensions (gwcs, scipy, BLAS) now
uncal, out, refs, extra = sys.argv[1], sys.argv[2], eval(sys.argv[3]), int(sys.argv[4])
logging.basicConfig(level=logging.WARNING, format="%(message)s")
status = open("/proc/self/status").read()
vm = int(status.split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + extra, vm + extra))
config = PipelineConfig(refs=refs, max_memory=16 * 2**30, threads=1)  # plans it in memory
try:
    process_file(uncal, out, config)
except BackendError as exc:
    print("BackendError:", exc)
    sys.exit(2)
"""


@pytest.mark.slow
def test_out_of_memory_is_retried_in_smaller_chunks(tmp_path):
    """A real MemoryError (an address-space limit in a fresh process): the segment planned in
    memory is redone in chunks, says so, and gives the products of an unlimited run."""
    sim = simulate(
        "nrs_bots", tmp_path / "in", nints=200, ngroups=10, ncols=512, seed=5, full_frame_refs=False
    )
    refs = repr({k: str(v) for k, v in sim.refs.items()})

    def run(out, extra_mib):
        args = [str(sim.uncal), str(tmp_path / out), refs, str(extra_mib * 2**20)]
        # one malloc arena: glibc reserves 64 MiB of address space for each thread's arena,
        # which RLIMIT_AS counts though the threads use little of it
        env = dict(os.environ, MALLOC_ARENA_MAX="1")
        return subprocess.run(
            [sys.executable, "-c", OOM_RUN, *args], capture_output=True, text=True, env=env
        )

    free = run("free", 64 * 1024)
    assert free.returncode == 0 and "out of memory" not in free.stderr, free.stderr
    tight = run("tight", 450)  # the segment processed whole cannot fit, chunks can
    assert tight.returncode == 0, tight.stderr + tight.stdout
    assert "out of memory (Unable to allocate" in tight.stderr
    assert "retrying in smaller chunks" in tight.stderr
    for name in sorted(p.name for p in (tmp_path / "free").glob("*.fits")):
        for ext in EXTS:
            np.testing.assert_array_equal(
                fits.getdata(tmp_path / "tight" / name, ext),
                fits.getdata(tmp_path / "free" / name, ext),
            )
    assert not [p for p in (tmp_path / "tight").iterdir() if p.name.startswith(".")]
    hopeless = run("hopeless", 40)
    assert hopeless.returncode == 2, hopeless.stderr
    assert "out of memory" in hopeless.stdout  # before any chunk, or even in the smallest
    assert not list((tmp_path / "hopeless").glob("*.fits"))
