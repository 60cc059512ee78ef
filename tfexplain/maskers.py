"""Maskers: how a sample becomes model input, and how the model's outputs fold back into one value.

``masker.inputs(x, z, points)`` takes P (instance, sample) pairs -- x [P, d], z [P, p], points [P, d]
or None -- and returns [P * rows_per_sample, d] model inputs; ``masker.reduce(y)`` folds
[P * rows_per_sample, o] outputs back to [P, o].
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class BackgroundMasker:
    """Interventional tabular masking: features in the coalition come from x, the others from each
    background row; the value of a coalition is the (weighted) mean output over the background rows,
    as in shap's KernelExplainer."""

    def __init__(self, background: np.ndarray, weights: np.ndarray | None = None):
        self.background = np.asarray(background, np.float32)
        k = len(self.background)
        w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
        self.weights = w.astype(np.float32)
        self.rows_per_sample = k

    def inputs(self, x, z, points=None):
        bg = tf.constant(self.background)
        mixed = z[:, None, :] * x[:, None, :] + (1.0 - z[:, None, :]) * bg[None]
        return tf.reshape(mixed, [-1, self.background.shape[1]])

    def reduce(self, y):
        k = self.rows_per_sample
        y = tf.reshape(y, [-1, k, y.shape[-1]])
        return tf.einsum("pko,k->po", y, tf.constant(self.weights))


class PointMasker:
    """The sampler already made model-space points (LIME): evaluate them as they are."""

    rows_per_sample = 1

    def inputs(self, x, z, points):
        return points

    def reduce(self, y):
        return y
