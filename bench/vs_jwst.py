"""tsogpu against jwst 3.0's calwebb_detector1 on the same segments and machine.

    python bench/vs_jwst.py [--work DIR] [--cases nrs_bots:200x20 nrs_bots:400x20 niriss_soss:100x9]
                            [--runs jwst jwst_all default default_1thread numpy before]
                            [--before SRC] [--reuse-jwst]

Each run is a fresh process on the same machine, one after the other:

- ``jwst``: Detector1Pipeline with its default maximum_cores='1';
- ``jwst_all``: the same with maximum_cores='all' for jump and ramp_fit (its multiprocessing);
- ``default``: ``tsogpu run`` with its default backend (auto: here the native build) and
  threads (the cores); ``default_1thread``: the same with ``--threads 1``;
- ``numpy``: ``tsogpu run --backend numpy``;
- ``before``: ``tsogpu run --backend native`` from another checkout (``--before SRC``, put
  first on PYTHONPATH), the code before a change, measured beside it.

jwst runs offline (CRDS serverless, every reference overridden), on the same simulated
segment and reference files. The native library is built before the clock starts. Each
tsogpu run logs with -v: its steps' seconds (summed over chunks), pass 1's and pass 2's busy
seconds and the products' write time are kept as its ``breakdown``. Records wall time, peak
resident memory (VmHWM) and its ratio to the uncal file, the 1-minute load average before
the run, and whether the rateints/rate products equal jwst's bit for bit; writes
bench/results/vs_jwst.json.
"""

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

from segments import build, measure, run_tsogpu

JWST = (
    "import json, re, sys; sys.path.insert(0, sys.argv[4]); import jwst_oracle as o; "
    "o.configure_offline_crds(); from jwst.pipeline import Detector1Pipeline; "
    "Detector1Pipeline.call(sys.argv[1], steps=o.step_config(json.loads(sys.argv[2]), (), (), "
    "json.loads(sys.argv[5])), output_dir=sys.argv[3], save_results=True); rc = 0"
)
ALL_CORES = {"jump": {"maximum_cores": "all"}, "ramp_fit": {"maximum_cores": "all"}}
TESTS = Path(__file__).resolve().parent.parent / "tests"
EXTENSIONS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")
RUNS = ("jwst", "jwst_all", "default", "default_1thread", "numpy", "before")
# tsogpu run options of each tsogpu run
TSOGPU_RUNS = {
    "default": [],
    "default_1thread": ["--threads", "1"],
    "numpy": ["--backend", "numpy"],
    "before": ["--backend", "native"],
}


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


def breakdown(log):
    """Seconds from a ``tsogpu run -v`` log: each step's (summed over chunks), pass 1's and
    pass 2's busy seconds per stage, the products' write and the whole."""
    steps = {}
    for step, seconds in re.findall(r"steps: (\w+): COMPLETE in ([\d.]+) s", log):
        steps[step] = round(steps.get(step, 0.0) + float(seconds), 2)
    out = {"steps_summed": steps}
    for key, pattern in (
        ("pass1_busy", r"pass 1 stages.*?: (\{.*\})"),
        ("pass2_busy", r"pass 2.*?: (\{.*\})"),
    ):
        found = re.search(pattern, log)
        if found:
            out[key] = json.loads(found.group(1))
    found = re.search(r"products written in ([\d.]+) s; done in ([\d.]+) s", log)
    if found:
        out["products_written_s"], out["process_file_s"] = map(float, found.groups())
    found = re.search(r"memory budget .*", log)
    if found:
        out["plan"] = found.group(0)
    return out


def load():
    return round(os.getloadavg()[0], 2)


def run_jwst(uncal, refs, dest, params):
    dest.mkdir(parents=True, exist_ok=True)
    before = load()
    wall, peak, _ = measure(JWST, [uncal, json.dumps(refs), dest, TESTS, json.dumps(params)])
    return {"wall_s": round(wall, 1), "peak_gib": round(peak / 2**30, 2), "load_before": before}


def run_ours(name, uncal, refs, dest, before_src):
    env = {"PYTHONPATH": before_src} if name == "before" else None
    before = load()
    wall, peak, text = run_tsogpu(uncal, refs, dest, *TSOGPU_RUNS[name], env=env, log=True)
    backend = re.search(r"backend auto: .*", text)
    return {
        "wall_s": round(wall, 1),
        "peak_gib": round(peak / 2**30, 2),
        "load_before": before,
        "backend_choice": backend.group(0) if backend else None,
        "breakdown": breakdown(text),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-bench")
    ap.add_argument(
        "--cases", nargs="+", default=["nrs_bots:200x20", "nrs_bots:400x20", "niriss_soss:100x9"]
    )
    ap.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS[:-1]))
    ap.add_argument("--before", metavar="SRC", help="checkout of the code before (run 'before')")
    ap.add_argument(
        "--reuse-jwst",
        action="store_true",
        help="take jwst's figures from the existing results file (rerun tsogpu only)",
    )
    args = ap.parse_args()
    runs = list(args.runs) + (["before"] if args.before and "before" not in args.runs else [])
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
        row = {
            "case": name,
            "shape": [nints, ngroups],
            "uncal_gib": round(uncal.stat().st_size / 2**30, 3),
            "runs": {},
        }
        for run in runs:
            if run.startswith("jwst") and name in earlier and run in earlier[name]["runs"]:
                row["runs"][run] = earlier[name]["runs"][run]
            elif run.startswith("jwst"):
                params = ALL_CORES if run == "jwst_all" else {}
                row["runs"][run] = run_jwst(uncal, refs, out / run, params)
            else:
                row["runs"][run] = run_ours(run, uncal, refs, out / run, args.before)
            r = row["runs"][run]
            r["peak_over_uncal"] = round(r["peak_gib"] / row["uncal_gib"], 2)
            print(json.dumps({"case": name, "run": run, **r}), flush=True)
        jwst = row["runs"].get("jwst")
        for run, r in row["runs"].items():
            if run.startswith("jwst"):
                continue
            if jwst is not None:
                r["identical_to_jwst"] = same_products(out / run, out / "jwst")
            for ref in ("jwst", "jwst_all"):
                if ref in row["runs"]:
                    r[f"speedup_vs_{ref}"] = round(row["runs"][ref]["wall_s"] / r["wall_s"], 2)
        rows.append(row)
    result = {
        "what": "tsogpu run vs jwst 3.0 Detector1Pipeline (maximum_cores '1' and, for jump and "
        "ramp_fit, 'all'), same simulated segment and reference files, fresh process each, "
        "one after the other; runs: " + ", ".join(runs),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
