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


@pytest.mark.parametrize("shared,jit", [(True, False), (False, False), (True, True)])
def test_lime_at_its_default_budget_gives_every_batching_the_same_numbers(rng, shared, jit):
    """5000 samples of d = 30 (float32 products over all of them): one call, row by row and in fives."""
    d = 30
    params = mlp_weights(d, hidden=8, outputs=2, seed=2)
    train = rng.normal(size=(200, d)).astype(np.float32)
    x = rng.normal(size=(13, d)).astype(np.float32)
    lime = tfexplain.Lime(mlp_tf(params), train, target=1, shared_samples=shared, jit_compile=jit)
    assert lime.instances_per_chunk > 5
    whole = lime(x, seed=0)
    for step in (1, 5):
        parts = [lime(x[i:i + step], seed=0, row_offset=i) for i in range(0, 13, step)]
        for field in ("values", "intercept", "score", "local_pred"):
            np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in parts]), getattr(whole, field))


@pytest.mark.parametrize("width,shift", [(4.1, 0.0), (4.1, 3.0), (0.5, 3.0), (0.3, 2.0)])
def test_shared_moments_are_the_float64_moments_of_each_instance(rng, width, shift):
    """Samples shared by every instance, each weighing them by its own kernel: the float64 moments of
    the samples repeated per instance. Narrow kernels far from the samples' mean (the two last) put an
    instance's weight on a few samples, where the shared float32 sums would cancel: those instances
    are redone on their own and still match."""
    m, p, o, c = 3000, 12, 2, 4
    x = rng.normal(size=(m, p)).astype(np.float32)
    y = (0.3 * rng.normal(size=(m, o)) + 0.5).astype(np.float32)
    x0 = (rng.normal(size=(c, p)) + shift).astype(np.float32)
    log_w = (-0.5 / width**2 * ((x[None] - x0[:, None]) ** 2).sum(-1)).astype(np.float32)
    log_w[:, 0] = -np.inf                                           # a sample that weighs nothing
    got, redone = solvers.shared_moments(x, y, log_w=log_w, with_redone=True)
    # the wide kernel's instances keep the shared sums; the narrowest's cancel, all redone
    assert not redone.numpy().any() if width > 4 else redone.numpy().any()
    if width < 0.4:
        assert redone.numpy().all()
    w = np.exp(log_w.astype(np.float64))
    want = _reference(np.broadcast_to(x, (c, m, p)).astype(np.float64),
                      np.broadcast_to(y, (c, m, o)).astype(np.float64), w)
    for k, v in want.items():   # each instance to 2e-5 of its own largest entry (scales differ by 1e100)
        err = np.abs(getattr(got, k).numpy() - v).reshape(c, -1).max(1)
        assert np.all(err <= 2e-5 * np.abs(v).reshape(c, -1).max(1)), (k, err)


def test_shared_moments_weigh_samples_like_weighted_moments(rng):
    """Same samples for every instance: the shared product gives weighted_moments' numbers (and the
    exponential kernel's shared log weights its per-instance ones)."""
    m, p, o, c = 500, 5, 3, 3
    x = rng.normal(size=(m, p)).astype(np.float32)
    y = rng.normal(size=(m, o)).astype(np.float32)
    x0 = rng.normal(size=(c, p)).astype(np.float32)
    kernel = tfexplain.kernels.exponential(0.75 * np.sqrt(p))
    log_w = kernel.log_shared(tf.constant(x), tf.constant(x0))
    np.testing.assert_allclose(log_w.numpy(), kernel.log(tfexplain.samplers.Sample(x[None], None, None), x0).numpy(),
                               rtol=1e-5, atol=1e-5)
    a = solvers.shared_moments(x, y, log_w=log_w)
    b = solvers.weighted_moments(np.broadcast_to(x, (c, m, p)), np.broadcast_to(y, (c, m, o)), log_w=log_w)
    for t, u, name in zip(a, b, a._fields):
        np.testing.assert_allclose(t.numpy(), u.numpy(), rtol=1e-5, atol=1e-6 * np.abs(u.numpy()).max(), err_msg=name)


def test_a_redone_row_leaves_its_neighbours_numbers_alone(rng):
    """A narrow kernel and one row far from the data: its shared sums cancel and it is redone on its
    own; the rows sharing its chunk get the numbers they get without it, bit for bit."""
    d = 6
    params = mlp_weights(d, hidden=8, outputs=2, seed=2)
    train = rng.normal(size=(200, d)).astype(np.float32)
    x = rng.normal(size=(5, d)).astype(np.float32)
    far = x.copy()
    far[0] += 2.0
    lime = tfexplain.Lime(mlp_tf(params), train, target=1, n_samples=2000, kernel_width=0.3)
    # row 0 is redone (its shared sums cancel), the others are not
    s = lime.samples(far, seed=0)
    z, y = s["z"][0, 1:], s["y"][0, 1:].reshape(2000 - 1, -1)
    origin = ((far - train.mean(0)) / train.std(0)).astype(np.float32)
    _, redone = solvers.shared_moments(z, y, log_w=lime.kernel.log_shared(tf.constant(z), tf.constant(origin)),
                                       with_redone=True)
    np.testing.assert_array_equal(redone.numpy(), [True, False, False, False, False])
    seed = tf.constant(0, tf.int64)
    got = lime.explain_fn(tf.constant(far), seed, tf.range(5, dtype=tf.int64))
    alone = lime.explain_fn(tf.constant(x[1:]), seed, tf.range(1, 5, dtype=tf.int64))
    for field in ("values", "intercept", "score"):
        np.testing.assert_array_equal(got[field].numpy()[1:], alone[field].numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_ridge_on_selected_features_in_their_own_space_equals_the_masked_ridge(rng, jit):
    # lime's final fit on k of p features: the masked p x p system and the k x k one give the same
    # coefficients and R^2; and the all-features ridge that ranks them solves every output at once
    c, m, p, o, k = 3, 200, 9, 2, 4
    x, y = rng.normal(size=(c, m, p)), rng.normal(size=(c, m, o))
    y[..., 0] += x[..., 2] * 2.0
    mom = solvers.weighted_moments(tf.constant(x, tf.float32), tf.constant(y, tf.float32),
                                   log_w=tf.constant(rng.normal(size=(c, m)), tf.float32))
    idx = np.stack([np.stack([rng.permutation(p)[:k] for _ in range(o)]) for _ in range(c)]).astype(np.int32)
    mask = tf.reduce_sum(tf.one_hot(idx, p, dtype=tf.float64), -2)
    want_coef, want_score = solvers.masked_ridge(mom, mask[:, :, None], 1.0)
    with solvers.compiled_solves(jit):
        fit = tf.function(lambda: solvers.weighted_ridge(mom, tf.zeros([c, p]), mask, 1.0, k), jit_compile=jit)()
    np.testing.assert_allclose(fit.coef.numpy(), want_coef[:, :, 0].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fit.score.numpy(), want_score[:, :, 0].numpy(), rtol=1e-5, atol=1e-7)
    ranked = solvers.highest_weights(mom, tf.ones([c, p]), k, o)
    ones = tf.ones([c, o, 1, p], tf.float64)
    coef_all = solvers.masked_ridge(mom, ones, 0.01)[0][:, :, 0].numpy()
    top = np.argsort(-np.abs(coef_all), -1)[..., :k]
    np.testing.assert_array_equal(ranked.numpy(), np.eye(p)[top].sum(-2))
