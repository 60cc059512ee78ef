"""Multi-input models (tfexplain.maskers.Composite): one coalition spans every input, joint tabular
backgrounds (row j of every input is one background row, not a cross product), checked against
exact Shapley values by enumerating all coalitions of a float64 reference; numbers + tokens in a Keras
model; boundary errors; one trace, XLA, batching invariance and an export round trip."""

import itertools
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain.maskers import Composite, Tabular, Text

RNG = np.random.default_rng(3)
DA, DB, L, V = 3, 2, 4, 12
BG_A = RNG.normal(size=(5, DA)).astype(np.float32)
BG_B = (BG_A[:, :DB] * 2.0 + RNG.normal(size=(5, DB)) * 0.1).astype(np.float32)   # co-varies with a
W_A = RNG.normal(size=DA)
W_B = RNG.normal(size=DB)


def _np_two(a, b):
    """float64 reference of TWO: an interaction across the inputs, so joint and crossed backgrounds differ."""
    return np.tanh(a @ W_A) + (b @ W_B) * a[..., 0] + 0.5 * b[..., 1] ** 2


@tf.function(input_signature=[{"a": tf.TensorSpec([None, DA], tf.float32), "b": tf.TensorSpec([None, DB], tf.float32)}])
def TWO(x):
    a, b = x["a"], x["b"]
    wa, wb = tf.constant(W_A, tf.float32), tf.constant(W_B, tf.float32)
    return tf.tanh(tf.linalg.matvec(a, wa)) + tf.linalg.matvec(b, wb) * a[:, 0] + 0.5 * b[:, 1] ** 2


def _shapley(value, p):
    """Exact Shapley values of ``value(frozenset)`` over p players (each coalition's value computed once)."""
    cache = {}

    def v(s):
        if s not in cache:
            cache[s] = value(s)
        return cache[s]

    phi = np.zeros(p)
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for r in range(p):
            w = math.factorial(r) * math.factorial(p - r - 1) / math.factorial(p)
            for s in itertools.combinations(others, r):
                phi[j] += w * (v(frozenset(s) | {j}) - v(frozenset(s)))
    return phi


def _joint_value(a, b, weights=None):
    """The interventional game of one instance (a, b) over DA + DB players with joint background rows."""
    w = np.full(len(BG_A), 1 / len(BG_A)) if weights is None else weights / weights.sum()

    def value(s):
        ma = np.array([j in s for j in range(DA)])
        mb = np.array([DA + j in s for j in range(DB)])
        rows_a = np.where(ma, a, BG_A).astype(np.float64)
        rows_b = np.where(mb, b, BG_B).astype(np.float64)
        return float(w @ _np_two(rows_a, rows_b))

    return value


XA = RNG.normal(size=(4, DA)).astype(np.float32)
XB = RNG.normal(size=(4, DB)).astype(np.float32)


@pytest.fixture(scope="module")
def two_exact():
    return tfexplain.KernelShap(TWO, {"a": BG_A, "b": BG_B}, sampler="exact")


def test_two_tabular_inputs_match_enumeration_of_the_joint_game(two_exact):
    exp = two_exact({"a": XA, "b": XB})
    assert exp.values.shape == (4, DA + DB)
    assert exp.feature_names == [f"a:x{j}" for j in range(DA)] + [f"b:x{j}" for j in range(DB)]
    for i in range(4):
        value = _joint_value(XA[i], XB[i])
        np.testing.assert_allclose(exp.values[i], _shapley(value, DA + DB), atol=2e-5)
        np.testing.assert_allclose(exp.base_values[i], value(frozenset()), atol=2e-5)
    # keyed like the model's inputs; efficiency over all inputs together
    split = exp.values_by_input
    assert list(split) == ["a", "b"] and split["a"].shape == (4, DA) and split["b"].shape == (4, DB)
    np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, exp.model_output, atol=2e-5)
    assert isinstance(exp.data, dict) and exp.data["a"].shape == (4, DA)


def test_joint_background_is_not_a_cross_product(two_exact):
    """A crossed background (every row of a with every row of b) gives another game: the test above would
    not pass with it, and this checks the two games differ here."""
    crossed_a = np.repeat(BG_A, len(BG_B), 0)
    crossed_b = np.tile(BG_B, (len(BG_A), 1))
    crossed = tfexplain.KernelShap(TWO, {"a": crossed_a, "b": crossed_b}, sampler="exact")
    x = {"a": XA[:2], "b": XB[:2]}
    assert np.abs(crossed(x).values - two_exact(x).values).max() > 1e-2


