"""Similarity kernels: how much each sample counts in the surrogate fit."""

from __future__ import annotations

import tensorflow as tf

from ._lanes import elementwise


def prior(sample, origin=None):
    """Use the sampler's own weights (KernelSHAP: Shapley kernel weights)."""
    return sample.weights


def _from_log(log_kernel):
    """A kernel computing exp(``log_kernel``) as float64 weights, with the log weights as its ``log``
    (what lime's surrogate takes: :func:`tfexplain.solvers.weighted_moments`)."""

    def kernel(sample, origin):
        return elementwise(tf.exp, tf.cast(log_kernel(sample, origin), tf.float64))

    kernel.log = log_kernel
    return kernel


def exponential(width: float):
    """lime's tabular kernel on the Euclidean distance of each sample to the instance:
    sqrt(exp(-d^2 / width^2)) -- these are the regression's sample weights, as in lime. Far from the
    training mean they are ~1e-40, tiny, and they matter (the ridge penalty acts against their
    absolute scale, as in lime, which works in float64): the weights are float64, and the surrogate
    takes their logs (``kernel.log``: -d^2 / (2 width^2), [c, m] float32)."""

    def log_kernel(sample, origin):
        """sample.z [c, m, p], origin [c, p] the instance's own representation -> log weights [c, m]."""
        return tf.reduce_sum(tf.square(sample.z - origin[:, None, :]), -1) * (-0.5 / (width * width))

    def log_shared(z, origin):
        """The log weights [c, m] of samples z [m, p] shared by the instances origin [c, p], as one matrix
        product: |z|^2 - 2 origin z^T + |origin|^2."""
        sq = (tf.reduce_sum(tf.square(z), -1)[None, :] - 2.0 * tf.matmul(origin, z, transpose_b=True)
              + tf.reduce_sum(tf.square(origin), -1)[:, None])
        return tf.maximum(sq, 0.0) * (-0.5 / (width * width))

    kernel = _from_log(log_kernel)
    kernel.log_shared = log_shared
    return kernel


def cosine(width: float, scale: float = 1.0):
    """lime's image and text kernel: the cosine distance of each sample's interpretable vector to the
    instance's (``sklearn.metrics.pairwise_distances(..., metric="cosine")``: 1 - cosine similarity,
    clipped to [0, 2], a zero vector at distance 1), times ``scale`` (lime_text: 100, lime_image: 1),
    weighted sqrt(exp(-d^2 / width^2)) (float64; ``kernel.log``: the log weights)."""

    def log_kernel(sample, origin):
        """sample.z [c, m, p], origin [c, p] -> log weights [c, m] float64."""
        z = tf.cast(sample.z, tf.float64)
        o = tf.cast(origin, tf.float64)
        dot = tf.einsum("cmp,cp->cm", z, o)
        norms = tf.sqrt(tf.reduce_sum(z * z, -1)) * tf.sqrt(tf.reduce_sum(o * o, -1))[:, None]
        similarity = tf.where(norms > 0, dot / tf.where(norms > 0, norms, 1.0), 0.0)
        dist = scale * tf.clip_by_value(1.0 - similarity, 0.0, 2.0)
        return dist * dist * (-0.5 / (width * width))

    return _from_log(log_kernel)
