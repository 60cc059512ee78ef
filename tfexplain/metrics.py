"""Explanation quality, one value per instance (an ``Explanation`` is scored on its
``attributions``: SHAP values, or LIME's per-feature contributions), computed with the explainers' own batched, chunked
model evaluation (a metric's perturbed inputs are coalitions against a baseline, evaluated in one
graph loop).

Fidelity: :func:`deletion`, :func:`insertion`, :func:`faithfulness_correlation`, :func:`infidelity`,
:func:`surrogate_fit`. Comprehensibility: :func:`complexity`, :func:`sparseness`,
:func:`effective_features`. Efficiency: ``Explanation.n_evals`` and ``Explanation.seconds``.
Stability: :func:`max_sensitivity`. All of them for several explainers: :func:`evaluate`.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from . import _random
from ._validation import as_int, as_matrix, as_seed
from .evaluation import evaluate as _evaluate
from .explanation import Explanation
from .links import link_fn
from .maskers import BackgroundMasker
from .models import ModelAdapter, as_2d
from .samplers import Sample, random_subsets

DEFAULT_BATCH_SIZE = 2**17


# ---------------------------------------------------------------------------------------------
# inputs

def _values_of(attributions):
    return attributions.attributions if isinstance(attributions, Explanation) else attributions


def _attributions(attributions, n: int, d: int) -> np.ndarray:
    values = _values_of(attributions)
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape != (n, d):
        raise ValueError(f"`attributions` must be [n, d] = [{n}, {d}] (one explained output), got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("`attributions` contains NaN or Inf.")
    return values


def _link_of(attributions, link) -> str:
    """The output space to score in: ``link`` if given, else an Explanation's own (an explainer with
    link="logit" attributes log-odds), else the model's outputs as they are."""
    if link is None:
        link = attributions.link if isinstance(attributions, Explanation) else "identity"
    if link not in ("identity", "logit"):
        raise ValueError(f"`link` must be 'identity' or 'logit', got {link!r}.")
    return link


def _uniforms(purpose: str, seed: int, n: int, shape) -> np.ndarray:
    """Uniforms [n, *shape] of one random purpose ("faithfulness", "infidelity", "sensitivity"): each
    purpose has its own key, split from the seed with its own salt, so their draws are independent;
    row i's numbers depend on (seed, purpose, i) only."""
    seed_t = _random.seed_to_tensor(tf.constant(as_seed(seed), tf.int64))
    key = tfp.random.split_seed(seed_t, n=1, salt=f"tfexplain.metrics.{purpose}")[0]
    return _random.uniform(key, tf.range(n, dtype=tf.int64), tuple(shape)).numpy()


def _baseline(baseline, x: np.ndarray) -> np.ndarray:
    if baseline is None:
        return np.zeros((1, x.shape[1]), np.float32)
    b = np.asarray(baseline, np.float32)
    if b.ndim == 0:
        return np.full((1, x.shape[1]), b, np.float32)
    return as_matrix(b, "baseline", n_features=x.shape[1], allow_vector=True, width_of="`x`")


class _Game:
    """Model, target output and baseline: v(x, z) = link(mean over baseline rows of f(z x + (1 - z) b)),
    in the explainer's output space (link "logit": log-odds of the mean probability, as KernelShap)."""

    def __init__(self, model, x, baseline, target, batch_size, link="identity", output_key=None):
        adapter = ModelAdapter(model, x, output_key)
        self.f, n_out, squeeze = adapter.fn, adapter.n_outputs, adapter.squeeze
        if target is None:
            if n_out != 1:
                raise ValueError(f"the model has {n_out} outputs: pass `target=` to choose one.")
            target = 0
        target = as_int(target, "target", minimum=0)
        if target >= n_out:
            raise ValueError(f"`target` {target} is out of range: the model has {n_out} output(s).")
        self.target, self.squeeze = target, squeeze
        self.masker = BackgroundMasker(baseline)
        self.batch_size = as_int(batch_size, "batch_size", minimum=1)
        self.link = link_fn(link)

    def outputs(self, rows):
        return as_2d(self.f(rows), self.squeeze)[:, self.target:self.target + 1]

    def values(self, x, z):
        """x [n, d], z [n, T, d] (1 keeps the feature) -> [n, T]."""
        y = _evaluate(self.outputs, self.masker, x, Sample(z, None, None), self.batch_size, 1)
        return self.link(y[..., 0])


def _graph(game):
    # a partial, not the bound method: TF counts retracing per code object and would warn across calls
    return tf.function(functools.partial(game.values), autograph=False)


