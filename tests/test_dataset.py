"""Whole datasets: the served ``explain_rows`` signature, ``explain_dataset`` (batches, shards, resume),
tf.distribute replicas -- all bit-identical to one in-process call on every row."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfexplain

D = 4
_W1 = np.random.default_rng(7).normal(size=(D, 6)).astype(np.float32)
_W2 = np.random.default_rng(8).normal(size=(6, 2)).astype(np.float32)


def model(t):
    """A tiny MLP with a softmax: exp / tanh whose last bits depend on the batch unless padded."""
    return tf.nn.softmax(tf.matmul(tf.tanh(tf.matmul(t, _W1)), _W2))


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(3).normal(size=(23, D)).astype(np.float32)


@pytest.fixture(scope="module")
def explainers(data):
    return {
        "shap": tfexplain.KernelShap(model, data[:5], n_samples=22, n_bootstrap=8),          # stderr
        "lime": tfexplain.Lime(model, data, n_samples=30, num_features=2),                   # no stderr
        "tolerance": tfexplain.KernelShap(model, data[:3], tolerance=0.02, n_samples=10,     # n_evals
                                          max_samples=60, target=1),
    }


_FRESH = r"""
import sys, json
sys.modules["tfexplain"] = None          # served: tfexplain must not be needed
import numpy as np, tensorflow as tf
x_file, batches_file, out_file, *paths = sys.argv[1:]
x = np.load(x_file)
got = {}
for path in paths:
    explain_rows = tf.saved_model.load(path).signatures["explain_rows"]
    for name, batches in json.load(open(batches_file)).items():
        parts = [explain_rows(x=tf.constant(x[b]), seed=tf.constant(5, tf.int64), row_ids=tf.constant(b, tf.int64))
                 for b in batches]
        order = np.argsort(np.concatenate(batches))
        for key in parts[0]:
            got[f"{path}:{name}:{key}"] = np.concatenate([p[key].numpy() for p in parts])[order]
np.savez(out_file, **got)
"""

_BATCHINGS = {
    "ones": [[i] for i in range(23)],
    "threes": [list(range(i, min(i + 3, 23))) for i in range(0, 23, 3)],
    "shuffled": np.array_split(np.random.default_rng(0).permutation(23), 4),
}


@pytest.fixture(scope="module")
def artifacts(explainers, tmp_path_factory):
    root = tmp_path_factory.mktemp("artifacts")
    return {name: tfexplain.export(e, root / name) for name, e in explainers.items() if name != "tolerance"}


def test_explain_rows_in_a_fresh_process_equals_one_call_for_any_batching(explainers, artifacts, data, tmp_path):
    np.save(tmp_path / "x.npy", data)
    batches = {k: [list(map(int, b)) for b in v] for k, v in _BATCHINGS.items()}
    (tmp_path / "batches.json").write_text(json.dumps(batches))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", _FRESH, str(tmp_path / "x.npy"), str(tmp_path / "batches.json"),
                    str(tmp_path / "out.npz"), *artifacts.values()], check=True, cwd=tmp_path, env=env,
                   capture_output=True)
    got = dict(np.load(tmp_path / "out.npz"))
    for name, path in artifacts.items():
        exp = explainers[name](data, seed=5)
        keys = {k.split(":")[-1] for k in got if k.startswith(path + ":")}
        assert keys >= {"values", "base_values", "model_output"}
        assert ("stderr" in keys) == (name == "shap")          # no zeros standing in for an estimate
        assert "n_evals" not in keys
        for batching in batches:
            for key in keys:
                np.testing.assert_array_equal(got[f"{path}:{batching}:{key}"], getattr(exp, key),
                                              err_msg=f"{name} {batching} {key}")


def test_explain_rows_exports_n_evals_with_tolerance_and_checks_row_ids(explainers, data, tmp_path):
    explainer = explainers["tolerance"]
    loaded = tf.saved_model.load(tfexplain.export(explainer, tmp_path / "artifact"))
    explain_rows, explain = loaded.signatures["explain_rows"], loaded.signatures["explain"]
    seed = tf.constant(5, tf.int64)
    exp = explainer(data[:6], seed=5)
    assert len(set(exp.n_evals)) > 1                      # rows stopped after different numbers of rounds
    parts = [explain_rows(x=tf.constant(data[i:i + 4]), seed=seed, row_ids=tf.range(i, i + 4, dtype=tf.int64))
             for i in (0, 4)]
    for key in ("values", "stderr", "n_evals", "model_output", "base_values"):
        np.testing.assert_array_equal(np.concatenate([p[key].numpy() for p in parts])[:6], getattr(exp, key))
    # `explain` numbers the rows of each call from 0
    np.testing.assert_array_equal(explain(x=tf.constant(data[:6]), seed=seed)["values"].numpy(), exp.values)
    x = tf.constant(data[:3])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`row_ids` must have one id per row of `x`.*2.*3"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([0, 1], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`row_ids` must be in \[0, 2\*\*32\).*index.*1.*-4"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([0, -4, 2], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`row_ids` must be in \[0, 2\*\*32\).*index.*2"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([0, 1, 2**32], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row_ids.*\[3,1\] is not compatible with expected shape \[\?\]"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([[0], [1], [2]], tf.int64))
    empty = explain_rows(x=tf.zeros([0, D]), seed=seed, row_ids=tf.zeros([0], tf.int64))
    assert {k: v.shape[0] for k, v in empty.items()} == {k: 0 for k in parts[0]}
