"""SavedModel export: same numbers in a fresh process without tfexplain, saved_model_cli, XLA, and
explaining models that come as SavedModels."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfexplain

keras = pytest.importorskip("keras")

_FRESH = r"""
import sys, json
sys.modules["tfexplain"] = None          # tfexplain must not be importable here
try:
    import tfexplain  # noqa
    raise SystemExit("tfexplain was importable")
except ImportError:
    pass
import numpy as np, tensorflow as tf
path, x_file, seed, out_file = sys.argv[1:5]
loaded = tf.saved_model.load(path)
x = np.load(x_file)
out = loaded.signatures["explain"](x=tf.constant(x), seed=tf.constant(int(seed), tf.int64))
pred = loaded.signatures["serving_default"](x=tf.constant(x))
np.savez(out_file, prediction=pred["output_0"].numpy(), **{k: v.numpy() for k, v in out.items()})
"""


def _model(d, outputs=2, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((d,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(outputs, activation="softmax")])


def _fresh_process(path, x, seed, tmp_path):
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", _FRESH, str(path), str(tmp_path / "x.npy"), str(seed),
                    str(tmp_path / "out.npz")], check=True, cwd=tmp_path, env=env, capture_output=True)
    return dict(np.load(tmp_path / "out.npz"))


@pytest.mark.parametrize("method", ["KernelShap", "Lime"])
def test_exported_explain_signature_matches_in_process_in_fresh_process(method, rng, tmp_path):
    d = 4
    model = _model(d)
    data = rng.normal(size=(40, d)).astype(np.float32)
    if method == "KernelShap":
        explainer = tfexplain.KernelShap(model, data[:6], n_samples=10, target=1)
    else:
        explainer = tfexplain.Lime(model, data, n_samples=100, num_features=2)
    path = tfexplain.export(explainer, tmp_path / "artifact")
    x = data[:5]
    exp = explainer(x, seed=7)
    got = _fresh_process(path, x, 7, tmp_path)
    np.testing.assert_allclose(got["values"], exp.values, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["base_values"], exp.base_values, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["prediction"], model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    if method == "Lime":
        np.testing.assert_allclose(got["score"], exp.score, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got["intercept"], exp.intercept, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got["local_pred"], exp.local_pred, rtol=1e-6, atol=1e-7)


def test_saved_model_cli_show_and_run(rng, tmp_path):
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip("saved_model_cli not installed")
    d = 3
    data = rng.normal(size=(20, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(_model(d), data[:5], target=[0, 1])
    path = tfexplain.export(explainer, tmp_path / "artifact")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True).stdout
    section = shown.split("signature_def['explain']")[1].split("signature_def[")[0]
    assert "inputs['x']" in section and "shape: (-1, 3)" in section and "DT_FLOAT" in section
    assert "inputs['seed']" in section and "DT_INT64" in section
    assert "outputs['values']" in section and "shape: (-1, 3, 2)" in section
    np.save(tmp_path / "x.npy", data[:2])
    np.save(tmp_path / "seed.npy", np.array(5, np.int64))
    out_dir = tmp_path / "out"
    subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "explain",
                    "--inputs", f"x={tmp_path / 'x.npy'};seed={tmp_path / 'seed.npy'}", "--outdir", str(out_dir)],
                   capture_output=True, text=True, check=True)
    values = np.load(out_dir / "values.npy")
    np.testing.assert_allclose(values, explainer(data[:2], seed=5).values, rtol=1e-6, atol=1e-7)


def test_export_with_xla(rng, tmp_path):
    d = 4
    data = rng.normal(size=(30, d)).astype(np.float32)
    # the plain regression: the adjustment's and bootstrap's XLA programs are tested in test_graph.py
    explainer = tfexplain.KernelShap(_model(d), data[:5], n_samples=12, adjust=False, n_bootstrap=0)
    path = tfexplain.export(explainer, tmp_path / "xla", jit_compile=True)
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["explain"](x=tf.constant(data[:3]), seed=tf.constant(1, tf.int64))
    np.testing.assert_allclose(out["values"].numpy(), explainer(data[:3], seed=1).values, rtol=1e-4, atol=1e-5)
    default = loaded.signatures["explain_default_seed"](x=tf.constant(data[:3]))
    np.testing.assert_allclose(default["values"].numpy(), explainer(data[:3], seed=0).values, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("how", ["keras_export", "tf_saved_model", "tfsm_layer"])
def test_explaining_saved_models_and_reexporting(how, rng, tmp_path):
    d = 4
    model = _model(d, seed=3)
    data = rng.normal(size=(30, d)).astype(np.float32)
    src = str(tmp_path / "model")
    if how == "tf_saved_model":
        module = tf.Module()
        module.variables_ = [v.value for v in model.variables]
        module.__call__ = tf.function(lambda x: model(x, training=False),
                                      input_signature=[tf.TensorSpec([None, d], tf.float32)])
        tf.saved_model.save(module, src)
    else:
        model.export(src, verbose=False)
    if how == "tfsm_layer":
        served = keras.layers.TFSMLayer(src, call_endpoint="serve")
    else:
        served = tf.saved_model.load(src)
    reference = tfexplain.KernelShap(model, data[:5], n_samples=14)(data[:3], seed=2)
    explainer = tfexplain.KernelShap(served, data[:5], n_samples=14)
    exp = explainer(data[:3], seed=2)
    np.testing.assert_allclose(exp.values, reference.values, rtol=1e-5, atol=1e-6)
    path = tfexplain.export(explainer, tmp_path / "again")
    got = _fresh_process(path, data[:3], 2, tmp_path)
    np.testing.assert_allclose(got["values"], reference.values, rtol=1e-5, atol=1e-6)


def test_export_rejects_non_explainers(tmp_path):
    with pytest.raises(TypeError, match="explainer"):
        tfexplain.export(object(), tmp_path / "x")


def _tiny_explainer(d=3, n_bg=4, seed=0, model=None, **kw):
    bg = np.random.default_rng(seed).normal(size=(n_bg, d)).astype(np.float32)
    model = model or (lambda t: tf.reduce_sum(t * tf.constant([1.0, -2.0, 0.5, 3.0, 1.5, -1.0][:d]), 1))
    return tfexplain.KernelShap(model, bg, n_samples=2 * d + 2, n_bootstrap=0, **kw)


def test_export_refuses_to_overwrite_an_existing_artifact(tmp_path):
    path = tmp_path / "artifact"
    tfexplain.export(_tiny_explainer(3), path)
    with pytest.raises(FileExistsError, match=str(path)):
        tfexplain.export(_tiny_explainer(4), path)
    assert tf.saved_model.load(str(path)).signatures["explain"].structured_input_signature[1]["x"].shape[1] == 3
    tfexplain.export(_tiny_explainer(4), path, overwrite=True)
    assert tf.saved_model.load(str(path)).signatures["explain"].structured_input_signature[1]["x"].shape[1] == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    tfexplain.export(_tiny_explainer(3), empty)  # an existing empty folder is fine
    assert (empty / "saved_model.pb").exists()
    a_file = tmp_path / "file"
    a_file.write_text("not an artifact")
    with pytest.raises(FileExistsError, match=str(a_file)):
        tfexplain.export(_tiny_explainer(3), a_file, overwrite=True)
    assert a_file.read_text() == "not an artifact"


def test_export_rejects_models_outside_the_graph(tmp_path):
    with pytest.warns(UserWarning, match="numpy_function"):
        explainer = _tiny_explainer(3, model=lambda a: np.tanh(a).sum(1))
    assert explainer(np.ones((1, 3), np.float32)).values.shape == (1, 3)  # in-process it works
    with pytest.raises(ValueError, match=r"tfexplain.export.*numpy_function.*Keras model"):
        tfexplain.export(explainer, tmp_path / "artifact")
    assert not (tmp_path / "artifact").exists()


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_exported_explain_checks_its_inputs(jit_compile, tmp_path):
    explainer = _tiny_explainer(3)
    loaded = tf.saved_model.load(tfexplain.export(explainer, tmp_path / "artifact", jit_compile=jit_compile))
    explain = loaded.signatures["explain"]
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], np.float32)
    seed = tf.constant(1, tf.int64)
    full = explain(x=tf.constant(x), seed=seed)
    np.testing.assert_allclose(full["values"].numpy(), explainer(x, seed=1).values, rtol=1e-5, atol=1e-6)
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`x` contains NaN or Inf"):
        explain(x=tf.constant(bad), seed=seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`seed` must be >= 0.*-3"):
        explain(x=tf.constant(x), seed=tf.constant(-3, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`x` must have 3 features.*\[4\]"):
        explain(x=tf.ones([2, 4]), seed=seed)
    for out in (explain(x=tf.zeros([0, 3]), seed=seed), loaded.signatures["explain_default_seed"](x=tf.zeros([0, 3]))):
        assert sorted(out) == sorted(full)
        for key, value in out.items():
            assert value.shape == (0,) + tuple(full[key].shape[1:]) and value.dtype == full[key].dtype, key


def test_exported_lime_returns_empty_outputs_for_empty_x(rng, tmp_path):
    data = rng.normal(size=(10, 3)).astype(np.float32)
    explainer = tfexplain.Lime(lambda t: tf.reduce_sum(t, 1), data, n_samples=20, num_features=2)
    explain = tf.saved_model.load(tfexplain.export(explainer, tmp_path / "artifact")).signatures["explain"]
    full = explain(x=tf.constant(data[:2]), seed=tf.constant(0, tf.int64))
    out = explain(x=tf.zeros([0, 3]), seed=tf.constant(0, tf.int64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (0,) + tuple(v.shape[1:]) for k, v in full.items()}


@pytest.mark.parametrize("link", ["identity", "logit"])
def test_exported_explain_rejects_non_finite_explanations(link, rng, tmp_path):
    if link == "identity":  # NaN where feature 0 <= 0
        model = lambda t: tf.math.log(t[:, 0]) + t[:, 1]  # noqa: E731
    else:                   # a probability on the background, not for large x
        model = lambda t: 0.5 + 0.1 * tf.reduce_sum(t, 1)  # noqa: E731
    bg = rng.uniform(0.5, 1.0, size=(4, 3)).astype(np.float32) * (1 if link == "identity" else 0.5)
    explainer = tfexplain.KernelShap(model, bg, n_samples=8, n_bootstrap=0, link=link)
    explain = tf.saved_model.load(tfexplain.export(explainer, tmp_path / "artifact")).signatures["explain"]
    x = np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0] if link == "identity" else [10.0, 0.0, 0.0]], np.float32)
    assert np.all(np.isfinite(explain(x=tf.constant(x[:1]), seed=tf.constant(0, tf.int64))["values"].numpy()))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"not finite.*`model`.*NaN or Inf.*outside \[0, 1\]"
                                                             r".*instances.*\[1\]"):
        explain(x=tf.constant(x), seed=tf.constant(0, tf.int64))
