"""The native CPU backend (``--backend native``): the kernels built for the host, end to end.

Kernel by kernel and over the whole chain the host build is compared with NumPy in
tests/test_kernels_*.py and tests/test_backend_chain.py; here: the build and its cache, backend
selection and its errors, and ``tsogpu run --backend native`` against ``--backend numpy``.
"""

import logging
import os
import stat

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.backends import select_backend
from tsogpu.cli import main
from tsogpu.config import PipelineConfig
from tsogpu.errors import BackendError, ConfigError
from tsogpu.launchers import host_build
from tsogpu.memory import current_rss
from tsogpu.pipeline.planning import plan_chunks

pytestmark = pytest.mark.skipif(host_build.compiler() is None, reason="no C++ compiler")


def test_build_is_cached_by_source_and_leaves_nothing_behind(tmp_path):
    lib = host_build.build(tmp_path)
    mtime = lib.stat().st_mtime_ns
    assert host_build.build(tmp_path) == lib and lib.stat().st_mtime_ns == mtime  # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [lib.name]  # no temporary build folder
    serial = host_build.build(tmp_path, openmp=False)
    assert serial != lib  # the flags are part of the hash
    k = host_build.NativeKernels(lib)
    assert k.set_threads(3) == 3 and k.set_threads(0) == 3  # 0 keeps the setting
    assert host_build.NativeKernels(serial).set_threads(3) == 1


def test_kernels_refuse_python_numbers_and_strided_arrays(tmp_path):
    k = host_build.NativeKernels(host_build.build(tmp_path))
    a = np.zeros((4, 4), np.uint16)
    out = np.zeros((4, 4), np.float32)
    with pytest.raises(TypeError, match="NumPy arrays and scalars"):
        k.launch("tso_u16_to_f32", 16, a, out, 16)
    with pytest.raises(ValueError, match="C-contiguous"):
        k.launch("tso_u16_to_f32", 8, a[:, ::2], out, np.int64(8))
    a[:] = 65535
    k.launch("tso_u16_to_f32", 16, a, out, np.int64(16))
    assert (out == 65535.0).all()


def _broken_compiler(tmp_path):
    cxx = tmp_path / "broken-g++"
    cxx.write_text("#!/bin/sh\necho 'broken-g++: internal compiler error' >&2\nexit 1\n")
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    return cxx


def test_a_failing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    cxx = _broken_compiler(tmp_path)
    with pytest.raises(host_build.BuildError, match="internal compiler error"):
        host_build.build(tmp_path / "cache", cxx=str(cxx))
    assert not list((tmp_path / "cache").iterdir())  # no half-built library
    monkeypatch.setenv("CXX", str(cxx))
    monkeypatch.setenv("TSOGPU_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BackendError, match="--backend native: host build of the kernels failed"):
        select_backend("native")
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(BackendError, match=r"no C\+\+ compiler found"):
        select_backend("native")


def test_auto_without_gpu_takes_native_and_says_so(caplog):
    from tsogpu.launchers import cuda_build

    if cuda_build.available()[0]:
        pytest.skip("a GPU is present: auto takes it")
    with caplog.at_level(logging.INFO, logger="tsogpu.backends"):
        assert select_backend("auto") == "native"
    assert "native CPU build" in caplog.text


@pytest.fixture(scope="module")
def segment(simulated):
    # over 100 integrations and with cosmic rays: the sigma-clipping jump path
    return simulated("nrs_bots", nints=104, ngroups=5, ncols=256, seed=61, cr_rate=2e-3)


def _run(sim, out, *extra):
    refs = [a for t, p in sim.refs.items() for a in ("--ref", f"{t}={p}")]
    assert main(["run", str(sim.uncal), "--out", str(out), "-q", *refs, *extra]) == 0
    return {
        suffix: out / sim.uncal.name.replace("_uncal", f"_{suffix}")
        for suffix in ("rateints", "rate")
    }


def _assert_same_products(a, b):
    for suffix in a:
        with fits.open(a[suffix]) as x, fits.open(b[suffix]) as y:
            names = [h.name for h in x if h.name not in ("PRIMARY", "ASDF")]
            assert names == [h.name for h in y if h.name not in ("PRIMARY", "ASDF")]
            for name in names:
                u, v = x[name].data, y[name].data
                if isinstance(u, np.ndarray) and u.dtype.fields is None:
                    assert u.dtype == v.dtype and u.tobytes() == v.tobytes(), (suffix, name)
                else:
                    assert (np.asarray(u) == np.asarray(v)).all(), (suffix, name)


def test_native_run_equals_numpy_in_memory_chunked_and_threaded(segment, tmp_path):
    want = _run(segment, tmp_path / "numpy", "--backend", "numpy")
    whole = _run(segment, tmp_path / "native", "--backend", "native", "--threads", "2")
    _assert_same_products(whole, want)
    # chunked (integrations, then tiles of pixels) on one thread
    budget = _chunking_budget(segment.shape)
    chunked = _run(
        segment,
        tmp_path / "chunked",
        "--backend",
        "native",
        "--threads",
        "1",
        "--max-memory",
        budget,
    )
    _assert_same_products(chunked, want)
    h = fits.getheader(whole["rate"])
    assert h["TSOBACK"] == "native" and h["TSODEV"].startswith("cpu: host build")
    assert len(h["TSOKHASH"]) == 16 and "TSOKHASH" not in fits.getheader(want["rate"])
    assert not [p for p in os.listdir(tmp_path / "chunked") if p.startswith(".")]


def _chunking_budget(shape):
    """A --max-memory that chunks ``shape`` in this process (the budget counts its RSS)."""
    feasible = []
    for mib in range(current_rss() // 2**20, 8192, 8):
        try:
            plan = plan_chunks(shape, PipelineConfig(max_memory=mib * 2**20), threads=1)
        except ConfigError:
            continue
        if plan.in_memory:
            break
        feasible.append(mib)
    assert len(feasible) > 2, "no budget chunks this segment"
    return f"{feasible[len(feasible) // 2]}M"
