"""Explainers: a sampler, a masker, a kernel and a solver, composed in one ``tf.function``.

``KernelShap`` = coalition sampler + background masker + Shapley-kernel weights + efficiency-constrained
WLS; ``Lime`` = Gaussian tabular sampler + points as they are + exponential kernel + ridge with
feature selection. Everything between the input batch and the attributions runs in one graph
(polymorphic batch, chunked model evaluation, no Python loop over instances or samples).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import tensorflow as tf

from . import _random, kernels, solvers
from ._validation import as_choice, as_int, as_matrix, as_names, as_seed
from .evaluation import chunked_map, evaluate
from .explanation import Explanation
from .maskers import BackgroundMasker, PointMasker
from .models import as_2d, as_model_fn, probe_output
from .samplers import GaussianTabularSampler, KernelSampler, LeverageSampler

DEFAULT_BATCH_SIZE = 2**17
MAX_EXACT_FEATURES = 20
MAX_ADJUST_SAMPLES = 256
_LOGIT_EPS = 1e-7


def _link_fn(name):
    if name == "identity":
        return lambda t: t
    return lambda t: (lambda p: tf.math.log(p) - tf.math.log1p(-p))(
        tf.clip_by_value(t, _LOGIT_EPS, 1.0 - _LOGIT_EPS))


def _row_ids(n: int, offset: int) -> np.ndarray:
    if offset + n > 2**32:
        raise ValueError(f"`row_offset` + rows must stay below 2**32 (row ids are 32-bit counters), got {offset + n}.")
    return np.arange(offset, offset + n, dtype=np.int64)


class Explainer:
    """Base class: owns the model adapter, target selection, the graph and the call boundary."""

    method = "explainer"

    def _setup(self, model, probe, *, n_features, sampler, masker, kernel, target, default_target,
               link, batch_size, jit_compile, feature_names, output_names, output_key):
        self.n_features = n_features
        self.model = model
        self.sampler, self.masker, self.kernel = sampler, masker, kernel
        self.batch_size = as_int(batch_size, "batch_size", minimum=1)
        if not isinstance(jit_compile, bool):
            raise TypeError(f"`jit_compile` must be a bool, got {type(jit_compile).__name__}.")
        self.jit_compile = jit_compile
        self.link = as_choice(link, "link", {"identity", "logit"})
        self._link = _link_fn(self.link)
        self._model_fn = as_model_fn(model, output_key)
        n_out, self._squeeze = probe_output(self._model_fn, probe)
        self.targets, self._single = self._resolve_target(target, default_target, n_out)
        self.n_outputs = len(self.targets)
        self.feature_names = as_names(feature_names, n_features, "feature_names", "x")
        all_names = as_names(output_names, n_out, "output_names", "output ")
        self.output_names = [all_names[t] for t in self.targets]
        # x, seed, and each row's global index (its random stream)
        signature = [tf.TensorSpec([None, n_features], tf.float32),
                     tf.TensorSpec([], tf.int64), tf.TensorSpec([None], tf.int64)]
        # partial objects, not lambdas or methods: TF counts retracing per code object, so explainers
        # sharing one would warn about "retracing" merely for being many.
        self._fn = tf.function(functools.partial(self._compiled_graph, jit_compile), autograph=False,
                               jit_compile=jit_compile, input_signature=signature)
        self._samples_fn = tf.function(functools.partial(self._sample_graph), autograph=False,
                                       input_signature=signature)

    @staticmethod
    def _resolve_target(target, default, n_out):
        if target is None:
            target = default(n_out)
            if target is None:
                return list(range(n_out)), n_out == 1
        if isinstance(target, (list, tuple, np.ndarray)):
            idx = [as_int(t, "target") for t in target]
            single = False
        else:
            idx = [as_int(target, "target")]
            single = True
        if not idx:
            raise ValueError("`target` is an empty list.")
        for t in idx:
            if not 0 <= t < n_out:
                raise ValueError(f"`target` {t} is out of range: the model has {n_out} output(s).")
        return idx, single

    # ---- graph -------------------------------------------------------------------------------
    def _model_outputs(self, rows):
        """Model on rows -> [rows, o] of the explained outputs."""
        out = as_2d(self._model_fn(rows), self._squeeze)
        return tf.gather(out, tf.constant(self.targets, tf.int32), axis=1)

    def _keys(self, seed):
        """The sampler's stream keys, then one for the solver (e.g. bootstrap)."""
        return _random.split_keys(_random.seed_to_tensor(seed), self.sampler.n_keys + 1)

    def _instance_floats(self) -> int:
        """Floats one instance holds in the graph outside the model call: its samples (coalitions or
        perturbations, model-space points) and their values."""
        return self.sampler.n_samples * (2 * self.n_features + self.n_outputs)

    @property
    def instances_per_chunk(self) -> int:
        """Instances sampled and solved together: as many as fit the floats of one model-input chunk
        (``batch_size`` rows of d features). Their model rows are evaluated in chunks of
        ``batch_size`` rows inside, so peak memory is bounded by ``batch_size`` either way, and the
        per-instance work runs as few, wide ops (what keeps an accelerator busy)."""
        return max(1, self.batch_size * self.n_features // max(1, self._instance_floats()))

    def _compiled_graph(self, jit_compile, x, seed, rows):
        """The explain graph, traced for XLA when ``jit_compile`` (see ``solvers.compiled_solves``)."""
        with solvers.compiled_solves(jit_compile):
            return self._graph(x, seed, rows)

    def _graph(self, x, seed, rows):
        keys = self._keys(seed)
        cap = self.instances_per_chunk

        def chunk(e):
            return self._explain_chunk(keys, e["rows"], e["x"])

        return chunked_map(chunk, {"rows": rows, "x": x}, cap, self._output_spec())

    def _explain_chunk(self, keys, rows, x):
        sample = self.sampler(keys, rows, x)
        y = self._link(evaluate(self._model_outputs, self.masker, x, sample, self.batch_size, self.n_outputs))
        fx = self._link(self._model_outputs(x))
        return self._solve(sample, y, fx, keys[-1], rows)

    def _sample_graph(self, x, seed, rows):
        keys = self._keys(seed)
        sample = self.sampler(keys, rows, x)
        y = self._link(evaluate(self._model_outputs, self.masker, x, sample, self.batch_size, self.n_outputs))
        weights = tf.broadcast_to(self.kernel(sample), tf.shape(sample.z)[:2])
        out = {"z": sample.z, "y": y, "weights": weights}
        if sample.points is not None:
            out["points"] = sample.points
        return out

    def samples(self, x, seed: int = 0, *, row_offset: int = 0) -> dict:
        """The samples an explain call with the same arguments fits its surrogate on, as numpy:
        ``z`` [n, m, p] (coalitions / standardized perturbations), ``y`` [n, m, o] their values,
        ``weights`` [n, m] the regression weights, and for LIME ``points`` [n, m, d] (model input).
        For inspection and testing; materializes n * m rows, so keep n small."""
        data = as_matrix(x, "x", n_features=self.n_features, allow_vector=True)
        rows = _row_ids(len(data), as_int(row_offset, "row_offset", minimum=0))
        out = self._samples_fn(tf.constant(data), tf.constant(as_seed(seed), tf.int64), rows)
        return {k: v.numpy() for k, v in out.items()}

    def _output_spec(self):
        raise NotImplementedError

    def _solve(self, sample, y, fx, key, rows):
        raise NotImplementedError

    # ---- boundary ------------------------------------------------------------------------------
    def __call__(self, x, seed: int = 0, *, row_offset: int = 0) -> Explanation:
        """Explains the rows of ``x`` [n, d] (or one row [d]).

        seed: int; row i's random stream depends on (seed, row_offset + i) only, so a dataset
        explained in any batching gives the same numbers as in one call.
        """
        data = as_matrix(x, "x", n_features=self.n_features, allow_vector=True)
        seed = as_seed(seed)
        rows = _row_ids(len(data), as_int(row_offset, "row_offset", minimum=0))
        return self._run(data, seed, rows)

    def _run(self, data: np.ndarray, seed: int, rows) -> Explanation:
        """Explains validated rows ``data`` whose random streams are the global row ids ``rows``."""
        start = time.perf_counter()
        out = self._fn(tf.constant(data), tf.constant(seed, tf.int64), tf.constant(rows, tf.int64))
        out = {k: v.numpy() for k, v in out.items()}
        seconds = time.perf_counter() - start
        return self._explanation(data, out, seconds)

    @property
    def tracing_count(self) -> int:
        """How many times the explain graph was traced (1 after any number of calls and batch sizes)."""
        return self._fn.experimental_get_tracing_count()

    @property
    def n_evals_per_instance(self) -> int:
        return self.sampler.n_samples * self.masker.rows_per_sample + 1

    def _signature_outputs(self, out):
        """Graph outputs renamed and shaped like the Explanation's fields (for exported signatures)."""
        sq = (lambda t: t[..., 0]) if self._single else (lambda t: t)
        result = {"values": sq(out["values"]), "model_output": sq(out["fx"])}
        if "stderr" in out:
            result["stderr"] = sq(out["stderr"])
        if "intercept" in out:
            result.update(base_values=sq(out["intercept"]), intercept=sq(out["intercept"]),
                          contributions=sq(out["contributions"]),
                          score=sq(out["score"]), local_pred=sq(out["local_pred"]))
        else:
            n = tf.shape(out["fx"])[0]
            result["base_values"] = sq(tf.broadcast_to(tf.constant(self.base_values), [n, self.n_outputs]))
        return result

    def _squeeze_out(self, a, axis=-1):
        return np.take(a, 0, axis=axis) if self._single else a

    def _common(self, data, out, seconds, **kw):
        n = len(data)
        return Explanation(
            data=data, feature_names=list(self.feature_names), output_names=list(self.output_names),
            method=self.method, model_output=self._squeeze_out(out["fx"]),
            n_evals=out.get("n_evals", np.full(n, self.n_evals_per_instance, np.int64)), seconds=seconds, **kw)


class KernelShap(Explainer):
    """KernelSHAP (Lundberg & Lee 2017) computed in one TensorFlow graph.

    explainer = KernelShap(model, background); exp = explainer(x, seed=0)

    model: Keras 3 / tf_keras model, tf.Module, tf.function, a loaded SavedModel's callable, or any
        callable of TF ops mapping float32 [rows, d] to [rows] or [rows, outputs].
    background: [k, d] rows that stand in for absent features (k >= 1; shap recommends <= 100,
        e.g. a k-means summary); background_weights: optional [k] weights.
    n_samples: coalitions per instance (default 2d + 2048, as shap); >= 2^d - 2 enumerates all of them
        and gives exact Shapley values.
    sampler: "leverage" (default; paired leverage-score sampling, Musco & Witter 2025), "kernel"
        (shap's KernelExplainer scheme) or "exact" (all 2^d - 2 coalitions, d <= 20).
    n_bootstrap: bootstrap replicates for ``exp.stderr`` (default 32; 0 skips the estimate).
    adjust: "auto" (default), True or False: regression adjustment (Witter, Liu & Musco 2025) -- fit a
        kernel ridge model with interactions up to order 3 to the sampled coalition values, take its
        exact Shapley values and estimate only the residual. "auto" uses it with the leverage sampler
        for budgets of at most 256 coalitions (its cost grows with the cube of the budget) without
        ``tolerance``.
    tolerance: if set (e.g. 0.01), sample in rounds of ``n_samples`` coalitions (default 10d) inside
        a graph loop until every attribution's standard error is below ``tolerance`` times the range
        of that instance's attributions (Covert & Lee 2021), or ``max_samples`` (default 20 rounds)
        is reached; the estimate pools all rounds, its standard error is the batch-means estimate
        over rounds, and ``exp.n_evals`` reports each instance's model evaluations.
    link: "identity" or "logit" (attributions in log-odds of the model's probability output).
    target: output index, list of indices, or None for every output.
    batch_size: most model-input rows evaluated at once (bounds peak memory).
    jit_compile: compile the explain graph with XLA.
    """

    method = "KernelShap"

    def __init__(self, model, background, *, n_samples=None, sampler="leverage", link="identity",
                 target=None, n_bootstrap=32, adjust="auto", tolerance=None, max_samples=None,
                 background_weights=None,
                 feature_names=None, output_names=None, batch_size=DEFAULT_BATCH_SIZE, jit_compile=False,
                 output_key=None):
        bg = as_matrix(background, "background")
        d = bg.shape[1]
        if background_weights is not None:
            bw = np.asarray(background_weights, np.float64).reshape(-1)
            if bw.shape != (len(bg),) or not np.all(np.isfinite(bw)) or np.any(bw < 0) or bw.sum() <= 0:
                raise ValueError(
                    f"`background_weights` must be {len(bg)} finite non-negative numbers with a positive sum.")
        else:
            bw = None
        sampler = as_choice(sampler, "sampler", {"leverage", "kernel", "exact"})
        if sampler == "exact":
            if d > MAX_EXACT_FEATURES:
                raise ValueError(f"`sampler='exact'` enumerates 2^d coalitions; d = {d} is above the limit of "
                                 f"{MAX_EXACT_FEATURES}. Use sampler='leverage' with a budget.")
            n_samples = 2**d - 2 if n_samples is None else n_samples
        if tolerance is not None:
            if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating)) or not tolerance > 0:
                raise ValueError(f"`tolerance` must be a positive number, got {tolerance!r}.")
            if n_samples is None:
                n_samples = max(d + 1, 10 * d)
        if n_samples is None:
            n_samples = 2 * d + 2048
        n_samples = as_int(n_samples, "n_samples")
        if n_samples < d + 1 and not (sampler == "exact" and n_samples == 2**d - 2):
            raise ValueError(f"`n_samples` must be at least d + 1 = {d + 1} coalitions, got {n_samples}.")
        if sampler == "exact":
            n_samples = 2**d - 2
        self.n_bootstrap = as_int(n_bootstrap, "n_bootstrap", minimum=0)
        if self.n_bootstrap == 1:
            raise ValueError("`n_bootstrap` must be 0 (no standard errors) or at least 2.")
        plan = KernelSampler(d, n_samples) if sampler == "kernel" else LeverageSampler(d, n_samples)
        self.tolerance, self.max_rounds = None, 1
        if tolerance is not None and not plan.exact:
            max_samples = 20 * plan.n_samples if max_samples is None else as_int(max_samples, "max_samples")
            if max_samples < 2 * plan.n_samples:
                raise ValueError(f"`max_samples` must allow at least two rounds of {plan.n_samples} coalitions, "
                                 f"got {max_samples}.")
            self.tolerance, self.max_rounds = float(tolerance), max_samples // plan.n_samples
        elif max_samples is not None:
            raise ValueError("`max_samples` only applies together with `tolerance=`.")
        if adjust not in ("auto", True, False):
            raise ValueError(f"`adjust` must be 'auto', True or False, got {adjust!r}.")
        if adjust == "auto":  # sampler="kernel" stays shap's estimator
            adjust = sampler == "leverage" and plan.n_samples <= MAX_ADJUST_SAMPLES and self.tolerance is None
        if adjust and self.tolerance is not None:
            raise ValueError("`adjust=True` does not combine with `tolerance=` (rounds pool plain regressions).")
        self.adjust = bool(adjust) and not plan.exact
        masker = BackgroundMasker(bg, bw)
        self.background = bg
        self.sampler_name = sampler
        self._setup(model, bg, n_features=d, sampler=plan, masker=masker,
                    kernel=kernels.prior, target=target, default_target=lambda n_out: None, link=link,
                    batch_size=batch_size, jit_compile=jit_compile, feature_names=feature_names,
                    output_names=output_names, output_key=output_key)
        self.base_values = self._background_value()

    def _background_value(self):
        """link(weighted mean model output over the background), computed once, eagerly."""
        bg = self.background
        outs = [self._model_outputs(tf.constant(bg[i:i + self.batch_size])).numpy()
                for i in range(0, len(bg), self.batch_size)]
        mean = np.einsum("ko,k->o", np.concatenate(outs, 0).astype(np.float64), self.masker.weights)
        return self._link(tf.constant(mean, tf.float32)).numpy()

    @property
    def feature_scale(self) -> np.ndarray:
        """Per-feature standard deviation of the background (1 where constant)."""
        std = self.background.std(0)
        return np.where(std > 0, std, 1.0)

    @property
    def exact(self) -> bool:
        """True when the budget enumerates every coalition (values are exact Shapley values)."""
        return self.sampler.exact

    def _instance_floats(self) -> int:
        m, d = self.sampler.n_samples, self.n_features
        # the bootstrap runs once per call, or once per round with tolerance=
        boot = self.n_bootstrap if self.n_bootstrap > 0 and self.sampler.bootstrap.active else 0
        solver = 0
        if boot:  # the replicates' weighted designs [B, m', d] over complement-folded rows
            first, _, singles = solvers.complement_pairs(self.sampler.bootstrap.pair_ids)
            solver = boot * (len(first) + len(singles)) * (d + 1)
        if self.adjust:
            solver = max(solver, (boot + 1) * m * m)     # a kernel matrix per replicate refit
        return super()._instance_floats() + solver

    @property
    def _bootstraps(self) -> bool:
        return self.n_bootstrap > 0 and self.sampler.bootstrap.active and self.tolerance is None

    def _keys(self, seed):
        if self.tolerance is None:
            return super()._keys(seed)
        n = self.sampler.n_keys + 1  # each round: the sampler's keys, then its bootstrap key
        keys = _random.split_keys(_random.seed_to_tensor(seed), self.max_rounds * n)
        return [tf.reshape(tf.stack(keys), [self.max_rounds, n, 2])]

    def _explain_chunk(self, keys, rows, x):
        if self.tolerance is None:
            return super()._explain_chunk(keys, rows, x)
        return self._converge(keys[0], rows, x)

    def _converge(self, round_keys, rows, x):
        """Rounds of fresh coalitions in a tf.while_loop until every instance's largest standard error
        is below tolerance x the range of its attributions (or max_rounds); converged instances stop
        accumulating. The estimate pools the rounds' normal equations; its variance is the sum of the
        rounds' bootstrap variances over rounds^2 (batch means when n_bootstrap=0)."""
        c, d, o = tf.shape(x)[0], self.n_features, self.n_outputs
        f64 = tf.float64
        fx = self._link(self._model_outputs(x))
        v0 = tf.constant(self.base_values)
        weights = tf.constant(self.sampler.weights)
        delta = fx - v0
        plan = self.sampler.bootstrap
        use_bootstrap = self.n_bootstrap > 0 and plan.active

        def estimate(gram, rhs, phi_sum, phi_sq, var_sum, rounds):
            phi = solvers.solve_shapley(gram, rhs, delta)
            r = tf.cast(rounds, f64)[:, None, None]
            if use_bootstrap:
                return phi, tf.sqrt(var_sum) / r
            var = (phi_sq - phi_sum * phi_sum / r) / tf.maximum(r - 1.0, 1.0)
            return phi, tf.sqrt(tf.maximum(var, 0.0) / r)

        def body(i, gram, rhs, phi_sum, phi_sq, var_sum, rounds, done):
            keys = tf.unstack(round_keys[i])
            sample = self.sampler(keys[:-1], rows, x)
            y = self._link(evaluate(self._model_outputs, self.masker, x, sample, self.batch_size, o))
            g, b = solvers.shapley_normal_equations(sample.z, y, weights, v0, fx)
            phi_r = solvers.solve_shapley(g, b, delta)
            live = tf.cast(~done, f64)[:, None, None]
            if use_bootstrap:
                se_r = solvers.shapley_bootstrap_stderr(
                    sample.z, y, weights, v0, fx, plan.multipliers(keys[-1], rows, self.n_bootstrap),
                    plan.pair_ids)
                var_sum = var_sum + live * tf.square(tf.cast(se_r, f64))
            gram, rhs = gram + live * g, rhs + live * b
            phi_sum, phi_sq = phi_sum + live * phi_r, phi_sq + live * phi_r * phi_r
            rounds = rounds + tf.cast(~done, tf.int32)
            phi, se = estimate(gram, rhs, phi_sum, phi_sq, var_sum, rounds)
            spread = tf.reduce_max(phi, axis=[1, 2]) - tf.reduce_min(phi, axis=[1, 2])
            ok = (rounds >= 2) & (tf.reduce_max(se, axis=[1, 2]) <= self.tolerance * spread)
            return i + 1, gram, rhs, phi_sum, phi_sq, var_sum, rounds, done | ok

        zeros_do = tf.zeros([c, d, o], f64)
        state = (tf.constant(0), tf.zeros([c, d, d], f64), zeros_do, zeros_do, zeros_do, zeros_do,
                 tf.zeros([c], tf.int32), tf.zeros([c], tf.bool))
        _, gram, rhs, phi_sum, phi_sq, var_sum, rounds, _ = tf.while_loop(
            lambda i, *s: (i < self.max_rounds) & ~tf.reduce_all(s[-1]), body, state,
            maximum_iterations=self.max_rounds)
        phi, se = estimate(gram, rhs, phi_sum, phi_sq, var_sum, rounds)
        evals = tf.cast(rounds, tf.int64) * (self.sampler.n_samples * self.masker.rows_per_sample) + 1
        return {"values": tf.cast(phi, tf.float32), "stderr": tf.cast(se, tf.float32), "fx": fx, "n_evals": evals}

    def _output_spec(self):
        d, o = self.n_features, self.n_outputs
        spec = tf.TensorSpec([None, d, o], tf.float32)
        out = {"values": spec, "stderr": spec, "fx": tf.TensorSpec([None, o], tf.float32)}
        if self.tolerance is not None:
            out["n_evals"] = tf.TensorSpec([None], tf.int64)
        return out

    def _solve(self, sample, y, fx, key, rows):
        weights = self.kernel(sample)
        v0 = tf.constant(self.base_values)
        if self.adjust:  # fit a model of the game, estimate only its residual
            values, _, _ = solvers.regression_adjusted_shapley(sample.z, y, weights, v0, fx)
        else:
            values = solvers.shapley_wls(sample.z, y, weights, v0, fx)
        if self._bootstraps:
            plan = self.sampler.bootstrap
            stderr_fn = solvers.adjusted_bootstrap_stderr if self.adjust else solvers.shapley_bootstrap_stderr
            multipliers = plan.multipliers(key, rows, self.n_bootstrap, rescale=not self.adjust)
            stderr = stderr_fn(sample.z, y, weights, v0, fx, multipliers, plan.pair_ids)
        else:  # exact (or no estimate asked for)
            stderr = tf.zeros_like(values)
        return {"values": values, "stderr": stderr, "fx": fx}

    def _explanation(self, data, out, seconds):
        base = np.broadcast_to(self.base_values, (len(data), self.n_outputs)).copy()
        estimated = self._bootstraps or self.exact or self.tolerance is not None
        stderr = self._squeeze_out(out["stderr"]) if estimated else None
        return self._common(data, out, seconds, values=self._squeeze_out(out["values"]),
                            base_values=self._squeeze_out(base), stderr=stderr)


