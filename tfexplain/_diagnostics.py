"""Model outputs that cannot be explained: NaN / Inf, or (for ``link="logit"``) not probabilities.

At construction the explainer checks the rows it evaluates anyway (the background, or the probe rows).
In the graph nothing is checked: the logit link maps values outside [0, 1] to NaN and NaN propagates
into the explanation. The call boundary looks at the returned arrays, and only when something is not
finite does it re-evaluate the failing instances' rows (through the public ``samples()`` and the
model) to say what went wrong: the happy path costs nothing.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import _nest

# How far past [0, 1] a probability may stray before link="logit" calls it "not a probability": the
# weighted mean over background rows is a float32 sum, which can land a few ulps past 1.
PROB_SLACK = 1e-3
# Instances whose rows the call-time diagnostic re-evaluates (the error path's cost stays bounded).
MAX_DIAGNOSED = 4


def inside_unit(t: tf.Tensor) -> tf.Tensor:
    """True where ``t`` is in [0, 1] (up to ``PROB_SLACK``); False for NaN and Inf."""
    return (t >= -PROB_SLACK) & (t <= 1.0 + PROB_SLACK)


def nan_outside_unit(t: tf.Tensor) -> tf.Tensor:
    """``t`` with values outside [0, 1] replaced by NaN (link="logit": such outputs are no probabilities)."""
    return tf.where(inside_unit(t), t, tf.constant(np.nan, t.dtype))


def _row_counts(y: np.ndarray, logit: bool):
    """Per-row masks of [rows, o] outputs: any non-finite; (logit) finite but some output outside [0, 1]."""
    y = np.asarray(y).reshape(len(y), -1)
    nonfinite = ~np.all(np.isfinite(y), axis=1)
    if not logit:
        return nonfinite, np.zeros_like(nonfinite)
    with np.errstate(invalid="ignore"):
        outside = np.any((y < -PROB_SLACK) | (y > 1.0 + PROB_SLACK), axis=1) & ~nonfinite
    return nonfinite, outside


def _logit_advice() -> str:
    return ("link='logit' expects probabilities (it explains log-odds); pass link='identity' to explain a model "
            "that outputs logits or scores, or wrap the model in a sigmoid/softmax")


def check_rows(y: np.ndarray, name: str, *, logit: bool, first: bool = False) -> None:
    """Raises ValueError if the model's explained outputs ``y`` [rows, o] on the rows of argument
    ``name`` (``first``: on its first rows only) hold NaN / Inf, or (``logit``) values outside [0, 1]."""
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    nonfinite, outside = _row_counts(y, logit)
    k = f"the first {len(y)}" if first else len(y)
    if nonfinite.any():
        raise ValueError(
            f"`model` returned NaN or Inf on {int(nonfinite.sum())} of {k} `{name}` rows "
            f"(first: row {int(np.argmax(nonfinite))}); it must give finite outputs to be explained.")
    if outside.any():
        raise ValueError(
            f"`model`'s outputs are outside [0, 1] on {int(outside.sum())} of {k} `{name}` rows "
            f"(first: row {int(np.argmax(outside))}; they range over [{y.min():.4g}, {y.max():.4g}]), but "
            f"{_logit_advice()}.")


def nonfinite_instances(out: dict, n: int, keys=("values", "model_output", "base_values")) -> np.ndarray:
    """Indices of the instances whose ``keys`` arrays (values, model output, base value) are not finite."""
    bad = np.zeros(n, bool)
    for key in keys:
        if key in out:
            bad |= ~np.all(np.isfinite(np.asarray(out[key]).reshape(n, -1)), axis=1)
    return np.flatnonzero(bad)


def _instance_rows(explainer, x: np.ndarray, seed: int, row: int, notes: list):
    """Model-input rows explaining instance ``x`` [1, ...] evaluates, in chunks of at most batch_size:
    the instance itself, then the rows of its samples (as ``samples()`` draws them; with
    ``tolerance=``, its first round)."""
    yield x
    try:
        sample = explainer.samples(x, seed, row_offset=row)
    except Exception as err:  # noqa: BLE001 -- the diagnostic must not hide the error it reports
        notes.append(f"its sampled rows could not be re-drawn ({type(err).__name__}: {err})")
        return
    if "points" in sample:  # the sampler made model-space points (LIME)
        points = sample["points"].reshape(-1, x.shape[1])
        for i in range(0, len(points), explainer.batch_size):
            yield points[i:i + explainer.batch_size]
        return
    z = sample["z"][0]
    masker = explainer.masker
    flat = masker.flatten(_nest.constant(x, masker.input_spec), tf.constant([row], tf.int64))
    per_chunk = max(1, explainer.batch_size // masker.rows_per_sample)
    for i in range(0, len(z), per_chunk):
        zc = tf.constant(z[i:i + per_chunk])
        xc = tf.repeat(flat, tf.shape(zc)[0], axis=0)
        yield _nest.to_numpy(masker.inputs(xc, zc, None))


def raise_for_nonfinite(explainer, data: np.ndarray, seed: int, rows, bad: np.ndarray, model_outputs) -> None:
    """Called when the explanations of instances ``bad`` (indices into ``data``) are not finite:
    re-evaluates the model (``model_outputs``: rows -> [rows, o] explained outputs as the model returns
    them) on their rows and raises ValueError saying on how many the model gave NaN / Inf or, for
    link="logit", values outside [0, 1]. Raises RuntimeError if every output was fine."""
    logit = explainer.link == "logit"
    checked = [int(i) for i in bad[:MAX_DIAGNOSED]]
    total = n_nonfinite = n_outside = 0
    notes = []
    for i in checked:
        for chunk in _instance_rows(explainer, _nest.take(data, slice(i, i + 1)), seed, int(rows[i]), notes):
            y = model_outputs(_nest.constant(chunk, explainer.masker.input_spec)).numpy()
            nonfinite, outside = _row_counts(y, logit)
            total += len(y)
            n_nonfinite += int(nonfinite.sum())
            n_outside += int(outside.sum())

    def listed(idx):
        return ", ".join(map(str, idx[:10])) + (", ..." if len(idx) > 10 else "")

    if len(checked) == 1:
        which = f"instance {checked[0]} of `x` (its own row and its sampled rows)"
    else:
        which = f"instances [{listed(checked)}] of `x` (their own rows and sampled rows)"
    problems = []
    if n_nonfinite:
        problems.append(f"`model` returned NaN or Inf on {n_nonfinite} of {total} rows")
    if n_outside:
        problems.append(f"`model`'s outputs are outside [0, 1] on {n_outside} of {total} rows")
    if not problems:
        raise RuntimeError(
            f"the explanation of {which} is not finite although the model's outputs on those {total} rows "
            f"were finite{' and inside [0, 1]' if logit else ''} when re-evaluated (a model that is not "
            f"deterministic?, or a numerical failure of the solver){' (' + notes[0] + ')' if notes else ''}.")
    message = " and ".join(problems) + f" evaluated to explain {which}"
    if len(checked) < len(bad):
        message += f"; the explanations of {len(bad)} instances are not finite: [{listed(bad)}]"
    if n_outside:
        message += f"; {_logit_advice()}"
    if notes:
        message += f" ({notes[0]})"
    raise ValueError(message + ".")
