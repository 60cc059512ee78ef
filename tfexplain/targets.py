"""Which model outputs an explainer explains: ``target=`` / ``top_labels=`` resolved once at build time
into an immutable :class:`Targets`, and its per-row gather inside the explain graph.

A fixed target (an index, a name, a list of them) selects columns of the model's output before
anything is evaluated. A per-row target ("predicted": each row's largest output; ``top_labels=k``:
its k largest) explains every output in the graph and gathers each row's own at the end
(:meth:`Targets.select`), adding ``target`` [n, k] to the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import tensorflow as tf

from ._validation import as_int


@dataclass(frozen=True)
class Targets:
    """A resolved target: what the graph explains and how its outputs are picked per row.

    indices: the model outputs explained in the graph (all of them for a per-row pick).
    single: whether values drop the output axis (one target, or one picked per row).
    pick: None (fixed targets), "predicted" (each row's largest output) or k (``top_labels``).
    output_names: the explanation's output names: all the model's with a per-row pick (``exp.target``
        indexes them), else the explained ones'.
    """

    indices: tuple
    single: bool
    pick: Optional[Union[str, int]]
    output_names: tuple

    def select(self, out: dict, base_values, extras=()) -> dict:
        """Graph outputs of all outputs -> those of each row's picked outputs (``"predicted"``: the
        largest model output; ``top_labels=k``: the k largest, in decreasing order), gathered along the
        output axis of ``out``'s [n, o] and [n, d, o] tensors (not of the masker's ``extras``); adds
        ``target`` [n, k] and, when ``out`` carries neither ``intercept`` nor ``base_values``, each
        row's entries of the constant ``base_values`` [o]. Unchanged without a per-row pick."""
        if not self.pick:
            return out
        fx = out["fx"]
        if self.pick == "predicted":
            idx = tf.argmax(fx, axis=1, output_type=tf.int32)[:, None]
        else:
            idx = tf.math.top_k(fx, k=self.pick).indices
        picked = {}
        for key, v in out.items():
            rank = v.shape.rank
            picked[key] = tf.gather(v, idx, axis=rank - 1, batch_dims=1) if rank in (2, 3) and key not in extras else v
        if "intercept" not in out and "base_values" not in out:
            picked["base_values"] = tf.gather(tf.constant(base_values), idx)
        picked["target"] = tf.cast(idx, tf.int64)
        return picked


def resolve(target, default: Callable[[int], object], n_out: int, names: list, top_labels=None) -> Targets:
    """:class:`Targets` from ``target``: an index, an output name (of ``names``), a list of them, None
    (``default(n_out)``, which may itself be None: every output), or "predicted" (each row's largest
    output: all outputs are explained in the graph and each row's is gathered); or from
    ``top_labels=k`` (each row's k largest outputs). Raises ValueError naming the argument."""
    indices, single, pick = _resolve(target, default, n_out, names, top_labels)
    return Targets(tuple(indices), single, pick,
                   tuple(names) if pick else tuple(names[t] for t in indices))


def _resolve(target, default, n_out, names, top_labels):
    """(explained output indices, whether values drop the output axis, per-row pick)."""
    if top_labels is not None:
        if target is not None:
            raise ValueError("pass either `target` or `top_labels`, not both.")
        k = as_int(top_labels, "top_labels", minimum=1)
        if k > n_out:
            raise ValueError(f"`top_labels` is {k} but the model has {n_out} output(s).")
        return list(range(n_out)), False, k
    if target is None:
        target = default(n_out)
        if target is None:
            return list(range(n_out)), n_out == 1, None
    if isinstance(target, str) and target == "predicted" and "predicted" not in names:
        if n_out == 1:  # one output: it is the prediction
            return [0], True, None
        return list(range(n_out)), True, "predicted"

    def index(t):
        if isinstance(t, str):
            if t not in names:
                raise ValueError(f"`target` {t!r} is not an output name; the outputs are {names} "
                                 "(or use target='predicted').")
            return names.index(t)
        t = as_int(t, "target")
        if not 0 <= t < n_out:
            raise ValueError(f"`target` {t} is out of range: the model has {n_out} output(s).")
        return t

    if isinstance(target, (list, tuple, np.ndarray)):
        idx = [index(t.item() if isinstance(t, np.generic) else t) for t in target]
        single = False
    else:
        idx = [index(target)]
        single = True
    if not idx:
        raise ValueError("`target` is an empty list.")
    return idx, single, None
