"""Export an explainer as a SavedModel: the model's own ``serving_default`` signature next to an
``explain`` signature, loadable with plain ``tf.saved_model.load`` (no tfexplain at serving time)."""

from __future__ import annotations

import os
import shutil
import tempfile

import tensorflow as tf

from ._validation import MAX_ROW_ID
from .explainers import Explainer
from .maskers import Composite


def _trackable(obj):
    return isinstance(obj, tf.Module) or isinstance(obj, tf.__internal__.tracking.AutoTrackable)


def _keras_resources(model) -> list:
    """Lookup tables and other TrackableResources a Keras model holds (e.g. a ``TextVectorization``'s
    vocabulary table, also inside custom layers and nested models), found breadth-first through the
    attributes of its layers and modules: the signatures capture them, so the SavedModel must track
    them (the Keras model itself is not tracked)."""
    found, seen, level = [], set(), [model]
    while level:
        nxt = []
        for obj in level:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, tf.saved_model.experimental.TrackableResource):
                found.append(obj)
            elif isinstance(obj, (list, tuple)):
                nxt.extend(obj)
            elif isinstance(obj, dict):
                nxt.extend(obj.values())
            elif isinstance(obj, (tf.Module, tf.__internal__.tracking.AutoTrackable)) or \
                    type(obj).__module__.split(".")[0] in ("keras", "tf_keras"):
                nxt.extend(vars(obj).values())
        level = nxt
    return found


def _check_target(path: str, overwrite: bool) -> bool:
    """Whether ``path`` holds something that ``overwrite=True`` replaces; raises unless allowed."""
    if not tf.io.gfile.exists(path):
        return False
    if not tf.io.gfile.isdir(path):
        raise FileExistsError(f"`path` {path!r} exists and is not a directory; export writes a SavedModel folder.")
    if not tf.io.gfile.listdir(path):
        return False
    if not overwrite:
        raise FileExistsError(f"`path` {path!r} exists and is not empty; pass overwrite=True to replace it.")
    return True


def _save_replacing(module, path: str, signatures) -> None:
    """Saves next to ``path`` and swaps it in, so a failed export leaves the old artifact intact."""
    if "://" in path:  # remote file systems: no atomic folder rename
        tf.io.gfile.rmtree(path)
        tf.saved_model.save(module, path, signatures=signatures)
        return
    parent, name = os.path.split(os.path.abspath(path))
    fresh = tempfile.mkdtemp(prefix=f".{name}.new-", dir=parent)
    try:
        tf.saved_model.save(module, fresh, signatures=signatures)
        old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
        os.rmdir(old)
        os.rename(path, old)
        try:
            os.rename(fresh, path)
        except BaseException:
            os.rename(old, path)
            raise
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)




def _input_checks(x, spec: tf.TensorSpec, name: str, masker):
    """(x after ensure_shape, its in-graph checks) for one model input ``x`` named ``name``."""
    tabular = spec.shape.rank == 2    # [rows, d] (or token ids [rows, L]): the width is checked with a message
    x = tf.ensure_shape(x, [None, None] if tabular else spec.shape, name="x_must_match_the_input_spec")
    checks = []
    if tabular:
        width, d = tf.shape(x)[1], spec.shape[1]
        checks.append(tf.debugging.Assert(tf.equal(width, d), [f"`{name}` must have {d} features (columns); got",
                                                                width]))
    with tf.control_dependencies(checks):
        if x.dtype.is_floating:
            finite = tf.math.is_finite(x)
            first = tf.where(~finite)[:1]
            checks.append(tf.debugging.Assert(tf.reduce_all(finite),
                                              [f"`{name}` contains NaN or Inf; first at [row, column]:", first]))
        checks.extend(masker.graph_checks(x))
    return x, checks


