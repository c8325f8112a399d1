"""tsogpu against jwst 3.0's calwebb_detector1 on simulated MIRI time series, same cores.

    python bench/miri_vs_jwst.py [--work DIR] [--cases miri_lrs:100x20 miri_image:400x20]
                                 [--backends numpy native]

As bench/vs_jwst.py does for the near-infrared segments: each run a fresh process; jwst with its
defaults (maximum_cores='1'; emicorr and firstframe skipped), offline, every reference
overridden; tsogpu with its default threads; the products compared bit for bit and as values.
Writes bench/results/miri_vs_jwst.json.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

from segments import measure, run_tsogpu
from vs_jwst import JWST, TESTS, same_products

from tsogpu.simulate import simulate


def build(work, mode, nints, ngroups, seed=8):
    """One simulated MIRI segment and its reference files (kept for the next run)."""
    folder = Path(work) / f"{mode}_{nints}x{ngroups}"
    done = folder / "done.json"
    if done.exists():
        saved = json.loads(done.read_text())
        return saved["uncal"], saved["refs"]
    sim = simulate(mode, folder, nints=nints, ngroups=ngroups, seed=seed)
    uncal, refs = str(sim.uncal), {k: str(v) for k, v in sim.refs.items()}
    done.write_text(json.dumps({"uncal": uncal, "refs": refs}))
    return uncal, refs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-bench-miri")
    ap.add_argument("--cases", nargs="+", default=["miri_lrs:100x20", "miri_image:400x20"])
    ap.add_argument("--backends", nargs="+", default=["numpy", "native"])
    args = ap.parse_args()
    load = os.getloadavg()  # other work on the machine skews the timings
    if "native" in args.backends:
        from tsogpu.launchers import host_build

        host_build.kernels()  # compile once, outside the timings
    rows = []
    for case in args.cases:
        mode, size = case.split(":")
        nints, ngroups = map(int, size.split("x"))
        uncal, refs = build(args.work, mode, nints, ngroups)
        out = Path(args.work) / f"out-{mode}-{size}"
        (out / "jwst").mkdir(parents=True, exist_ok=True)
        j_wall, j_peak, _ = measure(JWST, [uncal, json.dumps(refs), out / "jwst", TESTS, "{}"])
        row = {
            "case": f"{mode} {nints}x{ngroups}",
            "uncal_mib": round(os.path.getsize(uncal) / 2**20, 1),
            "jwst_wall_s": round(j_wall, 1),
            "jwst_peak_gib": round(j_peak / 2**30, 2),
        }
        for backend in args.backends:
            dest = out / f"tsogpu-{backend}"
            wall, peak, _ = run_tsogpu(uncal, refs, dest, "--backend", backend)
            row[f"{backend}_wall_s"] = round(wall, 1)
            row[f"{backend}_peak_gib"] = round(peak / 2**30, 2)
            row[f"{backend}_speedup"] = round(j_wall / wall, 2)
            row[f"{backend}_identical_to_jwst"] = same_products(dest, out / "jwst")
            row[f"{backend}_equal_values_to_jwst"] = same_products(dest, out / "jwst", values=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "what": "tsogpu run (default threads and memory budget) vs jwst 3.0 Detector1Pipeline "
        "(its defaults, maximum_cores='1'), simulated MIRI segments, same reference files, "
        "fresh process each; peak = the process's VmHWM",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "load_average_at_start": [round(x, 2) for x in load],
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    path = Path(__file__).parent / "results" / "miri_vs_jwst.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
