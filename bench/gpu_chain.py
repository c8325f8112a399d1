"""GPU figures of the CUDA backend: per-step and per-kernel times, bandwidth, whole chain.

    python bench/gpu_chain.py [--cases nrs_bots:800x20 niriss_soss:100x9] [--check-ints 6]
                              [--out bench/results/gpu_chain.json]

Runs on a GPU machine with NumPy and CuPy only (the device image has no astropy): the
segments are synthesized here (uint16 ramps with a spectral trace, read noise, cosmic rays and
a few saturating pixels; references with the same geometry), with the exposure keywords of
``tsogpu.simulate.MODES``. For each case it records

- the device-to-device copy bandwidth (bytes read + written), the ceiling for these kernels;
- host-to-device time of the uint16 segment, each step's GPU time (CUDA events), the whole
  chain's GPU time, device-to-host time of the products;
- per kernel: launches and GPU time (events around every launch);
- each step's achieved bandwidth over its floor bytes (the ramp and GROUPDQ read once and
  written once), against the copy bandwidth;
- identity: the first ``--check-ints`` integrations run on the NumPy backend and on the GPU;
  DQ must be identical and every float within 1 ulp (the count of differing values is kept).
"""

import argparse
import datetime
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsogpu import pipeline
from tsogpu.config import PipelineConfig
from tsogpu.pipeline.steps import fit_and_scale, run_jump
from tsogpu.segment import Exposure, Segment
from tsogpu.simulate import MODES

TFRAME = {"nrs_bots": 0.90156, "niriss_soss": 5.49400}


@dataclass
class Ref:
    reftype: str
    path: str
    name: str
    arrays: dict
    header: dict


