"""tsogpu.flow.stream: chunks through read -> h2d -> kernels -> d2h -> write, overlapped.

The ordering on the host: neighbouring chunks' stages run at once, each chunk's in order,
results in order, at most three chunks in flight, errors surface; a recording ``lanes`` checks
the rules CUDA streams need (which thread works on which stream, waits before copies back).
On a GPU: the streamed pass 1 gives the products of the same pass on the default stream and
of the NumPy backend, bit for bit.
"""

import logging
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pytest

from tsogpu.backends import NumpyOps
from tsogpu.config import PipelineConfig
from tsogpu.flow import STAGES, HostLanes, stream
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.pipeline import run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import Plan

WAIT = 20  # seconds a stage waits for a neighbour's before the test fails


@dataclass
class Chunk:  # what upload and kernels give (weakref-able, as device arrays are)
    c: int


class Stages:
    """Stage functions that record what ran where; ``overlap``: each chunk's kernels wait
    until the next chunk's read and the previous chunk's write have begun (a flow that ran
    them one after another would time out)."""

    def __init__(self, n, overlap=False, fail=None, lanes=None):
        self.n, self.overlap, self.fail, self.lanes = n, overlap, fail, lanes
        self.lock = threading.Lock()
        self.log = []  # (stage, chunk, thread name, lane)
        self.began = {(s, c): threading.Event() for s in STAGES for c in range(n)}
        self.uploaded = {}  # chunk -> weakref to its upload
        self.written = 0

    def _enter(self, stage, c):
        lane = getattr(self.lanes, "current", lambda: None)()
        with self.lock:
            self.log.append((stage, c, threading.current_thread().name, lane))
        self.began[stage, c].set()
        if self.fail == (stage, c):
            raise RuntimeError(f"{stage} failed on chunk {c}")

    def read(self, c, buffer):
        self._enter("read", c)
        buffer[:] = c  # the buffer is reused: upload must copy
        return buffer

    def upload(self, host):
        c = int(host[0])
        self._enter("h2d", c)
        assert (host == c).all()
        # at most three chunks in flight: chunks before c - 2 are written
        with self.lock:
            assert self.written >= c - 2, (c, self.written)
        dev = Chunk(c)
        self.uploaded[c] = weakref.ref(dev)
        return dev

    def kernels(self, c, dev):
        self._enter("kernels", c)
        assert dev.c == c
        if self.overlap:
            if c + 1 < self.n:
                assert self.began["read", c + 1].wait(WAIT), f"read {c + 1} not during kernels {c}"
            if c >= 1:
                assert self.began["write", c - 1].wait(WAIT), f"write {c - 1} not during {c}"
        return Chunk(c)

    def download(self, out):
        self._enter("d2h", out.c)
        assert self.uploaded[out.c]() is not None  # the upload is still held
        return out.c

    def write(self, c, host):
        self._enter("write", c)
        assert host == c
        with self.lock:
            self.written += 1
        return 10 * c

    def order(self, c):
        return [s for s, k, _, _ in self.log if k == c]


def test_stages_overlap_and_results_come_in_order():
    st = Stages(6, overlap=True)
    times = {}
    results = list(
        stream(
            list(range(6)), st.read, st.upload, st.kernels, st.download, st.write,
            HostLanes(), 64, times,
        )
    )  # fmt: skip
    assert results == [0, 10, 20, 30, 40, 50]
    for c in range(6):
        assert st.order(c) == list(STAGES)
    threads = {s: {t for stage, _, t, _ in st.log if stage == s} for s in STAGES}
    assert threads["read"] == threads["h2d"] and len(threads["read"]) == 1
    assert threads["d2h"] == threads["write"] and len(threads["write"]) == 1
    assert threads["kernels"] == {threading.current_thread().name}
    assert len({*threads["read"], *threads["kernels"], *threads["write"]}) == 3
    assert set(times) == {*STAGES, "wall"} and times["wall"] > 0


@pytest.mark.parametrize("stage", ["read", "h2d", "kernels", "d2h", "write"])
def test_an_error_in_any_stage_surfaces(stage):
    st = Stages(5, fail=(stage, 2))
    got = []
    with pytest.raises(RuntimeError, match=f"{stage} failed on chunk 2"):
        for r in stream(
            list(range(5)), st.read, st.upload, st.kernels, st.download, st.write,
            HostLanes(), 8,
        ):  # fmt: skip
            got.append(r)
    assert got == [0, 10][: len(got)] and len(got) <= 2


def test_no_chunks():
    st = Stages(0)
    args = (st.read, st.upload, st.kernels, st.download, st.write, HostLanes(), 8)
    assert list(stream([], *args)) == []


