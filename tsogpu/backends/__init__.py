"""Backends: the one contract every backend implements (:mod:`.contract`), and the choice of
backend by name. ``numpy`` runs ``tsogpu/algorithms`` (:mod:`.numpy_ops`); ``native`` and
``cupy`` run the kernels (``kernels/*.cu``) through their launchers, built for the host or
compiled for the GPU (:mod:`.kernel_ops`). Importing this package imports NumPy only.
"""

import logging

from ..errors import BackendError
from .contract import Backend
from .numpy_ops import NumpyOps

__all__ = ["Backend", "NumpyOps", "select_backend", "backend_ops"]

log = logging.getLogger(__name__)


def select_backend(name):
    """Resolve ``numpy | native | cupy | auto`` to the backend that will run; no silent
    fallback.

    ``cupy`` without a usable GPU, or ``native`` without a C++ compiler that builds the
    kernels, is an error; ``auto`` takes the GPU, else the native build, else NumPy, and logs
    which and why.
    """
    if name == "numpy":
        return "numpy"
    from ..launchers import cuda_build, host_build  # CuPy only inside available()

    if name == "native":
        ok, what = host_build.available()
        if not ok:
            raise BackendError(f"--backend native: {what}; use --backend numpy")
        return "native"
    ok, what = cuda_build.available()
    if name == "cupy":
        if not ok:
            raise BackendError(f"--backend cupy: {what}; use --backend numpy")
        return "cupy"
    if ok:
        log.info("backend auto: using the GPU, %s", what)
        return "cupy"
    native_ok, native_what = host_build.available()
    if native_ok:
        log.info("backend auto: no GPU (%s); using the native CPU build", what)
        return "native"
    log.info("backend auto: using numpy (%s; %s)", what, native_what)
    return "numpy"


def backend_ops(backend, threads=None):
    """The :class:`Backend` of a resolved backend name (see :func:`select_backend`);
    ``threads``: the cores each native kernel is split over (default: all usable)."""
    if backend == "numpy":
        return NumpyOps
    if backend == "native":
        from .kernel_ops import native_ops

        return native_ops(threads)
    from .kernel_ops import CudaOps

    return CudaOps.current()
