"""Explanation.global_importance: mean |value| per feature (per output, per class) with its standard error,
against numpy and against the closed form of a linear model's exact KernelSHAP values."""

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_tf, mlp_weights


@pytest.fixture(scope="module")
def linear():
    """A linear model with 3 outputs, its exact KernelSHAP values on 30 rows (5 features: every coalition)."""
    rng = np.random.default_rng(8)
    W = rng.normal(size=(5, 3)).astype(np.float32)
    W[1, 2] = 0.0
    X = (rng.normal(size=(40, 5)) * [1, 2, 0.5, 1, 3]).astype(np.float32)
    bg, x = X[:10], X[10:]
    ks = tfexplain.KernelShap(lambda a: tf.matmul(a, tf.constant(W)), bg, sampler="exact",
                              output_names=["a", "b", "c"])
    return W, bg, x, ks(x)


def test_linear_model_closed_form(linear):
    """phi_ij = w_j (x_ij - E b_j), so mean_i |phi_ij| = |w_j| mean_i |x_ij - E b_j| per output."""
    W, bg, x, exp = linear
    g = exp.global_importance()
    dev = np.abs(x.astype(np.float64) - bg.astype(np.float64).mean(0))          # [n, d]
    closed = dev.mean(0)[:, None] * np.abs(W)                                  # [d, o]
    closed_se = dev.std(0, ddof=1)[:, None] / np.sqrt(len(x)) * np.abs(W)
    assert g.values.shape == (5, 3) and g.values is g.importance
    np.testing.assert_allclose(g.values, closed, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g.stderr, closed_se, rtol=1e-3, atol=1e-5)
    assert g.output_names == ["a", "b", "c"] and g.feature_names == exp.feature_names and g.n == 30
    assert g.values[1, 2] < 1e-5 and list(g.counts) == [30, 30, 30]
    one = exp[:, ["x0", "x3"]]                          # selecting features keeps their columns
    np.testing.assert_allclose(one.global_importance().values, closed[[0, 3]], rtol=1e-4, atol=1e-5)


def test_per_class_with_predicted_targets_against_numpy():
    """target="predicted": one column per predicted class, averaged over that class's rows only."""
    params = mlp_weights(4, hidden=6, outputs=3, seed=2)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    ks = tfexplain.KernelShap(mlp_tf(params), X[:6], target="predicted", n_samples=14,
                              output_names=["u", "v", "w"])
    exp = ks(X[6:40])
    a = np.abs(exp.values.astype(np.float64))
    g = exp.global_importance()
    classes = np.unique(exp.target)
    assert g.output_names == [["u", "v", "w"][k] for k in classes]
    for c, k in enumerate(classes):
        rows = a[exp.target == k]
        assert g.counts[c] == len(rows)
        np.testing.assert_allclose(g.values[:, c], rows.mean(0), rtol=1e-9)
        se = rows.std(0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else 0.0
        np.testing.assert_allclose(g.stderr[:, c], se, rtol=1e-9)
    pooled = exp.global_importance(by_class=False)
    np.testing.assert_allclose(pooled.values, a.mean(0), rtol=1e-9)
    assert pooled.output_names == ["predicted class"]
    with pytest.raises(ValueError, match="`by_class`"):
        exp.global_importance(by_class="yes")
    assert "rows)" in repr(g) or len(classes) == 1


def test_per_class_with_top_labels():
    """Lime's top_labels=2: each (row, slot) entry counts for the class it explains."""
    params = mlp_weights(3, hidden=5, outputs=3, seed=4)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    lime = tfexplain.Lime(mlp_tf(params), X, n_samples=60, top_labels=2)
    exp = lime(X[:12])
    g = exp.global_importance()
    a = np.abs(exp.values.astype(np.float64))                  # [n, d, 2]
    for c, name in enumerate(g.output_names):
        k = exp.output_names.index(name)
        entries = np.concatenate([a[exp.target[:, s] == k, :, s] for s in range(2)])
        assert g.counts[c] == len(entries)
        np.testing.assert_allclose(g.values[:, c], entries.mean(0), rtol=1e-9)
    assert g.counts.sum() == 24


def test_bar_plot_takes_a_global_importance(linear):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tfexplain import plots
    *_, exp = linear
    g = exp.global_importance()
    fig = plots.bar(g, output=2)
    widths = sorted((p.get_width() for p in fig.axes[0].patches if p.get_height() > 0), reverse=True)
    np.testing.assert_allclose(widths, np.sort(g.values[:, 2])[::-1], rtol=1e-6)
    plt.close(fig)
