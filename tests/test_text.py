"""Token sequences: tfexplain.maskers.Text with KernelShap (positions as players, padding as null
players), checked against exact Shapley values by enumerating each row's own tokens, a small Keras
text classifier with planted words, boundary errors, XLA, retracing and an export round trip."""

import math
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain.maskers import Text

L, V = 8, 30
RNG = np.random.default_rng(0)
EMB = RNG.normal(size=(V, 3))
POS = RNG.normal(size=(L, 3))          # position-dependent: the order of the tokens matters


def _np_model(ids):
    """float64 reference of the TF model below: ids [..., L] -> [..., 2]."""
    h = (EMB[ids] * POS).sum(-2)
    return np.stack([np.tanh(h[..., 0]) * h[..., 1], 1.0 / (1.0 + np.exp(-h[..., 2]))], -1)


@tf.function(input_signature=[tf.TensorSpec([None, L], tf.int32)])
def MODEL(ids):
    h = tf.reduce_sum(tf.gather(tf.constant(EMB, tf.float32), ids) * tf.constant(POS, tf.float32)[None], 1)
    return tf.stack([tf.tanh(h[:, 0]) * h[:, 1], tf.sigmoid(h[:, 2])], 1)


def _exact_shapley(ids, mask_token, pad=0):
    """Shapley values [L, 2] of the game over one row's own tokens (its non-padding positions), by
    enumerating all their coalitions: absent tokens become ``mask_token``, padding stays."""
    own = [j for j in range(L) if ids[j] != pad]
    p = len(own)
    rows = np.repeat(ids[None], 2**p, 0)
    for s in range(2**p):
        for k, j in enumerate(own):
            if not (s >> k) & 1:
                rows[s, j] = mask_token
    v = _np_model(rows)
    phi = np.zeros((L, 2))
    for s in range(2**p):
        size = bin(s).count("1")
        for k, j in enumerate(own):
            if not (s >> k) & 1:
                w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                phi[j] += w * (v[s | 1 << k] - v[s])
    return phi, v[0]


# rows of different lengths in one batch: right, left (pad_sequences' default) and inner padding, a
# single token, a full row, a row of padding only, and the mask token 1 inside a row
X = np.array([[5, 6, 7, 0, 0, 0, 0, 0],
              [0, 0, 0, 3, 4, 9, 2, 8],
              [0, 0, 0, 0, 0, 0, 0, 4],
              [11, 12, 0, 13, 14, 0, 0, 15],
              [2, 3, 4, 5, 6, 7, 8, 9],
              [0, 0, 0, 0, 0, 0, 0, 0],
              [0, 0, 0, 0, 1, 21, 1, 22]], np.int32)


@pytest.mark.parametrize("mask_token", [None, 1])
def test_exact_shapley_of_each_rows_own_tokens(mask_token):
    """With a budget covering all 2^8 - 2 coalitions every row gets the Shapley values of the game
    over its own tokens (2^|tokens| coalitions, |tokens|-player weights), padding exactly 0."""
    explainer = tfexplain.KernelShap(MODEL, Text(mask_token=mask_token), n_samples=2**L - 2, n_bootstrap=0)
    assert explainer.exact and explainer.n_features == L
    assert (explainer.base_values is not None) == (mask_token is None)   # all padding: one constant
    exp = explainer(X, seed=3)
    assert exp.values.shape == (len(X), L, 2) and exp.feature_names[0] == "position 0"
    np.testing.assert_array_equal(exp.tokens, X)
    base = np.broadcast_to(exp.base_values, (len(X), 2))
    for i, ids in enumerate(X):
        phi, v0 = _exact_shapley(ids, 0 if mask_token is None else mask_token)
        np.testing.assert_allclose(exp.values[i], phi, atol=2e-4, rtol=1e-4)
        np.testing.assert_allclose(base[i], v0, atol=1e-5, rtol=1e-5)
    null = (X == 0) | (X == (0 if mask_token is None else mask_token))
    assert np.all(exp.values[null] == 0.0)                              # exactly 0, not merely small
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - base, atol=1e-4)
    alone = explainer(X[3:4], seed=3, row_offset=3)                     # a row's values: not its batch's
    np.testing.assert_allclose(alone.values[0], exp.values[3], atol=1e-6)


EXPLAINER = tfexplain.KernelShap(MODEL, Text(mask_token=1), n_samples=64, n_bootstrap=8)


