"""Explaining whole datasets: streamed in batches with global row ids, over tf.distribute replicas,
into memory or into resumable shards on disk.

Every row is explained with the random stream of its global index (its position in the dataset), so
the values are those of one call on all rows, bit for bit, whatever the batch size, the number of
replicas, or how often the run was interrupted and resumed. With ``out=``, host memory holds one batch of
input and one shard of results at a time (without it, the returned Explanation holds every row); model
evaluation is bounded by the explainer's ``batch_size`` as in any call.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zlib
from dataclasses import fields

import numpy as np
import tensorflow as tf

from . import _nest
from ._validation import MAX_ROW_ID, as_int, as_seed, check_columns, frame_columns
from .explanation import Explanation

MANIFEST = "manifest.json"
FORMAT = "tfexplain.shards/1"
WORK_PER_BATCH = 2**22   # default batch: whole chunks of instances worth about this many model rows,
MAX_BATCH_ROWS = 2**13   # and at most this many rows (unless one chunk is more)
ROWS_PER_SHARD = 2**14   # default shard: about this many rows (whole batches)
_BLOCK = 4096            # rows read at a time from an array or a dataset of rows
_ARRAYS = [f.name for f in fields(Explanation) if f.name in (
    "values", "base_values", "data", "model_output", "n_evals", "stderr", "intercept", "score", "local_pred",
    "contributions", "target", "feature_conditions", "segments", "tokens")]


def _plain(a: np.ndarray) -> np.ndarray:
    """An array ``np.load(..., allow_pickle=False)`` reads back: strings (sentences, words) as unicode."""
    a = np.asarray(a)
    return a.astype(str) if a.dtype == object else a


def _bytes(x) -> bytes:
    """The rows' content as bytes (for the shards' CRC32): strings by their text, not their pointers;
    a multi-input model's inputs one after the other."""
    if isinstance(x, (dict, list)):
        return b"".join(_bytes(v) for v in tf.nest.flatten(x))
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind in "US":
        return "\0".join(map(str, x.ravel())).encode()
    return np.ascontiguousarray(x).tobytes()


# ---- input ---------------------------------------------------------------------------------------
def _first(element):
    """x of an element that is x, (x, y) or (x, y, sample_weight)."""
    return element[0] if isinstance(element, (tuple, list)) else element


def _source(data, masker, columns):
    """(iterator of validated blocks of consecutive rows, as ``masker.check`` gives them (float32 [b, d]
    for tables), total rows or None when unknown)."""
    if not isinstance(masker.input_spec, tf.TensorSpec):
        return _multi_source(data, masker)
    rank = masker.input_spec.shape.rank - 1          # an instance's rank: 1 for a table's row [d]

    def check(block):
        return masker.check(block, "data")

    if isinstance(data, tf.data.Dataset):
        spec = _first(data.element_spec)
        if not isinstance(spec, tf.TensorSpec):
            raise TypeError(f"`data` must be a tf.data.Dataset of x or (x, y) tensors, got elements "
                            f"{data.element_spec}.")
        if spec.shape.rank not in (rank, rank + 1):
            raise ValueError(f"`data`'s x must be instances of rank {rank} or batches of them (rank {rank + 1}), "
                             f"got shape {spec.shape}.")
        ds = data.map(lambda *e: e[0]) if isinstance(data.element_spec, (tuple, list)) else data
        total = None
        if spec.shape.rank == rank:   # rows: read them in blocks
            card = int(ds.cardinality())
            total = card if card >= 0 else None
            ds = ds.batch(_BLOCK)
        return (check(b) for b in ds.as_numpy_iterator()), total
    if isinstance(data, (np.ndarray, tf.Tensor)) or frame_columns(data) is not None:
        if columns is not None:
            check_columns(data, columns, "data")
        if len(data.shape) != rank + 1:
            raise ValueError(f"`data` must be a batch of instances (rank {rank + 1}: [rows, features] for a "
                             f"table), got shape {tuple(data.shape)}.")
        total = int(data.shape[0])
        rows = data.iloc if frame_columns(data) is not None else data
        return (check(rows[i:i + _BLOCK]) for i in range(0, total, _BLOCK)), total
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(f"`data` must be an array, DataFrame, tensor, tf.data.Dataset or an iterable of "
                        f"batches, got {type(data).__name__}.")

    def blocks():
        for element in data:
            x = _first(element)
            if columns is not None:
                check_columns(x, columns, "data")
            if np.ndim(x) == rank + 1 and len(x) == 0:
                continue
            yield check(x)

    return blocks(), None


