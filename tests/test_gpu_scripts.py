"""The GPU benchmark scripts, run end to end on the CPU (needs jax; skipped where it is absent)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lower_then_run_with_jax(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "gpu"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu", "lower.py"), "--out", str(out),
                    "--sizes", "8", "--check-max", "8", "--background", "2",
                    "--large-batch-size", "64"], check=True, capture_output=True)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu", "run.py"), "--dir", str(out),
                             "--repeats", "1", "--captum-instances", "1"], check=True, capture_output=True, text=True)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| tfexplain")]
    assert len(rows) == 4  # two methods, at the default and at the large batch size
    for row in rows:  # outputs equal TensorFlow's
        assert float(row.split("|")[-2]) < 1e-4
