"""Samplers (leverage, kernel, exact) and standard errors."""

import itertools
from math import comb

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import _random
from tfexplain.samplers import LeverageSampler, random_subsets, water_fill
from conftest import exact_shapley, mlp_numpy, mlp_tf, mlp_weights


def _draw(sampler, rows=3, seed=0):
    keys = _random.split_keys(_random.seed_to_tensor(tf.constant(seed, tf.int64)), sampler.n_keys)
    d = sampler.n_features
    return sampler(keys, tf.range(rows, dtype=tf.int64), tf.zeros([rows, d])).z.numpy()


def _selection_reference(u, sizes, eligible=None):
    """Knuth's Algorithm S in numpy: features from the last to the first, feature j taken when its key
    is below need / rest (rest: the eligible features not yet scanned, j included)."""
    out = np.zeros(u.shape, np.float32)
    eligible = np.ones(u.shape) if eligible is None else np.broadcast_to(eligible, u.shape)
    for idx in np.ndindex(u.shape[:-1]):
        need = int(sizes[idx] if np.ndim(sizes) else sizes)
        rest = int(eligible[idx].sum())
        for j in reversed(range(u.shape[-1])):
            if not eligible[idx + (j,)]:
                continue
            if need > 0 and u[idx + (j,)] < np.float32(need) / np.float32(rest):
                out[idx + (j,)], need = 1.0, need - 1
            rest -= 1
    return out


@pytest.mark.parametrize("jit", [False, True])
def test_random_subsets_are_selection_sampling(rng, jit):
    # known answers from the numpy rule, coarse keys (0 forces a feature in) and keys next to 1 included
    u = (rng.integers(0, 4, size=(5, 7, 9)) / 4.0).astype(np.float32)
    u[0, 0] = 1.0 - 2.0**-24
    sizes = rng.integers(0, 10, size=(5, 7)).astype(np.int32)
    dynamic = tf.function(lambda a, b: random_subsets(a, b), jit_compile=jit)
    got = dynamic(u, sizes).numpy()
    np.testing.assert_array_equal(got.sum(-1), sizes)
    np.testing.assert_array_equal(got, _selection_reference(u, sizes))
    for size in (0, 1, 4, 9):
        static = tf.function(lambda a: random_subsets(a, size), jit_compile=jit)
        np.testing.assert_array_equal(static(u).numpy(), _selection_reference(u, size))
    # only eligible features drawn, min(size, eligible) of them
    eligible = (rng.uniform(size=(5, 1, 9)) < 0.6).astype(np.float32)
    masked = tf.function(lambda a, b, e: random_subsets(a, b, eligible=e), jit_compile=jit)(u, sizes, eligible).numpy()
    np.testing.assert_array_equal(masked, _selection_reference(u, sizes, eligible))
    np.testing.assert_array_equal(masked.sum(-1), np.minimum(sizes, eligible.sum(-1)))


def test_random_subsets_are_uniform_over_subsets():
    # all C(6, 2) = 15 subsets equally likely: chi-square over 30,000 draws (df = 14, p ~ 1e-4 cut-off)
    u = tf.random.stateless_uniform([30000, 6], seed=[3, 4])
    sets = random_subsets(u, 2).numpy().astype(int)
    codes = sets @ (2 ** np.arange(6))
    counts = np.bincount(codes, minlength=64)[[sum(2**i for i in c) for c in itertools.combinations(range(6), 2)]]
    assert counts.sum() == 30000
    expected = 30000 / 15
    assert ((counts - expected) ** 2 / expected).sum() < 40.0


# (the kernel sampler bootstraps its draws instead: test_kernel_sampler.py)
@pytest.mark.parametrize("sampler", [LeverageSampler(9, 60)])
def test_bootstrap_replicates_with_folded_complements_equal_the_full_solves(rng, sampler):
    from tfexplain import solvers
    c, o, n_boot, d = 3, 2, 5, sampler.n_features
    keys = _random.split_keys(_random.seed_to_tensor(tf.constant(1, tf.int64)), sampler.n_keys + 1)
    rows = tf.range(c, dtype=tf.int64)
    z = sampler(keys[:-1], rows, tf.zeros([c, d])).z.numpy().astype(np.float64)
    y = rng.normal(size=(c, z.shape[1], o))
    v0, v1 = rng.normal(size=o), rng.normal(size=(c, o))
    plan = sampler.bootstrap
    mult = plan.multipliers(keys[-1], rows, n_boot).numpy()
    got = solvers.shapley_bootstrap_stderr(tf.constant(z, tf.float32), tf.constant(y, tf.float32), sampler.weights,
                                           tf.constant(v0, tf.float32), tf.constant(v1, tf.float32), mult,
                                           plan.pair_ids).numpy()
    # reference: every replicate's constrained WLS on all m rows (numpy, float64)
    size = z.sum(-1, keepdims=True)
    a = z - size / d
    want = np.zeros((c, d, o))
    for i in range(c):
        b = y[i] - v0 - size[i] / d * (v1[i] - v0)
        phis = []
        for r in range(n_boot):
            w = sampler.weights * mult[i, r, plan.pair_ids]
            x = np.linalg.solve(a[i].T @ (w[:, None] * a[i]) + 1.0 / d, a[i].T @ (w[:, None] * b))
            phis.append(x - x.mean(0) + (v1[i] - v0) / d)
        want[i] = np.std(phis, axis=0, ddof=1)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("d,m", [(6, 30), (7, 50), (10, 100), (16, 160), (30, 300)])
