"""Accuracy per model evaluation: squared relative l2 error to exact Shapley values (in-graph full
enumeration) at budgets m = {5, 10, 20, 40, 80} * d, for tfexplain's samplers next to
shap.KernelExplainer(l1_reg=False) and shap.PermutationExplainer at the same number of evaluations,
plus the coverage of tfexplain's standard errors (share of |estimate - exact| <= 2 stderr).

    python benchmarks/shapley_accuracy.py [--explicands 100] [--seeds 3] [--background 10]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfexplain  # noqa: E402


def _mlp(d, hidden, outputs, activation, seed):
    import keras
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((d,)), keras.layers.Normalization(),
                             keras.layers.Dense(hidden, activation=activation),
                             keras.layers.Dense(hidden, activation=activation), keras.layers.Dense(outputs)])


def models():
    """Three Keras models with d in 8..16 and interactions of order >= 3."""
    import keras
    from sklearn.datasets import load_diabetes, load_wine
    out = []
    x, y = load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    m = _mlp(x.shape[1], 32, 1, "tanh", 0)
    m.layers[0].adapt(x)
    m.compile(keras.optimizers.Adam(1e-2), "mse")
    m.fit(x, ((y - y.mean()) / y.std()).astype(np.float32), epochs=40, verbose=0)
    out.append(("diabetes MLP (d=10)", m, x))
    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    m = _mlp(x.shape[1], 32, 3, "relu", 1)
    m.layers[0].adapt(x)
    m.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=60, verbose=0)
    out.append(("wine MLP logit (d=13)", m, x))
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 12)).astype(np.float32)
    # a product-of-triples teacher (order-3 interactions) fitted by an MLP
    triples = [(0, 1, 2), (3, 4, 5), (2, 6, 7), (8, 9, 10), (1, 5, 11)]
    y = sum(x[:, i] * x[:, j] * x[:, k] for i, j, k in triples) + np.sin(x[:, 0] * x[:, 3])
    m = _mlp(12, 64, 1, "tanh", 2)
    m.layers[0].adapt(x)
    m.compile(keras.optimizers.Adam(3e-3), "mse")
    m.fit(x, y.astype(np.float32), epochs=60, verbose=0)
    out.append(("order-3 product MLP (d=12)", m, x))
    return out


METHODS = ["tfexplain default", "tfexplain per-row draws", "tfexplain adjust='auto'", "tfexplain kernel", "shap Kernel",
           "shap Permutation"]
COVERED = ["tfexplain default", "tfexplain per-row draws"]   # standard errors' coverage and global importance


def rel_err(est, exact):
    num = np.sum((est - exact) ** 2, axis=1)
    den = np.sum(exact**2, axis=1) + 1e-12
    return num / den


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--explicands", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--background", type=int, default=10)
    parser.add_argument("--multipliers", default="5,10,20,40,80")
    parser.add_argument("--no-shap", action="store_true")
    args = parser.parse_args()
    import shap

    table = []
    start = time.time()
    for name, model, data in models():
        d = data.shape[1]
        rng = np.random.default_rng(0)
        bg = data[rng.choice(len(data), args.background, replace=False)]
        x = data[rng.choice(len(data), args.explicands, replace=False)]
        target = 0
        exact = tfexplain.KernelShap(model, bg, sampler="exact", target=target)(x).values
        f_np = tf.function(lambda a: model(a, training=False)[:, target], jit_compile=True, reduce_retracing=True)

        def predict(a):
            return f_np(tf.constant(a, tf.float32)).numpy()

        for mult in [int(v) for v in args.multipliers.split(",")]:
            m = mult * d + (mult * d) % 2    # even: the paired leverage sampler takes coalitions with complements
            errs = {k: [] for k in METHODS}
            inside, total, glob = {k: 0 for k in COVERED}, 0, {k: [] for k in COVERED}
            mean_abs = np.abs(exact).mean(0)
            for seed in range(args.seeds):
                for label, kw in (("tfexplain default", {}), ("tfexplain per-row draws", dict(shared_samples=False)),
                                  ("tfexplain adjust='auto'", dict(adjust="auto")),
                                  ("tfexplain kernel", dict(sampler="kernel", adjust=False))):
                    exp = tfexplain.KernelShap(model, bg, n_samples=m, target=target, **kw)(x, seed=seed)
                    errs[label].append(rel_err(exp.values, exact))
                    if label in COVERED:
                        inside[label] += int(np.sum(np.abs(exp.values - exact) <= 2 * exp.stderr + 1e-7))
                        # global importance (mean |value| over the explicands): its squared relative error
                        glob[label].append(rel_err(np.abs(exp.values).mean(0)[None], mean_abs[None])[0])
                total += exact.size
                if not args.no_shap:
                    np.random.seed(seed)
                    ks = shap.KernelExplainer(predict, bg)
                    errs["shap Kernel"].append(rel_err(np.asarray(
                        ks.shap_values(x, nsamples=m, l1_reg=False, silent=True)), exact))
                    pe = shap.PermutationExplainer(predict, shap.maskers.Independent(bg, max_samples=len(bg)), seed=seed)
                    errs["shap Permutation"].append(rel_err(pe(x, max_evals=max(m, 2 * d + 1), silent=True).values, exact))
            row = {"model": name, "m": f"{mult}d = {m}", "coverage": {k: v / max(total, 1) for k, v in inside.items()},
                   "global": {k: float(np.mean(v)) for k, v in glob.items()}}
            for k, v in errs.items():
                if v:
                    v = np.concatenate(v)
                    row[k] = (float(np.mean(v)), float(np.median(v)))
            table.append(row)
            print(f"  [{time.time() - start:.0f}s] {name} m={m} done", flush=True)

    methods = METHODS
    print(f"\n{args.explicands} explicands x {args.seeds} seeds, background k={args.background}; "
          "squared relative error ||est - exact||^2 / ||exact||^2, mean / median; "
          "default = leverage sampling (plain regression); adjust='auto' adds the regression adjustment at "
          "budgets <= 256 (the default before #12); "
          "per-row draws = the default with shared_samples=False; "
          "coverage: share of |estimate - exact| <= 2 stderr (default / per-row draws); global: squared relative "
          "error of the mean |value| over the explicands (default / per-row draws)\n")
    print("| model | m | " + " | ".join(methods) + " | default/shap Kernel (mean) | stderr coverage | global |")
    print("|---|---|" + "---:|" * (len(methods) + 3))
    for row in table:
        cells = [f"{row[k][0]:.2e} / {row[k][1]:.2e}" if k in row else "–" for k in methods]
        ratio = f"{row['tfexplain default'][0] / row['shap Kernel'][0]:.2f}" if "shap Kernel" in row else "–"
        cover = " / ".join(f"{row['coverage'][k]:.1%}" for k in COVERED)
        glob = " / ".join(f"{row['global'][k]:.2e}" for k in COVERED)
        print(f"| {row['model']} | {row['m']} | " + " | ".join(cells) + f" | {ratio} | {cover} | {glob} |")


if __name__ == "__main__":
    main()
