"""Chunks through read -> host-to-device -> kernels -> device-to-host -> write, overlapped.

:func:`stream` runs each chunk's stages in that order, and neighbouring chunks' stages at the
same time on three threads: a reader reads chunk k+1 (into one buffer, reused: pinned host
memory on a GPU) and uploads it, this thread queues chunk k's kernels, and a writer copies
chunk k-1's results back once its kernels are done and writes them. So the disk, the bus and
the device work at once, and at most three chunks are in flight.

A ``lanes`` object says how the threads' work meets on the backend's device:
:class:`HostLanes` where every stage runs on the host and is done when it returns (NumPy, the
native build; the reader and writer threads still overlap), or
``tsogpu.backends.kernel_ops.CudaLanes`` (a CUDA stream per thread, an event after each chunk's
kernels). The same code runs either way, so the CPU tests exercise the ordering.

NumPy only (no CuPy, no astropy).
"""

import contextlib
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

STAGES = ("read", "h2d", "kernels", "d2h", "write")


try:  # optional, looked for once: a worker thread that imports while the main thread is
    # interrupted (SIGTERM) could deadlock on the import locks (a killed run hung in CI)
    import nvtx
except ImportError:
    nvtx = None


def annotate(name):
    """An NVTX range named ``name`` (domain tsogpu) when the nvtx package is installed, for
    Nsight timelines of GPU runs; a no-op otherwise."""
    if nvtx is None:
        return contextlib.nullcontext()
    return nvtx.annotate(name, domain="tsogpu")


class HostLanes:
    """The lanes of a backend whose stages run on the host: nothing to order or wait for."""

    @staticmethod
    def on(lane):
        """Run the enclosed work on ``lane`` (h2d, compute or d2h): here, where it is."""
        return contextlib.nullcontext()

    @staticmethod
    def buffer(nbytes):
        """A host buffer of ``nbytes`` (uint8) for reads."""
        return np.empty(nbytes, np.uint8)

    @staticmethod
    def settle(lane=None):
        """Wait until the work queued on ``lane`` (every lane: None) is done."""

    @staticmethod
    def mark():
        """A mark after the kernels queued so far (here: the time)."""
        return time.perf_counter()

    @staticmethod
    def wait(mark):
        """Wait until the kernels queued before ``mark`` are done."""

    @staticmethod
    def seconds(start, end):
        """Seconds of kernel work between two marks (after ``wait(end)``)."""
        return end - start


def stream(chunks, read, upload, kernels, download, write, lanes, nbytes, times=None):
    """``write(c, download(kernels(c, upload(read(c, buffer)))))`` for each chunk ``c``,
    yielding write's results in the order of ``chunks``, the stages overlapped (above).

    Parameters
    ----------
    read : callable(c, buffer) -> host data
        Reads chunk ``c`` into ``buffer`` (``nbytes`` from ``lanes.buffer``), which the next
        read reuses once ``upload`` of this one has settled: ``upload`` copies what it keeps.
    upload : callable(host data) -> device data
    kernels : callable(c, device data) -> device results
        Queued on the compute lane, from this thread.
    download : callable(device results) -> host results
    write : callable(c, host results) -> anything
        On the writer thread, one chunk at a time, in order.
    times : dict, optional
        Receives the busy seconds of each of :data:`STAGES` summed over the chunks (the
        kernels' device time on a GPU), and ``wall``, the seconds of the whole.
    """
    times = {} if times is None else times
    times.update(dict.fromkeys((*STAGES, "wall"), 0.0))
    lock = threading.Lock()
    t_start = time.perf_counter()

    def spent(stage, seconds):
        with lock:
            times[stage] += seconds

    buffer = lanes.buffer(nbytes)
    lanes.settle()  # what was queued before (the reference files) is on the device

    def fetch(c):
        with lanes.on("h2d"):
            t0 = time.perf_counter()
            with annotate("read"):
                host = read(c, buffer)
            t1 = time.perf_counter()
            with annotate("h2d"):
                dev = upload(host)
                lanes.settle("h2d")  # on the device: the buffer is free for the next read
            spent("read", t1 - t0)
            spent("h2d", time.perf_counter() - t1)
        return dev

    def drain(c, dev, out, start, end):
        # takes ``dev`` along, so that it is freed only once the chunk's kernels are done:
        # its device memory, allocated on the h2d lane, must not go to another upload while
        # they may still read it
        with lanes.on("d2h"):
            lanes.wait(end)
            spent("kernels", lanes.seconds(start, end))
            t0 = time.perf_counter()
            with annotate("d2h"):
                host = download(out)
                lanes.settle("d2h")
            t1 = time.perf_counter()
            with annotate("write"):
                result = write(c, host)
            spent("d2h", t1 - t0)
            spent("write", time.perf_counter() - t1)
        return result

    with (
        ThreadPoolExecutor(1, thread_name_prefix="tsogpu-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="tsogpu-write") as writer,
    ):
        ahead = reader.submit(fetch, chunks[0]) if chunks else None
        pending = deque()
        for k, c in enumerate(chunks):
            dev = ahead.result()
            # chunk k-2 written before chunk k+1 is uploaded: on the device at most chunk
            # k-1 (being copied back), k (its kernels) and k+1
            while len(pending) > 1:
                yield pending.popleft().result()
            if k + 1 < len(chunks):
                ahead = reader.submit(fetch, chunks[k + 1])
            with lanes.on("compute"), annotate("kernels"):
                start = lanes.mark()
                out = kernels(c, dev)
                end = lanes.mark()
            pending.append(writer.submit(drain, c, dev, out, start, end))
            del dev, out
        while pending:
            yield pending.popleft().result()
    times["wall"] = time.perf_counter() - t_start
