"""Batch scoring with Apache Beam: an exported explainer's ``explain_rows`` signature inside
``RunInference``, on any runner (Direct, Dataflow, Flink, Spark).

    import apache_beam as beam
    import tfexplain.beam

    with beam.Pipeline() as p:
        (p | beam.Create([(row_id, row), ...])                # row: d floats; row_id: the row's global index
           | tfexplain.beam.Explain("artifact/", seed=0)     # -> (row_id, {"values": ..., "model_output": ...})
           | ...)

Each row's random stream depends only on ``(seed, row_id)``, so however the runner shards, orders and
batches the rows, every row gets the numbers of one in-process call ``explainer(x, seed)`` on all
rows (row ``i`` of ``x`` having id ``i``). The workers need TensorFlow, Apache Beam and this module
(``pip install 'tfexplain[beam]'``); the artifact is loaded with plain ``tf.saved_model.load``, once
per worker process.

``python -m tfexplain.beam --explainer DIR --input CSV_OR_TFRECORD --output PREFIX [runner options]``
is a ready pipeline (see :func:`main`). Requires ``apache-beam``: ``pip install 'tfexplain[beam]'``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from typing import Any, Iterable, Optional, Sequence

try:
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import ModelHandler, RunInference
except ImportError as _err:  # pragma: no cover - exercised with apache_beam blocked
    raise ImportError(
        "tfexplain.beam needs Apache Beam, which is an optional dependency: pip install 'tfexplain[beam]' "
        f"(or pip install apache-beam). The import failed with: {_err}") from _err

import numpy as np

from ._validation import MAX_ROW_ID  # row ids are 32-bit counters of the random streams

SIGNATURE = "explain_rows"

__all__ = ["Explain", "ExplainModelHandler", "read_output", "main", "SIGNATURE"]


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}.")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"`seed` must be >= 0, got {seed}.")
    return int(seed)


def _check_batch_size(value, name) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int or None, got {value!r}.")
    return int(value)


def _row_id(key) -> int:
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
        raise TypeError(f"row ids must be ints (each element is (row_id, row)), got {type(key).__name__} {key!r}.")
    if not 0 <= int(key) < MAX_ROW_ID:
        raise ValueError(f"row id {key} is outside 0 .. 2**32 - 1 (row ids index the rows' random streams).")
    return int(key)


class _Loaded:
    """A loaded artifact: the SavedModel (kept alive: it owns the signature's variables), its
    ``explain_rows`` function and the number of features it takes."""

    def __init__(self, saved_model, fn, n_features: int):
        self.saved_model, self.fn, self.n_features = saved_model, fn, n_features


class ExplainModelHandler(ModelHandler):
    """A ``RunInference`` model handler for an exported explainer: elements ``(row_id, row)`` -> ``(row_id,
    {name: numpy array})``, one ``explain_rows(x, seed, row_ids)`` call per batch of elements.

    The handler keys the elements itself (the row ids are an input of the signature, not only
    labels), so it is used directly, not wrapped in ``KeyedModelHandler``.

    path: the SavedModel folder written by ``tfexplain.export`` (local or any file system TensorFlow
        reads, e.g. ``gs://``); loaded once per worker process.
    seed: int >= 0, the call's seed.
    min_batch_size, max_batch_size: bounds for Beam's ``BatchElements`` (which adapts the batch size
        in between); the explainer's own ``batch_size`` bounds the memory of each call.
    """

    def __init__(self, path, seed: int = 0, *, min_batch_size: Optional[int] = None,
                 max_batch_size: Optional[int] = None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`path` must be a path to an exported explainer, got {type(path).__name__}.")
        self._path = os.fspath(path)
        self._seed = _check_seed(seed)
        lo = _check_batch_size(min_batch_size, "min_batch_size")
        hi = _check_batch_size(max_batch_size, "max_batch_size")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"`min_batch_size` ({lo}) is above `max_batch_size` ({hi}).")
        super().__init__()  # Beam < 2.72 takes no batching arguments here: they are ours (batch_elements_kwargs)
        self._batching = {k: v for k, v in (("min_batch_size", lo), ("max_batch_size", hi)) if v is not None}

    @property
    def path(self) -> str:
        return self._path

    @property
    def seed(self) -> int:
        return self._seed

    def load_model(self) -> _Loaded:
        import tensorflow as tf

        loaded = tf.saved_model.load(self._path)
        if SIGNATURE not in loaded.signatures:
            raise ValueError(
                f"the SavedModel at {self._path!r} has no {SIGNATURE!r} signature (it has "
                f"{sorted(loaded.signatures)}): export the explainer with a tfexplain that writes it "
                f"(tfexplain.export).")
        fn = loaded.signatures[SIGNATURE]
        _, inputs = fn.structured_input_signature
        missing = {"x", "seed", "row_ids"} - set(inputs)
        if missing:
            raise ValueError(f"the {SIGNATURE!r} signature at {self._path!r} lacks the inputs {sorted(missing)}.")
        spec = inputs["x"]
        if spec.shape.rank != 2 or spec.dtype != tf.float32:
            raise ValueError(f"the {SIGNATURE!r} signature at {self._path!r} takes x {spec.dtype.name} "
                             f"{spec.shape}: tfexplain.beam runs tabular explainers (float32 rows [None, d]) only.")
        return _Loaded(loaded, fn, int(spec.shape[1]))

    def _batch_arrays(self, batch: Sequence[Any], d: int):
        """(row ids int64 [n], rows float32 [n, d]) of a batch of (row_id, row) elements, or raises
        naming the first bad element."""
        ids = np.empty(len(batch), np.int64)
        x = np.empty((len(batch), d), np.float32)
        for i, element in enumerate(batch):
            if not isinstance(element, (tuple, list)) or len(element) != 2:
                raise TypeError(f"`tfexplain.beam.Explain` takes (row_id, row) pairs, got {element!r:.200}.")
            key, row = element
            ids[i] = _row_id(key)
            try:
                values = np.asarray(row, np.float32).reshape(-1)
            except (TypeError, ValueError) as err:
                raise ValueError(f"row {key}: not {d} numbers ({err}).") from None
            if values.size != d:
                raise ValueError(f"row {key} has {values.size} values; the explainer takes {d} features.")
            x[i] = values
        return ids, x

    def run_inference(self, batch: Sequence[Any], model: _Loaded,
                      inference_args: Optional[dict] = None) -> Iterable[tuple]:
        import tensorflow as tf

        ids, x = self._batch_arrays(batch, model.n_features)
        out = model.fn(x=tf.constant(x), seed=tf.constant(self._seed, tf.int64), row_ids=tf.constant(ids))
        out = {k: v.numpy() for k, v in out.items()}
        return [(int(key), {k: np.asarray(v[i]) for k, v in out.items()}) for i, key in enumerate(ids)]

    def batch_elements_kwargs(self) -> dict:
        return dict(self._batching)

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        return sum(8 + 4 * np.size(row) for _, row in batch)

    def get_metrics_namespace(self) -> str:
        return "tfexplain"

    def validate_inference_args(self, inference_args: Optional[dict]):
        if inference_args:
            raise ValueError("tfexplain.beam.Explain takes no inference_args (the seed is the handler's).")


class Explain(beam.PTransform):
    """``PCollection[(row_id, row)]`` -> ``PCollection[(row_id, {name: numpy array})]``: the rows'
    explanations by the exported explainer at ``path`` (``tfexplain.export``), through
    ``RunInference``.

    row_id: int in [0, 2**32), the row's global index (its random stream); row: d numbers (list,
    tuple or array). The dict holds the ``explain_rows`` signature's outputs for that row, shaped
    as one row of the in-process ``Explanation``'s fields: ``values`` [d] (or [d, outputs]),
    ``base_values``, ``model_output``, ``stderr`` where the method estimates one, and Lime's
    ``intercept``, ``score``, ``local_pred``, ``contributions``. The numbers equal those of
    ``explainer(x, seed)`` for row ``row_id`` of ``x``, whatever the runner's sharding and batching.

    seed: int >= 0. min_batch_size, max_batch_size: see :class:`ExplainModelHandler`.
    """

    def __init__(self, path, seed: int = 0, *, min_batch_size: Optional[int] = None,
                 max_batch_size: Optional[int] = None):
        super().__init__()
        self.handler = ExplainModelHandler(path, seed, min_batch_size=min_batch_size, max_batch_size=max_batch_size)

    def expand(self, pcoll):
        return pcoll | "RunInference" >> RunInference(self.handler)


# ---- the ready pipeline -----------------------------------------------------------------------

def _match(pattern: str) -> list[str]:
    result = FileSystems.match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


def _input_format(pattern: str, given: Optional[str]) -> str:
    if given:
        return given
    name = pattern[:-3] if pattern.endswith(".gz") else pattern
    if name.endswith((".csv", ".txt")):
        return "csv"
    if name.endswith((".tfrecord", ".tfrecords", ".tfr")):
        return "tfrecord"
    raise ValueError(f"cannot tell the format of --input {pattern!r} from its name: pass --input-format csv or "
                     f"tfrecord.")


class _CsvRows:
    """Parses a CSV line into (row_id or None, float32 row), the id from column ``id_index``."""

    def __init__(self, id_index: Optional[int]):
        self.id_index = id_index

    def __call__(self, line: str, line_id: Optional[int] = None):
        cells = [c.strip() for c in line.split(",")]
        key = line_id
        if self.id_index is not None:
            if self.id_index >= len(cells):
                raise ValueError(f"CSV line {line!r:.200} has no id column {self.id_index}.")
            text = cells.pop(self.id_index)
            try:
                key = int(text)
            except ValueError:
                raise ValueError(f"CSV id {text!r} is not an integer (line {line!r:.200}).") from None
        try:
            row = np.array([float(c) for c in cells], np.float32)
        except ValueError:
            raise ValueError(f"CSV line {line!r:.200}: the feature columns must be numbers.") from None
        return _row_id(key), row


def _not_blank(line: str) -> bool:
    return bool(line.strip())


def _csv_header(path: str) -> list[str]:
    with FileSystems.open(path) as f:
        first = io.TextIOWrapper(f, encoding="utf-8").readline()
    return [c.strip() for c in first.rstrip("\r\n").split(",")]


def _enumerate_csv(path: str, header: bool, parse: _CsvRows):
    """(line number, row) of one CSV file, read sequentially: data rows numbered from 0 (header and
    blank lines not counted)."""
    with FileSystems.open(path) as f:
        lines = io.TextIOWrapper(f, encoding="utf-8")
        if header:
            next(lines, None)
        i = 0
        for line in lines:
            if line.strip():
                yield parse(line, i)
                i += 1


def _parse_example(record: bytes, feature: str, id_feature: Optional[str], index: Optional[int] = None):
    import tensorflow as tf

    example = tf.train.Example.FromString(record)
    features = example.features.feature
    if feature not in features:
        raise ValueError(f"a tf.train.Example lacks the float feature {feature!r} (has {sorted(features)}).")
    row = np.asarray(features[feature].float_list.value, np.float32)
    key = index
    if id_feature is not None:
        ids = features[id_feature].int64_list.value if id_feature in features else []
        if len(ids) != 1:
            raise ValueError(f"a tf.train.Example lacks the int64 id feature {id_feature!r} (one value).")
        key = ids[0]
    return _row_id(key), row


def _enumerate_tfrecord(path: str, feature: str):
    """(record index, row) of one TFRecord file, read sequentially."""
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    for i, record in enumerate(tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator()):
        yield _parse_example(record, feature, None, i)


def _single_file(pattern: str, what: str) -> str:
    files = _match(pattern)
    if len(files) != 1:
        raise ValueError(
            f"--input {pattern!r} matches {len(files)} files; row ids from {what} need exactly one file. For "
            f"several files give each row its id: --id-column (CSV) or --id-feature (TFRecord).")
    return files[0]


def _to_json(element) -> str:
    key, out = element
    record = {"row_id": key}
    record.update({k: np.asarray(v).tolist() for k, v in out.items()})   # float32 -> float: exact
    return json.dumps(record)


def read_output(prefix: str) -> tuple[np.ndarray, dict]:
    """The JSON-lines shards written by ``python -m tfexplain.beam --output PREFIX``, as
    ``(row_ids [n] int64, {name: array [n, ...]})`` sorted by row id (floats as float32, integers
    as int64: the exact numbers the signature returned)."""
    files = _match(prefix + "*.jsonl")
    if not files:
        raise FileNotFoundError(f"no shards {prefix}*.jsonl")
    records = []
    for path in files:
        with FileSystems.open(path) as f:
            records += [json.loads(line) for line in io.TextIOWrapper(f, encoding="utf-8") if line.strip()]
    records.sort(key=lambda r: r["row_id"])
    ids = np.array([r["row_id"] for r in records], np.int64)
    out = {}
    for key in (records[0] if records else {}):
        if key == "row_id":
            continue
        a = np.asarray([r[key] for r in records])
        out[key] = a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64)
    return ids, out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tfexplain.beam",
        description="Explain every row of a CSV or TFRecord input with an exported explainer (tfexplain.export) "
                    "in an Apache Beam pipeline; writes JSON lines, one object per row: row_id and the "
                    "explain_rows outputs. Other options (--runner, --project, --region, --temp_location, "
                    "--flink_master, ...) go to Beam's PipelineOptions.")
    p.add_argument("--explainer", required=True, help="the SavedModel folder written by tfexplain.export")
    p.add_argument("--input", required=True, help="CSV or TFRecord file pattern (e.g. data.csv, gs://b/part-*.tfrecord)")
    p.add_argument("--output", required=True, help="output prefix: shards PREFIX-SSSSS-of-NNNNN.jsonl")
    p.add_argument("--seed", type=int, default=0, help="the explain seed (default 0)")
    p.add_argument("--input-format", choices=["csv", "tfrecord"],
                   help="default: from the file name (.csv/.txt, .tfrecord/.tfrecords/.tfr, optionally .gz)")
    p.add_argument("--id-column",
                   help="CSV: the column holding each row's id (a header name, or a 0-based index); default: "
                        "the row's number in the file (one file only)")
    p.add_argument("--header", action="store_true",
                   help="CSV: the first line is a header (implied when --id-column is a name)")
    p.add_argument("--feature", default="x", help="TFRecord: the float feature holding a row's d values (default x)")
    p.add_argument("--id-feature",
                   help="TFRecord: the int64 feature holding the row id; default: the record's index in the file "
                        "(one file only)")
    p.add_argument("--min-batch-size", type=int, help="smallest batch of rows per explain call")
    p.add_argument("--max-batch-size", type=int, help="largest batch of rows per explain call")
    p.add_argument("--num-shards", type=int, default=0, help="output shards (default 0: the runner decides)")
    return p


def _rows(p, args):
    """The pipeline's (row_id, row) PCollection from the command line's input options."""
    fmt = _input_format(args.input, args.input_format)
    if fmt == "csv":
        id_index, header = None, args.header
        if args.id_column is not None:
            if args.id_column.lstrip("-").isdigit():
                id_index = int(args.id_column)
            else:
                header = True
                files = _match(args.input)
                if not files:
                    raise ValueError(f"--input {args.input!r} matches no file.")
                names = _csv_header(files[0])
                if args.id_column not in names:
                    raise ValueError(f"--id-column {args.id_column!r} is not in the CSV header {names}.")
                id_index = names.index(args.id_column)
        parse = _CsvRows(id_index)
        if id_index is None:
            path = _single_file(args.input, "line numbers")
            return (p | "File" >> beam.Create([path])
                    | "ReadNumbered" >> beam.FlatMap(_enumerate_csv, header, parse)
                    | "Spread" >> beam.Reshuffle())
        return (p | "Read" >> beam.io.ReadFromText(args.input, skip_header_lines=int(header))
                | "Rows" >> beam.Filter(_not_blank) | "Parse" >> beam.Map(parse))
    if args.id_feature is None:
        path = _single_file(args.input, "record indices")
        return (p | "File" >> beam.Create([path])
                | "ReadNumbered" >> beam.FlatMap(_enumerate_tfrecord, args.feature)
                | "Spread" >> beam.Reshuffle())
    return (p | "Read" >> beam.io.ReadFromTFRecord(args.input)
            | "Parse" >> beam.Map(_parse_example, args.feature, args.id_feature))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tfexplain.beam``: reads the rows, explains them with :class:`Explain`, writes
    ``PREFIX-SSSSS-of-NNNNN.jsonl`` (one JSON object a line: ``row_id`` and the signature's outputs as
    nested lists; :func:`read_output` reads them back). Options it does not know are Beam's
    pipeline options (``--runner``, ...). Returns the exit code (2 for bad arguments)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args, beam_args = _parser().parse_known_args(argv)
    p = beam.Pipeline(options=PipelineOptions(beam_args))
    try:  # bad arguments and inputs are found while the pipeline is built, before it runs
        explain = Explain(args.explainer, _check_seed(args.seed), min_batch_size=args.min_batch_size,
                          max_batch_size=args.max_batch_size)
        if args.num_shards < 0:
            raise ValueError(f"--num-shards must be >= 0, got {args.num_shards}.")
        (_rows(p, args)
         | "Explain" >> explain
         | "Json" >> beam.Map(_to_json)
         | "Write" >> beam.io.WriteToText(args.output, file_name_suffix=".jsonl", num_shards=args.num_shards))
    except (TypeError, ValueError) as err:
        print(f"python -m tfexplain.beam: error: {err}", file=sys.stderr)
        return 2
    p.run().wait_until_finish()
    return 0


if __name__ == "__main__":
    # run the importable module, not this __main__ copy, so that the classes pickled to the workers
    # refer to tfexplain.beam
    from tfexplain import beam as _module

    sys.exit(_module.main())
