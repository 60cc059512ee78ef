"""KernelShap's default standard errors by linearization (solvers.linearized_stderr, stderr="auto"):
they agree with a 400-replicate stratified bootstrap on the same samples, cover exact Shapley values
(enumeration) at the bootstrap's rate, give null players exactly 0, and are what the default runs."""

import numpy as np
import pytest
import tensorflow as tf

import tfexplain

D = 10
RNG = np.random.default_rng(0)
W1, W2 = RNG.normal(size=(D, 16)), RNG.normal(size=(16, 2))
BG = RNG.normal(size=(20, D)).astype(np.float32)
X = RNG.normal(size=(8, D)).astype(np.float32)


@tf.function(input_signature=[tf.TensorSpec([None, D], tf.float32)])
def MODEL(x):
    return tf.nn.softmax(tf.tanh(x @ tf.constant(W1, tf.float32)) @ tf.constant(W2, tf.float32))


@pytest.fixture(scope="module")
def exact():
    return tfexplain.KernelShap(MODEL, BG, sampler="exact", target=1)(X).values


def test_agrees_with_a_long_bootstrap_on_the_same_samples():
    lin = tfexplain.KernelShap(MODEL, BG, target=1, n_samples=300, adjust=False)
    boot = tfexplain.KernelShap(MODEL, BG, target=1, n_samples=300, adjust=False, stderr="bootstrap",
                                n_bootstrap=400)
    el, eb = lin(X, seed=0), boot(X, seed=0)
    np.testing.assert_allclose(el.values, eb.values, rtol=1e-6, atol=1e-7)   # same samples, same estimate
    ratio = el.stderr / eb.stderr
    assert 0.95 < np.median(ratio) < 1.07, np.median(ratio)
    assert 0.85 < np.percentile(ratio, 5) and np.percentile(ratio, 95) < 1.2


@pytest.mark.parametrize("m", [60, 1000])
def test_covers_exact_values_like_the_bootstrap(exact, m):
    """Each of 8 instances explained 25 times (each copy in its own feature order of the shared draw):
    |estimate - exact| <= 2 se for 88-99% of the attributions at a tight budget (6 d) and a large one;
    an se half as large (a wrong variance) would cover about 68%."""
    copies = 25
    x = np.repeat(X, copies, 0)
    exp = tfexplain.KernelShap(MODEL, BG, target=1, n_samples=m, adjust=False)(x, seed=3)
    err = np.abs(exp.values - np.repeat(exact, copies, 0))
    assert 0.88 <= np.mean(err <= 2 * exp.stderr) <= 0.99
    assert np.mean(err <= exp.stderr) < 0.85                     # and not vacuously wide


def test_is_the_default_and_null_players_get_zero():
    explainer = tfexplain.KernelShap(MODEL, BG, target=1)
    assert explainer.stderr_method == "auto"
    x = X.copy()
    x[:, 3] = BG[0, 3]
    bg = BG.copy()
    bg[:, 3] = BG[0, 3]                                           # feature 3 equals x in every background row
    exp = tfexplain.KernelShap(MODEL, bg, target=1, n_samples=300, adjust=False)(x)
    assert np.all(exp.stderr[:, 3] == 0.0) and np.all(exp.values[:, 3] == 0.0)
    assert np.all(exp.stderr[:, [0, 1, 2, 4]] > 0)
    with pytest.raises(ValueError, match="stderr"):
        tfexplain.KernelShap(MODEL, BG, stderr="sandwich")


def test_stratified_variance_matches_the_centred_sum_over_units():
    # numpy reference: units u_p = t_p e_p^T, strata in any order, one of them enumerated (f = 0), one
    # of a single unit
    from tfexplain.solvers import _stratified_variance
    rng = np.random.default_rng(5)
    c, P, d, o = 3, 40, 6, 2
    t, e = rng.normal(size=(c, P, d)), rng.normal(size=(c, P, o)) + 3.0    # e not centred
    strata = rng.permutation(np.r_[np.zeros(12), np.ones(15), np.full(12, 2), [3]].astype(int))
    factors = np.array([0.7, 1.3, 0.0, 0.9])
    want = np.zeros((c, d, o))
    for h, f in enumerate(factors):
        units = t[:, strata == h, :, None] * e[:, strata == h, None, :]
        want += f * ((units - units.mean(1, keepdims=True)) ** 2).sum(1)
    got = _stratified_variance(tf.constant(t), tf.constant(e), strata, factors).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_rank_check_from_the_factor_agrees_with_factoring_again():
    from tfexplain import solvers
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 30, 8)) * rng.uniform(0.01, 100, size=(1, 1, 8))   # badly scaled columns
    a[1, :, 3] = a[1, :, 5] * 2.0                                              # rank-deficient
    a[2, :, :2] = 0.0                                                          # zero columns
    grams = tf.constant(np.einsum("cpi,cpj->cij", a, a))
    chol, _ = solvers._factor_inverse(grams)
    want = solvers._full_rank(grams, 1e-8).numpy()
    got = solvers._full_rank_from_factor(grams, chol, 1e-8).numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, [True, False, False, True])
