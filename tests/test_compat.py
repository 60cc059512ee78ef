"""tfexplain.compat.lime / tfexplain.compat.shap: the tutorials' code with only the import changed,
against the real packages on a tiny Keras model trained on breast cancer."""
import html

import numpy as np
import pytest
import tensorflow as tf

import tfexplain.compat.lime as compat_lime
import tfexplain.compat.lime.lime_tabular  # noqa: F401
import tfexplain.compat.shap as compat_shap

keras = pytest.importorskip("keras")
real_lime_tabular = pytest.importorskip("lime.lime_tabular")
real_shap = pytest.importorskip("shap")
datasets = pytest.importorskip("sklearn.datasets")

FEATURES = [0, 1, 7, 20, 27]   # mean radius, mean texture, mean concave points, worst radius, worst concave points


@pytest.fixture(scope="module")
def trained():
    data = datasets.load_breast_cancer()
    X = data.data[:, FEATURES]
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    y = data.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((len(FEATURES),)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=3, batch_size=64, verbose=0)
    names = [data.feature_names[j] for j in FEATURES]
    return model, X, y, names


def test_lime_tutorial_code_runs_unchanged_and_agrees_in_expectation(trained):
    model, X, y, names = trained
    lime = compat_lime   # "import tfexplain.compat.lime as lime"
    ours, theirs = [], []
    x = X[5]
    explainer = lime.lime_tabular.LimeTabularExplainer(X, mode="classification", feature_names=names, random_state=0)
    ref = real_lime_tabular.LimeTabularExplainer(X, mode="classification", feature_names=names, random_state=0)
    for _ in range(20):   # each call draws new samples (one graph, traced once)
        exp = explainer.explain_instance(x, model.predict, num_features=5)
        rexp = ref.explain_instance(x, lambda a: model(a).numpy(), num_features=5)
        ours.append(dict(exp.as_map()[1]))
        theirs.append(dict(rexp.as_map()[1]))
        # the same readable conditions, in lime's format
        assert {n for n, _ in exp.as_list()} == {n for n, _ in rexp.as_list()}
    ours = np.array([[m[j] for j in range(5)] for m in ours])
    theirs = np.array([[m[j] for j in range(5)] for m in theirs])
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.01)
    assert np.abs(theirs.mean(0)).max() > 0.05
    # lime's Explanation surface
    assert exp.available_labels() == [1] and set(exp.intercept) == {1}
    np.testing.assert_allclose(exp.predict_proba, model(X[5:6]).numpy()[0], rtol=1e-5)
    assert exp.local_pred.shape == (1,) and 0 <= exp.score <= 1
    assert [j for j, _ in exp.as_map()[1]] == sorted(range(5), key=lambda j: -abs(dict(exp.as_map()[1])[j]))


def test_lime_explainer_is_cached_per_predict_fn(trained):
    model, X, _, names = trained
    explainer = compat_lime.lime_tabular.LimeTabularExplainer(X, feature_names=names, random_state=0)
    a = explainer.explain_instance(X[0], model.predict, num_features=3, num_samples=500)
    b = explainer.explain_instance(X[1], model.predict, num_features=3, num_samples=500)
    inner = explainer._explainer(model.predict, 3, 500)
    assert len(explainer._cache) == 1 and inner.tracing_count == 1
    assert len(a.as_list()) == len(b.as_list()) == 3
    # a fixed random_state gives the same sequence of explanations
    again = compat_lime.lime_tabular.LimeTabularExplainer(X, feature_names=names, random_state=0)
    assert again.explain_instance(X[0], model.predict, num_features=3, num_samples=500).as_list() == a.as_list()


