#!/usr/bin/env bash
# One full call on a GPU machine (see bench/results/README.md):
#   device run: carry [".whl"], command "bash bench/device_run.sh"
# Installs the carried wheels, runs every kernel test on the GPU (the same bodies as the host
# build in CI), the whole chain against NumPy, then the GPU benchmark; logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/tsogpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_kernels_infra.py tests/test_kernels_*.py \
    tests/test_backend_chain.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -15
python3 bench/gpu_chain.py --out "$OUT/gpu_chain.json" 2>&1 | tee "$OUT/gpu_chain.log"
