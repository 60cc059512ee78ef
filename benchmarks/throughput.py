"""Throughput and memory of the default explainers against the model-only floor (issue #12).

For the demo model (breast cancer, d = 30, MLP 30-32-16-2) and a wider one (d = 100, MLP 100-64-64-2,
random weights), background k = 50 (``--k``), each (explainer, n, XLA) runs in its own process so that its
peak RSS is its own: instances per second, peak RSS, the ratio to the model alone on the same rows in
the same chunks (``tfexplain.evaluation.model_floor``), XLA compilations and the first call's time
(trace + compile + one run of the same rows; then ``--repeats`` (default 2) timed calls and floor runs,
interleaved, the faster of each counting). Peers at n = 100 on the same models: shap.KernelExplainer with ``model.predict``
(as tutorials call it) and with a compiled function, lime's LimeTabularExplainer.

    python benchmarks/throughput.py                         # n = 100, 1000 (minutes)
    python benchmarks/throughput.py --sizes 100,1000,10000,100000 --peers   # the full table (hours on 2 cores)
    python benchmarks/throughput.py --sizes 10000 --widths 30 --configs Lime,10d --jit 1   # a part of it
    python benchmarks/throughput.py --widths 10,30,100 --k 1,10,50 --configs "KernelShap (default)"
    python benchmarks/throughput.py --configs all --sizes 1000     # with the adjustment, Lime's per-row streams
    python benchmarks/throughput.py --compile-sizes --widths 30    # XLA compilations for n = 1, 49, 50, 1000

Models: d = 30 is the demo model; d = 10 and d = 100 an MLP d-64-64-2 with random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = {
    "KernelShap (default)": "tfexplain.KernelShap(model, bg, target=1, jit_compile=jit)",
    "KernelShap no stderr": "tfexplain.KernelShap(model, bg, target=1, n_bootstrap=0, jit_compile=jit)",
    "KernelShap shared_samples=False": "tfexplain.KernelShap(model, bg, target=1, shared_samples=False, "
                                       "jit_compile=jit)",
    "KernelShap n_samples=10d": "tfexplain.KernelShap(model, bg, target=1, n_samples=10 * d, jit_compile=jit)",
    "KernelShap n_samples=10d adjust=True": "tfexplain.KernelShap(model, bg, target=1, n_samples=10 * d, "
                                            "adjust=True, jit_compile=jit)",
    "Lime (default)": "tfexplain.Lime(model, train, target=1, jit_compile=jit)",
    "Lime shared_samples=False": "tfexplain.Lime(model, train, target=1, shared_samples=False, jit_compile=jit)",
}
DEFAULT_CONFIGS = "KernelShap (default),KernelShap n_samples=10d,Lime (default)"


def _models(width):
    import numpy as np
    import tensorflow as tf
    from tfexplain.demo import demo_model

    if width == 30:
        model, train, test, _ = demo_model()
        return model, train.astype(np.float32), test.astype(np.float32)
    import keras   # d = 10 or 100: an MLP d-64-64-2 with random weights
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    train = rng.normal(size=(500, width)).astype(np.float32)
    return model, train, rng.normal(size=(200, width)).astype(np.float32)


def run_one(args):
    """One configuration in this process; prints a JSON line."""
    import resource

    import numpy as np
    import tfexplain
    from tfexplain.evaluation import model_floor

    model, train, test = _models(args.width)
    d = train.shape[1]
    bg = train[np.random.default_rng(0).choice(len(train), args.k, replace=False)]
    jit = args.jit
    explainer = eval(CONFIGS[args.config])  # noqa: S307 -- a fixed table above
    if args.compile_sizes:
        return compile_sizes(explainer, test, args)
    x = np.resize(test, (args.n, d)).astype(np.float32)
    start = time.perf_counter()
    explainer(x, seed=0)       # first call: trace (+ compile both XLA programs: full chunks and leftovers)
    first = time.perf_counter() - start
    start = time.perf_counter()
    explainer(x, seed=1)
    seconds = time.perf_counter() - start
    # peak RSS before the floor, which holds n x samples outputs
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor = model_floor(explainer)
    floor(x).numpy()     # warm-up on the same shape: under XLA the floor compiles once per batch shape
    floor_seconds = float("inf")
    # the faster of ``repeats`` runs of each, the explain calls and the floor's interleaved, so that a
    # slower spell of the machine does not land on one side of the ratio only
    for r in range(args.repeats):
        if r:
            start = time.perf_counter()
            explainer(x, seed=1 + r)
            seconds = min(seconds, time.perf_counter() - start)
        start = time.perf_counter()
        floor(x).numpy()
        floor_seconds = min(floor_seconds, time.perf_counter() - start)
    print(json.dumps({"config": args.config, "width": d, "n": args.n, "jit": jit,
                      "per_second": args.n / seconds, "ratio": seconds / floor_seconds,
                      "first_call_s": first, "compilations": explainer.compilations,
                      "peak_rss_mb": rss}))


def compile_sizes(explainer, test, args):
    """One explainer called on n = 1, 49, 50, 1000 rows in turn: each call's seconds and the XLA
    programs compiled so far (requirement 3 of #12: one compile per explainer, whatever the batch)."""
    out = []
    for n in (1, 49, 50, 1000):
        x = np.resize(test, (n, test.shape[1])).astype(np.float32)
        start = time.perf_counter()
        explainer(x, seed=0)
        out.append({"n": n, "seconds": time.perf_counter() - start, "compilations": explainer.compilations})
    print(json.dumps({"config": args.config, "width": test.shape[1], "calls": out}))


def run_peers(width, n=100):
    import numpy as np
    import tensorflow as tf
    import lime.lime_tabular
    import shap

    model, train, test = _models(width)
    bg = train[np.random.default_rng(0).choice(len(train), 50, replace=False)]
    x = np.resize(test, (n, train.shape[1]))
    compiled = tf.function(lambda a: model(a, training=False), jit_compile=True, reduce_retracing=True)
    out = []
    for name, fn in [("model.predict", lambda a: model.predict(a, verbose=0)[:, 1]),
                     ("compiled", lambda a: compiled(tf.constant(a, tf.float32)).numpy()[:, 1])]:
        explainer = shap.KernelExplainer(fn, bg)
        k = 3 if name == "model.predict" else 10
        start = time.perf_counter()
        explainer.shap_values(x[:k], silent=True, l1_reg=False)
        out.append((f"shap.KernelExplainer, {name}", k / (time.perf_counter() - start)))
        lime_explainer = lime.lime_tabular.LimeTabularExplainer(train, mode="classification")
        proba = (lambda a: model.predict(a, verbose=0)) if name == "model.predict" else \
            (lambda a: compiled(tf.constant(a, tf.float32)).numpy())
        start = time.perf_counter()
        for row in x[:k]:
            lime_explainer.explain_instance(row, proba, num_features=10)
        out.append((f"lime LimeTabularExplainer, {name}", k / (time.perf_counter() - start)))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--widths", default="30,100")
    parser.add_argument("--peers", action="store_true")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="the configurations whose name contains "
                        "one of these comma-separated words (e.g. 'Lime,10d'; 'all': every one)")
    parser.add_argument("--k", dest="ks", default="50", help="background sizes (KernelShap), e.g. 1,10,50")
    parser.add_argument("--compile-sizes", action="store_true",
                        help="under XLA: one explainer per configuration called on n = 1, 49, 50, 1000 in turn")
    parser.add_argument("--jit", dest="jits", default="0,1", help="0 (no XLA), 1 (XLA) or both")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config")
    parser.add_argument("--width", type=int)
    parser.add_argument("--n", type=int)
    parser.add_argument("--xla", dest="jit", type=lambda v: v == "1")
    parser.add_argument("--bg", dest="k", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=lambda v: max(1, int(v)), default=2, help="timed runs of the explain call and of the floor, "
                        "interleaved; the faster of each counts")
    args = parser.parse_args()
    global _REPEATS
    _REPEATS = args.repeats
    if args.one:
        return run_one(args)
    wanted = [w for w in args.configs.split(",") if w]
    # a configuration's full name selects it alone; other words select every name containing them
    configs = [c for c in CONFIGS if "all" in wanted or c in wanted
               or any(w in c and w not in CONFIGS for w in wanted)]
    if args.configs == DEFAULT_CONFIGS:
        configs = wanted
    if args.compile_sizes:
        return main_compile_sizes(args, configs)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| model | explainer | k | XLA | n | instances/s | ratio to floor | first call (s) | compilations | "
          "peak RSS (MB) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for width in [int(w) for w in args.widths.split(",")]:
        for config in configs:
            for k in [int(v) for v in args.ks.split(",")] if "KernelShap" in config else [50]:
                for jit in [j == "1" for j in args.jits.split(",")]:
                    for n in [int(v) for v in args.sizes.split(",")]:
                        r = _subprocess(config, width, k, jit, ["--n", str(n)])
                        if isinstance(r, str):
                            print(f"| d={width} | {config} | {k} | {jit} | {n} | failed: {r} |||||")
                            continue
                        print(f"| d={width} | {config} | {k if 'KernelShap' in config else '–'} | "
                              f"{'yes' if jit else 'no'} | {n:,} | {r['per_second']:,.1f} | {r['ratio']:.2f} | "
                              f"{r['first_call_s']:.1f} | {r['compilations']} | {r['peak_rss_mb']:,.0f} |", flush=True)
        if args.peers:
            for name, per_second in run_peers(width):
                print(f"| d={width} | {name} | 50 | – | 100 | {per_second:,.2f} | – | – | – | – |", flush=True)


_REPEATS = 2


def _subprocess(config, width, k, jit, extra):
    """One configuration in its own process (its own peak RSS): its JSON line, or why it failed."""
    cmd = [sys.executable, __file__, "--one", "--config", config, "--width", str(width), "--bg", str(k),
           "--xla", "1" if jit else "0", "--repeats", str(_REPEATS), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return proc.stderr.strip()[-200:]
    return json.loads(lines[-1])


def main_compile_sizes(args, configs):
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| model | explainer | XLA | calls in turn: n (seconds, programs compiled so far) |")
    print("|---|---|---|---|")
    for width in [int(w) for w in args.widths.split(",")]:
        for config in configs:
            r = _subprocess(config, width, 50, True, ["--compile-sizes"])
            calls = r if isinstance(r, str) else ", ".join(
                f"{c['n']:,} ({c['seconds']:.2f} s, {c['compilations']})" for c in r["calls"])
            print(f"| d={width} | {config} | yes | {calls} |", flush=True)


if __name__ == "__main__":
    main()
