"""The compat layers against the packages they replace, on the demo model (breast cancer, 30
features, Keras MLP), with the tutorials' calls and ``model.predict`` as the prediction function:

- ``LimeTabularExplainer(X_train, mode="classification").explain_instance(x, model.predict,
  num_features=5)``: tfexplain.compat.lime vs lime (both discretize by quartiles, 5000 samples);
- ``KernelExplainer(model.predict, background).shap_values(X)``: tfexplain.compat.shap vs shap
  (background of 50 rows, nsamples="auto" = 2d + 2048).

Milliseconds per instance, best of ``--repeats`` calls after a warm-up call (the compat explainers are
built and traced on first use, then cached).

    python benchmarks/compat.py [--rows 5] [--shap-rows 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfexplain.compat.lime as compat_lime  # noqa: E402
import tfexplain.compat.lime.lime_tabular  # noqa: E402,F401
import tfexplain.compat.shap as compat_shap  # noqa: E402
from tfexplain.demo import demo_model  # noqa: E402


def best_ms(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5, help="instances per lime timing")
    parser.add_argument("--shap-rows", type=int, default=2, help="instances per shap timing")
    parser.add_argument("--background", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model, x_train, x_test, names = demo_model()
    predict = model.predict
    rows = x_test[: args.rows]
    results = []

    def lime_rows(explainer):
        for x in rows:
            explainer.explain_instance(x, predict, num_features=5)

    ours = compat_lime.lime_tabular.LimeTabularExplainer(x_train, mode="classification", feature_names=names)
    ours.explain_instance(rows[0], predict, num_features=5)                          # build + trace once
    results.append(("tfexplain.compat.lime explain_instance", best_ms(lambda: lime_rows(ours), args.repeats) / len(rows)))
    try:
        import lime.lime_tabular as lime_tabular
    except ImportError:
        print("lime not installed: skipping the peer")
    else:
        ref = lime_tabular.LimeTabularExplainer(x_train, mode="classification", feature_names=names)
        results.append(("lime explain_instance (model.predict)", best_ms(lambda: lime_rows(ref), args.repeats) / len(rows)))

    background = x_train[: args.background]
    srows = x_test[: args.shap_rows]
    mine = compat_shap.KernelExplainer(predict, background)
    mine.shap_values(srows)                                                           # build + trace once
    results.append(("tfexplain.compat.shap shap_values", best_ms(lambda: mine.shap_values(srows), args.repeats) / len(srows)))
    try:
        import shap
    except ImportError:
        print("shap not installed: skipping the peer")
    else:
        theirs = shap.KernelExplainer(predict, background)
        results.append(("shap KernelExplainer.shap_values (model.predict)",
                        best_ms(lambda: theirs.shap_values(srows, silent=True), 1) / len(srows)))

    print(f"\n{platform.machine()} CPU, {os.cpu_count()} cores, TensorFlow {tf.__version__}; demo model, d = 30\n")
    print("| call | ms / instance |\n|---|---:|")
    for name, ms in results:
        print(f"| {name} | {ms:,.1f} |")
    base = dict(results)
    if "lime explain_instance (model.predict)" in base:
        print(f"\nlime / compat: {base['lime explain_instance (model.predict)'] / base['tfexplain.compat.lime explain_instance']:.1f}x")
    if "shap KernelExplainer.shap_values (model.predict)" in base:
        print(f"shap / compat: {base['shap KernelExplainer.shap_values (model.predict)'] / base['tfexplain.compat.shap shap_values']:.1f}x")


if __name__ == "__main__":
    main()
