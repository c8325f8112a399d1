"""Recall and false-positive rate of the jump detectors on short ramps (2 and 3 groups).

Simulated NIRSpec BOTS segments (tsogpu.simulate, cosmic rays of 100 to 10^4 DN injected at a
known rate) go through the pre-jump steps once; then jump runs three ways on the same ramp:

* ``up-the-ramp``: jwst's two-point-difference detector, the default (jwst skips it for
  2 groups);
* ``time-domain``: ``--set jump.time_domain=alone`` (exoTEDRF's running median);
* ``both``: ``--set jump.time_domain=with_ramp``;
* the time-domain detector with lower thresholds (7 and 5 instead of exoTEDRF's 10).

A cosmic ray counts as found when its group (the first group after the hit) has JUMP_DET;
recall is found / injected, also by amplitude. A false positive is a JUMP_DET group (groups
1 .. ngroups-1) without an injected cosmic ray; the rate is per such sample. Flags on the 4
neighbours of an injected hit (jwst flags neighbours on purpose) are counted apart.

    python bench/tdjump_recall.py [--out bench/results/tdjump_recall.json] [--work DIR]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tsogpu import dq
from tsogpu.config import PipelineConfig
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.pipeline import run_prejump
from tsogpu.pipeline.steps import run_jump
from tsogpu.simulate import simulate

NINTS, NCOLS, CR_RATE, SEED = 200, 256, 2e-3, 5
DETECTORS = {  # name -> --set options
    "up-the-ramp": ["jump.time_domain=off"],
    "time-domain": ["jump.time_domain=alone"],
    "both": ["jump.time_domain=with_ramp"],
    "time-domain, threshold 7": ["jump.time_domain=alone", "jump.time_threshold=7"],
    "time-domain, threshold 5": ["jump.time_domain=alone", "jump.time_threshold=5"],
}
AMPLITUDE_BINS = (100.0, 300.0, 1000.0, 3000.0, 10000.0)


def evaluate(groupdq, cr, refpix):
    """Recall (overall and by amplitude) and false positives of ``groupdq``'s JUMP bits."""
    nints, ngroups, ny, nx = groupdq.shape
    flags = (groupdq & dq.JUMP_DET) != 0
    truth = np.zeros_like(flags)
    truth[cr["int"], cr["group"], cr["y"], cr["x"]] = True
    found = flags[cr["int"], cr["group"], cr["y"], cr["x"]]
    near = np.zeros_like(flags)  # the 4 neighbours of each hit, same integration and group
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        y, x = cr["y"] + dy, cr["x"] + dx
        ok = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
        near[cr["int"][ok], cr["group"][ok], y[ok], x[ok]] = True
    false = flags & ~truth
    false[:, 0] = False  # group 0 cannot follow a jump
    samples = nints * (ngroups - 1) * int(np.count_nonzero(~refpix)) - cr.size
    bins = {}
    for lo, hi in zip(AMPLITUDE_BINS[:-1], AMPLITUDE_BINS[1:], strict=True):
        sel = (cr["amplitude"] >= lo) & (cr["amplitude"] < hi)
        bins[f"{lo:g}-{hi:g} DN"] = _ratio(np.count_nonzero(found[sel]), np.count_nonzero(sel))
    return {
        "injected": int(cr.size),
        "found": int(np.count_nonzero(found)),
        "recall": _ratio(np.count_nonzero(found), cr.size),
        "recall_by_amplitude": bins,
        "false_positives": int(np.count_nonzero(false)),
        "false_positives_next_to_a_hit": int(np.count_nonzero(false & near)),
        "false_positive_rate": _ratio(np.count_nonzero(false), samples),
        "false_positive_rate_away_from_hits": _ratio(np.count_nonzero(false & ~near), samples),
    }


def _ratio(a, b):
    return None if b == 0 else round(float(a) / float(b), 7)


def run(work, ngroups):
    sim = simulate(
        "nrs_bots", Path(work) / f"g{ngroups}", nints=NINTS, ngroups=ngroups, ncols=NCOLS,
        seed=SEED, cr_rate=CR_RATE, full_frame_refs=False,
    )  # fmt: skip
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    exposure, _, _ = inspect_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    seg = run_prejump(read_uncal(sim.uncal), refs, config)
    truth = np.load(sim.truth)
    out = {}
    for name, sets in DETECTORS.items():
        cfg = config.with_overrides(sets=sets)
        s = type(seg)(**{**vars(seg), "step_status": dict(seg.step_status)})
        t0 = time.perf_counter()
        run_jump(s, refs, cfg)
        out[name] = {
            "status": s.step_status["jump"],
            **evaluate(s.groupdq, truth["cr"], truth["refpix"]),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    return out


def table(results):
    lines = [
        "| groups | detector | injected | recall | recall 100-300 DN | FP rate "
        "| FP rate away from hits |",
        "|---|---|---|---|---|---|---|",
    ]
    for ngroups, per in results["segments"].items():
        for name, r in per.items():
            rec = "-" if r["status"] == "SKIPPED" else f"{r['recall']:.3f}"
            low = r["recall_by_amplitude"]["100-300 DN"]
            lines.append(
                f"| {ngroups} | {name} ({r['status'].lower()}) | {r['injected']} | {rec} | "
                f"{low:.3f} | "
                f"{r['false_positive_rate']:.2e} | {r['false_positive_rate_away_from_hits']:.2e} |"
            )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tdjump_recall.json"))
    ap.add_argument("--work", default=None, help="folder for the simulated files (default: temp)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tdjump-", dir=args.work) as work:
        results = {
            "command": "python bench/tdjump_recall.py",
            "simulation": {
                "mode": "nrs_bots",
                "nints": NINTS,
                "ncols": NCOLS,
                "cr_rate": CR_RATE,
                "seed": SEED,
                "amplitudes": "10**U(2, 4) DN",
            },  # fmt: skip
            "parameters": {"time_window": 5, "time_threshold": 10.0},
            "segments": {str(g): run(work, g) for g in (2, 3)},
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
