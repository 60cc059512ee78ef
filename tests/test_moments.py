"""Lime's surrogate moments (float32 products, float64 merge) and its generator's pieces (#12)."""

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_tf, mlp_weights
from tfexplain import _random, solvers


def _reference(x, y, w):
    """Weighted centred moments in float64, one pass."""
    sw = w.sum(-1)
    xm = np.einsum("cm,cmp->cp", w, x) / sw[:, None]
    ym = np.einsum("cm,cmo->co", w, y) / sw[:, None]
    xc, yc = x - xm[:, None], y - ym[:, None]
    return dict(w=sw, x_mean=xm, y_mean=ym, gram=np.einsum("cm,cmi,cmj->cij", w, xc, xc),
                xy=np.einsum("cm,cmp,cmo->cop", w, xc, yc), yy=np.einsum("cm,cmo->co", w, yc * yc))


def test_merged_pieces_give_the_moments_of_all_samples(rng):
    """Pieces (one weighing nothing), the instance merged as a point, and weights ~1e-40 whose scale
    the float32 products never see: the float64 moments of all the samples at once."""
    c, m, p, o = 3, 600, 5, 2
    x = rng.normal(size=(c, m, p)).astype(np.float32)
    y = rng.normal(size=(c, m, o)).astype(np.float32)
    log_w = rng.uniform(-3.0, 0.0, size=(c, m)) - np.array([0.0, 92.0, 10.0])[:, None]   # row 1: ~1e-40
    x0, y0 = rng.normal(size=(c, p)), rng.normal(size=(c, o))
    log_w[:, 400:] = -np.inf                                              # the last piece weighs nothing
    total = solvers.point_moments(x0, y0, np.ones(c))
    for j in range(0, m, 200):
        part = solvers.weighted_moments(x[:, j:j + 200], y[:, j:j + 200], log_w=log_w[:, j:j + 200])
        total = solvers.merge_moments(total, part)
    w = np.concatenate([np.ones((c, 1)), np.exp(log_w)], 1)
    want = _reference(np.concatenate([x0[:, None], x], 1), np.concatenate([y0[:, None], y], 1), w)
    for k, v in want.items():
        np.testing.assert_allclose(getattr(total, k).numpy(), v, rtol=2e-5, atol=1e-12 * np.abs(v).max(), err_msg=k)
    assert 0 < total.gram.numpy()[1].max() < 1e-36      # the samples' true scale (~1e-40 weights), in float64


def test_cos_sin_polynomials_are_float32_accurate():
    u = np.concatenate([np.linspace(0, 1, 200001, dtype=np.float32)[:-1], np.float32([0.25, 0.5, 0.75])])
    cos, sin = (t.numpy().astype(np.float64) for t in _random.cos_sin_2pi(tf.constant(u)))
    np.testing.assert_allclose(cos, np.cos(2 * np.pi * u.astype(np.float64)), atol=2e-7)
    np.testing.assert_allclose(sin, np.sin(2 * np.pi * u.astype(np.float64)), atol=2e-7)


@pytest.mark.parametrize("n", [1, 3, 8, 9])
def test_compiled_generator_gives_each_row_its_own_stream(n):
    key, blocks = tf.constant([4, 7], tf.int32), tf.range(6)
    rows = tf.constant([5, 0, 9, 2, 11, 3, 8, 1, 4], tf.int64)
    got = _random.normal_blocks_compiled(key, rows[:n], blocks, 7)
    assert got.shape == (n, 6, 7)
    np.testing.assert_array_equal(got.numpy(), _random.normal_blocks_compiled(key, rows, blocks, 7).numpy()[:n])
    np.testing.assert_allclose(got.numpy(), _random.normal_blocks(key, rows[:n], blocks, 7).numpy(), atol=1e-5)


def test_lime_at_its_default_budget_gives_every_batching_the_same_numbers(rng):
    """5000 samples of d = 30 (float32 products over all of them): one call, row by row and in fives."""
    d = 30
    params = mlp_weights(d, hidden=8, outputs=2, seed=2)
    train = rng.normal(size=(200, d)).astype(np.float32)
    x = rng.normal(size=(13, d)).astype(np.float32)
    lime = tfexplain.Lime(mlp_tf(params), train, target=1)
    whole = lime(x, seed=0)
    for step in (1, 5):
        parts = [lime(x[i:i + step], seed=0, row_offset=i) for i in range(0, 13, step)]
        for field in ("values", "intercept", "score", "local_pred"):
            np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in parts]), getattr(whole, field))