def test_background_weights_are_joint():
    w = np.array([1.0, 2.0, 0.0, 3.0, 1.0])
    exp = tfexplain.KernelShap(TWO, {"a": BG_A, "b": BG_B}, background_weights=w, sampler="exact")(
        {"a": XA[:2], "b": XB[:2]})
    for i in range(2):
        np.testing.assert_allclose(exp.values[i], _shapley(_joint_value(XA[i], XB[i], w), DA + DB), atol=2e-5)


def test_list_inputs_and_sampled_budget():
    @tf.function(input_signature=[[tf.TensorSpec([None, DA], tf.float32), tf.TensorSpec([None, DB], tf.float32)]])
    def two_list(x):
        return TWO({"a": x[0], "b": x[1]})

    explainer = tfexplain.KernelShap(two_list, [Tabular(BG_A), Tabular(BG_B)], n_samples=20)
    exp = explainer([XA, XB], seed=1)
    assert exp.feature_names[0] == "0:x0" and isinstance(exp.values_by_input, list)
    np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, exp.model_output, atol=2e-5)
    assert exp.stderr is not None and np.all(np.isfinite(exp.stderr))
    # any batching with the rows' ids gives the same numbers, bit for bit; one trace
    parts = [explainer([XA[i:i + 3], XB[i:i + 3]], seed=1, row_offset=i).values for i in (0, 3)]
    np.testing.assert_array_equal(np.concatenate(parts), exp.values)
    assert explainer.tracing_count == 1


# ---- numbers + tokens in one Keras model ------------------------------------------------------------
def _keras_numbers_tokens():
    keras.utils.set_random_seed(0)
    num = keras.Input((DB,), name="numbers")
    tok = keras.Input((L,), dtype="int32", name="tokens")
    emb = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(V, 3)(tok))
    h = keras.layers.Dense(4, activation="tanh")(keras.layers.Concatenate()([num, emb]))
    return keras.Model({"numbers": num, "tokens": tok}, keras.layers.Dense(2)(h))


NUM = RNG.normal(size=(3, DB)).astype(np.float32)
TOK = np.array([[0, 0, 5, 6], [7, 8, 9, 10], [0, 3, 0, 4]], np.int32)   # left, no and inner padding


@pytest.fixture(scope="module")
def numbers_tokens():
    model = _keras_numbers_tokens()
    return model, tfexplain.KernelShap(model, {"numbers": BG_B, "tokens": Text(mask_token=1)}, sampler="exact",
                                       target=1)


def test_numbers_and_tokens_match_enumeration(numbers_tokens):
    model, explainer = numbers_tokens
    assert explainer.masker.rows_per_sample == len(BG_B)   # the text input is repeated beside each background row
    exp = explainer({"numbers": NUM, "tokens": TOK})

    def f(num_rows, tok_rows):
        return model({"numbers": tf.constant(num_rows), "tokens": tf.constant(tok_rows)}, training=False).numpy()[:, 1]

    for i in range(3):
        def value(s):
            num = np.where([j in s for j in range(DB)], NUM[i], BG_B)
            tok = np.where([(DB + j) in s or TOK[i, j] == 0 for j in range(L)], TOK[i], 1)
            return float(f(num, np.repeat(tok[None], len(BG_B), 0)).astype(np.float64).mean())

        np.testing.assert_allclose(exp.values[i], _shapley(value, DB + L), atol=3e-6)
    tokens = exp.values_by_input["tokens"]
    assert np.all(tokens[TOK == 0] == 0.0)          # padding: null players, exactly 0
    np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, exp.model_output, atol=3e-6)