def _prepare(model, x, attributions, baseline, target, batch_size, link=None, output_key=None):
    data = as_matrix(x, "x", allow_vector=True)
    values = _attributions(attributions, *data.shape)
    game = _Game(model, data, _baseline(baseline, data), target, batch_size, _link_of(attributions, link), output_key)
    return data, values, game


# ---------------------------------------------------------------------------------------------
# fidelity

class Curve(NamedTuple):
    fractions: np.ndarray  # [T + 1] share of features removed / inserted
    values: np.ndarray     # [n, T + 1] model output along the curve
    auc: np.ndarray        # [n] area under the curve (trapezoid over the fractions)


def _order_masks(values, steps: int, insert: bool):
    """[n, steps + 1, d] masks keeping features by decreasing attribution."""
    n, d = values.shape
    rank = np.argsort(np.argsort(-values, axis=1, kind="stable"), axis=1, kind="stable")  # 0 = most important
    counts = np.round(np.linspace(0, d, steps + 1)).astype(np.int64)
    removed = rank[:, None, :] < counts[None, :, None]                                    # [n, T+1, d]
    keep = removed if insert else ~removed
    return keep.astype(np.float32), counts / d


def _curve(model, x, attributions, baseline, steps, target, batch_size, insert, link, output_key):
    data, values, game = _prepare(model, x, attributions, baseline, target, batch_size, link, output_key)
    steps = data.shape[1] if steps is None else as_int(steps, "steps", minimum=1)
    masks, fractions = _order_masks(values, steps, insert)
    curve = _graph(game)(tf.constant(data), tf.constant(masks)).numpy()
    auc = np.trapezoid(curve, fractions, axis=1) if hasattr(np, "trapezoid") else np.trapz(curve, fractions, axis=1)
    return Curve(fractions, curve, auc)


def deletion(model, x, attributions, *, baseline=None, steps=None, target=None, batch_size=DEFAULT_BATCH_SIZE,
             link=None, output_key=None) -> Curve:
    """Deletion curve (Petsiuk et al. 2018): features replaced by the baseline in order of decreasing
    attribution; ``auc`` per instance (lower is more faithful). baseline: [d] or [k, d] rows (the
    output is averaged over them), default zeros; steps: points after the start (default d).

    Every metric scores in the explanation's own output space: ``link`` "identity" or "logit" (the
    curve is then in log-odds of the averaged probability), by default an Explanation's own link
    (KernelShap(link="logit") attributes log-odds), else "identity"; ``output_key`` picks one output
    of a dict-returning model, as for the explainers."""
    return _curve(model, x, attributions, baseline, steps, target, batch_size, False, link, output_key)


def insertion(model, x, attributions, *, baseline=None, steps=None, target=None, batch_size=DEFAULT_BATCH_SIZE,
              link=None, output_key=None) -> Curve:
    """Insertion curve: from the baseline, features of x inserted by decreasing attribution; ``auc``
    per instance (higher is more faithful). ``link``, ``output_key``: as :func:`deletion`."""
    return _curve(model, x, attributions, baseline, steps, target, batch_size, True, link, output_key)


def _subset_drops(game, data, subsets):
    """Output drop f(x) - f(x with the subset at the baseline) for masks subsets [n, R, d] (1 = removed)."""
    keep = np.concatenate([np.ones((len(data), 1, data.shape[1]), np.float32), 1.0 - subsets], axis=1)
    out = _graph(game)(tf.constant(data), tf.constant(keep)).numpy()
    return out[:, :1] - out[:, 1:]


def _random_subsets(n, d, size, n_runs, seed):
    u = _uniforms("faithfulness", seed, n, (n_runs, d))
    return random_subsets(tf.constant(u), int(size)).numpy()


def _subsets_arg(subsets, n, d, subset_size, n_runs, seed):
    if subsets is not None:
        s = np.asarray(subsets, np.float32)
        if s.ndim == 2:
            s = np.broadcast_to(s, (n,) + s.shape)
        if s.ndim != 3 or s.shape[0] != n or s.shape[2] != d:
            raise ValueError(f"`subsets` must be [runs, d] or [n, runs, d] 0/1 masks, got shape {s.shape}.")
        if not np.all((s == 0.0) | (s == 1.0)):
            raise ValueError("`subsets` must be 0/1 masks (1: the feature is removed); got other values.")
        return np.ascontiguousarray(s)
    subset_size = as_int(subset_size, "subset_size", minimum=1)
    if subset_size > d:
        raise ValueError(f"`subset_size` must be at most d = {d}, got {subset_size}.")
    return _random_subsets(n, d, subset_size, as_int(n_runs, "n_runs", minimum=2), as_seed(seed))