def _checked_inputs(x, seed, row_ids, masker):
    """``x`` (one model input, or a multi-input model's dict / list of them) and ``row_ids`` after in-graph
    checks of the signature's inputs, as clear as the in-process ones."""
    # a loaded signature called with flat tensors does not check their shapes against its own, and the
    # graph was built for those: check them first (EnsureShape runs whatever the static shapes say)
    if isinstance(masker, Composite):
        named = [(f"x[{k!r}]", v, p.input_spec, p) for k, v, p in zip(masker.keys, masker.leaves(x), masker.parts)]
    else:
        named = [("x", x, masker.input_spec, masker)]
    seed = tf.ensure_shape(seed, [], name="seed_must_be_a_scalar")
    row_ids = tf.ensure_shape(row_ids, [None], name="row_ids_must_be_a_vector")
    leaves, checks = [], [tf.debugging.Assert(seed >= 0, ["`seed` must be >= 0; got", seed])]
    ids = tf.shape(row_ids, out_type=tf.int64)[0]
    for name, leaf, spec, part in named:
        leaf, leaf_checks = _input_checks(leaf, spec, name, part)
        leaves.append(leaf)
        n = tf.shape(leaf, out_type=tf.int64)[0]
        checks.append(tf.debugging.Assert(tf.equal(ids, n), [f"`row_ids` must have one id per row of `{name}`: got",
                                                             ids, "ids for", n, "rows"]))
        checks.extend(leaf_checks)
    with tf.control_dependencies(checks):
        outside = (row_ids < 0) | (row_ids >= MAX_ROW_ID)
        where = tf.where(outside)[:1, 0]
        checks.append(tf.debugging.Assert(
            ~tf.reduce_any(outside),
            [f"`row_ids` must be in [0, 2**32) (the rows' global indices); first outside at index",
             where, "value", tf.gather(row_ids, where)]))
    with tf.control_dependencies(checks):
        leaves = [tf.identity(v) for v in leaves]
        x = masker.pack(leaves) if isinstance(masker, Composite) else leaves[0]
        return x, tf.identity(row_ids)


def _signature_inputs(masker):
    """(named TensorSpecs of the signatures' model inputs, a function packing them into the model's
    input): ``x`` for one input; one argument per input for a multi-input model, named by its dict key
    (or ``x_0``, ``x_1``, ... for a list)."""
    if not isinstance(masker, Composite):
        spec = masker.input_spec
        return [tf.TensorSpec(spec.shape, spec.dtype, name="x")], lambda leaves: leaves[0]
    names = [str(k) for k in masker.keys] if masker.is_dict else [f"x_{i}" for i in masker.keys]
    for name in names:
        if not name.isidentifier() or name in ("seed", "row_ids"):
            raise ValueError(f"input {name!r} cannot name an argument of an exported signature (it must be a Python "
                             "identifier other than 'seed' and 'row_ids').")
    specs = [tf.TensorSpec(p.input_spec.shape, p.input_spec.dtype, name=n) for p, n in zip(masker.parts, names)]
    return specs, masker.pack


def _checked_outputs(out: dict) -> dict:
    """``out`` after asserting that the explanations are finite (else the model gave NaN / Inf, or an
    output outside [0, 1] with link="logit", on rows of the listed instances)."""
    keys = [k for k in ("values", "model_output", "base_values") if k in out]
    n = tf.shape(out["values"])[0]
    ok = tf.ones([n], tf.bool)
    for k in keys:
        ok &= tf.reduce_all(tf.reshape(tf.math.is_finite(out[k]), [n, -1]), axis=1)
    check = tf.debugging.Assert(tf.reduce_all(ok), [
        "the explanation is not finite: `model` returned NaN or Inf (or, with link=logit, an output outside "
        "[0, 1], which is no probability) on rows evaluated for instances (rows of `x`):", tf.where(~ok)[:, 0]],
        summarize=20)
    with tf.control_dependencies([check]):
        return {k: tf.identity(v) for k, v in out.items()}