def test_boundary_errors(numbers_tokens):
    _, explainer = numbers_tokens
    with pytest.raises(ValueError, match=r"missing \['tokens'\]"):
        explainer({"numbers": NUM})
    with pytest.raises(ValueError, match=r"unexpected \['other'\]"):
        explainer({"numbers": NUM, "tokens": TOK, "other": NUM})
    with pytest.raises(TypeError, match=r"`x\['tokens'\]` must be integer token ids"):
        explainer({"numbers": NUM, "tokens": TOK.astype(np.float32)})
    with pytest.raises(ValueError, match="same number of rows"):
        explainer({"numbers": NUM[:2], "tokens": TOK})
    with pytest.raises(ValueError, match=r"`x\['numbers'\]` contains NaN"):
        explainer({"numbers": np.full_like(NUM, np.nan), "tokens": TOK})
    with pytest.raises(TypeError, match="must be a dict"):
        explainer(NUM)
    with pytest.raises(ValueError, match="joint"):
        tfexplain.KernelShap(TWO, {"a": BG_A, "b": BG_B[:3]})
    with pytest.raises(TypeError, match="input 'b'"):
        Composite({"a": Tabular(BG_A), "b": "text"})


def test_xla_compiles_at_most_two_programs():
    x = {"a": XA, "b": XB}
    explainer = tfexplain.KernelShap(TWO, {"a": BG_A, "b": BG_B}, n_samples=16, adjust=False, n_bootstrap=0,
                                     jit_compile=True)
    exp = explainer(x, seed=2)
    explainer({"a": XA[:1], "b": XB[:1]}, seed=2)
    assert explainer.compilations <= 2 and explainer.tracing_count == 1
    plain = tfexplain.KernelShap(TWO, {"a": BG_A, "b": BG_B}, n_samples=16, adjust=False, n_bootstrap=0)
    np.testing.assert_allclose(plain(x, seed=2).values, exp.values, atol=1e-5)


def test_export_and_slicing(numbers_tokens, tmp_path):
    model, _ = numbers_tokens
    x = {"numbers": NUM, "tokens": TOK}
    plain = tfexplain.KernelShap(model, {"numbers": BG_B, "tokens": Text(mask_token=1)}, n_samples=32)
    exp = plain(x, seed=2)
    path = tfexplain.export(plain, os.path.join(tmp_path, "mi"))
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures["explain_rows"]
    assert set(sig.structured_input_signature[1]) == {"numbers", "tokens", "seed", "row_ids"}
    out = sig(numbers=tf.constant(NUM), tokens=tf.constant(TOK), seed=tf.constant(2, tf.int64),
              row_ids=tf.constant([0, 1, 2], tf.int64))
    np.testing.assert_array_equal(out["values"].numpy(), exp.values)
    with pytest.raises(tf.errors.InvalidArgumentError, match="token ids"):
        loaded.signatures["explain"](numbers=tf.constant(NUM), tokens=tf.constant(-TOK - 1),
                                     seed=tf.constant(0, tf.int64))

    first = exp[0]
    assert first.data["tokens"].shape == (1, L) and first.values_by_input["numbers"].shape == (1, DB, 2)
    back = tfexplain.Explanation.from_dict(exp.to_dict())
    np.testing.assert_array_equal(back.data["tokens"], TOK)
    np.testing.assert_array_equal(back.values_by_input["tokens"], exp.values_by_input["tokens"])


def test_lime_takes_a_composite(numbers_tokens):
    model, _ = numbers_tokens
    masker = Composite({"numbers": Tabular(BG_B), "tokens": Text(mask_token=1)})
    with pytest.raises(ValueError, match="kernel_width"):
        tfexplain.Lime(model, masker=masker)
    lime = tfexplain.Lime(model, masker=masker, kernel_width=0.25, n_samples=300, target=1)
    exp = lime({"numbers": NUM, "tokens": TOK}, seed=0)
    assert exp.values.shape == (3, DB + L)
    assert np.all(exp.values_by_input["tokens"][TOK == 0] == 0.0)     # padding never switched off
    assert np.all(exp.score > 0.5)