def lime_statistics(training_data: np.ndarray, categorical_features):
    """lime's scaler: per-feature mean and population std (0 -> 1); categorical features get mean 0,
    scale 1 and their sorted values with frequencies."""
    mean = training_data.mean(0).astype(np.float64)
    std = training_data.std(0).astype(np.float64)
    std[std == 0] = 1.0
    categorical = {}
    for j in categorical_features:
        values, counts = np.unique(training_data[:, j], return_counts=True)
        categorical[j] = (values, counts / counts.sum())
        mean[j], std[j] = 0.0, 1.0
    return mean, std, categorical


class Lime(Explainer):
    """LIME for tabular data (Ribeiro et al. 2016) as lime's LimeTabularExplainer computes it with
    ``discretize_continuous=False``, in one TensorFlow graph.

    lime = Lime(model, training_data=X_train); exp = lime(x, seed=0)
    exp.values: surrogate coefficients on standardized features (zero for unselected features);
    exp.intercept, exp.score (weighted R^2), exp.local_pred; exp.contributions = values times the
    instance's standardized features (the surrogate's additive split of local_pred - intercept), which
    is what the fidelity metrics rank.

    n_samples: perturbations per instance (default 5000; row 0 is the instance itself).
    kernel_width: default 0.75 * sqrt(d). num_features: features kept (default 10), chosen by
    feature_selection "auto" (forward selection when num_features <= 6, else highest weights),
    "forward_selection", "highest_weights" or "none". categorical_features: column indices drawn
    from their training frequencies. target: output index or list; default: the only output, or
    class 1 for a multi-output classifier (lime's labels=(1,)). alpha: ridge penalty (lime: 1).
    """

    method = "Lime"

    def __init__(self, model, training_data, *, n_samples=5000, kernel_width=None, num_features=10,
                 feature_selection="auto", categorical_features=None, target=None, alpha=1.0,
                 feature_names=None, output_names=None, batch_size=DEFAULT_BATCH_SIZE,
                 jit_compile=False, output_key=None):
        train = as_matrix(training_data, "training_data")
        d = train.shape[1]
        n_samples = as_int(n_samples, "n_samples")
        if n_samples < d + 1:
            raise ValueError(f"`n_samples` must be at least d + 1 = {d + 1}, got {n_samples}.")
        if categorical_features is None:
            categorical_features = []
        if isinstance(categorical_features, np.ndarray):
            if categorical_features.ndim != 1:
                raise ValueError(f"`categorical_features` must be a 1-D sequence of column indices, got an array "
                                 f"of shape {categorical_features.shape}.")
            categorical_features = categorical_features.tolist()  # Python ints (floats, bools: rejected below)
        elif not isinstance(categorical_features, (list, tuple)):
            raise TypeError(f"`categorical_features` must be a list, tuple or 1-D array of column indices, got "
                            f"{type(categorical_features).__name__}.")
        categorical_features = [as_int(j, "categorical_features") for j in categorical_features]
        for j in categorical_features:
            if not 0 <= j < d:
                raise ValueError(f"`categorical_features` has column {j}, outside 0..{d - 1}.")
        if len(set(categorical_features)) != len(categorical_features):
            raise ValueError(f"`categorical_features` lists a column twice: {categorical_features}.")

        def real(value, name):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}.")
            if not np.isfinite(value):
                raise ValueError(f"`{name}` must be finite, got {value!r}.")
            return float(value)

        self.num_features = as_int(num_features, "num_features", minimum=1)
        self.feature_selection = as_choice(
            feature_selection, "feature_selection", {"auto", "forward_selection", "highest_weights", "none"})
        if kernel_width is None:
            kernel_width = 0.75 * np.sqrt(d)
        self.kernel_width = real(kernel_width, "kernel_width")
        if not self.kernel_width > 0:
            raise ValueError(f"`kernel_width` must be a positive number, got {kernel_width!r}.")
        self.alpha = real(alpha, "alpha")
        if self.alpha < 0:
            raise ValueError(f"`alpha` must be a non-negative number, got {alpha!r}.")
        self.mean, self.std, categorical = lime_statistics(train, categorical_features)
        sampler = GaussianTabularSampler(self.mean, self.std, n_samples, categorical)
        self._setup(model, train, n_features=d, sampler=sampler, masker=PointMasker(),
                    kernel=kernels.exponential(self.kernel_width), target=target,
                    default_target=lambda n_out: 0 if n_out == 1 else 1, link="identity",
                    batch_size=batch_size, jit_compile=jit_compile, feature_names=feature_names,
                    output_names=output_names, output_key=output_key)

    @property
    def feature_scale(self) -> np.ndarray:
        """Per-feature standard deviation of the training data (lime's scale; 1 for categorical)."""
        return self.std

    def _output_spec(self):
        d, o = self.n_features, self.n_outputs
        per_out = tf.TensorSpec([None, o], tf.float32)
        per_feature = tf.TensorSpec([None, d, o], tf.float32)
        return {"values": per_feature, "contributions": per_feature, "intercept": per_out,
                "score": per_out, "local_pred": per_out, "fx": per_out}

    def _selection_mask(self, mom, x0):
        k = min(self.num_features, self.n_features)
        method = self.feature_selection
        if method == "none" or k >= self.n_features and method != "forward_selection":
            return tf.ones([tf.shape(x0)[0], self.n_outputs, self.n_features], tf.float64)
        if method == "auto":
            method = "forward_selection" if self.num_features <= 6 else "highest_weights"
        if method == "forward_selection":
            return solvers.forward_selection(mom, k, self.n_outputs)
        return solvers.highest_weights(mom, x0, k, self.n_outputs)

    def _solve(self, sample, y, fx, key, rows):
        weights = self.kernel(sample)
        mom = solvers.weighted_moments(sample.z, y, weights)
        x0 = sample.z[:, 0]
        fit = solvers.weighted_ridge(mom, x0, self._selection_mask(mom, x0), self.alpha)
        coef = tf.transpose(fit.coef, [0, 2, 1])
        return {"values": coef, "contributions": coef * x0[:, :, None], "intercept": fit.intercept,
                "score": fit.score, "local_pred": fit.local_pred, "fx": fx}

    def _explanation(self, data, out, seconds):
        sq = self._squeeze_out
        return self._common(data, out, seconds, values=sq(out["values"]), base_values=sq(out["intercept"]),
                            intercept=sq(out["intercept"]), score=sq(out["score"]),
                            local_pred=sq(out["local_pred"]), contributions=sq(out["contributions"]))
