"""Explanation API (selection, conversions, global importance), DataFrame inputs, targets by name /
predicted class / top labels, background summarizers, progress bar, quiet import."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import background
from conftest import mlp_numpy, mlp_tf, mlp_weights

pd = pytest.importorskip("pandas")

NAMES = ["age", "bmi", "bp", "s1"]


@pytest.fixture(scope="module")
def setup():
    params = mlp_weights(4, outputs=3, seed=7)
    data = np.random.default_rng(3).normal(size=(40, 4)).astype(np.float32)
    return params, data


@pytest.fixture(scope="module")
def shap_exp(setup):
    params, data = setup
    ks = tfexplain.KernelShap(mlp_tf(params), data[:6], target=1, n_samples=10, feature_names=NAMES,
                              output_names=["a", "b", "c"])
    return ks(data[10:16], seed=0)


def test_select_rows_and_features_consistently(shap_exp):
    exp = shap_exp
    one = exp[0]
    assert one.values.shape == (1, 4) and one.base_values.shape == (1,) and one.stderr.shape == (1, 4)
    np.testing.assert_array_equal(exp[-1].values, exp.values[-1:])
    np.testing.assert_array_equal(exp[:3].data, exp.data[:3])
    bmi = exp[:, "bmi"]
    assert bmi.feature_names == ["bmi"] and bmi.values.shape == (6, 1)
    np.testing.assert_array_equal(bmi.values[:, 0], exp.values[:, 1])
    np.testing.assert_array_equal(bmi.data[:, 0], exp.data[:, 1])
    np.testing.assert_array_equal(bmi.stderr[:, 0], exp.stderr[:, 1])
    np.testing.assert_array_equal(bmi.model_output, exp.model_output)   # per-row fields are untouched
    two = exp[1:4, ["s1", "age"]]
    assert two.feature_names == ["s1", "age"]
    np.testing.assert_array_equal(two.values, exp.values[1:4][:, [3, 0]])
    np.testing.assert_array_equal(two.data, exp.data[1:4][:, [3, 0]])
    np.testing.assert_array_equal(exp[:, 2].values, exp.values[:, 2:3])
    np.testing.assert_array_equal(exp[np.array([True, False] * 3)].values, exp.values[::2])
    assert exp[0, ["bp"]].top_features(0, k=1)[0][0] == "bp"
    with pytest.raises(KeyError, match="nope"):
        exp[:, "nope"]
    with pytest.raises(IndexError):
        exp[6]


def test_to_dict_json_pandas_and_back(shap_exp):
    exp = shap_exp
    d = json.loads(exp.to_json())
    assert d["feature_names"] == NAMES and d["method"] == "KernelShap"
    np.testing.assert_allclose(np.array(d["values"]), exp.values, rtol=1e-6)
    np.testing.assert_allclose(np.array(d["stderr"]), exp.stderr, rtol=1e-6)
    back = tfexplain.Explanation.from_dict(d)
    np.testing.assert_allclose(back.values, exp.values, rtol=1e-6)
    assert back.table() == exp.table()
    long = exp.to_pandas()
    assert list(long.columns) == ["row", "feature", "value", "data", "stderr"] and len(long) == 6 * 4
    row = long[(long.row == 2) & (long.feature == "bp")].iloc[0]
    assert row.value == pytest.approx(exp.values[2, 2]) and row.data == pytest.approx(exp.data[2, 2])
    wide = exp.to_pandas("wide")
    assert list(wide.columns) == NAMES
    np.testing.assert_array_equal(wide.to_numpy(), exp.values)


def test_multi_output_pandas_and_global_importance(setup):
    params, data = setup
    exp = tfexplain.KernelShap(mlp_tf(params), data[:6], n_samples=14, output_names=["a", "b", "c"])(data[:8])
    wide = exp.to_pandas("wide")
    assert wide.columns.nlevels == 2 and wide[("c", "x3")].tolist() == pytest.approx(exp.values[:, 3, 2].tolist())
    long = exp.to_pandas()
    assert len(long) == 8 * 4 * 3 and set(long.output) == {"a", "b", "c"}
    g = exp.global_importance()
    a = np.abs(exp.values.astype(np.float64))
    np.testing.assert_allclose(g.importance, a.mean(0), rtol=1e-6)
    np.testing.assert_allclose(g.stderr, a.std(0, ddof=1) / np.sqrt(8), rtol=1e-6)
    assert g.importance.shape == (4, 3) and g.output_names == ["a", "b", "c"]
    order = g.order(2)
    assert list(g.to_dict()["c"]) == [f"x{j}" for j in order]
    text = repr(g)
    lines = [ln for ln in text.splitlines() if ln.startswith("    ")][8:12]    # output "c"'s block
    assert [ln.split()[0] for ln in lines] == [f"x{j}" for j in order]
    frame = g.to_pandas()
    assert frame.index.tolist() == [f"x{j}" for j in g.order(0)]


def test_to_shap(shap_exp):
    shap = pytest.importorskip("shap")
    s = shap_exp.to_shap()
    assert isinstance(s, shap.Explanation)
    np.testing.assert_array_equal(s.values, shap_exp.values)
    np.testing.assert_array_equal(s.base_values, shap_exp.base_values)
    np.testing.assert_array_equal(s.data, shap_exp.data)
    assert list(s.feature_names) == NAMES and s[0, "bmi"].values == pytest.approx(shap_exp.values[0, 1])


def test_dataframes_name_features_and_columns_must_match(setup):
    params, data = setup
    bg = pd.DataFrame(data[:6], columns=NAMES)
    ks = tfexplain.KernelShap(mlp_tf(params), bg, target=0, n_samples=10)
    assert ks.feature_names == NAMES
    x = pd.DataFrame(data[10:13], columns=NAMES)
    np.testing.assert_array_equal(ks(x, seed=1).values, ks(data[10:13], seed=1).values)
    with pytest.raises(ValueError, match=r"missing \['s1'\].*unexpected \['s2'\]"):
        ks(x.rename(columns={"s1": "s2"}))
    with pytest.raises(ValueError, match="different order"):
        ks(x[NAMES[::-1]])
    lime = tfexplain.Lime(mlp_tf(params), pd.DataFrame(data, columns=NAMES), n_samples=50)
    assert lime.feature_names == NAMES and lime(x).feature_names == NAMES
    assert tfexplain.Lime(mlp_tf(params), pd.DataFrame(data, columns=NAMES), n_samples=50,
                          feature_names=list("abcd")).feature_names == list("abcd")


def test_target_by_name_and_predicted(setup):
    params, data = setup
    f, x, bg = mlp_tf(params), data[10:20], data[:6]
    names = ["a", "b", "c"]
    by_name = tfexplain.KernelShap(f, bg, target="c", output_names=names, n_samples=10)
    assert by_name.targets == [2] and by_name.output_names == ["c"]
    with pytest.raises(ValueError, match="'z' is not an output name"):
        tfexplain.KernelShap(f, bg, target="z", output_names=names)
    assert tfexplain.KernelShap(f, bg, target=["c", 0], output_names=names, n_samples=10).targets == [2, 0]
    every = tfexplain.KernelShap(f, bg, n_samples=10)(x, seed=2)
    pred = tfexplain.KernelShap(f, bg, target="predicted", output_names=names, n_samples=10)(x, seed=2)
    top = mlp_numpy(params, x).argmax(1)
    assert len(set(top)) > 1                              # rows really explain different classes
    np.testing.assert_array_equal(pred.target, top)
    assert pred.values.shape == (10, 4) and pred.base_values.shape == (10,)
    rows = np.arange(10)
    np.testing.assert_allclose(pred.values, every.values[rows, :, top], rtol=1e-6)
    np.testing.assert_allclose(pred.base_values, every.base_values[rows, top], rtol=1e-6)
    np.testing.assert_allclose(pred.model_output, every.model_output[rows, top], rtol=1e-6)
    np.testing.assert_allclose(pred.values.sum(1) + pred.base_values, pred.model_output, atol=1e-5)
    assert pred.explained_output_names == [names[t] for t in top]
    assert f"of {names[top[0]]} " in pred.table(rows=[0])


def test_lime_default_predicted_target_one_and_top_labels(setup):
    params, data = setup
    f, x = mlp_tf(params), data[10:16]
    top = np.argsort(-mlp_numpy(params, x), axis=1, kind="stable")
    every = tfexplain.Lime(f, data, n_samples=80, target=[0, 1, 2])(x, seed=4)
    default = tfexplain.Lime(f, data, n_samples=80)
    exp = default(x, seed=4)
    np.testing.assert_array_equal(exp.target, top[:, 0])
    rows = np.arange(6)
    np.testing.assert_allclose(exp.values, every.values[rows, :, top[:, 0]], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(exp.intercept, every.intercept[rows, top[:, 0]], rtol=1e-5)
    one = tfexplain.Lime(f, data, n_samples=80, target=1)(x, seed=4)
    assert one.target is None
    np.testing.assert_allclose(one.values, every.values[:, :, 1], rtol=1e-5, atol=1e-7)
    tl = tfexplain.Lime(f, data, n_samples=80, top_labels=2)(x, seed=4)
    assert tl.values.shape == (6, 4, 2) and tl.target.shape == (6, 2)
    np.testing.assert_array_equal(tl.target, top[:, :2])
    np.testing.assert_allclose(tl.values[:, :, 1], every.values[rows, :, top[:, 1]], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="either `target` or `top_labels`"):
        tfexplain.Lime(f, data, target=1, top_labels=2)
    with pytest.raises(ValueError, match="top_labels"):
        tfexplain.Lime(f, data, top_labels=4)


def test_exported_predicted_target(setup, tmp_path):
    params, data = setup
    ks = tfexplain.KernelShap(mlp_tf(params), data[:6], target="predicted", n_samples=10)
    loaded = tf.saved_model.load(tfexplain.export(ks, tmp_path / "a"))
    out = loaded.signatures["explain"](x=tf.constant(data[10:14]), seed=tf.constant(0, tf.int64))
    exp = ks(data[10:14], seed=0)
    np.testing.assert_array_equal(out["target"].numpy(), exp.target)
    np.testing.assert_allclose(out["values"].numpy(), exp.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["base_values"].numpy(), exp.base_values, rtol=1e-6)


def test_kmeans_and_sample_summaries(setup):
    params, _ = setup
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0, 0], [10, 10, 0, 0], [0, 10, 10, 10]], np.float32)
    sizes = [30, 20, 10]
    X = np.concatenate([c + 0.1 * rng.normal(size=(s, 4)) for c, s in zip(centers, sizes)]).astype(np.float32)
    summary = background.kmeans(X, 3, seed=0)
    data, weights = summary                                      # a (data, weights) named tuple
    match = np.argmin(((data[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    assert sorted(match) == [0, 1, 2]
    for j, c in enumerate(match):
        np.testing.assert_allclose(data[j], X[sum(sizes[:c]):sum(sizes[:c + 1])].mean(0), atol=1e-4)
        assert weights[j] == pytest.approx(sizes[c] / 60)
    np.testing.assert_array_equal(background.kmeans(X, 3, seed=0).data, data)
    frame = background.kmeans(pd.DataFrame(X, columns=NAMES), 2, seed=1)
    assert list(frame.data.columns) == NAMES and frame.weights.sum() == pytest.approx(1.0)
    f = mlp_tf(params)
    direct = tfexplain.KernelShap(f, summary, n_samples=10, target=0)
    assert direct.feature_names == ["x0", "x1", "x2", "x3"]
    assert tfexplain.KernelShap(f, frame, n_samples=10).feature_names == NAMES
    split = tfexplain.KernelShap(f, data, background_weights=weights, n_samples=10, target=0)
    np.testing.assert_allclose(direct(X[:3]).values, split(X[:3]).values, rtol=1e-6)
    np.testing.assert_allclose(direct.base_values, mlp_numpy(params, data)[:, :1].T @ weights, rtol=1e-5)
    s = background.sample(X, 5, seed=2)
    assert s.data.shape == (5, 4) and np.all(s.weights == 0.2)
    assert all(any(np.array_equal(r, row) for row in X) for r in s.data)
    np.testing.assert_array_equal(background.sample(X, 5, seed=2).data, s.data)
    with pytest.raises(ValueError, match="background_weights"):
        tfexplain.KernelShap(f, summary, background_weights=weights)
    with pytest.raises(ValueError, match="`k` is 61"):
        background.kmeans(X, 61)


def test_large_background_warns_with_summarizers(setup):
    params, _ = setup
    big = np.random.default_rng(1).normal(size=(301, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"301 rows.*linear.*6x slower.*background\.kmeans.*background\.sample"):
        tfexplain.KernelShap(mlp_tf(params), big, n_samples=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfexplain.KernelShap(mlp_tf(params), big[:300], n_samples=10)


def test_progress_bar_batches_give_the_same_numbers(setup, capsys):
    params, data = setup
    ks = tfexplain.KernelShap(mlp_tf(params), data[:6], n_samples=10, target=0, batch_size=64)
    assert ks.instances_per_chunk < 10
    quiet = ks(data[:30], seed=5, verbose=0)
    assert capsys.readouterr().out == ""
    auto = ks(data[:30], seed=5)                       # small: auto shows nothing
    assert capsys.readouterr().out == ""
    shown = ks(data[:30], seed=5, verbose=1)
    out = capsys.readouterr().out
    assert "30/30" in out and out.count("/30") >= 2    # several batches, ending at 30
    np.testing.assert_array_equal(shown.values, quiet.values)
    np.testing.assert_array_equal(shown.stderr, quiet.stderr)
    np.testing.assert_array_equal(auto.values, quiet.values)
    assert ks.tracing_count == 1
    assert ks._progress_step(10**6, "auto") is not None and ks._progress_step(3, "auto") is None
    with pytest.raises(ValueError, match="verbose"):
        ks(data[:2], verbose="loud")


def test_import_prints_nothing_to_stderr():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", "import tfexplain, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"
    assert proc.stderr == "", proc.stderr
    from tfexplain._quiet import filter_noise
    noisy = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1796012769.443941   12822 cudart_stub.cc:31] Could not find cuda drivers\n"
             "I0000 00:00:1796012769.560161   12822 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
             "To enable the following instructions: AVX2, in other operations, rebuild TensorFlow\n"
             "E0000 00:00:1796012769.560161   12822 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
             "UserWarning: something real\n")
    assert filter_noise(noisy) == ("E0000 00:00:1796012769.560161   12822 cuda_dnn.cc:8579] Unable to register "
                                   "cuDNN factory\nUserWarning: something real\n")


def test_optional_dependencies_missing_say_what_to_install(shap_exp, monkeypatch):
    # None in sys.modules makes every import of the name fail, whatever was imported before
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "shap", None)
    with pytest.raises(ImportError, match=r"to_pandas\(\) needs pandas.*pip install pandas"):
        shap_exp.to_pandas()
    with pytest.raises(ImportError, match=r"to_shap\(\) needs shap.*pip install shap"):
        shap_exp.to_shap()
    assert json.loads(shap_exp.to_json())["values"]          # the plain conversions need neither
