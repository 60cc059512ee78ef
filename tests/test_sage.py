"""SAGE (tfexplain.Sage) against exact SAGE by enumerating all 2^d coalitions (numpy reference), a closed
form for a linear model, and sage-importance when it is installed."""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_numpy, mlp_tf, mlp_weights


# ---- numpy references -------------------------------------------------------------------------------
def mse_np(y, p):
    return ((p - y) ** 2).sum(1)


def cross_entropy_np(y, p, eps=1e-12):
    """y: one-hot / probabilities [n, o] (o = 1: P(class 1)), p: probabilities [n, o]."""
    p = np.clip(p, eps, 1 - eps)
    if p.shape[1] == 1:
        return -(y[:, 0] * np.log(p[:, 0]) + (1 - y[:, 0]) * np.log1p(-p[:, 0]))
    return -(y * np.log(p)).sum(1)


def coalition_values(f, loss, x, y, bg):
    """v(S) = mean_i loss(f_empty, y_i) - mean_i loss(f_S(x_i), y_i) for every S (a dict of bit tuples),
    f_S(x) = mean_b f(x_S, b_notS): the marginal imputer, in float64."""
    n, d = x.shape
    empty = f(bg).mean(0)[None].repeat(n, 0)
    base = loss(y, empty).mean()
    values = {}
    for bits in itertools.product([0, 1], repeat=d):
        mask = np.array(bits, bool)
        rows = np.where(mask[None, None, :], x[:, None, :], bg[None]).reshape(-1, d)
        pred = f(rows).reshape(n, len(bg), -1).mean(1)
        values[bits] = base - loss(y, pred).mean()
    return values


def exact_sage(f, loss, x, y, bg):
    """Shapley values of the game of :func:`coalition_values` by the subset formula, and v(all)."""
    v = coalition_values(f, loss, np.asarray(x, np.float64), y, np.asarray(bg, np.float64))
    d = x.shape[1]
    phi = np.zeros(d)
    for bits, value in v.items():
        s = sum(bits)
        for j in range(d):
            if not bits[j]:
                with_j = list(bits)
                with_j[j] = 1
                phi[j] += math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) * (v[tuple(with_j)] - value)
    return phi, v[(1,) * d]


def softmax_np(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ---- settings ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regression():
    return make_regression()


@pytest.fixture(scope="module")
def classifier():
    return make_classifier()


def make_regression():
    """d = 5 MLP with one dead feature (x2), 40 data rows with noisy targets, 8 background rows."""
    params = list(mlp_weights(5, hidden=6, outputs=1, seed=3))
    params[0][2] = 0.0                                   # the model ignores x2
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 5)).astype(np.float32)
    Y = (mlp_numpy(params, X) + 0.3 * rng.normal(size=(48, 1))).astype(np.float32)
    bg, x, y = X[:8], X[8:], Y[8:]
    ref, total = exact_sage(lambda a: mlp_numpy(params, a), mse_np, x, y, bg)
    sage = tfexplain.Sage(mlp_tf(params), bg, loss="mse")
    return sage, x, y, ref, total


def make_classifier():
    """d = 4, 3 classes (softmax), labels drawn from the model's own probabilities (and some noise)."""
    params = mlp_weights(4, hidden=6, outputs=3, seed=7)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(46, 4)).astype(np.float32)
    probs = softmax_np(2.0 * mlp_numpy(params, X))
    labels = np.array([rng.choice(3, p=p / p.sum()) for p in probs])
    w1, b1, w2, b2 = (tf.constant(p) for p in params)

    def model(a):
        return tf.nn.softmax(2.0 * (tf.matmul(tf.tanh(tf.matmul(a, w1) + b1), w2) + b2))

    bg, x, y = X[:6], X[6:], labels[6:]
    f = lambda a: softmax_np(2.0 * mlp_numpy(params, a))  # noqa: E731
    ref, total = exact_sage(f, cross_entropy_np, x, np.eye(3)[y], bg)
    return tfexplain.Sage(model, bg, loss="cross_entropy"), x, y, ref, total, f


def within(values, stderr, ref, k):
    """|values - ref| <= k stderr, up to float32 rounding of the model (1e-6 of the largest value)."""
    return np.all(np.abs(values - ref) <= k * stderr + 1e-6 * np.abs(ref).max())


