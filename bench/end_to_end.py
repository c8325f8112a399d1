"""End-to-end time of a segment against the floor of reading its file, cold and warm cache.

    python bench/end_to_end.py [--cases nrs_bots:800x20 niriss_soss:100x9]
                               [--backends numpy native cupy] [--work DIR] [--out JSON]

For each segment (built once by bench/segments.py) and backend, in fresh processes:
  - the file-read floor: the uncal's bytes read in 64 MiB blocks, once after evicting the file
    from the page cache (posix_fadvise DONTNEED: cold) and once again (warm);
  - `tsogpu run` end to end, cold and warm, with its peak resident memory;
  - the shares of one warm run: reading the pixels (tsogpu.io.uncal.read_uncal over the
    integrations, in the pipeline's chunks, unconverted as the pipeline reads them), writing
    the products (the writers on the arrays of the products just made), and the rest;
  - where pass 1 streams its chunks (one at a time: the GPU, the native build), the busy
    seconds of its stages in the warm run, read / h2d / kernels / d2h / write (the kernels'
    device time on a GPU; overlapped, so they add up to more than the pass's wall time), from
    the pipeline's "pass 1 stages" log line;
  - the products of every run compared with the first backend's (bit for bit, and as values
    with NaN where NaN: a GPU's NaN payloads may differ).
Writes bench/results/end_to_end_cpu.json (--out). bench/device_run.sh runs it on a GPU machine
with --backends cupy native; bench/gpu_chain.py measures the device side step by step.
"""

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

from segments import build, measure, run_tsogpu
from vs_jwst import same_products

BLOCK = 64 * 2**20
SHARES = """
import re, sys, time
from pathlib import Path
from astropy.io import fits
from tsogpu.config import PipelineConfig
from tsogpu.io import products, uncal
from tsogpu.memory import keep_freed_memory
from tsogpu.pipeline.planning import plan_chunks
keep_freed_memory()
path, out = sys.argv[1], Path(sys.argv[2])
_, shape, zf = uncal.inspect_uncal(path)
plan = plan_chunks(shape, PipelineConfig(), zf, threads=1)
step = shape[0] if plan.in_memory else plan.ints
t0 = time.perf_counter()
for i in range(0, shape[0], step):
    uncal.read_uncal(path, slice(i, i + step), raw=True)
read = time.perf_counter() - t0
prov = products.Provenance(version="bench", backend="bench", params={}, refs={})
write = 0.0
for suffix, writer in (("rateints", products.write_rateints), ("rate", products.write_rate)):
    src = next(out.glob(f"*_{suffix}.fits"))
    arrays = [fits.getdata(src, e) for e in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE")]
    products.load_meta(path)
    t0 = time.perf_counter()
    writer(out / f"shares_{suffix}.fits", path, *arrays, prov)
    write += time.perf_counter() - t0
    (out / f"shares_{suffix}.fits").unlink()
print("SHARES", read, write)
rc = 0"""  # measure() appends "; ..." to this line


# tsogpu run that prints pass 1's "pass 1 stages" log line (INFO) while the rest stays quiet
STAGED = (
    "import logging, re, sys; from tsogpu.cli import main; seen = []; "
    "h = logging.Handler(); h.emit = lambda r: seen.append(r.getMessage()); "
    "lg = logging.getLogger('tsogpu.pipeline'); lg.addHandler(h); lg.setLevel(logging.INFO); "
    "lg.propagate = False; rc = main(sys.argv[1:]); "
    "[print('STAGES', m.split('(overlapped): ')[1]) for m in seen if 'pass 1 stages' in m]"
)


def run_staged(uncal, refs, out, *extra):
    """``tsogpu run`` in a fresh process: (wall, peak, pass 1's busy seconds or None)."""
    args = ["run", uncal, "--out", out, "-q", *extra]
    args += [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    wall, peak, text = measure(STAGED, args)
    found = re.search(r"STAGES (\{.*\})", text)
    return wall, peak, json.loads(found.group(1)) if found else None


def evict(path):
    """Drop ``path``'s pages from the page cache (no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_floor(path):
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(BLOCK)
        while fh.readinto(buf):
            pass
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/tsogpu-bench")
    ap.add_argument("--cases", nargs="+", default=["nrs_bots:800x20", "niriss_soss:100x9"])
    ap.add_argument("--backends", nargs="+", default=["numpy", "native"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "end_to_end_cpu.json"))
    args = ap.parse_args()
    if "native" in args.backends:
        from tsogpu.launchers import host_build

        host_build.kernels()  # compiled once, outside the timings
    if "cupy" in args.backends:
        from tsogpu.backends.kernel_ops import CudaOps

        CudaOps.current()  # NVRTC's compile lands in CuPy's kernel cache, outside the timings
        gpu = CudaOps.current().device
    else:
        gpu = None
    rows = []
    for case in args.cases:
        mode, size = case.split(":")
        nints, ngroups = map(int, size.split("x"))
        uncal, refs = build(Path(args.work), mode, nints, ngroups)
        refs = {k: str(v) for k, v in refs.items()}
        evict(uncal)
        cold = read_floor(uncal)
        warm = min(read_floor(uncal) for _ in range(2))
        row = {
            "case": f"{mode} {nints}x{ngroups}",
            "file_gib": round(uncal.stat().st_size / 2**30, 3),
            "read_floor_cold_s": round(cold, 2),
            "read_floor_warm_s": round(warm, 2),
        }
        first = None
        for backend in args.backends:
            out = Path(args.work) / f"e2e-{mode}-{size}-{backend}"
            evict(uncal)
            for ref in refs.values():
                evict(ref)
            t_cold, _, _ = run_tsogpu(uncal, refs, out / "cold", "--backend", backend)
            t_warm, peak, stages = run_staged(uncal, refs, out / "warm", "--backend", backend)
            _, _, text = measure(SHARES, [uncal, out / "warm"])
            read, write = map(float, text.split("SHARES")[1].split()[:2])
            first = first or out / "warm"
            row[backend] = {
                "e2e_cold_s": round(t_cold, 1),
                "e2e_warm_s": round(t_warm, 1),
                "peak_gib": round(peak / 2**30, 2),
                "over_cold_floor": round(t_cold / cold, 1),
                "over_warm_floor": round(t_warm / warm, 1),
                "read_pixels_s": round(read, 2),
                "write_products_s": round(write, 2),
                "steps_and_rest_s": round(t_warm - read - write, 1),
                "identical_to_first_backend": same_products(out / "warm", first)
                and same_products(out / "cold", first),
                "equal_values_to_first_backend": same_products(out / "warm", first, values=True),
            }
            if stages is not None:
                row[backend]["pass1_busy_s"] = stages
                row[backend]["pass1_share_of_wall"] = {
                    k: round(v / stages["wall"], 2) for k, v in stages.items() if k != "wall"
                }
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "what": "tsogpu run end to end (fresh process, default budget and threads) against "
        "reading the uncal file (cold: evicted from the page cache; warm: cached), and the "
        "time of one warm run spent reading pixels and writing products; pass 1's busy "
        "seconds per stage where it streams its chunks",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "gpu": gpu,
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    path = Path(args.out)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
