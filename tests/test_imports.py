import subprocess
import sys


def test_import_leaves_cupy_astropy_out():
    """The array core must run where only NumPy (and CuPy) are installed."""
    code = (
        "import sys, tsogpu, tsogpu.pipeline, tsogpu.config, tsogpu.dq;"
        "heavy = ('cupy', 'astropy', 'stdatamodels', 'jwst', 'scipy');"
        "bad = [m for m in heavy if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_import_batch_leaves_dask_out():
    """``tsogpu batch``'s module imports dask only where a cluster is made or a task runs."""
    code = (
        "import sys, tsogpu.batch;"
        "heavy = ('dask', 'distributed', 'dask_jobqueue', 'dask_cuda', 'cupy', 'astropy');"
        "bad = [m for m in heavy if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
