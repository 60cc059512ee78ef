"""Images: tfexplain's KernelShap and Lime at 50 segments and 1,000 samples next to lime's
LimeImageExplainer and shap's Partition explainer (``shap.maskers.Image("blur(8,8)")``,
max_evals=1000) on the same Keras CNN in the same run (issue #13).

The model: Conv2D(8, 3x3) + MaxPooling(2) + Dense(10), trained for a few epochs on scikit-learn's
digits upsampled to 32x32x3 over a faint noise background (no download; no pixel equals the fill, so
every segment is a real player). Segments: a 5 x 10 grid (50 segments), the same map for tfexplain and
for lime (``segmentation_fn``); hidden pixels take 0.0 in both (lime's ``hide_color=0.0``); shap blurs
them (its Partition explainer builds its own hierarchy of pixel rectangles, not our segments). Each
method explains its instances' predicted class (tfexplain ``target="predicted"``, lime
``top_labels=1``, shap ``outputs=argsort.flip[:1]``).

Ratio to floor: a method's seconds per instance over the model alone on the same number of model rows
(``tfexplain.evaluation.model_floor``: the instances repeated once per sample, evaluated in the
explainer's chunks of ``batch_size`` rows; the peers' rows are counted and priced at the same
per-row floor). The peers call the model two ways: ``model.predict`` with their default batch sizes (as
tutorials do) and a ``tf.function`` of the model with batches of 1,000 rows (their best case).

    python benchmarks/images.py                                  # 32 instances, peers on 2 (minutes)
    python benchmarks/images.py --instances 64 --peer-instances 4 --no-xla
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]      # _report, and this checkout's tfexplain

import numpy as np  # noqa: E402

from _report import Counted, Row, arguments, machine, measure, table, timed  # noqa: E402

SHAPE = (32, 32, 3)
GRID = (5, 10)          # 50 segments


def grid_map(shape=SHAPE[:2], cells=GRID) -> np.ndarray:
    """[H, W] int32 segment ids of a rows x cols grid."""
    (h, w), (rows, cols) = shape, cells
    return ((np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w).astype(np.int32)


def data_and_model(epochs: int = 3):
    """Digits upsampled to 32x32x3 on faint noise, and a small CNN trained on them."""
    import keras
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(0)
    big = np.kron(digits.images / 16.0, np.ones((4, 4)))                      # [n, 32, 32]
    tint = np.array([1.0, 0.8, 0.6])
    x = (0.8 * big[..., None] * tint + rng.uniform(0.05, 0.2, size=big.shape + (3,))).astype(np.float32)
    y = digits.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=epochs, batch_size=64, verbose=0)
    accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)[1]
    return model, x[1500:], accuracy


def run_tfexplain(model, x, n_samples, xla_modes, repeats):
    import tfexplain
    seg = grid_map()
    rows, floors = [], {}

    def check(exp):    # the explanations are right, not only fast: efficiency (KernelShap), fit (Lime)
        if exp.method == "Lime":
            return f"mean weighted R^2 {float(np.mean(exp.score)):.2f}"
        gap = np.asarray(exp.values).sum(1) - (np.asarray(exp.model_output) - np.asarray(exp.base_values))
        return f"max |sum(values) - (f(x) - base)| {float(np.max(np.abs(gap))):.1e}"

    for jit in xla_modes:
        for name, peer, build in [
                ("tfexplain KernelShap", "shap",
                 lambda: tfexplain.KernelShap(model, tfexplain.maskers.Image(seg, fill=0.0), n_samples=n_samples,
                                              target="predicted", jit_compile=jit)),
                ("tfexplain Lime", "lime",
                 lambda: tfexplain.Lime(model, masker=tfexplain.maskers.Image(seg, fill=0.0), n_samples=n_samples,
                                        target="predicted", jit_compile=jit)),
                ("tfexplain KernelShap, no stderr (n_bootstrap=0)", "shap",
                 lambda: tfexplain.KernelShap(model, tfexplain.maskers.Image(seg, fill=0.0), n_samples=n_samples,
                                              target="predicted", n_bootstrap=0, jit_compile=jit))]:
            if jit and "n_bootstrap=0" in name:     # XLA: the defaults only (each program compiles for a minute)
                continue
            explainer = build()
            assert explainer.n_features == GRID[0] * GRID[1]
            row, last = measure(explainer, x, name, peer, jit, repeats)
            floors[(name, jit)] = row.floor_per_row
            rows.append(row)
            print(f"  {name}{' (XLA)' if jit else ''}: {row.seconds:.2f} s, floor {row.extra['floor_s']:.2f} s, "
                  f"first call {row.first_call:.1f} s; {check(last)}", file=sys.stderr, flush=True)
    per_row = floors[("tfexplain KernelShap", False)] if ("tfexplain KernelShap", False) in floors else \
        next(iter(floors.values()))
    return rows, per_row


def run_peers(model, x, n_samples, floor_per_row, which=("model.predict", "tf.function")):
    import lime.lime_image
    import shap
    import tensorflow as tf

    lime.lime_image.tqdm = lambda it: it        # lime's per-sample progress bar, silenced
    seg = grid_map()
    compiled = tf.function(lambda a: model(a, training=False), reduce_retracing=True)
    calls = {"model.predict": (lambda a: model.predict(a, verbose=0), None),
             "tf.function": (lambda a: compiled(tf.constant(a, tf.float32)).numpy(), 1000)}
    compiled(tf.constant(x[:2]))
    rows = []
    for call in which:
        fn, batch = calls[call]
        counted = Counted(fn)
        explainer = lime.lime_image.LimeImageExplainer(random_state=0)
        kw = {} if batch is None else {"batch_size": batch}

        def run_lime():
            for image in x:
                explainer.explain_instance(image.astype(np.float64), counted, top_labels=1, hide_color=0.0,
                                           num_samples=n_samples, segmentation_fn=lambda _: seg, **kw)

        seconds = timed(run_lime)
        label = f"lime LimeImageExplainer, {call}, batch_size={batch or '10 (default)'}"
        rows.append(Row(label, "–", len(x), counted.rows / len(x), seconds, floor_per_row, family="lime", call=call))
        print(f"  {label}: {seconds:.2f} s", file=sys.stderr, flush=True)

        counted = Counted(fn)
        masker = shap.maskers.Image("blur(8,8)", SHAPE)
        explainer = shap.Explainer(counted, masker)
        kw = {} if batch is None else {"batch_size": batch}
        seconds = timed(lambda: explainer(x, max_evals=n_samples, outputs=shap.Explanation.argsort.flip[:1],
                                          silent=True, **kw))
        label = f"shap Partition, Image('blur(8,8)'), {call}, batch_size={batch or 'auto (10)'}"
        rows.append(Row(label, "–", len(x), counted.rows / len(x), seconds, floor_per_row, family="shap", call=call))
        print(f"  {label}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    parser = arguments(__doc__, instances=32, epochs=3, trained="the CNN")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model, test, accuracy = data_and_model(args.epochs)
    x = np.resize(test, (args.instances, *SHAPE)).astype(np.float32)
    rows, floor_per_row = run_tfexplain(model, x, args.samples, [False] if args.no_xla else [False, True],
                                        args.repeats)
    if not args.no_peers:
        rows += run_peers(model, x[: args.peer_instances], args.samples, floor_per_row,
                          args.peer_calls.split(","))
    print(machine())
    print(f"Model: Conv2D(8, 3x3) + MaxPooling(2) + Dense(10) on {SHAPE} digits (test accuracy {accuracy:.2f}); "
          f"{GRID[0]} x {GRID[1]} grid = {GRID[0] * GRID[1]} segments, {args.samples} samples per instance")
    print(table(rows))
    print(f"(whole run {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
