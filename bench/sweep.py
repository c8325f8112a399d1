"""An 8-point ``jump.rejection_threshold`` sweep against one full run of the same segment.

    python bench/sweep.py [--work DIR] [--case nrs_bots:200x20] [--backend numpy]
                          [--values 3,4,5,6,7,8,9,10] [--results JSON]

Each is a fresh process (``bench/segments.py``'s runner) on the same simulated segment and
reference files: ``tsogpu run`` once, then ``tsogpu sweep --grid
jump.rejection_threshold=VALUES``, both with the default memory budget and threads. The sweep
runs the steps before jump once and jump, ramp fitting and gain_scale per point. Records wall
time and peak memory of both, the sweep's per-point seconds (its ``sweep.csv``), whether the
point of the default threshold (4) is bit-identical to the run, and the load average (the
machine may be shared), and writes bench/results/sweep.json. The target: under 3x one run.
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from segments import TSOGPU, build, measure, run_tsogpu
from vs_jwst import same_products


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-bench", help="where the segments are built")
    ap.add_argument("--out", default=None, help="products (default: WORK/sweep)")
    ap.add_argument("--case", default="nrs_bots:200x20")
    ap.add_argument("--backend", default="auto", help="default: tsogpu run's (auto)")
    ap.add_argument("--values", default="3,4,5,6,7,8,9,10")
    ap.add_argument("--results", default=str(Path(__file__).parent / "results" / "sweep.json"))
    args = ap.parse_args()
    if args.backend in ("native", "auto"):
        from tsogpu.launchers import host_build

        host_build.kernels()  # compiled once, outside the timings
    mode, size = args.case.split(":")
    nints, ngroups = map(int, size.split("x"))
    uncal, refs = build(Path(args.work), mode, nints, ngroups)
    refs = {k: str(v) for k, v in refs.items()}
    out = Path(args.out or Path(args.work) / "sweep") / f"{mode}-{size}-{args.backend}"
    uptime = [subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()]
    load = [os.getloadavg()]

    run_wall, run_peak, _ = run_tsogpu(uncal, refs, out / "run", "--backend", args.backend)
    sweep_args = ["sweep", uncal, "--out", out / "sweep", "-q", "--backend", args.backend]
    sweep_args += ["--grid", f"jump.rejection_threshold={args.values}"]
    sweep_args += [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    sweep_wall, sweep_peak, _ = measure(TSOGPU, sweep_args)
    uptime.append(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    load.append(os.getloadavg())

    rows = list(csv.DictReader(open(out / "sweep" / "sweep.csv")))
    npoints = len(rows)
    ratio = sweep_wall / run_wall
    result = {
        "what": f"tsogpu sweep --grid jump.rejection_threshold={args.values} ({npoints} "
        f"points) vs one tsogpu run, {args.backend} backend, default memory budget and threads, "
        "same simulated segment and reference files, fresh process each",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "date": time.strftime("%Y-%m-%d"),
        "case": f"{mode} {nints}x{ngroups}",
        "backend": args.backend,
        "points": npoints,
        "run_wall_s": round(run_wall, 1),
        "run_peak_gib": round(run_peak / 2**30, 2),
        "sweep_wall_s": round(sweep_wall, 1),
        "sweep_peak_gib": round(sweep_peak / 2**30, 2),
        "sweep_over_run": round(ratio, 2),
        "per_point_s": [float(r["seconds"]) for r in rows],
        "target_sweep_over_run": 3.0,
        "target_met": ratio < 3.0,
        "default_point_identical_to_run": same_products(
            out / "sweep" / "jump.rejection_threshold=4", out / "run"
        ),
        "load_average_before_after": [[round(x, 2) for x in la] for la in load],
        "uptime_before_after": uptime,
    }
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
