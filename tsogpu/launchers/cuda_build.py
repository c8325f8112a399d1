"""Compiling the kernels with CuPy and launching them; imported only when the GPU is used."""

import numpy as np

from .sources import OPTIONS, module_source, source_hash

_MODULES = {}  # (device id, source hash) -> cupy.RawModule
BLOCK = 256


def available():
    """(True, description) when CuPy imports and sees a CUDA device, else (False, why)."""
    try:
        import cupy as cp
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        return False, f"CuPy is not usable ({type(exc).__name__}: {exc})"
    try:
        n = cp.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "CuPy sees no CUDA device"
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    except Exception as exc:
        return False, f"no usable CUDA device ({type(exc).__name__}: {exc})"
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return True, f"{name} ({props['totalGlobalMem'] / 2**30:.0f} GiB)"


def module(defines=()):
    """The compiled module of every kernel, memoised per device and source hash."""
    import cupy as cp

    key = (cp.cuda.Device().id, source_hash(defines))
    mod = _MODULES.get(key)
    if mod is None:
        mod = cp.RawModule(code=module_source(tuple(defines)), options=OPTIONS)
        mod.compile()
        _MODULES[key] = mod
    return mod


class DeviceKernels:
    """``launch(name, n, *args)``: run kernel ``name`` over ``n`` indices on the current device.

    Arguments as the kernel declares them: CuPy arrays for pointers, NumPy scalars of the
    declared type (np.int64 for long long, np.float32 for float, ...) for values. The same
    call runs a host-compiled kernel (``host_build.NativeKernels``).
    """

    def __init__(self, defines=()):
        import cupy as cp

        self.xp = cp  # the array module launchers allocate with (NumPy in the host build)
        self._module = module(defines)
        self._sms = cp.cuda.Device().attributes["MultiProcessorCount"]
        self.hash = source_hash(defines)

    def launch(self, name, n, *args):
        n = int(n)
        if n <= 0:
            return
        for a in args:
            if isinstance(a, (int, float)):  # untyped Python numbers are ambiguous
                raise TypeError(f"{name}: pass NumPy scalars, not {type(a).__name__}")
            if isinstance(a, np.ndarray):
                raise TypeError(f"{name}: a NumPy array was passed where a device array goes")
        grid = min(-(-n // BLOCK), self._sms * 32)
        self._module.get_function(name)((grid,), (BLOCK,), args)
