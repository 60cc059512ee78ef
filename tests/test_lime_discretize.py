"""lime's discretize_continuous=True path (quartile / decile / entropy bins) in the graph."""
import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain.samplers import entropy_thresholds, lime_bins

lime_tabular = pytest.importorskip("lime.lime_tabular")
lime_discretize = pytest.importorskip("lime.discretize")
sklearn_tree = pytest.importorskip("sklearn.tree")
scipy_stats = pytest.importorskip("scipy.stats")

W = np.array([1.0, -2.0, 0.5, 3.0])


@pytest.fixture
def data(rng):
    train = rng.normal(size=(500, 4)) * np.array([1.0, 2.0, 0.5, 1.5])
    labels = (train @ W + rng.normal(size=500) > 0).astype(int)
    return train, labels


def tf_model(t):
    return tf.tanh(tf.linalg.matvec(t, tf.constant(W, tf.float32)) / 4)


def test_entropy_thresholds_are_sklearns_tree(rng):
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    cases = [(X[:, j], y) for j in range(0, 30, 3)]
    cases += [(rng.integers(0, 6, 80).astype(float), rng.integers(0, 3, 80)) for _ in range(10)]  # ties, 3 classes
    for x, labels in cases:
        tree = sklearn_tree.DecisionTreeClassifier(criterion="entropy", max_depth=3, random_state=0)
        tree.fit(x[:, None], labels)
        expected = np.sort(tree.tree_.threshold[tree.tree_.children_left > -1])
        np.testing.assert_array_equal(entropy_thresholds(x, labels), expected)


@pytest.mark.parametrize("kind", ["quartile", "decile", "entropy"])
def test_bins_and_condition_names_are_limes(data, kind):
    train, labels = data
    cls = {"quartile": lime_discretize.QuartileDiscretizer, "decile": lime_discretize.DecileDiscretizer,
           "entropy": lime_discretize.EntropyDiscretizer}[kind]
    names = ["mean radius", "b", "c", "worst radius"]
    ref = cls(train, [], names, labels=labels, random_state=0)
    bins = lime_bins(train, range(4), kind, labels)
    lime = tfexplain.Lime(tf_model, train, discretize_continuous=True, discretizer=kind, training_labels=labels,
                          feature_names=names, n_samples=100)
    x = np.concatenate([train[:20], [np.percentile(train, 50, axis=0)]])   # a value on a boundary too
    conditions = lime(x, seed=0).feature_conditions
    for j in range(4):
        assert len(ref.names[j]) == len(bins[j]) + 1
        expected = [ref.names[j][int(b)] for b in ref.discretize(x)[:, j]]
        assert list(conditions[:, j]) == expected
    assert conditions.shape == (21, 4)


def test_entropy_needs_labels(data):
    train, _ = data
    with pytest.raises(ValueError, match="training_labels"):
        tfexplain.Lime(tf_model, train, discretize_continuous=True, discretizer="entropy")
    with pytest.raises(ValueError, match="discretizer"):
        tfexplain.Lime(tf_model, train, discretize_continuous=True, discretizer="octile")


def test_samples_are_limes_recipe(data):
    train, _ = data
    lime = tfexplain.Lime(tf_model, train, discretize_continuous=True, n_samples=6000)
    x = train[[3, 7]].astype(np.float32)
    s = lime.samples(x, seed=1)
    q = lime.bins
    np.testing.assert_allclose(s["points"][:, 0], x, rtol=1e-6)
    np.testing.assert_array_equal(s["z"][:, 0], 1.0)
    for j in range(4):
        qf = q[j].astype(np.float32)   # the model's input type
        bin_x = np.searchsorted(qf, x[:, j])
        bins = np.searchsorted(qf, s["points"][:, 1:, j])
        # interpretable row: same bin as the instance
        np.testing.assert_array_equal(s["z"][:, 1:, j], (bins == bin_x[:, None]).astype(np.float32))
        # bins drawn with their training frequencies (quartiles: 1/4 each)
        freq = np.bincount(bins.ravel(), minlength=len(q[j]) + 1) / bins.size
        np.testing.assert_allclose(freq, np.bincount(np.searchsorted(q[j], train[:, j])) / len(train), atol=0.015)
        # values in a bin: the bin's normal truncated to [bin min, bin max]
        col = train[:, j]
        lo, hi = np.concatenate([[col.min()], q[j]]), np.concatenate([q[j], [col.max()]])
        for b in range(len(q[j]) + 1):
            v = s["points"][:, 1:, j][bins == b].astype(np.float64)
            inside = col[np.searchsorted(q[j], col) == b]
            mu, sd = inside.mean(), inside.std() + 1e-11
            ref = scipy_stats.truncnorm((lo[b] - mu) / sd, (hi[b] - mu) / sd, loc=mu, scale=sd)
            assert lo[b] - 1e-5 <= v.min() and v.max() <= hi[b] + 1e-5
            assert abs(v.mean() - ref.mean()) < 4 * ref.std() / np.sqrt(len(v)) + 1e-4
            assert abs(v.std() / ref.std() - 1) < 0.1
    # the kernel is on the 0/1 rows
    dist2 = ((s["z"] - 1.0) ** 2).sum(-1)
    np.testing.assert_allclose(s["weights"], np.sqrt(np.exp(-dist2 / (0.75**2 * 4))), rtol=1e-6)