def test_sentences_and_numbers_export(tmp_path):
    """A Words input (strings through a TextVectorization) beside a tabular one: efficiency over both, and
    the exported signature (one argument per input, the lookup table tracked) gives the same numbers."""
    from tfexplain.maskers import Words
    vocab = ["", "[UNK]"] + [f"w{i}" for i in range(8)]
    keras.utils.set_random_seed(1)
    vectorizer = keras.layers.TextVectorization(vocabulary=vocab[2:], output_sequence_length=L)
    text = keras.Input((), dtype="string", name="text")
    num = keras.Input((DB,), name="num")
    emb = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(len(vocab), 3)(vectorizer(text)))
    model = keras.Model({"text": text, "num": num}, keras.layers.Dense(1)(keras.layers.Concatenate()([emb, num])))
    explainer = tfexplain.KernelShap(model, {"text": Words(vocabulary=vocab, length=L), "num": BG_B},
                                     sampler="exact")
    x = {"text": ["w1 w2 w3", "w4 zzz", "w5"], "num": NUM}
    exp = explainer(x)
    assert exp.feature_names[:2] == ["text:word 0", "text:word 1"]
    np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, exp.model_output, atol=2e-6)
    assert np.all(exp.values_by_input["text"][2, 1:] == 0.0)      # past the sentence's one word
    loaded = tf.saved_model.load(tfexplain.export(explainer, os.path.join(tmp_path, "words")))
    out = loaded.signatures["explain"](text=tf.constant(x["text"]), num=tf.constant(NUM), seed=tf.constant(0, tf.int64))
    np.testing.assert_array_equal(out["values"].numpy(), exp.values)


def test_explain_dataset_with_several_inputs(numbers_tokens, tmp_path):
    """explain_dataset takes the inputs as a dict of arrays, a tf.data.Dataset of dicts (rows, or (x, y)
    batches) or an iterable of dict batches: the numbers of one call, bit for bit, also from shards
    written to disk and resumed."""
    model, _ = numbers_tokens
    explainer = tfexplain.KernelShap(model, {"numbers": BG_B, "tokens": Text(mask_token=1)}, n_samples=16)
    num = np.repeat(NUM, 3, 0)
    tok = np.repeat(TOK, 3, 0)
    whole = explainer({"numbers": num, "tokens": tok}, seed=4)
    got = explainer.explain_dataset({"numbers": num, "tokens": tok}, seed=4, batch_size=4, verbose=0)
    np.testing.assert_array_equal(got.values, whole.values)
    np.testing.assert_array_equal(got.data["tokens"], tok)
    rows = tf.data.Dataset.from_tensor_slices({"numbers": num, "tokens": tok})
    np.testing.assert_array_equal(explainer.explain_dataset(rows, seed=4, batch_size=2, verbose=0).values, whole.values)
    pairs = tf.data.Dataset.from_tensor_slices(({"numbers": num, "tokens": tok}, np.zeros(len(num)))).batch(5)
    np.testing.assert_array_equal(explainer.explain_dataset(pairs, seed=4, batch_size=3, verbose=0).values,
                                  whole.values)
    batches = [{"numbers": num[i:i + 4], "tokens": tok[i:i + 4]} for i in range(0, len(num), 4)]
    for _ in range(2):   # the second run resumes: every shard is checked against its rows and skipped
        shards = explainer.explain_dataset(iter(batches), seed=4, batch_size=2, shard_size=4, verbose=0,
                                           out=tmp_path / "shards")
        loaded = shards.load()
        np.testing.assert_array_equal(loaded.values, whole.values)
        np.testing.assert_array_equal(loaded.data["numbers"], num)
        np.testing.assert_array_equal(loaded.values_by_input["tokens"], whole.values_by_input["tokens"])
    with pytest.raises(ValueError, match="missing"):
        explainer.explain_dataset({"numbers": num}, verbose=0)


# ---- review findings ---------------------------------------------------------------------------------
@tf.function(input_signature=[{"a": tf.TensorSpec([None, DA], tf.float64), "b": tf.TensorSpec([None, DB], tf.float64)}])
def TWO64(x):
    return tf.reduce_sum(tf.tanh(x["a"]), 1) + tf.reduce_sum(x["b"], 1) * x["a"][:, 0]


