"""The 2 GB NIRSpec BOTS segment (800 x 20 x 32 x 2048): peak memory and time, by budget.

    python bench/big_segment.py [--work DIR] [--budgets default 2G]

Builds the segment once (bench/segments.py), runs
`tsogpu run` on it in a fresh process per budget, records the peak resident memory (VmHWM)
and wall time, checks that the products of every run are identical, and writes
bench/results/big_segment.json.
"""

import argparse
import hashlib
import json
import platform
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from segments import REFTYPES, build, run_tsogpu


def run(uncal, refs, out, budget):
    extra = [] if budget == "default" else ["--max-memory", budget]
    wall, peak, _ = run_tsogpu(uncal, refs, out, *extra)
    digests = {}
    for path in sorted(Path(out).glob("*_rate*.fits")):
        h = hashlib.sha256()
        for ext in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
            h.update(np.ascontiguousarray(fits.getdata(path, ext)).tobytes())
        digests[path.name] = h.hexdigest()
    return {"budget": budget, "peak_rss_gib": peak / 2**30, "wall_s": wall, "products": digests}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-bench")
    ap.add_argument("--budgets", nargs="+", default=["default", "2G"])
    ap.add_argument(
        "--cut",
        action="store_true",
        help="instead: the first 100-integration piece of the same exposure, run whole in "
        "memory and in chunks, products compared (bench/results/big_segment_cut.json)",
    )
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.cut:
        return cut(work)
    t0 = time.perf_counter()
    uncal, refs = build(work, "nrs_bots", 800, 20)
    print(
        f"segment {uncal} ({uncal.stat().st_size / 2**30:.2f} GiB) in "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
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


def cut(work):
    build(work, "nrs_bots", 800, 20)
    piece = work / "nrs_bots_800x20_piece1"
    uncal = next(piece.glob("*_uncal.fits"))
    refs = {t: next(piece.glob(f"*_{t}_sim*.fits")) for t in REFTYPES}
    runs = [run(uncal, refs, work / f"cut-{b}", b) for b in ("16G", "1G")]
    result = {
        "segment": f"{uncal.name}: integrations 1-100 of the same simulated exposure",
        "whole_in_memory": runs[0],
        "chunked_1G": runs[1],
        "products_identical": runs[0]["products"] == runs[1]["products"],
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(__file__).parent / "results" / "big_segment_cut.json"
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
