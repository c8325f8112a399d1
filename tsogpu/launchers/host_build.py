"""The kernels built for the host: the CUDA kernel sources compiled by a C++ compiler (the
native CPU backend's kernels).

``kernels/common.cuh`` turns each kernel into a plain C++ function whose ``TSO_FOR_EACH``
loop runs over every index, split over the cores with OpenMP (each index is independent, so
the split cannot change a result). The whole module (``tsogpu.launchers.sources.module_source``,
the translation unit NVRTC compiles) is built once with ``-ffp-contract=off`` (no fused
multiply-add, as ``--fmad=false`` on the device) into a shared library cached by the hash of
its source, flags and compiler, and its kernels are called through ctypes, which releases the
GIL. The results equal the NumPy backend's bit for bit (tests/test_kernels_*.py,
tests/test_backend_chain.py).

NumPy and the standard library only: no CuPy, no astropy.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from .sources import module_source

CXXFLAGS = ("-O3", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared")
OPENMP = ("-fopenmp",)

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
_LOCK = threading.Lock()
_BUILT = {}  # compiler -> NativeKernels of its OpenMP build


class BuildError(RuntimeError):
    """The host build of the kernels failed (the compiler's messages are in the text)."""


def compiler():
    """The C++ compiler: ``$CXX``, else g++, else c++; None when there is none."""
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    return shutil.which("g++") or shutil.which("c++")


def cache_dir():
    """Where built libraries are kept: ``$TSOGPU_CACHE``, else ``~/.cache/tsogpu``."""
    env = os.environ.get("TSOGPU_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tsogpu"


def compiler_version(cxx):
    """The first line of ``cxx --version`` (``cxx`` itself where it says nothing)."""
    res = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    return res.stdout.splitlines()[0] if res.returncode == 0 and res.stdout else cxx


def build(folder=None, openmp=True, cxx=None):
    """Compile every kernel into ``folder``/kernels-<hash>.so (once) and return its path.

    The hash covers the source as compiled, the flags and the compiler's version. The library
    is written under a temporary name and renamed, so concurrent builds (Dask workers) are safe.
    """
    cxx = cxx or compiler()
    if cxx is None:
        raise BuildError("no C++ compiler found (set CXX, or install g++)")
    flags = CXXFLAGS + (OPENMP if openmp else ())
    source = module_source()
    h = hashlib.sha256(source.encode())
    h.update("\0".join(flags).encode() + compiler_version(cxx).encode())
    folder = Path(folder) if folder is not None else cache_dir()
    lib = folder / f"kernels-{h.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
        src = Path(tmp) / "kernels.cpp"
        src.write_text(source)
        out = Path(tmp) / lib.name
        res = subprocess.run(
            [cxx, *flags, "-x", "c++", str(src), "-o", str(out)], capture_output=True, text=True
        )
        if res.returncode:
            raise BuildError(f"host build of the kernels failed ({cxx}):\n{res.stderr[-4000:]}")
        os.replace(out, lib)
    return lib


class NativeKernels:
    """A host build, launched like ``tsogpu.launchers.cuda_build.DeviceKernels``: ``launch(name, n,
    *args)`` with NumPy arrays (C-contiguous) for pointers and NumPy scalars for values."""

    xp = np

    def __init__(self, lib):
        self.lib_path = Path(lib)
        self._lib = ctypes.CDLL(str(lib))
        self.hash = self.lib_path.stem.removeprefix("kernels-")
        self._fns = {}
        try:
            self._set_threads = self._lib.tso_set_threads
            self._set_threads.argtypes = (ctypes.c_int,)
            self._set_threads.restype = ctypes.c_int
        except AttributeError:  # a build without OpenMP
            self._set_threads = None

    def set_threads(self, n):
        """Threads each kernel's loop is split over (1 without OpenMP); returns the number."""
        return self._set_threads(int(n)) if self._set_threads else 1

    def launch(self, name, n, *args):
        fn = self._fns.get(name)
        if fn is None:
            fn = self._fns[name] = getattr(self._lib, name)
            fn.restype = None
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
        fn(*cargs)


def available():
    """(True, description) when the kernels build (or are built) for the host, else (False, why)."""
    try:
        k = kernels()
    except BuildError as exc:
        return False, str(exc).splitlines()[0]
    return True, f"host build of the kernels in {k.lib_path}"


def kernels():
    """This process's host build (compiled on first use, then from the cache)."""
    cxx = compiler()
    with _LOCK:
        if cxx not in _BUILT:
            _BUILT[cxx] = NativeKernels(build(cxx=cxx))
        return _BUILT[cxx]
