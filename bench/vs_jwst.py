"""tsogpu (NumPy backend) against jwst 3.0's calwebb_detector1 on the same segments and cores.

    python bench/vs_jwst.py [--work DIR] [--cases nrs_bots:200x20 nrs_bots:400x20 niriss_soss:100x9]

Each run is a fresh process on the same machine: jwst with its default maximum_cores='1',
tsogpu with its default thread per core and again with --threads 1, on the same simulated
segment and reference files; jwst runs offline (CRDS serverless, every reference overridden).
Records wall time and peak resident memory (VmHWM) and writes bench/results/vs_jwst.json.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

from segments import build, measure, run_tsogpu

JWST = (
    "import json, re, sys; sys.path.insert(0, sys.argv[4]); import jwst_oracle as o; "
    "o.configure_offline_crds(); from jwst.pipeline import Detector1Pipeline; "
    "Detector1Pipeline.call(sys.argv[1], steps=o.step_config(json.loads(sys.argv[2]), (), ()), "
    "output_dir=sys.argv[3], save_results=True); rc = 0"
)
TESTS = Path(__file__).resolve().parent.parent / "tests"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-bench")
    ap.add_argument(
        "--cases", nargs="+", default=["nrs_bots:200x20", "nrs_bots:400x20", "niriss_soss:100x9"]
    )
    ap.add_argument(
        "--reuse-jwst",
        action="store_true",
        help="take jwst's figures from the existing results file (rerun tsogpu only)",
    )
    args = ap.parse_args()
    results = Path(__file__).parent / "results" / "vs_jwst.json"
    earlier = {}
    if args.reuse_jwst and results.exists():
        earlier = {r["case"]: r for r in json.loads(results.read_text())["rows"]}
    rows = []
    for case in args.cases:
        mode, size = case.split(":")
        nints, ngroups = map(int, size.split("x"))
        uncal, refs = build(Path(args.work), mode, nints, ngroups)
        refs = {k: str(v) for k, v in refs.items()}
        out = Path(args.work) / f"out-{mode}-{size}"
        t_wall, t_peak, _ = run_tsogpu(uncal, refs, out / "tsogpu")
        # one thread, as jwst's default maximum_cores='1' uses one core
        t1_wall, t1_peak, _ = run_tsogpu(uncal, refs, out / "tsogpu-1", "--threads", "1")
        name = f"{mode} {nints}x{ngroups}"
        if name in earlier:
            j_wall, j_peak = earlier[name]["jwst_wall_s"], earlier[name]["jwst_peak_gib"] * 2**30
        else:
            (out / "jwst").mkdir(parents=True, exist_ok=True)
            j_wall, j_peak, _ = measure(JWST, [uncal, json.dumps(refs), out / "jwst", TESTS])
        rows.append(
            {
                "case": name,
                "shape": [nints, ngroups],
                "tsogpu_wall_s": round(t_wall, 1),
                "tsogpu_peak_gib": round(t_peak / 2**30, 2),
                "jwst_wall_s": round(j_wall, 1),
                "jwst_peak_gib": round(j_peak / 2**30, 2),
                "speedup": round(j_wall / t_wall, 2),
                "memory_ratio": round(t_peak / j_peak, 3),
                "tsogpu_1thread_wall_s": round(t1_wall, 1),
                "tsogpu_1thread_peak_gib": round(t1_peak / 2**30, 2),
                "speedup_1thread": round(j_wall / t1_wall, 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "what": "tsogpu run (NumPy backend, default memory budget; default threads = the "
        "cores, and --threads 1) vs jwst 3.0 Detector1Pipeline (its default "
        "maximum_cores='1'), same simulated segment and reference files, fresh process each",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
