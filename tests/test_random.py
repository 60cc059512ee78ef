import numpy as np
import tensorflow as tf

from tfexplain import _random


def _hex(c0, c1, k0, k1):
    y0, y1 = _random.threefry2x32(tf.constant([k0, k1], tf.int64), tf.constant(c0, tf.int64), tf.constant(c1, tf.int64))
    return int(y0), int(y1)


def test_threefry_known_answers():
    # Random123's known-answer vectors for threefry2x32_20 (counter, key -> output).
    assert _hex(0, 0, 0, 0) == (0x6B200159, 0x99BA4EFE)
    assert _hex(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) == (0x1CB996FC, 0xBB002BE7)
    assert _hex(0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344) == (0xC4923A9C, 0x483DF7A0)


def _key(seed):
    return _random.split_keys(_random.seed_to_tensor(tf.constant(seed, tf.int64)), 1)[0]


def test_row_streams_depend_on_seed_and_row_only():
    key = _key(3)
    all_rows = _random.uniform(key, tf.range(10, dtype=tf.int64), (4, 3)).numpy()
    some = _random.uniform(key, tf.constant([7, 2], tf.int64), (4, 3)).numpy()
    np.testing.assert_array_equal(some[0], all_rows[7])
    np.testing.assert_array_equal(some[1], all_rows[2])
    other = _random.uniform(_key(4), tf.range(10, dtype=tf.int64), (4, 3)).numpy()
    assert np.mean(other == all_rows) < 0.01


def test_uniform_and_normal_moments():
    u = _random.uniform(_key(0), tf.range(200, dtype=tf.int64), (500,)).numpy()
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    # rows are uncorrelated
    assert abs(np.corrcoef(u[0], u[1])[0, 1]) < 0.15
    z = _random.normal(_key(1), tf.range(200, dtype=tf.int64), (500,)).numpy()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert abs(np.mean(z > 1.96) - 0.025) < 0.004


def test_same_numbers_under_xla():
    rows = tf.range(5, dtype=tf.int64)
    eager = _random.uniform(_key(9), rows, (6,))
    compiled = tf.function(lambda r: _random.uniform(_key(9), r, (6,)), jit_compile=True)(rows)
    np.testing.assert_array_equal(eager.numpy(), compiled.numpy())


def test_extreme_words_stay_inside_the_open_interval():
    words = tf.constant([0, 2**32 - 1, 2**31], tf.int64)
    u = _random.bits_to_unit(words).numpy()
    assert u[0] > 0 and u[1] < 1 and abs(u[2] - 0.5) < 1e-6
    import tensorflow_probability as tfp
    assert np.all(np.isfinite(tfp.distributions.Normal(0.0, 1.0).quantile(u).numpy()))


def test_normals_are_box_muller_pairs_of_the_row_stream():
    """Known answers: block b of row r holds, for its ceil(d/2) counters' two words (u1, u2), the pairs
    sqrt(-2 log u1) (cos, sin)(2 pi u2) (float64 reference), the same numbers in any piece of blocks
    and batch of rows, and under XLA to float32 rounding."""
    key, rows, d = _key(5), tf.constant([3, 11, 0], tf.int64), 7
    blocks = tf.range(40)
    z = _random.normal_blocks(key, rows, blocks, d).numpy()
    u = _random.uniform_blocks(key, rows, blocks, 8).numpy().astype(np.float64)
    r, t = np.sqrt(-2 * np.log(u[..., :4])), 2 * np.pi * u[..., 4:]
    np.testing.assert_allclose(z, np.concatenate([r * np.cos(t), r * np.sin(t)], -1)[..., :d], rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(_random.normal_blocks(key, rows[1:2], tf.range(10, 20), d).numpy(), z[1:2, 10:20])
    compiled = tf.function(lambda r: _random.normal_blocks(key, r, blocks, d), jit_compile=True)(rows)
    np.testing.assert_allclose(compiled.numpy(), z, atol=1e-5)
    big = _random.normal_blocks(key, tf.range(50, dtype=tf.int64), tf.range(400), 10).numpy().ravel()
    assert abs(big.mean()) < 0.01 and abs(big.std() - 1) < 0.01 and abs(np.mean(big > 1.96) - 0.025) < 0.002