# ---- exactness ------------------------------------------------------------------------------------
def test_linear_mse_one_antithetic_pass_is_exact_and_matches_closed_form():
    """Squared error of a linear model under the marginal imputer is a game of order 2, which a
    permutation and its reverse value exactly: one pass gives the exact SAGE values, which have the
    closed form mean_i w_j (x_ij - mu_j) (2 y_i - f_empty - f(x_i))."""
    rng = np.random.default_rng(4)
    w = np.array([1.0, -2.0, 0.0, 0.5, 3.0, -1.0], np.float32)
    X = rng.normal(size=(40, 6)).astype(np.float32) + np.array([0, 1, 0, -2, 0, 0.5], np.float32)
    Y = (X @ w + 0.7 + rng.normal(size=40)).astype(np.float32)
    bg, x, y = X[:10], X[10:], Y[10:]
    mu = bg.astype(np.float64).mean(0)
    f_empty = mu @ w + 0.7
    fx = x.astype(np.float64) @ w + 0.7
    closed = (w * (x - mu) * (2 * y - f_empty - fx)[:, None]).mean(0)
    ref, total = exact_sage(lambda a: (a @ w.astype(np.float64) + 0.7)[:, None], mse_np, x, y[:, None], bg)
    np.testing.assert_allclose(ref, closed, rtol=1e-9, atol=1e-9)      # the reference itself
    wt = tf.constant(w[:, None])
    model = lambda a: tf.matmul(a, wt)[:, 0] + 0.7  # noqa: E731
    sage = tfexplain.Sage(model, bg, loss="mse", antithetic=True, feature_names=list("abcdef"))
    r = sage(x, y, seed=5, threshold=None)
    assert r.n == len(x) and not r.converged and r.feature_names == list("abcdef")
    scale = np.abs(ref).max()
    np.testing.assert_allclose(r.values, ref, atol=2e-6 * scale)
    assert abs(r.values[2]) < 1e-6 * scale                             # w_c = 0
    assert r.total == pytest.approx(total, rel=1e-6) and r.values.sum() == pytest.approx(r.total, rel=1e-9)
    assert r.n_evals == len(x) * (2 * 5 * 10 + 1)
    # single orders (the default) are unbiased but not exact on one pass: within their standard errors
    single = tfexplain.Sage(model, bg, loss="mse")(x, y, seed=5, threshold=None)
    assert single.n_evals == len(x) * (5 * 10 + 1) and single.values.sum() == pytest.approx(total, rel=1e-6)
    assert within(single.values, single.stderr, ref, 3.0) and np.abs(single.values - ref).max() > 1e-3 * scale


def test_mse_matches_enumeration_with_efficiency_and_coverage(regression):
    sage, x, y, ref, total = regression
    r = sage(x, y, seed=0, threshold=None, max_samples=8 * len(x))     # 8 whole passes
    assert r.n == 320 and r.n_evals == 320 * (4 * 8 + 1) and r.method == "SAGE" and r.loss == "mse"
    # whole passes weigh every row equally: v(all) is exact and the values sum to it
    assert r.total == pytest.approx(total, rel=1e-6)
    assert r.values.sum() == pytest.approx(r.total, rel=1e-9)
    assert r.base_loss - r.model_loss == pytest.approx(r.total, rel=1e-9)
    assert np.all(r.stderr[[0, 1, 3, 4]] > 0)
    assert within(r.values, r.stderr, ref, 2.0), (r.values, ref, r.stderr)
    # the ignored feature: every marginal contribution is 0
    assert abs(r.values[2]) < 1e-6 * np.abs(ref).max() and r.stderr[2] < 1e-6 * np.abs(ref).max()


def test_stderr_shrinks_with_samples_and_the_stop_is_sages(regression):
    sage, x, y, ref, _ = regression
    few = sage(x, y, seed=1, threshold=None, max_samples=77)           # not a multiple of anything
    many = sage(x, y, seed=1, threshold=None, max_samples=16 * 77)
    assert few.n == 77 and many.n == 16 * 77 and not few.converged
    ratio = many.stderr[[0, 1, 3, 4]] / few.stderr[[0, 1, 3, 4]]
    assert np.all((ratio > 0.12) & (ratio < 0.45)), ratio              # ~ 1/4 = 1/sqrt(16)
    assert within(few.values, few.stderr, ref, 3.0) and within(many.values, many.stderr, ref, 3.0)
    stop = sage(x, y, seed=2, threshold=0.05, max_samples=20000)
    assert stop.converged and stop.ratio < 0.05 and stop.n < 20000 and stop.threshold == 0.05
    se = stop.stderr
    assert np.max(se) < 0.05 * (stop.values.max() - stop.values.min())
    assert within(stop.values, stop.stderr, ref, 3.0)
    assert "SAGE values (mse loss reduction)" in repr(stop) and "converged" in repr(stop)


