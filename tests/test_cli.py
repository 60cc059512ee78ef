"""The command line, in-process through cli.main and once as `python -m tfexplain`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfexplain
from tfexplain import cli

keras = pytest.importorskip("keras")
NAMES = ["age", "bmi", "bp", "s1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.Dense(2, activation="softmax")])
    model_path = str(tmp / "m.keras")
    model.save(model_path)
    rng = np.random.default_rng(0)
    bg, x = rng.normal(size=(12, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    np.save(tmp / "bg.npy", bg)
    with open(tmp / "x.csv", "w") as fh:
        fh.write(",".join(NAMES) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in x) + "\n")
    return {"dir": tmp, "model": model_path, "keras": model, "bg": bg, "x": x,
            "bg_path": str(tmp / "bg.npy"), "x_path": str(tmp / "x.csv")}


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_kernel_shap_npz_matches_in_process(files, capsys):
    out = files["dir"] / "r.npz"
    code, stdout, err = _run(capsys, "explain", files["model"], files["x_path"], "--background", files["bg_path"],
                             "--out", out, "--n-samples", 14, "--target", 1, "--seed", 3)
    assert code == 0 and err == "" and "KernelShap: 5 rows x 4 features" in stdout
    with np.load(out, allow_pickle=False) as z:
        got = {k: z[k] for k in z.files}
    ref = tfexplain.KernelShap(files["keras"], files["bg"], n_samples=14, target=1, feature_names=NAMES)(files["x"], seed=3)
    assert got["feature_names"].tolist() == NAMES and str(got["method"]) == "KernelShap"
    np.testing.assert_allclose(got["values"], ref.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["base_values"], ref.base_values, rtol=1e-6)
    np.testing.assert_allclose(got["data"], files["x"], rtol=1e-6)
    np.testing.assert_allclose(got["stderr"], ref.stderr, rtol=1e-5, atol=1e-7)
    # and plot it: the bar plot has one bar per feature
    png = files["dir"] / "bar.png"
    code, _, err = _run(capsys, "plot", out, "--kind", "bar", "--out", png)
    assert code == 0 and err == "" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = _run(capsys, "plot", out, "--kind", "waterfall", "--row", 4, "--out", files["dir"] / "w.png")
    assert code == 0 and os.path.getsize(files["dir"] / "w.png") > 1000
    code, _, err = _run(capsys, "plot", out, "--kind", "waterfall", "--row", 9, "--out", files["dir"] / "w.png")
    assert code == 2 and err == "tfexplain: error: --row 9 is out of range: the result has 5 rows\n"


def test_explain_lime_json_and_csv(files, capsys):
    js, cs = files["dir"] / "r.json", files["dir"] / "r.csv"
    code, _, err = _run(capsys, "explain", files["model"], files["x_path"], "--background", files["bg_path"],
                        "--method", "lime", "--n-samples", 60, "--out", js, "--quiet", "--output-names", "no,yes")
    assert code == 0 and err == ""
    cli.save_result(cli.load_result(str(js)), str(cs))          # the .csv writer, on the same result
    d = json.loads(js.read_text())
    probs = files["keras"].predict(files["x"], verbose=0)
    assert d["method"] == "Lime" and d["target"] == probs.argmax(1).tolist()      # the predicted class
    assert d["output_names"] == ["no", "yes"] and np.array(d["values"]).shape == (5, 4)
    lines = cs.read_text().splitlines()
    assert lines[0].split(",") == ["base_value", "model_output", "target"] + NAMES and len(lines) == 6
    row = np.array(lines[2].split(","), float)
    np.testing.assert_allclose(row[3:], d["values"][1], rtol=1e-6)
    np.testing.assert_allclose(row[1], probs[1].max(), rtol=1e-4)


def test_export_writes_an_explain_signature(files, capsys):
    import tensorflow as tf
    out = files["dir"] / "artifact"
    args = ["export", files["model"], "--background", files["bg_path"], "--n-samples", 14, "--target", 0, "--out", out]
    code, stdout, err = _run(capsys, *args)
    assert code == 0 and err == "" and "exported KernelShap" in stdout
    loaded = tf.saved_model.load(str(out))
    res = loaded.signatures["explain"](x=tf.constant(files["x"]), seed=tf.constant(0, tf.int64))
    assert res["values"].shape == (5, 4)
    code, _, err = _run(capsys, *args)
    assert code == 2 and "pass --overwrite" in err and err.count("\n") == 1


def test_errors_are_one_line_without_traceback(files, capsys, tmp_path):
    bad_model = tmp_path / "broken.keras"
    bad_model.write_bytes(b"not a zip file")
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((3, 3), np.float32))
    cases = {
        "model not found": ["explain", tmp_path / "none.keras", files["x_path"], "--background", files["bg_path"],
                            "--out", tmp_path / "o.npz"],
        "DATA file not found": ["explain", files["model"], tmp_path / "none.csv", "--background", files["bg_path"],
                                "--out", tmp_path / "o.npz"],
        "DATA has 4 features (columns) but the background has 3": [
            "explain", files["model"], files["x_path"], "--background", narrow, "--out", tmp_path / "o.npz"],
        "cannot load model": ["explain", bad_model, files["x_path"], "--background", files["bg_path"],
                              "--out", tmp_path / "o.npz"],
        "invalid choice: 'shap'": ["explain", files["model"], files["x_path"], "--background", files["bg_path"],
                                   "--method", "shap", "--out", tmp_path / "o.npz"],
        "the following arguments are required: --out": ["explain", files["model"], files["x_path"],
                                                        "--background", files["bg_path"]],
        "unsupported format .txt": ["explain", files["model"], files["x_path"], "--background", files["bg_path"],
                                    "--out", tmp_path / "o.txt"],
        "is out of range": ["explain", files["model"], files["x_path"], "--background", files["bg_path"],
                            "--target", 7, "--n-samples", 14, "--out", tmp_path / "o.npz"],
    }
    for expected, argv in cases.items():
        code, stdout, err = _run(capsys, *argv)
        assert code == 2, (expected, err)
        assert expected in err and err.startswith("tfexplain: error: ") and err.count("\n") == 1, (expected, err)
        assert "Traceback" not in err and stdout == ""
    assert not (tmp_path / "o.npz").exists()


def test_python_dash_m_help():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "tfexplain", "--help"], capture_output=True, text=True,
                          env=env, timeout=120, cwd=root)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "{explain,export,plot}" in proc.stdout


def test_explain_a_savedmodel_directory(files, capsys, tmp_path):
    import tensorflow as tf
    w = tf.constant(np.arange(8, dtype=np.float32).reshape(4, 2) / 8)

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return tf.nn.softmax(tf.matmul(x, w))

    tf.saved_model.save(M(), str(tmp_path / "sm"))
    out = tmp_path / "r.npz"
    code, _, err = _run(capsys, "explain", tmp_path / "sm", files["x_path"], "--background", files["bg_path"],
                        "--n-samples", 14, "--out", out, "--quiet")
    assert code == 0 and err == ""
    ref = tfexplain.KernelShap(M(), files["bg"], n_samples=14)(files["x"])
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_allclose(z["values"], ref.values, rtol=1e-5, atol=1e-7)
        assert z["values"].shape == (5, 4, 2)