class RecordingLanes(HostLanes):
    """Lanes that record what a CUDA build would do: each thread's stream, the settles, and
    the marks the writer waits for."""

    def __init__(self):
        self.local = threading.local()
        self.lock = threading.Lock()
        self.calls = []  # (what, lane or mark, thread name)
        self.marks = 0

    def current(self):
        return getattr(self.local, "lane", None)

    def _note(self, *what):
        with self.lock:
            self.calls.append((*what, threading.current_thread().name))

    def on(self, lane):
        lanes = self

        class On:
            def __enter__(self):
                assert lanes.current() is None  # lanes do not nest
                lanes.local.lane = lane

            def __exit__(self, *exc):
                lanes.local.lane = None

        return On()

    def settle(self, lane=None):
        self._note("settle", lane)

    def mark(self):
        assert self.current() == "compute"
        with self.lock:
            self.marks += 1
            return self.marks

    def wait(self, mark):
        assert self.current() == "d2h"
        self._note("wait", mark)

    def seconds(self, start, end):
        return 0.0


def test_each_stage_runs_on_its_lane_and_waits_as_cuda_needs():
    lanes = RecordingLanes()
    st = Stages(4, lanes=lanes)
    list(stream(list(range(4)), st.read, st.upload, st.kernels, st.download, st.write, lanes, 8))
    lane_of = {"read": "h2d", "h2d": "h2d", "kernels": "compute", "d2h": "d2h", "write": "d2h"}
    for stage, _, _, lane in st.log:
        assert lane == lane_of[stage], stage
    assert lanes.calls[0][:2] == ("settle", None)  # what was queued before, first
    assert [w for w, lane, _ in lanes.calls if w == "settle" and lane == "h2d"] == ["settle"] * 4
    # the writer waits for the mark after chunk c's kernels (marks 2c+1, 2c+2) before d2h
    waits = [m for w, m, _ in lanes.calls if w == "wait"]
    assert waits == [2, 4, 6, 8]


@pytest.fixture(scope="module")
def segment(simulated):
    sim = simulated("nircam_grism", nints=5, ngroups=5, ncols=64, seed=71, zeroframe=True)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    exposure, shape, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    return sim, config, exposure, shape, refs


def _chunked(segment, tmp_path, ops):
    sim, config, exposure, shape, refs = segment
    plan = Plan(0, ints=2, rows=9, cols=64, halo=1, in_memory=False, threads=1)
    tmp_path.mkdir(exist_ok=True)
    return run_chunked(
        sim.uncal, exposure, shape, refs, config, plan, tmp_path, lambda *a: None, ops
    )


def _same(a, b):
    for product in ("rateints", "rate"):
        for x, y in zip(getattr(a, product), getattr(b, product), strict=True):
            x, y = np.asarray(x), np.asarray(y)
            assert x.dtype == y.dtype and x.shape == y.shape
            nan = np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)
            assert np.array_equal(nan, np.isnan(y) if y.dtype.kind == "f" else nan)
            assert x[~nan].tobytes() == y[~nan].tobytes()
    assert a.segment.pixeldq.tobytes() == b.segment.pixeldq.tobytes()
    assert a.step_status == b.step_status


def test_pass_one_streams_and_says_where_its_time_went(segment, tmp_path, caplog):
    sim, config, *_, refs = segment
    with caplog.at_level(logging.INFO, logger="tsogpu.pipeline"):
        got = _chunked(segment, tmp_path, NumpyOps)
    line = [r.getMessage() for r in caplog.records if "pass 1 stages" in r.getMessage()]
    assert len(line) == 1 and all(f'"{s}"' in line[0] for s in (*STAGES, "wall"))
    _same(got, run_segment(read_uncal(sim.uncal), refs, config))


@pytest.mark.gpu
def test_streamed_equals_default_stream_on_the_gpu(segment, tmp_path, monkeypatch):
    from tsogpu.launchers import cuda_build

    ok, why = cuda_build.available()
    if not ok:
        pytest.skip(why)
    from tsogpu.backends.kernel_ops import CudaLanes, CudaOps

    sim, config, *_, refs = segment
    ops = CudaOps.current()
    assert isinstance(ops.lanes(), CudaLanes)
    streamed = _chunked(segment, tmp_path / "streamed", ops)
    monkeypatch.setattr(ops, "lanes", HostLanes)  # every stage on the default stream
    plain = _chunked(segment, tmp_path / "plain", ops)
    _same(streamed, plain)
    want = run_segment(read_uncal(sim.uncal), refs, config)
    for product in ("rateints", "rate"):  # the GPU's NaNs are canonical: compare as values
        for x, y in zip(getattr(streamed, product), getattr(want, product), strict=True):
            np.testing.assert_array_equal(x, y)
