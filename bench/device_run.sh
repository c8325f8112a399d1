#!/usr/bin/env bash
# One full call on a GPU machine (see bench/results/README.md):
#   device run: carry [".whl"], command "bash bench/device_run.sh [all|tests|chain|stream]"
# Installs the carried wheels, then runs (all, the default, does the three in turn; a part
# alone where a call's time limit is near):
#   tests   every kernel test on the GPU (the same bodies as the host build in CI) and the
#           whole chain against NumPy;
#   chain   the GPU benchmark, bench/gpu_chain.py (copies, steps, kernels);
#   stream  the streamed pass 1 (tsogpu/flow.py, issue 5): its products against the same pass
#           on the default stream and against NumPy (tests/test_flow.py, the chunked chain),
#           the raw reader and its kernel; then bench/end_to_end.py with cupy and native, cold
#           and warm, with pass 1's busy seconds per stage (read, h2d, kernels, d2h, write).
# Logs and JSON under $OUT (at most 7 files).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/tsogpu-out}; mkdir -p "$OUT"
part=${1:-all}
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
if [[ $part == all || $part == tests ]]; then
    python3 -m pytest -q -p no:cacheprovider tests/test_kernels_infra.py tests/test_kernels_*.py \
        tests/test_backend_chain.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -15
fi
if [[ $part == all || $part == chain ]]; then
    python3 bench/gpu_chain.py --out "$OUT/gpu_chain.json" 2>&1 | tee "$OUT/gpu_chain.log"
fi
if [[ $part == all || $part == stream ]]; then
    python3 -m pytest -q -p no:cacheprovider -rs tests/test_flow.py tests/test_uncal_io.py \
        tests/test_kernels_infra.py "tests/test_backend_chain.py::test_chunked_chain_equals_numpy" \
        2>&1 | tee "$OUT/stream_tests.log" | tail -15
    python3 bench/end_to_end.py --backends cupy native --cases niriss_soss:100x9 nrs_bots:200x20 \
        --out "$OUT/end_to_end_gpu.json" 2>&1 | tee "$OUT/end_to_end_gpu.log" | tail -40
fi
