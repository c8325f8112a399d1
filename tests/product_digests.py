"""Digests of the products a fixed set of runs writes: the bit-for-bit guard of refactors.

Each case simulates a segment (or an exposure of segments) and runs ``tsogpu run`` on it
through the command line, the interface no refactor changes, with the case's options. A
product's digest is the SHA-256 of each extension's data as stored in the file. The metadata
is left out: header cards and the ASDF extension (stdatamodels' copy of the metadata) hold
dates, paths, the backend and hashes of the build, which may change; the values may not.

``python tests/product_digests.py --write`` records the digests of every case on the NumPy
and native backends in ``product_digests.json``; ``tests/test_product_digests.py`` checks
that every backend present still writes them.
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

DIGESTS = Path(__file__).with_name("product_digests.json")

# name -> (simulate() arguments, tsogpu run options, segments in the exposure)
CASES = {
    "demo_nrs_bots": ({"mode": "nrs_bots", "nints": 20, "ngroups": 10, "seed": 1}, [], 1),
    "demo_nrs_bots_chunked": (
        {"mode": "nrs_bots", "nints": 20, "ngroups": 10, "seed": 1},
        ["--max-memory", "600M", "--threads", "2"],
        1,
    ),
    "demo_niriss_soss": ({"mode": "niriss_soss", "nints": 6, "ngroups": 5, "seed": 1}, [], 1),
    "demo_nircam_grism": (
        {"mode": "nircam_grism", "nints": 8, "ngroups": 6, "seed": 1},
        ["--set", "jump.after_jump_flag_dn1=100", "--set", "jump.after_jump_flag_time1=50"],
        1,
    ),
    "options_saturation": (
        {"mode": "nrs_bots", "nints": 8, "ngroups": 8, "seed": 2},
        [
            "--set", "saturation.fraction=0.9",
            "--set", "saturation.column_saturation=true",
            "--set", "saturation.groups_before=1",
            "--set", "dq_init.flag_first=1",
            "--set", "jump.time_domain=with_ramp",
            "--save-ramp",
        ],
        1,
    ),
    "options_sky_chunked": (
        {"mode": "nrs_bots", "nints": 8, "ngroups": 6, "seed": 3, "one_over_f": True},
        [
            "--set", "refpix.sky_method=roeba",
            "--set", "superbias.scale=mean",
            "--set", "saturation.fixed_map=pixel",
            "--max-memory", "200M",
        ],
        1,
    ),
    "options_exposure_wide": (
        {"mode": "niriss_soss", "nints": 3, "ngroups": 4, "seed": 4, "one_over_f": True},
        [
            "--exposure-wide",
            "--set", "refpix.sky_method=glbs",
            "--set", "superbias.scale=exposure",
            "--set", "saturation.fixed_map=column",
            "--set", "jump.time_domain=alone",
        ],
        2,
    ),
}  # fmt: skip


def hdu_digests(path):
    """{extension name: sha256 of its data as stored} of one FITS product."""
    from astropy.io import fits

    out = {}
    with fits.open(path) as hdul:
        for k, hdu in enumerate(hdul):
            name = hdu.name or f"HDU{k}"
            if hdu.header.get("NAXIS", 0) == 0 or name == "ASDF":
                continue
            info = hdul.fileinfo(k)  # where the data stand in the file, padding included
            with open(path, "rb") as f:
                f.seek(info["datLoc"])
                out[name] = hashlib.sha256(f.read(info["datSpan"])).hexdigest()
    return out


def run_case(name, backend, work):
    """{product file name: hdu_digests} of case ``name`` run on ``backend`` in ``work``."""
    from tsogpu.simulate import simulate

    sim_args, options, nseg = CASES[name]
    work = Path(work)
    sims = [
        simulate(out_dir=work / "in", segment=(k, nseg), full_frame_refs=False, **sim_args)
        for k in range(1, nseg + 1)
    ]
    refs = [f"--ref={t}={p}" for t, p in sims[0].refs.items()]
    out = work / f"out-{backend}"
    argv = ["run", *(str(s.uncal) for s in sims), "--out", str(out), *refs, *options]
    # a process of its own: the memory plan sees a fresh process's memory, and the command
    # line's process-wide malloc settings stay out of the caller
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from tsogpu.cli import main; sys.exit(main())"]
        + [*argv, "--backend", backend, "-v"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{name} on {backend}: exit {run.returncode}:\n{run.stderr}")
    plans = [line for line in run.stderr.splitlines() if "memory budget" in line]
    if ("--max-memory" in options) != any("per chunk" in line for line in plans):
        raise RuntimeError(f"{name} on {backend}: not run as the case means to: {plans}")
    return {p.name: hdu_digests(p) for p in sorted(out.glob("*.fits"))}


def main(argv):
    import tempfile

    if argv != ["--write"]:
        print(__doc__)
        return 2
    recorded = {}
    for name in CASES:
        per_backend = {}
        for backend in ("numpy", "native"):
            with tempfile.TemporaryDirectory() as work:
                per_backend[backend] = run_case(name, backend, work)
        if per_backend["numpy"] != per_backend["native"]:
            raise SystemExit(f"{name}: the backends disagree; nothing written")
        recorded[name] = per_backend["numpy"]
        print(name, "ok", flush=True)
    DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
