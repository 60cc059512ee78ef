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
        # tolerance=: rounds of coalitions until the standard errors are small; stderr and per-row n_evals
        "shap": tfexplain.KernelShap(model, data[:3], tolerance=0.02, n_samples=10, max_samples=60, n_bootstrap=0),
        "lime": tfexplain.Lime(model, data, n_samples=30, num_features=2),                   # no stderr
    }


@pytest.fixture(scope="module")
def one_call(explainers, data):
    return {name: explainers[name](data, seed=5) for name in ("shap", "lime")}


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
def artifact(explainers, tmp_path_factory):
    """KernelShap with tolerance=: the signature's most outputs (stderr, per-row n_evals)."""
    return tfexplain.export(explainers["shap"], tmp_path_factory.mktemp("artifacts") / "shap")


def test_explain_rows_in_a_fresh_process_equals_one_call_for_any_batching(one_call, artifact, data, tmp_path):
    np.save(tmp_path / "x.npy", data)
    batches = {k: [list(map(int, b)) for b in v] for k, v in _BATCHINGS.items()}
    (tmp_path / "batches.json").write_text(json.dumps(batches))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", _FRESH, str(tmp_path / "x.npy"), str(tmp_path / "batches.json"),
                    str(tmp_path / "out.npz"), artifact], check=True, cwd=tmp_path, env=env, capture_output=True)
    got = dict(np.load(tmp_path / "out.npz"))
    exp = one_call["shap"]
    assert len(set(exp.n_evals)) > 1          # rows stopped after different numbers of rounds
    keys = {k.split(":")[-1] for k in got}
    assert keys == {"values", "base_values", "model_output", "stderr", "n_evals"}
    for batching in batches:
        for key in keys:
            np.testing.assert_array_equal(got[f"{artifact}:{batching}:{key}"], getattr(exp, key),
                                          err_msg=f"{batching} {key}")


def test_signature_outputs_hold_stderr_only_where_it_is_estimated(data):
    def outputs(**kw):
        return sorted(tfexplain.KernelShap(model, data[:3], n_samples=10, target=1, **kw).output_signature)

    assert "stderr" not in outputs(n_bootstrap=0)               # no estimate: no zeros standing in for one
    assert "stderr" in outputs(n_bootstrap=4)                   # bootstrap
    assert "stderr" in outputs(n_bootstrap=0, sampler="exact")  # exact: a standard error of 0 is the truth
    assert "n_evals" not in outputs()
    lime = tfexplain.Lime(model, data, n_samples=30, target=1).output_signature
    assert sorted(lime) == ["base_values", "contributions", "intercept", "local_pred", "model_output", "score",
                            "values"]
    assert lime["values"].shape.as_list() == [None, D] and lime["model_output"].shape.as_list() == [None]


def test_explain_rows_checks_row_ids_in_the_graph(artifact, explainers, one_call, data):
    loaded = tf.saved_model.load(artifact)
    explain_rows, explain = loaded.signatures["explain_rows"], loaded.signatures["explain"]
    seed = tf.constant(5, tf.int64)
    # `explain` numbers the rows of each call from 0; explain_rows as told
    np.testing.assert_array_equal(explain(x=tf.constant(data[10:16]), seed=seed)["values"].numpy(),
                                  explainers["shap"](data[10:16], seed=5).values)
    np.testing.assert_array_equal(
        explain_rows(x=tf.constant(data[10:16]), seed=seed, row_ids=tf.range(10, 16, dtype=tf.int64))["values"].numpy(),
        one_call["shap"].values[10:16])
    x = tf.constant(data[:3])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`row_ids` must have one id per row of `x`.*2.*3"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([0, 1], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`row_ids` must be in \[0, 2\*\*32\).*index.*1.*-4"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([0, -4, 2], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`row_ids` must be in \[0, 2\*\*32\).*index.*2"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([0, 1, 2**32], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row_ids.*\[3,1\] is not compatible with expected shape"):
        explain_rows(x=x, seed=seed, row_ids=tf.constant([[0], [1], [2]], tf.int64))
    empty = explain_rows(x=tf.zeros([0, D]), seed=seed, row_ids=tf.zeros([0], tf.int64))
    assert sorted(empty) == sorted(explainers["shap"].output_signature)
    assert all(v.shape[0] == 0 for v in empty.values())
    # in-process, row_ids= is checked before anything is traced
    with pytest.raises(ValueError, match=r"`row_ids` must have one id per row"):
        explainers["lime"](data[:3], row_ids=[0, 1])
    with pytest.raises(ValueError, match=r"`row_ids` must be in \[0, 2\*\*32\).*-1 at index 0"):
        explainers["lime"](data[:2], row_ids=[-1, 0])
    with pytest.raises(ValueError, match="either `row_offset` or `row_ids`"):
        explainers["lime"](data[:2], row_offset=3, row_ids=[0, 1])


