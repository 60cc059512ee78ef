import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import metrics


def linear(w, b=0.5):
    w = tf.constant(np.asarray(w, np.float32))
    return lambda x: tf.linalg.matvec(x, w) + b


def test_comprehensibility_by_hand():
    a = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, -3.0, 0.0, 0.0], [4.0, 3.0, -2.0, 1.0]])
    np.testing.assert_allclose(metrics.complexity(a), [np.log(2), 0.0, -sum(p * np.log(p) for p in [.4, .3, .2, .1])])
    # Gini of sorted |a|: sum((2i - d - 1) a_i) / (d sum a)
    np.testing.assert_allclose(metrics.sparseness(a), [0.5, 0.75, (-3 * 1 - 1 * 2 + 1 * 3 + 3 * 4) / (4 * 10)], atol=1e-6)
    np.testing.assert_array_equal(metrics.effective_features(a), [2, 1, 3])
    np.testing.assert_array_equal(metrics.effective_features(a, mass=1.0), [2, 1, 4])


def test_comprehensibility_matches_quantus():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 9))
    x = rng.normal(size=(5, 9))
    y = np.zeros(5, int)
    ref_c = quantus.Complexity(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=np.abs(a))
    ref_s = quantus.Sparseness(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=np.abs(a))
    np.testing.assert_allclose(metrics.complexity(a), ref_c, atol=1e-5)
    np.testing.assert_allclose(metrics.sparseness(a), ref_s, atol=1e-5)


