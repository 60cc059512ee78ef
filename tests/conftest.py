import itertools
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


def mlp_weights(d, hidden=8, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(d, hidden)).astype(np.float32), rng.normal(size=hidden).astype(np.float32),
            rng.normal(size=(hidden, outputs)).astype(np.float32), rng.normal(size=outputs).astype(np.float32))


def mlp_numpy(params, x):
    w1, b1, w2, b2 = params
    return np.tanh(x @ w1 + b1) @ w2 + b2


def mlp_tf(params, squeeze=False):
    w1, b1, w2, b2 = (tf.constant(p) for p in params)

    def f(x):
        out = tf.matmul(tf.tanh(tf.matmul(x, w1) + b1), w2) + b2
        return out[:, 0] if squeeze else out

    return f


def exact_shapley(value_fn, x, background, d):
    """Shapley values by the permutation-weight formula over all 2^d coalitions (numpy reference).

    value_fn(inputs [rows, d]) -> [rows, o]; background [k, d]; interventional value
    v(S) = mean over background rows b of f(x_S, b_rest)."""
    def v(mask):
        rows = np.where(mask[None, :], x[None, :], background)
        return value_fn(rows).mean(0)

    masks = {}
    for bits in itertools.product([0, 1], repeat=d):
        masks[bits] = v(np.array(bits, bool))
    phi = np.zeros((d,) + np.shape(masks[(0,) * d]))
    for bits, val in masks.items():
        s = sum(bits)
        for j in range(d):
            if bits[j] == 0:
                with_j = list(bits)
                with_j[j] = 1
                weight = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
                phi[j] += weight * (masks[tuple(with_j)] - val)
    return phi


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
