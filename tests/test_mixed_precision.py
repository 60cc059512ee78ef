"""Models under a Keras mixed-precision policy (issue #14, item 7).

The model computes in float16 / bfloat16 and returns float16 / bfloat16 outputs (no float32 output
layer: the worst case). The adapter casts its outputs to float32; coalitions, masked rows, kernel
weights and the regressions stay float32 / float64. So

- exact Shapley values of the mixed model itself (enumeration in float64 over its own outputs) are
  reproduced to float32 accuracy: nothing in the estimator rounds to 16 bits;
- they are close to the float32 model's with the same weights, within the policy's rounding;
- efficiency holds to float32 accuracy against the mixed model's own outputs.
"""

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import exact_shapley, mlp_weights

keras = pytest.importorskip("keras")

D = 4
# unit roundoff of the policy's compute dtype: float16 has 11 significant bits, bfloat16 8
ROUNDOFF = {"mixed_float16": 2.0**-11, "mixed_bfloat16": 2.0**-8}


def _build(policy, weights):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(weights)
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    weights = list(mlp_weights(D, hidden=8, outputs=2, seed=3))
    return {"weights": weights, "bg": rng.normal(size=(6, D)).astype(np.float32),
            "train": rng.normal(size=(40, D)).astype(np.float32), "x": rng.normal(size=(3, D)).astype(np.float32),
            "float32": _build("float32", weights)}


@pytest.fixture(scope="module", params=sorted(ROUNDOFF))
def mixed(request, data):
    return request.param, _build(request.param, data["weights"])


def _exact_from_game(z, y, v_empty, v_full):
    """Exact Shapley values in float64 of the game the explainer evaluated: its coalitions ``z``
    [2^d - 2, d], their values ``y`` [2^d - 2, o], and the empty / full coalitions' values."""
    table = {(0,) * D: np.float64(v_empty), (1,) * D: np.float64(v_full)}
    table.update({tuple(int(b) for b in zz): yy.astype(np.float64) for zz, yy in zip(z, y)})
    assert len(table) == 2**D
    return exact_shapley(lambda rows: np.stack([table[tuple(int(b) for b in r)] for r in rows]),
                         np.ones(D), np.zeros((1, D)), D)


@pytest.fixture(scope="module")
def full(data):
    """The float32 model's explanations (same weights, same seeds)."""
    return {"shap": tfexplain.KernelShap(data["float32"], data["bg"], sampler="exact")(data["x"]),
            "lime": tfexplain.Lime(data["float32"], data["train"], n_samples=300, target=0)(data["x"], seed=5)}


def _tolerance(policy, full):
    return 16 * ROUNDOFF[policy] * (1.0 + np.abs(full["shap"].model_output).max())


def test_policy_really_computes_in_low_precision(data, mixed):
    policy, model = mixed
    out = model(data["x"])
    assert out.dtype == keras.mixed_precision.Policy(policy).compute_dtype
    # the outputs differ from float32's: the comparisons below are not vacuous
    gap = np.abs(np.asarray(tf.cast(out, tf.float32)) - data["float32"](data["x"]).numpy()).max()
    assert gap > 0


def test_kernel_shap_exact_is_float32_accurate_on_mixed_model(data, mixed, full):
    policy, model = mixed
    bg, x = data["bg"], data["x"]
    explainer = tfexplain.KernelShap(model, bg, sampler="exact")
    exp = explainer(x)
    assert exp.values.dtype == np.float32 and exp.model_output.dtype == np.float32
    # the game the explainer evaluated (the model's 16-bit outputs, cast to float32), solved exactly in
    # float64: the estimator adds only float32 rounding (a 16-bit solve would be ~1e-3 off)
    game = explainer.samples(x)
    ref = np.stack([_exact_from_game(game["z"][i], game["y"][i], exp.base_values[i], exp.model_output[i])
                    for i in range(len(x))])
    np.testing.assert_allclose(exp.values, ref, atol=2e-6 * (1.0 + np.abs(ref).max()))
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=1e-5)
    # and within the policy's rounding of the float32 model's values with the same weights
    np.testing.assert_allclose(exp.values, full["shap"].values, atol=_tolerance(policy, full))
    assert np.abs(exp.values - full["shap"].values).max() > 0  # the model did run in low precision


def test_lime_close_to_float32(data, mixed, full):
    policy, model = mixed
    # same seed, same perturbations: only the model's rounding differs
    exp = tfexplain.Lime(model, data["train"], n_samples=300, target=0)(data["x"], seed=5)
    assert exp.values.dtype == np.float32
    tol = _tolerance(policy, full)
    np.testing.assert_allclose(exp.values, full["lime"].values, atol=tol)
    np.testing.assert_allclose(exp.intercept, full["lime"].intercept, atol=tol)
    np.testing.assert_allclose(exp.score, full["lime"].score, atol=0.01)


def test_mixed_float16_under_xla(data, full):
    model = _build("mixed_float16", data["weights"])
    exp = tfexplain.KernelShap(model, data["bg"], sampler="exact", jit_compile=True)(data["x"])
    # XLA fuses the float16 ops its own way: within float16 rounding of float32, efficiency exact
    np.testing.assert_allclose(exp.values, full["shap"].values, atol=_tolerance("mixed_float16", full))
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=1e-5)


def test_mixed_model_exports(data, tmp_path):
    model = _build("mixed_float16", data["weights"])
    explainer = tfexplain.KernelShap(model, data["bg"], sampler="exact")
    path = tfexplain.export(explainer, str(tmp_path / "artifact"))
    out = tf.saved_model.load(path).signatures["explain"](x=tf.constant(data["x"]), seed=tf.constant(0, tf.int64))
    np.testing.assert_array_equal(out["values"].numpy(), explainer(data["x"]).values)
