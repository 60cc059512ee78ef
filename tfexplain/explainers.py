"""Explainers: a sampler, a masker, a kernel and a solver, composed in one ``tf.function``.

``KernelShap`` = coalition sampler + background masker + Shapley-kernel weights + efficiency-constrained
WLS; ``Lime`` = Gaussian tabular sampler + points as they are + exponential kernel + ridge with
feature selection, or for images / text a binary on/off sampler + the masker + cosine kernel + the same
ridge. Everything between the input batch and the attributions runs in one graph (polymorphic batch,
chunked model evaluation, no Python loop over instances or samples).

``Explainer`` holds the graph and the call boundary; the other pieces have homes of their own: the
model adapter (``models``), targets (``targets``), chunk and piece sizes (``evaluation``), the link
(``links``), and the shaping of outputs and building of the Explanation (``outputs``).
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from . import _diagnostics, _nest, _random, datasets, evaluation, kernels, solvers
from . import outputs as _outputs  # `outputs` names explain_fn's arrays below
from ._lanes import rowwise
from .background import BackgroundSummary
from ._validation import (as_choice, as_int, as_matrix, as_names, as_real, as_row_ids, as_seed, as_weights,
                          check_columns, frame_columns, row_range)
from .evaluation import DEFAULT_BATCH_SIZE, accumulate_pieces, chunked_map, evaluate  # noqa: F401 (re-exported)
from .explanation import Explanation
from .links import link_fn
from .maskers import Composite, Masker, Points, Tabular, unwrapped_model
from .models import ModelAdapter, as_2d, signature_spec
from .samplers import (DISCRETIZERS, BinarySampler, DiscretizedTabularSampler, GaussianTabularSampler,
                       KernelSampler, LeverageSampler, Sample, bin_names, lime_bins, nearest_even_budgets)
from .targets import resolve as resolve_targets

PROGRESS_ROWS = 2**25  # verbose="auto": a progress bar when a call evaluates at least this many model rows
MAX_EXACT_FEATURES = 20
MAX_QUICK_BACKGROUND = 300  # KernelShap warns above this many background rows
MAX_ADJUST_SAMPLES = 256


class _Round(NamedTuple):
    """What one round of KernelSHAP coalitions gives: the constrained regression's normal equations
    (constraint term included) and, when bootstrapping, the variance of their solution."""

    gram: tf.Tensor                 # [c, d, d] float64
    rhs: tf.Tensor                  # [c, d, o]
    var: Optional[tf.Tensor]        # [c, d, o] or None
    values: Optional[tf.Tensor] = None   # [c, d, o] float64 when already solved (linearized errors)


class _Converge(NamedTuple):
    """State of the tolerance loop: pooled normal equations and per-instance round statistics."""

    round: tf.Tensor     # rounds run so far (scalar)
    gram: tf.Tensor      # [c, d, d] pooled over the instance's live rounds
    rhs: tf.Tensor       # [c, d, o]
    phi_sum: tf.Tensor   # [c, d, o] sum of the rounds' own estimates (batch means)
    phi_sq: tf.Tensor    # [c, d, o] and of their squares
    var_sum: tf.Tensor   # [c, d, o] sum of the rounds' bootstrap variances
    rounds: tf.Tensor    # [c] rounds each instance used
    done: tf.Tensor      # [c] converged


def composite_masker(model, background, background_weights):
    """A dict / list of backgrounds (arrays, frames: joint tabular rows sharing ``background_weights``)
    and maskers, one per model input, as a :class:`tfexplain.maskers.Composite` bound to ``model``
    (what ``KernelShap(model, {...})`` and ``Lime(model, masker={...})`` build)."""
    items = list(background.items()) if isinstance(background, dict) else list(enumerate(background))
    parts, weights, tabular = {}, None, False
    for key, value in items:
        if isinstance(value, Masker):
            parts[key] = value
            continue
        if isinstance(value, BackgroundSummary):
            raise ValueError(f"`background[{key!r}]` is a summary; the inputs' background rows are joint, so "
                             "summarize them together (or pass the rows) rather than one input at a time.")
        rows = as_matrix(value, f"background[{key!r}]")
        if not tabular:
            tabular, weights = True, as_weights(background_weights, len(rows))
            if len(rows) > MAX_QUICK_BACKGROUND:
                warnings.warn(f"KernelShap's `background` has {len(rows)} rows: every coalition is evaluated "
                              "on each of them, so the cost is linear in background rows.", UserWarning,
                              stacklevel=3)
        parts[key] = Tabular(value if frame_columns(value) is not None else rows,   # a frame keeps its columns
                             weights if weights is None or len(weights) == len(rows) else None)
    if not tabular and background_weights is not None:
        raise ValueError("`background_weights` weigh tabular background rows, but no input has them.")
    masker = Composite(parts if isinstance(background, dict) else list(parts.values()))
    return masker.bind(model)


def _several_inputs(model, background) -> bool:
    """Whether ``background`` gives one background per model input: a dict, or a list holding a masker
    or matching a model that declares several inputs (a list of numbers is one tabular background)."""
    if isinstance(background, dict):
        return True
    if not isinstance(background, (list, tuple)):
        return False
    if any(isinstance(b, Masker) for b in background):
        return True
    try:
        declared = getattr(unwrapped_model(model), "input", None)
    except Exception:  # noqa: BLE001 -- models without a declared input
        declared = None
    if declared is None:   # a tf.function / module whose input_signature is a list of the inputs' specs
        spec = signature_spec(model)
        declared = spec if isinstance(spec, (list, tuple)) else None
    return isinstance(declared, (list, tuple)) and len(declared) > 1 and len(background) == len(declared)


def _repeat_last(t, pad):
    """``t`` with its last row repeated ``pad`` more times (padding computed and dropped)."""
    return tf.concat([t, tf.repeat(t[-1:], pad, 0)], 0)


class Explainer:
    """Base class: composes the parts, builds the explain graph and owns the call boundary; the model
    adapter (:class:`~tfexplain.models.ModelAdapter`), the resolved :class:`~tfexplain.targets.Targets`,
    chunk sizing (:mod:`tfexplain.evaluation`) and output shaping (:mod:`tfexplain.outputs`) are parts
    it holds or calls."""

    method = "explainer"
    _probe_arg = "data"  # the constructor argument whose first rows probe the model (for messages)
    # every chunk holds instances_per_chunk instances, the last padded (with XLA: one program in all),
    # for explainers whose per-chunk work is shared by its instances (Lime's shared samples)
    _fixed_chunks = False

    def _setup(self, model, *, sampler, masker, kernel, target, default_target,
               link, batch_size, jit_compile, feature_names, output_names, output_key, columns=None,
               top_labels=None):
        # the masker owns the model input: players (n_features of them), input spec, rows of a coalition
        self.n_features = n_features = masker.n_players
        self.model = model
        self.sampler, self.masker, self.kernel = sampler, masker, kernel
        if jit_compile is True and not masker.supports_xla:
            raise ValueError(f"`jit_compile=True` is not supported with the {type(masker).__name__} masker "
                             "(its ops, e.g. strings, do not compile with XLA).")
        if batch_size is None:   # tables: 2^17 rows; an image is many floats, so as many as fit 2^24 floats
            batch_size = evaluation.default_batch_size(masker.row_floats, isinstance(masker, (Tabular, Points)))
        self.batch_size = as_int(batch_size, "batch_size", minimum=1)
        if not isinstance(jit_compile, bool):
            raise TypeError(f"`jit_compile` must be a bool, got {type(jit_compile).__name__}.")
        self.jit_compile = jit_compile
        self.link = as_choice(link, "link", {"identity", "logit"})
        self._link = link_fn(self.link)
        self.output_key = output_key
        self._adapter = ModelAdapter(model, masker.probe(), output_key, warn=not jit_compile)
        if jit_compile:
            self._adapter.require_in_graph("`jit_compile=True`")
        self.model_fn = self._adapter.fn   # the model as TensorFlow ops: rows [r, d] -> its raw output
        n_out, self._squeeze = self._adapter.n_outputs, self._adapter.squeeze
        all_names = as_names(output_names, n_out, "output_names", "output ")
        self._targets = resolve_targets(target, default_target, n_out, all_names, top_labels)
        self.n_outputs = len(self.targets)
        self._check_probe(self._adapter.probe[:, self.targets])
        # a DataFrame's columns name the features unless feature_names does; x frames must match them
        self._columns = columns
        if feature_names is None:   # a frame's columns, else the masker's names (a Composite's "input:player")
            feature_names = columns if columns is not None else masker.player_names
        self.feature_names = as_names(feature_names, n_features, "feature_names", masker.player_prefix)
        # with a per-row target (predicted class, top labels) exp.target indexes all the outputs' names
        self.output_names = list(self._targets.output_names)
        # x (the model's input), seed, and each row's global index (its random stream)
        self._signature = [masker.input_spec,
                           tf.TensorSpec([], tf.int64), tf.TensorSpec([None], tf.int64)]
        # partial objects, not lambdas or methods: TF counts retracing per code object, so explainers
        # sharing one would warn about "retracing" merely for being many.
        self._xla_program = None
        # the one explain function: calls, datasets, replicas and the exported signatures all run it
        self.explain_fn = tf.function(functools.partial(self.explain_graph), autograph=False,
                                      input_signature=self._signature)
        self._samples_fn = tf.function(functools.partial(self._sample_graph), autograph=False,
                                       input_signature=self._signature)
        self._replica_fns = {}

    @property
    def targets(self) -> list:
        """The model outputs explained in the graph (all of them for a per-row target)."""
        return list(self._targets.indices)

    def _check_probe(self, y):
        """Model outputs on the probe rows must be finite (probabilities for link="logit")."""
        _diagnostics.check_rows(y, self._probe_arg, logit=self.link == "logit", first=True)

    # ---- graph -------------------------------------------------------------------------------
    def _explained_outputs(self, rows):
        """Model on rows -> [rows, o] of the explained outputs, as the model returns them."""
        out = as_2d(rowwise(self.model_fn, rows), self._squeeze)
        return tf.gather(out, tf.constant(self.targets, tf.int32), axis=1)

    def model_outputs(self, rows):
        """Model on rows [r, d] -> [r, o] of the explained outputs, as TensorFlow ops. With link="logit" a
        row's output outside [0, 1] becomes NaN here, before a masker's mean over background rows could
        hide it."""
        out = self._explained_outputs(rows)
        return _diagnostics.nan_outside_unit(out) if self.link == "logit" else out

    def _keys(self, seed):
        """The sampler's stream keys, then one for the solver (e.g. bootstrap)."""
        return _random.split_keys(_random.seed_to_tensor(seed), self._draw_keys + 1)

    @property
    def _draw_keys(self) -> int:
        """Keys the samples of a call (or round) are drawn with: the sampler's, and e.g. KernelShap's
        key of the rows' feature orders (every key comes from the one split of the seed: a key split
        again gives other numbers under XLA than without it)."""
        return self.sampler.n_keys

    def _instance_floats(self) -> int:
        """Floats one instance holds in the graph outside the model call at a time (one piece of its
        samples and what is accumulated over pieces)."""
        raise NotImplementedError

    @property
    def instances_per_chunk(self) -> int:
        """Instances sampled and solved together: as many as fit the floats of one model-input chunk
        (``batch_size`` rows of d features). Their model rows are evaluated in chunks of
        ``batch_size`` rows inside, so peak memory is bounded by ``batch_size`` either way, and the
        per-instance work runs as few, wide ops (what keeps an accelerator busy)."""
        return evaluation.instances_per_chunk(self.batch_size, self.masker.row_floats, self._instance_floats())

    def explain_graph(self, x, seed, row_ids, *, jit_compile=None) -> dict:
        """The explain computation as TensorFlow ops: x [n, ...] (the model's input, ``masker.input_spec``),
        seed int64 [], row_ids int64 [n] (each row's global index: its random stream) -> dict of tensors [n, ...] named and shaped like
        the :class:`Explanation`'s fields (``output_signature``: ``values``, ``base_values``,
        ``model_output``, ``stderr`` where the method estimates it, ``n_evals`` with ``tolerance=``,
        Lime's ``intercept`` / ``score`` / ``local_pred`` / ``contributions``, ``target`` for a per-row
        target). An empty ``x`` gives empty outputs. ``explainer.explain_fn`` is this function as a
        ``tf.function``: calls, datasets, replicas and export all go through it. Traceable inside any
        ``tf.function`` (or ``strategy.run``); no checks (the callers check their inputs).

        A row's outputs depend on (x row, seed, row id) only: any batching of rows with their ids gives
        the numbers of one call, to float rounding (batched kernels of another batch size may sum in
        another order; XLA's one-row program solves a row on its own design), and bit for bit beside
        other neighbours in a batch of the same size.

        With XLA (``jit_compile``, default: the explainer's), the instances run in chunks of
        ``instances_per_chunk`` through one XLA program of a fixed shape, and the rows left over one at
        a time through a second: XLA compiles at most two programs per explainer, whatever the batch
        sizes (``explainer.compilations``); one where every chunk is padded to the full size (Lime's
        shared samples)."""
        jit = self.jit_compile if jit_compile is None else jit_compile

        def compute():
            flat = self.masker.flatten(x, row_ids)   # [n, D]: the graph works on flattened instances
            raw = self._xla_chunks(flat, seed, row_ids) if jit else self._graph(flat, seed, row_ids)
            return self._shape_outputs(raw)

        return tf.cond(_nest.graph_rows(x) > 0, compute, self._empty_outputs)

    def _empty_outputs(self):
        """The outputs of an empty batch: zero rows, the names, shapes and dtypes of a full call."""
        return self._shape_outputs(_outputs.zeros(self._output_spec()))

    def replica_fn(self, strategy: tf.distribute.Strategy):
        """``explain_fn`` on every replica of a ``tf.distribute`` strategy: a ``tf.function`` of
        (x, seed, row_ids), x and row_ids distributed values (one part of the batch per replica), that
        returns each replica's outputs as distributed values. Traced once per strategy and explainer."""
        if strategy not in self._replica_fns:
            fn = self.explain_fn

            def replica(x, seed, rows):  # a plain function: strategy.run would clone a tf.function's signature
                return fn(x, seed, rows)

            self._replica_fns[strategy] = tf.function(
                lambda x, seed, rows: strategy.run(replica, args=(x, seed, rows)), autograph=False,
                reduce_retracing=True)
        return self._replica_fns[strategy]

    @property
    def output_signature(self) -> dict:
        """{name: tf.TensorSpec [None, ...]} of what ``explain_fn`` returns (the exported signatures'
        outputs)."""
        with tf.Graph().as_default():
            out = self._empty_outputs()
        return {k: tf.TensorSpec([None] + v.shape[1:].as_list(), v.dtype, name=k) for k, v in out.items()}

    @property
    def columns(self):
        """The DataFrame columns the explainer was built from (an ``x`` frame must have them), or None."""
        return self._columns

    @property
    def in_graph(self) -> bool:
        """Whether the model runs as TensorFlow ops (False: through ``tf.numpy_function``, which neither
        XLA nor a SavedModel can hold)."""
        return self._adapter.in_graph

    def require_in_graph(self, what: str) -> None:
        """Raises ValueError, naming ``what`` needs it, unless the model runs as TensorFlow ops."""
        self._adapter.require_in_graph(what)

    @property
    def scalar_output(self) -> bool:
        """Whether the model returns one value per row ([rows], not [rows, outputs])."""
        return self._squeeze

    def _chunk_program(self, x, seed, rows):
        """One chunk of instances, as the XLA program compiles it."""
        with solvers.compiled_solves(True):
            return self._explain_chunk(self._keys(seed), rows, x)

    def _xla_chunks(self, x, seed, rows):
        if self._xla_program is None:
            self.require_in_graph("`jit_compile=True`")
            self._xla_program = tf.function(functools.partial(self._chunk_program), jit_compile=True,
                                            autograph=False)
        size, d = self.instances_per_chunk, x.shape[1]
        spec = self._output_spec()
        n = tf.shape(x)[0]
        full = n // size

        def run(xs, rs, width):
            out = tf.map_fn(lambda e: self._xla_program(e[0], seed, e[1]), (xs, rs), parallel_iterations=1,
                            fn_output_signature={k: tf.TensorSpec([width] + s.shape[1:], s.dtype)
                                                 for k, s in spec.items()})
            return {k: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], 0)) for k, v in out.items()}

        if self._fixed_chunks:   # one program: the last chunk padded by repeating its final row
            pad = (size - n % size) % size
            full = (n + pad) // size
            out = run(tf.reshape(_repeat_last(x, pad), [full, size, d]),
                      tf.reshape(_repeat_last(rows, pad), [full, size]), size)
            return {k: v[:n] for k, v in out.items()}
        head = run(tf.reshape(x[: full * size], [full, size, d]), tf.reshape(rows[: full * size], [full, size]), size)
        tail = run(x[full * size:][:, None], rows[full * size:][:, None], 1)
        return {k: tf.concat([head[k], tail[k]], 0) for k in head}

    @property
    def fixed_chunks(self) -> bool:
        """Whether every chunk holds ``instances_per_chunk`` instances, the last one padded (Lime's shared
        samples): a row's numbers are then those of one call in any batching, with XLA too."""
        return self._fixed_chunks

    @property
    def compilations(self) -> int:
        """XLA programs of the explain call compiled so far (at most 2: a full chunk of instances and a
        single instance; 1 with Lime's shared samples, whose last chunk is padded). Lime without XLA
        also compiles its normal generator on first use
        (:func:`tfexplain._random.normal_blocks_compiled`), which this does not count."""
        return 0 if self._xla_program is None else self._xla_program.experimental_get_tracing_count()

    def graph_function(self, jit_compile: bool):
        """The whole explain call as one ``tf.function`` of (x, seed, row_ids): with ``jit_compile`` a
        single XLA program per batch size (what ``benchmarks/gpu/lower.py`` lowers to StableHLO)."""
        return tf.function(functools.partial(self._compiled_graph, jit_compile), jit_compile=jit_compile,
                           autograph=False, input_signature=self._signature)

    def _compiled_graph(self, jit_compile, x, seed, rows):
        """The explain graph, traced for XLA when ``jit_compile`` (see ``solvers.compiled_solves``)."""
        with solvers.compiled_solves(jit_compile):
            return self._shape_outputs(self._graph(self.masker.flatten(x, rows), seed, rows))

    def _graph(self, x, seed, rows):
        keys = self._keys(seed)
        cap = self.instances_per_chunk

        def chunk(e):
            return self._explain_chunk(keys, e["rows"], e["x"])

        if self._fixed_chunks:   # every chunk holds cap instances (the last padded by repeating its final row)
            n = tf.shape(x)[0]
            pad = (cap - n % cap) % cap
            out = chunked_map(chunk, {"rows": _repeat_last(rows, pad), "x": _repeat_last(x, pad)}, cap,
                              self._output_spec())
            return {k: v[:n] for k, v in out.items()}
        if cap == 1:  # every chunk is one instance, whatever the batch
            return chunked_map(chunk, {"rows": rows, "x": x}, cap, self._output_spec())
        # Chunks hold at least two instances (one row is explained next to a copy of itself): on one
        # instance TensorFlow's batched matmuls take another kernel, which rounds differently, and a row
        # would not get the numbers it gets in a larger batch.
        n = tf.shape(x)[0]
        pad = tf.maximum(2 - n, 0)
        out = chunked_map(chunk, {"rows": _repeat_last(rows, pad), "x": _repeat_last(x, pad)}, cap,
                          self._output_spec())
        return {k: v[:n] for k, v in out.items()}

    def _evaluate(self, x, sample):
        """Link-space values [c, m, o] of every sample of the instances x [c, D] (flattened)."""
        return self._link(evaluate(self.model_outputs, self.masker, x, sample, self.batch_size, self.n_outputs))

    def _origin(self, x):
        """The instances' own representation for the similarity kernel (None: not needed)."""
        return None

    def _sample_keys(self, seed):
        """The sampler's keys of a call (of its first round)."""
        return self._keys(seed)[: self._draw_keys]

    def _draw(self, keys, rows, x) -> Sample:
        """The samples of the instances x [c, D] (what :meth:`samples` shows)."""
        return self.sampler(keys, rows, x)

    def _sample_graph(self, x, seed, rows):
        x = self.masker.flatten(x, rows)
        sample = self._draw(self._sample_keys(seed), rows, x)
        y = self._evaluate(x, sample)
        weights = tf.broadcast_to(self.kernel(sample, self._origin(x)), tf.shape(sample.z)[:2])
        out = {"z": sample.z, "y": y, "weights": weights}
        if sample.points is not None:
            out["points"] = sample.points
        return out

    def samples(self, x, seed: int = 0, *, row_offset: int = 0) -> dict:
        """The samples an explain call with the same arguments fits its surrogate on (with
        ``tolerance=``: those of its first round), as numpy: ``z`` [n, m, p] (coalitions /
        standardized perturbations), ``y`` [n, m, o] their values, ``weights`` [n, m] the regression
        weights, and for LIME ``points`` [n, m, d] (model input). For inspection and testing; it
        materializes n * m rows, so keep n small."""
        data = self.masker.check(x, "x")
        rows = row_range(_nest.n_rows(data), as_int(row_offset, "row_offset", minimum=0))
        self.masker.check_rows(rows)
        out = self._samples_fn(_nest.constant(data), tf.constant(as_seed(seed), tf.int64), rows)
        return {k: v.numpy() for k, v in out.items()}

    def _output_spec(self):
        raise NotImplementedError

    def _explain_chunk(self, keys, rows, x):
        raise NotImplementedError

    # ---- boundary ------------------------------------------------------------------------------
    def __call__(self, x, seed: int = 0, *, row_offset: int = 0, row_ids=None, verbose="auto") -> Explanation:
        """Explains the rows of ``x`` [n, d] (or one row [d]).

        x: array, tensor or pandas DataFrame; a frame's columns must equal the explainer's (its
            background / training frame's, in order) when the explainer was built from a frame.
        seed: int; row i's random stream depends on (seed, row_offset + i) only, so a dataset
            explained in any batching gives the same numbers as in one call.
        row_offset: global index of x's first row (for explaining a dataset in batches; see also
            :meth:`explain_dataset`).
        row_ids: instead of ``row_offset``, each row's global index (n integers in [0, 2^32)): row i
            is explained with the random stream of row ``row_ids[i]``.
        verbose: "auto" (default) shows a progress bar (``keras.utils.Progbar``) when the call evaluates
            at least ``PROGRESS_ROWS`` (2^25) model rows in all; 1 / True always, 0 / False never. With a
            bar, the rows are explained in batches of instances (same numbers: see ``seed``).

        Raises ValueError for bad arguments (before tracing), and when an explanation is not finite:
        the message says on how many of the failing instances' rows the model gave NaN / Inf (or, with
        link="logit", outputs outside [0, 1]).
        """
        if self._columns is not None:
            check_columns(x, self._columns)
        data = self.masker.check(x, "x")
        seed = as_seed(seed)
        offset = as_int(row_offset, "row_offset", minimum=0)
        if row_ids is None:
            rows = row_range(_nest.n_rows(data), offset)
        elif offset:
            raise ValueError("pass either `row_offset` or `row_ids`, not both.")
        else:
            rows = as_row_ids(row_ids, _nest.n_rows(data))
        self.masker.check_rows(rows)
        return self._explain_rows(data, seed, rows, verbose)

    def explain_dataset(self, data, seed: int = 0, *, batch_size=None, verbose=1, strategy=None, out=None,
                        shard_size=None):
        """Explains every row of a dataset, streamed in batches: the values are those of one call on
        all rows (``explainer(all_rows, seed)``), bit for bit, whatever ``batch_size``, ``strategy`` or
        interruptions.

        data: a NumPy array / tensor / DataFrame [n, d] (read ``batch_size`` rows at a time), a
            ``tf.data.Dataset`` of rows ``x`` [d] or batches [b, d] (or of ``(x, y)`` / ``(x, y, w)``
            tuples: y and w are ignored), or any iterable of batches [b, d] (or of (x, y) tuples). Rows
            are numbered from 0 in the order they come (their global ids: random streams).
        seed: as for a call.
        batch_size: rows per ``explain_fn`` call (across all replicas); default: whole chunks of
            ``instances_per_chunk`` worth about 2^22 model rows and at most 8,192 rows, per replica.
            With ``out=`` host memory holds one batch of input and one shard of results (without it,
            the returned Explanation holds every row); model evaluation is bounded by the explainer's
            own ``batch_size`` (model rows). With ``jit_compile=True``, a multiple of
            ``instances_per_chunk`` (as the default) keeps the values bit-identical to one call (else
            the same to float rounding: XLA's full-chunk and leftover programs round differently).
        verbose: 1 (default) shows a ``keras.utils.Progbar`` of rows done; 0 is silent.
        strategy: a ``tf.distribute`` strategy, e.g. ``tf.distribute.MirroredStrategy()``: each batch is
            cut into one contiguous part per replica, explained there, and gathered back in order (same
            numbers as one device). With ``MultiWorkerMirroredStrategy`` every worker runs the same
            program on the same data and gets every row's result; with ``out=`` only the chief writes.
        out: a folder. Results are written as shards of ``shard_size`` rows (``shard-NNNNNN.npz``,
            plain arrays readable with ``np.load(..., allow_pickle=False)``: the Explanation's fields
            and ``row_ids``) plus ``manifest.json``, and an :class:`~tfexplain.datasets.ExplanationShards`
            is returned instead of an Explanation (``.load()``: one Explanation; iterate for one shard
            at a time). Calling again with the same folder, explainer, seed and sizes resumes: finished
            shards are checked against their rows (CRC32) and skipped, not recomputed. Host memory holds
            one shard of results.
        shard_size: rows per shard with ``out=`` (a multiple of ``batch_size``; default about 16,384).

        Returns an :class:`Explanation` of all rows, or with ``out=`` the shards. Raises ValueError for
        non-finite explanations (naming the rows of ``data``), as a call does.
        """
        return datasets.explain_dataset(self, data, seed, batch_size=batch_size, verbose=verbose, strategy=strategy,
                               out=out, shard_size=shard_size)

    def _progress_step(self, n: int, verbose):
        """Instances per batch when a progress bar is shown, else None."""
        if verbose is None or verbose not in ("auto", 0, 1):  # True == 1, False == 0
            raise ValueError(f"`verbose` must be 'auto', 0 or 1, got {verbose!r}.")
        if verbose == "auto":
            total = n * self.n_evals_per_instance * getattr(self, "max_rounds", 1)
            verbose = int(n > 1 and total >= PROGRESS_ROWS)
        if not verbose:
            return None
        chunk = self.instances_per_chunk  # batches of whole chunks, about 50 updates
        per_update = -(-n // 50)
        return chunk * -(-per_update // chunk)

    def _call_graph(self, data, seed, rows) -> dict:
        """One call of ``explain_fn`` on validated rows, as numpy."""
        out = self.explain_fn(_nest.constant(data), tf.constant(seed, tf.int64), tf.constant(rows, tf.int64))
        return {k: v.numpy() for k, v in out.items()}

    def _explain_rows(self, data: np.ndarray, seed: int, rows, verbose=0) -> Explanation:
        """Explains validated rows ``data`` whose random streams are the global row ids ``rows``, in
        one graph call, or in batches of instances with a progress bar (see ``__call__``'s verbose).

        Raises ValueError when an explanation is not finite: the model gave NaN / Inf (or, with
        link="logit", a value outside [0, 1]) on some of its rows, which the graph propagates as NaN."""
        start = time.perf_counter()
        n = _nest.n_rows(data)
        step = self._progress_step(n, verbose)
        if step is None:
            out = self._call_graph(data, seed, rows)
        else:
            import keras
            bar = keras.utils.Progbar(n, unit_name="instance")
            parts = []
            for i in range(0, n, step):
                parts.append(self._call_graph(_nest.take(data, slice(i, i + step)), seed, rows[i:i + step]))
                bar.update(min(n, i + step))
            out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        seconds = time.perf_counter() - start
        self.check_outputs(data, seed, rows, out)
        return self.explanation(data, out, seconds)

    def check_outputs(self, x, seed: int, row_ids, outputs: dict) -> None:
        """Raises ValueError when the explanations ``outputs`` (``explain_fn``'s, as arrays) of rows ``x``
        [n, d] with ids ``row_ids`` and ``seed`` are not finite: re-evaluates the failing instances' rows
        to say on how many the model gave NaN / Inf (or, with link="logit", a value outside [0, 1])."""
        bad = _diagnostics.nonfinite_instances(outputs, _nest.n_rows(x))
        if bad.size:  # only on failure: re-evaluate the failing instances' rows to say what went wrong
            _diagnostics.raise_for_nonfinite(self, x, seed, np.asarray(row_ids), bad, self._explained_outputs)

    @property
    def tracing_count(self) -> int:
        """How many times the explain graph was traced (1 after any number of calls and batch sizes)."""
        return self.explain_fn.experimental_get_tracing_count()

    @property
    def estimates_stderr(self) -> bool:
        """Whether explanations carry standard errors (``exp.stderr``; the exported signatures' ``stderr``
        output): False where the method estimates none, rather than reporting zeros (which read as exact)."""
        return False

    @property
    def n_evals_per_instance(self) -> int:
        return self.sampler.n_samples * self.masker.rows_per_sample + 1

    def _shape_outputs(self, raw: dict) -> dict:
        """The graph's raw outputs -> each row's picked targets (:meth:`Targets.select`) -> named and
        shaped like the Explanation's fields (:func:`tfexplain.outputs.shaped`)."""
        base_values = self._constant_base()
        extras = self.masker.extras_spec()
        return _outputs.shaped(self._targets.select(raw, base_values, extras), single=self._targets.single,
                              base_values=base_values, n_outputs=self.n_outputs,
                              estimates_stderr=self.estimates_stderr, extras=extras)

    def explanation(self, x, outputs: dict, seconds: float = 0.0) -> Explanation:
        """The :class:`Explanation` of rows ``x`` [n, d] from their outputs of ``explain_fn`` (or of an
        exported ``explain`` / ``explain_rows`` signature) as arrays: e.g. batches' outputs concatenated,
        or shards loaded from disk."""
        return _outputs.explanation(x, outputs, method=self.method, feature_names=self.feature_names,
                                    output_names=self.output_names, link=self.link,
                                    n_evals_per_instance=self.n_evals_per_instance, masker=self.masker,
                                    seconds=seconds, host_fields=self._extra_fields)

    def _constant_base(self):
        """The base value [o] shared by every row (KernelShap's over a tabular background), or None
        (per instance in the graph, or Lime's intercept)."""
        return None

    def _extra_fields(self, data) -> dict:
        """Explanation fields computed on the host from the rows (Lime's readable feature conditions)."""
        return {}


class KernelShap(Explainer):
    """KernelSHAP (Lundberg & Lee 2017) computed in one TensorFlow graph.

    explainer = KernelShap(model, background); exp = explainer(x, seed=0)

    model: Keras 3 / tf_keras model (or its bound ``predict``), tf.Module, tf.function (inputs are cast
        to its ``input_signature`` dtype), a loaded SavedModel's callable, or any callable of TF ops
        mapping float32 [rows, d] to [rows] or [rows, outputs]. Other Python / NumPy callables
        (scikit-learn's ``predict_proba``, a lambda calling ``model.predict``) run through
        ``tf.numpy_function`` with a warning: slower, and no ``jit_compile`` or ``tfexplain.export``.
        The model must give finite outputs: NaN / Inf on a background row raises ValueError here, on
        an explained instance's rows at call time.
    background: [k, d] rows that stand in for absent features (k >= 1; array, tensor or pandas
        DataFrame, whose columns then name the features), or a ``tfexplain.background.kmeans`` /
        ``sample`` summary ``(data, weights)``. The cost is linear in k: above 300 rows a UserWarning
        suggests those summaries (shap recommends <= 100). Or a masker from ``tfexplain.maskers``
        (e.g. ``Image(segmentation=(4, 4), fill="blur")``): its players (segments) are explained, x is
        the model's own input ([n, H, W, C] images), and the explanation carries its extras
        (``exp.segments``, ``exp.heatmap``); the base value is per instance when the fill depends on it.
    background_weights: optional [k] non-negative weights of the background rows.
    n_samples: coalitions per instance, exactly what is evaluated (default 2d + 2048, as shap); even with
        the leverage sampler (coalitions come with their complements; an odd budget raises ValueError
        naming the nearest valid ones); >= 2^d - 2 enumerates all of them and gives exact Shapley values.
    sampler: "leverage" (default; paired leverage-score sampling, Musco & Witter 2025), "kernel"
        (shap's KernelExplainer scheme) or "exact" (all 2^d - 2 coalitions, d <= 20).
    shared_samples: None (default: on for a tabular background where it applies), True or False. On,
        the rows of a call share one draw of coalitions (from the seed), each row evaluating it in its
        own random order of the features (from (seed, row id)): every row's design has the distribution
        of its own draw, and the regression's d x d work (normal equations, and with the default
        linearized standard errors or none, the factorization and standard-error products) is done
        once per chunk of rows instead of per row (the bootstrap still re-solves its replicates per
        row). Rows' sampling errors are then correlated, less so
        than with one design for all (the relabelling), so an average over rows (global importance)
        keeps part of the per-row noise; False draws every row's coalitions from (seed, row id) on
        their own. Applies to the leverage sampler without the adjustment (a budget streamed in pieces
        too); a row with a null player is solved on its own.
    n_bootstrap: bootstrap replicates for ``exp.stderr`` (default 32; 0 skips any standard error).
    stderr: "auto" (default): with the default leverage sampler, no adjustment and no ``tolerance``, and
        a budget that fits ``batch_size`` in one piece, standard errors by linearization (the sandwich
        variance of the stratified sample: one pass over the samples, what the bootstrap approximates,
        about the cost of one replicate); otherwise the bootstrap. "bootstrap": always ``n_bootstrap``
        replicates.
    adjust: False (default), True or "auto": regression adjustment (Witter, Liu & Musco 2025) -- fit a
        kernel ridge model with interactions up to order 3 to the sampled coalition values, take its
        exact Shapley values and estimate only the residual. "auto" uses it with the leverage sampler
        for budgets of at most 256 coalitions without ``tolerance``. Off by default: its cost grows with
        the cube of the budget (and refits per bootstrap replicate), 24x the model's evaluations at
        d = 30, 200 coalitions, 50 background rows (637x under XLA), while doubling the budget of the
        plain regression buys more accuracy for 2x (README, "Estimators and standard errors").
    tolerance: if set (e.g. 0.01), sample in rounds of ``n_samples`` coalitions (default 10d) inside
        a graph loop until every attribution's standard error is below ``tolerance`` times the range
        of that instance's attributions (Covert & Lee 2021), or ``max_samples`` (default 20 rounds)
        is reached; the estimate pools all rounds, its standard error is the batch-means estimate
        over rounds, and ``exp.n_evals`` reports each instance's model evaluations.
    link: "identity" or "logit" (attributions in log-odds of the model's probability output; the
        outputs must be probabilities in [0, 1], else ValueError: use "identity" for logits / scores).
    target: output index or name (from ``output_names``), a list of them, None for every output, or
        "predicted": each row's largest output (its predicted class): values [n, d], ``exp.target``
        [n] the chosen indices (all outputs are explained in the graph, each row's is gathered).
    feature_names: d names (default: a DataFrame background's columns, else x0, x1, ...).
    output_names: names of the model's outputs (default: output 0, output 1, ...).
    batch_size: most model-input rows evaluated at once (bounds peak memory); default 2^17 rows for
        tables, and for other maskers as many rows as hold 2^24 floats (e.g. 111 images of 224x224x3).
    jit_compile: compile the explain graph with XLA.
    output_key: for a model returning a dict, the key of the output to explain.
    """

    method = "KernelShap"

    def __init__(self, model, background, *, n_samples=None, sampler="leverage", link="identity",
                 target=None, n_bootstrap=32, stderr="auto", adjust=False, tolerance=None, max_samples=None,
                 background_weights=None, shared_samples=None,
                 feature_names=None, output_names=None, batch_size=None, jit_compile=False,
                 output_key=None):
        if isinstance(background, Masker):  # e.g. tfexplain.maskers.Image(...): players of its own
            if background_weights is not None:
                raise ValueError("`background` is a masker; pass background weights to the masker, not "
                                 "`background_weights`.")
            masker, columns = background.bind(model), None
        elif _several_inputs(model, background):   # {"a": bg_a, "b": Text(...)}: one masker per model input
            masker, columns = composite_masker(model, background, background_weights), None
        else:
            masker, columns = self._tabular_masker(background, background_weights)
        d = masker.n_players
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
        full = 2**d - 2
        if sampler == "exact" or n_samples >= full:  # every coalition: exact Shapley values
            n_samples = full
        elif n_samples < d + 1:
            raise ValueError(f"`n_samples` must be at least d + 1 = {d + 1} coalitions, got {n_samples}.")
        elif sampler == "leverage" and n_samples % 2:
            raise ValueError(
                f"`n_samples` must be even with sampler='leverage' (coalitions come with their complements), "
                f"got {n_samples}: use {nearest_even_budgets(n_samples, d + 1)}, or sampler='kernel' (shap's "
                f"scheme) for an odd budget.")
        self.n_bootstrap = as_int(n_bootstrap, "n_bootstrap", minimum=0)
        self.stderr_method = as_choice(stderr, "stderr", {"auto", "bootstrap"})
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
        self.background = getattr(masker, "background", None)
        self.sampler_name = sampler
        self._setup(model, sampler=plan, masker=masker,
                    kernel=kernels.prior, target=target, default_target=lambda n_out: None, link=link,
                    batch_size=batch_size, jit_compile=jit_compile, feature_names=feature_names,
                    output_names=output_names, output_key=output_key, columns=columns)
        self._plan_pieces()
        self.shared_samples = self._shares(shared_samples)
        # the value of the empty coalition: one constant (tabular), or per instance in the graph
        self.base_values = None if masker.constant_base() is None else self._background_value()

    @staticmethod
    def _tabular_masker(background, background_weights):
        """An array, tensor, DataFrame or summary as a :class:`tfexplain.maskers.Tabular` masker, and
        the frame's column names (or None)."""
        if isinstance(background, BackgroundSummary):
            if background_weights is not None:
                raise ValueError("`background` is a summary with its own weights; do not pass `background_weights`.")
            background, background_weights = background.data, background.weights
        columns = frame_columns(background)
        bg = as_matrix(background, "background")
        if len(bg) > MAX_QUICK_BACKGROUND:
            warnings.warn(
                f"KernelShap's `background` has {len(bg)} rows: every coalition is evaluated on each of them, so the "
                f"cost is linear in background rows ({len(bg) / 50:.0f}x slower than 50 rows). Summarize it with "
                f"tfexplain.background.kmeans(X, k=50) (weighted centroids) or tfexplain.background.sample(X, k=100).",
                UserWarning, stacklevel=3)
        bw = as_weights(background_weights, len(bg))
        return Tabular(bg, bw), columns

    def _check_probe(self, y):
        pass  # _background_value checks every background row

    def _constant_base(self):
        return self.base_values

    def _background_value(self):
        """link(weighted mean model output over the background), computed once, eagerly. Raises
        ValueError if the model gives NaN / Inf on a background row (or, for link="logit", a value
        outside [0, 1])."""
        bg, weights = self.masker.constant_base()
        outs = [self._explained_outputs(_nest.constant(_nest.take(bg, slice(i, i + self.batch_size)))).numpy()
                for i in range(0, _nest.n_rows(bg), self.batch_size)]
        outs = np.concatenate(outs, 0).astype(np.float64)
        _diagnostics.check_rows(outs, "background", logit=self.link == "logit")
        mean = np.einsum("ko,k->o", outs, weights)
        return self._link(tf.constant(mean, tf.float32)).numpy()

    @property
    def feature_scale(self) -> np.ndarray:
        """Per-feature standard deviation of the background (1 where constant). Tables only."""
        if not isinstance(self.masker, Tabular):
            raise ValueError(f"`feature_scale` is defined for a tabular background, not with the "
                             f"{type(self.masker).__name__} masker.")
        std = self.background.std(0)
        return np.where(std > 0, std, 1.0)

    @property
    def exact(self) -> bool:
        """True when the budget enumerates every coalition (values are exact Shapley values)."""
        return self.sampler.exact

    @property
    def estimates_stderr(self) -> bool:
        """Bootstrap or batch-means (``tolerance=``) standard errors, or exact values (standard error 0)."""
        return self._bootstraps or self.exact or self.tolerance is not None

    @property
    def _streams(self) -> bool:
        """Whether coalitions are generated, evaluated and reduced in pieces (the leverage sampler
        without the adjustment, which needs all coalitions of an instance at once)."""
        return isinstance(self.sampler, LeverageSampler) and not self.adjust

    @property
    def _resamples(self) -> bool:
        """Whether a call (or each round of it) bootstraps: replicates asked for and something to resample."""
        if self.n_bootstrap == 0 or self.sampler.exact:
            return False
        if isinstance(self.sampler, LeverageSampler):
            return self.sampler.resampled
        return self.sampler.n_random > 0    # sampler="kernel": a random part to resample

    @property
    def _bootstraps(self) -> bool:
        return self._resamples and self.tolerance is None

    def _plan_pieces(self):
        """Cuts each instance's coalitions into pieces that fit the ``batch_size`` budget (the leverage
        sampler streams pairs: one piece when they all fit), or checks that an estimator needing all of
        them at once fits, naming the limit."""
        d, o, m = self.n_features, self.n_outputs, self.sampler.n_samples
        boot = self.n_bootstrap if self._resamples else 0
        fixed = self.masker.instance_floats                     # e.g. the null-player test
        width = self.masker.row_floats
        budget = self.batch_size * width
        self._linearized = False
        if self._streams and boot and self.tolerance is None and self.stderr_method == "auto":
            # the linearized standard errors need the budget in one piece: two samples and the folded
            # row's contributions to the variance (d x o) a pair
            per_pair = 2 * (2 * d + o) + (d + 1) * (o + 1)
            size, n_pieces = evaluation.pieces(self.sampler.n_pairs, per_pair, budget, fixed)
            if n_pieces == 1:
                self._linearized, self._pair_piece, self._n_pieces = True, size, 1
                self._floats = fixed + size * per_pair
                return
        if self._streams:
            # two samples (coalition, values, design) and one folded bootstrap row per replicate a pair
            per_pair = 2 * (2 * d + o) + boot * (d + 1)
            self._pair_piece, self._n_pieces = evaluation.pieces(self.sampler.n_pairs, per_pair, budget, fixed)
            self._floats = fixed + self._pair_piece * per_pair
            return
        self._pair_piece, self._n_pieces = 0, 1
        per_sample, extra, what = 2 * d + o, 0, f"sampler={self.sampler_name!r}"
        if isinstance(self.sampler, KernelSampler):  # candidate draws, then the draw bootstrap's designs
            extra = max(self.sampler.draw_floats, self.sampler.replicate_floats(boot) if boot else 0)
        elif boot:
            per_sample += boot * (d + 1)
        if self.adjust:
            extra, what = max(extra, (boot + 1) * m * m), "the regression adjustment"
        self._floats = fixed + m * per_sample + extra
        # the adjustment's kernel matrices are bounded by MAX_ADJUST_SAMPLES when "auto" turns it on
        small_adjust = self.adjust and m <= MAX_ADJUST_SAMPLES
        if self._floats > budget and not small_adjust:
            raise ValueError(
                f"{what} needs all {m} coalitions of an instance at once: about {self._floats:,} floats, more "
                f"than the batch_size budget of batch_size x {width} = {budget:,}. Raise `batch_size` to at least "
                f"{-(-self._floats // width):,}, lower `n_samples`, or use the default sampler='leverage' with "
                f"adjust=False, which streams a budget of any size.")

    def _shares(self, shared_samples) -> bool:
        """Resolves ``shared_samples``: by default on for tables wherever it applies (the leverage
        sampler without the adjustment). Not by default with other maskers: text marks its padding and
        images their empty segments as null players, so nearly every chunk would also solve its rows
        on their own."""
        possible = self._streams and self.sampler.n_pairs > 0
        if shared_samples is None:
            return possible and isinstance(self.masker, Tabular)
        if not isinstance(shared_samples, (bool, np.bool_)):
            raise TypeError(f"`shared_samples` must be a bool or None, got {type(shared_samples).__name__}.")
        if shared_samples and not possible:
            raise ValueError(
                "`shared_samples=True` needs sampler='leverage' without the adjustment (coalitions drawn in pairs "
                "of a plan shared by the rows); use shared_samples=False or None.")
        return bool(shared_samples)

    def _draw(self, keys, rows, x) -> Sample:
        if not self.shared_samples:
            return super()._draw(keys, rows, x)
        state, order = self._shared_draw(keys, rows)
        return self.sampler.sample(self._own_sets(self.sampler.pairs(keys, _shared_row(rows), state), order,
                                                  tf.shape(x)[0]))

    def _instance_floats(self) -> int:
        return self._floats

    @property
    def pieces_per_instance(self) -> int:
        """How many pieces each instance's coalitions are generated, evaluated and reduced in."""
        return self._n_pieces

    def _empty_value(self, x):
        """The value of the empty coalition: [o] (one constant) or, when it depends on the instance
        (e.g. an image's own mean or blur as fill), [c, o] evaluated here."""
        if self.base_values is not None:
            return tf.constant(self.base_values)
        z = tf.zeros([tf.shape(x)[0], self.n_features], tf.float32)
        return self._link(self.masker.reduce(self.model_outputs(self.masker.inputs(x, z))))

    def _draw_bootstrap_stderr(self, sample, y, v0, fx, key, rows, mask):
        """sampler="kernel": the bootstrap resamples each instance's candidate draws
        (``KernelSampler.replicate_weights``) and re-solves every replicate on all rows."""
        replicates = self.sampler.replicate_weights(key, rows, sample.aux, self.n_bootstrap)
        if self.adjust:  # replicate weights as per-sample multipliers of weight 1
            return solvers.adjusted_bootstrap_stderr(sample.z, y, 1.0, v0, fx, tf.cast(replicates, tf.float64),
                                                     np.arange(self.sampler.n_samples), mask=mask)
        return solvers.shapley_bootstrap_stderr_weighted(sample.z, y, replicates, v0, fx, mask)

    def _keys(self, seed):
        if self.tolerance is None:
            return super()._keys(seed)
        n = self._draw_keys + 1  # each round: the draw's keys, then its bootstrap key
        keys = _random.split_keys(_random.seed_to_tensor(seed), self.max_rounds * n)
        return [tf.reshape(tf.stack(keys), [self.max_rounds, n, 2])]

    def _sample_keys(self, seed):
        if self.tolerance is None:
            return super()._sample_keys(seed)
        return tf.unstack(self._keys(seed)[0][0])[: self._draw_keys]

    @property
    def _draw_keys(self) -> int:
        return self.sampler.n_keys + self.shared_samples   # shared coalitions: the feature orders' key

    def _explain_chunk(self, keys, rows, x):
        fx = self._link(self.model_outputs(self.masker.instances(x)))
        mask = self.masker.players(x)
        v0 = self._empty_value(x)
        if self.tolerance is not None:
            out = self._converge(keys[0], rows, x, fx, mask, v0)
        elif self.adjust:
            out = self._adjusted(keys, rows, x, fx, mask, v0)
        else:
            stats = self._round(keys[:-1], keys[-1], rows, x, fx, mask, v0)
            values = stats.values if stats.values is not None else \
                solvers.solve_shapley(stats.gram, stats.rhs, fx - v0, mask)
            values = tf.cast(values, tf.float32)
            stderr = tf.zeros_like(values) if stats.var is None else tf.cast(tf.sqrt(stats.var), tf.float32)
            out = {"values": values, "stderr": stderr, "fx": fx}
        if self.base_values is None:
            out["base_values"] = v0
        out.update(self.masker.extras(x))
        return out

    def _round(self, keys, boot_key, rows, x, fx, mask, v0) -> "_Round":
        """One round of the budget: the normal equations of the constrained regression and, when
        bootstrapping, the variance of its solution."""
        if self._streams:
            return self._stream_pairs(keys, boot_key, rows, x, fx, mask, v0)
        sample = self.sampler(keys, rows, x)
        y = self._evaluate(x, sample)
        gram, rhs = solvers.shapley_normal_equations(sample.z, y, sample.weights, v0, fx, mask)
        var = None
        if self._resamples:  # sampler="kernel": resample each instance's candidate draws
            se = self._draw_bootstrap_stderr(sample, y, v0, fx, boot_key, rows, mask)
            var = tf.square(tf.cast(se, tf.float64))
        return _Round(gram, rhs, var)

    def _stream_pairs(self, keys, boot_key, rows, x, fx, mask, v0) -> "_Round":
        """The leverage plan's pairs in pieces of ``_pair_piece``: generate, evaluate, and add each
        piece's normal equations (and each bootstrap replicate's, over complement-folded rows) to
        running sums. A budget that fits is one piece, resampled by the stratified Rao-Wu bootstrap;
        a budget streamed in several pieces draws each pair's replicate multipliers on its own
        (Poisson bootstrap, same mean and variance). With shared coalitions: :meth:`_shared_pairs`."""
        if self.shared_samples:
            return self._shared_pairs(keys, boot_key, rows, x, fx, mask, v0)
        plan = self.sampler
        c, d, o = tf.shape(x)[0], self.n_features, self.n_outputs
        linear = self._linearized           # one piece, linearized standard errors instead of replicates
        boot = self.n_bootstrap if self._resamples and not linear else 0
        size, n_pieces = self._pair_piece, self._n_pieces
        state = plan.prepare(keys, rows)
        multipliers = self._pair_multipliers(boot_key, rows, boot)

        def piece(j):
            pair = j * size + tf.range(size)
            # one piece: all pairs, the table and random parts generated apart
            sets = plan.pairs(keys, rows, state, None if n_pieces == 1 else pair)   # [c, P, d]
            # the sets, then their complements: one model evaluation, halves read back contiguously
            y = self._evaluate(x, Sample(tf.concat([sets, 1.0 - sets], axis=1), None, None))
            return _pair_sums(sets, y, self._pair_weights(pair), fx - v0, mask, linear, multipliers(pair))

        zeros = _zero_sums(c, c, d, o, boot)
        sums = zeros if plan.n_pairs == 0 else accumulate_pieces(piece, n_pieces, zeros)
        return _pair_round(sums, fx - v0, mask, self.sampler if linear else None, bool(boot))

    def _pair_multipliers(self, boot_key, rows, boot: int):
        """pair indices [L] -> the bootstrap's multipliers [c, boot, L] of rows' streams (None without
        replicates): one piece takes its pairs' share of the stratified Rao-Wu draw, a budget streamed
        in pieces Poisson multipliers drawn per (row, pair)."""
        plan = self.sampler
        if not boot:
            return lambda pair: None
        if self._n_pieces > 1:
            return lambda pair: plan.poisson_multipliers(boot_key, rows, pair, boot)
        every = plan.bootstrap.multipliers(boot_key, rows, boot)                 # [c, B, pairs]
        return lambda pair: tf.gather(every, tf.minimum(pair, plan.n_pairs - 1), axis=2)

    def _pair_weights(self, pair):
        """[1, P]: each folded pair's weight (its two samples'), 0 for padding."""
        return 2.0 * self.sampler.pair_weights(pair)[None, :]

    def _feature_order(self, keys, rows):
        """[c, d] int32: each row's own random order of the features, from (seed, row id) (a key of its
        own purpose), or None where the plan has nothing random to reorder (all coalitions)."""
        if all(cl.kind == "full" for cl in self.sampler.classes):
            return None
        return tf.argsort(_random.uniform(keys[self.sampler.n_keys], rows, (self.n_features,)), axis=-1, stable=True)

    def _own_sets(self, sets, order, c):
        """Each row's copy [c, P, d] of shared sets [1, P, d], in its own feature order [c, d] (None:
        as they are): row c's feature i plays the shared column order[c, i]."""
        own = tf.broadcast_to(sets, tf.concat([[c], tf.shape(sets)[1:]], 0))
        return own if order is None else tf.gather(own, order, axis=2, batch_dims=1)

    def _shared_draw(self, keys, rows):
        """(the plan's state of the one shared draw (row 0 of the keys), each row's feature order)."""
        return self.sampler.prepare(keys, _shared_row(rows)), self._feature_order(keys, rows)

    def _shared_pairs(self, keys, boot_key, rows, x, fx, mask, v0) -> "_Round":
        """The plan's pairs shared by the chunk's rows (``shared_samples``), in pieces as
        :meth:`_stream_pairs`: every row evaluates the same draw of coalitions, each in its own random
        feature order, so every row's design is a relabelling of one shared design. Its normal
        equations, factorization and standard-error products (the d x d work per pair) are computed
        once for the chunk; per row remain its model values, their d x o products and the relabelling
        of its results. Rows with a null player (a player mask) are solved on their own, in a branch
        that runs only in chunks that have one. The bootstrap's multipliers are the shared draw's too."""
        plan = self.sampler
        c, d, o = tf.shape(x)[0], self.n_features, self.n_outputs
        linear = self._linearized
        boot = self.n_bootstrap if self._resamples and not linear else 0
        size, n_pieces = self._pair_piece, self._n_pieces
        one = _shared_row(rows)
        state, order = self._shared_draw(keys, rows)
        delta = fx - v0
        plain = tf.reduce_all(mask > 0, axis=-1)                                # [c]: no null player
        masked_rows = ~tf.reduce_all(plain)
        multipliers = self._pair_multipliers(boot_key, one, boot)                # the shared draw's

        def zeros(batch, w2=None):
            return _zero_sums(c, batch, d, o, boot, w2)

        def piece(j):
            pair = j * size + tf.range(size)
            sets = plan.pairs(keys, one, state, None if n_pieces == 1 else pair)   # [1, P, d]
            own = self._own_sets(sets, order, c)
            y = self._evaluate(x, Sample(tf.concat([own, 1.0 - own], axis=1), None, None))
            w2, mult = self._pair_weights(pair), multipliers(pair)
            if single:
                return {"own": _pair_sums(own, y, w2, delta, mask, linear, mult)}
            return {"shared": _pair_sums(sets, y, w2, delta, None, linear, mult),
                    "own": tf.cond(masked_rows, lambda: _pair_sums(own, y, w2, delta, mask, linear, mult),
                                   lambda: zeros(c, w2 if linear else None))}

        # one row (XLA's one-row program): its own design is the draw, solved on its own (one path, no
        # branch: the program compiles in ~5 s instead of ~8 at d = 100)
        single = x.shape[0] == 1
        strata = plan if linear else None
        sums = accumulate_pieces(piece, n_pieces, {"own": zeros(c)} if single else
                                 {"shared": zeros(1), "own": zeros(c)})
        if single:
            return _pair_round(sums["own"], delta, mask, strata, bool(boot), solve="own")
        shared = _pair_round(sums["shared"], delta, None, strata, bool(boot), solve="shared")
        gram = tf.broadcast_to(shared.gram, [c, d, d])
        if order is not None:   # from the shared columns back to each row's own features
            relabel = functools.partial(tf.gather, indices=order, axis=1, batch_dims=1)
            shared = _Round(tf.gather(relabel(gram), order, axis=2, batch_dims=1), relabel(shared.rhs),
                            relabel(shared.var), relabel(shared.values))
        else:
            shared = shared._replace(gram=gram)
        masked = tf.cond(masked_rows, lambda: _pair_round(sums["own"], delta, mask, strata, bool(boot), solve="own"),
                         lambda: tf.nest.map_structure(tf.zeros_like, shared))
        pick = lambda a, b: tf.where(plain[:, None, None], a, b)  # noqa: E731
        return tf.nest.map_structure(pick, shared, masked)

    def _adjusted(self, keys, rows, x, fx, mask, v0):
        """Regression-adjusted estimate (all coalitions of an instance at once)."""
        sample = self.sampler(keys[:-1], rows, x)
        y = self._evaluate(x, sample)
        values, _, _ = solvers.regression_adjusted_shapley(sample.z, y, sample.weights, v0, fx, mask=mask)
        if self._bootstraps and isinstance(self.sampler, KernelSampler):
            stderr = self._draw_bootstrap_stderr(sample, y, v0, fx, keys[-1], rows, mask)
        elif self._bootstraps:
            plan = self.sampler.bootstrap
            multipliers = plan.multipliers(keys[-1], rows, self.n_bootstrap, rescale=False)
            stderr = solvers.adjusted_bootstrap_stderr(sample.z, y, sample.weights, v0, fx, multipliers,
                                                       plan.pair_ids, mask=mask)
        else:
            stderr = tf.zeros_like(values)
        return {"values": values, "stderr": stderr, "fx": fx}

    def _converge(self, round_keys, rows, x, fx, mask, v0):
        """Rounds of fresh coalitions in a tf.while_loop until every instance's largest standard error
        is below tolerance x the range of its attributions (or max_rounds); converged instances stop
        accumulating. The estimate pools the rounds' normal equations; its variance is the sum of the
        rounds' bootstrap variances over rounds^2 (batch means when n_bootstrap=0)."""
        c, d, o = tf.shape(x)[0], self.n_features, self.n_outputs
        f64 = tf.float64
        delta = fx - v0
        use_bootstrap = self._resamples

        def estimate(s: _Converge):
            phi = solvers.solve_shapley(s.gram, s.rhs, delta, mask)  # constraint terms only act on what is projected out
            r = tf.cast(s.rounds, f64)[:, None, None]
            if use_bootstrap:
                return phi, tf.sqrt(s.var_sum) / r
            var = (s.phi_sq - s.phi_sum * s.phi_sum / r) / tf.maximum(r - 1.0, 1.0)
            return phi, tf.sqrt(tf.maximum(var, 0.0) / r)

        def body(s: _Converge):
            keys = tf.unstack(round_keys[s.round])
            stats = self._round(keys[:-1], keys[-1], rows, x, fx, mask, v0)
            phi_r = stats.values if stats.values is not None else solvers.solve_shapley(stats.gram, stats.rhs, delta,
                                                                                         mask)
            live = tf.cast(~s.done, f64)[:, None, None]
            var_sum = s.var_sum + live * stats.var if use_bootstrap else s.var_sum
            rounds = s.rounds + tf.cast(~s.done, tf.int32)
            nxt = _Converge(s.round + 1, s.gram + live * stats.gram, s.rhs + live * stats.rhs,
                            s.phi_sum + live * phi_r, s.phi_sq + live * phi_r * phi_r, var_sum, rounds, s.done)
            phi, se = estimate(nxt)
            spread = tf.reduce_max(phi, axis=[1, 2]) - tf.reduce_min(phi, axis=[1, 2])
            ok = (rounds >= 2) & (tf.reduce_max(se, axis=[1, 2]) <= self.tolerance * spread)
            return (nxt._replace(done=s.done | ok),)

        zeros_do = tf.zeros([c, d, o], f64)
        start = _Converge(tf.constant(0), tf.zeros([c, d, d], f64), zeros_do, zeros_do, zeros_do, zeros_do,
                          tf.zeros([c], tf.int32), tf.zeros([c], tf.bool))
        (final,) = tf.while_loop(lambda s: (s.round < self.max_rounds) & ~tf.reduce_all(s.done), body, (start,),
                                 maximum_iterations=self.max_rounds)
        phi, se = estimate(final)
        evals = tf.cast(final.rounds, tf.int64) * (self.sampler.n_samples * self.masker.rows_per_sample) + 1
        return {"values": tf.cast(phi, tf.float32), "stderr": tf.cast(se, tf.float32), "fx": fx, "n_evals": evals}

    def _output_spec(self):
        d, o = self.n_features, self.n_outputs
        spec = tf.TensorSpec([None, d, o], tf.float32)
        out = {"values": spec, "stderr": spec, "fx": tf.TensorSpec([None, o], tf.float32)}
        if self.tolerance is not None:
            out["n_evals"] = tf.TensorSpec([None], tf.int64)
        if self.base_values is None:
            out["base_values"] = tf.TensorSpec([None, o], tf.float32)
        out.update(self.masker.extras_spec())
        return out


def _shared_row(rows):
    """The row ids [1] of the one draw a chunk's rows share (shared coalitions): row 0."""
    return tf.zeros([1], rows.dtype)


def _zero_sums(c, batch, d, o, boot: int, w2=None):
    """What :func:`_pair_sums` returns, zero: gram (and the replicates') for a design of ``batch`` rows
    (1: shared), right-hand sides for c rows; with the folded rows of the pairs weighing ``w2`` [1, P]
    when given."""
    f64 = tf.float64
    out = {"gram": tf.zeros([batch, d, d], f64), "rhs": tf.zeros([c, d, o], f64)}
    if boot:
        out.update(boot_gram=tf.zeros([batch, boot, d, d], f64), boot_rhs=tf.zeros([c, boot, d, o], f64))
    if w2 is not None:
        out["rows"] = (tf.zeros([c, w2.shape[-1], d], f64), tf.zeros([c, w2.shape[-1], o], f64), w2)
    return out


def _pair_sums(sets, y, w2, delta, mask, linear: bool, mult):
    """One piece of complement pairs as the sums of its folded design's products: sets [c, P, d] (or
    [1, P, d]: one design shared by the rows), y [c, 2P, o] the sets' values then their complements',
    w2 [1, P] each folded pair's weight, delta = v1 - v0 [c, o], ``mask`` [c, d] the players solved for
    (None: all); ``linear``: with the folded rows themselves (one piece: the linearized errors);
    ``mult`` [c or 1, B, P]: bootstrap replicates' pair multipliers (or None). A dict of float64 sums:
    gram [c or 1, d, d], rhs [c, d, o] (and rows, boot_gram, boot_rhs)."""
    half = y.shape[1] // 2
    a, b = solvers.paired_shapley_design(sets, y[:, :half], y[:, half:], delta, mask)
    aw = a * w2[..., None]
    out = {"gram": tf.matmul(aw, a, transpose_a=True), "rhs": tf.matmul(aw, b, transpose_a=True)}
    if linear:
        out["rows"] = (a, b, w2)
    if mult is not None:
        out["boot_gram"], out["boot_rhs"] = solvers.replicate_normal_equations(a, b, w2, mult)
    return out


def _pair_round(sums, delta, mask, linearized, boot: bool, solve=None) -> _Round:
    """A round's results from its pairs' sums (:func:`_pair_sums`): the normal equations with the
    constraint term; values and variance by linearization (``linearized``: the plan, whose size
    classes are the strata) or the variance over bootstrap replicates (``boot``). ``solve``: also the
    values where no standard error gave them, and a variance always (zeros without standard errors):
    "shared" for the rows' one shared design (gram [1, d, d], one factorization for all), "own" for a
    design per row."""
    term = solvers.constraint_term(mask, sums["gram"].shape[-1])
    gram = sums["gram"] + term
    var = values = None
    if linearized is not None:   # the values and their errors from one factorization
        strata, factors = linearized.strata()
        values, se = solvers.linearized_shapley(*sums["rows"], gram, sums["rhs"], delta, strata, factors, mask)
        var = tf.square(tf.cast(se, tf.float64))
    if boot:
        se = solvers.bootstrap_stderr_from_normal_equations(
            sums["boot_gram"] + (term if mask is None else term[:, None]), sums["boot_rhs"], delta, mask)
        var = tf.square(tf.cast(se, tf.float64))
    if solve is not None:
        if values is None and solve == "shared":
            values = solvers.solve_shared_shapley(gram, sums["rhs"], delta)
        elif values is None:
            values = solvers.solve_shapley(gram, sums["rhs"], delta, mask)
        if var is None:
            var = tf.zeros_like(values)
    return _Round(gram, sums["rhs"], var, values)


def _kernel_width(value) -> float:
    width = as_real(value, "kernel_width")
    if not width > 0:
        raise ValueError(f"`kernel_width` must be a positive number, got {value!r}.")
    return width


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


SHARED_CHUNK = 32              # Lime with shared samples: instances per chunk (at most), up to d = 32
MAX_SHARED_CHUNK = 128


def shared_chunk(d: int) -> int:
    """Lime's instances per chunk with shared samples (at most): the power of two at or above d, from
    ``SHARED_CHUNK`` to ``MAX_SHARED_CHUNK``. The chunk's product columns (~d^2 / 2 per sample) are
    made once for its rows and the moments' matrix product is thin at few rows, so a chunk growing with
    d keeps their share per row flat: at d = 100, 128 rows a chunk cut the cost from 1.79x to 1.18x the
    model-only floor under XLA (1.77x to 0.89x without), while a call on one row took 139 ms instead of
    71 (it pays for a whole chunk)."""
    return min(MAX_SHARED_CHUNK, max(SHARED_CHUNK, 1 << (int(d) - 1).bit_length()))


_SHARED_SALT = "tfexplain shared samples"


class Lime(Explainer):
    """LIME (Ribeiro et al. 2016) in one TensorFlow graph: for tables as lime's LimeTabularExplainer
    computes it (``discretize_continuous=False`` by default), and for images (text) with a masker as
    its LimeImageExplainer (LimeTextExplainer) does.

    lime = Lime(model, training_data=X_train); exp = lime(x, seed=0)
    lime = Lime(cnn, masker=tfexplain.maskers.Image((4, 4), fill=0.0)); exp = lime(images, seed=0)

    One explainer, two combinations of parts: tables use a Gaussian (or discretized) tabular sampler,
    the points as they are and lime's exponential kernel on the standardized perturbations; a masker
    uses binary on/off samples over its players (:class:`~tfexplain.samplers.BinarySampler`), the
    masker to make them model input (as for KernelShap) and lime's cosine kernel on the binary
    vectors. Both fit the same weighted ridge surrogate with lime's feature selection.

    exp.values: surrogate coefficients (zero for unselected features): on standardized features for
    tables, on 0/1 "player present" indicators with a masker; exp.intercept, exp.score (weighted R^2),
    exp.local_pred; exp.contributions = values times the instance's own representation (the
    surrogate's additive split of local_pred - intercept), which is what the fidelity metrics rank.

    n_samples: perturbations per instance (default 5000 for tables and text, as lime_text; 1000 for
        images, as lime_image; row 0 is the instance itself).
    kernel_width: default 0.75 * sqrt(d) for tables; with a masker its ``lime_kernel_width`` (lime's:
        0.25 for images, 25 on 100 x the cosine distance for text). num_features: features kept
        (default 10 for tables and text, every segment for images, as lime_image's 100000), chosen by
        feature_selection "auto" (forward
        selection when num_features <= 6, else highest weights), "forward_selection",
        "highest_weights" or "none". categorical_features: column indices drawn from their training
        frequencies. alpha: ridge penalty (lime: 1).
    training_data: [rows, d] array, tensor or pandas DataFrame (whose columns then name the features):
        its mean / std scale the perturbations; its first rows probe the model.
    masker: instead of training data, a ``tfexplain.maskers`` masker (e.g. ``Image(segmentation=...,
        fill=...)``) whose players are explained; x is then the model's own input, the samples follow
        the masker's ``lime_sampling`` ("bernoulli": lime_image's, each player off with probability
        1/2; "uniform_sizes": lime_text's, k of the players off, k uniform in 1..players), and the
        explanation carries the masker's extras (``exp.segments``, ``exp.heatmap``). Null players
        (segments without pixels or equal to their fill) stay on in every sample and get exactly 0.
        lime_image's ``hide_color`` is ``fill``: a number, or (lime's default None, each segment's
        mean colour) closest to ``fill="mean"`` (the image's mean).
    target: output index or name, a list of them, or "predicted"; default: the only output, or for a
        multi-output model each row's predicted class (largest output: values [n, d], ``exp.target``
        [n]). lime itself explains ``labels=(1,)``: pass ``target=1`` for that.
    top_labels: explain each row's k most probable outputs, as lime's ``top_labels``: values
        [n, d, k] and ``exp.target`` [n, k] (most probable first). Not together with ``target``.
    feature_names, output_names, batch_size, jit_compile, output_key: as for :class:`KernelShap`.
    model: as for :class:`KernelShap` (probed on the first two training rows, or the masker's probe).
    discretize_continuous (tables): lime's default path when True (default False here: weights on
    standardized features, as before): every non-categorical feature is cut into bins by
    ``discretizer`` -- "quartile" (lime's default), "decile" or "entropy" (thresholds of a depth-3
    entropy tree on (feature, ``training_labels``), which it then requires) -- perturbations draw a
    bin per feature from its training frequency and a value from the bin's truncated normal, and the
    surrogate is fitted on 0/1 "same bin as the instance" indicators; ``exp.values`` are their
    weights (lime's ``as_map()``), ``exp.feature_conditions`` their readable names (lime's
    ``as_list()`` names, e.g. "worst radius > 0.52").
    shared_samples (tables, Gaussian sampling): lime's perturbations do not depend on the instance
        (N(mean, std) of the training data; only the weights, by distance to the instance, do), so by
        default (None: True for this sampler) one set of ``n_samples`` per seed serves every row: the
        model evaluates it once per chunk of up to :func:`shared_chunk` rows (32 up to d = 32, 64 up
        to 64, else 128), and the surrogates' moments of a chunk are one matrix product. Each row's explanation has lime's distribution
        (row 0 its own instance, its weights its own); the rows' sampling errors are correlated, and a
        row's numbers depend on (seed, row) only, not on its row id. Every chunk holds
        ``instances_per_chunk`` rows (fewer with a small ``batch_size``; the last padded), so a call
        of fewer rows costs as much as a chunk (with XLA: one program for every batch size). False: each
        row its own stream from (seed, row id) (each instance's model rows evaluated on their own:
        3-4x the model-only floor at d = 30).
    """

    method = "Lime"
    _probe_arg = "training_data"

    def __init__(self, model, training_data=None, *, masker=None, n_samples=None, kernel_width=None,
                 num_features=None, feature_selection="auto", categorical_features=None, target=None, alpha=1.0,
                 feature_names=None, output_names=None, batch_size=None,
                 jit_compile=False, output_key=None, top_labels=None, discretize_continuous=False,
                 discretizer="quartile", training_labels=None, shared_samples=None):
        if (masker is None) == (training_data is None):
            raise ValueError("pass either `training_data` (tables) or `masker=` (e.g. tfexplain.maskers.Image), "
                             "not both" + (" and not neither." if masker is None else "."))
        self.feature_selection = as_choice(
            feature_selection, "feature_selection", {"auto", "forward_selection", "highest_weights", "none"})
        self.alpha = as_real(alpha, "alpha")
        if self.alpha < 0:
            raise ValueError(f"`alpha` must be a non-negative number, got {alpha!r}.")
        if masker is None:
            columns = frame_columns(training_data)
            sampler, masker, kernel_width = self._tabular_parts(
                training_data, 5000 if n_samples is None else n_samples, kernel_width, categorical_features,
                discretize_continuous, discretizer, training_labels)
            kernel, fixed = kernels.exponential(self.kernel_width), 0
            default_features = 10
        else:
            columns = None
            if n_samples is None:   # lime_image's 1000, lime_text's 5000
                n_samples = getattr(masker, "lime_n_samples", 1000)
            sampler, masker = self._masker_parts(model, masker, n_samples,
                                                 kernel_width, categorical_features, discretize_continuous,
                                                 training_labels)
            kernel = kernels.cosine(self.kernel_width, getattr(masker, "lime_distance_scale", 1.0))
            fixed = masker.instance_floats
            default_features = min(masker.n_players, getattr(masker, "lime_num_features", masker.n_players))
        self.num_features = as_int(default_features if num_features is None else num_features, "num_features",
                                   minimum=1)
        self._setup(model, sampler=sampler, masker=masker, kernel=kernel, target=target,
                    default_target=lambda n_out: 0 if n_out == 1 else "predicted", link="identity",
                    batch_size=batch_size, jit_compile=jit_compile, feature_names=feature_names,
                    output_names=output_names, output_key=output_key, columns=columns, top_labels=top_labels)
        # lime's tabular perturbations do not depend on the instance: one set per seed can serve every row
        gaussian = isinstance(sampler, GaussianTabularSampler)
        if shared_samples is None:
            shared_samples = gaussian
        if not isinstance(shared_samples, (bool, np.bool_)):
            raise TypeError(f"`shared_samples` must be a bool or None, got {type(shared_samples).__name__}.")
        shared_samples = bool(shared_samples)
        if shared_samples and not gaussian:
            raise ValueError("`shared_samples=True` needs lime's Gaussian tabular sampling (`training_data` "
                             "without discretize_continuous): discretized and masker samples stay per row.")
        self.shared_samples = self._fixed_chunks = shared_samples
        # perturbations (and, for tables, their model-space points), values and kernel weights, a piece at a time
        d, o = self.n_features, self.n_outputs
        self._per_sample = (2 * d if self.tabular else d) + o + 2
        self._fixed = fixed                  # what the masker holds per instance (e.g. its flattened image)
        if shared_samples:   # a piece's points, values and products once (the products' columns and
            # their concatenation: twice, unless XLA fuses them into one), weights (and forms, with their
            # centred and weighted copies) per instance
            self._per_instance = 1 + (0 if sampler.shared_design else 4 * d + 3 * o + 2)
            copies = 1 if jit_compile else 2
            shared = copies * (1 + d + o + d * (d + 1) // 2 + o * d + o) if sampler.shared_design else 0
            self._per_sample += shared + shared_chunk(d) * self._per_instance
        self._piece, self._n_pieces = evaluation.pieces(sampler.n_samples, self._per_sample,
                                                         self.batch_size * self.masker.row_floats, fixed)

    def _tabular_parts(self, training_data, n_samples, kernel_width, categorical_features, discretize_continuous,
                       discretizer, training_labels):
        """lime_tabular's parts: (Gaussian or discretized sampler, points as they are, kernel width)."""
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
        self.kernel_width = _kernel_width(0.75 * np.sqrt(d) if kernel_width is None else kernel_width)
        self.tabular = True
        self.mean, self.std, categorical = lime_statistics(train, categorical_features)
        self.categorical_features = sorted(categorical)
        # lime's discretize_continuous=True: non-categorical columns binned (quartile / decile / entropy)
        if not isinstance(discretize_continuous, bool):
            raise TypeError(f"`discretize_continuous` must be a bool, got {type(discretize_continuous).__name__}.")
        self.discretize_continuous = discretize_continuous
        self.discretizer = as_choice(discretizer, "discretizer", set(DISCRETIZERS))
        if discretize_continuous:
            binned = [j for j in range(d) if j not in categorical]
            # bins and their statistics from the data as given (float64, as lime), not its float32 copy
            exact = np.asarray(training_data, np.float64).reshape(train.shape)
            self.bins = lime_bins(exact, binned, self.discretizer, training_labels)
            sampler = DiscretizedTabularSampler(exact, n_samples, self.bins, categorical)
        else:
            self.bins = {}
            sampler = GaussianTabularSampler(self.mean, self.std, n_samples, categorical)
        return sampler, Points(d, train), self.kernel_width

    def _masker_parts(self, model, masker, n_samples, kernel_width, categorical_features, discretize_continuous,
                      training_labels):
        """lime_image's / lime_text's parts: (binary on/off sampler over the masker's players, the masker)."""
        if isinstance(masker, (dict, list, tuple)) and _several_inputs(model, masker):
            masker = composite_masker(model, masker, None)     # one masker (or background) per model input
        if not isinstance(masker, Masker):
            raise TypeError(f"`masker` must be a tfexplain.maskers masker (e.g. tfexplain.maskers.Image(...)), got "
                            f"{type(masker).__name__}; pass tables as `training_data`.")
        if isinstance(masker, Points):
            raise ValueError("`masker` Points evaluates a sampler's own points; pass tables as `training_data`.")
        for name, value, default in (("categorical_features", categorical_features, None),
                                     ("discretize_continuous", discretize_continuous, False),
                                     ("training_labels", training_labels, None)):
            if value is not default:
                raise ValueError(f"`{name}` applies to tables (`training_data`), not with `masker=`.")
        masker = masker.bind(model)
        d = masker.n_players
        n_samples = as_int(n_samples, "n_samples")
        if n_samples < d + 1:
            raise ValueError(f"`n_samples` must be at least players + 1 = {d + 1}, got {n_samples}.")
        if kernel_width is None:
            kernel_width = getattr(masker, "lime_kernel_width", None)
            if kernel_width is None:
                raise ValueError(f"`kernel_width` is needed: the masker {type(masker).__name__} has no "
                                 "`lime_kernel_width` default.")
        self.kernel_width = _kernel_width(kernel_width)
        self.tabular = False
        self._probe_arg = "masker"
        self.mean = self.std = None
        self.categorical_features, self.bins, self.discretize_continuous = [], {}, False
        sampler = BinarySampler(d, n_samples, masker.players, getattr(masker, "lime_sampling", "bernoulli"))
        return sampler, masker

    def _instance_floats(self) -> int:
        if self.shared_samples:   # the piece's shared part is held once per chunk
            return self._piece * self._per_instance + 4 * (self.n_features + 1) ** 2
        return self._fixed + self._piece * self._per_sample + 2 * self.n_features * self.n_features

    @property
    def pieces_per_instance(self) -> int:
        """How many pieces each instance's perturbations are generated, evaluated and reduced in."""
        return self._n_pieces

    @property
    def instances_per_chunk(self) -> int:
        """As for every explainer; with shared samples at most :func:`shared_chunk` (each chunk evaluates the
        model on the shared points once, and the last chunk of a call is padded to the full size)."""
        cap = super().instances_per_chunk
        return min(cap, shared_chunk(self.n_features)) if self.shared_samples else cap

    def _keys(self, seed):
        if not self.shared_samples:
            return super()._keys(seed)
        return _random.split_keys(_random.seed_to_tensor(seed), self.sampler.n_keys + 1, salt=_SHARED_SALT)

    def _sample_graph(self, x, seed, rows):
        # shared samples: every row reads the one shared stream (row 0 of the shared keys)
        return super()._sample_graph(x, seed, tf.zeros_like(rows) if self.shared_samples else rows)

    def _origin(self, x):
        return self.sampler.origin(x)

    @property
    def feature_scale(self) -> np.ndarray:
        """Per-feature standard deviation of the training data (lime's scale without discretization;
        1 for categorical), in model units whatever the sampler. Tables only."""
        if not self.tabular:
            raise ValueError("`feature_scale` is defined for tabular Lime (training_data), not with a masker.")
        return self.std

    def _output_spec(self):
        d, o = self.n_features, self.n_outputs
        per_out = tf.TensorSpec([None, o], tf.float32)
        per_feature = tf.TensorSpec([None, d, o], tf.float32)
        return {"values": per_feature, "contributions": per_feature, "intercept": per_out,
                "score": per_out, "local_pred": per_out, "fx": per_out, **self.masker.extras_spec()}

    def _selection_mask(self, mom, x0):
        """(mask [c, o, d] of the features the surrogate keeps, how many each row keeps: k or d)."""
        k = min(self.num_features, self.n_features)
        method = self.feature_selection
        if method == "none" or k >= self.n_features and method != "forward_selection":
            return tf.ones([tf.shape(x0)[0], self.n_outputs, self.n_features], tf.float64), self.n_features
        if method == "auto":
            method = "forward_selection" if self.num_features <= 6 else "highest_weights"
        if method == "forward_selection":
            return solvers.forward_selection(mom, k, self.n_outputs), k
        return solvers.highest_weights(mom, x0, k, self.n_outputs), k

    def _explain_chunk(self, keys, rows, x):
        """Perturbations in pieces: generate, evaluate, weight, and merge their weighted moments into
        the instance's own (sample 0, merged exactly in float64); then select features and fit the
        ridge surrogate."""
        fx = self.model_outputs(self.masker.instances(x))
        x0 = self.sampler.origin(x)
        m, size = self.sampler.n_samples, self._piece

        def piece(j):
            index = j * size + tf.range(size)
            drawn = ((index > 0) & (index < m))[None, :]   # the instance is merged apart; padding weighs 0
            if self.shared_samples:
                return shared_piece(index, drawn)
            sample = self.sampler.chunk(keys, rows, x, tf.minimum(index, m - 1))
            y = self._evaluate(x, sample)
            log_w = self.kernel.log(sample, x0)
            return solvers.weighted_moments(sample.z, y, log_w=tf.where(drawn, log_w, -np.inf))

        def shared_piece(index, drawn):
            # the points of the shared stream (row 0 of the seed's shared keys), evaluated once for
            # the chunk; each instance weighs them by its own distance to them
            sample = self.sampler.chunk(keys, tf.zeros([1], rows.dtype), x[:1], tf.minimum(index, m - 1))
            # sample 0 (the chunk's first instance) and the padding weigh nothing: zeros, so that nothing
            # the moments see (their centring included, or a NaN of the model there) depends on which
            # instances share the chunk
            keep = drawn[0][:, None]
            y = tf.where(keep, self._evaluate(x[:1], sample)[0], 0.0)             # [L, o]
            if self.sampler.shared_design:
                z = tf.where(keep, sample.z[0], 0.0)
                log_w = self.kernel.log_shared(z, x0)                            # [c, L]
                return solvers.shared_moments(z, y, log_w=tf.where(drawn, log_w, -np.inf))
            z = tf.where(keep, self.sampler.design(sample.points, x), 0.0)      # [c, L, d]
            log_w = self.kernel.log(Sample(z, None, None), x0)
            y = tf.broadcast_to(y, tf.concat([tf.shape(z)[:2], [self.n_outputs]], 0))
            return solvers.weighted_moments(z, y, log_w=tf.where(drawn, log_w, -np.inf))

        # the instance's own weight: 1 at distance 0 (less for an instance without active players)
        w0 = self.kernel(Sample(x0[:, None, :], None, None), x0)[:, 0]
        mom = accumulate_pieces(piece, self._n_pieces, solvers.point_moments(x0, fx, w0), solvers.merge_moments)
        mask, n_selected = self._selection_mask(mom, x0)
        fit = solvers.weighted_ridge(mom, x0, mask, self.alpha, n_selected)
        coef = tf.transpose(fit.coef, [0, 2, 1])
        return {"values": coef, "contributions": coef * x0[:, :, None], "intercept": fit.intercept,
                "score": fit.score, "local_pred": fit.local_pred, "fx": fx, **self.masker.extras(x)}

    def feature_conditions(self, x) -> np.ndarray:
        """lime's readable name of each interpretable feature of each row, [n, d] strings: with
        ``discretize_continuous`` the row's bin (``"worst radius > 0.52"``, ``"0.25 < x <= 0.60"``,
        ``"x <= 0.25"``, boundaries with 2 decimals as lime prints them), ``"name=value"`` for a
        categorical feature, else the feature's name."""
        data = np.asarray(x, np.float32).reshape(-1, self.n_features)
        names = self.feature_names
        out = np.empty(data.shape, dtype=object)
        cat = set(self.categorical_features)
        for j in range(self.n_features):
            if j in self.bins:
                labels = bin_names(names[j], self.bins[j])
                bins = np.searchsorted(self.bins[j].astype(np.float32), data[:, j])  # as the sampler compares
                out[:, j] = [labels[b] for b in bins]
            elif j in cat:
                out[:, j] = ["%s=%s" % (names[j], int(v)) for v in data[:, j]]
            else:
                out[:, j] = names[j]
        return out.astype(str)

    def _extra_fields(self, data) -> dict:
        return {"feature_conditions": self.feature_conditions(data)} if self.tabular else {}