def test_no_retracing_and_sampled_budget():
    explainer = EXPLAINER
    one = explainer(X[:1], seed=5)
    full = explainer(X, seed=5)
    explainer(X[:3], seed=1)
    assert explainer.tracing_count == 1
    np.testing.assert_allclose(full.values[:1], one.values, atol=1e-5)
    assert np.all(full.values[X == 0] == 0.0) and np.all(full.values[X == 1] == 0.0)
    np.testing.assert_allclose(full.values.sum(1), full.model_output - full.base_values, atol=1e-4)
    assert full.stderr is not None and np.all(np.isfinite(full.stderr))


def test_xla_matches():
    explainer = tfexplain.KernelShap(MODEL, Text(), n_samples=2**L - 2, n_bootstrap=0, jit_compile=True)
    exp = explainer(X, seed=0)
    ref = tfexplain.KernelShap(MODEL, Text(), n_samples=2**L - 2, n_bootstrap=0)(X, seed=0)
    np.testing.assert_allclose(exp.values, ref.values, atol=1e-5)
    explainer(X[:2], seed=0)
    assert explainer.compilations <= 2


def test_export_round_trip_with_int_ids():
    explainer = EXPLAINER
    with tempfile.TemporaryDirectory() as tmp:
        path = tfexplain.export(explainer, os.path.join(tmp, "text"))
        loaded = tf.saved_model.load(path)
        spec = loaded.signatures["explain"].structured_input_signature[1]["x"]
        assert spec.dtype == tf.int32 and spec.shape.as_list() == [None, L]
        out = loaded.signatures["explain"](x=tf.constant(X), seed=tf.constant(7, tf.int64))
        ref = explainer(X, seed=7)
        np.testing.assert_allclose(out["values"].numpy(), ref.values, atol=1e-5)
        np.testing.assert_allclose(out["base_values"].numpy(), ref.base_values, atol=1e-6)
        rows = loaded.signatures["explain_rows"](x=tf.constant(X[3:]), seed=tf.constant(7, tf.int64),
                                                 row_ids=tf.range(3, len(X), dtype=tf.int64))
        np.testing.assert_allclose(rows["values"].numpy(), ref.values[3:], atol=1e-6)
        served = loaded.signatures["serving_default"](x=tf.constant(X))["output_0"].numpy()
        np.testing.assert_allclose(served, MODEL(tf.constant(X)).numpy(), atol=1e-6)
        empty = loaded.signatures["explain"](x=tf.zeros([0, L], tf.int32), seed=tf.constant(0, tf.int64))
        assert empty["values"].shape == (0, L, 2)
        bad = X[:2].copy()
        bad[1, -1] = -3                       # the signature checks token ids as the call does
        with pytest.raises(tf.errors.InvalidArgumentError, match="token ids"):
            loaded.signatures["explain"](x=tf.constant(bad), seed=tf.constant(0, tf.int64))


def test_boundary_errors_name_the_argument():
    explainer = EXPLAINER
    with pytest.raises(TypeError, match="`x`"):
        explainer(X.astype(np.float32))                                 # a float dtype: not token ids
    with pytest.raises(ValueError, match="`x`"):
        explainer(X[:, :5])
    with pytest.raises(ValueError, match="`x`"):
        explainer(-X)
    with pytest.raises(ValueError, match="`x`"):
        explainer(np.zeros((0, L), np.int32))
    with pytest.raises(ValueError, match="mask_token"):
        Text(mask_token=-1)
    with pytest.raises(ValueError, match="mask_token"):
        Text(mask_token=None, pad_token=None)
    with pytest.raises(ValueError, match="mask_token"):
        Text(mask_token=40, vocabulary=[str(i) for i in range(V)])
    with pytest.raises(ValueError, match="length"):
        tfexplain.KernelShap(MODEL, Text(length=6))                      # the model takes 8 tokens
    with pytest.raises(ValueError, match="length"):
        tfexplain.KernelShap(lambda t: tf.cast(t, tf.float32), Text())  # nothing gives L
    with pytest.raises(ValueError, match="`x`"):
        tfexplain.KernelShap(MODEL, Text(vocabulary=[str(i) for i in range(V)]))(X + 25)   # ids >= 30
    assert explainer.tracing_count <= 1                                 # nothing traced for those


POSITIVE, NEGATIVE = ("great", "love"), ("awful", "hate")
VOCAB = ["", "[UNK]", *POSITIVE, *NEGATIVE] + [f"w{i}" for i in range(6, V)]


def _sentences(n, rng, both=False):
    """Token ids of n sentences of 3..8 words (left-padded like pad_sequences): neutral words with one
    planted positive or negative word (label 1 / 0), or with one of each (``both``)."""
    import keras
    seqs, labels = [], []
    for _ in range(n):
        words = list(rng.integers(6, V, size=rng.integers(3, L + 1)))
        label = int(rng.integers(2))
        planted = [rng.choice([2, 3]), rng.choice([4, 5])] if both else [rng.choice([2, 3] if label else [4, 5])]
        for p, w in zip(rng.choice(len(words), size=len(planted), replace=False), planted):
            words[p] = w
        seqs.append(words)
        labels.append(label)
    return keras.utils.pad_sequences(seqs, maxlen=L).astype(np.int32), np.array(labels, np.float32)


