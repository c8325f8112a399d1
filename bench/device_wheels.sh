#!/usr/bin/env bash
# Wheels the GPU machine lacks (its image has NumPy, CuPy, SciPy, pytest, PyYAML, attrs, but no
# astropy/stdatamodels and no package index), for bench/device_run.sh. Run here, in the repo
# root; .whl/ is git-ignored through .git/info/exclude and travels with `carry: [".whl"]`.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${plat[@]}" -d .whl \
    astropy==8.0.2 pyerfa astropy-iers-data stdatamodels==6.0.0 asdf==5.4.0 asdf-astropy \
    asdf-standard asdf-transform-schemas asdf-coordinates-schemas asdf-wcs-schemas gwcs \
    jmespath semantic-version importlib-metadata
du -sh .whl
