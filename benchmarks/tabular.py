"""Milliseconds per instance on the demo model (breast cancer, 30 features, 30-32-16-2 MLP):
tfexplain KernelShap / Lime next to shap.KernelExplainer and lime's LimeTabularExplainer at the same
budget, and the model-only floor (the model alone on the same number of rows, rows built in-graph).

    python benchmarks/tabular.py [--instances 64] [--peer-instances 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfexplain  # noqa: E402
from tfexplain.demo import demo_model  # noqa: E402
from tfexplain.evaluation import model_floor  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import timed  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=64)
    parser.add_argument("--peer-instances", type=int, default=3)
    parser.add_argument("--background", type=int, default=50)
    args = parser.parse_args()

    import lime.lime_tabular
    import shap

    model, x_train, x_test, names = demo_model()
    d = x_train.shape[1]
    background = x_train[np.random.default_rng(0).choice(len(x_train), args.background, replace=False)]
    x = np.tile(x_test, (int(np.ceil(args.instances / len(x_test))), 1))[: args.instances]
    xp = x_test[: args.peer_instances]
    n_shap = 2 * d + 2048
    n_lime = 5000
    rows = []

    def add(name, n, seconds, model_rows):
        rows.append((name, n, model_rows, 1e3 * seconds / n))

    for n_boot, note in [(32, ""), (0, ", no stderr")]:
        ks = tfexplain.KernelShap(model, background, target=1, n_bootstrap=n_boot)
        ks(x[:2])  # trace
        add(f"tfexplain KernelShap{note}", len(x), timed(lambda: ks(x, seed=1), 3), ks.n_evals_per_instance)
        ksx = tfexplain.KernelShap(model, background, target=1, jit_compile=True, n_bootstrap=n_boot)
        ksx(x)  # trace + compile for this shape
        add(f"tfexplain KernelShap (XLA){note}", len(x), timed(lambda: ksx(x, seed=1), 3),
            ksx.n_evals_per_instance)
    lm = tfexplain.Lime(model, x_train)
    lm(x[:2])
    add("tfexplain Lime", len(x), timed(lambda: lm(x, seed=1), 3), lm.n_evals_per_instance)
    lmx = tfexplain.Lime(model, x_train, jit_compile=True)
    lmx(x)
    add("tfexplain Lime (XLA)", len(x), timed(lambda: lmx(x, seed=1), 3), lmx.n_evals_per_instance)

    for label, explainer in [("KernelShap", ks), ("KernelShap", ksx), ("Lime", lm), ("Lime", lmx)]:
        floor = model_floor(explainer)
        floor(x[:2])
        xla = " (XLA)" if explainer.jit_compile else ""
        add(f"model-only floor, {label} rows{xla}", len(x), timed(lambda: floor(x).numpy(), 3),
            explainer.n_evals_per_instance - 1)

    compiled = tf.function(lambda a: model(a, training=False), jit_compile=True, reduce_retracing=True)

    def predict_fast(a):
        return compiled(tf.constant(a, tf.float32)).numpy()

    for shape_rows in (n_shap * len(background), n_lime, 1, len(background)):
        predict_fast(np.repeat(x[:1], shape_rows, 0))  # compile for the shapes the peers use
    kshap = shap.KernelExplainer(lambda a: model.predict(a, verbose=0)[:, 1], background)
    add("shap.KernelExplainer, model.predict", len(xp),
        timed(lambda: kshap.shap_values(xp, nsamples=n_shap, l1_reg=False, silent=True)), n_shap * len(background))
    kshap_fast = shap.KernelExplainer(lambda a: predict_fast(a)[:, 1], background)
    add("shap.KernelExplainer, compiled tf.function", len(xp),
        timed(lambda: kshap_fast.shap_values(xp, nsamples=n_shap, l1_reg=False, silent=True)), n_shap * len(background))
    lt = lime.lime_tabular.LimeTabularExplainer(x_train, discretize_continuous=False, random_state=0)
    add("lime LimeTabularExplainer, model.predict", len(xp),
        timed(lambda: [lt.explain_instance(r, lambda a: model.predict(a, verbose=0), num_samples=n_lime) for r in xp]),
        n_lime)
    add("lime LimeTabularExplainer, compiled tf.function", len(xp),
        timed(lambda: [lt.explain_instance(r, predict_fast, num_samples=n_lime) for r in xp]), n_lime)

    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TensorFlow {tf.__version__} (CPU), shap {shap.__version__}; d={d}, background k={len(background)}, "
          f"KernelShap budget {n_shap} coalitions, Lime {n_lime} samples\n")
    print("| method | instances | model rows / instance | ms / instance |")
    print("|---|---:|---:|---:|")
    for name, n, model_rows, ms in rows:
        print(f"| {name} | {n} | {model_rows:,} | {ms:,.1f} |")


if __name__ == "__main__":
    main()
