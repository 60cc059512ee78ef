"""Explanation quality of KernelShap vs Lime on the demo model (breast cancer MLP): every metric of
tfexplain.metrics on the same 50 test rows; removed features take the background rows (averaged).

    python benchmarks/quality.py [--rows 50]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import tfexplain  # noqa: E402
from tfexplain import metrics  # noqa: E402
from tfexplain.demo import demo_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50)
    args = parser.parse_args()
    model, x_train, x_test, names = demo_model()
    background = x_train[np.random.default_rng(0).choice(len(x_train), 50, replace=False)]
    explainers = {
        "KernelShap (leverage, 2108 coalitions)": tfexplain.KernelShap(model, background, target=1),
        "Lime (5000 samples, 10 features)": tfexplain.Lime(model, x_train, target=1),
        "Lime (5000 samples, all 30 features)": tfexplain.Lime(model, x_train, target=1, num_features=30),
        "Lime (10 features, per-row streams)": tfexplain.Lime(model, x_train, target=1, shared_samples=False),
    }
    for e in explainers.values():
        e(x_test[: args.rows])  # trace (and compile Lime's generator for this chunk size): the steady state
    report = metrics.evaluate(explainers, x_test[: args.rows], baseline=background, n_runs=100,
                              sensitivity_samples=5)
    print(f"\n{args.rows} test rows of the demo model, class 'benign'; baseline: the 50 background rows (removed features averaged over them, as KernelShap does); "
          "faithfulness and infidelity over 100 random subsets; max-sensitivity radius 5% of each feature's std\n")
    print(report)


if __name__ == "__main__":
    main()
