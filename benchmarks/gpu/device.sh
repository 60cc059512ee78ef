#!/usr/bin/env bash
# There (jax, numpy, torch; no TensorFlow): the whole GPU check as one command, e.g. through the
# device tool with carry [".gpu", ".whl"]. Writes the table to $OUT/gpu_table.md when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"
PYTHONUNBUFFERED=1 python3 benchmarks/gpu/run.py --dir .gpu --repeats 5 --captum-instances 16 "$@" \
  2>&1 | tee "${OUT:-/tmp}/gpu_table.md"
