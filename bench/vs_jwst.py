"""tsogpu (NumPy and native backends) against jwst 3.0's calwebb_detector1 on the same segments
and cores.

    python bench/vs_jwst.py [--work DIR] [--cases nrs_bots:200x20 nrs_bots:400x20 niriss_soss:100x9]
                            [--backends numpy native] [--reuse-jwst]

Each run is a fresh process on the same machine: jwst with its default maximum_cores='1',
tsogpu on each backend with its default thread per core and again with --threads 1, on the
same simulated segment and reference files; jwst runs offline (CRDS serverless, every
reference overridden). The native backend's library is built before the clock starts.
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
EXTENSIONS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")


def same_products(ours, theirs, values=False):
    """True when every ``_rateints``/``_rate`` in ``theirs`` has a bit-identical twin (SCI,
    ERR, DQ, VAR_POISSON, VAR_RNOISE) in ``ours``; None when ``theirs`` has none. ``values``:
    floats compared as values instead, NaN equal to NaN."""
    import numpy as np
    from astropy.io import fits

    pairs = [(Path(ours) / p.name, p) for p in sorted(Path(theirs).glob("*_rate*.fits"))]
    if not pairs:
        return None
    for a, b in pairs:
        with fits.open(a) as x, fits.open(b) as y:
            for ext in EXTENSIONS:
                u, v = x[ext].data, y[ext].data
                same = (
                    np.array_equal(u, v, equal_nan=u.dtype.kind == "f")
                    if values
                    else u.tobytes() == v.tobytes()
                )
                if not same:
                    return False
    return True


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
    ap.add_argument("--backends", nargs="+", default=["numpy", "native"])
    args = ap.parse_args()
    if "native" in args.backends:
        from tsogpu.launchers import host_build

        host_build.kernels()  # compile once, outside the timings
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
        name = f"{mode} {nints}x{ngroups}"
        if name in earlier:
            j_wall, j_peak = earlier[name]["jwst_wall_s"], earlier[name]["jwst_peak_gib"] * 2**30
        else:
            (out / "jwst").mkdir(parents=True, exist_ok=True)
            j_wall, j_peak, _ = measure(JWST, [uncal, json.dumps(refs), out / "jwst", TESTS])
        row = {
            "case": name,
            "shape": [nints, ngroups],
            "jwst_wall_s": round(j_wall, 1),
            "jwst_peak_gib": round(j_peak / 2**30, 2),
        }
        for backend in args.backends:
            b = out / f"tsogpu-{backend}"
            key = "tsogpu" if backend == "numpy" else f"tsogpu_{backend}"
            # all cores, then one thread, as jwst's default maximum_cores='1' uses one core
            for threads, suffix in ((None, ""), (1, "_1thread")):
                extra = ["--backend", backend] + (["--threads", "1"] if threads else [])
                dest = b if threads is None else b / "1"
                wall, peak, _ = run_tsogpu(uncal, refs, dest, *extra)
                row[f"{key}{suffix}_identical_to_jwst"] = same_products(dest, out / "jwst")
                row[f"{key}{suffix}_wall_s"] = round(wall, 1)
                row[f"{key}{suffix}_peak_gib"] = round(peak / 2**30, 2)
                row[f"speedup{'' if backend == 'numpy' else '_' + backend}{suffix}"] = round(
                    j_wall / wall, 2
                )
            row[f"memory_ratio{'' if backend == 'numpy' else '_' + backend}"] = round(
                row[f"{key}_peak_gib"] * 2**30 / j_peak, 3
            )
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "what": "tsogpu run (NumPy and native backends, default memory budget; default threads "
        "= the cores, and --threads 1) vs jwst 3.0 Detector1Pipeline (its default "
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