def _multi_source(data, masker):
    """``_source`` for a multi-input model (a ``Composite`` masker): a dict (list) of arrays / frames /
    tensors with the same rows, a ``tf.data.Dataset`` of dict (list) elements (rows or batches, or
    ``(x, y)`` tuples of them), or an iterable of dict (list) batches."""
    def check(block):
        return masker.check(block, "data")

    ranks = [len(p.input_spec.shape) - 1 for p in masker.parts]

    def inputs_like(value, kind) -> bool:   # the model's inputs (a dict / list of `kind`), not (inputs, y)
        if masker.is_dict:
            return isinstance(value, dict) and set(value) == set(masker.keys) and all(
                isinstance(v, kind) for v in value.values())
        return isinstance(value, (list, tuple)) and len(value) == len(ranks) and all(isinstance(v, kind) for v in value)

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if inputs_like(spec, tf.TensorSpec):
            pairs = False
        elif isinstance(spec, tuple) and spec and inputs_like(spec[0], tf.TensorSpec):
            pairs = True     # (inputs, y) or (inputs, y, sample_weight), as Keras' fit takes them
        else:
            raise TypeError(f"`data` must be a tf.data.Dataset of the model's inputs ({masker.keys}) or (inputs, y) "
                            f"tuples, got elements {data.element_spec}.")
        x_spec = spec[0] if pairs else spec
        leaves = masker.leaves(x_spec if masker.is_dict else list(x_spec))
        ds = data.map(lambda *e: e[0]) if pairs else data
        total = None
        if leaves[0].shape.rank == ranks[0]:   # rows: read them in blocks
            card = int(ds.cardinality())
            total = card if card >= 0 else None
            ds = ds.batch(_BLOCK)
        return (check(b) for b in ds.as_numpy_iterator()), total
    inputs_given = isinstance(data, dict) or (not masker.is_dict and isinstance(data, (list, tuple))
                                              and len(data) == len(ranks)
                                              and not any(isinstance(v, (list, tuple, dict)) for v in data))
    if inputs_given:
        whole = check(dict(data) if isinstance(data, dict) else list(data))   # validates every row at once
        total = _nest.n_rows(whole)
        return (_nest.take(whole, slice(i, i + _BLOCK)) for i in range(0, total, _BLOCK)), total
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(f"`data` must be the model's inputs ({masker.keys}), a tf.data.Dataset or an iterable of "
                        f"batches of them, got {type(data).__name__}.")
    # a batch, or an (inputs, y[, sample_weight]) tuple whose first element is the inputs
    return (check(e[0] if isinstance(e, tuple) and len(e) in (2, 3) and inputs_like(e[0], object) else e)
            for e in data), None


def _rebatch(blocks, size: int):
    """Consecutive blocks of rows (arrays, or a multi-input model's dicts / lists of them) -> batches of
    exactly ``size`` rows (the last one shorter)."""
    held, count = [], 0
    for block in blocks:
        while _nest.n_rows(block):
            take = _nest.take(block, slice(0, size - count))
            block = _nest.take(block, slice(_nest.n_rows(take), None))
            held.append(take)
            count += _nest.n_rows(take)
            if count == size:
                yield held[0] if len(held) == 1 else _nest.concat(held)
                held, count = [], 0
    if count:
        yield _nest.concat(held)


