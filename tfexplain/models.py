"""Adapters from what users pass as `model` to one TF callable: float32 [rows, d] -> float32 [rows, O].

:class:`ModelAdapter` probes the model inside a traced graph (as the explain graph will call it). A
model that cannot be traced (NumPy code, scikit-learn, a lambda calling Keras' ``predict``) runs
through ``tf.numpy_function`` instead, with a warning: it works, but leaves the graph at every call,
so it cannot be XLA-compiled or exported.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Callable

import numpy as np
import tensorflow as tf

from . import _nest


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


def _is_keras(obj) -> bool:
    return hasattr(obj, "layers") and hasattr(obj, "predict")  # Keras 3 or tf_keras model


def unwrap_keras_method(model):
    """A Keras model's bound ``predict`` / ``predict_on_batch`` -> the model itself (called in-graph)."""
    owner = getattr(model, "__self__", None)
    if owner is not None and _is_keras(owner) and getattr(model, "__name__", None) in ("predict", "predict_on_batch"):
        return owner
    return model


def signature_spec(call):
    """The input dtype of a ``tf.function`` declared with an ``input_signature`` (or of a module whose
    ``__call__`` is one): a dtype, or for a multi-input model the nest of its inputs' TensorSpecs; else None."""
    for fn in (call, getattr(call, "__call__", None)):
        spec = getattr(fn, "input_signature", None)
        if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], tf.TensorSpec):
            return spec[0].dtype
        if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], (dict, list, tuple)):
            return spec[0]
    return None


def _cast_inputs(x, dtype):
    """x cast to ``dtype``: one dtype, or a nest of TensorSpecs (one per input of a multi-input model)."""
    if isinstance(dtype, tf.DType):
        return tf.cast(x, dtype)
    return tf.nest.map_structure(lambda v, s: tf.cast(v, s.dtype), x, dtype, check_types=False)


def as_model_fn(model, output_key=None) -> Callable[[tf.Tensor], tf.Tensor]:
    """Returns ``f(x) -> [rows, O]`` calling ``model`` with TF ops only (no host round-trip). Inputs
    are cast to the dtype of a concrete function's / ``tf.function``'s input signature."""
    if model is None or not callable(model) and not hasattr(model, "signatures"):
        raise TypeError(f"`model` must be callable (Keras model, tf.Module, tf.function, ...), got {type(model).__name__}.")
    call = model
    # A loaded SavedModel: Keras `model.export` writes a `serve` endpoint; otherwise its serving signature.
    if not callable(model) and hasattr(model, "signatures"):
        call = getattr(model, "serve", None) or model.signatures["serving_default"]
    is_keras = _is_keras(model)
    signature = getattr(call, "structured_input_signature", None)
    kwarg_name = kwarg_specs = None
    if signature is not None:  # concrete function / signature: may need keyword input and a dtype
        args, kwargs = signature
        if not args and len(kwargs) == 1:
            kwarg_name = next(iter(kwargs))
            dtype = next(iter(kwargs.values())).dtype
        elif not args and len(kwargs) > 1:   # a signature of several inputs: x is a dict keyed by their names
            kwarg_specs, dtype = dict(kwargs), None
        elif args and isinstance(args[0], tf.TensorSpec):
            dtype = args[0].dtype
        elif args:   # several inputs (a nest): each is cast to its own spec's dtype
            dtype = args[0]
        else:
            dtype = tf.float32
    else:
        dtype = None if is_keras else signature_spec(call)

    def f(x):
        if dtype is not None:
            x = _cast_inputs(x, dtype)
        if kwarg_name is not None:
            out = call(**{kwarg_name: x})
        elif kwarg_specs is not None:
            if not isinstance(x, dict) or set(x) != set(kwarg_specs):
                raise TypeError(f"the model's signature takes the inputs {sorted(kwarg_specs)}: pass a dict of them.")
            out = call(**{k: tf.cast(v, kwarg_specs[k].dtype) for k, v in x.items()})
        elif is_keras:
            out = call(x, training=False)
        else:
            out = call(x)
        out = tf.cast(tf.convert_to_tensor(_unwrap_output(out, output_key)), tf.float32)
        return out

    return f


def _output_kind(shape, rows: int) -> tuple[int, bool]:
    """(number of outputs, output was 1-D) from the output shape on ``rows`` rows, or raises."""
    shape = tuple(shape)
    if len(shape) == 1 and shape[0] == rows:
        return 1, True
    if len(shape) == 2 and shape[0] == rows and shape[1] >= 1:
        return int(shape[1]), False
    raise ValueError(
        f"`model` must map [rows, d] to [rows] or [rows, outputs]; on {rows} rows it returned shape {shape}.")


