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
