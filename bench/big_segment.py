"""The 2 GB NIRSpec BOTS segment (800 x 20 x 32 x 2048): peak memory and time, by budget.

    python bench/big_segment.py [--work DIR] [--budgets default 1.5G]

Builds the segment once from 8 simulated 100-integration segments of one exposure (the
simulator keeps a whole segment's float64 model in memory, too much at this size), runs
`tsogpu run` on it in a fresh process per budget, records the peak resident memory (VmHWM)
and wall time, checks that the products of every run are identical, and writes
bench/results/big_segment.json.
"""

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from tsogpu.simulate import simulate

NSEG, NINTS, NGROUPS = 8, 100, 20
REFTYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")


def build(work):
    uncal = work / "jw01366003001_04101_00001-seg001_nrs1_uncal.fits"
    refs = {t: next(work.glob(f"seg1/*_{t}_sim*.fits"), None) for t in REFTYPES}
    if uncal.exists() and all(refs.values()):
        return uncal, refs
    parts = [
        simulate("nrs_bots", work / f"seg{k}", nints=NINTS, ngroups=NGROUPS, seed=8,
                 segment=(k, NSEG))
        for k in range(1, NSEG + 1)
    ]
    with fits.open(parts[0].uncal) as first:
        header = first[0].header.copy()
        header.update(NINTS=NSEG * NINTS, INTSTART=1, INTEND=NSEG * NINTS, EXSEGTOT=1)
        sci = np.concatenate([fits.getdata(p.uncal, "SCI") for p in parts])
        tables = {}
        for name in ("GROUP", "INT_TIMES"):
            rows = np.concatenate([np.asarray(fits.getdata(p.uncal, name)) for p in parts])
            tables[name] = fits.BinTableHDU(rows, header=first[name].header, name=name)
        hdus = [fits.PrimaryHDU(header=header), fits.ImageHDU(sci, first["SCI"].header, "SCI")]
        fits.HDUList(hdus + list(tables.values())).writeto(uncal, overwrite=True)
    return uncal, {t: parts[0].refs[t] for t in REFTYPES}


def run(uncal, refs, out, budget):
    code = (
        "import re, sys; from tsogpu.cli import main; rc = main(sys.argv[1:]); "
        "s = open('/proc/self/status').read(); "
        "print('VMHWM', re.search(r'VmHWM:\\s+(\\d+) kB', s).group(1)); sys.exit(rc)"
    )
    args = [sys.executable, "-c", code, "run", str(uncal), "--out", str(out), "-q"]
    args += [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    if budget != "default":
        args += ["--max-memory", budget]
    t0 = time.perf_counter()
    res = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(f"tsogpu failed ({budget}): {res.stderr}")
    peak = int(re.search(r"VMHWM (\d+)", res.stdout).group(1)) * 1024
    digests = {}
    for path in sorted(out.glob("*_rate*.fits")):
        h = hashlib.sha256()
        for ext in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
            h.update(np.ascontiguousarray(fits.getdata(path, ext)).tobytes())
        digests[path.name] = h.hexdigest()
    return {"budget": budget, "peak_rss_gib": peak / 2**30, "wall_s": wall, "products": digests}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-big")
    ap.add_argument("--budgets", nargs="+", default=["default", "1.5G"])
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    uncal, refs = build(work)
    print(f"segment {uncal} ({uncal.stat().st_size / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    runs = []
    for budget in args.budgets:
        runs.append(run(uncal, refs, work / f"out-{budget}", budget))
        print(json.dumps(runs[-1]), flush=True)
    same = all(r["products"] == runs[0]["products"] for r in runs)
    result = {
        "segment": "NIRSpec BOTS SUB2048 NRSRAPID, 800 ints x 20 groups x 32 x 2048 (simulated)",
        "uncal_gib": uncal.stat().st_size / 2**30,
        "machine": f"{platform.machine()}, {_cores()} cores, {_ram_gib():.1f} GiB RAM",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
        "products_identical_across_budgets": same,
    }
    out = Path(__file__).parent / "results" / "big_segment.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _cores():
    import os

    return len(os.sched_getaffinity(0))


def _ram_gib():
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


if __name__ == "__main__":
    main()
