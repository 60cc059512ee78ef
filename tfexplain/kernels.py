"""Similarity kernels: how much each sample counts in the surrogate fit."""

from __future__ import annotations

import tensorflow as tf

from ._lanes import elementwise


def prior(sample, origin=None):
    """Use the sampler's own weights (KernelSHAP: Shapley kernel weights)."""
    return sample.weights


def exponential(width: float):
    """lime's tabular kernel on the Euclidean distance of each sample to the instance:
    sqrt(exp(-d^2 / width^2)) -- these are the regression's sample weights, as in lime."""

    def kernel(sample, origin):
        """sample.z [c, m, p], origin [c, p] the instance's own representation -> weights [c, m]."""
        # float64: far from the training mean the weights are ~1e-40 -- tiny, and they matter: the
        # ridge penalty acts against their absolute scale, as in lime (which works in float64).
        dist2 = tf.cast(tf.reduce_sum(tf.square(sample.z - origin[:, None, :]), -1), tf.float64)
        return tf.sqrt(elementwise(tf.exp, -dist2 / (width * width)))

    return kernel


def cosine(width: float, scale: float = 1.0):
    """lime's image and text kernel: the cosine distance of each sample's interpretable vector to the
    instance's (``sklearn.metrics.pairwise_distances(..., metric="cosine")``: 1 - cosine similarity,
    clipped to [0, 2], a zero vector at distance 1), times ``scale`` (lime_text: 100, lime_image: 1),
    weighted sqrt(exp(-d^2 / width^2))."""

    def kernel(sample, origin):
        """sample.z [c, m, p], origin [c, p] -> weights [c, m] float64."""
        z = tf.cast(sample.z, tf.float64)
        o = tf.cast(origin, tf.float64)
        dot = tf.einsum("cmp,cp->cm", z, o)
        norms = tf.sqrt(tf.reduce_sum(z * z, -1)) * tf.sqrt(tf.reduce_sum(o * o, -1))[:, None]
        similarity = tf.where(norms > 0, dot / tf.where(norms > 0, norms, 1.0), 0.0)
        dist = scale * tf.clip_by_value(1.0 - similarity, 0.0, 2.0)
        return tf.sqrt(elementwise(tf.exp, -dist * dist / (width * width)))

    return kernel