def probe_output(f, sample: np.ndarray) -> tuple[int, bool]:
    """Runs ``f`` once eagerly on a few rows: returns (number of outputs, output was 1-D)."""
    rows = sample[: min(2, len(sample))]
    try:
        out = f(tf.constant(rows))
    except Exception as err:
        raise ValueError(
            f"`model` failed on input of shape {rows.shape} (float32 [rows, d]): {type(err).__name__}: {err}") from err
    return _output_kind(out.shape, len(rows))


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _traced_probe(f, rows):
    """Traces ``f`` on a [None, ...] spec of ``rows``' shape and dtype (a nest of them for a multi-input
    model; as the explain graph calls it) and runs it on ``rows``: returns (output as numpy, None), or
    (None, the error)."""
    spec = tf.nest.map_structure(lambda a: tf.TensorSpec([None] + list(a.shape[1:]), tf.as_dtype(a.dtype)), rows)
    traced = tf.function(f, input_signature=[spec], autograph=False)
    try:
        traced.get_concrete_function()
    except Exception as err:  # noqa: BLE001 -- any failure to trace means "not a TF-ops model"
        return None, err
    try:
        return traced(_nest.constant(rows)).numpy(), None
    except Exception as err:  # traced, but failed when run: a real error
        raise ValueError(
            f"`model` failed on input of shape {_nest.shapes(rows)}: {_short(err, 1000)}") from err


def _user_stacklevel() -> int:
    """warnings.warn stacklevel pointing at the first frame outside tfexplain."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


class ModelAdapter:
    """What users pass as ``model``, as one callable ``fn``: float32 [rows, d] -> float32 [rows] or
    [rows, O], probed at construction on the first two rows of ``sample`` inside a traced graph.

    A Keras model's bound ``predict`` is the model itself. A callable that cannot be traced runs through
    ``tf.numpy_function`` (``in_graph`` False, with a UserWarning unless ``warn=False``): slower, and neither
    XLA-compilable nor exportable (``not_in_graph_reason`` says why, for those errors).

    n_outputs, squeeze: the model's number of outputs and whether it returns [rows];
    probe: its float32 [2, O] outputs on the probe rows (2-D either way).
    """

    def __init__(self, model, sample: np.ndarray, output_key=None, *, warn: bool = True):
        self.model = model
        target = unwrap_keras_method(model)
        f = as_model_fn(target, output_key)
        def first_rows(a):
            a = np.asarray(a)
            dtype = np.float32 if np.issubdtype(a.dtype, np.floating) else a.dtype
            return np.ascontiguousarray(a[: min(2, len(a))], dtype)

        rows = tf.nest.map_structure(first_rows, sample)   # a nest for a multi-input model
        self.in_graph, self.not_in_graph_reason = True, None
        out, trace_error = _traced_probe(f, rows)
        if trace_error is not None:
            try:  # a model that builds itself lazily may trace after one eager call
                f(_nest.constant(rows))
                out, trace_error = _traced_probe(f, rows)
            except Exception:  # noqa: BLE001 -- the eager call is only an attempt
                pass
        if trace_error is not None:
            out, f = self._numpy_fallback(target, output_key, rows, trace_error, warn)
        self.fn = f
        n = _nest.n_rows(rows)
        self.n_outputs, self.squeeze = _output_kind(np.shape(out), n)
        self.probe = np.asarray(out, np.float32).reshape(n, self.n_outputs)

    def _numpy_fallback(self, model, output_key, rows, trace_error, warn):
        def host(a):
            out = _unwrap_output(model(a), output_key)
            return np.asarray(out.numpy() if hasattr(out, "numpy") else out, np.float32)

        try:
            out = host(rows)
        except Exception as err:
            raise ValueError(
                f"`model` failed on input of shape {_nest.shapes(rows)}: traced as a TensorFlow "
                f"graph: {_short(trace_error)}; called on a NumPy array: {_short(err)}") from err
        kind = _output_kind(out.shape, _nest.n_rows(rows))  # raises on a bad shape before anything else
        static = [None] if kind[1] else [None, kind[0]]
        structure = rows

        def host_leaves(*leaves):
            return host(tf.nest.pack_sequence_as(structure, list(leaves)))

        def f(x):
            leaves = tf.nest.flatten(x)   # one input: float32, as before; several: each as its masker gives it
            leaves = [tf.cast(leaves[0], tf.float32)] if len(leaves) == 1 else leaves
            y = tf.numpy_function(host_leaves, leaves, tf.float32, name="numpy_model")
            y.set_shape(static)
            return y

        name = getattr(model, "__qualname__", None) or type(model).__name__
        self.in_graph = False
        self.not_in_graph_reason = (
            f"`model` ({name}) is not TensorFlow ops (tracing it failed with {_short(trace_error, 160)}), so it "
            f"runs through tf.numpy_function")
        if warn:
            warnings.warn(
                f"{self.not_in_graph_reason}: every model call leaves the graph for Python, which is slower, "
                f"and jit_compile=True / tfexplain.export are unavailable. Pass a Keras model, tf.Module or "
                f"tf.function to keep the model in the graph.", UserWarning, stacklevel=_user_stacklevel())
        return out, f

    def require_in_graph(self, what: str) -> None:
        """Raises ValueError naming ``what`` (e.g. "jit_compile=True") when the model is not in-graph."""
        if not self.in_graph:
            raise ValueError(
                f"{what} needs a model made of TensorFlow ops, but {self.not_in_graph_reason}, which XLA cannot "
                f"compile and a SavedModel cannot hold. Pass a Keras model, tf.Module or tf.function.")


def as_2d(out: tf.Tensor, squeeze: bool) -> tf.Tensor:
    return out[:, None] if squeeze else out
