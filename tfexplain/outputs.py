"""What an explain call returns: the graph's raw outputs shaped into the named tensors of
``explain_fn`` / the exported signatures (:func:`shaped`), and those tensors, as arrays, built into an
:class:`~tfexplain.explanation.Explanation` (:func:`explanation`).

The raw outputs of an explainer's graph are per explained output: ``values`` [n, d, o], ``fx`` [n, o]
(the model's output), and, by method, ``stderr``, ``n_evals``, ``base_values`` (per instance),
Lime's ``intercept`` / ``contributions`` / ``score`` / ``local_pred``, ``target`` (a per-row pick,
see :mod:`tfexplain.targets`) and the masker's extras (e.g. ``segments``).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from . import _nest
from .explanation import Explanation


def zeros(spec: dict) -> dict:
    """Raw outputs of an empty batch: zero rows of each ``tf.TensorSpec`` [None, ...] of ``spec``."""
    return {k: tf.zeros([0] + list(s.shape[1:]), s.dtype) for k, s in spec.items()}


def shaped(out: dict, *, single: bool, base_values, n_outputs: int, estimates_stderr: bool, extras=()) -> dict:
    """Graph outputs of the explained outputs -> named and shaped like the Explanation's fields:
    ``values``, ``model_output`` (from ``fx``), ``base_values`` (Lime: its ``intercept``; else the
    per-instance ``base_values`` of ``out``, or the constant ``base_values`` [o] broadcast to every
    row), ``stderr`` only when ``estimates_stderr``, and ``n_evals``, ``target``, Lime's fields and
    the masker's ``extras`` as ``out`` has them. ``single`` drops the output axis."""
    sq = (lambda t: t[..., 0]) if single else (lambda t: t)
    result = {"values": sq(out["values"]), "model_output": sq(out["fx"])}
    if "stderr" in out and estimates_stderr:
        result["stderr"] = sq(out["stderr"])
    if "n_evals" in out:
        result["n_evals"] = out["n_evals"]
    if "target" in out:
        result["target"] = sq(out["target"])
    if "intercept" in out:
        result.update(base_values=sq(out["intercept"]), intercept=sq(out["intercept"]),
                      contributions=sq(out["contributions"]),
                      score=sq(out["score"]), local_pred=sq(out["local_pred"]))
    elif "base_values" in out:
        result["base_values"] = sq(out["base_values"])
    else:
        n = tf.shape(out["fx"])[0]
        result["base_values"] = sq(tf.broadcast_to(tf.constant(base_values), [n, n_outputs]))
    for key in extras:
        result[key] = out[key]
    return result


def _as_seen(a):
    """Numbers as the model saw them (float32); token ids and strings as they are."""
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def explanation(x, outputs: dict, *, method: str, feature_names, output_names, link: str,
                n_evals_per_instance: int, masker, seconds: float = 0.0,
                host_fields: Optional[Callable[[object], dict]] = None) -> Explanation:
    """The :class:`Explanation` of rows ``x`` (an array, or a dict / list of them for a multi-input
    model) from their shaped outputs (:func:`shaped`, as arrays). ``n_evals`` defaults to
    ``n_evals_per_instance`` for every row; ``masker.explanation_fields(data, outputs)`` adds the
    masker's fields (segments, heatmap, tokens, ...) and ``host_fields(data)`` any computed on the host
    from the rows (Lime's feature conditions)."""
    data = tf.nest.map_structure(_as_seen, x)
    out = {k: np.asarray(v) for k, v in outputs.items()}
    n = _nest.n_rows(data)
    return Explanation(
        values=out["values"], base_values=out["base_values"], data=data,
        feature_names=list(feature_names), output_names=list(output_names), method=method,
        model_output=out["model_output"], link=link,
        n_evals=out["n_evals"] if "n_evals" in out else np.full(n, n_evals_per_instance, np.int64),
        seconds=seconds, stderr=out.get("stderr"), target=out.get("target"),
        **{k: out[k] for k in ("intercept", "score", "local_pred", "contributions") if k in out},
        **masker.explanation_fields(data, out), **(host_fields(data) if host_fields is not None else {}))