@pytest.fixture(scope="module")
def classifier():
    import keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x, y = _sentences(1500, rng)
    model = keras.Sequential([keras.Input((L,), dtype="int32"), keras.layers.Embedding(V, 8, mask_zero=True),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=64, verbose=0)
    xt, yt = _sentences(200, rng)
    return model, model.evaluate(xt, yt, verbose=0)[1], _sentences(6, rng, both=True)[0]


def test_classifier_ranks_planted_words_first_with_their_signs(classifier):
    """Embedding + GlobalAveragePooling + Dense trained on sentences with a planted positive or
    negative word: in sentences holding one of each, those two words have the largest |values|, the
    positive one > 0 and the negative one < 0 (the length L comes from the model; words from the
    vocabulary; hidden words become [UNK]: a row of padding only would average nothing, NaN)."""
    model, accuracy, x = classifier
    assert accuracy > 0.95
    with pytest.raises(ValueError, match="NaN"):          # mask_token=None: hidden words become padding
        tfexplain.KernelShap(model, Text())
    exp = tfexplain.KernelShap(model, Text(mask_token=1, vocabulary=VOCAB), n_samples=2**L - 2, n_bootstrap=0)(x)
    assert exp.values.shape == (6, L) and exp.tokens.shape == (6, L)
    np.testing.assert_array_equal(exp.tokens, np.array(VOCAB)[x])
    assert np.all(exp.values[x == 0] == 0.0)
    empty = model(np.where(x == 0, 0, 1)).numpy()[:, 0]    # every word hidden, padding kept
    np.testing.assert_allclose(exp.base_values, empty, atol=1e-6)
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - empty, atol=1e-4)
    for i in range(len(x)):
        top = set(np.argsort(-np.abs(exp.values[i]))[:2])
        assert top == set(np.flatnonzero(np.isin(x[i], [2, 3, 4, 5]))), exp.tokens[i]
        assert np.all(exp.values[i][np.isin(x[i], [2, 3])] > 0)
        assert np.all(exp.values[i][np.isin(x[i], [4, 5])] < 0)
    back = tfexplain.Explanation.from_dict(exp.to_dict())
    np.testing.assert_array_equal(back.tokens, exp.tokens)
    assert exp[:, 2:4].tokens.shape == (6, 2)


def test_lime_with_text_ranks_planted_words_first(classifier):
    """Lime with a Text masker is lime_text's LimeTextExplainer(bow=False) on token positions:
    binary samples (k of the row's words hidden, k uniform), cosine distance, kernel width 25, ridge;
    the planted words get the two largest |weights| with their signs, padding exactly 0."""
    model, _, x = classifier
    lime = tfexplain.Lime(model, masker=Text(mask_token=1, vocabulary=VOCAB), n_samples=500)
    assert lime.kernel_width == 25.0
    exp = lime(x, seed=0)
    assert exp.values.shape == (6, L)
    assert np.all(exp.values[x == 0] == 0.0)
    for i in range(len(x)):
        top = set(np.argsort(-np.abs(exp.values[i]))[:2])
        assert top == set(np.flatnonzero(np.isin(x[i], [2, 3, 4, 5]))), exp.tokens[i]
        assert np.all(exp.values[i][np.isin(x[i], [2, 3])] > 0)
        assert np.all(exp.values[i][np.isin(x[i], [4, 5])] < 0)


def test_string_model_words_match_token_ids(classifier):
    """A model taking strings (TextVectorization in front of the classifier) explained per word with
    maskers.Words (split in-graph with tf.strings): the same values as maskers.Text on the ids the
    layer makes, padding and words past `length` exactly 0, one trace for any batch size."""
    import keras
    from tfexplain.maskers import Words
    model, _, x = classifier
    layer = keras.layers.TextVectorization(vocabulary=VOCAB[2:], output_sequence_length=L)
    assert layer.get_vocabulary() == VOCAB
    inp = keras.Input((1,), dtype="string")
    strings = keras.Model(inp, model(layer(inp)))
    sentences = [" ".join(VOCAB[t] for t in row if t) for row in x]
    sentences[0] = sentences[0].upper() + "!"                           # standardized like the layer does
    sentences[1] = "zzz " + sentences[1]                                # a word outside the vocabulary
    explainer = tfexplain.KernelShap(strings, Words(VOCAB, L), n_samples=2**L - 2, n_bootstrap=0)
    exp = explainer(sentences)
    ids = layer(np.array(sentences)[:, None]).numpy().astype(np.int32)
    ref = tfexplain.KernelShap(model, Text(mask_token=1), n_samples=2**L - 2, n_bootstrap=0)(ids)
    np.testing.assert_allclose(exp.values, ref.values, atol=1e-5)
    np.testing.assert_array_equal(exp.tokens, np.array(VOCAB)[ids])
    assert exp.tokens[1, 0] == "[UNK]" and np.all(exp.values[ids == 0] == 0.0)
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=1e-4)
    explainer(sentences[2], seed=1)
    assert explainer.tracing_count == 1
    assert list(tfexplain.Explanation.from_dict(exp.to_dict()).data) == sentences
    with pytest.raises(TypeError, match="`x`"):
        explainer(np.zeros((2, L)))
    with pytest.raises(ValueError, match="vocabulary"):
        Words(VOCAB[1:], L)


