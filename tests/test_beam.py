"""tfexplain.beam on Beam's DirectRunner (issue #14, item 5): RunInference over an exported
explainer's explain_rows signature gives the in-process numbers, whatever the batching and order."""

import importlib
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_tf, mlp_weights

D = 3
IDS = np.array([0, 1, 2, 3, 4, 5, 6], np.int64)


def test_only_tfexplain_beam_imports_beam_and_a_missing_beam_says_what_to_install(monkeypatch):
    # no module of the package but tfexplain.beam imports apache_beam, and __init__ does not import it
    package = pathlib.Path(tfexplain.__file__).parent
    for path in package.rglob("*.py"):
        if path.name != "beam.py":
            assert "apache_beam" not in path.read_text(), path
    assert "beam" not in (package / "__init__.py").read_text()
    # None in sys.modules makes the import fail whether or not apache_beam is installed
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    monkeypatch.delitem(sys.modules, "tfexplain.beam", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'tfexplain\[beam\]'"):
        importlib.import_module("tfexplain.beam")
    monkeypatch.delitem(sys.modules, "tfexplain.beam", raising=False)


@pytest.fixture(scope="module")
def beam():
    return pytest.importorskip("apache_beam")


@pytest.fixture(scope="module")
def setup(beam, tmp_path_factory):
    rng = np.random.default_rng(5)
    model = mlp_tf(mlp_weights(D, hidden=4, outputs=2, seed=1))
    bg = rng.normal(size=(4, D)).astype(np.float32)
    x = rng.normal(size=(len(IDS), D)).astype(np.float32)
    # estimated values with bootstrap standard errors: every output of the signature is random
    explainer = tfexplain.KernelShap(model, bg, n_samples=4, target=1, n_bootstrap=8, adjust=False)
    path = str(tmp_path_factory.mktemp("beam") / "artifact")
    tfexplain.export(explainer, path)
    return {"explainer": explainer, "path": path, "x": x, "dir": tmp_path_factory.mktemp("beam_io")}


def _check_equal(got: dict, ref, rows):
    """Bitwise equality of the Beam outputs (dict of arrays [n, ...]) with the in-process Explanation."""
    np.testing.assert_array_equal(got["values"], ref.values[rows])
    np.testing.assert_array_equal(got["stderr"], ref.stderr[rows])
    np.testing.assert_array_equal(got["model_output"], ref.model_output[rows])
    np.testing.assert_array_equal(got["base_values"], ref.base_values[rows])


def test_explain_transform_equals_in_process_call(beam, setup):
    import tfexplain.beam as tb

    x, seed = setup["x"], 3
    ref = setup["explainer"](x, seed=seed)
    assert np.abs(ref.stderr).max() > 0  # the bootstrap ran: standard errors are part of the check
    expected = {k: getattr(ref, k) for k in ("values", "stderr", "model_output", "base_values")}

    def matches(elements):  # runs in the pipeline, on all its output
        found = dict(elements)
        assert sorted(found) == IDS.tolist(), sorted(found)
        got = {k: np.stack([found[i][k] for i in IDS]) for k in found[0]}
        assert got["values"].shape == (len(IDS), D) and got["values"].dtype == np.float32
        for k, v in expected.items():
            np.testing.assert_array_equal(got[k], v, err_msg=k)

    from apache_beam.testing.util import assert_that

    order = [5, 2, 6, 0, 3, 1, 4]  # any order, batches of at most 3: row ids make it one call
    with beam.Pipeline(runner="DirectRunner") as p:
        out = (p | beam.Create([(int(IDS[i]), x[i].tolist()) for i in order])
               | tb.Explain(setup["path"], seed=seed, max_batch_size=3))
        assert_that(out, matches)


def test_handler_checks_its_elements(beam, setup):
    import tfexplain.beam as tb

    handler = tb.ExplainModelHandler(setup["path"], seed=0)
    assert handler.batch_elements_kwargs() == {}
    assert tb.ExplainModelHandler(setup["path"], min_batch_size=2, max_batch_size=8).batch_elements_kwargs() == {
        "min_batch_size": 2, "max_batch_size": 8}
    model = handler.load_model()
    assert model.n_features == D
    with pytest.raises(ValueError, match="row 7 has 2 values; the explainer takes 3"):
        handler.run_inference([(7, [1.0, 2.0])], model)
    with pytest.raises(ValueError, match=r"row id -1 is outside"):
        handler.run_inference([(-1, [1.0, 2.0, 3.0])], model)
    with pytest.raises(TypeError, match="row ids must be ints"):
        handler.run_inference([("a", [1.0, 2.0, 3.0])], model)
    with pytest.raises(ValueError, match="seed"):
        tb.Explain(setup["path"], seed=-1)
    with pytest.raises(ValueError, match="max_batch_size"):
        tb.Explain(setup["path"], max_batch_size=0)


def test_cli_csv_and_tfrecord(beam, setup):
    import tfexplain.beam as tb

    x, folder = setup["x"], setup["dir"]
    ref = setup["explainer"](x, seed=1)
    # CSV without ids: a row's id is its number in the file
    csv = folder / "rows.csv"
    np.savetxt(csv, x, delimiter=",", fmt="%.9g")  # %.9g: float32 round-trips exactly
    prefix = str(folder / "csv_out")
    assert tb.main(["--explainer", setup["path"], "--input", str(csv), "--output", prefix, "--seed", "1",
                    "--max-batch-size", "2", "--runner", "DirectRunner"]) == 0
    ids, got = tb.read_output(prefix)
    np.testing.assert_array_equal(ids, IDS)
    _check_equal(got, ref, IDS)

    # TFRecord of tf.train.Example with ids in a feature: a subset of rows, in any file order
    subset = [6, 1, 4]
    path = str(folder / "rows.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in subset:
            ex = tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=x[i])),
                "row_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}))
            w.write(ex.SerializeToString())
    prefix = str(folder / "tfr_out")
    assert tb.main(["--explainer", setup["path"], "--input", path, "--output", prefix, "--seed", "1",
                    "--id-feature", "row_id", "--num-shards", "2"]) == 0
    ids, got = tb.read_output(prefix)
    np.testing.assert_array_equal(ids, sorted(subset))
    _check_equal(got, ref, sorted(subset))


def test_cli_refuses_bad_arguments(beam, setup, capsys):
    import tfexplain.beam as tb

    assert tb.main(["--explainer", setup["path"], "--input", "rows.parquet", "--output", "o"]) == 2
    assert "--input-format" in capsys.readouterr().err
    assert tb.main(["--explainer", setup["path"], "--input", "a.csv", "--output", "o", "--seed", "-2"]) == 2
    assert "seed" in capsys.readouterr().err
    for name in ("a1.csv", "a2.csv"):
        (setup["dir"] / name).write_text("1,2,3\n")
    # line numbers as row ids need one file
    assert tb.main(["--explainer", setup["path"], "--input", str(setup["dir"] / "a*.csv"), "--output", "o"]) == 2
    assert "matches 2 files" in capsys.readouterr().err
