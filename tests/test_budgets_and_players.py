"""Budgets as asked, any number of features, memory bounded by batch_size, null players (issue #11)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_tf, mlp_weights


def _linear(d, seed=0):
    w = np.random.default_rng(seed).normal(size=d).astype(np.float32)
    return w, (lambda t: tf.linalg.matvec(t, tf.constant(w)))


@pytest.mark.parametrize("d", [67, 300, 1000])
def test_default_sampler_supports_many_features(rng, d):
    # binomials above int64 used to overflow the leverage plan for every d >= 67
    w, f = _linear(d)
    bg = rng.normal(size=(2, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(f, bg, n_bootstrap=0 if d == 1000 else 8)
    assert explainer.sampler.n_samples == 2 * d + 2048
    exp = explainer(x, seed=0)
    np.testing.assert_allclose(exp.values, w * (x - bg.mean(0)), atol=2e-4)  # paired sampling: linear is exact
    assert exp.n_evals[0] == (2 * d + 2048) * 2 + 1
    if exp.stderr is not None:
        assert np.all(np.isfinite(exp.stderr))


def test_tolerance_with_many_features(rng):
    d = 80
    w, f = _linear(d)
    bg = rng.normal(size=(1, d)).astype(np.float32)
    x = rng.normal(size=(2, d)).astype(np.float32)
    exp = tfexplain.KernelShap(f, bg, tolerance=0.05)(x)
    np.testing.assert_allclose(exp.values, w * (x - bg), atol=2e-4)


@pytest.mark.parametrize("d,n_samples", [(4, 5), (12, 13), (10, 101)])
def test_odd_budgets_are_rejected_with_the_nearest_valid_ones(rng, d, n_samples):
    bg = rng.normal(size=(3, d)).astype(np.float32)
    f = _linear(d)[1]
    with pytest.raises(ValueError, match=r"`n_samples` must be even.*use \d+") as err:
        tfexplain.KernelShap(f, bg, n_samples=n_samples)
    low, high = n_samples - 1, n_samples + 1
    assert (str(high) in str(err.value)) and (low < d + 1 or str(low) in str(err.value))


@pytest.mark.parametrize("d", [3, 4, 9])
def test_evaluations_are_what_was_asked(rng, d):
    bg = rng.normal(size=(3, d)).astype(np.float32)
    f = _linear(d)[1]
    full = 2**d - 2
    for m in sorted({d + 1 + (d + 1) % 2, 2 * d + 6, full - 2, full + 10}):
        if m < d + 1:
            continue
        explainer = tfexplain.KernelShap(f, bg, n_samples=m)
        ran = min(m, full)
        assert explainer.sampler.n_samples == ran
        exp = explainer(bg[:2], seed=1)
        assert np.all(exp.n_evals == ran * 3 + 1)
        z = explainer.samples(bg[:1], seed=1)["z"]
        assert z.shape[1] == ran and len({tuple(r) for r in z[0]}) == ran  # all distinct coalitions


@pytest.mark.parametrize("shared", [True, False])
def test_a_budget_beyond_one_piece_streams_with_the_same_values(rng, shared):
    d = 10
    params = mlp_weights(d, outputs=2, seed=5)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    x = rng.normal(size=(5, d)).astype(np.float32)
    whole = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=400, shared_samples=shared)
    pieces = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=400, batch_size=16, shared_samples=shared)
    assert whole.pieces_per_instance == 1 and pieces.pieces_per_instance > 5
    a, b = whole(x, seed=3), pieces(x, seed=3)
    np.testing.assert_allclose(b.values, a.values, rtol=1e-5, atol=1e-6)
    # the streamed bootstrap (Poisson multipliers) estimates the same spread
    assert np.all(np.isfinite(b.stderr)) and np.all(b.stderr > 0)
    ratio = b.stderr.mean() / a.stderr.mean()
    assert 0.6 < ratio < 1.6
    lime_whole = tfexplain.Lime(mlp_tf(params), bg, n_samples=300)
    lime_pieces = tfexplain.Lime(mlp_tf(params), bg, n_samples=300, batch_size=4)
    assert lime_pieces.pieces_per_instance > 5
    la, lb = lime_whole(x, seed=2), lime_pieces(x, seed=2)
    np.testing.assert_allclose(lb.values, la.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(lb.score, la.score, rtol=1e-4, atol=1e-6)


def test_streamed_pieces_compile_under_xla(rng):
    d = 6
    params = mlp_weights(d, outputs=1, seed=1)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(4, d)).astype(np.float32)
    plain = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=40, batch_size=8)(x)
    compiled = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=40, batch_size=8, jit_compile=True)(x)
    np.testing.assert_allclose(compiled.values, plain.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled.stderr, plain.stderr, rtol=1e-3, atol=1e-6)


_PEAK = textwrap.dedent("""
    import os, resource, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, tfexplain
    d, method, budget = 30, sys.argv[1], int(sys.argv[2])
    bg = np.zeros((1, d), np.float32)
    x = np.ones((1, d), np.float32)
    f = lambda t: tf.reduce_sum(t, 1)
    if method == "kernel-shap":
        e = tfexplain.KernelShap(f, bg, n_samples=budget, n_bootstrap=0, batch_size=4096)
    else:
        e = tfexplain.Lime(f, np.random.default_rng(0).normal(size=(20, d)), n_samples=budget, batch_size=4096)
    v = e(x, seed=1).values
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, float(np.abs(v).sum()))
""")


def _peak_mb(tmp_path, method, budget):
    script = tmp_path / "peak.py"
    script.write_text(_PEAK)
    out = subprocess.run([sys.executable, str(script), method, str(budget)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": "",
                                           "PYTHONPATH": os.path.dirname(os.path.dirname(tfexplain.__file__))})
    assert out.returncode == 0, out.stderr[-2000:]
    peak, total = out.stdout.split()
    return int(peak), float(total)


@pytest.mark.parametrize("method", ["kernel-shap", "lime"])
def test_batch_size_bounds_memory_whatever_the_budget(tmp_path, method):
    # a million samples per instance at batch_size=4096 used to peak at gigabytes (z, design, weights)
    small, _ = _peak_mb(tmp_path, method, 10_000)
    large, total = _peak_mb(tmp_path, method, 1_000_000)
    assert large - small < 100, f"peak RSS {small} MB at 10^4 samples, {large} MB at 10^6"
    if method == "kernel-shap":
        assert abs(total - 30.0) < 1e-3  # values sum to f(x) - f(bg) = 30


def test_features_equal_in_x_and_every_background_row_get_exactly_zero(rng):
    d = 6
    params = mlp_weights(d, outputs=1, seed=7)
    bg = rng.normal(size=(5, d)).astype(np.float32)
    bg[:, 2] = 0.5
    bg[:, 4] = -1.0
    x = rng.normal(size=(4, d)).astype(np.float32)
    x[:, 2] = 0.5          # null player in every row
    x[1, 4] = -1.0         # and in row 1 only
    f = mlp_tf(params, squeeze=True)
    exact = tfexplain.KernelShap(f, bg, sampler="exact")(x)
    for kw in [dict(n_samples=20), dict(n_samples=20, adjust=True), dict(n_samples=20, sampler="kernel"),
               dict(tolerance=0.05), dict(n_samples=200, batch_size=8)]:
        exp = tfexplain.KernelShap(f, bg, **kw)(x, seed=0)
        assert np.all(exp.values[:, 2] == 0.0), kw
        assert exp.values[1, 4] == 0.0, kw
        np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=1e-5)
        if exp.stderr is not None:
            assert np.all(exp.stderr[:, 2] == 0.0)
    assert np.all(exact.values[:, 2] == 0.0) and exact.values[1, 4] == 0.0
    # the other players' values are the game's over its own players
    from conftest import exact_shapley, mlp_numpy
    ref = exact_shapley(lambda r: mlp_numpy(params, r), x[1], bg, d)[:, 0]
    np.testing.assert_allclose(exact.values[1], ref, atol=1e-5)
    # a row equal to every background row: nothing to explain
    same = tfexplain.KernelShap(f, np.repeat(x[:1], 3, 0), n_samples=20)(x[:1])
    assert np.all(same.values == 0.0)


def test_samples_with_tolerance_are_the_first_rounds(rng):
    d = 5
    bg = rng.normal(size=(3, d)).astype(np.float32)
    f = _linear(d)[1]
    explainer = tfexplain.KernelShap(f, bg, tolerance=0.05, n_samples=12)
    s = explainer.samples(bg[:2], seed=4)
    assert s["z"].shape == (2, 12, d) and s["y"].shape == (2, 12, 1) and s["weights"].shape == (2, 12)
    assert not np.array_equal(s["z"], explainer.samples(bg[:2], seed=5)["z"])
