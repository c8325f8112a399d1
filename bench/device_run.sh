#!/usr/bin/env bash
# One full call on a GPU machine (see bench/results/README.md), within 8 minutes on one H100:
#   bash bench/device_wheels.sh            (here, once: the wheels the device image lacks)
#   device run: carry [".whl"], command "bash bench/device_run.sh [all|tests|chain|sweep|stream]"
# Installs the carried wheels, then runs (all, the default, does tests, chain and sweep in
# turn; a part alone where a call's time limit is near):
#   tests   every kernel test on the GPU (the same bodies as the host build in CI: the
#           near-infrared steps, the MIRI steps, emicorr, MIRI ramp fitting), the whole chain
#           against NumPy, and tsogpu sweep on the device;
#   chain   the GPU benchmark, bench/gpu_chain.py (copies, steps, kernels), one segment;
#   sweep   bench/sweep.py with cupy: an 8-point jump.rejection_threshold sweep on NRS BOTS
#           200x20 against one run (the cached ramp stays on the device);
#   stream  the streamed pass 1 (tsogpu/flow.py): its products against the same pass on the
#           default stream and against NumPy, the raw reader and its kernel; then
#           bench/end_to_end.py with cupy and native, cold and warm (not in all: its 800x20
#           segment takes minutes to simulate).
# Logs and JSON under $OUT (at most 8 files).
#
# Host emulation (no GPU, CI's machine): TSOGPU_EMULATE=1 PYTHON=.venv/bin/python
# bash bench/device_run.sh runs the same
# parts with the native build in place of cupy, no wheels and no nvidia-smi, and leaves out the
# cupy-only chain: what must work before a GPU session spends device time on it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/tsogpu-out}; mkdir -p "$OUT"
part=${1:-all}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}  # the device image's; emulation: the environment tsogpu is installed in
status=0
if [[ ${TSOGPU_EMULATE:-0} == 1 ]]; then
    backend=native
else
    backend=cupy
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
fi
check() {  # after a part's pipeline: its command's failure fails the script; later parts run
    [[ ${PIPESTATUS[0]} == 0 ]] || status=1
}
if [[ $part == all || $part == tests ]]; then
    "$PY" -m pytest -q -p no:cacheprovider -m "not slow and not jwst" \
        tests/test_kernels_infra.py tests/test_kernels_*.py tests/test_backend_chain.py \
        tests/test_miri_flag_steps.py tests/test_miri_dark_refpix.py tests/test_emicorr.py \
        tests/test_miri_ramp_fit.py "tests/test_sweep.py::test_gpu_backend" \
        2>&1 | tee "$OUT/gpu_tests.log" | tail -15; check
fi
if [[ $part == all || $part == chain ]] && [[ $backend == cupy ]]; then
    "$PY" bench/gpu_chain.py --cases niriss_soss:100x9 --out "$OUT/gpu_chain.json" \
        2>&1 | tee "$OUT/gpu_chain.log" | tail -30; check
fi
if [[ $part == all || $part == sweep ]]; then
    "$PY" bench/sweep.py --backend "$backend" --work /tmp/tsogpu-bench \
        --results "$OUT/sweep_$backend.json" 2>&1 | tee "$OUT/sweep.log" | tail -30; check
fi
if [[ $part == stream ]]; then
    "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_flow.py tests/test_uncal_io.py \
        tests/test_kernels_infra.py "tests/test_backend_chain.py::test_chunked_chain_equals_numpy" \
        2>&1 | tee "$OUT/stream_tests.log" | tail -15; check
    "$PY" bench/end_to_end.py --backends "$backend" native \
        --cases niriss_soss:100x9 nrs_bots:200x20 \
        --out "$OUT/end_to_end_gpu.json" 2>&1 | tee "$OUT/end_to_end_gpu.log" | tail -40; check
fi
exit $status
