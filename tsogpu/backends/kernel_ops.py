"""The kernels' backends: the pipeline's ``ops`` on a build of the kernels.

Each step method has the signature of the NumPy function it mirrors (the contract:
``tsogpu.backends.contract.Backend``) and runs the launcher of the same name in
``tsogpu.launchers.<step>`` with one build of the kernels: ``CudaOps`` with this device's
(CuPy arrays), ``native_ops`` with the host build (NumPy arrays). ``to_device`` moves a segment
there once (its raw counts converted by a kernel) and ``to_host`` brings results back;
``lanes`` gives ``tsogpu.flow.stream`` its CUDA streams or host threads.
"""

import contextlib
import inspect
import os
import threading
from dataclasses import replace

import numpy as np

from .. import flow
from ..launchers import (
    convert,
    cuda_build,
    dark_current,
    emicorr,
    firstframe,
    gain_scale,
    group_scale,
    host_build,
    jump,
    lastframe,
    likely,
    linearity,
    oneoverf,
    ramp_fit,
    refpix,
    reset,
    rscd,
    saturation,
    superbias,
    tdjump,
)
from ..launchers import dq_init as dq_init_launchers  # KernelOps.dq_init would shadow the name


def _bound(launcher):
    """``launcher`` as a method that calls ``launcher(self.k, ...)``."""
    return _Bound(launcher)


class _Bound:
    """A launcher bound to its ops' kernels: ``ops.name(...)`` calls ``launcher(ops.k, ...)``.

    Both ``KernelOps.name`` and ``ops.name`` carry the launcher's name, docstring and
    signature less its first parameter (``k``): the NumPy function's signature, which a
    contract test compares.
    """

    def __init__(self, launcher):
        self.launcher = launcher
        self.__name__, self.__doc__ = launcher.__name__, launcher.__doc__
        params = list(inspect.signature(launcher).parameters.values())
        self.__signature__ = inspect.Signature(params[1:])

    def __get__(self, ops, owner=None):
        if ops is None:
            return self
        launcher, k = self.launcher, ops.k

        def method(*args, **kwargs):
            return launcher(k, *args, **kwargs)

        method.__name__, method.__doc__ = self.__name__, self.__doc__
        method.__signature__ = self.__signature__
        return method

    def __call__(self, ops, *args, **kwargs):
        return self.launcher(ops.k, *args, **kwargs)


class KernelOps:
    """The launchers bound to one build of the kernels ``k`` (``k.launch``, ``k.xp``).

    ``CudaOps`` is this with the device's kernels; the tests also run the whole pipeline with
    the host build of the same kernels (``xp`` NumPy), which is how CI checks the chain.
    """

    name = "kernels"
    device = "host build of the kernels"
    out_of_memory = (MemoryError,)  # retried in smaller chunks (pipeline.process_file)
    one_chunk_at_a_time = True  # the kernels use every core, or the whole device
    wants_raw_counts = True  # converted by a kernel (kernels/convert.cu)
    keeps_memo = True  # detect_jumps and fit_ramps reuse their memo (kernels/jump.cu, ramp_fit.cu)

    @staticmethod
    def memory_limit():
        return None

    @staticmethod
    def release_memory():
        pass

    def __init__(self, k):
        self.k = k
        self.xp = k.xp
        self.kernel_hash = getattr(k, "hash", None)
        self._refs = {}  # id(host Reference) -> (it, its device copy)

    # ---- the steps (see the NumPy functions of the same names in tsogpu.algorithms)
    group_scale = _bound(group_scale.group_scale)
    dq_init = _bound(dq_init_launchers.dq_init)
    flag_saturation = _bound(saturation.flag_saturation)
    subtract_superbias = _bound(superbias.subtract_superbias)
    correct_refpix = _bound(refpix.correct_refpix)
    correct_linearity = _bound(linearity.correct_linearity)
    subtract_dark = _bound(dark_current.subtract_dark)
    detect_jumps = _bound(jump.detect_jumps)
    fit_ramps = _bound(ramp_fit.fit_ramps)
    fit_ramps_likely = _bound(likely.fit_ramps_likely)
    gain_scale = _bound(gain_scale.gain_scale)
    correct_emi = _bound(emicorr.correct_emi)
    # options beyond jwst (docs/options.md)
    flag_groups = _bound(dq_init_launchers.flag_groups)
    scale_thresholds = _bound(saturation.scale_thresholds)
    extend_saturation = _bound(saturation.extend_saturation)
    saturation_map = _bound(saturation.saturation_map)
    apply_saturation_map = _bound(saturation.apply_saturation_map)
    flag_time_domain = _bound(tdjump.flag_time_domain)
    correct_sky = _bound(oneoverf.correct_sky)
    superbias_scale_factors = _bound(superbias.scale_factors)
    all_dnu_planes = _bound(jump.all_dnu_planes)
    # MIRI
    flag_first_groups = _bound(firstframe.flag_first_groups)
    flag_last_groups = _bound(lastframe.flag_last_groups)
    subtract_reset = _bound(reset.subtract_reset)
    flag_rscd = _bound(rscd.flag_rscd)

    # ---- moving data
    def to_device(self, segment, refs):
        """``segment`` and the reference arrays on the device (ramps as float32).

        Raw counts (uint16, or the file's big-endian int16 as ``read_uncal(raw=True)`` reads
        them) cross the bus as they are, 2 bytes a sample, and a kernel converts them; copies
        and kernels go on the current stream.
        """
        dev_refs = {t: None if r is None else self._resident(r) for t, r in refs.items()}
        if segment is None:
            return None, dev_refs
        data = segment.data
        if isinstance(data, np.ndarray) and convert.converts(data.dtype):
            raw = self._put(np.ascontiguousarray(data).view(np.uint16))
            data = convert.ramps_to_float32(self.k, raw, data.dtype)
        else:
            data = self._put(data, np.float32)
        seg = replace(
            segment,
            data=data,
            groupdq=self._put(segment.groupdq),
            pixeldq=self._put(segment.pixeldq),
            zeroframe=None if segment.zeroframe is None else self._put(segment.zeroframe),
            step_status=dict(segment.step_status),
        )
        return seg, dev_refs

    def _put(self, a, dtype=None):
        """``a`` in this build's memory (the host build: ``a`` itself where it can)."""
        return self.xp.asarray(a, dtype=dtype)

    def lanes(self):
        """How ``tsogpu.flow.stream`` meets this build: CUDA streams on a GPU, plain host
        threads for the host build."""
        return flow.HostLanes() if self.xp is np else CudaLanes()

    def _resident(self, ref):
        """``ref`` with its arrays on the device, kept while the same reference comes again
        (tsogpu.io.reffiles keeps one object per file): an exposure's segments copy each
        reference file to the device once."""
        kept = self._refs.get(id(ref))
        if kept is None or kept[0] is not ref:
            arrays = {n: self.xp.asarray(a) for n, a in ref.arrays.items()}
            kept = self._refs[id(ref)] = (ref, replace(ref, arrays=arrays))
            while len(self._refs) > 16:
                self._refs.pop(next(iter(self._refs)))
        return kept[1]

    @staticmethod
    def to_host(a):
        return a.get() if hasattr(a, "get") else a