def test_leverage_sampler_structure(d, m):
    sampler = LeverageSampler(d, m)
    assert sampler.n_samples == m
    z = _draw(sampler)
    sizes = z.sum(-1)
    # pair p is samples 2p (the set) and 2p + 1 (its complement)
    np.testing.assert_array_equal(z[:, 1::2], 1 - z[:, 0::2])
    for cl in sampler.classes:
        block = z[:, 2 * cl.first_pair:2 * (cl.first_pair + cl.pairs):2]
        assert np.all(block.sum(-1) == cl.size)
        if cl.middle:
            assert np.all(block[..., -1] == 1)  # canonical member holds the last player
        if cl.kind != "random":  # distinct within a size
            for row in block:
                assert len({tuple(r) for r in row}) == cl.pairs
    # sizes get (near) equal counts, capped at C(d, s): leverage scores are uniform over sizes
    target = water_fill([comb(d, s) for s in range(1, d)], m)
    counts = np.array([np.sum(sizes[0] == s) for s in range(1, d)])
    assert np.all(np.abs(counts - target) <= 1.0 + 1e-9)


def test_leverage_weights_are_inclusion_corrected():
    d, m = 8, 60
    sampler = LeverageSampler(d, m)
    w = sampler.weights
    for cl in sampler.classes:
        s, k = cl.size, cl.pairs
        pi = (2 * k / comb(d, s)) if cl.middle else k / comb(d, s)
        mu = 1.0 / (comb(d, s) * s * (d - s))
        np.testing.assert_allclose(w[2 * cl.first_pair:2 * (cl.first_pair + k)], mu / pi, rtol=1e-6)


@pytest.mark.parametrize("sampler", ["leverage", "kernel"])
def test_linear_closed_form_any_sampler(rng, sampler):
    d = 9
    w = rng.normal(size=d)
    bg = rng.normal(size=(6, d))
    x = rng.normal(size=(5, d))
    f = lambda t: tf.linalg.matvec(t, tf.constant(w, tf.float32))  # noqa: E731
    exp = tfexplain.KernelShap(f, bg, n_samples=60, sampler=sampler)(x, seed=1)
    np.testing.assert_allclose(exp.values, w * (x - bg.mean(0)), atol=3e-5)


def test_exact_sampler_and_its_limit(rng):
    d = 7
    params = mlp_weights(d, outputs=1, seed=8)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(mlp_tf(params), bg, sampler="exact")
    assert explainer.exact and explainer.sampler.n_samples == 2**d - 2
    exp = explainer(x)
    for i in range(2):
        np.testing.assert_allclose(exp.values[i], exact_shapley(lambda r: mlp_numpy(params, r), x[i], bg, d)[:, 0],
                                   atol=2e-5)
    np.testing.assert_array_equal(exp.stderr, 0.0)
    with pytest.raises(ValueError, match="exact.*d = 21"):
        tfexplain.KernelShap(lambda t: tf.reduce_sum(t, 1), np.zeros((2, 21)), sampler="exact")
    with pytest.raises(ValueError, match="sampler"):
        tfexplain.KernelShap(lambda t: tf.reduce_sum(t, 1), np.zeros((2, 3)), sampler="magic")
    with pytest.raises(ValueError, match="n_bootstrap"):
        tfexplain.KernelShap(lambda t: tf.reduce_sum(t, 1), np.zeros((2, 3)), n_bootstrap=1)


@pytest.mark.parametrize("adjust", [False, True])
def test_standard_errors_are_calibrated_and_shrink(rng, adjust):
    d = 10
    params = mlp_weights(d, hidden=16, outputs=1, seed=21)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(60, d)).astype(np.float32)
    exact = tfexplain.KernelShap(mlp_tf(params), bg, sampler="exact")(x).values
    small = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=10 * d, adjust=adjust)(x, seed=3)
    large = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=25 * d, adjust=adjust)(x, seed=3)
    assert small.stderr.shape == small.values.shape and np.all(small.stderr > 0)
    assert np.mean(large.stderr) < 0.8 * np.mean(small.stderr)
    coverage = np.mean(np.abs(small.values - exact) <= 2 * small.stderr)
    assert 0.85 <= coverage <= 0.995, coverage
    # standardized errors have unit scale, and errors are larger where stderr says so (not a constant)
    err = np.abs(small.values - exact)
    assert 0.4 <= np.mean((err / small.stderr) ** 2) <= 2.0
    assert np.corrcoef(err.ravel(), small.stderr.ravel())[0, 1] > 0.1


