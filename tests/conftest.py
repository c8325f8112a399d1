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

    The same arguments return the same files, so treat them as read-only.
    """
    from tsogpu.simulate import simulate

    cache = {}

    def make(mode, **kwargs):
        key = (mode, tuple(sorted(kwargs.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"sim_{mode}")
            cache[key] = simulate(mode, out, **kwargs)
        return cache[key]

    return make
