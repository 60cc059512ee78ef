"""KernelShap's shared coalitions: one draw per call, each row in its own feature order (issue #12)."""

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import solvers
from conftest import mlp_tf, mlp_weights


def _columns(z):
    """The multiset of a design's columns (each a tuple over the samples), as a sorted list."""
    return sorted(map(tuple, z.T.astype(int)))


def test_rows_share_one_draw_each_in_its_own_feature_order(rng):
    d = 12
    params = mlp_weights(d, outputs=1, seed=2)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(5, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=60)
    assert explainer.shared_samples
    z = explainer.samples(x, seed=3)["z"]
    later = explainer.samples(x[:2], seed=3, row_offset=40)["z"]
    for zi in list(z[1:]) + list(later):   # a relabelling of row 0's design: the same columns
        assert _columns(zi) == _columns(z[0])
    assert not np.array_equal(z[0], z[1]) and not np.array_equal(z[0], later[0])
    # the order is the row's: the same (seed, row id) gives the same design in any batch
    np.testing.assert_array_equal(explainer.samples(x[3:4], seed=3, row_offset=3)["z"][0], z[3])
    assert _columns(explainer.samples(x[:1], seed=4)["z"][0]) != _columns(z[0])   # another seed, another draw


def _own_regression(explainer, exp, s, mask=None):
    """Each row's values and linearized standard errors recomputed from its own samples alone (pure
    solver functions, the row's own coordinates): what a per-row draw of this design gives."""
    z, y, w = s["z"].astype(np.float64), s["y"].astype(np.float64), s["weights"].astype(np.float64)
    delta = tf.constant((exp.model_output - exp.base_values)[:, None], tf.float64)
    m = None if mask is None else tf.constant(mask, tf.float64)
    a, b = solvers.paired_shapley_design(z[:, 0::2], y[:, 0::2], y[:, 1::2], delta, m)
    w2 = tf.constant(2.0 * w[:, 0::2])
    aw = a * w2[..., None]
    gram = tf.matmul(aw, a, transpose_a=True) + solvers.constraint_term(m, z.shape[-1])
    rhs = tf.matmul(aw, b, transpose_a=True)
    strata, factors = explainer.sampler.strata()
    values, se = solvers.linearized_shapley(a, b, w2, gram, rhs, delta, strata, factors, m)
    return values.numpy()[..., 0], se.numpy()[..., 0]


@pytest.mark.parametrize("jit", [False, True])
def test_each_rows_values_and_errors_are_its_own_designs_regression(rng, jit):
    # the shared factorization, relabelled to each row's features, against the row's own regression
    d = 9
    params = mlp_weights(d, hidden=12, outputs=1, seed=6)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(6, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, n_samples=80, jit_compile=jit)
    exp, s = explainer(x, seed=2), explainer.samples(x, seed=2)
    values, se = _own_regression(explainer, exp, s)
    np.testing.assert_allclose(exp.values, values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(exp.stderr, se, rtol=1e-3, atol=1e-7)
    assert np.all(se > 0)


@pytest.mark.parametrize("kw", [{}, {"jit_compile": True}, {"stderr": "bootstrap"}, {"batch_size": 40},
                                {"tolerance": 0.05, "n_samples": 60}])
def test_rows_with_a_null_player_are_solved_on_their_own(rng, kw):
    # linearized errors (with and without XLA), the bootstrap, a budget streamed in pieces (Poisson
    # bootstrap), and rounds until a tolerance
    d = 8
    params = mlp_weights(d, hidden=10, outputs=1, seed=8)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    bg[:, 5] = 0.5
    x = rng.normal(size=(6, d)).astype(np.float32)
    x[[1, 4], 5] = 0.5                               # rows 1 and 4: feature 5 is a null player
    explainer = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, **{"n_samples": 60, **kw})
    assert explainer.shared_samples
    exp, s = explainer(x, seed=1), explainer.samples(x, seed=1)
    assert np.all(exp.values[[1, 4], 5] == 0.0) and np.all(exp.stderr[[1, 4], 5] == 0.0)
    assert np.all(np.isfinite(exp.stderr)) and np.all(exp.stderr[np.arange(6) != 1][:, :5] > 0)
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=2e-5)
    if "tolerance" in kw:
        return   # the rounds' own draws: samples() shows the first
    mask = np.ones((6, d))
    mask[[1, 4], 5] = 0.0
    values, se = _own_regression(explainer, exp, s, mask)
    np.testing.assert_allclose(exp.values, values, rtol=1e-4, atol=1e-6)
    if not kw or "jit_compile" in kw:   # the linearized errors (else the bootstrap's)
        np.testing.assert_allclose(exp.stderr, se, rtol=1e-3, atol=1e-7)
    # the other rows' numbers do not depend on whether a masked row shares their chunk
    plain = [0, 2, 3, 5]
    alone = explainer(x[plain], seed=1, row_ids=np.array(plain))
    np.testing.assert_allclose(alone.values, exp.values[plain], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(alone.stderr, exp.stderr[plain], rtol=1e-6, atol=1e-7)


def test_shared_and_per_row_draws_estimate_alike(rng):
    # the same estimator on another draw: errors against the exact values of the same size, and
    # calibrated standard errors, over many rows
    d = 10
    params = mlp_weights(d, hidden=12, outputs=1, seed=7)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(60, d)).astype(np.float32)
    exact = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, n_samples=2**d)(x).values
    out = {}
    for shared in (True, False):
        exp = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, n_samples=100, shared_samples=shared)(x, seed=0)
        err = np.abs(exp.values - exact)
        out[shared] = (np.sqrt(np.mean(err**2)), np.mean(err <= 2 * exp.stderr))
    assert 0.6 < out[True][0] / out[False][0] < 1.6, out
    assert out[True][1] > 0.85 and out[False][1] > 0.85, out


def test_shared_samples_argument():
    bg = np.zeros((2, 4), np.float32)
    model = lambda t: tf.reduce_sum(t, -1)  # noqa: E731
    assert tfexplain.KernelShap(model, bg, n_samples=10).shared_samples
    # other maskers (text padding, empty image segments: null players in most chunks): per-row unless asked
    image = tfexplain.maskers.Image((2, 2), fill=0.0, shape=(4, 4, 1))
    images = lambda t: tf.reduce_mean(t, [1, 2, 3])  # noqa: E731
    assert not tfexplain.KernelShap(images, image, n_samples=10).shared_samples
    assert tfexplain.KernelShap(images, image, n_samples=10, shared_samples=True).shared_samples
    assert not tfexplain.KernelShap(model, bg, sampler="kernel", n_samples=10).shared_samples
    assert not tfexplain.KernelShap(model, bg, n_samples=10, adjust=True).shared_samples
    assert not tfexplain.KernelShap(model, bg, n_samples=10, shared_samples=False).shared_samples
    with pytest.raises(ValueError, match="shared_samples"):
        tfexplain.KernelShap(model, bg, sampler="kernel", n_samples=10, shared_samples=True)
    with pytest.raises(TypeError, match="shared_samples"):
        tfexplain.KernelShap(model, bg, n_samples=10, shared_samples="yes")
