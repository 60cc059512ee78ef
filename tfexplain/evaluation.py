"""Batched, chunked model evaluation: peak memory is bounded by ``max_rows`` model-input rows,
whatever the number of instances, samples and background rows."""

from __future__ import annotations

import tensorflow as tf


def even_chunks(total, cap):
    """(number of chunks, chunk size) covering ``total`` items in chunks of at most ``cap``, padding < chunks."""
    total = tf.cast(total, tf.int32)
    num = tf.maximum(1, (total + cap - 1) // cap)
    size = (total + num - 1) // num
    return num, tf.maximum(size, 1)


def chunked_map(fn, total, cap, out_spec):
    """Applies ``fn(indices [size]) -> nest of [size, ...]`` over indices 0..total-1 in chunks of at most
    ``cap`` (the last chunk repeats index total-1) inside one graph loop, and concatenates."""
    num, size = even_chunks(total, cap)

    def body(i):
        idx = tf.minimum(i * size + tf.range(size), total - 1)
        return fn(idx)

    out = tf.map_fn(body, tf.range(num), fn_output_signature=out_spec, parallel_iterations=1)
    return tf.nest.map_structure(
        lambda t: tf.reshape(t, tf.concat([[num * size], tf.shape(t)[2:]], 0))[:total], out)


def evaluate(model_fn, masker, x, sample, max_rows: int, n_outputs: int):
    """Values of every (instance, sample) pair: [c, m, o].

    model_fn: [rows, d] -> [rows, o] (targets already selected); masker turns pairs into rows.
    """
    c = tf.shape(sample.z)[0]
    if sample.z.shape[1] == 0:  # nothing to evaluate (d = 1: only the empty and full coalitions)
        return tf.zeros([c, 0, n_outputs])
    m = tf.shape(sample.z)[1]
    z = tf.reshape(sample.z, [-1, sample.z.shape[-1]])
    points = None if sample.points is None else tf.reshape(sample.points, [-1, sample.points.shape[-1]])
    cap = max(1, max_rows // masker.rows_per_sample)

    def chunk(idx):
        xi = tf.gather(x, idx // m)
        pi = None if points is None else tf.gather(points, idx)
        rows = masker.inputs(xi, tf.gather(z, idx), pi)
        return masker.reduce(model_fn(rows))

    values = chunked_map(chunk, c * m, cap, tf.TensorSpec([None, n_outputs], tf.float32))
    return tf.reshape(values, [c, m, n_outputs])


def model_floor(model, rows_per_instance: int, max_rows: int, jit_compile: bool = False):
    """The model alone on ``n * rows_per_instance`` rows built in-graph from x [n, d] and evaluated in
    the explainers' chunks: the floor an explainer's cost is compared with (benchmarks). Returns a
    ``tf.function`` of x giving the sum of the model's last output column."""
    @tf.function(jit_compile=jit_compile, autograph=False,
                 input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def floor(x):
        total = tf.shape(x)[0] * rows_per_instance

        def chunk(idx):
            # distinct rows, so that nothing is cached or folded away
            rows = tf.gather(x, idx // rows_per_instance) * (1.0 + 1e-6 * tf.cast(idx % 7, tf.float32)[:, None])
            return model(rows, training=False)[:, -1:]

        return tf.reduce_sum(chunked_map(chunk, total, max_rows, tf.TensorSpec([None, 1], tf.float32)))

    return floor