def test_cross_entropy_multiclass_matches_enumeration(classifier):
    sage, x, y, ref, total, _ = classifier
    r = sage(x, y, seed=0, threshold=None, max_samples=6 * len(x))
    assert r.total == pytest.approx(total, rel=1e-5) and r.values.sum() == pytest.approx(r.total, rel=1e-9)
    assert within(r.values, r.stderr, ref, 2.0), (r.values, ref, r.stderr)
    # labels as probabilities give the same numbers as class indices
    r2 = sage(x, np.eye(3, dtype=np.float32)[y], seed=0, threshold=None, max_samples=6 * len(x))
    np.testing.assert_allclose(r2.values, r.values, rtol=1e-12)


def test_binary_cross_entropy_and_callable_loss():
    """A sigmoid output with 0/1 labels; and a callable loss (absolute error) against the enumeration."""
    params = mlp_weights(3, hidden=5, outputs=1, seed=9)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(36, 3)).astype(np.float32)
    p = 1 / (1 + np.exp(-mlp_numpy(params, X)[:, 0]))
    labels = (rng.uniform(size=36) < p).astype(np.int64)
    bg, x, y = X[:6], X[6:], labels[6:]
    f = lambda a: 1 / (1 + np.exp(-mlp_numpy(params, a)))  # noqa: E731
    ref, total = exact_sage(f, cross_entropy_np, x, y[:, None].astype(np.float64), bg)
    model = mlp_tf(params, squeeze=True)
    sage = tfexplain.Sage(lambda a: tf.sigmoid(model(a)), bg, loss="cross_entropy")
    r = sage(x, y, threshold=None, max_samples=10 * len(x))
    assert r.total == pytest.approx(total, rel=1e-5)
    assert within(r.values, r.stderr, ref, 2.0), (r.values, ref, r.stderr)

    def l1(y_true, y_pred):
        return tf.reduce_sum(tf.abs(y_pred - y_true), axis=-1)

    ref1, total1 = exact_sage(lambda a: mlp_numpy(params, a), lambda t, q: np.abs(q - t).sum(1),
                              x, y[:, None].astype(np.float64), bg)
    s1 = tfexplain.Sage(mlp_tf(params), bg, loss=l1)
    r1 = s1(x, y.astype(np.float32), threshold=None, max_samples=10 * len(x))
    assert r1.loss == "l1" and r1.total == pytest.approx(total1, rel=1e-5)
    assert within(r1.values, r1.stderr, ref1, 2.0), (r1.values, ref1, r1.stderr)


# ---- streaming ------------------------------------------------------------------------------------
def test_streams_and_batchings_give_one_pass_values_without_retracing(regression):
    """A pass over an array, a tf.data.Dataset batched by 7 or 13 (or unbatched), and a list of batches:
    the same rows with the same streams -> the same values (up to rounding: a float32 matmul may round a
    row differently in batches of other sizes), one trace."""
    sage, x, y, _, _ = regression
    before = sage.tracing_count
    whole = sage(x, y, seed=3, threshold=None)
    ds = tf.data.Dataset.from_tensor_slices((x, y[:, 0]))
    by7 = sage(ds.batch(7), seed=3, threshold=None, max_samples=len(x))
    by13 = sage(ds.batch(13), seed=3, threshold=None, max_samples=len(x))
    rows = sage(ds, seed=3, threshold=None, max_samples=len(x))
    listed = sage([(x[i:i + 9], y[i:i + 9]) for i in range(0, len(x), 9)], seed=3, threshold=None,
                  max_samples=len(x))
    for r in (by7, by13, rows, listed):
        assert r.n == len(x)
        np.testing.assert_allclose(r.values, whole.values, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r.stderr, whole.stderr, rtol=1e-5, atol=1e-6)
    assert sage.tracing_count - before <= 1 and sage.tracing_count == 1
    # a one-shot iterator gives at most one pass; a dataset is re-iterated (new orders each pass)
    once = sage(iter([(x, y)]), seed=3, threshold=None, max_samples=3 * len(x))
    assert once.n == len(x)
    again = sage(ds.batch(16), seed=3, threshold=None, max_samples=3 * len(x))
    assert again.n == 3 * len(x) and not np.allclose(again.values, whole.values)