# ---- devices --------------------------------------------------------------------------------------
def _numpy(out) -> dict:
    return {k: v.numpy() for k, v in out.items()}


class _Runner:
    """Explains one batch of rows with their ids, on one device or split over a strategy's replicas."""

    def __init__(self, explainer, seed: int, strategy):
        self.explainer, self.strategy = explainer, strategy
        self.seed = tf.constant(seed, tf.int64)
        self.replicas = 1 if strategy is None else strategy.num_replicas_in_sync
        if strategy is not None:
            self._step = explainer.replica_fn(strategy)

    def _distribute(self, x: np.ndarray, rows: np.ndarray):
        """Contiguous parts of the batch, one per replica in replica order (a part may be empty), each
        made on its replica's device. With XLA, parts are whole chunks of ``instances_per_chunk`` rows
        where they can be: there a row's numbers depend on whether it ran in a full chunk (see
        ``explain_dataset``); and where every chunk is padded to the full size (``fixed_chunks``), so
        that no replica pads a part of its own."""
        whole = self.explainer.jit_compile or getattr(self.explainer, "fixed_chunks", False)
        unit = self.explainer.instances_per_chunk if whole else 1
        n = _nest.n_rows(x)
        per = -(-n // (self.replicas * unit)) * unit
        bounds = np.minimum(np.arange(self.replicas + 1) * per, n)
        parts = [(_nest.take(x, slice(a, b)), rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        devices = self.strategy.extended.worker_devices   # this worker's replicas

        def part(k):
            def value(ctx):
                replica = ctx.replica_id_in_sync_group
                with tf.device(devices[replica % len(devices)]):
                    return _nest.constant(parts[replica][k])
            return value

        return (self.strategy.experimental_distribute_values_from_function(part(0)), self.seed,
                self.strategy.experimental_distribute_values_from_function(part(1)))

    def __call__(self, x: np.ndarray, rows: np.ndarray) -> dict:
        if self.strategy is None:
            return _numpy(self.explainer.explain_fn(_nest.constant(x), self.seed, tf.constant(rows)))
        out = self._step(*self._distribute(x, rows))
        local = {k: self.strategy.experimental_local_results(v) for k, v in out.items()}
        if all(len(v) == self.replicas for v in local.values()):   # every replica is on this machine
            return {k: np.concatenate([t.numpy() for t in v]) for k, v in local.items()}
        # MultiWorkerMirroredStrategy: all-gather every worker's replicas, in replica order
        return {k: self.strategy.gather(v, axis=0).numpy() for k, v in out.items()}


# ---- shards ---------------------------------------------------------------------------------------
def _write_atomic(path: str, write) -> None:
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _save_manifest(folder: str, manifest: dict) -> None:
    def write(tmp):
        with open(tmp, "w") as fh:
            json.dump(manifest, fh, indent=1)
    _write_atomic(os.path.join(folder, MANIFEST), write)


def _shard_name(k: int) -> str:
    return f"shard-{k:06d}.npz"


def _run_config(explainer, seed, batch_size, shard_size) -> dict:
    """What a resumed run must share with the one that wrote the shards."""
    return {"method": explainer.method, "seed": seed, "batch_size": batch_size, "shard_size": shard_size,
            "n_features": explainer.n_features, "feature_names": list(explainer.feature_names),
            "output_names": list(explainer.output_names), "link": explainer.link,
            "outputs": sorted(explainer.output_signature), "n_evals_per_instance": explainer.n_evals_per_instance,
            "settings": _settings(explainer), "masker": [type(explainer.masker).__name__, _settings(explainer.masker)],
            **_input_layout(explainer.masker)}


def _input_layout(masker) -> dict:
    """A multi-input model's inputs (keys, players each, dict or list) for the shards' Explanations."""
    if isinstance(masker.input_spec, tf.TensorSpec):
        return {}
    return {"inputs": [str(k) for k in masker.keys] if masker.is_dict else list(masker.keys),
            "input_players": masker.sizes, "inputs_as": "dict" if masker.is_dict else "list"}


def _settings(obj) -> dict:
    """The plain settings of an explainer or masker (numbers, strings, flags: sampler choice, adjust,
    n_bootstrap, kernel width, fill, mask token, ...), so a resume with other settings is refused."""
    return {k: v for k, v in sorted(vars(obj).items())
            if isinstance(v, (bool, int, float, str)) and not isinstance(v, np.generic)}


def _open_folder(out, config) -> dict:
    """The manifest of ``out``: a new one for an empty or missing folder, else the existing one, which
    must come from a run with the same configuration."""
    folder = os.fspath(out)
    path = os.path.join(folder, MANIFEST)
    if os.path.exists(path):
        with open(path) as fh:
            manifest = json.load(fh)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"`out` {folder!r} holds a manifest that is not tfexplain's ({manifest.get('format')!r}).")
        old = manifest["config"]
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if diff:
            raise ValueError(f"`out` {folder!r} holds shards of another run (different {', '.join(diff)}: "
                             f"{', '.join(f'{k}={old.get(k)!r}' for k in diff)}); resume with the same explainer, "
                             f"seed and batch / shard sizes, or use a new folder.")
        return manifest
    if os.path.isdir(folder) and [f for f in os.listdir(folder) if not f.startswith(".")]:
        raise FileExistsError(f"`out` {folder!r} is not empty and has no {MANIFEST}: use a new or empty folder.")
    os.makedirs(folder, exist_ok=True)
    manifest = {"format": FORMAT, "config": config, "shards": {}, "rows": None, "complete": False}
    _save_manifest(folder, manifest)
    return manifest


class ExplanationShards:
    """The sharded result of ``explain_dataset(..., out=DIR)``: ``DIR/manifest.json`` and one
    ``shard-NNNNNN.npz`` per ``shard_size`` rows (plain arrays, ``allow_pickle=False``).

    len(shards): rows; shards.n_shards; shards.complete: whether every row was explained.
    shards.shard(k) / iter(shards): one shard at a time as an :class:`Explanation` (bounded memory);
    shards.row_ids(k): the global row ids of shard k; shards.load(): all rows as one Explanation.
    Open a folder later with ``tfexplain.load_shards(DIR)``.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        with open(os.path.join(self.path, MANIFEST)) as fh:
            self.manifest = json.load(fh)
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{self.path!r} is not a folder of tfexplain shards.")
        self._keys = sorted(int(k) for k in self.manifest["shards"])

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    @property
    def n_shards(self) -> int:
        return len(self._keys)

    def __len__(self) -> int:
        return sum(s["rows"] for s in self.manifest["shards"].values())

    def _arrays(self, k: int) -> dict:
        entry = self.manifest["shards"][str(k)]
        with np.load(os.path.join(self.path, entry["file"]), allow_pickle=False) as f:
            return {name: f[name] for name in f.files}

    def row_ids(self, k: int) -> np.ndarray:
        return self._arrays(k)["row_ids"]

    def shard(self, k: int) -> Explanation:
        arrays = self._arrays(k)
        arrays.pop("row_ids")
        config = self.manifest["config"]
        layout = {}
        if "inputs" in config:   # a multi-input model: data/<input> entries
            keys = config["inputs"]
            leaves = [arrays.pop(f"data/{key}") for key in keys]
            arrays["data"] = dict(zip(keys, leaves)) if config["inputs_as"] == "dict" else leaves
            layout = {"inputs": list(keys), "input_players": list(config["input_players"])}
        return Explanation(feature_names=list(config["feature_names"]), output_names=list(config["output_names"]),
                           method=config["method"], link=config["link"],
                           seconds=float(self.manifest["shards"][str(k)]["seconds"]), **layout, **arrays)

    def __iter__(self):
        return (self.shard(k) for k in self._keys)

    def load(self) -> Explanation:
        """Every shard, in row order, as one Explanation (holds all rows in memory)."""
        parts = list(self)
        if not parts:
            raise ValueError(f"{self.path!r} holds no shards yet.")
        joined = {}
        for name in _ARRAYS:
            values = [getattr(p, name) for p in parts]
            joined[name] = None if values[0] is None else _nest.concat(values) if name == "data" else \
                np.concatenate(values)
        return Explanation(feature_names=parts[0].feature_names, output_names=parts[0].output_names,
                           method=parts[0].method, link=parts[0].link, seconds=sum(p.seconds for p in parts),
                           inputs=parts[0].inputs, input_players=parts[0].input_players, **joined)

    def __repr__(self):
        return (f"ExplanationShards({self.path!r}, rows={len(self)}, shards={self.n_shards}, "
                f"complete={self.complete})")


def load_shards(path) -> ExplanationShards:
    """Opens a folder written by ``explain_dataset(..., out=path)``."""
    return ExplanationShards(path)


# ---- the loop -------------------------------------------------------------------------------------
def default_batch_size(explainer, replicas: int = 1) -> int:
    """Whole chunks of ``instances_per_chunk`` instances worth about 2^22 model rows and at most 8,192
    rows (or one chunk), per replica."""
    chunk = explainer.instances_per_chunk
    work = explainer.n_evals_per_instance * getattr(explainer, "max_rounds", 1)
    rows = min(WORK_PER_BATCH // max(1, work), MAX_BATCH_ROWS)
    return replicas * chunk * max(1, rows // chunk)


def explain_dataset(explainer, data, seed=0, *, batch_size=None, verbose=1, strategy=None, out=None,
                    shard_size=None):
    """See :meth:`tfexplain.Explainer.explain_dataset`."""
    seed = as_seed(seed)
    if verbose is None or verbose not in (0, 1):  # True == 1, False == 0
        raise ValueError(f"`verbose` must be 0 or 1, got {verbose!r}.")
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"`strategy` must be a tf.distribute.Strategy, got {type(strategy).__name__}.")
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    batch_size = default_batch_size(explainer, replicas) if batch_size is None else \
        as_int(batch_size, "batch_size", minimum=1)
    if out is None:
        if shard_size is not None:
            raise ValueError("`shard_size` applies to results written with `out=`.")
    else:
        shard_size = batch_size * max(1, ROWS_PER_SHARD // batch_size) if shard_size is None else \
            as_int(shard_size, "shard_size", minimum=1)
        if shard_size % batch_size:
            raise ValueError(f"`shard_size` must be a multiple of `batch_size` ({batch_size}), got {shard_size}.")
    blocks, total = _source(data, explainer.masker, explainer.columns)
    run = _Runner(explainer, seed, strategy)
    bar = None
    if verbose:
        import keras
        bar = keras.utils.Progbar(total, unit_name="row")
    start = time.perf_counter()
    if out is None:
        return _to_memory(explainer, run, blocks, batch_size, seed, bar, start)
    return _to_shards(explainer, run, blocks, batch_size, shard_size, seed, bar, os.fspath(out), strategy)


def _explain_batch(explainer, run, x, first: int, seed: int) -> dict:
    n = _nest.n_rows(x)
    rows = np.arange(first, first + n, dtype=np.int64)
    if rows[-1] >= MAX_ROW_ID:
        raise ValueError("`data` has more than 2**32 rows (row ids are 32-bit counters).")
    explainer.masker.check_rows(rows)   # e.g. one segmentation map per image
    out = run(x, rows)
    try:
        explainer.check_outputs(x, seed, rows, out)
    except ValueError as err:
        raise ValueError(f"rows {first}..{first + n - 1} of `data` (instance i of `x` below is row "
                         f"{first} + i): {err}") from None
    return out


def _to_memory(explainer, run, blocks, batch_size, seed, bar, start) -> Explanation:
    xs, outs, done = [], [], 0
    for x in _rebatch(blocks, batch_size):
        outs.append(_explain_batch(explainer, run, x, done, seed))
        xs.append(x)
        done += _nest.n_rows(x)
        if bar is not None:
            bar.update(done)
    if not xs:
        raise ValueError("`data` has no rows.")
    joined = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    return explainer.explanation(_nest.concat(xs), joined, time.perf_counter() - start)


class _Shard:
    """Rows of one shard being read: their inputs and, unless finished earlier, their outputs."""

    def __init__(self, k: int, first: int):
        self.k, self.first, self.rows, self.crc = k, first, 0, 0
        self.xs, self.outs = [], []
        self.start = time.perf_counter()

    def add(self, x, out=None):
        """Rows x of the shard and their outputs (None: the shard was finished earlier)."""
        self.crc = zlib.crc32(_bytes(x), self.crc)
        self.rows += _nest.n_rows(x)
        if out is not None:
            self.xs.append(x)
            self.outs.append(out)


def _to_shards(explainer, run, blocks, batch_size, shard_size, seed, bar, folder, strategy) -> ExplanationShards:
    manifest = _open_folder(folder, _run_config(explainer, seed, batch_size, shard_size))
    finished = manifest["shards"]
    writer = strategy is None or strategy.extended.should_checkpoint  # MultiWorker: only the chief writes

    def close(shard: _Shard):
        entry = finished.get(str(shard.k))
        if entry is not None:  # finished in an earlier run: the rows must be the same
            if (entry["first_row"], entry["rows"], entry["crc32"]) != (shard.first, shard.rows, shard.crc):
                raise ValueError(f"rows {shard.first}..{shard.first + shard.rows - 1} of `data` differ from those "
                                 f"{entry['file']} in `out` was computed from: resume with the same data.")
            return
        x = _nest.concat(shard.xs)
        out = {k: np.concatenate([o[k] for o in shard.outs]) for k in shard.outs[0]}
        exp = explainer.explanation(x, out, time.perf_counter() - shard.start)
        arrays = {name: _plain(getattr(exp, name)) for name in _ARRAYS
                  if getattr(exp, name) is not None and name != "data"}
        arrays.update(_data_arrays(exp.data))
        arrays["row_ids"] = np.arange(shard.first, shard.first + shard.rows, dtype=np.int64)
        entry = {"file": _shard_name(shard.k), "first_row": shard.first, "rows": shard.rows,
                 "seconds": exp.seconds, "crc32": shard.crc}
        if writer:
            _write_atomic(os.path.join(folder, entry["file"]), lambda tmp: _savez(tmp, arrays))
            finished[str(shard.k)] = entry
            _save_manifest(folder, manifest)

    per_shard = shard_size // batch_size
    shard, done = None, 0
    for b, x in enumerate(_rebatch(blocks, batch_size)):
        k = b // per_shard
        if shard is not None and shard.k != k:
            close(shard)
            shard = None
        if shard is None:
            shard = _Shard(k, done)
        shard.add(x, None if str(k) in finished else _explain_batch(explainer, run, x, done, seed))
        done += _nest.n_rows(x)
        if bar is not None:
            bar.update(done)
    if shard is None:
        raise ValueError("`data` has no rows.")
    close(shard)
    if writer:
        manifest["rows"], manifest["complete"] = done, True
        _save_manifest(folder, manifest)
    return ExplanationShards(folder)


def _data_arrays(data) -> dict:
    """A shard's ``data`` entries: ``data``, or one ``data/<input>`` entry per input of a multi-input model."""
    if isinstance(data, dict):
        return {f"data/{k}": _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return {f"data/{i}": _plain(v) for i, v in enumerate(data)}
    return {"data": _plain(data)}


def _savez(path, arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