# ---- explain_dataset ------------------------------------------------------------------------------
_FIELDS = ("values", "base_values", "data", "model_output", "n_evals", "stderr", "intercept", "score", "local_pred",
           "contributions", "target", "feature_conditions")


def assert_same(got, exp):
    """Every per-row field equal, bit for bit."""
    for name in _FIELDS:
        a, b = getattr(got, name), getattr(exp, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert (got.feature_names, got.output_names, got.method, got.link) == \
        (exp.feature_names, exp.output_names, exp.method, exp.link)


def _blocks(data, sizes):
    """An iterator of consecutive blocks of rows, of the given sizes."""
    edges = np.cumsum([0] + list(sizes))
    return ((data[a:b], np.zeros(b - a)) for a, b in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("name", ["shap", "lime"])
def test_explain_dataset_equals_one_call_for_any_batch_size_and_source(name, explainers, one_call, data):
    explainer, exp = explainers[name], one_call[name]
    sources = {
        "array": lambda: data,
        "rows (x, y)": lambda: tf.data.Dataset.from_tensor_slices((data, np.arange(23))),
        "batched dataset": lambda: tf.data.Dataset.from_tensor_slices(data).batch(6),
        "iterator": lambda: _blocks(data, [5, 1, 9, 8]),
    }
    try:
        import pandas as pd
        sources["DataFrame"] = lambda: pd.DataFrame(data, columns=[f"x{j}" for j in range(D)])
    except ImportError:
        pass
    for source, make in sources.items():
        for batch_size in (1, 4, 7, 64):
            if source not in ("array", "DataFrame") and batch_size in (1, 64):
                continue
            got = explainer.explain_dataset(make(), seed=5, batch_size=batch_size, verbose=0)
            assert_same(got, exp)


def test_explain_dataset_shows_progress_and_checks_its_arguments(explainers, data, capsys, tmp_path):
    explainer = explainers["shap"]
    explainer.explain_dataset(data[:4], seed=5, batch_size=2, verbose=1)
    assert "4/4" in capsys.readouterr().out
    explainer.explain_dataset(data[:4], seed=5, batch_size=2, verbose=0)
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="`data` must be"):
        explainer.explain_dataset(42)
    with pytest.raises(ValueError, match="`data` must be a batch of instances"):
        explainer.explain_dataset(data[0])
    with pytest.raises(ValueError, match="`data` has 3 features"):
        explainer.explain_dataset(iter([data[:2, :3]]))
    with pytest.raises(ValueError, match="`data` has no rows"):
        explainer.explain_dataset(iter([]), verbose=0)
    with pytest.raises(ValueError, match="`verbose`"):
        explainer.explain_dataset(data, verbose=2)
    with pytest.raises(TypeError, match="`strategy`"):
        explainer.explain_dataset(data, strategy="mirrored")
    with pytest.raises(ValueError, match="`shard_size` must be a multiple of `batch_size` \\(4\\)"):
        explainer.explain_dataset(data, batch_size=4, out=tmp_path / "a", shard_size=6)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "other.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match="not empty"):
        explainer.explain_dataset(data, out=tmp_path / "b")
    # non-finite explanations name the rows of the dataset
    logs = tfexplain.KernelShap(lambda t: tf.math.log(t[:, 0]) + t[:, 1], np.ones((2, D), np.float32), n_samples=10,
                                n_bootstrap=0)
    x = np.ones((20, D), np.float32)
    x[13, 0] = -1.0
    with pytest.raises(ValueError, match=r"rows 12\.\.15 of `data`.*NaN or Inf.*instance 1 of `x`"):
        logs.explain_dataset(x, batch_size=4, verbose=0)


class _Interrupted(Exception):
    pass


def _failing(data, sizes, fail_after):
    """Blocks of rows that raise once ``fail_after`` rows were given (a crash midway)."""
    given = 0
    for x, _ in _blocks(data, sizes):
        if given >= fail_after:
            raise _Interrupted()
        given += len(x)
        yield x


def test_shards_resume_after_an_interruption_without_recomputing_finished_ones(explainers, one_call, data, tmp_path):
    explainer, out = explainers["lime"], tmp_path / "run"
    calls = []
    inner = explainer.explain_fn
    explainer.explain_fn = lambda x, seed, rows: calls.append(rows.numpy().tolist()) or inner(x, seed, rows)
    try:
        with pytest.raises(_Interrupted):   # rows 0..10 arrive, then the source fails: shards 0, 1 are done
            explainer.explain_dataset(_failing(data, [5, 6, 12], 11), seed=5, batch_size=2, shard_size=4, out=out,
                                      verbose=0)
        manifest = json.loads((out / "manifest.json").read_text())
        assert sorted(manifest["shards"]) == ["0", "1"] and not manifest["complete"]
        stamps = {f: os.stat(out / f).st_mtime_ns for f in ("shard-000000.npz", "shard-000001.npz")}
        assert calls == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]   # rows 8, 9: shard 2, lost with the crash
        del calls[:]
        shards = explainer.explain_dataset(_blocks(data, [23]), seed=5, batch_size=2, shard_size=4, out=out,
                                           verbose=0)
    finally:
        explainer.explain_fn = inner
    assert calls == [[8, 9], [10, 11], [12, 13], [14, 15], [16, 17], [18, 19], [20, 21], [22]]
    assert {f: os.stat(out / f).st_mtime_ns for f in stamps} == stamps
    assert shards.complete and len(shards) == 23 and shards.n_shards == 6
    assert_same(shards.load(), one_call["lime"])
    assert_same(tfexplain.load_shards(out).shard(2), one_call["lime"][8:12])
    with np.load(out / "shard-000005.npz", allow_pickle=False) as f:   # plain arrays
        np.testing.assert_array_equal(f["row_ids"], [20, 21, 22])
        np.testing.assert_array_equal(f["values"], one_call["lime"].values[20:])
    # resuming checks that it is the same run
    with pytest.raises(ValueError, match="another run.*seed"):
        explainer.explain_dataset(data, seed=6, batch_size=2, shard_size=4, out=out, verbose=0)
    other = tfexplain.Lime(model, data, n_samples=30, num_features=2, kernel_width=0.5)   # another setting
    with pytest.raises(ValueError, match="another run.*settings"):
        other.explain_dataset(data, seed=5, batch_size=2, shard_size=4, out=out, verbose=0)
    changed = data.copy()
    changed[5] += 1
    with pytest.raises(ValueError, match=r"rows 4\.\.7 of `data` differ.*shard-000001.npz"):
        explainer.explain_dataset(changed, seed=5, batch_size=2, shard_size=4, out=out, verbose=0)


