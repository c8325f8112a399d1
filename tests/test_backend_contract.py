"""The backend contract (tsogpu/backends/contract.py): every backend implements every
operation, each step with exactly the signature of the NumPy function it mirrors."""

import inspect

import pytest

from tsogpu.backends import NumpyOps
from tsogpu.backends.contract import MIRRORS, STEP_OPERATIONS, Backend, mirrored


def _backends():
    """(name, ops) of every backend this machine can make: NumPy, the native build, a GPU."""
    from tsogpu.backends.kernel_ops import native_ops
    from tsogpu.launchers import cuda_build, host_build

    found = [("numpy", NumpyOps)]
    if host_build.available()[0]:
        found.append(("native", native_ops()))
    if cuda_build.available()[0]:
        from tsogpu.backends.kernel_ops import CudaOps

        found.append(("cupy", CudaOps.current()))
    return found


def _declared(op):
    """The contract's signature of ``op``, without ``self``."""
    sig = inspect.signature(getattr(Backend, op))
    return sig.replace(parameters=list(sig.parameters.values())[1:])


@pytest.mark.parametrize("op", STEP_OPERATIONS)
def test_contract_declares_the_mirrored_signature(op):
    assert _declared(op) == inspect.signature(mirrored(op)), MIRRORS[op]


@pytest.fixture(scope="module", params=[name for name, _ in _backends()])
def backend(request):
    return dict(_backends())[request.param]


@pytest.mark.parametrize("op", STEP_OPERATIONS)
def test_backend_step_has_the_mirrored_signature(backend, op):
    assert inspect.signature(getattr(backend, op)) == inspect.signature(mirrored(op))


def test_backend_has_every_member_of_the_contract(backend):
    assert isinstance(backend, Backend) or backend is NumpyOps
    members = [m for m in dir(Backend) if not m.startswith("_")]
    members += list(Backend.__annotations__)
    missing = [m for m in members if not hasattr(backend, m)]
    assert not missing
    assert backend.name in ("numpy", "native", "cupy")


def test_a_changed_signature_is_caught():
    """The comparison sees a keyword renamed, so a drifting backend cannot pass."""

    def drifted(data, nframes, divisor):
        return data

    assert inspect.signature(drifted) != inspect.signature(mirrored("group_scale"))
