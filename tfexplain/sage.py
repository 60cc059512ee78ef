"""SAGE: Shapley Additive Global importancE (Covert, Lundberg & Lee, NeurIPS 2020), in TensorFlow graphs.

SAGE explains a model's *loss* over a data set: the game is

    v(S) = E_{x,y}[ loss(f_empty, y) ] - E_{x,y}[ loss(f_S(x), y) ],

with the marginal imputer f_S(x) = E_b[ f(x_S, b_notS) ] over the background rows b (KernelShap's
masking, :class:`~tfexplain.maskers.BackgroundMasker`) and f_empty = E_b[ f(b) ]. Feature j's SAGE value
is its Shapley value in v: how much of the loss reduction the model achieves over predicting without
features it owes to j. The values sum to v(all) = mean loss(f_empty) - mean loss(f(x)) (efficiency).

Estimator: permutation sampling, as sage-importance's default PermutationEstimator. Each sample is one
data row (x, y) and a random feature order pi from the row's own stream (seed, row id, pass); the row's
loss is evaluated on the prefixes of pi, and each feature's contribution is the loss decrease when it
joins. Why not the kernel (regression) estimator:

- *Unbiased at any per-row budget.* A permutation's marginal contributions are unbiased for the row's
  Shapley values of the loss game, and SAGE values are the mean of those over rows, so the average over
  samples converges to SAGE whatever the budget per row. A per-row regression (KernelShap's leverage
  plan and ``solvers.solve_shapley`` on each row's loss game) is only consistent as the per-row budget
  grows: its bias does not average away over rows. sage-importance's KernelEstimator is unbiased with
  the exact A matrix of iid Shapley-kernel coalitions (not tfexplain's stratified leverage plan), and
  needs v(all) over the whole data set first: a pass before the first estimate, on a stream.
- *Efficiency holds sample by sample.* A sample's contributions telescope to loss(f_empty) - loss(f(x))
  of its row, so sum(values) equals the estimated v(all) to rounding, at every stop.
- *Plain standard errors, streamable.* Samples are independent, so the standard error is the sample
  standard deviation / sqrt(samples) (the central limit theorem, no delta method), and the sufficient
  statistics are a count, a mean and a sum of squared deviations per feature (merged across batches by
  Chan's formula, in float64): O(d) memory whatever the data set's size.

``antithetic=True`` also evaluates each order's reverse (the complements of its prefixes) and averages
the two contributions (Mitchell et al. 2022): every pairwise interaction then goes exactly half to each
side, so for games of order <= 2 -- the squared error of a linear model under the marginal imputer -- a
sample is the row's exact Shapley values and only the spread over rows is left. It costs twice the
model rows per sample, and when the spread over rows dominates the variance (most data sets, and both
small models of the tests: single orders had 0.6-1.0x the variance of antithetic pairs at equal model
rows) a second row is worth more than the reverse order; so it is off by default, and pays on small data
sets visited in many passes, or on near-additive models.

The convergence stop is sage-importance's: after each step, stop once the largest standard error is
below ``threshold`` times the range of the values (max - min).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import tensorflow as tf

from . import _diagnostics, _random
from ._validation import as_int, as_matrix, as_names, as_seed, as_weights, check_columns, frame_columns
from .background import BackgroundSummary
from .evaluation import DEFAULT_BATCH_SIZE, evaluate
from .explanation import GlobalImportance
from .maskers import BackgroundMasker
from .models import ModelAdapter, as_2d
from .samplers import Sample

DEFAULT_THRESHOLD = 0.025           # sage-importance's convergence threshold
DEFAULT_MAX_SAMPLES = 2**20         # samples (row visits) at most when stopping on convergence
DEFAULT_MIN_SAMPLES = 64            # samples before the convergence test is trusted
LOSSES = ("mse", "cross_entropy")
CROSS_ENTROPY_EPS = 1e-12           # probabilities clipped to [eps, 1 - eps] (sage-importance's)


# ---- losses (float64, one value per row) --------------------------------------------------------------
def mse_loss(y_true, y_pred):
    """Squared error summed over outputs: y_true, y_pred [rows, o] -> float64 [rows]."""
    diff = tf.cast(y_pred, tf.float64) - tf.cast(y_true, tf.float64)
    return tf.reduce_sum(diff * diff, axis=-1)


def cross_entropy_loss(y_true, y_pred):
    """Cross entropy of probabilities: y_pred [rows, o] (o = 1: P(class 1) of a binary model), y_true
    [rows, o] label probabilities (one-hot for class labels; o = 1: P(class 1) in [0, 1]) -> float64
    [rows]. Predictions are clipped to [1e-12, 1 - 1e-12], as sage-importance does; a prediction
    outside [0, 1] (not a probability) gives NaN."""
    p = tf.cast(y_pred, tf.float64)
    t = tf.cast(y_true, tf.float64)
    ok = tf.reduce_all(_diagnostics.inside_unit(p), axis=-1)
    p = tf.clip_by_value(p, CROSS_ENTROPY_EPS, 1.0 - CROSS_ENTROPY_EPS)
    if p.shape[-1] == 1:
        loss = -(t[:, 0] * tf.math.log(p[:, 0]) + (1.0 - t[:, 0]) * tf.math.log1p(-p[:, 0]))
    else:
        loss = -tf.reduce_sum(t * tf.math.log(p), axis=-1)
    return tf.where(ok, loss, tf.constant(np.nan, tf.float64))


# ---- the estimator's pure parts -----------------------------------------------------------------------
def permutation_ranks(key, rows, visits, d: int) -> tf.Tensor:
    """Each row's random feature order for its pass ``visits`` [c]: int32 [c, d], the position of every
    feature in the order (a function of (key, row id, visit) only: block ``visit`` of the row's stream)."""
    u = _random.uniform_row_blocks(key, rows, visits, d)                                     # [c, d]
    order = tf.argsort(u, axis=-1, stable=True)
    return tf.argsort(order, axis=-1, stable=True)


def permutation_coalitions(ranks, antithetic: bool = False) -> tf.Tensor:
    """The coalitions a sample evaluates, float32 [c, d - 1, d]: the prefixes of sizes 1..d-1 of each
    row's order (feature f is in prefix k when its position is < k); with ``antithetic``, [c, 2 (d - 1), d]:
    then their complements (the prefixes of the reversed order, sizes d-1..1)."""
    d = ranks.shape[-1]
    sizes = tf.range(1, d, dtype=ranks.dtype)
    prefixes = tf.cast(ranks[:, None, :] < sizes[None, :, None], tf.float32)
    return tf.concat([prefixes, 1.0 - prefixes], axis=1) if antithetic else prefixes


def permutation_contributions(ranks, prefix_loss, empty_loss, full_loss, complement_loss=None) -> tf.Tensor:
    """Each feature's loss decrease when it joins the row's order: float64 [c, d].

    prefix_loss [c, d-1]: the loss with prefix k = 1..d-1 of the order; empty_loss, full_loss [c]. With
    P = (empty, prefixes, full) the feature at position j adds P_j - P_{j+1}. complement_loss [c, d-1]
    (antithetic): the loss with each prefix's complement; with C = (full, complements, empty) the
    reversed order adds C_{j+1} - C_j, and the two are averaged. The d contributions sum to
    empty_loss - full_loss exactly (they telescope)."""
    e, f = empty_loss[:, None], full_loss[:, None]
    p = tf.concat([e, prefix_loss, f], axis=1)                     # [c, d + 1]
    by_position = p[:, :-1] - p[:, 1:]
    if complement_loss is not None:
        q = tf.concat([f, complement_loss, e], axis=1)
        by_position = 0.5 * (by_position + (q[:, 1:] - q[:, :-1]))
    return tf.gather(by_position, ranks, batch_dims=1)


def batch_moments(samples) -> dict:
    """Sufficient statistics of samples [c, ...] (float64): count, mean and the sum of squared
    deviations from the mean (M2), merged across batches by :func:`merge_moments`."""
    c = tf.cast(tf.shape(samples)[0], tf.float64)
    mean = tf.reduce_sum(samples, 0) / tf.maximum(c, 1.0)
    dev = samples - mean
    return {"count": c, "mean": mean, "m2": tf.reduce_sum(dev * dev, 0)}


def merge_moments(a: Optional[dict], b: dict) -> dict:
    """Chan et al.'s pairwise merge of two :func:`batch_moments` (numpy float64; ``a`` None: ``b``)."""
    b = {k: np.asarray(v, np.float64) for k, v in b.items()}
    if a is None or a["count"] == 0:
        return b
    if b["count"] == 0:
        return a
    n = a["count"] + b["count"]
    delta = b["mean"] - a["mean"]
    return {"count": n, "mean": a["mean"] + delta * (b["count"] / n),
            "m2": a["m2"] + b["m2"] + delta * delta * (a["count"] * b["count"] / n)}


def moments_stderr(m: dict) -> np.ndarray:
    """Standard error of the mean: sqrt(M2 / (n - 1) / n); NaN below two samples."""
    n = float(m["count"])
    if n < 2:
        return np.full(np.shape(m["mean"]), np.nan)
    return np.sqrt(np.maximum(m["m2"], 0.0) / (n - 1.0) / n)


def convergence_ratio(values, stderr) -> float:
    """sage-importance's criterion: max stderr / (max value - min value); 0 when everything is exactly
    zero (a model whose loss no feature changes), inf when the range is zero but not the errors."""
    se = float(np.max(stderr))
    gap = float(np.max(values) - np.min(values))
    if not np.isfinite(se):
        return math.inf
    if gap <= 0.0:
        return 0.0 if se == 0.0 else math.inf
    return se / gap


# ---- result -------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class SageValues(GlobalImportance):
    """SAGE values of the features (a :class:`~tfexplain.GlobalImportance`: ``plots.bar`` draws it).

    values (= importance) [d]: each feature's share of the loss reduction (loss units; may be negative
        for a feature that hurts); stderr [d]: their standard errors over the samples;
    total: v(all) = base_loss - model_loss estimated on the same samples (sum(values) == total);
    total_stderr: its standard error; base_loss, model_loss: mean loss of f_empty and of f(x);
    n: samples (row visits: one order each, or an order and its reverse with ``antithetic``);
    n_evals: model-input rows evaluated;
    converged: whether the convergence test stopped the run; ratio: max stderr / (max - min value) at
    the end; threshold: the test's threshold (None: no test); loss: the loss's name; seconds: wall time.
    """

    total: float = math.nan
    total_stderr: float = math.nan
    base_loss: float = math.nan
    model_loss: float = math.nan
    n_evals: int = 0
    converged: bool = False
    ratio: float = math.nan
    threshold: Optional[float] = None
    loss: str = ""
    seconds: float = 0.0

    def __repr__(self):
        width = max([len(n) for n in self.feature_names] + [7])
        scale = float(np.max(np.abs(self.importance))) + 1e-12
        stop = (f"converged: ratio {self.ratio:.3g} < {self.threshold}" if self.converged else
                f"ratio {self.ratio:.3g}" + ("" if self.threshold is None else f", not below {self.threshold}"))
        lines = [f"SAGE values ({self.loss} loss reduction) ± standard error over {self.n} samples ({stop})"]
        for j in self.order():
            v, se = self.importance[j], self.stderr[j]
            bar = ("+" if v >= 0 else "-") * int(round(abs(v) / scale * 20))
            lines.append(f"    {self.feature_names[j]:<{width}}  {v:>+10.4g} ± {se:<9.3g} {bar}")
        lines.append(f"  sum = v(all) = {self.total:.4g} ± {self.total_stderr:.3g}  "
                     f"(base loss {self.base_loss:.4g} -> model loss {self.model_loss:.4g})")
        return "\n".join(lines)


# ---- data ---------------------------------------------------------------------------------------------
def _golden_stride(n: int) -> int:
    """A step coprime with n near n / golden ratio: i -> (offset + stride i) mod n visits every row once
    per pass, spread evenly over the array's order (a sorted array is sampled like a shuffled one)."""
    if n <= 2:
        return 1
    stride = max(1, int(round(n * 0.6180339887498949)))
    while math.gcd(stride, n) != 1:
        stride += 1
    return stride


def _mix64(seed: np.uint64, visits: np.ndarray) -> np.ndarray:
    """SplitMix64 of (seed, pass) in wrapping uint64 arithmetic: each pass's offset into the array."""
    with np.errstate(over="ignore"):
        z = seed * np.uint64(0x9E3779B97F4A7C15) + visits * np.uint64(0xD1B54A32D192ED03)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _is_dataset(data) -> bool:
    return isinstance(data, tf.data.Dataset)


class Sage:
    """SAGE values of a model's features over a data set (Covert, Lundberg & Lee 2020).

    sage = Sage(model, background, loss="mse"); result = sage(x, y, seed=0)
    result.values [d], result.stderr [d], result.total (= sum of values), result.feature_names.

    model: as for :class:`~tfexplain.KernelShap` (Keras model, tf.Module, tf.function, callable of TF
        ops; other callables run through ``tf.numpy_function``), float32 [rows, d] -> [rows] or
        [rows, o]. For ``loss="cross_entropy"`` it must output probabilities (a sigmoid's [rows] or
        [rows, 1] for a binary model, softmax [rows, o] for several classes).
    background: [K, d] rows the absent features are drawn from, averaged (the marginal imputer;
        array, tensor, DataFrame, or a ``tfexplain.background`` summary ``(data, weights)``); the cost
        is linear in K (sage-importance recommends at most ~1000 rows, shap's summaries 50-100).
    loss: "mse" (squared error summed over outputs), "cross_entropy" (sage's "cross entropy"), or a
        callable ``loss(y_true, y_pred) -> [rows]`` of TF ops, y_true float32 [rows, k] (the labels
        as given; [rows] becomes [rows, 1]), y_pred float32 [rows, o] (Keras' per-row losses such as
        ``keras.losses.mean_absolute_error`` fit; a loss object must use ``reduction=None``).
    background_weights: optional [K] non-negative weights of the background rows.
    antithetic: also evaluate each order's reverse and average the two (exact per row for games of
        order <= 2, e.g. the squared error of a linear model; twice the model rows per sample): see the
        module's notes. Default False (sage-importance's estimator).
    feature_names, output_key: as for KernelShap. batch_size: most model-input rows evaluated at
        once; a step takes ``instances_per_step`` data rows (each evaluates (d - 1) K + 1 rows, or
        2 (d - 1) K + 1 with ``antithetic``).
    """

    method = "SAGE"

    def __init__(self, model, background, loss="cross_entropy", *, antithetic=False, background_weights=None,
                 feature_names=None, output_key=None, batch_size=DEFAULT_BATCH_SIZE):
        if isinstance(background, BackgroundSummary):
            if background_weights is not None:
                raise ValueError("`background` is a summary with its own weights; do not pass `background_weights`.")
            background, background_weights = background.data, background.weights
        self._columns = frame_columns(background)
        bg = as_matrix(background, "background")
        self.background = bg
        self.n_features = d = bg.shape[1]
        bw = as_weights(background_weights, len(bg))
        if callable(loss):
            self.loss_name, self._loss = getattr(loss, "__name__", type(loss).__name__), loss
        elif isinstance(loss, str) and loss.replace(" ", "_") in LOSSES:
            self.loss_name = loss.replace(" ", "_")
            self._loss = mse_loss if self.loss_name == "mse" else cross_entropy_loss
        else:
            raise ValueError(f"`loss` must be one of {list(LOSSES)} or a callable loss(y_true, y_pred) -> [rows], "
                             f"got {loss!r}.")
        if not isinstance(antithetic, bool):
            raise TypeError(f"`antithetic` must be a bool, got {type(antithetic).__name__}.")
        self.antithetic = antithetic
        self.batch_size = as_int(batch_size, "batch_size", minimum=1)
        self.feature_names = as_names(self._columns if feature_names is None else feature_names, d,
                                      "feature_names", "x")
        self.masker = BackgroundMasker(bg, bw)
        self.model = model
        self._adapter = ModelAdapter(model, bg, output_key)
        self.n_outputs = self._adapter.n_outputs
        self.empty_prediction = self._mean_background_output()
        self._step_fns = {}

    def _model_outputs(self, rows):
        return as_2d(self._adapter.fn(rows), self._adapter.squeeze)

    def _mean_background_output(self) -> np.ndarray:
        """f_empty: the (weighted) mean model output over the background [o], computed once; checks
        that the model is finite there (and gives probabilities, for cross entropy)."""
        bg = self.background
        outs = np.concatenate([self._model_outputs(tf.constant(bg[i:i + self.batch_size])).numpy()
                               for i in range(0, len(bg), self.batch_size)], 0).astype(np.float64)
        if not np.all(np.isfinite(outs)):
            raise ValueError("`model` returned NaN or Inf on some `background` rows; it must give finite outputs.")
        if self.loss_name == "cross_entropy":
            if np.any(outs < -_diagnostics.PROB_SLACK) or np.any(outs > 1 + _diagnostics.PROB_SLACK):
                raise ValueError(
                    f"loss='cross_entropy' needs probabilities, but the model's outputs on the background range "
                    f"over [{outs.min():.4g}, {outs.max():.4g}]: end the model with a sigmoid / softmax (or use "
                    "loss='mse').")
            if self.n_outputs > 1 and not np.allclose(outs.sum(1), 1.0, atol=1e-3):
                raise ValueError("loss='cross_entropy' with several outputs needs class probabilities summing to 1 "
                                 "per row (a softmax); the model's rows do not.")
        return (outs.T @ self.masker.weights.astype(np.float64)).astype(np.float32)

    # ---- graph ------------------------------------------------------------------------------------
    @property
    def rows_per_sample(self) -> int:
        """Model-input rows one sample evaluates: d - 1 coalitions (2 (d - 1) with ``antithetic``) of K
        background rows each, and f(x)."""
        return (1 + self.antithetic) * (self.n_features - 1) * self.masker.rows_per_sample + 1

    @property
    def instances_per_step(self) -> int:
        """Data rows per graph call: as many as fit ``batch_size`` model-input rows."""
        return max(1, self.batch_size // self.rows_per_sample)

    def sample_graph(self, x, y, seed, rows, visits) -> dict:
        """One sample of each row, as TensorFlow ops: x float32 [c, d], y float32 [c, k]
        (labels, prepared as for the loss), seed int64 [], rows int64 [c] (global row ids), visits int64 [c]
        (each row's pass over the data: its order depends on (seed, row id, visit) only) -> float64
        ``contributions`` [c, d], ``empty_loss`` and ``full_loss`` [c] (their difference is the sum of
        the contributions)."""
        d, o = self.n_features, self.n_outputs
        c = tf.shape(x)[0]
        full = self._model_outputs(x)
        empty = tf.broadcast_to(tf.constant(self.empty_prediction)[None], [c, o])
        empty_loss, full_loss = self._row_loss(y, empty), self._row_loss(y, full)
        if d == 1:
            return {"contributions": (empty_loss - full_loss)[:, None], "empty_loss": empty_loss,
                    "full_loss": full_loss}
        key = _random.split_keys(_random.seed_to_tensor(seed), 1)[0]
        ranks = permutation_ranks(key, rows, visits, d)
        z = permutation_coalitions(ranks, self.antithetic)                      # [c, m, d]
        m = z.shape[1]
        pred = evaluate(self._model_outputs, self.masker, x, Sample(z, None, None), self.batch_size, o)
        ys = tf.reshape(tf.repeat(y[:, None, :], m, axis=1), [-1, tf.shape(y)[1]])
        losses = tf.reshape(self._row_loss(ys, tf.reshape(pred, [-1, o])), [c, m])
        phi = permutation_contributions(ranks, losses[:, : d - 1], empty_loss, full_loss,
                                        losses[:, d - 1:] if self.antithetic else None)
        return {"contributions": phi, "empty_loss": empty_loss, "full_loss": full_loss}

    def _row_loss(self, y, pred):
        out = self._loss(y, pred)
        out = tf.convert_to_tensor(out)
        if out.shape.rank == 2 and out.shape[-1] == 1:
            out = out[:, 0]
        if out.shape.rank != 1:
            raise ValueError(f"`loss` must return one loss per row, shape [rows]; it returned shape {out.shape} "
                             "(a Keras loss object: pass reduction=None).")
        return tf.cast(out, tf.float64)

    def step_graph(self, x, y, seed, rows, visits) -> dict:
        """:meth:`sample_graph` reduced to the batch's sufficient statistics (:func:`batch_moments`) of
        the contributions, of v(all)'s per-row estimate and of the two losses."""
        s = self.sample_graph(x, y, seed, rows, visits)
        total = s["empty_loss"] - s["full_loss"]
        both = tf.stack([s["empty_loss"], s["full_loss"]], axis=1)
        return {"values": batch_moments(s["contributions"]), "total": batch_moments(total),
                "losses": batch_moments(both)}

    def step_fn(self, label_width: int):
        """The :meth:`step_graph` as a ``tf.function`` of (x, y, seed, rows, visits) with a polymorphic
        batch: traced once per label width, whatever the batch sizes."""
        if label_width not in self._step_fns:
            signature = [tf.TensorSpec([None, self.n_features], tf.float32),
                         tf.TensorSpec([None, label_width], tf.float32), tf.TensorSpec([], tf.int64),
                         tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)]
            self._step_fns[label_width] = tf.function(functools.partial(self.step_graph), autograph=False,
                                                      input_signature=signature)
        return self._step_fns[label_width]

    @property
    def tracing_count(self) -> int:
        """How many times the step graph was traced (1 per label width, whatever the batch sizes)."""
        return sum(f.experimental_get_tracing_count() for f in self._step_fns.values())

    # ---- labels -----------------------------------------------------------------------------------
    def prepare_labels(self, y, n: int) -> np.ndarray:
        """Labels as the loss takes them, float32 [n, k]: for "mse" [n, o] targets; for "cross_entropy"
        class probabilities [n, o] (class indices [n] become one-hot; a binary model's labels in {0, 1}
        or P(class 1), [n, 1]); for a callable loss the labels as given, [n] as [n, 1]."""
        if hasattr(y, "numpy") and callable(y.numpy):
            y = y.numpy()
        if hasattr(y, "to_numpy") and callable(y.to_numpy):
            y = y.to_numpy()
        y = np.asarray(y)
        if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
            raise TypeError(f"`y` must be numeric, got dtype {y.dtype}.")
        if y.ndim == 0 or len(y) != n:
            raise ValueError(f"`y` must have one label per row of `x` ({n}), got shape {y.shape}.")
        y = y.reshape(n, -1) if y.ndim != 1 else y
        if not np.all(np.isfinite(y)):
            raise ValueError("`y` contains NaN or Inf.")
        o = self.n_outputs
        if self.loss_name == "cross_entropy":
            if o == 1:
                y = y.reshape(n, -1)
                if y.shape[1] != 1 or np.any(y < 0) or np.any(y > 1):
                    raise ValueError(f"`y` of a binary model (one probability output) must be labels in {{0, 1}} "
                                     f"(or P(class 1)), shape [n]; got shape {y.shape}, range "
                                     f"[{y.min():.4g}, {y.max():.4g}].")
                return y.astype(np.float32)
            if y.ndim == 1 or y.shape[1] == 1:
                labels = y.reshape(-1)
                if np.any(labels != np.round(labels)) or np.any(labels < 0) or np.any(labels >= o):
                    raise ValueError(f"`y` as class indices must be integers in [0, {o}), got values in "
                                     f"[{labels.min():.4g}, {labels.max():.4g}].")
                return np.eye(o, dtype=np.float32)[labels.astype(np.int64)]
            if y.shape[1] != o:
                raise ValueError(f"`y` must be class indices [n] or class probabilities [n, {o}], got shape {y.shape}.")
            return y.astype(np.float32)
        y = y.reshape(n, -1).astype(np.float32)
        if self.loss_name == "mse" and y.shape[1] != o:
            raise ValueError(f"`y` must have the model's {o} output(s) per row for loss='mse', got shape {y.shape}.")
        return y

    # ---- boundary ---------------------------------------------------------------------------------
    def __call__(self, x, y=None, seed: int = 0, *, threshold: Optional[float] = DEFAULT_THRESHOLD,
                 max_samples: Optional[int] = None, min_samples: int = DEFAULT_MIN_SAMPLES,
                 verbose: int = 0) -> SageValues:
        """SAGE values over the data (x, y).

        x, y: arrays / tensors / DataFrame [n, d] and labels [n] or [n, k]; or, with ``y=None``, a
            ``tf.data.Dataset`` of ``(x, y)`` (batched or not) or an iterable of ``(x, y)`` batches:
            streamed, a step of at most ``instances_per_step`` rows at a time (memory bounded by
            ``batch_size`` model rows whatever the data set's size).
        seed: int; a row's feature orders depend on (seed, row id, pass) only (row id: the row's index
            in x, or its position in the stream).
        threshold: stop once max stderr / (max value - min value) < threshold, checked after every step
            from ``min_samples`` samples on (sage-importance's test, default 0.025); None: no test.
        max_samples: most samples (row visits). Default: one pass over the data when ``threshold`` is
            None, else ``DEFAULT_MAX_SAMPLES`` (2^20). Passes repeat over the data (new orders each
            pass) until the stop; a one-shot iterator gives one pass at most.
        Arrays are visited in a seeded order spread evenly over the rows (i -> offset + stride i mod n,
        stride coprime with n), so a stop within a pass sees a sample of the whole array even when it is
        sorted. A stream is visited in its order: shuffle it (``dataset.shuffle``) when a convergence
        stop may end the first pass early.
        verbose: 1 prints the samples and the convergence ratio after each step.

        Raises ValueError / TypeError for bad arguments (naming them), and ValueError when the loss is
        not finite on some rows (NaN / Inf from the model or the loss; for cross entropy, model outputs
        outside [0, 1]).
        """
        seed = as_seed(seed)
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
                raise ValueError(f"`threshold` must be a number in (0, 1) or None, got {threshold!r}.")
            threshold = float(threshold)
        if max_samples is not None:
            max_samples = as_int(max_samples, "max_samples", minimum=1)
        min_samples = as_int(min_samples, "min_samples", minimum=2)
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1, got {verbose!r}.")
        if y is not None:
            if self._columns is not None:
                check_columns(x, self._columns)
            data = as_matrix(x, "x", n_features=self.n_features)
            labels = self.prepare_labels(y, len(data))
            if len(data) >= 2**32:
                raise ValueError("`x` must have fewer than 2**32 rows (row ids are 32-bit counters).")
            steps = self._array_steps(data, labels, seed)
            one_pass = len(data)
        else:
            if isinstance(x, np.ndarray) or hasattr(x, "shape") and not _is_dataset(x):
                raise TypeError("`y` is missing: pass labels `y` with an array `x`, or a dataset / iterable of "
                                "(x, y) batches as `x`.")
            steps = self._stream_steps(x)
            one_pass = None
        if max_samples is None:
            if threshold is None and one_pass is None:
                raise ValueError("`max_samples` is needed with `threshold=None` on a stream (one pass = its length, "
                                 "unknown in advance); or set a `threshold`.")
            max_samples = one_pass if threshold is None else DEFAULT_MAX_SAMPLES
        return self._run(steps, seed, threshold, max_samples, min_samples, verbose)

    def _array_steps(self, data, labels, seed):
        """Steps of (x, y, row ids, visits) over the array, pass after pass without end: sample k is row
        (offset_p + stride (k mod n)) mod n of pass p = k // n, so every pass visits each row once, in a
        seeded order spread evenly over the rows; a step may span passes (small arrays)."""
        n, step = len(data), self.instances_per_step
        stride = np.uint64(_golden_stride(n))
        k = 0
        while True:
            ks = np.arange(k, k + step, dtype=np.uint64)
            visits = ks // np.uint64(n)
            offsets = _mix64(np.uint64(seed), visits) % np.uint64(n)
            # (offset + stride * position) mod n; stride, position < n < 2^32: the product fits uint64
            idx = ((offsets + (stride * (ks % np.uint64(n))) % np.uint64(n)) % np.uint64(n)).astype(np.int64)
            yield data[idx], labels[idx], idx, visits.astype(np.int64)
            k += step

    def _stream_steps(self, data):
        """Steps of (x, y, row ids, visits) over a dataset or iterable of (x, y) batches, row ids numbering
        the stream's rows from 0; passes re-iterate it when it can be (a dataset, a list), else one pass;
        an empty pass ends the stream."""
        if _is_dataset(data):
            spec = data.element_spec
            if not isinstance(spec, tuple) or len(spec) != 2:
                raise TypeError("a dataset given as `x` must yield (x, y) pairs (batched or not).")
            if spec[0].shape.rank == 1:
                data = data.batch(self.instances_per_step)
        one_shot = not _is_dataset(data) and iter(data) is data
        visit = 0
        while True:
            row = 0
            for item in (data.as_numpy_iterator() if _is_dataset(data) else data):
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise TypeError("each batch of a stream must be an (x, y) pair.")
                xb = as_matrix(item[0], "x", n_features=self.n_features, allow_vector=True)
                yb = self.prepare_labels(item[1], len(xb))
                if row + len(xb) > 2**32:
                    raise ValueError("a stream must have at most 2**32 rows (row ids are 32-bit counters).")
                for start in range(0, len(xb), self.instances_per_step):
                    end = min(len(xb), start + self.instances_per_step)
                    yield (xb[start:end], yb[start:end], np.arange(row + start, row + end, dtype=np.int64),
                           np.full(end - start, visit, np.int64))
                row += len(xb)
            if one_shot or row == 0:
                return
            visit += 1

    def _run(self, steps, seed, threshold, max_samples, min_samples, verbose) -> SageValues:
        start_time = time.perf_counter()
        stats = {"values": None, "total": None, "losses": None}
        converged, ratio = False, math.inf
        done = 0
        seed_t = tf.constant(seed, tf.int64)
        for xb, yb, ids, visits in steps:
            take = min(len(xb), max_samples - done)
            xb, yb, ids, visits = xb[:take], yb[:take], ids[:take], visits[:take]
            out = self.step_fn(yb.shape[1])(tf.constant(xb), tf.constant(yb), seed_t, tf.constant(ids),
                                            tf.constant(visits))
            out = tf.nest.map_structure(lambda t: t.numpy(), out)
            if not (np.all(np.isfinite(out["values"]["mean"])) and np.all(np.isfinite(out["losses"]["mean"]))):
                raise ValueError(self._nonfinite_message(ids))
            for k in stats:
                stats[k] = merge_moments(stats[k], out[k])
            done += take
            ratio = convergence_ratio(stats["values"]["mean"], moments_stderr(stats["values"]))
            if verbose:
                print(f"SAGE: {done} samples (pass {int(visits[-1]) + 1}), ratio {ratio:.4g}"
                      + ("" if threshold is None else f" (stops below {threshold})"), flush=True)
            converged = threshold is not None and done >= min_samples and ratio < threshold
            if converged or done >= max_samples:
                break
        if done == 0:
            raise ValueError("the data has no rows.")
        return self._result(stats, done, converged, ratio, threshold, time.perf_counter() - start_time)

    def _nonfinite_message(self, ids) -> str:
        what = "NaN or Inf" + (", or outputs outside [0, 1]" if self.loss_name == "cross_entropy" else "")
        return (f"the loss is not finite on some of the rows {ids[:5].tolist()}{'...' if len(ids) > 5 else ''}: "
                f"the model (or the loss) gave {what} on them or on their imputed rows.")

    def _result(self, stats, done, converged, ratio, threshold, seconds) -> SageValues:
        values = stats["values"]["mean"]
        stderr = moments_stderr(stats["values"])
        losses = stats["losses"]["mean"]
        return SageValues(
            feature_names=list(self.feature_names), output_names=[f"{self.loss_name} loss reduction"],
            importance=values, stderr=stderr, n=int(done), method="SAGE", counts=np.array([done], np.int64),
            total=float(stats["total"]["mean"]), total_stderr=float(moments_stderr(stats["total"])),
            base_loss=float(losses[0]), model_loss=float(losses[1]), n_evals=int(done) * self.rows_per_sample,
            converged=converged, ratio=float(ratio), threshold=threshold, loss=self.loss_name, seconds=seconds)