def test_tables_show_tokens():
    """top_features / table show each position's token (its id, or its word with a vocabulary)."""
    exp = EXPLAINER(X[:2], seed=0)
    name, token, value = exp.top_features(1, k=1)[0]
    j = int(np.argmax(np.abs(exp.values[1, :, 0])))
    assert (name, token, value) == (f"position {j}", int(X[1, j]), float(exp.values[1, j, 0]))
    words = tfexplain.Explanation.from_dict({**exp.to_dict(), "tokens": np.array(VOCAB)[X[:2]].tolist()})
    assert words.top_features(1, k=1)[0][1] == VOCAB[X[1, j]]
    assert f"position {j}  = {VOCAB[X[1, j]]:>10}" in words.table(k=2)


def test_lime_text_kernel_is_lime_texts():
    """lime_text weights a sample by sqrt(exp(-d^2 / 25^2)) with d = 100 x the cosine distance of its
    on/off vector to the row's (lime_text.py: pairwise_distances(..., metric="cosine") * 100)."""
    from sklearn.metrics.pairwise import pairwise_distances
    x = np.array([[0, 0, 7, 8, 9, 10, 11, 12]], np.int32)
    lime = tfexplain.Lime(MODEL, masker=Text(mask_token=1), n_samples=50)
    s = lime.samples(x, seed=0)
    z = s["z"][0]
    active = x[0] != 0
    dist = pairwise_distances(z[:, active], z[:1, active], metric="cosine").ravel() * 100
    np.testing.assert_allclose(s["weights"][0], np.sqrt(np.exp(-dist ** 2 / 25.0 ** 2)), rtol=1e-6, atol=1e-12)
    assert np.all(z[:, ~active] == 0) and np.all(z[0, active] == 1)


def test_words_refuses_xla_and_exports_with_the_lookup_table(classifier, tmp_path):
    """Strings do not compile with XLA (refused with a ValueError before anything is traced); export
    tracks the TextVectorization's lookup table, and the SavedModel gives the same numbers in a fresh
    process (taking the sentences as tf.string)."""
    from tfexplain.maskers import Words
    model = classifier[0]
    import keras
    vectorizer = keras.layers.TextVectorization(vocabulary=VOCAB[2:], output_sequence_length=L)
    strings = keras.Sequential([keras.Input((), dtype="string"), vectorizer, model])
    with pytest.raises(ValueError, match="jit_compile"):
        tfexplain.KernelShap(strings, Words(vectorizer.get_vocabulary(), L), jit_compile=True)
    explainer = tfexplain.KernelShap(strings, Words(vectorizer.get_vocabulary(), L), n_samples=20)
    # sentences go to shards as text (readable without pickle) and resume by their text
    sentences = np.array(["a great movie", "I hate it", "awful", "w7 w8 love"], dtype=object)
    whole = explainer(sentences, seed=1)
    path = tfexplain.export(explainer, tmp_path / "words")
    script = (
        "import sys, json, numpy as np, tensorflow as tf\n"
        "l = tf.saved_model.load(sys.argv[1])\n"
        "out = l.signatures['explain'](x=tf.constant(json.loads(sys.argv[2])), seed=tf.constant(1, tf.int64))\n"
        "np.save(sys.argv[3], out['values'].numpy())\n")
    import json
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c", script, str(path), json.dumps(list(sentences)), str(tmp_path / "v.npy")],
                   check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), whole.values)
    for _ in range(2):
        got = explainer.explain_dataset(list(sentences), seed=1, batch_size=2, shard_size=2, verbose=0,
                                        out=tmp_path / "shards").load()
        np.testing.assert_array_equal(got.values, whole.values)
        np.testing.assert_array_equal(got.tokens, whole.tokens.astype(str))
