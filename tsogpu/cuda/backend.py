"""The CUDA backend's step functions: the pipeline's ``ops`` when the backend is cupy.

Each method has the signature of the NumPy function it replaces (``tsogpu.pipeline.NumpyOps``)
and runs the launcher of the same name in ``tsogpu.cuda.<step>`` with this device's compiled
kernels. Arrays are CuPy arrays on the current device; ``to_device`` moves a segment there
once (its uint16 ramps converted on the device) and ``to_host`` brings results back.
"""

from dataclasses import replace

import numpy as np

from . import jump, loader, oneoverf, options, prejump, ramp_fit, refpix, tdjump


def _bound(launcher):
    """A method that calls ``launcher(self.k, ...)``."""

    def method(self, *args, **kwargs):
        return launcher(self.k, *args, **kwargs)

    method.__name__, method.__doc__ = launcher.__name__, launcher.__doc__
    return method


class KernelOps:
    """The launchers bound to one build of the kernels ``k`` (``k.launch``, ``k.xp``).

    ``CudaOps`` is this with the device's kernels; the tests also run the whole pipeline with
    the host build of the same kernels (``xp`` NumPy), which is how CI checks the chain.
    """

    name = "kernels"
    device = "host build of the kernels"
    out_of_memory = (MemoryError,)  # retried in smaller chunks (pipeline.process_file)

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
    group_scale = _bound(prejump.group_scale)
    dq_init = _bound(prejump.dq_init)
    flag_saturation = _bound(prejump.flag_saturation)
    subtract_superbias = _bound(prejump.subtract_superbias)
    correct_refpix = _bound(refpix.correct_refpix)
    correct_linearity = _bound(prejump.correct_linearity)
    subtract_dark = _bound(prejump.subtract_dark)
    detect_jumps = _bound(jump.detect_jumps)
    fit_ramps = _bound(ramp_fit.fit_ramps)
    gain_scale = _bound(prejump.gain_scale)
    # options beyond jwst (docs/options.md)
    flag_groups = _bound(options.flag_groups)
    scale_thresholds = _bound(options.scale_thresholds)
    extend_saturation = _bound(options.extend_saturation)
    saturation_map = _bound(options.saturation_map)
    apply_saturation_map = _bound(options.apply_saturation_map)
    flag_time_domain = _bound(tdjump.flag_time_domain)
    correct_sky = _bound(oneoverf.correct_sky)

    # ---- moving data
    def to_device(self, segment, refs):
        """``segment`` and the reference arrays on the device (ramps as float32)."""
        xp = self.xp
        dev_refs = {t: None if r is None else self._resident(r) for t, r in refs.items()}
        if segment is None:
            return None, dev_refs
        data = segment.data
        if data.dtype == np.uint16:  # raw counts: 2 bytes a sample over the bus, not 4
            raw = xp.asarray(data)
            out = xp.empty(raw.shape, xp.float32)
            self.k.launch("tso_u16_to_f32", raw.size, raw, out, np.int64(raw.size))
            data = out
        else:
            data = xp.asarray(data, dtype=xp.float32)
        seg = replace(
            segment,
            data=data,
            groupdq=xp.asarray(segment.groupdq),
            pixeldq=xp.asarray(segment.pixeldq),
            zeroframe=None if segment.zeroframe is None else xp.asarray(segment.zeroframe),
            step_status=dict(segment.step_status),
        )
        return seg, dev_refs

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

        super().__init__(loader.DeviceKernels())
        self.out_of_memory = (cupy.cuda.memory.OutOfMemoryError, MemoryError)
        self.device = loader.available()[1]

    @staticmethod
    def memory_limit():
        """Free device memory plus what CuPy's pool holds, less a tenth for the runtime."""
        import cupy

        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(0.9 * (free + cupy.get_default_memory_pool().free_bytes()))

    @staticmethod
    def release_memory():
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()
