"""Lower tfexplain's whole explain calls (and the model-only floor) to StableHLO for the GPU run.

Runs here, with TensorFlow. For KernelShap and Lime on the demo model (one baseline row for
KernelShap, as Captum's peer uses) at n in {64, 2048, 16384} it writes, under --out:
  <name>.mlir.gz the StableHLO module of the jit-compiled explain function (the whole call:
                sampling, chunked evaluation, solve -- nothing runs outside it)
  <name>.npz    explicit inputs (arg_0..), captured inputs (cap_0..), output names, and TensorFlow's
                CPU outputs (out_0..) where computing them here is cheap (n <= --check-max)
  mlp.npz       the demo network's weights, for the PyTorch/Captum peer
and the floor modules (the model alone on the same number of rows, rows built in-graph).

    python benchmarks/gpu/lower.py --out .gpu [--sizes 64,2048,16384] [--check-max 2048]
        [--large-batch-size 2097152]   # the largest n once more with this batch_size
"""

from __future__ import annotations

import argparse
import gzip
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfexplain  # noqa: E402
from tfexplain.demo import demo_model  # noqa: E402
from tfexplain.evaluation import model_floor  # noqa: E402


def lower(fn, args, name, out_dir, check):
    concrete = fn.get_concrete_function(*args)
    text = fn.experimental_get_compiler_ir(*args)(stage="stablehlo")
    with gzip.open(os.path.join(out_dir, f"{name}.mlir.gz"), "wt") as fh:  # text compresses ~10x
        fh.write(text)
    arrays = {f"arg_{i}": np.asarray(a) for i, a in enumerate(args)}
    by_handle = {id(v.handle): v for v in concrete.variables}
    for i, t in enumerate(concrete.captured_inputs):
        # a captured variable handle enters the compiled module as the variable's value
        arrays[f"cap_{i}"] = by_handle[id(t)].numpy() if t.dtype == tf.resource else t.numpy()
    names = []
    if check:
        out = fn(*args)
        flat = tf.nest.flatten(out)
        names = list(sorted(out)) if isinstance(out, dict) else ["out"]
        for i, t in enumerate(flat):
            arrays[f"out_{i}"] = t.numpy()
    arrays["output_names"] = np.array(json.dumps(names))
    np.savez(os.path.join(out_dir, f"{name}.npz"), **arrays)
    print(f"wrote {name}: {len(text) / 1e3:.0f} kB StableHLO, {len(concrete.captured_inputs)} captured, "
          f"checked={check}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=".gpu")
    parser.add_argument("--sizes", default="64,2048,16384")
    parser.add_argument("--check-max", type=int, default=2048)
    parser.add_argument("--background", type=int, default=50,
                        help="KernelShap background rows (the demo's 50; 1 = Captum's single baseline)")
    parser.add_argument("--large-batch-size", type=int, default=2**21,
                        help="also lower the largest n with this batch_size (model rows per chunk; "
                             "0 = skip): the knob an accelerator with memory to spare is run with")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model, x_train, x_test, _ = demo_model()
    weights = {f"w{i}": v.numpy() for i, v in enumerate(model.weights)}
    probe = x_test[:8]
    np.savez(os.path.join(args.out, "mlp.npz"), baseline=x_train[:1], probe=probe,
             prediction=model(probe, training=False).numpy(), **weights)
    d = x_train.shape[1]
    background = x_train[np.random.default_rng(0).choice(len(x_train), args.background, replace=False)]
    def build(batch_size):
        return {
            "kernelshap": tfexplain.KernelShap(model, background, target=1, jit_compile=True, n_bootstrap=0,
                                               batch_size=batch_size),
            "lime": tfexplain.Lime(model, x_train, jit_compile=True, batch_size=batch_size),
        }

    meta = {"d": d, "background": args.background, "runs": []}
    sizes = [int(v) for v in args.sizes.split(",")]
    plans = [(n, tfexplain.explainers.DEFAULT_BATCH_SIZE) for n in sizes]
    if args.large_batch_size:
        plans.append((max(sizes), args.large_batch_size))
    for n, batch_size in plans:
        x = np.tile(x_test, (int(np.ceil(n / len(x_test))), 1))[:n].astype(np.float32)
        call = (tf.constant(x), tf.constant(0, tf.int64), tf.range(n, dtype=tf.int64))
        suffix = "" if batch_size == tfexplain.explainers.DEFAULT_BATCH_SIZE else f"_b{batch_size}"
        for method, explainer in build(batch_size).items():
            name = f"{method}_{n}{suffix}"
            lower(explainer.graph_function(jit_compile=True), call, name, args.out, n <= args.check_max)
            floor = model_floor(explainer)
            lower(floor, (tf.constant(x),), f"floor_{name}", args.out, False)
            meta["runs"].append({"name": name, "floor": f"floor_{name}", "n": n, "method": method,
                                 "batch_size": batch_size, "samples": explainer.sampler.n_samples,
                                 "instances_per_chunk": explainer.instances_per_chunk,
                                 "rows_per_instance": explainer.n_evals_per_instance})
    with open(os.path.join(args.out, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)


if __name__ == "__main__":
    main()