def synth(mode, nints, ngroups, seed=1):
    """A uint16 segment and its references (float32 references, standard DQ bits)."""
    m = MODES[mode]
    ny, nx = m.subsize2, m.subsize1
    rng = np.random.default_rng(seed)
    exp = Exposure(
        instrument=m.instrument,
        detector=m.detector,
        exp_type=m.exp_type,
        readpatt=m.readpatt,
        nints=nints,
        ngroups=ngroups,
        nframes=1,
        groupgap=0,
        tframe=TFRAME[mode],
        tgroup=TFRAME[mode],
        subarray=m.subarray,
        substrt1=m.substrt1,
        substrt2=m.substrt2,
        subsize1=m.subsize1,
        subsize2=m.subsize2,
        fastaxis=m.fastaxis,
        slowaxis=m.slowaxis,
        noutputs=m.noutputs,
        intstart=1,
        intend=nints,
    )
    bias = (12000 + rng.normal(0, 300, (ny, nx))).astype(np.float32)
    rows = np.arange(ny)[:, None]
    trace = np.exp(-0.5 * ((rows - ny * m.trace_y) / max(m.trace_sigma, 1.0)) ** 2)
    flux = (2.0 + 900.0 * trace * np.linspace(0.3, 1.0, nx)[None, :]).astype(np.float32)
    flux[ny // 2, 100:104] = 9000.0  # saturating pixels
    data = np.empty((nints, ngroups, ny, nx), np.uint16)
    for i in range(nints):
        ramp = bias + flux * np.arange(1, ngroups + 1, dtype=np.float32)[:, None, None]
        ramp += rng.normal(0, 10, ramp.shape).astype(np.float32)
        hit = rng.random((ny, nx)) < 2e-3 * ngroups  # about 2e-3 per pixel per group
        start = rng.integers(1, ngroups, (ny, nx))
        ramp += np.where(hit & (np.arange(ngroups)[:, None, None] >= start), 800.0, 0.0)
        data[i] = np.clip(ramp, 0, 65535).astype(np.uint16)
    seg = Segment(
        data=data,
        groupdq=np.zeros(data.shape, np.uint8),
        pixeldq=np.zeros((ny, nx), np.uint32),
        exposure=exp,
    )
    z = np.zeros((ny, nx), np.uint32)
    coeffs = np.zeros((5, ny, nx), np.float32)
    coeffs[1], coeffs[2] = 1.0, 2e-7
    refs = {
        "mask": Ref("mask", "", "synthetic", {"dq": z.copy()}, {}),
        "saturation": Ref(
            "saturation",
            "",
            "synthetic",
            {"data": np.full((ny, nx), 60000, np.float32), "dq": z},
            {},
        ),
        "superbias": Ref(
            "superbias", "", "synthetic", {"data": bias, "err": bias * 0, "dq": z}, {}
        ),
        "linearity": Ref("linearity", "", "synthetic", {"coeffs": coeffs, "dq": z}, {}),
        "dark": Ref(
            "dark",
            "",
            "synthetic",
            {"data": np.full((ngroups, ny, nx), 0.01, np.float32).cumsum(0), "dq": z},
            {"NFRAMES": 1, "GROUPGAP": 0},
        ),
        "gain": Ref("gain", "", "synthetic", {"data": np.full((ny, nx), m.gain, np.float32)}, {}),
        "readnoise": Ref(
            "readnoise", "", "synthetic", {"data": np.full((ny, nx), m.readnoise, np.float32)}, {}
        ),
    }
    return seg, refs


class TimedKernels:
    """Wraps DeviceKernels: CUDA events around every launch, summed per kernel name."""

    def __init__(self, k):
        self.k, self.xp, self.hash = k, k.xp, k.hash
        self.events = []

    def launch(self, name, n, *args):
        cp = self.xp
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        self.k.launch(name, n, *args)
        b.record()
        self.events.append((name, a, b))

    def summary(self):
        self.xp.cuda.Device().synchronize()
        out = {}
        for name, a, b in self.events:
            t = self.xp.cuda.get_elapsed_time(a, b) / 1e3
            n, s = out.get(name, (0, 0.0))
            out[name] = (n + 1, s + t)
        self.events = []
        return {k: {"launches": n, "gpu_s": s} for k, (n, s) in sorted(out.items())}


def copy_bandwidth(cp, nbytes=2**31, reps=10):
    a = cp.random.random(nbytes // 8)
    b = cp.empty_like(a)
    b[...] = a
    times = []
    for _ in range(reps):
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        e0.record()
        b[...] = a
        e1.record()
        e1.synchronize()
        times.append(cp.cuda.get_elapsed_time(e0, e1) / 1e3)
    return 2 * a.nbytes / float(np.median(times))


def run_gpu(ops, seg, refs, config):
    """The chain on the GPU with a CUDA event after each step; (Result, timings)."""
    cp = ops.xp
    marks = [("start", cp.cuda.Event())]
    marks[0][1].record()

    def mark(step, _seg=None):
        e = cp.cuda.Event()
        e.record()
        marks.append((step, e))

    t0 = time.perf_counter()
    dseg, drefs = ops.to_device(seg, refs)
    mark("to_device")
    s = pipeline.run_prejump(dseg, drefs, config, mark, ops)
    found = run_jump(s, drefs, config, ops=ops)
    mark("jump")
    rateints, rate = fit_and_scale(s, drefs, config, False, ops)
    mark("ramp_fit+gain_scale")
    host = [ops.to_host(a) for a in (*rateints, *rate)]
    mark("to_host")
    cp.cuda.Device().synchronize()
    wall = time.perf_counter() - t0
    steps = {
        name: cp.cuda.get_elapsed_time(prev, e) / 1e3
        for (_, prev), (name, e) in zip(marks, marks[1:], strict=False)
    }
    return host, found, steps, wall


def ulps(a, b):
    """Largest ulp distance between float32 arrays (NaN must match NaN)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a) | np.isnan(b)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf"), int((np.isnan(a) != np.isnan(b)).sum())
    ia = a[~nan].view(np.int32).astype(np.int64)
    ib = b[~nan].view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    d = np.abs(ia - ib)
    return int(d.max(initial=0)), int((d > 0).sum())


def main():
    import cupy as cp

    from tsogpu.backends.kernel_ops import KernelOps
    from tsogpu.launchers import cuda_build

    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=["nrs_bots:800x20", "niriss_soss:100x9"])
    ap.add_argument("--check-ints", type=int, default=6)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_chain.json"))
    args = ap.parse_args()
    ok, device = cuda_build.available()
    if not ok:
        raise SystemExit(f"no GPU: {device}")
    config = PipelineConfig(backend="cupy")
    timed = TimedKernels(cuda_build.DeviceKernels())
    ops = KernelOps(timed)
    bw = copy_bandwidth(cp)
    print(f"{device}: device-to-device copy {bw / 1e12:.2f} TB/s")
    warm, wrefs = synth("nrs_bots", 4, 5)
    run_gpu(ops, warm, wrefs, config)  # compiles the module
    timed.summary()
    rows = []
    for case in args.cases:
        mode, size = case.split(":")
        nints, ngroups = map(int, size.split("x"))
        seg, refs = synth(mode, nints, ngroups)
        _, found, steps, wall = run_gpu(ops, seg, refs, config)
        kernels = timed.summary()
        floor = 2 * (seg.data.size * 4 + seg.groupdq.size)  # ramp + GROUPDQ, read and written
        chain = sum(t for s, t in steps.items() if s not in ("to_device", "to_host"))
        check = {}
        if args.check_ints:
            cut = Segment(
                **{
                    **seg.__dict__,
                    "data": seg.data[: args.check_ints].copy(),
                    "groupdq": seg.groupdq[: args.check_ints].copy(),
                }
            )
            gpu, _, _, _ = run_gpu(ops, cut, refs, config)
            timed.summary()
            cpu = pipeline.run_segment(cut, refs, PipelineConfig())
            names = ["rateints." + n for n in ("sci", "err", "dq", "var_poisson", "var_rnoise")]
            names += ["rate." + n for n in ("sci", "err", "dq", "var_poisson", "var_rnoise")]
            for name, g, c in zip(names, gpu, (*cpu.rateints, *cpu.rate), strict=True):
                if c.dtype.kind == "u":
                    check[name] = {"identical": bool(np.array_equal(g, c))}
                else:
                    worst, count = ulps(g, c)
                    check[name] = {"max_ulps": worst, "values_differing": count}
        row = {
            "case": f"{mode} {nints}x{ngroups}",
            "uncal_bytes": int(seg.data.nbytes),
            "steps_gpu_s": steps,
            "chain_gpu_s": chain,
            "wall_s_with_transfers": wall,
            "floor_bytes_per_step": floor,
            "achieved_bw_per_step_TBps": {
                s: floor / t / 1e12 for s, t in steps.items() if s not in ("to_device", "to_host")
            },
            "kernels": kernels,
            "primary_cosmic_rays_found": None if found is None else int(found.number_crs),
            "identity_vs_numpy": check,
        }
        rows.append(row)
        print(f"\n{row['case']}: chain {chain:.3f} s GPU, {wall:.2f} s with transfers")
        for s, t in steps.items():
            print(f"  {s:<22} {t * 1e3:9.1f} ms")
        for name, k in sorted(kernels.items(), key=lambda kv: -kv[1]["gpu_s"])[:8]:
            print(f"  kernel {name:<28} {k['launches']:5d} x  {k['gpu_s'] * 1e3:9.1f} ms")
        print("  identity:", json.dumps(check))
    out = {
        "device": device,
        "date": datetime.date.today().isoformat(),
        "host": platform.node(),
        "copy_bandwidth_TBps": bw / 1e12,
        "kernel_hash": timed.hash,
        "command": "python bench/gpu_chain.py --cases " + " ".join(args.cases),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