def faithfulness_correlation(model, x, attributions, *, baseline=None, subset_size=None, n_runs=100, seed=0,
                             subsets=None, target=None, batch_size=DEFAULT_BATCH_SIZE, link=None,
                             output_key=None) -> np.ndarray:
    """Bhatt et al. 2020: Pearson correlation, over ``n_runs`` random subsets of ``subset_size``
    features (default max(1, d // 4)), between the subset's summed attribution and the output drop
    when the subset is set to the baseline. ``subsets`` ([runs, d] or [n, runs, d] masks) fixes them.
    ``link``, ``output_key``: as :func:`deletion`."""
    data, values, game = _prepare(model, x, attributions, baseline, target, batch_size, link, output_key)
    n, d = data.shape
    masks = _subsets_arg(subsets, n, d, max(1, d // 4) if subset_size is None else subset_size, n_runs, seed)
    drop = _subset_drops(game, data, masks)
    summed = np.einsum("nrd,nd->nr", masks, values)
    a = summed - summed.mean(1, keepdims=True)
    b = drop - drop.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), 0.0)


def infidelity(model, x, attributions, *, baseline=None, n_samples=100, seed=0, optimal_scaling=False,
               subsets=None, target=None, batch_size=DEFAULT_BATCH_SIZE, link=None, output_key=None) -> np.ndarray:
    """Yeh et al. 2019 with binary subset perturbations: E[(sum_{j in S} a_j - (f(x) - f(x_S -> baseline)))^2]
    over random subsets S (each feature in S with probability 1/2). ``optimal_scaling`` first rescales
    the attributions by beta = E[a_S drop] / E[a_S^2] (as Captum's ``normalize=True``). ``link``,
    ``output_key``: as :func:`deletion`."""
    data, values, game = _prepare(model, x, attributions, baseline, target, batch_size, link, output_key)
    n, d = data.shape
    if subsets is None:
        runs = as_int(n_samples, "n_samples", minimum=1)
        subsets = (_uniforms("infidelity", seed, n, (runs, d)) < 0.5).astype(np.float32)
    masks = _subsets_arg(subsets, n, d, 1, 2, 0)
    drop = _subset_drops(game, data, masks)
    summed = np.einsum("nrd,nd->nr", masks, values)
    if optimal_scaling:
        beta = (summed * drop).mean(1) / np.maximum((summed * summed).mean(1), 1e-30)
        summed = summed * beta[:, None]
    return ((summed - drop) ** 2).mean(1)


def surrogate_fit(explanation: Explanation) -> dict:
    """LIME's own fidelity: the surrogate's weighted R^2 and |local prediction - model output| per instance."""
    if explanation.score is None:
        raise ValueError("`explanation` has no surrogate (score/local_pred): it is not a Lime explanation.")
    return {"r2": np.asarray(explanation.score, np.float64),
            "local_error": np.abs(np.asarray(explanation.local_pred) - np.asarray(explanation.model_output))}


# ---------------------------------------------------------------------------------------------
# comprehensibility

def _abs_values(attributions) -> np.ndarray:
    values = _values_of(attributions)
    values = np.abs(np.asarray(values, np.float64))
    if values.ndim != 2:
        raise ValueError(f"`attributions` must be [n, d], got shape {values.shape}.")
    return values


def complexity(attributions) -> np.ndarray:
    """Entropy (nats) of the normalized |attributions| (Bhatt et al. 2020): log d at most, 0 for one feature."""
    a = _abs_values(attributions)
    p = a / np.maximum(a.sum(1, keepdims=True), 1e-300)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)


def sparseness(attributions) -> np.ndarray:
    """Gini index of |attributions| (Chalasani et al. 2020): 0 when uniform, near 1 when one feature carries all."""
    a = np.sort(_abs_values(attributions) + 1e-7, axis=1)
    d = a.shape[1]
    ranks = 2 * np.arange(1, d + 1) - d - 1
    return (a * ranks).sum(1) / (d * a.sum(1))


def effective_features(attributions, mass: float = 0.9) -> np.ndarray:
    """How many features (largest |attribution| first) carry ``mass`` of the total |attribution|."""
    if not 0 < mass <= 1:
        raise ValueError(f"`mass` must be in (0, 1], got {mass}.")
    a = -np.sort(-_abs_values(attributions), axis=1)
    share = np.cumsum(a, 1) / np.maximum(a.sum(1, keepdims=True), 1e-300)
    return 1 + np.sum(share < mass - 1e-12, axis=1)


# ---------------------------------------------------------------------------------------------
# stability