_MIRRORED = r"""
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tfexplain
from tfexplain import datasets
from test_dataset import D, assert_same, model
data = np.random.default_rng(3).normal(size=(23, D)).astype(np.float32)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
explainer = tfexplain.KernelShap(model, data[:5], n_samples=22, n_bootstrap=8)   # bootstrap standard errors
one = explainer(data, seed=5)                       # one device
for batch_size in (1, 7):                           # 1: a replica gets no rows
    assert_same(explainer.explain_dataset(data, seed=5, batch_size=batch_size, strategy=strategy, verbose=0), one)
shards = explainer.explain_dataset(data, seed=5, batch_size=6, strategy=strategy, out=sys.argv[1], verbose=0)
assert_same(shards.load(), one)
# each replica's explain call is placed on its own device
run = datasets._Runner(explainer, 5, strategy)
graph = explainer.replica_fn(strategy).get_concrete_function(*run._distribute(data[:3], np.arange(3))).graph
calls = {op.device.split("/")[-1] for op in graph.get_operations() if op.type.endswith("PartitionedCall")}
assert calls == {"device:CPU:0", "device:CPU:1"}, calls
print("ok")
"""


def test_mirrored_strategy_over_two_logical_cpus_gives_the_numbers_of_one_device(tmp_path):
    # logical devices must be configured before TensorFlow initializes them: in a fresh process
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.path.dirname(__file__)]))
    res = subprocess.run([sys.executable, "-c", _MIRRORED, str(tmp_path / "shards")], cwd=os.path.dirname(__file__),
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
