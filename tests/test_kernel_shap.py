import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import exact_shapley, mlp_numpy, mlp_tf, mlp_weights


def linear(w, b=0.25):
    w = tf.constant(np.asarray(w, np.float32))
    return lambda x: tf.linalg.matvec(x, w) + b


@pytest.mark.parametrize("n_samples", [None, 40])
def test_linear_model_closed_form(rng, n_samples):
    d = 7
    w = rng.normal(size=d)
    bg = rng.normal(size=(25, d))
    x = rng.normal(size=(6, d))
    exp = tfexplain.KernelShap(linear(w), bg, n_samples=n_samples)(x, seed=0)
    np.testing.assert_allclose(exp.values, w * (x - bg.mean(0)), atol=2e-5)
    np.testing.assert_allclose(exp.base_values, (bg @ w).mean() + 0.25, atol=1e-5)
    assert exp.values.shape == (6, d) and exp.base_values.shape == (6,)


def test_weighted_background_closed_form(rng):
    d = 4
    w = rng.normal(size=d)
    bg = rng.normal(size=(5, d))
    bw = np.array([1.0, 2.0, 3.0, 0.5, 0.5])
    x = rng.normal(size=(3, d))
    exp = tfexplain.KernelShap(linear(w), bg, background_weights=bw)(x)
    mean = (bw[:, None] * bg).sum(0) / bw.sum()
    np.testing.assert_allclose(exp.values, w * (x - mean), atol=2e-5)


def test_multi_output_shapes_and_targets(rng):
    d = 5
    params = mlp_weights(d, outputs=3)
    bg = rng.normal(size=(10, d)).astype(np.float32)
    x = rng.normal(size=(4, d)).astype(np.float32)
    full = tfexplain.KernelShap(mlp_tf(params), bg)(x)
    assert full.values.shape == (4, d, 3) and full.base_values.shape == (4, 3)
    one = tfexplain.KernelShap(mlp_tf(params), bg, target=2)(x)
    assert one.values.shape == (4, d)
    np.testing.assert_allclose(one.values, full.values[..., 2], atol=1e-5)
    two = tfexplain.KernelShap(mlp_tf(params), bg, target=[2, 0])(x)
    np.testing.assert_allclose(two.values, full.values[..., [2, 0]], atol=1e-5)


@pytest.mark.parametrize("d", [3, 6, 9])
def test_exact_enumeration_matches_shapley_formula(rng, d):
    params = mlp_weights(d, outputs=2, seed=d)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(3, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=2**d)
    assert explainer.exact and explainer.sampler.n_samples == 2**d - 2
    exp = explainer(x)
    for i in range(len(x)):
        ref = exact_shapley(lambda r: mlp_numpy(params, r), x[i], bg, d)
        np.testing.assert_allclose(exp.values[i], ref, atol=2e-5, rtol=1e-4)


def test_efficiency_holds_exactly_when_sampling(rng):
    d = 14
    params = mlp_weights(d, outputs=1, seed=3)
    bg = rng.normal(size=(8, d)).astype(np.float32)
    x = rng.normal(size=(5, d)).astype(np.float32)
    exp = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, n_samples=200)(x, seed=5)
    f_x = mlp_numpy(params, x)[:, 0]
    np.testing.assert_allclose(exp.model_output, f_x, atol=1e-5)
    np.testing.assert_allclose(exp.values.sum(1), f_x - exp.base_values, atol=2e-5)


def test_sampled_estimate_converges_to_exact(rng):
    d = 10
    params = mlp_weights(d, hidden=12, outputs=1, seed=7)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(4, d)).astype(np.float32)
    exact = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=2**d)(x).values
    err = {}
    for m in (60, 600):
        est = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=m)(x, seed=0).values
        err[m] = np.mean((est - exact) ** 2) / np.mean(exact**2)
    assert err[600] < 0.02
    assert err[600] < err[60]


@pytest.mark.parametrize("sampler", ["leverage", "kernel"])
def test_agrees_with_shap_kernel_explainer_at_full_enumeration(rng, sampler):
    shap = pytest.importorskip("shap")
    d = 5
    params = mlp_weights(d, outputs=1, seed=11)
    bg = rng.normal(size=(6, d)).astype(np.float32)
    x = rng.normal(size=(3, d)).astype(np.float32)
    ref = shap.KernelExplainer(lambda a: mlp_numpy(params, a)[:, 0], bg).shap_values(
        x, nsamples=2**d, l1_reg=False, silent=True)
    exp = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, sampler=sampler)(x)
    np.testing.assert_allclose(exp.values, ref, atol=5e-5)


def test_logit_link_matches_shap(rng):
    shap = pytest.importorskip("shap")
    d = 4
    params = mlp_weights(d, outputs=1, seed=2)

    def prob_np(a):
        return 1 / (1 + np.exp(-mlp_numpy(params, a)[:, 0]))

    f = mlp_tf(params, squeeze=True)
    bg = rng.normal(size=(5, d)).astype(np.float32)
    x = rng.normal(size=(3, d)).astype(np.float32)
    ref = shap.KernelExplainer(prob_np, bg, link="logit").shap_values(x, nsamples=2**d, l1_reg=False, silent=True)
    exp = tfexplain.KernelShap(lambda t: tf.sigmoid(f(t)), bg, link="logit")(x)
    np.testing.assert_allclose(exp.values, ref, atol=1e-4)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(exp.values.sum(1), logit(prob_np(x)) - logit(prob_np(bg).mean()), atol=1e-4)


@pytest.mark.parametrize("sampler", ["leverage", "kernel", "exact"])
@pytest.mark.parametrize("d", [1, 2])
def test_one_and_two_features(rng, sampler, d):
    bg = rng.normal(size=(5, d)).astype(np.float32)
    x = rng.normal(size=(3, d)).astype(np.float32)
    f = lambda t: tf.reduce_sum(t**2, 1) + tf.reduce_prod(t, 1)  # noqa: E731
    exp = tfexplain.KernelShap(f, bg, sampler=sampler)(x)
    ref = [exact_shapley(lambda r: (r**2).sum(1, keepdims=True) + r.prod(1, keepdims=True), x[i], bg, d)[:, 0]
           for i in range(3)]
    np.testing.assert_allclose(exp.values, ref, atol=1e-5)
    assert tfexplain.KernelShap(f, bg, sampler=sampler).exact
    tol = tfexplain.KernelShap(f, bg, sampler=sampler, tolerance=0.1)(x)
    np.testing.assert_allclose(tol.values, ref, atol=1e-5)
