"""Adapters from what users pass as `model` to one TF callable: float32 [rows, d] -> float32 [rows, O]."""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf


def _unwrap_output(out, output_key):
    if isinstance(out, dict):
        if output_key is not None:
            if output_key not in out:
                raise ValueError(f"`output_key` {output_key!r} is not among the model's outputs {sorted(out)}.")
            return out[output_key]
        if len(out) != 1:
            raise ValueError(
                f"the model returns several outputs {sorted(out)}; pass `output_key=` to choose one.")
        return next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise ValueError("the model returns several outputs; wrap it so that it returns one tensor.")
        return out[0]
    return out


def as_model_fn(model, output_key=None) -> Callable[[tf.Tensor], tf.Tensor]:
    """Returns ``f(x) -> [rows, O]`` calling ``model`` with TF ops only (no host round-trip)."""
    if model is None or not callable(model) and not hasattr(model, "signatures"):
        raise TypeError(f"`model` must be callable (Keras model, tf.Module, tf.function, ...), got {type(model).__name__}.")
    call = model
    # A loaded SavedModel: Keras `model.export` writes a `serve` endpoint; otherwise its serving signature.
    if not callable(model) and hasattr(model, "signatures"):
        call = getattr(model, "serve", None) or model.signatures["serving_default"]
    is_keras = hasattr(model, "layers") and hasattr(model, "predict")  # Keras 3 or tf_keras model
    signature = getattr(call, "structured_input_signature", None)
    kwarg_name = None
    if signature is not None:  # concrete function / signature: may need keyword input and a dtype
        args, kwargs = signature
        if not args and len(kwargs) == 1:
            kwarg_name = next(iter(kwargs))
            dtype = next(iter(kwargs.values())).dtype
        elif args:
            dtype = args[0].dtype
        else:
            dtype = tf.float32
    else:
        dtype = None

    def f(x):
        if dtype is not None:
            x = tf.cast(x, dtype)
        if kwarg_name is not None:
            out = call(**{kwarg_name: x})
        elif is_keras:
            out = call(x, training=False)
        else:
            out = call(x)
        out = tf.cast(tf.convert_to_tensor(_unwrap_output(out, output_key)), tf.float32)
        return out

    return f


def probe_output(f, sample: np.ndarray) -> tuple[int, bool]:
    """Runs the model once eagerly on a few rows: returns (number of outputs, output was 1-D)."""
    rows = sample[: min(2, len(sample))]
    try:
        out = f(tf.constant(rows))
    except Exception as err:
        raise ValueError(
            f"`model` failed on input of shape {rows.shape} (float32 [rows, d]): {type(err).__name__}: {err}") from err
    shape = tuple(out.shape)
    if len(shape) == 1 and shape[0] == len(rows):
        return 1, True
    if len(shape) == 2 and shape[0] == len(rows) and shape[1] >= 1:
        return int(shape[1]), False
    raise ValueError(
        f"`model` must map [rows, d] to [rows] or [rows, outputs]; on {len(rows)} rows it returned shape {shape}.")


def as_2d(out: tf.Tensor, squeeze: bool) -> tf.Tensor:
    return out[:, None] if squeeze else out
