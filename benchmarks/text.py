"""Text: tfexplain's KernelShap and Lime at 50 token positions (rows of 20-50 words) and 1,000
samples next to lime's LimeTextExplainer (``bow=False``) and shap's Partition explainer
(``shap.maskers.Text`` with a callable word tokenizer, max_evals=1000) on the same Keras classifier in the same run (issue #13).

The model: Embedding(1000, 16, mask_zero=True) + GlobalAveragePooling1D + Dense(1, sigmoid), trained for
a few epochs on generated sentences of 20-50 words with a planted positive or negative word (no
download), token ids [n, 50] left-padded as Keras's ``pad_sequences`` does. tfexplain explains the ids
(``tfexplain.maskers.Text(mask_token=1)``: a hidden word becomes [UNK]; padding positions are null
players). The peers explain the sentences as strings, as users do: their model function tokenizes the
strings (split on whitespace, the vocabulary's ids, unknown words -> [UNK], ``pad_sequences``) and calls
the model; lime hides a word as "UNKWORDZ" and shap as "..." (``collapse_mask_token=False``: one per
hidden word), both unknown words, so every method plays the same game (hidden word -> [UNK] at its
position). lime and tfexplain's Lime keep 10 features (lime_text's default).

Ratio to floor: a method's seconds per instance over the model alone on the same number of model rows
(``tfexplain.evaluation.model_floor``: the token ids repeated once per sample, in the explainer's chunks
of ``batch_size`` rows; the peers' rows are counted and priced at the same per-row floor). The peers call
the model two ways: ``model.predict`` with their default batch sizes (lime_text: all samples at once;
shap's Text masker: 5) and a ``tf.function`` of the model (shap with batches of 1,000 rows).

    python benchmarks/text.py                                    # 64 instances, peers on 2 (minutes)
    python benchmarks/text.py --instances 256 --peer-instances 8 --no-xla
"""

from __future__ import annotations

import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]      # _report, and this checkout's tfexplain

import numpy as np  # noqa: E402

from _report import Counted, Row, arguments, machine, measure, table, timed  # noqa: E402

L, V = 50, 1000
POSITIVE, NEGATIVE = ("great", "love", "superb"), ("awful", "hate", "boring")
VOCAB = ["", "[UNK]", *POSITIVE, *NEGATIVE] + [f"w{i}" for i in range(8, V)]
INDEX = {w: i for i, w in enumerate(VOCAB)}


def sentences(n, rng):
    """Token ids [n, L] of sentences of 20..L words (left-padded), each with one planted positive (label 1)
    or negative (label 0) word among neutral ones."""
    import keras
    seqs, labels = [], []
    for _ in range(n):
        words = list(rng.integers(8, V, size=rng.integers(20, L + 1)))
        label = int(rng.integers(2))
        words[rng.integers(len(words))] = rng.choice([2, 3, 4] if label else [5, 6, 7])
        seqs.append(words)
        labels.append(label)
    return keras.utils.pad_sequences(seqs, maxlen=L).astype(np.int32), np.array(labels, np.float32)


def to_text(ids) -> list[str]:
    return [" ".join(VOCAB[t] for t in row if t) for row in ids]


def tokenize(texts) -> np.ndarray:
    """Strings -> ids [n, L] as a user's pipeline would: whitespace words, unknown -> [UNK] (1), left padding."""
    import keras
    seqs = [[INDEX.get(w, 1) for w in str(s).split()] for s in texts]
    return keras.utils.pad_sequences(seqs, maxlen=L).astype(np.int32)


def shap_tokenizer(s, return_offsets_mapping=True):
    """A word tokenizer for shap's Text masker: each word's span starts at the whitespace before it, so
    that shap's masked string keeps one word per position ("a ... c", not regex-split "a ...c", where
    the mask glues to the next word)."""
    spans = [m.span() for m in re.finditer(r"\s*\S+", s)]
    out = {"input_ids": [s[a:b].strip() for a, b in spans]}
    if return_offsets_mapping:
        out["offset_mapping"] = spans
    return out


def data_and_model(epochs: int = 4):
    import keras
    rng = np.random.default_rng(0)
    x, y = sentences(2000, rng)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((L,), dtype="int32"), keras.layers.Embedding(V, 16, mask_zero=True),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    xt, yt = sentences(300, rng)
    return model, xt, model.evaluate(xt, yt, verbose=0)[1]


