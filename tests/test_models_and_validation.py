import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_weights


def _keras3_model(d):
    import keras
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])
    return model


def _tf_keras_model(d):
    tf_keras = pytest.importorskip("tf_keras")
    return tf_keras.Sequential([tf_keras.layers.Dense(4, activation="tanh", input_shape=(d,)), tf_keras.layers.Dense(2)])


class _Module(tf.Module):
    def __init__(self, d):
        self.w = tf.Variable(np.asarray(mlp_weights(d, hidden=2)[0], np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def __call__(self, x):
        return tf.matmul(x, self.w)


@pytest.mark.parametrize("kind", ["keras3", "tf_keras", "module", "concrete", "callable"])
def test_model_kinds_give_efficient_attributions(kind, rng):
    d = 3
    bg = rng.normal(size=(5, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    if kind == "keras3":
        model = _keras3_model(d)
    elif kind == "tf_keras":
        model = _tf_keras_model(d)
    elif kind == "module":
        model = _Module(d)
    elif kind == "concrete":
        module = _Module(d)  # keep the owner of the variables alive
        model = module.__call__.get_concrete_function()
    else:
        model = lambda t: tf.reduce_sum(t**2, axis=1)  # noqa: E731
    exp = tfexplain.KernelShap(model, bg)(x)
    out = exp.model_output
    np.testing.assert_allclose(exp.values.sum(1), out - exp.base_values, atol=1e-5)
    lime = tfexplain.Lime(model, bg, n_samples=50)(x)
    assert np.all(np.isfinite(lime.values))


@pytest.fixture
def ok(rng):
    bg = rng.normal(size=(5, 3)).astype(np.float32)
    return (lambda t: tf.reduce_sum(t, 1)), bg


@pytest.mark.parametrize("bad,err,match", [
    (np.zeros((2, 4)), ValueError, "x.*4 features"),
    (np.zeros((2, 3, 1)), ValueError, "x.*rank 2"),
    (np.array([["a", "b", "c"]]), TypeError, "x.*numeric"),
    (np.array([[0.0, np.nan, 1.0]]), ValueError, "x.*NaN"),
    (np.array([[0.0, np.inf, 1.0]]), ValueError, "x.*NaN or Inf"),
    (np.zeros((0, 3)), ValueError, "x.*empty"),
])
def test_bad_x_is_rejected_before_tracing(ok, bad, err, match):
    f, bg = ok
    for explainer in (tfexplain.KernelShap(f, bg), tfexplain.Lime(f, bg, n_samples=20)):
        with pytest.raises(err, match=match):
            explainer(bad)
        assert explainer.tracing_count == 0


def test_bad_construction_arguments(ok):
    f, bg = ok
    with pytest.raises(ValueError, match="background.*empty"):
        tfexplain.KernelShap(f, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="background.*NaN"):
        tfexplain.KernelShap(f, np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(TypeError, match="background.*numeric"):
        tfexplain.KernelShap(f, np.array([["x", "y", "z"]]))
    with pytest.raises(ValueError, match="n_samples.*d \\+ 1"):
        tfexplain.KernelShap(f, bg, n_samples=3)
    with pytest.raises(ValueError, match="n_samples"):
        tfexplain.Lime(f, bg, n_samples=2)
    with pytest.raises(ValueError, match="link"):
        tfexplain.KernelShap(f, bg, link="probit")
    with pytest.raises(ValueError, match="target"):
        tfexplain.KernelShap(f, bg, target=3)
    with pytest.raises(ValueError, match="model.*returned shape"):
        tfexplain.KernelShap(lambda t: tf.zeros([tf.shape(t)[0], 2, 2]), bg)
    with pytest.raises(ValueError, match="model.*returned shape"):
        tfexplain.KernelShap(lambda t: tf.zeros([1]), bg)
    with pytest.raises(TypeError, match="model"):
        tfexplain.KernelShap("not a model", bg)
    with pytest.raises(ValueError, match="batch_size"):
        tfexplain.KernelShap(f, bg, batch_size=0)
    with pytest.raises(ValueError, match="background_weights"):
        tfexplain.KernelShap(f, bg, background_weights=[1.0, -1.0, 0, 0, 0])
    with pytest.raises(ValueError, match="feature_names"):
        tfexplain.KernelShap(f, bg, feature_names=["a"])
    with pytest.raises(ValueError, match="categorical_features"):
        tfexplain.Lime(f, bg, categorical_features=[7])
    with pytest.raises(ValueError, match="feature_selection"):
        tfexplain.Lime(f, bg, feature_selection="lasso")
    with pytest.raises(ValueError, match="kernel_width"):
        tfexplain.Lime(f, bg, kernel_width=0)
    with pytest.raises(TypeError, match="seed"):
        tfexplain.KernelShap(f, bg)(bg, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        tfexplain.KernelShap(f, bg)(bg, seed=-1)
    with pytest.raises(ValueError, match="row_offset"):
        tfexplain.KernelShap(f, bg)(bg, row_offset=2**32)
    with pytest.raises(ValueError, match="row_offset"):
        tfexplain.KernelShap(f, bg)(bg, row_offset=-1)


def test_single_row_vector_and_explanation_helpers(ok):
    f, bg = ok
    exp = tfexplain.KernelShap(f, bg, feature_names=["a", "b", "c"])(bg[0])
    assert exp.values.shape == (1, 3)
    assert exp[0].values.shape == (1, 3)
    top = exp.top_features(0, k=2)
    assert len(top) == 2 and top[0][0] in "abc"
    assert "KernelShap" in exp.table()