class CudaOps(KernelOps):
    name = "cupy"
    _by_device = {}

    @classmethod
    def current(cls):
        """The ops of the current CUDA device (kernels compiled once per device)."""
        import cupy

        dev = cupy.cuda.Device().id
        if dev not in cls._by_device:
            cls._by_device[dev] = cls()
        return cls._by_device[dev]

    def __init__(self):
        import cupy

        super().__init__(cuda_build.DeviceKernels())
        self.out_of_memory = (cupy.cuda.memory.OutOfMemoryError, MemoryError)
        self.device = cuda_build.available()[1]

    @staticmethod
    def memory_limit():
        """Free device memory plus what CuPy's pool holds, less a tenth for the runtime, and
        less room for the chunks besides the one in work that the streamed pass 1 keeps on
        the device (tsogpu.flow: the next one's input, the last one's input and results,
        about 17 bytes a sample beside the 40 of pipeline.BYTES_PER_SAMPLE_PASS1)."""
        import cupy

        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(0.9 * (free + cupy.get_default_memory_pool().free_bytes()) * 40 / 57)

    @staticmethod
    def release_memory():
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()

    def _put(self, a, dtype=None):
        """``a`` on the device, a host array copied on the current stream without CuPy's
        staging copy: from pinned memory (``tsogpu.flow``'s read buffer) by DMA, which may
        still run when this returns (the caller settles the stream before reusing ``a``); from
        pageable memory the driver stages it before returning."""
        import cupy

        if not isinstance(a, np.ndarray):
            return cupy.asarray(a, dtype=dtype)
        a = np.ascontiguousarray(a, dtype=dtype)
        out = cupy.empty(a.shape, a.dtype)
        out.set(a, stream=cupy.cuda.get_current_stream())
        return out


class CudaLanes:
    """``tsogpu.flow.stream`` on the current device: a stream per thread (``h2d`` the reader's
    uploads, ``compute`` the kernels, ``d2h`` the writer's copies back), none of which waits
    for the legacy default stream; a pinned host buffer for reads; events after each chunk's
    kernels, which the writer waits for and times.

    CuPy's memory pool hands a freed block to the next allocation on the stream it was
    allocated on, whatever other streams still do with it: ``stream`` keeps each chunk's
    upload referenced until its kernels are done, and the compute stream's results until
    they are copied back.
    """

    def __init__(self):
        import cupy

        self._cupy = cupy
        self.device = cupy.cuda.Device()
        with self.device:
            self.streams = {
                lane: cupy.cuda.Stream(non_blocking=True) for lane in ("h2d", "compute", "d2h")
            }

    @contextlib.contextmanager
    def on(self, lane):
        with self.device, self.streams[lane]:
            yield

    def buffer(self, nbytes):
        import cupyx

        with self.device:
            return cupyx.empty_pinned((nbytes,), np.uint8)

    def settle(self, lane=None):
        if lane is None:
            self.device.synchronize()
        else:
            self.streams[lane].synchronize()

    def mark(self):
        return self.streams["compute"].record()

    @staticmethod
    def wait(mark):
        mark.synchronize()

    def seconds(self, start, end):
        return self._cupy.cuda.get_elapsed_time(start, end) / 1e3


_LOCK = threading.Lock()
_NATIVE = None  # this process's KernelOps on the host build


def native_ops(threads=None):
    """The pipeline's step functions on this process's host build of the kernels
    (``KernelOps``), with each kernel split over ``threads`` cores (default: the usable
    cores)."""
    global _NATIVE
    k = host_build.kernels()
    with _LOCK:
        if _NATIVE is None:
            _NATIVE = KernelOps(k)
            _NATIVE.name = "native"
            version = host_build.compiler_version(host_build.compiler())
            _NATIVE.device = f"cpu: host build of the kernels ({version}, OpenMP)"
    _NATIVE.k.set_threads(threads or len(os.sched_getaffinity(0)))
    return _NATIVE