def export(explainer: Explainer, path, jit_compile: bool = False, *, overwrite: bool = False) -> str:
    """Writes a SavedModel at ``path`` with signatures

    - ``serving_default``: x float32 [None, d] -> {"output_0": model output}
    - ``explain``: x float32 [None, d], seed int64 [] -> {"values", "base_values", "model_output", and
      for Lime "intercept", "score", "local_pred"; with target="predicted" / top_labels, "target"},
      shaped as the in-process ``Explanation``'s fields
    - ``explain_default_seed``: x only, seed 0
    - ``explain_rows``: x, seed and row_ids int64 [None], the rows' global indices (row ``i``'s random
      stream is (seed, row_ids[i])), -> the outputs of ``explain``: a dataset served in any batches,
      each with its rows' ids, gives the numbers of one call on all of it, bit for bit. ``explain``
      numbers each batch's rows from 0.

    ``stderr`` is an output only where the method estimates standard errors (KernelShap with its
    bootstrap or ``tolerance=``, or exact values: zeros); ``n_evals`` (model evaluations per row) only
    with ``tolerance=``, where it varies by row.

    Background data, training statistics and configuration are constants of the graph. With
    ``jit_compile=True`` the explain graph is compiled with XLA when it runs.

    ``explain`` and ``explain_rows`` check their inputs in-graph (``x`` d features wide and finite,
    ``seed`` >= 0, ``row_ids`` one per row of ``x``, in [0, 2**32)) and that
    the explanations are finite (the model gave no NaN / Inf, nor with link="logit" outputs outside
    [0, 1]): a failed check raises ``InvalidArgumentError`` with a message naming ``x`` / ``seed`` /
    ``model``. An empty ``x`` [0, d] gives empty outputs. A model that runs through
    ``tf.numpy_function`` cannot be exported (ValueError).

    ``path`` must not exist, or be an empty folder: an existing artifact raises ``FileExistsError``
    unless ``overwrite=True`` (then the new one is written beside it and swapped in). Returns ``path``.
    """
    if not isinstance(explainer, Explainer):
        raise TypeError(f"`explainer` must be a tfexplain explainer, got {type(explainer).__name__}.")
    if not isinstance(jit_compile, bool):
        raise TypeError(f"`jit_compile` must be a bool, got {type(jit_compile).__name__}.")
    if not isinstance(overwrite, bool):
        raise TypeError(f"`overwrite` must be a bool, got {type(overwrite).__name__}.")
    explainer.require_in_graph("`tfexplain.export`")
    if not explainer.masker.exportable:
        raise ValueError(f"`explainer` uses the {type(explainer.masker).__name__} masker, which tfexplain.export "
                         "does not support yet (a Keras TextVectorization's lookup table is not tracked).")
    path = os.fspath(path)
    replace = _check_target(path, overwrite)
    masker = explainer.masker
    x_specs, pack = _signature_inputs(masker)   # the model's own input(s): [None, d] for tables
    k = len(x_specs)
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    rows_spec = tf.TensorSpec([None], tf.int64, name="row_ids")

    # explain_graph handles an empty batch (a tf.cond), and with jit_compile runs fixed-size chunks
    # through one XLA program inside: the checks stay outside any XLA cluster.
    def explain_rows(*args):
        x, row_ids = _checked_inputs(pack(list(args[:k])), args[k], args[k + 1], masker)
        return _checked_outputs(explainer.explain_graph(x, args[k], row_ids, jit_compile=jit_compile))

    module = tf.Module()
    module.serve = tf.function(lambda *xs: {"output_0": explainer.model_fn(pack(list(xs)))}, input_signature=x_specs,
                               autograph=False)
    module.explain_rows = tf.function(explain_rows, input_signature=x_specs + [seed_spec, rows_spec],
                                      autograph=False)
    # explain numbers the rows of its batch from 0; it calls explain_rows, so the graph is traced once
    module.explain = tf.function(
        lambda *a: module.explain_rows(*a, tf.range(tf.shape(a[0], out_type=tf.int64)[0])),
        input_signature=x_specs + [seed_spec], autograph=False)
    module.explain_default_seed = tf.function(lambda *xs: module.explain(*xs, tf.constant(0, tf.int64)),
                                              input_signature=x_specs, autograph=False)
    signatures = {"serving_default": module.serve.get_concrete_function(),
                  "explain": module.explain.get_concrete_function(),
                  "explain_default_seed": module.explain_default_seed.get_concrete_function(),
                  "explain_rows": module.explain_rows.get_concrete_function()}
    # Track every variable the graphs capture (a Keras 3 variable's tf.Variable is its .value), and
    # the model object itself when it is trackable (a loaded SavedModel owns its functions' variables).
    seen, variables = set(), []
    for fn in signatures.values():
        for v in fn.variables:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    module.captured_variables = variables
    is_keras = type(explainer.model).__module__.split(".")[0] in ("keras", "tf_keras")
    if _trackable(explainer.model) and not is_keras:
        module.model = explainer.model
    elif is_keras:   # e.g. a TextVectorization's vocabulary table
        module.resources = _keras_resources(explainer.model)
    try:
        if replace:
            _save_replacing(module, path, signatures)
        else:
            tf.saved_model.save(module, path, signatures=signatures)
    except AssertionError as err:   # TensorFlow's message for a captured resource nothing tracks
        if "untracked" not in str(err):
            raise
        raise ValueError("`tfexplain.export` could not find a resource the model uses (e.g. a lookup table held "
                         "outside the model's layers), so the SavedModel cannot hold it: keep such tables in "
                         f"Keras layers or tf.Modules the model owns. TensorFlow said: {str(err)[:300]}") from None
    return path
