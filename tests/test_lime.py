import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_numpy, mlp_tf, mlp_weights

sklearn_linear = pytest.importorskip("sklearn.linear_model")


@pytest.fixture
def setting(rng):
    d = 6
    params = mlp_weights(d, outputs=3, seed=5)
    train = rng.normal(size=(300, d)).astype(np.float32) * np.arange(1, d + 1) + np.arange(d)
    x = train[:4] + 0.3
    return params, train, x


def _fit_sklearn(z, y, w, alpha=1.0):
    ridge = sklearn_linear.Ridge(alpha=alpha, fit_intercept=True)
    ridge.fit(z, y, sample_weight=w)
    return ridge, ridge.score(z, y, sample_weight=w), ridge.predict(z[:1])[0]


def test_surrogate_matches_sklearn_ridge_on_same_samples(setting):
    params, train, x = setting
    lime = tfexplain.Lime(mlp_tf(params), train, n_samples=500, feature_selection="none", target=[0, 2])
    exp = lime(x, seed=3)
    s = lime.samples(x, seed=3)
    for i in range(len(x)):
        for o in range(2):
            ridge, score, local = _fit_sklearn(s["z"][i], s["y"][i, :, o], s["weights"][i])
            np.testing.assert_allclose(exp.values[i, :, o], ridge.coef_, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(exp.intercept[i, o], ridge.intercept_, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(exp.score[i, o], score, atol=1e-5)
            np.testing.assert_allclose(exp.local_pred[i, o], local, rtol=1e-4, atol=1e-5)


def test_samples_follow_lime_recipe(setting):
    params, train, x = setting
    lime = tfexplain.Lime(mlp_tf(params), train, n_samples=4000, target=1)
    s = lime.samples(x[:2], seed=0)
    mean, std = train.mean(0), train.std(0)
    # row 0 is the instance itself; the rest are N(mean, std) draws, z their standardized form
    np.testing.assert_allclose(s["points"][:, 0], x[:2], rtol=1e-6)
    np.testing.assert_allclose(s["z"], (s["points"] - mean) / std, rtol=1e-4, atol=1e-4)
    pts = s["points"][:, 1:].reshape(-1, train.shape[1])
    np.testing.assert_allclose(pts.mean(0), mean, atol=0.05 * std.max())
    np.testing.assert_allclose(pts.std(0), std, rtol=0.05)
    # lime's kernel: sqrt(exp(-d^2 / width^2)), width = 0.75 sqrt(d)
    dist = np.linalg.norm(s["z"] - s["z"][:, :1], axis=-1)
    width = 0.75 * np.sqrt(train.shape[1])
    np.testing.assert_allclose(s["weights"], np.sqrt(np.exp(-dist**2 / width**2)), rtol=1e-5)
    np.testing.assert_allclose(s["y"][..., 0], mlp_numpy(params, s["points"].reshape(-1, 6))[:, 1].reshape(2, -1),
                               rtol=1e-4, atol=1e-5)


def test_default_target_is_the_predicted_class(setting):
    params, train, x = setting
    lime = tfexplain.Lime(mlp_tf(params), train, n_samples=300)
    exp = lime(x)
    assert exp.values.shape == (4, 6)
    np.testing.assert_array_equal(exp.target, mlp_numpy(params, x).argmax(1))
    assert tfexplain.Lime(mlp_tf(params), train, n_samples=300, target=1).targets == [1]  # lime's labels=(1,)
    single = tfexplain.Lime(lambda t: mlp_tf(params)(t)[:, 0], train, n_samples=300)
    assert single.targets == [0]


@pytest.mark.parametrize("method,k", [("forward_selection", 3), ("highest_weights", 3), ("auto", 2)])
def test_feature_selection_matches_lime_base(setting, method, k):
    lime_base = pytest.importorskip("lime.lime_base")
    params, train, x = setting
    lime = tfexplain.Lime(mlp_tf(params), train, n_samples=400, num_features=k, feature_selection=method, target=1)
    exp = lime(x, seed=1)
    s = lime.samples(x, seed=1)
    base = lime_base.LimeBase(kernel_fn=lambda d: d)
    for i in range(len(x)):
        z, y, w = s["z"][i].astype(np.float64), s["y"][i, :, 0].astype(np.float64), s["weights"][i].astype(np.float64)
        chosen = base.feature_selection(z, y, w, k, method)
        assert set(np.flatnonzero(exp.values[i])) == set(chosen)
        ridge, score, _ = _fit_sklearn(z[:, chosen], y, w)
        np.testing.assert_allclose(exp.values[i, chosen], ridge.coef_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(exp.score[i], score, atol=1e-5)


def test_categorical_features_drawn_by_frequency(rng):
    d = 3
    train = np.stack([rng.normal(size=2000), rng.choice([0.0, 1.0, 5.0], p=[0.6, 0.3, 0.1], size=2000),
                      rng.normal(size=2000)], 1).astype(np.float32)
    f = lambda t: t[:, 0] + 2.0 * tf.cast(tf.equal(t[:, 1], 5.0), tf.float32)  # noqa: E731
    lime = tfexplain.Lime(f, train, categorical_features=[1], n_samples=5000)
    x = np.array([[0.0, 5.0, 0.0]], np.float32)
    s = lime.samples(x, seed=2)
    drawn = s["points"][0, 1:, 1]
    freqs = [np.mean(drawn == v) for v in (0.0, 1.0, 5.0)]
    np.testing.assert_allclose(freqs, np.bincount(np.searchsorted([0.0, 1.0, 5.0], train[:, 1])) / 2000, atol=0.02)
    np.testing.assert_array_equal(s["z"][0, :, 1], (s["points"][0, :, 1] == 5.0).astype(np.float32))
    exp = lime(x, seed=2)
    # the categorical column carries the +2 effect as a 0/1 indicator
    assert abs(exp.values[0, 1] - 2.0) < 0.1


def test_agrees_with_lime_package_in_expectation(rng):
    lime_tabular = pytest.importorskip("lime.lime_tabular")
    d = 4
    w = np.array([1.0, -2.0, 0.5, 3.0])
    train = rng.normal(size=(500, d)) * np.array([1.0, 2.0, 0.5, 1.5])

    def predict(a):
        return np.tanh(a @ w / 4)

    # in regression mode lime keeps the explanation under label 1 (label 0 holds its negation)
    ref = lime_tabular.LimeTabularExplainer(train, mode="regression", discretize_continuous=False, random_state=0)
    x = train[3]
    theirs = dict(ref.explain_instance(x, predict, num_features=d, num_samples=5000).local_exp[1])
    theirs = np.array([theirs[j] for j in range(d)])
    ours = tfexplain.Lime(lambda t: tf.tanh(tf.linalg.matvec(t, tf.constant(w, tf.float32)) / 4), train)(x, seed=0)
    np.testing.assert_allclose(ours.values[0], theirs, atol=0.03)


def test_contributions_split_the_local_prediction(setting):
    params, train, x = setting
    exp = tfexplain.Lime(mlp_tf(params), train, n_samples=300, num_features=3)(x, seed=0)
    np.testing.assert_allclose(exp.contributions.sum(1), exp.local_pred - exp.intercept, rtol=1e-4, atol=1e-5)
    z0 = (x - train.mean(0)) / train.std(0)
    np.testing.assert_allclose(exp.contributions, exp.values * z0, rtol=1e-4, atol=1e-6)
    assert exp.attributions is exp.contributions


def test_far_instance_has_tiny_weights_and_stays_finite_like_sklearn(setting):
    params, train, _ = setting
    x = (train.mean(0) + 12 * train.std(0))[None].astype(np.float32)
    lime = tfexplain.Lime(mlp_tf(params), train, n_samples=400, feature_selection="none", target=0)
    exp = lime(x, seed=0)
    s = lime.samples(x, seed=0)
    assert np.all(np.isfinite(exp.values)) and s["weights"][0, 1:].max() < 1e-30
    ridge, score, local = _fit_sklearn(s["z"][0].astype(np.float64), s["y"][0, :, 0].astype(np.float64),
                                       s["weights"][0].astype(np.float64))
    np.testing.assert_allclose(exp.values[0], ridge.coef_, atol=1e-6)
    np.testing.assert_allclose(exp.local_pred[0], local, rtol=1e-4, atol=1e-5)


def test_categorical_features_as_numpy_arrays_and_tuples(rng):
    # issue #11: np.array([1]) was silently ignored (falsy), np.array([0, 1]) raised "truth value ... ambiguous"
    d = 3
    train = np.stack([rng.choice([0.0, 1.0], size=400), rng.choice([0.0, 1.0, 5.0], size=400),
                      rng.normal(size=400)], 1).astype(np.float32)
    f = lambda t: t[:, 0] + 2.0 * t[:, 1]  # noqa: E731
    x = train[:2]
    want = tfexplain.Lime(f, train, categorical_features=[1], n_samples=200)
    for spec in (np.array([1]), (1,), np.array([1], np.int32), [np.int64(1)]):
        lime = tfexplain.Lime(f, train, categorical_features=spec, n_samples=200)
        np.testing.assert_array_equal(lime.sampler.cat_columns, [1])
        np.testing.assert_array_equal(lime.std, want.std)
        np.testing.assert_array_equal(lime.samples(x, seed=1)["points"], want.samples(x, seed=1)["points"])
    both = tfexplain.Lime(f, train, categorical_features=np.array([0, 1]), n_samples=200)
    np.testing.assert_array_equal(both.sampler.cat_columns, [0, 1])
    np.testing.assert_array_equal(both.mean[:2], 0.0)
    pts = both.samples(x, seed=1)["points"]
    assert set(np.unique(pts[:, :, 0])) <= {0.0, 1.0} and set(np.unique(pts[:, :, 1])) <= {0.0, 1.0, 5.0}
    for empty in (None, [], (), np.array([], np.int64)):
        assert len(tfexplain.Lime(f, train, categorical_features=empty, n_samples=200).sampler.cat_columns) == 0


@pytest.mark.parametrize("spec,error", [
    ([True], TypeError), (np.array([True, False]), TypeError), ([1.0], TypeError), (np.array([0.0, 1.0]), TypeError),
    (1, TypeError), ("1", TypeError), ([[0, 1]], TypeError), (np.array([[0, 1]]), ValueError),
    ([1, 1], ValueError), (np.array([0, 2, 0]), ValueError), ([3], ValueError), ([-1], ValueError)])
def test_categorical_features_are_checked(spec, error):
    train = np.zeros((10, 3), np.float32)
    with pytest.raises(error, match="categorical_features"):
        tfexplain.Lime(lambda t: tf.reduce_sum(t, 1), train, categorical_features=spec)


@pytest.mark.parametrize("name,value,error", [
    ("alpha", float("nan"), ValueError), ("alpha", float("inf"), ValueError), ("alpha", np.float32("nan"), ValueError),
    ("alpha", True, TypeError), ("alpha", -1.0, ValueError), ("alpha", "1", TypeError),
    ("kernel_width", True, TypeError), ("kernel_width", float("nan"), ValueError),
    ("kernel_width", float("inf"), ValueError), ("kernel_width", 0, ValueError), ("kernel_width", "1", TypeError)])
def test_alpha_and_kernel_width_are_checked(name, value, error):
    train = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    with pytest.raises(error, match=name):
        tfexplain.Lime(lambda t: tf.reduce_sum(t, 1), train, **{name: value})


def test_alpha_and_kernel_width_accept_numpy_numbers(rng):
    train = rng.normal(size=(50, 3)).astype(np.float32)
    lime = tfexplain.Lime(lambda t: tf.reduce_sum(t, 1), train, alpha=np.float32(0.5), kernel_width=np.int64(2))
    assert lime.alpha == 0.5 and isinstance(lime.alpha, float)
    assert lime.kernel_width == 2.0 and isinstance(lime.kernel_width, float)
    assert tfexplain.Lime(lambda t: tf.reduce_sum(t, 1), train, alpha=0).alpha == 0.0


def test_shared_samples_one_set_per_seed_per_row_streams_on_request(setting):
    """Default (lime's Gaussian tables): one set of perturbations per seed serves every row (they do
    not depend on the instance); row 0 is each instance itself. shared_samples=False: each row its
    own stream (seed, row id)."""
    params, train, x = setting
    shared = tfexplain.Lime(mlp_tf(params), train, n_samples=300)
    assert shared.shared_samples
    s = shared.samples(x, seed=4)
    np.testing.assert_array_equal(s["points"][:, 1:], np.broadcast_to(s["points"][:1, 1:], s["points"][:, 1:].shape))
    np.testing.assert_allclose(s["points"][:, 0], x, rtol=1e-6)
    assert not np.allclose(shared.samples(x, seed=5)["points"][0, 1:], s["points"][0, 1:])
    np.testing.assert_array_equal(shared.samples(x[2:], seed=4, row_offset=7)["points"], s["points"][2:])
    own = tfexplain.Lime(mlp_tf(params), train, n_samples=300, shared_samples=False).samples(x, seed=4)
    assert not np.allclose(own["points"][0, 1:], own["points"][1, 1:])


def test_shared_samples_with_categorical_columns_match_sklearn_ridge(rng):
    """A categorical column's representation depends on the instance (1{value == its value}): the
    shared points get each instance's own design, and the fit is sklearn's on the same samples."""
    d = 4
    params = mlp_weights(d, outputs=2, seed=3)
    train = rng.normal(size=(400, d)).astype(np.float32)
    train[:, 2] = rng.choice([0.0, 1.0, 2.0], size=400)
    x = train[:3].copy()
    lime = tfexplain.Lime(mlp_tf(params), train, categorical_features=[2], n_samples=400, feature_selection="none",
                          target=1)
    assert lime.shared_samples and lime.instances_per_chunk > 1
    exp, s = lime(x, seed=1), lime.samples(x, seed=1)
    assert len(set(s["z"][:, 1:, 2].sum(1))) > 1        # instances with other values: other designs
    for i in range(len(x)):
        ridge, score, local = _fit_sklearn(s["z"][i], s["y"][i].reshape(-1), s["weights"][i])
        np.testing.assert_allclose(exp.values[i], ridge.coef_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(exp.intercept[i], ridge.intercept_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(exp.score[i], score, atol=1e-5)


def test_shared_samples_are_checked(setting):
    params, train, x = setting
    with pytest.raises(TypeError, match="shared_samples"):
        tfexplain.Lime(mlp_tf(params), train, shared_samples="yes")
    with pytest.raises(ValueError, match="shared_samples"):
        tfexplain.Lime(mlp_tf(params), train, shared_samples=True, discretize_continuous=True)
    assert not tfexplain.Lime(mlp_tf(params), train, discretize_continuous=True).shared_samples


@pytest.mark.parametrize("categorical", [[], [2]])
def test_a_rows_nan_output_does_not_reach_the_rows_sharing_its_chunk(setting, categorical):
    """Shared samples: the chunk's first instance is evaluated in the shared piece (weighing 0); the
    model's NaN there must not reach the other rows (0 x NaN in their sums), with or without a
    categorical column (per-instance designs)."""
    params, train, x = setting
    train = train.copy()
    train[:, 2] = np.round(train[:, 2])
    base = mlp_tf(params)

    def model(t):
        return tf.where(t[:, :1] > 1e3, np.nan, base(t))

    lime = tfexplain.Lime(model, train, n_samples=200, categorical_features=categorical)
    x = x.astype(np.float32)
    x[:, 2] = train[:4, 2]
    bad = x.copy()
    bad[0, 0] = 1e4
    seed = tf.constant(0, tf.int64)
    out = lime.explain_fn(tf.constant(bad), seed, tf.range(4, dtype=tf.int64))
    alone = lime.explain_fn(tf.constant(x[1:]), seed, tf.range(1, 4, dtype=tf.int64))
    assert not np.isfinite(out["values"].numpy()[0]).all()
    np.testing.assert_array_equal(out["values"].numpy()[1:], alone["values"].numpy())
