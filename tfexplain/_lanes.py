"""Batch-invariant evaluation of element-wise math and of the model.

On CPU, TensorFlow's element-wise kernels (Eigen) compute a tensor in SIMD packets and its last
``size % packet`` elements with scalar code, and the scalar ``exp`` / ``log`` / ``log1p`` / sigmoid /
normal quantile differ from the packet ones in the last bit. Which elements fall into that tail depends
on the tensor's size, so a row's numbers would depend on how many rows share its batch. The helpers
here pad what they compute to a multiple of ``LANES`` elements (rows), so every element takes the
packet path whatever the batch: explaining a dataset in any batching, on any number of replicas, gives
the numbers of one call, bit for bit.
"""

from __future__ import annotations

import tensorflow as tf

from . import _xla

LANES = 16  # a multiple of every SIMD width for float32 / float64 (AVX-512: 16 floats)


def elementwise(fn, t, fill=0.0):
    """``fn(t)`` for an element-wise ``fn``, computed on ``t`` flattened and padded with ``fill`` (a
    value ``fn`` is defined at) to a multiple of ``LANES`` elements (not in a graph XLA compiles: see
    :func:`rowwise`)."""
    t = tf.convert_to_tensor(t)
    if _xla.active():
        return fn(t)
    flat = tf.reshape(t, [-1])
    n = tf.size(flat)
    padded = tf.concat([flat, tf.fill([(-n) % LANES], tf.constant(fill, t.dtype))], 0)
    return tf.reshape(fn(padded)[:n], tf.shape(t))


def rowwise(fn, rows):
    """``fn(rows)`` for a function of rows [r, ...] -> [r, ...] (the model; ``rows`` may be a nest of
    inputs sharing r), called on ``rows`` padded to a multiple of ``LANES`` rows by repeating the last
    row, so that every tensor the function makes from them has a size that is a multiple of ``LANES``
    as well; the padding's outputs are dropped.

    Not in a graph XLA compiles (``_xla.active()``): a compiled program has one shape, so its chunks
    all round alike anyway, and XLA fused the padding's concatenation into the model's first ops
    (building the masked rows), which then ran unvectorized: a third of KernelShap's time at k = 10."""
    if _xla.active():
        return fn(rows)
    r = tf.shape(tf.nest.flatten(rows)[0])[0]
    padded = tf.nest.map_structure(lambda t: tf.concat([t, tf.repeat(t[-1:], (-r) % LANES, axis=0)], 0), rows)
    return fn(padded)[:r]
