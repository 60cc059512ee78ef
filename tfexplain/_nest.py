"""Model inputs as nests: one array / tensor for a single-input model, a dict or list of them (one per
input, sharing the row axis) for a multi-input one (``tfexplain.maskers.Composite``). These helpers
treat both alike, so the call boundary, the model adapter and the diagnostics need no special case."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def n_rows(x) -> int:
    """Rows of model input ``x`` (its first leaf's leading dimension), as a Python int."""
    return len(tf.nest.flatten(x)[0])


def graph_rows(x):
    """Rows of model input ``x`` as a scalar tensor (in a graph)."""
    return tf.shape(tf.nest.flatten(x)[0])[0]


def take(x, index):
    """``x[index]`` of every leaf (rows)."""
    return tf.nest.map_structure(lambda a: a[index], x)


def to_numpy(x):
    """Every leaf as numpy (tensors' ``.numpy()``)."""
    return tf.nest.map_structure(lambda a: a.numpy() if hasattr(a, "numpy") else np.asarray(a), x)


def constant(x, spec=None):
    """Every leaf as a tensor (of ``spec``'s dtypes, a nest of ``tf.TensorSpec``, when given)."""
    if spec is None:
        return tf.nest.map_structure(tf.constant, x)
    return tf.nest.map_structure(lambda a, s: tf.constant(a, s.dtype), x, spec)


def concat(parts: list):
    """Nests of arrays with the same structure, concatenated along rows."""
    return tf.nest.map_structure(lambda *a: np.concatenate(a), *parts)


def shapes(x) -> str:
    """The leaves' shapes, for messages: ``(2, 3)`` or ``{'a': (2, 3), 'b': (2, 5)}``."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {tuple(np.shape(v))}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(str(tuple(np.shape(v))) for v in x) + "]"
    return str(tuple(np.shape(x)))