def run_tfexplain(model, x, n_samples, xla_modes, repeats):
    import tfexplain
    rows, floors = [], {}
    planted = np.argmax((x >= 2) & (x <= 7), 1)     # each row's one planted word

    def check(exp):    # the explanations are right, not only fast: the planted word comes first
        top = np.abs(np.asarray(exp.values).reshape(len(x), L)).argmax(1)
        return f"planted word ranked first in {int((top == planted).sum())}/{len(x)} rows"

    for jit in xla_modes:
        for name, peer, build in [
                ("tfexplain KernelShap", "shap",
                 lambda: tfexplain.KernelShap(model, tfexplain.maskers.Text(mask_token=1), n_samples=n_samples,
                                              jit_compile=jit)),
                ("tfexplain Lime", "lime",
                 lambda: tfexplain.Lime(model, masker=tfexplain.maskers.Text(mask_token=1), n_samples=n_samples,
                                        jit_compile=jit)),
                ("tfexplain KernelShap, no stderr (n_bootstrap=0)", "shap",
                 lambda: tfexplain.KernelShap(model, tfexplain.maskers.Text(mask_token=1), n_samples=n_samples,
                                              n_bootstrap=0, jit_compile=jit))]:
            if jit and "n_bootstrap=0" in name:     # XLA: the defaults only (each program compiles for a minute)
                continue
            explainer = build()
            assert explainer.n_features == L
            row, last = measure(explainer, x, name, peer, jit, repeats)
            floors[(name, jit)] = row.floor_per_row
            rows.append(row)
            print(f"  {name}{' (XLA)' if jit else ''}: {row.seconds:.2f} s, floor {row.extra['floor_s']:.2f} s, "
                  f"first call {row.first_call:.1f} s; {check(last)}", file=sys.stderr, flush=True)
    per_row = floors.get(("tfexplain KernelShap", False), next(iter(floors.values())))
    return rows, per_row


def run_peers(model, texts, n_samples, floor_per_row, which=("model.predict", "tf.function")):
    import lime.lime_text
    import shap
    import tensorflow as tf

    compiled = tf.function(lambda a: model(a, training=False), reduce_retracing=True)
    compiled(tf.constant(tokenize(texts[:2])))
    calls = {"model.predict": (lambda t: model.predict(tokenize(t), verbose=0)[:, 0], None),
             "tf.function": (lambda t: compiled(tf.constant(tokenize(t))).numpy()[:, 0], 1000)}
    rows = []
    for call in which:
        fn, batch = calls[call]
        counted = Counted(lambda t, fn=fn: (lambda p: np.stack([1 - p, p], 1))(fn(t)))   # lime: class probabilities
        explainer = lime.lime_text.LimeTextExplainer(bow=False, random_state=0)

        def run_lime():
            for s in texts:
                explainer.explain_instance(s, counted, labels=(1,), num_features=10, num_samples=n_samples)

        seconds = timed(run_lime)
        label = f"lime LimeTextExplainer(bow=False), {call}"
        rows.append(Row(label, "–", len(texts), counted.rows / len(texts), seconds, floor_per_row, family="lime",
                        call=call))
        print(f"  {label}: {seconds:.2f} s", file=sys.stderr, flush=True)

        counted = Counted(lambda t, fn=fn: fn(list(t)))
        masker = shap.maskers.Text(shap_tokenizer, mask_token="...", collapse_mask_token=False)
        explainer = shap.Explainer(counted, masker)
        kw = {} if batch is None else {"batch_size": batch}
        seconds = timed(lambda: explainer(texts, max_evals=n_samples, silent=True, **kw))
        label = f"shap Partition, Text(word tokenizer), {call}, batch_size={batch or 'auto (5)'}"
        rows.append(Row(label, "–", len(texts), counted.rows / len(texts), seconds, floor_per_row, family="shap",
                        call=call))
        print(f"  {label}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    parser = arguments(__doc__, instances=64, epochs=4, trained="the classifier")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model, test, accuracy = data_and_model(args.epochs)
    x = np.resize(test, (args.instances, L)).astype(np.int32)
    rows, floor_per_row = run_tfexplain(model, x, args.samples, [False] if args.no_xla else [False, True],
                                        args.repeats)
    if not args.no_peers:
        texts = to_text(x[: args.peer_instances])
        assert np.array_equal(tokenize(texts), x[: args.peer_instances])   # the peers see the same ids
        rows += run_peers(model, texts, args.samples, floor_per_row,
                          args.peer_calls.split(","))
    words = (x > 0).sum(1)
    print(machine())
    print(f"Model: Embedding({V}, 16) + GlobalAveragePooling1D + Dense(1) on token ids [n, {L}] (test accuracy "
          f"{accuracy:.2f}); rows of {words.min()}-{words.max()} words (mean {words.mean():.0f}), "
          f"{args.samples} samples per instance")
    print(table(rows))
    print(f"(whole run {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
