"""sampler="kernel": shap's KernelExplainer scheme (distinct coalitions, repeat counts as weights) and its
bootstrap over the draws."""

import numpy as np
import tensorflow as tf

from tfexplain import solvers


def _numpy_replicate_stderr(z, y, weights, v0, v1):
    """Every replicate's constrained WLS on all m rows (numpy, float64), then the std over replicates."""
    c, n_boot, d = weights.shape[0], weights.shape[1], z.shape[-1]
    size = z.sum(-1, keepdims=True)
    a = z - size / d
    want = np.zeros((c, d, y.shape[-1]))
    for i in range(c):
        b = y[i] - v0 - size[i] / d * (v1[i] - v0)
        phis = []
        for r in range(n_boot):
            w = weights[i, r].astype(np.float64)
            x = np.linalg.solve(a[i].T @ (w[:, None] * a[i]) + 1.0 / d, a[i].T @ (w[:, None] * b))
            phis.append(x - x.mean(0) + (v1[i] - v0) / d)
        want[i] = np.std(phis, axis=0, ddof=1)
    return want


def _weighted_stderr(z, y, weights, v0, v1):
    f32 = lambda t: tf.constant(t, tf.float32)  # noqa: E731
    return solvers.shapley_bootstrap_stderr_weighted(f32(z), f32(y), weights, f32(v0), f32(v1)).numpy()


def test_weighted_bootstrap_equals_numpy_full_solves(rng):
    c, m, d, o, n_boot = 3, 40, 7, 2, 5
    z = (rng.random((c, m, d)) < 0.5).astype(np.float64)
    y = rng.normal(size=(c, m, o))
    v0, v1 = rng.normal(size=o), rng.normal(size=(c, o))
    weights = rng.random((c, n_boot, m)) * (rng.random((c, n_boot, m)) < 0.8)   # some rows left out
    np.testing.assert_allclose(_weighted_stderr(z, y, weights, v0, v1), _numpy_replicate_stderr(z, y, weights, v0, v1),
                               rtol=1e-4, atol=1e-7)


def test_weighted_bootstrap_is_never_nan(rng):
    c, m, d, n_boot = 3, 30, 6, 8
    z = (rng.random((c, m, d)) < 0.5).astype(np.float32)
    y = rng.normal(size=(c, m, 1)).astype(np.float32)
    v0, v1 = np.zeros(1, np.float32), rng.normal(size=(c, 1)).astype(np.float32)
    weights = rng.random((c, n_boot, m))
    weights[1, :, 3:] = 0.0              # instance 1: three rows per replicate, a singular design
    se = _weighted_stderr(z, y, weights, v0, v1)
    assert np.all(np.isfinite(se)) and np.all(se[[0, 2]] > 0)
    y[0, 3] = np.nan                     # a non-finite value: instance 0's replicates are unusable
    se = _weighted_stderr(z, y, weights, v0, v1)
    assert not np.any(np.isnan(se)) and np.all(np.isinf(se[0])) and np.all(np.isfinite(se[1:]))