def test_regression_adjustment_keeps_exactness_and_helps_on_interactions(rng):
    d = 9
    w = rng.normal(size=d)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(20, d)).astype(np.float32)
    # additive game: still exact (to float32) with the adjustment
    lin = tfexplain.KernelShap(lambda t: tf.linalg.matvec(t, tf.constant(w, tf.float32)), bg, n_samples=40,
                               adjust=True)(x)
    np.testing.assert_allclose(lin.values, w * (x - bg.mean(0)), atol=5e-5)
    # a game with order-3 interactions: lower error than the plain regression at the same budget
    params = mlp_weights(d, hidden=24, outputs=1, seed=5)
    exact = tfexplain.KernelShap(mlp_tf(params), bg, sampler="exact")(x).values
    err = {}
    for adjust in (False, True):
        est = [tfexplain.KernelShap(mlp_tf(params), bg, n_samples=10 * d, adjust=adjust)(x, seed=s).values
               for s in range(3)]
        err[adjust] = np.mean([np.sum((e - exact) ** 2) / np.sum(exact**2) for e in est])
    assert err[True] < 0.85 * err[False], err
    # "auto": on for the leverage sampler at small budgets only; shap's scheme stays shap's
    assert not tfexplain.KernelShap(mlp_tf(params), bg, n_samples=90).adjust     # off by default (#12: cost)
    assert tfexplain.KernelShap(mlp_tf(params), bg, n_samples=90, adjust="auto").adjust
    assert not tfexplain.KernelShap(mlp_tf(params), bg, n_samples=300, adjust="auto").adjust
    assert not tfexplain.KernelShap(mlp_tf(params), bg, n_samples=90, sampler="kernel", adjust="auto").adjust
    with pytest.raises(ValueError, match="adjust"):
        tfexplain.KernelShap(mlp_tf(params), bg, adjust="yes")
    with pytest.raises(ValueError, match="adjust.*tolerance"):
        tfexplain.KernelShap(mlp_tf(params), bg, adjust=True, tolerance=0.1)


def test_tolerance_loop_converges_and_reports_evaluations(rng):
    d = 8
    params = mlp_weights(d, hidden=12, outputs=1, seed=30)
    bg = rng.normal(size=(2, d)).astype(np.float32)
    x = rng.normal(size=(12, d)).astype(np.float32)
    exact = tfexplain.KernelShap(mlp_tf(params), bg, sampler="exact")(x).values
    explainer = tfexplain.KernelShap(mlp_tf(params), bg, tolerance=0.02, n_samples=40, max_samples=800)
    exp = explainer(x, seed=4)
    per_round = 40 * len(bg)
    rounds = (exp.n_evals - 1) // per_round
    assert np.all((exp.n_evals - 1) % per_round == 0) and np.all(rounds >= 2) and np.all(rounds <= 20)
    spread = exp.values.max(1) - exp.values.min(1)
    converged = rounds < 20
    assert converged.any()
    assert np.all(exp.stderr.max(1)[converged] <= 0.02 * spread[converged] + 1e-7)
    assert np.mean(np.abs(exp.values - exact) <= 2 * exp.stderr) >= 0.8
    # efficiency still exact, and an instance's result does not depend on its batch
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=2e-5)
    alone = explainer(x[3:5], seed=4, row_offset=3)
    np.testing.assert_allclose(alone.values, exp.values[3:5], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(alone.n_evals, exp.n_evals[3:5])
    assert explainer.tracing_count == 1
    # an unreachable tolerance stops at max_samples
    capped = tfexplain.KernelShap(mlp_tf(params), bg, tolerance=1e-6, n_samples=40, max_samples=120)(x[:2])
    np.testing.assert_array_equal(capped.n_evals, 3 * per_round + 1)


def test_tolerance_arguments_are_checked():
    f = lambda t: tf.reduce_sum(t, 1)  # noqa: E731
    bg = np.zeros((2, 6), np.float32)
    with pytest.raises(ValueError, match="tolerance"):
        tfexplain.KernelShap(f, bg, tolerance=0)
    with pytest.raises(ValueError, match="max_samples.*two rounds"):
        tfexplain.KernelShap(f, bg, tolerance=0.1, n_samples=20, max_samples=30)
    with pytest.raises(ValueError, match="max_samples.*tolerance"):
        tfexplain.KernelShap(f, bg, max_samples=100)