def test_lime_top_labels_regression_and_html(trained, tmp_path):
    model, X, y, names = trained
    explainer = compat_lime.lime_tabular.LimeTabularExplainer(X, feature_names=names, class_names=["malignant", "benign"],
                                                             discretizer="decile", random_state=1)
    exp = explainer.explain_instance(X[0], model, top_labels=2, num_features=2, num_samples=500)
    proba = model(X[:1]).numpy()[0]
    assert exp.available_labels() == list(np.argsort(proba)[::-1])
    assert set(exp.local_exp) == {0, 1} and all(len(v) == 2 for v in exp.local_exp.values())
    exp.save_to_file(tmp_path / "exp.html")
    page = (tmp_path / "exp.html").read_text()
    assert "malignant" in page and html.escape(exp.as_list(0)[0][0]) in page
    regression = compat_lime.lime_tabular.LimeTabularExplainer(X, mode="regression", discretize_continuous=False,
                                                              random_state=0)
    f = tf.function(lambda a: model(a)[:, 1])
    r = regression.explain_instance(X[0], f, num_features=5, num_samples=500)
    assert [(j, -w) for j, w in r.local_exp[1]] == r.local_exp[0]
    assert {n for n, _ in r.as_list()} == {"0", "1", "2", "3", "4"}   # lime's default names
    assert abs(r.predicted_value - float(model(X[:1]).numpy()[0, 1])) < 1e-5
    with pytest.raises(NotImplementedError):
        compat_lime.lime_tabular.LimeTabularExplainer(X, sample_around_instance=True)


def test_shap_tutorial_code_equals_shap_at_full_enumeration(trained):
    model, X, _, _ = trained
    shap = compat_shap   # "import tfexplain.compat.shap as shap"
    background, rows = X[:10], X[100:104]
    explainer = shap.KernelExplainer(model.predict, background)
    values = explainer.shap_values(rows)
    ref = real_shap.KernelExplainer(lambda a: model(a).numpy(), background)
    expected = ref.shap_values(rows, silent=True)
    assert type(values) is type(expected) and values.shape == expected.shape == (4, 5, 2)
    np.testing.assert_allclose(values, expected, atol=1e-4)
    np.testing.assert_allclose(explainer.expected_value, ref.expected_value, atol=1e-5)
    assert explainer.shap_values(rows[0]).shape == ref.shap_values(rows[0], silent=True).shape == (5, 2)
    # one output per row: [n, d] and a float expected value, as shap 0.51; with link="logit"
    f = tf.function(lambda a: model(a)[:, 1])
    single = shap.KernelExplainer(f, background, link="logit")
    ref1 = real_shap.KernelExplainer(lambda a: model(a).numpy()[:, 1], background, link="logit")
    assert isinstance(single.expected_value, float)
    np.testing.assert_allclose(single.expected_value, ref1.expected_value, atol=1e-4)
    v1 = single.shap_values(rows, nsamples=100)
    assert v1.shape == (4, 5)
    np.testing.assert_allclose(v1, ref1.shap_values(rows, nsamples=100, silent=True), atol=1e-4)
    # shap.Explainer(model, masker)(X): exact (shap's ExactExplainer gives the Shapley values of the same
    # interventional game, i.e. KernelExplainer's at full enumeration), shaped like shap's Explanation
    exp = shap.Explainer(model, shap.maskers.Independent(background))(rows)
    assert exp.values.shape == (4, 5, 2) and exp.base_values.shape == (4, 2)
    np.testing.assert_allclose(exp.values, expected, atol=1e-4)
    np.testing.assert_allclose(exp.base_values, np.broadcast_to(ref.expected_value, (4, 2)), atol=1e-5)


def test_lime_pyplot_figure_has_limes_bars(trained):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, X, _, names = trained
    explainer = compat_lime.lime_tabular.LimeTabularExplainer(X, feature_names=names, class_names=["m", "b"],
                                                             random_state=0)
    exp = explainer.explain_instance(X[3], model, num_features=3, num_samples=300)
    fig = exp.as_pyplot_figure()
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [w for _, w in exp.as_list()][::-1]                 # lime's order: largest at the top
    assert [t.get_text() for t in ax.get_yticklabels()] == [n for n, _ in exp.as_list()][::-1]
    assert ax.get_title() == "Local explanation for class b"
    plt.close(fig)