def test_pieces_give_the_numbers_of_the_whole(data):
    train, _ = data
    x = train[:5].astype(np.float32)
    whole = tfexplain.Lime(tf_model, train, discretize_continuous=True, n_samples=999)(x, seed=4)
    pieces = tfexplain.Lime(tf_model, train, discretize_continuous=True, n_samples=999, batch_size=64)
    assert pieces.pieces_per_instance > 1
    np.testing.assert_allclose(pieces(x, seed=4).values, whole.values, rtol=1e-5, atol=1e-6)
    one_by_one = np.concatenate([pieces(x[i:i + 1], seed=4, row_offset=i).values for i in range(5)])
    np.testing.assert_allclose(one_by_one, whole.values, rtol=1e-5, atol=1e-6)


def test_categorical_feature_next_to_bins(rng):
    train = np.stack([rng.normal(size=1000), rng.choice([0.0, 1.0, 5.0], p=[0.6, 0.3, 0.1], size=1000)], 1)
    f = lambda t: t[:, 0] + 2.0 * tf.cast(tf.equal(t[:, 1], 5.0), tf.float32)  # noqa: E731
    lime = tfexplain.Lime(f, train, categorical_features=[1], discretize_continuous=True, n_samples=4000,
                          feature_names=["a", "color"])
    x = np.array([[0.1, 5.0]], np.float32)
    s = lime.samples(x, seed=0)
    assert set(np.unique(s["points"][0, :, 1])) <= {0.0, 1.0, 5.0}
    np.testing.assert_array_equal(s["z"][0, :, 1], (s["points"][0, :, 1] == 5.0).astype(np.float32))
    exp = lime(x, seed=0)
    q = np.percentile(train[:, 0], [50, 75])
    assert q[0] < 0.1 <= q[1]
    assert list(exp.feature_conditions[0]) == ["%.2f < a <= %.2f" % (q[0], q[1]), "color=5"]
    assert abs(exp.values[0, 1] - 2.0) < 0.1


@pytest.mark.parametrize("kind", ["quartile", "entropy"])
def test_agrees_with_lime_package_in_expectation(data, kind):
    """Mean of lime's as_map() weights over 20 seeds vs ours over 20 seeds (same model, data)."""
    train, labels = data
    x = train[3]
    theirs = []
    for s in range(20):
        ref = lime_tabular.LimeTabularExplainer(train, mode="regression", discretizer=kind, training_labels=labels,
                                                random_state=s)
        local = dict(ref.explain_instance(x, lambda a: np.tanh(a @ W / 4), num_features=4).local_exp[1])
        theirs.append([local[j] for j in range(4)])
    lime = tfexplain.Lime(tf_model, train, discretize_continuous=True, discretizer=kind, training_labels=labels,
                          num_features=4)
    ours = np.stack([lime(x, seed=s).values[0] for s in range(20)])
    theirs = np.array(theirs)
    # standard error of each mean is about 0.004; the two means differ by sampling noise only
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.02)
    np.testing.assert_allclose(ours.std(0), theirs.std(0), atol=0.015)
    assert np.abs(theirs.mean(0)).max() > 0.5          # a real signal, not two zeros
