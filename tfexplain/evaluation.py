"""Batched, chunked model evaluation: peak memory is bounded by ``max_rows`` model-input rows,
whatever the number of instances, samples and background rows; and the sizes that bound it (an
explainer's default ``batch_size``, an instance's samples cut into pieces, instances per chunk).

Chunks are consecutive dynamic slices of equal size (the last one starting early rather than padded)
walked by one graph loop: no index vectors, so XLA sees dynamic slices of the loop counter and no [chunk size] constants
(TensorFlow folds ``tf.range`` of a static length into a literal, which would grow the compiled
program with the chunk size).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from . import _xla
from .samplers import Sample

DEFAULT_BATCH_SIZE = 2**17     # model rows per call for tables
DEFAULT_BATCH_FLOATS = 2**24   # other inputs (images, ...): model-input floats per call (64 MB of float32)


def default_batch_size(row_floats: int, tabular: bool) -> int:
    """An explainer's default ``batch_size`` (model rows per call): 2^17 rows for tables; a row of other
    inputs (an image) is many floats, so as many rows as fit 2^24 floats (at least 1, at most 2^17)."""
    if tabular:
        return DEFAULT_BATCH_SIZE
    return max(1, min(DEFAULT_BATCH_SIZE, DEFAULT_BATCH_FLOATS // max(1, row_floats)))


def even_pieces(units: int, cap: int) -> tuple[int, int]:
    """(units per piece, pieces): ``units`` > 0 cut into the fewest pieces of at most ``cap`` units, as
    equal as they can be (the last piece padded to the others' size)."""
    n_pieces = -(-units // cap)
    return -(-units // n_pieces), n_pieces


def pieces(units: int, floats_per_unit: int, budget_floats: int, fixed: int = 0) -> tuple[int, int]:
    """(units per piece, pieces): an instance's ``units`` samples (or sample pairs) of
    ``floats_per_unit`` floats each cut into equal pieces that fit ``budget_floats`` (``batch_size``
    model-input rows) next to ``fixed`` floats held per instance, so that no budget of samples is ever
    held at once. One piece when it all fits; (0, 1) for no units."""
    if units == 0:
        return 0, 1
    return even_pieces(units, max(1, (budget_floats - fixed) // max(1, floats_per_unit)))


def instances_per_chunk(batch_size: int, row_floats: int, instance_floats: int) -> int:
    """Instances sampled and solved together: as many as fit the floats of one model-input chunk
    (``batch_size`` rows of ``row_floats``) when each holds ``instance_floats`` outside the model call;
    at least 1."""
    return max(1, batch_size * row_floats // max(1, instance_floats))


def even_chunks(total, cap):
    """(number of chunks, chunk size) covering ``total`` items in chunks of at most ``cap``, padding < chunks
    (Python ints for a Python int ``total``, else int32 tensors)."""
    if isinstance(total, int):
        num = max(1, -(-total // cap))
        return num, max(1, -(-total // num))
    total = tf.cast(total, tf.int32)
    num = tf.maximum(1, (total + cap - 1) // cap)
    size = (total + num - 1) // num
    return num, tf.maximum(size, 1)


def _pad_to(t, length, axis):
    """Pads ``t`` along ``axis`` to ``length`` by repeating its last slice (padding is computed and dropped)."""
    pad = length - tf.shape(t)[axis]
    last = tf.gather(t, [tf.shape(t)[axis] - 1], axis=axis)
    return tf.concat([t, tf.repeat(last, pad, axis=axis)], axis)


def chunked_map(fn, elems, cap, out_spec):
    """Applies ``fn(chunk)`` to consecutive chunks of at most ``cap`` rows of ``elems`` (a nest of tensors
    sharing their leading dimension) inside one graph loop and concatenates the results. Every chunk
    holds the same number of rows, so the last one starts early (overlapping the one before by less
    than a chunk, where it would otherwise be padded): each chunk is a dynamic slice of the inputs,
    which are never copied whole; the overlapping rows' results are taken from the earlier chunk."""
    flat = tf.nest.flatten(elems)
    # a static batch (e.g. an XLA program's chunk) gives static slices, which XLA needs to fuse them
    total = flat[0].shape[0] if flat[0].shape[0] is not None else tf.shape(flat[0])[0]
    num, size = even_chunks(total, cap)
    overlap = num * size - total                       # < num

    def piece(t, start):
        rest = t.shape[1:]
        rest = rest.as_list() if rest.is_fully_defined() else tf.unstack(tf.shape(t)[1:], rest.rank)
        return tf.slice(t, tf.stack([start] + [0] * (t.shape.rank - 1)), tf.stack([size] + rest))

    def chunk(j):
        start = tf.minimum(j * size, total - size)
        return fn(tf.nest.map_structure(lambda t: piece(t, start), elems))

    out = tf.map_fn(chunk, tf.range(num), fn_output_signature=out_spec, parallel_iterations=1)

    def join(t):   # [num, size, ...] -> [total, ...] without the last chunk's first `overlap` rows
        t = tf.reshape(t, tf.concat([[num * size], tf.shape(t)[2:]], 0))
        head = (num - 1) * size
        return tf.concat([t[:head], t[head + overlap:]], 0)

    return tf.nest.map_structure(join, out)


def accumulate_pieces(piece_fn, n_pieces: int, zeros, merge=None):
    """Sum over j < ``n_pieces`` of ``piece_fn(j)`` (a nest shaped like ``zeros``; or their ``merge``,
    ``merge(total, piece)``), in one graph loop: an instance's samples are generated, evaluated and
    reduced piece by piece, so only one piece is ever held. A single piece is called directly (no
    loop) and merged into ``zeros`` when ``merge`` is given."""
    if n_pieces == 1:
        part = piece_fn(tf.constant(0))
        return part if merge is None else merge(zeros, part)
    if merge is None:
        def merge(total, part):
            return tf.nest.map_structure(tf.add, total, part)

    def body(j, total):   # the loop keeps the totals' static shapes (a piece may know fewer)
        return j + 1, tf.nest.map_structure(lambda t, z: tf.ensure_shape(t, z.shape), merge(total, piece_fn(j)),
                                            zeros)

    _, total = tf.while_loop(lambda j, _: j < n_pieces, body, (tf.constant(0), zeros),
                             maximum_iterations=n_pieces)
    return total


def evaluate(model_fn, masker, x, sample, max_rows: int, n_outputs: int):
    """Values of every (instance, sample) pair: [c, m, o].

    model_fn: [rows, d] -> [rows, o] (targets already selected); masker turns pairs into rows. The
    m samples of an instance are cut into equal pieces of at most ``max_rows // rows_per_sample``
    pairs; (instance, piece) units are evaluated as many per chunk as fit in ``max_rows`` model rows.
    """
    c = tf.shape(sample.z)[0]
    m = sample.z.shape[1]
    if m is None:
        raise ValueError("evaluate() needs a static number of samples per instance.")
    if m == 0:  # nothing to evaluate (d = 1: only the empty and full coalitions)
        return tf.zeros([c, 0, n_outputs])
    cap = max(1, max_rows // masker.rows_per_sample)   # pairs per chunk
    per_piece, n_pieces = even_pieces(m, cap)

    def units(t):  # [c, m, ...] -> [c * n_pieces, per_piece, ...]
        t = _pad_to(t, n_pieces * per_piece, 1) if n_pieces * per_piece != m else t
        return tf.reshape(t, tf.concat([[c * n_pieces, per_piece], tf.shape(t)[2:]], 0))

    elems = {"x": tf.repeat(x, n_pieces, axis=0) if n_pieces > 1 else x, "z": units(sample.z)}
    if sample.points is not None:
        elems["points"] = units(sample.points)

    def chunk(e):
        u = tf.shape(e["z"])[0]
        xi = tf.reshape(tf.broadcast_to(e["x"][:, None, :], [u, per_piece, x.shape[-1]]), [-1, x.shape[-1]])
        zi = tf.reshape(e["z"], [u * per_piece, -1])
        pi = tf.reshape(e["points"], [u * per_piece, -1]) if "points" in e else None
        values = masker.reduce(model_fn(masker.inputs(xi, zi, pi)))
        return tf.reshape(values, [u, per_piece, n_outputs])

    values = chunked_map(chunk, elems, max(1, cap // per_piece),
                         tf.TensorSpec([None, per_piece, n_outputs], tf.float32))
    return tf.reshape(values, [c, n_pieces * per_piece, n_outputs])[:, :m]


class _CopiesMasker:
    """The floor's rows: each pair's instance (flattened model input [P, D]) ``rows_per_sample`` times,
    every copy distinct so that nothing can be cached or folded away: float inputs slightly scaled,
    integer inputs (token ids) rotated along the row (copy j starts at position j mod D: still valid
    ids, the same work for the model)."""

    def __init__(self, rows_per_sample: int, spec: tf.TensorSpec):
        self.rows_per_sample = rows_per_sample
        self._shape, self._dtype = list(spec.shape[1:]), spec.dtype
        width = int(np.prod(self._shape))
        self._scale = (1.0 + 1e-6 * (np.arange(rows_per_sample) % 7)).astype(np.float32)
        self._rotate = ((np.arange(width)[None, :] + np.arange(rows_per_sample)[:, None]) % width).astype(np.int32)

    def inputs(self, x, z, points=None):
        if self._dtype.is_floating:
            rows = x[:, None, :] * tf.constant(self._scale)[None, :, None]
        else:
            rows = tf.gather(x, tf.constant(self._rotate), axis=1)          # [P, copies, D]
        return tf.cast(tf.reshape(rows, [-1, *self._shape]), self._dtype)

    def reduce(self, y):
        return tf.reduce_mean(tf.reshape(y, [-1, self.rows_per_sample, y.shape[-1]]), axis=1)


def model_floor(explainer, jit_compile: bool | None = None):
    """The model alone on the rows an explain call of ``explainer`` evaluates (n * samples * rows per
    sample, built in-graph from its instances x and evaluated in the same chunks of ``batch_size``
    rows): the floor an explainer's cost is compared with (benchmarks). x is the model's own input
    (``explainer.masker.input_spec``: tables [n, d], images [n, H, W, C], token ids [n, L]); returns a
    ``tf.function`` of x giving the sum of the outputs."""
    spec = explainer.masker.input_spec
    if not isinstance(spec, tf.TensorSpec) or not (spec.dtype.is_floating or spec.dtype.is_integer):
        raise ValueError(f"model_floor needs one numeric model input, not {spec!r}.")
    masker = _CopiesMasker(explainer.masker.rows_per_sample, spec)
    jit = explainer.jit_compile if jit_compile is None else jit_compile
    # a partial, not a closure: TF counts retracing per code object, so many floors would warn
    return tf.function(functools.partial(_floor, explainer, masker, jit), jit_compile=jit, autograph=False,
                       input_signature=[spec])


def _floor(explainer, masker, jit, x):
    with _xla.tracing(jit):   # the model's rows as the explainer's XLA program evaluates them
        return _floor_sum(explainer, masker, x)


def _floor_sum(explainer, masker, x):
    n = tf.shape(x)[0]
    flat = tf.reshape(tf.cast(x, tf.float32), [n, int(np.prod(x.shape[1:]))])      # ids < 2^24: exact
    sample = Sample(tf.zeros([n, explainer.sampler.n_samples, 0]), None, None)
    return tf.reduce_sum(evaluate(explainer.model_outputs, masker, flat, sample, explainer.batch_size,
                                  explainer.n_outputs))