def test_deletion_and_insertion_by_hand():
    w = np.array([3.0, -1.0, 2.0])
    x = np.array([[1.0, 1.0, 1.0]], np.float32)
    attr = np.array([[3.0, -1.0, 2.0]])   # order: feature 0, 2, 1
    dele = metrics.deletion(linear(w), x, attr)
    # f(x)=4.5; remove x0 -> 1.5; remove x2 -> -0.5; remove x1 -> 0.5
    np.testing.assert_allclose(dele.values[0], [4.5, 1.5, -0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(dele.fractions, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(dele.auc[0], np.trapezoid([4.5, 1.5, -0.5, 0.5], [0, 1 / 3, 2 / 3, 1]), atol=1e-6)
    ins = metrics.insertion(linear(w), x, attr, baseline=[0.0, 0.0, 0.0])
    np.testing.assert_allclose(ins.values[0], [0.5, 3.5, 5.5, 4.5], atol=1e-6)
    two = metrics.deletion(linear(w), x, attr, steps=1, baseline=np.ones((2, 3)) * [[1.0], [-1.0]])
    np.testing.assert_allclose(two.values[0], [4.5, 0.5], atol=1e-6)  # baseline rows +-1 average to 0


def test_exact_shap_on_linear_model_is_perfectly_faithful(rng):
    d = 6
    w = rng.normal(size=d)
    bg = rng.normal(size=(30, d)).astype(np.float32)
    x = rng.normal(size=(8, d)).astype(np.float32)
    exp = tfexplain.KernelShap(linear(w), bg, sampler="exact")(x)
    mean = bg.mean(0)
    corr = metrics.faithfulness_correlation(linear(w), x, exp, baseline=mean, subset_size=2, n_runs=50, seed=1)
    np.testing.assert_allclose(corr, 1.0, atol=1e-5)
    for scaling in (False, True):
        inf = metrics.infidelity(linear(w), x, exp, baseline=mean, n_samples=50, optimal_scaling=scaling)
        np.testing.assert_allclose(inf, 0.0, atol=1e-9)
    # with the background itself as the baseline (interventional, like KernelShap) too
    np.testing.assert_allclose(metrics.infidelity(linear(w), x, exp, baseline=bg), 0.0, atol=1e-9)


def test_faithfulness_and_infidelity_against_numpy_on_fixed_subsets(rng):
    d = 5
    w = rng.normal(size=d)

    def f_np(a):
        return np.tanh(a @ w)

    f = lambda t: tf.tanh(tf.linalg.matvec(t, tf.constant(w, tf.float32)))  # noqa: E731
    x = rng.normal(size=(3, d)).astype(np.float32)
    attr = rng.normal(size=(3, d))
    subsets = (rng.random((20, d)) < 0.4).astype(np.float32)
    base = rng.normal(size=d).astype(np.float32)
    drop = f_np(x)[:, None] - f_np(np.where(subsets[None] > 0, base, x[:, None, :]))
    summed = attr @ subsets.T
    ref = [np.corrcoef(summed[i], drop[i])[0, 1] for i in range(3)]
    got = metrics.faithfulness_correlation(f, x, attr, baseline=base, subsets=subsets)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(metrics.infidelity(f, x, attr, baseline=base, subsets=subsets),
                               ((summed - drop) ** 2).mean(1), rtol=1e-5)
    beta = (summed * drop).mean(1) / (summed**2).mean(1)
    np.testing.assert_allclose(metrics.infidelity(f, x, attr, baseline=base, subsets=subsets, optimal_scaling=True),
                               ((beta[:, None] * summed - drop) ** 2).mean(1), rtol=1e-5)
    with pytest.raises(ValueError, match="`subsets` must be 0/1"):       # a soft mask is not a subset
        metrics.faithfulness_correlation(f, x, attr, baseline=base, subsets=subsets * 0.5)


@pytest.fixture(scope="module")
def trained():
    keras = pytest.importorskip("keras")
    from sklearn.datasets import load_breast_cancer
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)[:, :12]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=15, verbose=0)
    return model, x


def test_shap_and_lime_beat_random_attributions(trained):
    model, x = trained
    bg = x[:40]
    rows = x[100:140]
    ks = tfexplain.KernelShap(model, bg, n_samples=300)
    lime = tfexplain.Lime(model, x, n_samples=1000, num_features=12)
    random = np.random.default_rng(0).normal(size=(len(rows), 12))
    base = bg.mean(0)
    scores = {}
    for name, attr in (("shap", ks(rows)), ("lime", lime(rows)), ("random", random)):
        scores[name] = (
            metrics.deletion(model, rows, attr, baseline=base).auc.mean(),
            metrics.insertion(model, rows, attr, baseline=base).auc.mean(),
            metrics.faithfulness_correlation(model, rows, attr, baseline=base, subset_size=3, n_runs=40).mean(),
        )
    for name in ("shap", "lime"):
        dele, ins, corr = scores[name]
        assert dele < scores["random"][0] - 0.05, scores
        assert ins > scores["random"][1] + 0.05, scores
        assert corr > scores["random"][2] + 0.2, scores


def test_max_sensitivity_linear_exact(rng):
    d = 4
    w = rng.normal(size=d)
    bg = rng.normal(size=(10, d)).astype(np.float32)
    x = rng.normal(size=(5, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(linear(w), bg, sampler="exact")
    np.testing.assert_allclose(metrics.max_sensitivity(explainer, x, radius=0.0), 0.0, atol=1e-6)
    sens = metrics.max_sensitivity(explainer, x, radius=0.1, n_samples=20)
    # phi(x') - phi(x) = w * (x' - x) with |x' - x| <= 0.1 per feature
    bound = 0.1 * np.linalg.norm(w) / np.linalg.norm(w * (x - bg.mean(0)), axis=1)
    assert np.all(sens > 0) and np.all(sens <= bound + 1e-5)
    assert np.all(sens >= 0.3 * bound)


def test_evaluate_report_for_lime_vs_shap(trained):
    model, x = trained
    explainers = {"KernelShap": tfexplain.KernelShap(model, x[:20], n_samples=100),
                  "Lime": tfexplain.Lime(model, x, n_samples=300)}
    report = metrics.evaluate(explainers, x[200:206], baseline=x[:20].mean(0), n_runs=20, sensitivity_samples=2)
    assert set(report) == {"KernelShap", "Lime"}
    assert report["Lime"]["surrogate_r2"].shape == (6,) and "surrogate_r2" not in report["KernelShap"]
    assert report["KernelShap"]["model_evals"][0] == 100 * 20 + 1
    text = str(report)
    assert "| KernelShap |" in text and "deletion_auc" in text and "ms_per_instance" in text


def test_metric_arguments_are_checked(rng):
    f = linear(np.ones(3))
    x = rng.normal(size=(2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="attributions"):
        metrics.deletion(f, x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="subset_size"):
        metrics.faithfulness_correlation(f, x, np.zeros((2, 3)), subset_size=4)
    with pytest.raises(ValueError, match="mass"):
        metrics.effective_features(np.ones((1, 3)), mass=0)
    with pytest.raises(ValueError, match="target"):
        metrics.deletion(lambda t: tf.stack([t[:, 0], t[:, 1]], 1), x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="surrogate"):
        metrics.surrogate_fit(tfexplain.KernelShap(f, x)(x))
    with pytest.raises(ValueError, match="steps"):
        metrics.deletion(f, x, np.zeros((2, 3)), steps=0)
    with pytest.raises(ValueError, match="radius"):
        metrics.max_sensitivity(tfexplain.KernelShap(f, x), x, radius=-0.1)
    with pytest.raises(ValueError, match="baseline.*4 features but `x` has 3"):
        metrics.deletion(f, x, np.zeros((2, 3)), baseline=np.zeros(4))
