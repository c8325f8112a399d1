"""Large simulated segments for the benchmarks, and a runner that measures a fresh process.

The simulator keeps a whole segment's float64 model in memory, so a large segment is built
from consecutive simulated segments of one exposure, concatenated into one file.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels

from tsogpu.simulate import simulate

REFTYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")
PIECE = 100  # integrations simulated at a time


def build(work, mode, nints, ngroups, seed=8):
    """An uncal segment of ``nints`` integrations and its references under ``work``."""
    work = Path(work)
    npieces = -(-nints // PIECE)
    per = nints // npieces
    assert per * npieces == nints, "nints must split into equal pieces of at most 100"
    uncal = work / f"{mode}_{nints}x{ngroups}_uncal.fits"
    first = work / f"{mode}_{nints}x{ngroups}_piece1"
    refs = {t: next(first.glob(f"*_{t}_sim*.fits"), None) for t in REFTYPES}
    if uncal.exists() and all(refs.values()):
        return uncal, refs
    parts = [
        simulate(
            mode,
            work / f"{mode}_{nints}x{ngroups}_piece{k}",
            nints=per,
            ngroups=ngroups,
            seed=seed,
            segment=(k, npieces),
        )
        for k in range(1, npieces + 1)
    ]
    # through stdatamodels, as the simulator writes: the ASDF extension jwst reads is kept
    with datamodels.Level1bModel(str(parts[0].uncal)) as model:
        model.data = np.concatenate([fits.getdata(p.uncal, "SCI") for p in parts])
        for name in ("group", "int_times"):
            rows = [np.asarray(fits.getdata(p.uncal, name.upper())) for p in parts]
            setattr(model, name, np.concatenate(rows))
        e = model.meta.exposure
        e.nints, e.integration_start, e.integration_end = nints, 1, nints
        e.segment_number, e.segment_total = 1, 1
        model.save(str(uncal))
    return uncal, {t: parts[0].refs[t] for t in REFTYPES}


PEAK = (
    "; s = open('/proc/self/status').read(); "
    "print('VMHWM', re.search(r'VmHWM:\\s+(\\d+) kB', s).group(1)); sys.exit(rc)"
)


def measure(code, args, env=None, log=False):
    """Run ``python -c code args`` in a fresh process: (wall seconds, peak RSS bytes, stdout;
    stdout and then stderr with ``log``). ``env``: variables added to this process's.

    The peak is the process's own VmHWM (ru_maxrss would include the parent's)."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code + PEAK, *map(str, args)],
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    peak = int(re.search(r"VMHWM (\d+)", res.stdout).group(1)) * 1024
    return wall, peak, res.stdout + (res.stderr if log else "")


TSOGPU = "import re, sys; from tsogpu.cli import main; rc = main(sys.argv[1:])"


def run_tsogpu(uncal, refs, out, *extra, env=None, log=False):
    """``tsogpu run`` in a fresh process, as :func:`measure`; ``log``: with ``-v``, its log
    returned with stdout (else ``-q``)."""
    args = ["run", uncal, "--out", out, "-v" if log else "-q", *extra]
    args += [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    return measure(TSOGPU, args, env=env, log=log)
