"""The kernels compiled for the host: how CI, which has no GPU, checks the kernel code.

Every ``kernels/*.cu`` is compiled with g++ as C++ (``-ffp-contract=off``: no fused
multiply-add, as nvcc's ``--fmad=false``) into one shared library; ``kernels/common.cuh``
turns a kernel into a plain function whose ``TSO_FOR_EACH`` loop runs over every index.
``HostKernels.launch(name, n, *args)`` takes the arguments a ``DeviceKernels.launch`` takes,
with NumPy arrays where the device takes CuPy arrays.
"""

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tsogpu.cuda.sources import kernel_dir, kernel_files

CXXFLAGS = ("-O2", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared")

_CTYPES = {
    np.dtype(np.int8): ctypes.c_int8,
    np.dtype(np.uint8): ctypes.c_uint8,
    np.dtype(np.int16): ctypes.c_int16,
    np.dtype(np.uint16): ctypes.c_uint16,
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.uint32): ctypes.c_uint32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


def compiler():
    return shutil.which("g++")


def build(folder):
    """Compile every kernel file into ``folder``/kernels-<hash>.so; returns its path."""
    files = kernel_files()
    h = hashlib.sha256()
    for path in sorted(kernel_dir().glob("*.cu*")):
        h.update(path.name.encode() + path.read_bytes())
    h.update(" ".join(CXXFLAGS).encode())
    lib = Path(folder) / f"kernels-{h.hexdigest()[:16]}.so"
    if not lib.exists():
        cmd = [compiler(), *CXXFLAGS, "-x", "c++", *map(str, files), "-o", str(lib)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"host build of the kernels failed:\n{res.stderr[-4000:]}")
    return lib


class HostKernels:
    """The host build, launched like ``tsogpu.cuda.loader.DeviceKernels``."""

    def __init__(self, lib):
        self._lib = ctypes.CDLL(str(lib))

    def launch(self, name, n, *args):
        fn = getattr(self._lib, name)
        cargs = []
        for a in args:
            if isinstance(a, np.ndarray):
                if not a.flags.c_contiguous:
                    raise ValueError(f"{name}: arrays must be C-contiguous")
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.generic):
                cargs.append(_CTYPES[a.dtype](a.item()))
            else:
                raise TypeError(f"{name}: pass NumPy arrays and scalars, not {type(a).__name__}")
        fn.restype = None
        fn(*cargs)
