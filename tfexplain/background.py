"""Background summarizers for KernelShap: a few weighted rows standing in for a large data set.

KernelShap evaluates every coalition on every background row, so its cost is linear in the number of
background rows; shap recommends summarizing the data to 10-100 rows. ``kmeans`` gives k weighted
centroids (weights = cluster sizes / n), ``sample`` k rows drawn without replacement. Both return a
:class:`BackgroundSummary` ``(data, weights)`` that ``KernelShap`` accepts directly as ``background``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ._validation import as_int, as_matrix, as_seed, frame_columns


class BackgroundSummary(NamedTuple):
    """k background rows ``data`` [k, d] and their ``weights`` [k] (sum 1).

    ``data`` is float32 numpy, or a pandas DataFrame with the input's columns when the input was one.
    ``KernelShap(model, summary)`` uses both; ``KernelShap(model, summary.data,
    background_weights=summary.weights)`` is the same."""

    data: object
    weights: np.ndarray


def _like(X, rows: np.ndarray):
    """``rows`` as a DataFrame with X's columns when X is one, else as they are."""
    if frame_columns(X) is None:
        return rows
    import pandas as pd
    return pd.DataFrame(rows, columns=X.columns)


@tf.function(autograph=False, reduce_retracing=True)
def _lloyd(x, init, iterations):
    """Fixed-iteration Lloyd's algorithm, vectorized: [n, d] points, [k, d] initial centroids."""
    k = tf.shape(init)[0]
    x2 = tf.reduce_sum(x * x, axis=1, keepdims=True)

    def assign(c):
        dist = x2 - 2.0 * tf.matmul(x, c, transpose_b=True) + tf.reduce_sum(c * c, axis=1)[None, :]
        return tf.argmin(dist, axis=1, output_type=tf.int32)

    def step(_, c):
        labels = assign(c)
        sums = tf.math.unsorted_segment_sum(x, labels, k)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(x[:, :1]), labels, k)
        return _ + 1, tf.where(counts > 0, sums / tf.maximum(counts, 1.0), c)  # an empty cluster keeps its centroid

    _, c = tf.while_loop(lambda i, c: i < iterations, step, (tf.constant(0), init))
    labels = assign(c)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(x[:, 0]), labels, k)
    return c, counts


def _init_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (D^2 sampling), numpy: k passes over [n, d]."""
    n = len(x)
    idx = [int(rng.integers(n))]
    d2 = ((x - x[idx[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        j = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        idx.append(j)
        d2 = np.minimum(d2, ((x - x[j]) ** 2).sum(1))
    return x[idx]


def kmeans(X, k: int, seed: int = 0, *, iterations: int = 30, standardize: bool = True) -> BackgroundSummary:
    """k weighted centroids summarizing ``X`` (shap's ``kmeans`` background, computed in TensorFlow).

    X: [n, d] array, tensor or DataFrame (finite). k: number of centroids (1 <= k <= n).
    seed: int, for the k-means++ initialization (the same seed gives the same summary).
    iterations: Lloyd iterations, run in one vectorized graph loop (fixed count: no tolerance test).
    standardize: cluster on features scaled to unit variance (so that no feature dominates the
        distances by its units), then report centroids in the original units.
    Returns ``BackgroundSummary(data [k, d], weights [k] = cluster sizes / n)``. Unlike shap's, the
    centroids are not snapped to the nearest data values.
    """
    x = as_matrix(X, "X")
    k = as_int(k, "k", minimum=1)
    if k > len(x):
        raise ValueError(f"`k` is {k} but `X` has only {len(x)} rows.")
    iterations = as_int(iterations, "iterations", minimum=0)
    rng = np.random.default_rng(as_seed(seed))
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 0, scale, 1.0) if standardize else np.ones_like(scale)
    z = ((x - mean) / scale).astype(np.float32) if standardize else x
    init = _init_plus_plus(z.astype(np.float64), k, rng).astype(np.float32)
    c, counts = _lloyd(tf.constant(z), tf.constant(init), tf.constant(iterations))
    centroids = c.numpy() * scale + mean if standardize else c.numpy()
    weights = counts.numpy().astype(np.float64) / len(x)
    return BackgroundSummary(_like(X, centroids.astype(np.float32)), weights)


def sample(X, k: int, seed: int = 0) -> BackgroundSummary:
    """k rows of ``X`` drawn uniformly without replacement (all rows if k >= n), equal weights.

    X: [n, d] array, tensor or DataFrame; k: rows to keep; seed: int for the draw."""
    x = as_matrix(X, "X")
    k = as_int(k, "k", minimum=1)
    if k >= len(x):
        return BackgroundSummary(_like(X, x), np.full(len(x), 1.0 / len(x)))
    idx = np.sort(np.random.default_rng(as_seed(seed)).choice(len(x), k, replace=False))
    return BackgroundSummary(_like(X, x[idx]), np.full(k, 1.0 / k))