def max_sensitivity(explainer, x, *, radius=None, n_samples=10, seed=0, output: int = 0) -> np.ndarray:
    """Yeh et al. 2019: max over ``n_samples`` perturbations x' (uniform in the L-inf ball of
    ``radius``, a scalar or [d] per-feature radii; default 5% of each feature's standard deviation in
    the explainer's background / training data) of ||a(x') - a(x)|| / ||a(x)||. All perturbed
    copies are explained in one call with the random streams of their original rows and the same
    seed, so the change reflects the explanation's sensitivity, not sampling noise."""
    data = as_matrix(x, "x", n_features=explainer.n_features, allow_vector=True)
    n, d = data.shape
    runs = as_int(n_samples, "n_samples", minimum=1)
    if radius is None:
        radius = 0.05 * explainer.feature_scale
    r = np.broadcast_to(np.asarray(radius, np.float32), (d,))
    if not np.all(r >= 0):
        raise ValueError("`radius` must be non-negative.")
    u = _uniforms("sensitivity", seed, n, (runs, d))
    perturbed = (data[:, None, :] + (2 * u - 1) * r).reshape(-1, d).astype(np.float32)
    rows = np.repeat(np.arange(n, dtype=np.int64), runs)
    base = explainer(data, seed, verbose=0).attributions
    moved = explainer(perturbed, seed, row_ids=rows, verbose=0).attributions
    if base.ndim == 3:
        base, moved = base[..., output], moved[..., output]
    moved = moved.reshape(n, runs, d)
    num = np.linalg.norm(moved - base[:, None, :], axis=2)
    den = np.maximum(np.linalg.norm(base, axis=1), 1e-12)[:, None]
    return (num / den).max(1)


# ---------------------------------------------------------------------------------------------
# report

class Report(dict):
    """{explainer name: {metric: per-instance array}}; ``str()`` prints the means as a markdown table."""

    def means(self):
        return {name: {k: float(np.mean(v)) for k, v in cols.items()} for name, cols in self.items()}

    def __str__(self):
        means = self.means()
        cols = sorted({k for row in means.values() for k in row}, key=_COLUMN_ORDER.index)
        lines = ["| explainer | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for name, row in means.items():
            cells = [f"{row[c]:.4g}" if c in row else "–" for c in cols]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


_COLUMN_ORDER = ["deletion_auc", "insertion_auc", "faithfulness_corr", "infidelity", "surrogate_r2",
                 "local_error", "complexity", "sparseness", "effective_features", "max_sensitivity",
                 "model_evals", "ms_per_instance"]


def evaluate(explainers: dict, x, *, baseline=None, target=None, seed=0, n_runs=100, subset_size=None,
             radius=None, sensitivity_samples=5, batch_size=DEFAULT_BATCH_SIZE) -> Report:
    """Every metric for each explainer ({name: explainer}) on the same instances and model.

    The model is each explainer's own; ``target`` is the output the attributions explain (default:
    the explainer's single target). Returns a :class:`Report`; print it for a table of means."""
    data = as_matrix(x, "x", allow_vector=True)
    report = Report()
    for name, explainer in explainers.items():
        if len(explainer.targets) != 1:
            raise ValueError(f"explainer {name!r} explains {len(explainer.targets)} outputs; build it with one target.")
        t = explainer.targets[0] if target is None else target
        start = time.perf_counter()
        exp = explainer(data, seed=seed)
        seconds = time.perf_counter() - start
        # scored in the explainer's own space: its link and its output_key
        kw = dict(baseline=baseline, target=t, batch_size=batch_size, link=explainer.link,
                  output_key=getattr(explainer, "output_key", None))
        model = explainer.model
        row = {
            "deletion_auc": deletion(model, data, exp, **kw).auc,
            "insertion_auc": insertion(model, data, exp, **kw).auc,
            "faithfulness_corr": faithfulness_correlation(model, data, exp, subset_size=subset_size, n_runs=n_runs,
                                                          seed=seed, **kw),
            "infidelity": infidelity(model, data, exp, n_samples=n_runs, seed=seed, optimal_scaling=True, **kw),
            "complexity": complexity(exp), "sparseness": sparseness(exp),
            "effective_features": effective_features(exp).astype(np.float64),
            "max_sensitivity": max_sensitivity(explainer, data, radius=radius, n_samples=sensitivity_samples, seed=seed),
            "model_evals": exp.n_evals.astype(np.float64),
            "ms_per_instance": np.full(len(data), 1e3 * seconds / len(data)),
        }
        if exp.score is not None:
            fit = surrogate_fit(exp)
            row["surrogate_r2"], row["local_error"] = fit["r2"], fit["local_error"]
        report[name] = row
    return report
