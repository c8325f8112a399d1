"""Shared test set-up: offline CRDS for jwst, and cached simulated segments."""

import pytest
from jwst_oracle import configure_offline_crds


def pytest_configure(config):
    # crds caches its configuration on first use, so point it at a private serverless cache
    # before any test imports jwst (harmless for tests that never run jwst).
    configure_offline_crds()


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    """Factory ``simulated(mode, **kwargs)`` -> ``tsogpu.simulate.Simulation``, cached per session.

    The same arguments return the same files, so treat them as read-only. The reference files
    are cut to the subarray unless ``full_frame_refs=True`` is asked for: full-frame ones take
    250 MB a segment, and the cut-outs are tested where they are made (test_reffiles, the
    oracle tests).
    """
    from tsogpu.simulate import simulate

    cache = {}

    def make(mode, **kwargs):
        kwargs.setdefault("full_frame_refs", False)
        key = (mode, tuple(sorted(kwargs.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"sim_{mode}")
            cache[key] = simulate(mode, out, **kwargs)
        return cache[key]

    return make


class KernelBackend:
    """Where a kernel test runs: ``launch(name, n, *args)``, with ``xp`` the array module.

    ``host``: the kernels compiled by g++ (tsogpu/launchers/host_build.py), NumPy arrays;
    ``cuda``: the same sources through CuPy on a GPU. One test body checks both against the
    NumPy backend.
    """

    def __init__(self, name, launcher, xp):
        self.name, self.launcher, self.xp = name, launcher, xp
        self.hash = getattr(launcher, "hash", None)

    def launch(self, name, n, *args):
        self.launcher.launch(name, n, *args)

    def put(self, a):
        return self.xp.asarray(a)

    def get(self, a):
        return a.get() if hasattr(a, "get") else a


@pytest.fixture(scope="session")
def host_kernels(tmp_path_factory):
    """The native backend's build (tsogpu/launchers/host_build.py), its loops split over 2
    threads."""
    from tsogpu.launchers import host_build

    if host_build.compiler() is None:
        pytest.skip("no C++ compiler to build the kernels for the host")
    k = host_build.NativeKernels(host_build.build(tmp_path_factory.mktemp("kernels")))
    k.set_threads(2)
    return KernelBackend("host", k, __import__("numpy"))


@pytest.fixture(scope="session", params=["host", pytest.param("cuda", marks=pytest.mark.gpu)])
def kernels(request):
    """The kernels on the host build and, where there is a GPU, on the device."""
    if request.param == "host":
        return request.getfixturevalue("host_kernels")
    from tsogpu.launchers import cuda_build

    ok, why = cuda_build.available()
    if not ok:
        pytest.skip(why)
    import cupy

    return KernelBackend("cuda", cuda_build.DeviceKernels(), cupy)
