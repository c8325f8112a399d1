"""Evidence for ``refpix.sky_method`` (docs/options.md): residual 1/f and white-light scatter.

Simulated NIRSpec BOTS (G395H, SUB2048 cut to 32 x 512) and NIRISS SOSS (SUBSTRIP256 cut to
96 x 512) segments with injected 1/f (6 DN rms per fast-read line), run with jump skipped:

* ``no 1/f injected``: the same seed without 1/f (the truth's noise floor);
* ``jwst refpix``: the default chain (jwst's reference-pixel correction only);
* ``glbs`` and ``roeba``: ``refpix.sky_method``, automatic trace mask.

Figures: ``line_rms``, the rms over integrations and lines of the per-line median of
(rateints - truth rate) over the sky pixels, DN/s; ``wlc_ppm``, the rms of the white light
curve (the sum of rateints over the trace mask, less pixels NaN in some integration)
divided by the injected light curve, normalised, in ppm. Writes bench/results/oneoverf.json.

Run: ``python bench/oneoverf_evidence.py`` (about 1-2 minutes).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tsogpu.config import PipelineConfig
from tsogpu.io.reffiles import load_references
from tsogpu.io.uncal import inspect_uncal, read_primary_header, read_uncal
from tsogpu.pipeline import required_reftypes, run_segment
from tsogpu.simulate import simulate

CASES = {
    "nrs_bots": dict(nints=40, ngroups=5, nrows=None, ncols=512),
    "niriss_soss": dict(nints=40, ngroups=5, nrows=96, ncols=512),
}


def _run(sim, sets, mask=None):
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, skip={"jump"})
    config = config.with_overrides(sets=sets)
    exposure, _, _ = inspect_uncal(sim.uncal)
    refs, _ = load_references(
        exposure, required_reftypes(config), config.refs, header=read_primary_header(sim.uncal)
    )
    seg = read_uncal(sim.uncal)
    if mask is not None:
        seg.trace_mask = mask
    return run_segment(seg, refs, config)


def _figures(result, sim, mask, line_axis):
    truth = np.load(sim.truth)
    refpix = truth["refpix"]
    res = result.rateints[0] - truth["rate"]
    res = np.where(mask | refpix, np.nan, res)
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # lines of reference pixels only
        per_line = np.nanmedian(res, axis=1 if line_axis == "x" else 2)
    per_line -= np.nanmedian(per_line, axis=-1, keepdims=True)  # a level is not 1/f
    aperture = mask & ~refpix & np.isfinite(result.rateints[0]).all(axis=0)  # no saturated
    flux = np.where(aperture, result.rateints[0], 0.0).sum(axis=(1, 2), dtype=np.float64)
    wlc = flux / truth["light_curve"]
    return {
        "line_rms": float(np.sqrt(np.nanmean(per_line**2))),
        "wlc_ppm": float(np.std(wlc / wlc.mean()) * 1e6),
    }


def main(out=Path(__file__).parent / "results" / "oneoverf.json"):
    table = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for mode, kw in CASES.items():
            kw = {k: v for k, v in kw.items() if v is not None}
            noisy = simulate(mode, Path(tmp) / mode, seed=7, one_over_f=True,
                             full_frame_refs=False, **kw)  # fmt: skip
            clean = simulate(mode, Path(tmp) / f"{mode}_clean", seed=7, one_over_f=False,
                             full_frame_refs=False, **kw)  # fmt: skip
            runs = {m: _run(noisy, [f"refpix.sky_method={m}"]) for m in ("glbs", "roeba")}
            mask = runs["glbs"].segment.trace_mask  # one aperture and sky for every run
            axis = runs["glbs"].one_over_f.line_axis
            rows = {
                "no 1/f injected": _figures(_run(clean, []), clean, mask, axis),
                "jwst refpix": _figures(_run(noisy, []), noisy, mask, axis),
                **{m: _figures(r, noisy, mask, axis) for m, r in runs.items()},
            }
            injected = np.load(noisy.truth)["one_over_f"]
            table[mode] = {
                "shape": list(noisy.shape),
                "masked_pixels": int(mask.sum()),
                "injected_rms_dn": float(injected.std()),
                "runs": rows,
            }
            print(mode, json.dumps(table[mode], indent=1), file=sys.stderr)
    table["seconds"] = round(time.perf_counter() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2) + "\n")
    return table


if __name__ == "__main__":
    main()
