#!/usr/bin/env bash
# Here (with TensorFlow): lower the explain calls to .gpu/ and fetch the Captum wheel into .whl/.
# Then run benchmarks/gpu/device.sh on the GPU machine, carrying .gpu and .whl (about 21 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
python benchmarks/gpu/lower.py --out .gpu "$@"
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl captum==0.9.0
du -sh .gpu .whl
