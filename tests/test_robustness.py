"""Bad inputs found by the sweep of issue #11: each is rejected with an error naming the argument
(or, for models that cannot be traced, handled) instead of giving silent NaN / zeros or a TF error."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import metrics


def _sum_model(t):
    return tf.reduce_sum(t, 1)


# ---- item 15: messages for empty x and values beyond float32 ------------------------------------

@pytest.mark.parametrize("empty", [[], np.zeros(0), np.zeros((0, 3))])
def test_empty_x_is_reported_as_empty_not_as_zero_features(empty, rng):
    bg = rng.normal(size=(4, 3)).astype(np.float32)
    explainer = tfexplain.KernelShap(_sum_model, bg, n_samples=6)
    with pytest.raises(ValueError, match=r"`x` is empty") as info:
        explainer(empty)
    assert "features" not in str(info.value)
    with pytest.raises(ValueError, match=r"`x` is empty"):
        metrics.deletion(_sum_model, empty, np.zeros((0, 3)))


def test_values_beyond_float32_range_are_named_as_such(rng):
    bg = rng.normal(size=(4, 3))
    big = bg.copy()
    big[1, 2] = 1e39
    with pytest.raises(ValueError, match=r"`background`.*float32.*row 1, column 2") as info:
        tfexplain.KernelShap(_sum_model, big)
    assert "NaN" not in str(info.value)
    explainer = tfexplain.KernelShap(_sum_model, bg.astype(np.float32), n_samples=6)
    with pytest.raises(ValueError, match=r"`x`.*float32.*row 1, column 2"):
        explainer(big)
    with pytest.raises(ValueError, match=r"`x` contains NaN or Inf"):  # a real Inf is still an Inf
        explainer(np.array([[0.0, np.inf, 1.0]]))
    assert explainer.tracing_count == 0


def test_faithfulness_correlation_subset_size_zero_is_an_error(rng):
    x = rng.normal(size=(2, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="subset_size.*>= 1"):
        metrics.faithfulness_correlation(_sum_model, x, x, subset_size=0, n_runs=4)
    default = metrics.faithfulness_correlation(_sum_model, x, x, subset_size=None, n_runs=4)
    one = metrics.faithfulness_correlation(_sum_model, x, x, subset_size=1, n_runs=4)
    np.testing.assert_allclose(default, one)  # None: the default max(1, d // 4) = 1


# ---- item 6: Python / NumPy callables, Keras predict, tf.function input dtypes --------------------

def _keras3(d, outputs=2):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((d,)), keras.layers.Dense(4, activation="tanh"),
                             keras.layers.Dense(outputs, activation="softmax")])


def _tf_keras(d, outputs=2):
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential([tf_keras.layers.Dense(4, activation="tanh", input_shape=(d,)),
                                tf_keras.layers.Dense(outputs, activation="softmax")])


@pytest.mark.parametrize("make", [_keras3, _tf_keras], ids=["keras3", "tf_keras"])
def test_keras_predict_unwraps_to_the_model_in_graph(make, rng):
    d = 3
    model = make(d)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "leaves the graph" warning
        explainer = tfexplain.KernelShap(model.predict, bg, n_samples=8)
        exp = explainer(x, seed=3)
    ref = tfexplain.KernelShap(model, bg, n_samples=8)(x, seed=3)
    np.testing.assert_allclose(exp.values, ref.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(exp.model_output, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def _logistic(d, rng):
    from sklearn.linear_model import LogisticRegression
    data = rng.normal(size=(30, d))
    clf = LogisticRegression().fit(data, (data @ np.arange(1.0, d + 1) > 0).astype(int))
    w, b = clf.coef_[0].astype(np.float32), np.float32(clf.intercept_[0])

    def reference(t):
        p = tf.sigmoid(tf.linalg.matvec(t, tf.constant(w)) + b)
        return tf.stack([1.0 - p, p], 1)

    return clf.predict_proba, reference


def _numpy_mlp(d, rng):
    from conftest import mlp_numpy, mlp_tf, mlp_weights
    params = mlp_weights(d, hidden=4, outputs=2)
    return (lambda a: mlp_numpy(params, a)), mlp_tf(params)


def _keras_predict_lambda(d, rng):
    model = _keras3(d)
    return (lambda t: model.predict(t, verbose=0)), model


@pytest.mark.parametrize("make", [_logistic, _numpy_mlp, _keras_predict_lambda],
                         ids=["sklearn_predict_proba", "numpy_function", "lambda_predict"])
def test_untraceable_callables_run_through_numpy_function(make, rng):
    d = 3
    model, reference = make(d, rng)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    with pytest.warns(UserWarning, match="numpy_function") as record:
        shap_explainer = tfexplain.KernelShap(model, bg, n_samples=8, target=1)
        exp = shap_explainer(x, seed=1)
        shap_explainer(x, seed=2)
    assert len([w for w in record if issubclass(w.category, UserWarning)]) == 1  # once, at construction
    ref = tfexplain.KernelShap(reference, bg, n_samples=8, target=1)(x, seed=1)
    np.testing.assert_allclose(exp.values, ref.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(exp.base_values, ref.base_values, rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match="numpy_function"):
        lime = tfexplain.Lime(model, bg, n_samples=20, num_features=2)(x, seed=1)
    lime_ref = tfexplain.Lime(reference, bg, n_samples=20, num_features=2)(x, seed=1)
    np.testing.assert_allclose(lime.values, lime_ref.values, rtol=1e-3, atol=1e-4)


def test_untraceable_model_rejects_jit_compile(rng):
    bg = rng.normal(size=(4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"jit_compile.*numpy_function.*Keras model"):
        tfexplain.KernelShap(lambda a: np.tanh(a).sum(1), bg, n_samples=8, jit_compile=True)


def test_model_failing_in_graph_and_on_numpy_names_model(rng):
    bg = rng.normal(size=(4, 3)).astype(np.float32)

    def broken(t):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match=r"`model` failed.*boom"):
        tfexplain.KernelShap(broken, bg)


@pytest.mark.parametrize("dtype", [tf.float16, tf.float64])
def test_tf_function_input_signature_dtype_is_cast_to(dtype, rng):
    d = 3
    w = np.array([1.0, -2.0, 0.5])

    @tf.function(input_signature=[tf.TensorSpec([None, d], dtype)])
    def typed(t):
        return tf.linalg.matvec(t, tf.constant(w, dtype))

    class Typed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, d], dtype)])
        def __call__(self, t):
            return tf.linalg.matvec(t, tf.constant(w, dtype))

    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    ref = tfexplain.KernelShap(lambda t: tf.linalg.matvec(t, tf.constant(w, tf.float32)), bg, sampler="exact")(x)
    tol = 1e-2 if dtype == tf.float16 else 1e-5
    for model in (typed, Typed()):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            exp = tfexplain.KernelShap(model, bg, sampler="exact")(x)
        np.testing.assert_allclose(exp.values, ref.values, rtol=tol, atol=tol)


def test_metrics_accept_numpy_models(rng):
    from conftest import mlp_numpy, mlp_tf, mlp_weights
    params = mlp_weights(3, hidden=4)
    x = rng.normal(size=(2, 3)).astype(np.float32)
    a = rng.normal(size=(2, 3))
    with pytest.warns(UserWarning, match="numpy_function"):
        got = metrics.deletion(lambda arr: mlp_numpy(params, arr), x, a)
    ref = metrics.deletion(mlp_tf(params), x, a)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-5, atol=1e-6)


# ---- items 1 and 4: logit link on non-probabilities, NaN model outputs ----------------------------

def _exact_rows(x, background):
    """The model rows an exact-sampler KernelShap evaluates for instance x: every proper non-empty
    coalition against every background row, then x itself."""
    import itertools
    d = len(x)
    rows = [np.where(np.array(bits, bool), x, b) for bits in itertools.product([0, 1], repeat=d)
            if 0 < sum(bits) < d for b in background]
    return np.array(rows + [x], np.float32)


def test_logit_link_rejects_logit_outputs_at_construction(rng):
    w = np.array([8.0, -8.0, 4.0], np.float32)
    bg = rng.normal(size=(5, 3)).astype(np.float32)
    outside = int(np.sum((bg @ w < 0) | (bg @ w > 1)))
    with pytest.raises(ValueError, match=rf"`model`.*outside \[0, 1\] on {outside} of 5 `background` rows.*"
                                         r"link='logit' expects probabilities.*link='identity'"):
        tfexplain.KernelShap(lambda t: tf.linalg.matvec(t, tf.constant(w))[:, None], bg, link="logit")
    ok = tfexplain.KernelShap(lambda t: tf.sigmoid(tf.linalg.matvec(t, tf.constant(w)))[:, None], bg, link="logit",
                              sampler="exact")(bg[:2])
    assert np.all(np.isfinite(ok.values)) and np.abs(ok.values).max() > 1  # log-odds, not clipped zeros


def test_logit_link_outputs_outside_unit_interval_at_call_time(rng):
    bg = rng.uniform(-1, 1, size=(4, 3)).astype(np.float32)  # 0.5 + 0.1 * sum in [0.2, 0.8] on the background
    x = np.array([[0.1, 0.2, 0.3], [10.0, 0.0, 0.0]], np.float32)
    explainer = tfexplain.KernelShap(lambda t: 0.5 + 0.1 * tf.reduce_sum(t, 1), bg, link="logit", sampler="exact")
    rows = _exact_rows(x[1], bg)
    p = 0.5 + 0.1 * rows.sum(1)
    outside = int(np.sum((p < 0) | (p > 1)))
    assert 0 < outside < len(rows)
    with pytest.raises(ValueError, match=rf"outside \[0, 1\] on {outside} of {len(rows)} rows.*instance 1 of `x`"
                                         r".*link='logit' expects probabilities") as info:
        explainer(x)
    assert "NaN or Inf" not in str(info.value)
    explainer(x[:1])  # the other instance is fine on its own


def test_nan_background_outputs_are_rejected_at_construction(rng):
    def log_model(t):
        return tf.math.log(t[:, 0]) + t[:, 1]

    bg = rng.uniform(0.5, 1.5, size=(5, 3)).astype(np.float32)
    bg[[1, 3], 0] = -1.0
    with pytest.raises(ValueError, match=r"`model` returned NaN or Inf on 2 of 5 `background` rows \(first: row 1\)"):
        tfexplain.KernelShap(log_model, bg)
    with pytest.raises(ValueError, match=r"`model` returned NaN or Inf on 1 of the first 2 `training_data` rows"):
        tfexplain.Lime(log_model, bg[1:], n_samples=20)


@pytest.mark.parametrize("method", ["KernelShap", "Lime"])
def test_nan_outputs_on_explained_rows_raise_at_call_time(method, rng):
    def log_model(t):
        return tf.math.log(t[:, 0]) + t[:, 1]

    bg = rng.uniform(0.5, 1.5, size=(4, 3)).astype(np.float32)
    x = np.array([[1.0, 1.0, 1.0], [1.0, 0.5, 0.5], [-1.0, 1.0, 1.0]], np.float32)
    if method == "KernelShap":
        explainer = tfexplain.KernelShap(log_model, bg, sampler="exact")
        rows = _exact_rows(x[2], bg)
    else:
        explainer = tfexplain.Lime(log_model, bg, n_samples=20)
        points = explainer.samples(x[2:], seed=5, row_offset=2)["points"][0]
        rows = np.concatenate([points, x[2:]])
    bad = int(np.sum(rows[:, 0] <= 0))
    with pytest.raises(ValueError, match=rf"`model` returned NaN or Inf on {bad} of {len(rows)} rows"
                                         r".*instance 2 of `x`"):
        explainer(x, seed=5)
    assert np.all(np.isfinite(explainer(x[:2], seed=5).values))
