import subprocess
import sys


def _assert_left_out(modules, heavy):
    """Importing ``modules`` in a fresh interpreter loads none of ``heavy``."""
    code = (
        f"import sys, {', '.join(modules)};"
        f"bad = [m for m in {tuple(heavy)!r} if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_import_leaves_cupy_astropy_out():
    """The array core must run where only NumPy (and CuPy) are installed."""
    _assert_left_out(
        ("tsogpu", "tsogpu.pipeline", "tsogpu.config", "tsogpu.dq"),
        ("cupy", "astropy", "stdatamodels", "jwst", "scipy"),
    )


def test_import_batch_leaves_dask_out():
    """``tsogpu batch``'s module imports dask only where a cluster is made or a task runs."""
    _assert_left_out(
        ("tsogpu.batch",), ("dask", "distributed", "dask_jobqueue", "dask_cuda", "cupy", "astropy")
    )
