"""Peak host memory (RSS) of ``explain_dataset`` as the dataset grows: the demo model
(``tfexplain.demo``) explained on 2,000 and on 20,000 rows, each in its own process, in memory (one
Explanation) and into shards (``out=``). The rows are streamed from a generator (never held as one
array); the difference of the peaks is what the dataset's size costs.

    python benchmarks/dataset_memory.py [--rows 2000,20000] [--method kernelshap|lime] [--batch-size N]

Prints one line per run and the differences (issue 14 asks for < 100 MB between 2,000 and 20,000 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # this checkout's tfexplain


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: kilobytes


def _child(rows: int, mode: str, method: str, batch_size: int | None) -> dict:
    import numpy as np

    import tfexplain
    from tfexplain.demo import demo_model

    model, x_train, x_test, names = demo_model()
    rng = np.random.default_rng(0)
    if method == "kernelshap":
        background = x_train[rng.choice(len(x_train), 20, replace=False)]
        explainer = tfexplain.KernelShap(model, background, n_samples=32, target=1, feature_names=names)
    else:
        explainer = tfexplain.Lime(model, x_train, n_samples=200, feature_names=names)
    scale = x_train.std(0)

    def stream(n, block=500):
        """n rows: test rows with a little noise, made a block at a time."""
        for start in range(0, n, block):
            k = min(block, n - start)
            r = np.random.default_rng(start)
            yield (x_test[r.integers(0, len(x_test), k)] + 0.05 * scale * r.normal(size=(k, x_test.shape[1]))
                   ).astype(np.float32)

    explainer(x_test[:4], seed=0)          # trace the graph before measuring what the dataset adds
    before = _peak_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "shards") if mode == "shards" else None
        result = explainer.explain_dataset(stream(rows), seed=0, batch_size=batch_size, verbose=0, out=out)
        n = len(result)
    return {"rows": n, "mode": mode, "method": method, "seconds": round(time.perf_counter() - start, 2),
            "peak_before_mb": round(before, 1), "peak_mb": round(_peak_mb(), 1),
            "batch_size": batch_size or tfexplain.datasets.default_batch_size(explainer)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="2000,20000")
    parser.add_argument("--modes", default="memory,shards")
    parser.add_argument("--method", default="kernelshap", choices=["kernelshap", "lime"])
    parser.add_argument("--batch-size", type=int, default=None, help="rows per call (default: explain_dataset's)")
    parser.add_argument("--child", nargs=2, metavar=("ROWS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(int(args.child[0]), args.child[1], args.method, args.batch_size)))
        return
    sizes = [int(r) for r in args.rows.split(",")]
    results = {}
    for mode in args.modes.split(","):
        for rows in sizes:
            cmd = [sys.executable, __file__, "--child", str(rows), mode, "--method", args.method]
            if args.batch_size:
                cmd += ["--batch-size", str(args.batch_size)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results[mode, rows] = r
            print(f"{args.method:>10}  {mode:>6}  {r['rows']:>7} rows  batch {r['batch_size']:>6}  "
                  f"{r['seconds']:>7.1f} s  peak RSS {r['peak_mb']:>7.1f} MB (before the dataset: "
                  f"{r['peak_before_mb']:.1f} MB)", flush=True)
    for mode in args.modes.split(","):
        small, large = results[mode, min(sizes)], results[mode, max(sizes)]
        diff = large["peak_mb"] - small["peak_mb"]
        print(f"{mode}: peak RSS at {max(sizes):,} rows - at {min(sizes):,} rows = {diff:+.1f} MB "
              f"({'< 100 MB: ok' if diff < 100 else 'NOT below 100 MB'})")


if __name__ == "__main__":
    main()