def test_instances_per_step_bound_memory(regression):
    sage, x, y, _, _ = regression
    small = tfexplain.Sage(sage.model, sage.background, loss="mse", batch_size=200)
    assert small.rows_per_sample == 4 * 8 + 1 and small.instances_per_step == 200 // 33
    r = small(x, y, seed=3, threshold=None)
    np.testing.assert_allclose(r.values, sage(x, y, seed=3, threshold=None).values, rtol=1e-9, atol=1e-9)
    assert small.tracing_count == 1


def test_row_streams_read_their_own_block():
    """A row's order depends on (seed, row id, visit) only: uniform_row_blocks gives each row the numbers
    uniform_blocks gives it for that block, whatever the other rows of the batch."""
    from tfexplain import _random
    from tfexplain.sage import permutation_ranks
    key = _random.split_keys(_random.seed_to_tensor(tf.constant(7, tf.int64)), 1)[0]
    rows = tf.constant([5, 9, 5, 2**31 + 3], tf.int64)
    visits = tf.constant([0, 3, 2, 1], tf.int64)
    got = _random.uniform_row_blocks(key, rows, visits, 5).numpy()
    for i in range(4):
        one = _random.uniform_blocks(key, rows[i:i + 1], visits[i:i + 1], 5).numpy()[0, 0]
        np.testing.assert_array_equal(got[i], one)
    ranks = permutation_ranks(key, rows, visits, 5).numpy()
    assert sorted(ranks[1]) == list(range(5)) and not np.array_equal(ranks[0], ranks[2])
    np.testing.assert_array_equal(permutation_ranks(key, rows[1:2], visits[1:2], 5).numpy()[0], ranks[1])


# ---- boundary ---------------------------------------------------------------------------------------
def test_boundary_errors(regression, classifier):
    sage, x, y, _, _ = regression
    bg = sage.background
    with pytest.raises(ValueError, match="`loss`"):
        tfexplain.Sage(sage.model, bg, loss="hinge")
    with pytest.raises(ValueError, match="cross_entropy.*probabilities"):
        tfexplain.Sage(sage.model, bg, loss="cross_entropy")
    with pytest.raises(ValueError, match="`y`"):
        sage(x, y[:-1])
    with pytest.raises(ValueError, match="`threshold`"):
        sage(x, y, threshold=1.5)
    with pytest.raises(TypeError, match="`y` is missing"):
        sage(x)
    with pytest.raises(ValueError, match="`x` has 4 features"):
        sage(x[:, :4], y)
    csage, cx, cy = classifier[:3]
    with pytest.raises(ValueError, match=r"class indices.*\[0, 3\)"):
        csage(cx, cy + 1)

    def summed(y_true, y_pred):
        return tf.reduce_mean(tf.square(y_pred - y_true))

    with pytest.raises(ValueError, match="one loss per row"):
        tfexplain.Sage(sage.model, bg, loss=summed)(x, y, max_samples=4)


def test_bar_plot_draws_signed_sage_values(regression):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tfexplain import plots
    sage, x, y, _, _ = regression
    r = sage(x, y, threshold=None)
    fig = plots.bar(r)
    ax = fig.axes[0]
    widths = sorted((p.get_width() for p in ax.patches if p.get_height() > 0), reverse=True)
    np.testing.assert_allclose(widths, np.sort(r.values)[::-1], rtol=1e-6)
    assert ax.get_xlabel().startswith("SAGE value")
    plt.close(fig)


# ---- sage-importance --------------------------------------------------------------------------------
def test_agrees_with_sage_importance(regression, classifier):
    sage_pkg = pytest.importorskip("sage")
    sage, x, y, ref, _ = regression

    def f_np(a):
        return sage.model(tf.constant(a, tf.float32)).numpy().astype(np.float64)

    est = sage_pkg.PermutationEstimator(sage_pkg.MarginalImputer(f_np, sage.background), "mse", random_state=0)
    theirs = est(x, y, batch_size=256, thresh=0.02, bar=False)
    ours = sage(x, y, seed=0, threshold=0.02)
    assert within(ours.values, np.sqrt(theirs.std ** 2 + ours.stderr ** 2), theirs.values, 3.0), (ours, theirs.values)
    assert within(theirs.values, theirs.std, ref, 3.0)

    csage, cx, cy, _, _, cf = classifier
    cest = sage_pkg.PermutationEstimator(sage_pkg.MarginalImputer(cf, csage.background), "cross entropy",
                                         random_state=0)
    ctheirs = cest(cx, cy, batch_size=256, thresh=0.02, bar=False)
    cours = csage(cx, cy, seed=0, threshold=0.02)
    assert within(cours.values, np.sqrt(ctheirs.std ** 2 + cours.stderr ** 2), ctheirs.values, 3.0), (cours, ctheirs.values)