def test_nested_float64_signature_runs_in_the_graph():
    """Each input is cast to its own spec's dtype (it used to fall back to numpy and hang)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no "not TensorFlow ops" fallback warning
        explainer = tfexplain.KernelShap(TWO64, {"a": BG_A, "b": BG_B}, sampler="exact")
    assert explainer.in_graph
    exp = explainer({"a": XA, "b": XB})
    np.testing.assert_allclose(exp.values.sum(1) + exp.base_values, exp.model_output, atol=1e-5)


def test_nonfinite_outputs_are_diagnosed_per_input():
    @tf.function(input_signature=[{"a": tf.TensorSpec([None, DA], tf.float32), "b": tf.TensorSpec([None, DB], tf.float32)}])
    def nan_when_large(x):
        out = TWO(x)
        return tf.where(x["a"][:, 0] > 5.0, tf.constant(np.nan, tf.float32), out)

    explainer = tfexplain.KernelShap(nan_when_large, {"a": BG_A, "b": BG_B}, n_samples=16)
    a = XA.copy()
    a[1, 0] = 9.0
    with pytest.raises(ValueError, match=r"returned NaN or Inf on \d+ of \d+ rows evaluated to explain instance 1"):
        explainer({"a": a, "b": XB})


def test_frames_columns_and_one_feature_columns():
    pd = pytest.importorskip("pandas")
    explainer = tfexplain.KernelShap(TWO, {"a": pd.DataFrame(BG_A, columns=list("pqr")), "b": BG_B}, sampler="exact")
    assert explainer.feature_names[:3] == ["a:p", "a:q", "a:r"]
    good = explainer({"a": pd.DataFrame(XA, columns=list("pqr")), "b": XB})
    np.testing.assert_array_equal(good.values, explainer({"a": XA, "b": XB}).values)
    with pytest.raises(ValueError, match="column"):
        explainer({"a": pd.DataFrame(XA, columns=list("rqp")), "b": XB})
    with pytest.raises(ValueError, match="feature_names"):
        Tabular(BG_A, feature_names=["only", "two"])
    with pytest.raises(AttributeError, match="multi-input"):
        tfexplain.KernelShap(_one_input(), BG_A, n_samples=8)(XA).values_by_input

    @tf.function(input_signature=[[tf.TensorSpec([None, 1], tf.float32), tf.TensorSpec([None, DB], tf.float32)]])
    def one_feature(x):
        return x[0][:, 0] * tf.reduce_sum(x[1], 1)

    one = tfexplain.KernelShap(one_feature, [Tabular(BG_A[:, :1]), Tabular(BG_B)], sampler="exact")
    np.testing.assert_array_equal(one([XA[:, 0], XB]).values, one([XA[:, :1], XB]).values)   # a column [n] is [n, 1]


def test_keras_style_pairs_lime_dict_and_feature_slices(numbers_tokens):
    model, explainer = numbers_tokens
    x = {"numbers": NUM, "tokens": TOK}
    whole = explainer(x)
    pairs = tf.data.Dataset.from_tensor_slices((x, np.zeros(3))).batch(2)        # (inputs, y) batches
    np.testing.assert_array_equal(explainer.explain_dataset(pairs, verbose=0).values, whole.values)
    np.testing.assert_array_equal(explainer.explain_dataset([(x, np.zeros(3))], verbose=0).values, whole.values)
    lime = tfexplain.Lime(model, masker={"numbers": BG_B, "tokens": Text(mask_token=1)}, kernel_width=0.25,
                          n_samples=100, target=1)
    assert isinstance(lime.masker, Composite) and lime(x).values.shape == (3, DB + L)
    part = whole[:, ["numbers:x0", "tokens:position 3"]]
    assert part.inputs is None and part.data.shape == (3, 2)
    np.testing.assert_array_equal(part.data[:, 1], TOK[:, 3])
    back = tfexplain.Explanation.from_dict(part.to_dict())
    np.testing.assert_array_equal(back.values, part.values)


def test_list_signature_takes_plain_arrays():
    """A tf.function whose input_signature is a list of specs: a list of arrays is one background per input."""
    @tf.function(input_signature=[[tf.TensorSpec([None, DA], tf.float32), tf.TensorSpec([None, DB], tf.float32)]])
    def two_list(x):
        return TWO({"a": x[0], "b": x[1]})

    exp = tfexplain.KernelShap(two_list, [BG_A, BG_B], sampler="exact")([XA, XB])
    for i in range(2):
        np.testing.assert_allclose(exp.values[i], _shapley(_joint_value(XA[i], XB[i]), DA + DB), atol=2e-5)


def _one_input():
    @tf.function(input_signature=[tf.TensorSpec([None, DA], tf.float32)])
    def f(a):
        return tf.reduce_sum(a, 1)
    return f
