"""The result of an explainer call, shaped like shap's ``Explanation``."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Optional

import numpy as np

# fields with one entry per instance (first axis), and those that also have a feature axis (axis 1)
_PER_ROW = ("values", "base_values", "data", "model_output", "n_evals", "stderr", "intercept", "score",
            "local_pred", "contributions", "target", "feature_conditions", "segments", "tokens")
_PER_FEATURE = ("values", "data", "stderr", "contributions", "feature_conditions", "tokens")


def _require(module: str, extra: str, what: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {module}, which is not installed: pip install {extra}") from None


def _map_inputs(fn, data):
    """``fn`` on each input of a multi-input model's ``data`` (a dict or list of arrays)."""
    return {k: fn(v) for k, v in data.items()} if isinstance(data, dict) else [fn(v) for v in data]


@dataclass(frozen=True)
class Explanation:
    """Attributions for a batch of instances.

    values: [n, d] for one explained output (or one per row: ``target="predicted"``), [n, d, o] for
        several (``target=[...]``, ``target=None`` on a multi-output model, Lime's ``top_labels=k``).
    base_values: [n] or [n, o]; for KernelSHAP the (link of the) mean model output over the
        background, for LIME the surrogate's intercept.
    data: the explained instances [n, d].
    feature_names: d names; output_names: the names of the model outputs (of the explained ones for a
        fixed target; of all outputs when ``target`` gives each row's explained outputs).
    method: "KernelShap" or "Lime".
    model_output: the model's output for each instance (link space), [n] or [n, o].
    n_evals: model evaluations (input rows) spent per instance; seconds: wall time of the call.
    stderr: standard errors of ``values`` where the method estimates them, else None.
    intercept, score, local_pred: LIME's surrogate intercept, weighted R^2 and prediction at the instance.
    contributions: LIME's coefficients times the instance's standardized features.
    target: with ``target="predicted"`` the explained output (class index) of each row [n]; with
        ``top_labels=k`` [n, k], most probable first; None when every row explains the same outputs.
    segments: for images (``tfexplain.maskers.Image``) the segment id of each pixel [n, H, W]; the
        features are the segments, ``data`` the images [n, H, W, C], ``heatmap`` each pixel's value.
    tokens: for token sequences (``tfexplain.maskers.Text``) [n, L]: the words of ``data``'s token ids
        when the masker has a ``vocabulary``, else the ids; the features are the positions, padding
        positions have values exactly 0. For sentences (``tfexplain.maskers.Words``) the words, and
        ``data`` the sentences [n].
    inputs, input_players: for a multi-input model (``tfexplain.maskers.Composite``) the inputs' keys
        (or indices) and their numbers of players: ``values`` holds every input's players side by side
        (feature names ``"input:player"``), ``values_by_input`` splits them keyed like the inputs, and
        ``data`` is the inputs (a dict or list of arrays).
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: list
    output_names: list
    method: str
    model_output: np.ndarray
    n_evals: np.ndarray
    seconds: float
    stderr: Optional[np.ndarray] = None
    intercept: Optional[np.ndarray] = None
    score: Optional[np.ndarray] = None
    local_pred: Optional[np.ndarray] = None
    contributions: Optional[np.ndarray] = None
    target: Optional[np.ndarray] = None
    feature_conditions: Optional[np.ndarray] = None   # LIME: [n, d] readable interpretable features
    link: str = "identity"                             # output space of values / base_values / model_output
    segments: Optional[np.ndarray] = None              # images: [n, H, W] int32 segment id of each pixel
    tokens: Optional[np.ndarray] = None                # text: [n, L] words (str) or token ids (int64)
    inputs: Optional[list] = None                      # multi-input: the inputs' keys (dict) or indices (list)
    input_players: Optional[list] = None               # multi-input: players of each input, in order

    @property
    def attributions(self) -> np.ndarray:
        """Per-feature contributions to this instance's output: ``values`` for SHAP, the surrogate's
        coefficient x the instance's standardized feature for LIME (what metrics rank and remove)."""
        return self.values if self.contributions is None else self.contributions

    @property
    def explained_output_names(self) -> list:
        """Names of the explained outputs: [n] (one per row) with ``target="predicted"``, [n][k] with
        ``top_labels``, else the names of values' last axis (one name for [n, d] values)."""
        if self.target is None:
            return list(self.output_names)
        t = np.asarray(self.target)
        if t.ndim == 1:
            return [self.output_names[int(i)] for i in t]
        return [[self.output_names[int(i)] for i in r] for r in t]

    @property
    def heatmap(self) -> np.ndarray:
        """Images: each pixel carries its segment's value, [n, H, W] or [n, H, W, o] (Captum's
        convention for a feature mask)."""
        if self.segments is None:
            raise AttributeError("`heatmap` is defined for image explanations (tfexplain.maskers.Image).")
        v = np.asarray(self.values)
        seg = np.asarray(self.segments)
        return v[np.arange(len(v))[:, None, None], seg]

    def __len__(self):
        return len(self.values)

    def by_input(self, field: str = "values"):
        """Multi-input explanations: ``field`` ("values", "stderr", "contributions") split along the
        players axis into one array per model input, keyed like the inputs (a dict, or a list for a
        list of inputs): e.g. ``{"numbers": [n, 3], "tokens": [n, L]}``."""
        if self.inputs is None:
            raise AttributeError("`by_input` is defined for multi-input explanations (tfexplain.maskers.Composite).")
        a = getattr(self, field)
        if a is None:
            raise ValueError(f"this explanation has no `{field}`.")
        bounds = np.cumsum([0, *self.input_players])
        parts = [np.asarray(a)[:, bounds[i]:bounds[i + 1]] for i in range(len(self.inputs))]
        return dict(zip(self.inputs, parts)) if isinstance(self.data, dict) else parts

    @property
    def values_by_input(self):
        """Multi-input explanations: ``values`` keyed like the model's inputs (see :meth:`by_input`)."""
        return self.by_input("values")

    # ---- selection --------------------------------------------------------------------------------
    def _feature_index(self, features) -> np.ndarray:
        """Column indices of ``features``: a name, an int, a slice, a boolean mask or a list of names / ints."""
        d = len(self.feature_names)
        if isinstance(features, slice):
            return np.arange(d)[features]
        if isinstance(features, (str, int, np.integer)):
            items = [features]
        else:
            items = np.asarray(features).tolist() if isinstance(features, np.ndarray) else list(features)
        if items and all(isinstance(i, (bool, np.bool_)) for i in items):
            if len(items) != d:
                raise IndexError(f"a boolean feature mask needs {d} entries, got {len(items)}.")
            return np.flatnonzero(items)
        index = []
        for item in items:
            if isinstance(item, str):
                if item not in self.feature_names:
                    raise KeyError(f"no feature named {item!r}; features are {self.feature_names}.")
                index.append(self.feature_names.index(item))
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not -d <= item < d:
                    raise IndexError(f"feature index {item} is out of range for {d} features.")
                index.append(int(item) % d)
            else:
                raise TypeError(f"features are selected by name or int, got {type(item).__name__}.")
        return np.asarray(index, np.int64)

    def __getitem__(self, key):
        """Select instances and features; no axis is ever dropped (``exp[0]`` has one row).

        ``exp[0]``, ``exp[:5]``, ``exp[mask]``, ``exp[[0, 3]]`` select rows; ``exp[:, "bmi"]``,
        ``exp[:, ["bmi", "bp"]]``, ``exp[:, 2]``, ``exp[0, :3]`` also select feature columns, consistently
        in values, data, stderr, contributions and feature_names.
        """
        rows, features = (key + (slice(None),))[:2] if isinstance(key, tuple) else (key, slice(None))
        if isinstance(key, tuple) and len(key) > 2:
            raise IndexError("an Explanation is indexed by [rows] or [rows, features].")
        if isinstance(rows, (int, np.integer)):
            n = len(self)
            if not -n <= rows < n:
                raise IndexError(f"row {rows} is out of range for {n} instances.")
            rows = slice(rows % n, rows % n + 1)
        changes = {}
        for f in _PER_ROW:
            a = getattr(self, f)
            if f == "data" and isinstance(a, (dict, list)):   # a multi-input model's inputs
                changes[f] = _map_inputs(lambda v: np.asarray(v)[rows], a)
                continue
            changes[f] = None if a is None else np.asarray(a)[rows]
        if not (isinstance(features, slice) and features == slice(None)):
            cols = self._feature_index(features)
            for f in _PER_FEATURE:
                if changes[f] is not None and not (f == "data" and (self.segments is not None or self.inputs is not None
                                                                    or changes[f].ndim < 2)):
                    changes[f] = np.take(changes[f], cols, axis=1)
            changes["feature_names"] = [self.feature_names[j] for j in cols]
            if isinstance(self.data, (dict, list)):   # the players no longer split by input: data as columns
                flat = self.feature_data()
                changes["data"] = None if flat is None else np.take(flat[rows], cols, axis=1)
                changes.update(inputs=None, input_players=None)
        return replace(self, **changes)

    # ---- tables -----------------------------------------------------------------------------------
    def _column(self, array, row, output):
        return array[row] if array.ndim == 2 else array[row, :, output]

    def _top(self, row, k, output):
        return np.argsort(-np.abs(self._column(self.values, row, output)), kind="stable")[:k]

    def output_name(self, row: int = 0, output: int = 0) -> str:
        """Name of the output explained in row ``row``'s ``values[..., output]`` (the row's own class
        with ``target="predicted"`` / ``top_labels``)."""
        if self.target is None:
            return self.output_names[min(output, len(self.output_names) - 1)]
        t = np.asarray(self.target)[row]
        return self.output_names[int(t if t.ndim == 0 else t[output])]

    def top_features(self, row: int = 0, k: int = 5, output: int = 0):
        """[(feature name, value, attribution), ...] for the k largest |values| of one row.

        row: instance index; k: how many features; output: index into values' last axis when there are
        several explained outputs."""
        vals = self._column(self.values, row, output)
        return [(self.feature_names[j], self.cell(row, j), float(vals[j])) for j in self._top(row, k, output)]

    def feature_data(self):
        """[n, d]: each feature's value in each row -- ``data`` for a table, ``tokens`` for text -- or None
        where a feature is no single number (an image's segment: see ``segments`` and ``heatmap``)."""
        if self.tokens is not None:
            return np.asarray(self.tokens)
        if isinstance(self.data, (dict, list)):   # several inputs: their columns side by side, if all are tables
            leaves = list(self.data.values()) if isinstance(self.data, dict) else list(self.data)
            if not all(np.ndim(v) == 2 for v in leaves):
                return None
            data = np.concatenate([np.asarray(v, np.float64) for v in leaves], 1)
            return data if data.shape[1] == len(self.feature_names) else None
        data = np.asarray(self.data)
        return data if data.ndim == 2 and data.shape[1] == len(self.feature_names) else None

    def cell(self, row: int, j: int):
        """Feature j's value in instance ``row``: its token for text, its number for a table, "" for an
        image's segment."""
        data = self.feature_data()
        if data is None:
            return ""
        t = data[row, j]
        if self.tokens is not None:
            return str(t) if isinstance(t, (str, np.str_)) else int(t)
        return float(t)

    def table(self, rows=None, k: int = 5, output: int = 0) -> str:
        """A readable plain-text table of each row's top-k features.

        rows: instance indices (default: the first 5); k: features per row; output: index into values'
        last axis when there are several explained outputs."""
        rows = range(min(len(self), 5)) if rows is None else rows
        lines = []
        for i in rows:
            base = np.ravel(self.base_values[i])
            out = np.ravel(self.model_output[i])
            o = min(output, np.ravel(self.values[i, 0]).size - 1)
            head = (f"row {i}: {self.method} of {self.output_name(i, o)}  f(x)={out[min(o, len(out) - 1)]:.4f}  "
                    f"base={base[min(o, len(base) - 1)]:.4f}")
            if self.score is not None:
                head += f"  R2={np.ravel(self.score[i])[o]:.3f}"
            lines.append(head)
            width = max(len(n) for n in self.feature_names)
            vals = self._column(self.values, i, o)
            scale = np.abs(vals).max() + 1e-12
            for j in self._top(i, k, o):
                attr = float(vals[j])
                bar = ("+" if attr >= 0 else "-") * int(round(abs(attr) / scale * 20))
                err = "" if self.stderr is None else f" ± {self._column(self.stderr, i, o)[j]:.4f}"
                cell = self.cell(i, j)
                cell = f"{cell:>10.4g}" if isinstance(cell, float) else f"{cell!s:>10}"
                lines.append(f"  {self.feature_names[j]:<{width}}  = {cell}   {attr:>+10.4f}{err}  {bar}")
        return "\n".join(lines)

    # ---- summaries --------------------------------------------------------------------------------
    def global_importance(self, use: str = "values", by_class=None) -> "GlobalImportance":
        """Mean |attribution| of each feature over the instances, with its standard error
        (sample std of |attribution| / sqrt(n); 0 for a single instance).

        use: "values" (default: SHAP values, or LIME's coefficients) or "attributions" (LIME's
        contributions, coefficient x standardized feature; the same as values for KernelShap).
        by_class: when each row explains its own outputs (``target="predicted"``, ``top_labels=k``):
            True (the default then) gives one column per explained class, the mean over the rows (and
            top-k slots) that explain that class, with that class's count in ``counts``; False pools
            them by position ("predicted class", or "top 1", "top 2", ...). Ignored otherwise: values
            [n, d, o] give one column per output, [n, d] one column.
        Returns a :class:`GlobalImportance`: ``.values`` (= ``.importance``) [d] or [d, o], ``.stderr``,
        ``.feature_names``, ``.output_names``, ``.counts``; printable, and ``plots.bar`` draws it."""
        if use not in ("values", "attributions"):
            raise ValueError(f"`use` must be 'values' or 'attributions', got {use!r}.")
        if by_class not in (None, True, False):
            raise ValueError(f"`by_class` must be None, True or False, got {by_class!r}.")
        a = np.abs(np.asarray(self.values if use == "values" else self.attributions, np.float64))
        n = len(a)
        if self.target is not None and by_class is not False:
            return self._class_importance(a)
        mean = a.mean(0)
        se = a.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
        if a.ndim == 2:
            names = ["predicted class"] if self.target is not None else list(self.output_names[:1])
        else:
            names = list(self.output_names) if self.target is None else [f"top {i + 1}" for i in range(a.shape[2])]
        counts = np.full(1 if a.ndim == 2 else a.shape[2], n, np.int64)
        return GlobalImportance(list(self.feature_names), names, mean, se, n, self.method, counts)

    def _class_importance(self, a) -> "GlobalImportance":
        """|values| [n, d] or [n, d, k] of rows explaining the classes ``target`` [n] or [n, k]: mean and
        standard error per class over the (row, slot) entries that explain it, classes that occur only."""
        t = np.asarray(self.target, np.int64).reshape(len(a), -1)        # [n, k]
        entries = np.moveaxis(a.reshape(len(a), a.shape[1], -1), 2, 1).reshape(-1, a.shape[1])   # [n k, d]
        labels = t.reshape(-1)
        classes = np.unique(labels)
        mean = np.zeros((a.shape[1], len(classes)))
        se = np.zeros_like(mean)
        counts = np.zeros(len(classes), np.int64)
        for c, k in enumerate(classes):
            rows = entries[labels == k]
            counts[c] = len(rows)
            mean[:, c] = rows.mean(0)
            se[:, c] = rows.std(0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else 0.0
        names = [self.output_names[int(k)] for k in classes]
        return GlobalImportance(list(self.feature_names), names, mean, se, len(a), self.method, counts)

    # ---- conversions ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every field as plain Python (lists, floats, str, None): JSON-serializable."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (dict, list)) and f.name == "data":
                v = _map_inputs(lambda a: np.asarray(a).tolist(), v)
            out[f.name] = np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
        out["seconds"] = float(self.seconds)
        return out

    def to_json(self, **kwargs) -> str:
        """``json.dumps(self.to_dict(), **kwargs)``."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict) -> "Explanation":
        """Inverse of :meth:`to_dict` (arrays back as numpy)."""
        kw = {}
        for f in fields(cls):
            v = d.get(f.name)
            if f.name in ("feature_names", "output_names"):
                v = [str(s) for s in (v or [])]
            elif f.name in ("method", "link"):
                v = str(v) if v is not None else f.default
            elif f.name == "data" and d.get("inputs") is not None and v is not None:
                v = _map_inputs(np.asarray, v)    # a multi-input model's inputs
            elif f.name in ("inputs", "input_players"):
                v = None if v is None else list(v)
            elif f.name == "feature_conditions":
                v = None if v is None else np.asarray(v, dtype=str)
            elif f.name == "data" and v is not None and np.asarray(v).dtype.kind in "USO":
                v = np.asarray(v, dtype=object)       # sentences (tfexplain.maskers.Words)
            elif f.name == "tokens" and v is not None:
                v = np.asarray(v)
                v = v.astype(np.int64) if np.issubdtype(v.dtype, np.number) else v.astype(str)
            elif f.name == "seconds":
                v = float(v or 0.0)
            elif v is not None:
                v = np.asarray(v, {"n_evals": np.int64, "target": np.int64, "segments": np.int32}.get(f.name, np.float32))
            kw[f.name] = v
        return cls(**kw)

    def to_pandas(self, format: str = "long"):
        """The explanation as a pandas DataFrame (needs pandas).

        format="long" (default): one row per (instance, feature[, output]) with columns ``row``,
        ``feature``, ``output`` (several explained outputs, or the per-row target's name), ``value``,
        ``data`` and, where present, ``stderr`` and ``contribution``; tidy, for groupby / plotting.
        format="wide": values only, index = instance, columns = feature names, or a MultiIndex
        (output, feature) for several outputs."""
        pd = _require("pandas", "pandas", "Explanation.to_pandas()")
        if format not in ("long", "wide"):
            raise ValueError(f"`format` must be 'long' or 'wide', got {format!r}.")
        v = np.asarray(self.values)
        n, d = v.shape[:2]
        if format == "wide":
            if v.ndim == 2:
                return pd.DataFrame(v, columns=list(self.feature_names))
            outs = self.axis_names(v.shape[2])
            cols = pd.MultiIndex.from_tuples([(o, f) for o in outs for f in self.feature_names],
                                             names=["output", "feature"])
            return pd.DataFrame(v.transpose(0, 2, 1).reshape(n, -1), columns=cols)
        o = 1 if v.ndim == 2 else v.shape[2]

        def flat(a):
            a = np.asarray(a)
            return (a[:, :, None] if a.ndim == 2 else a).reshape(-1)

        frame = {"row": np.repeat(np.arange(n), d * o), "feature": np.tile(np.repeat(self.feature_names, o), n)}
        if v.ndim == 3 or self.target is not None:
            names = np.asarray(self.explained_output_names if self.target is not None else
                               [self.axis_names(o)] * n, dtype=object).reshape(n, 1, o)
            frame["output"] = np.broadcast_to(names, (n, d, o)).reshape(-1)
        frame["value"] = flat(v)
        data = self.feature_data()
        if data is not None:   # images: no per-segment number (segments and heatmap hold the pixels)
            frame["data"] = np.repeat(np.asarray(data).reshape(-1), o)
        if self.stderr is not None:
            frame["stderr"] = flat(self.stderr)
        if self.contributions is not None:
            frame["contribution"] = flat(self.contributions)
        return pd.DataFrame(frame)

    def axis_names(self, o: int) -> list:
        """Names of the entries of values' last axis of size ``o``: the output names, or "top 1", ...
        when each row explains its own outputs."""
        return list(self.output_names) if self.target is None and len(self.output_names) == o else \
            [f"top {i + 1}" for i in range(o)]

    def to_shap(self):
        """A ``shap.Explanation`` with values, base_values, data, feature_names and output_names
        (needs shap), for shap's plots and tools. With ``target="predicted"`` each row's explained
        class name is in ``output_names``."""
        shap = _require("shap", "shap", "Explanation.to_shap()")
        v = np.asarray(self.values)
        names = self.explained_output_names if self.target is not None else (
            list(self.output_names) if v.ndim == 3 else (self.output_names[0] if self.output_names else None))
        data = self.feature_data() if isinstance(self.data, (dict, list)) else \
            None if self.data is None else np.asarray(self.data)
        return shap.Explanation(values=v, base_values=np.asarray(self.base_values), data=data,
                                feature_names=list(self.feature_names), output_names=names,
                                error_std=None if self.stderr is None else np.asarray(self.stderr),
                                compute_time=self.seconds)

    def __repr__(self):
        return (f"Explanation(method={self.method!r}, values.shape={self.values.shape}, "
                f"n_evals/instance={int(self.n_evals[0]) if len(self.n_evals) else 0}, seconds={self.seconds:.3f})")


@dataclass(frozen=True)
class GlobalImportance:
    """Mean |attribution| per feature over a batch of explanations (``Explanation.global_importance``).

    importance (also ``.values``): [d] (one explained output) or [d, o]; stderr: its standard error
    over the instances; n: instances; counts: [o] the instances (or top-k entries) behind each column
    (per class: the rows explaining that class); order(output): feature indices, most important first.
    Printing gives a table sorted by importance; ``tfexplain.plots.bar`` draws it."""

    feature_names: list
    output_names: list
    importance: np.ndarray
    stderr: np.ndarray
    n: int
    method: str = ""
    counts: Optional[np.ndarray] = None

    @property
    def values(self) -> np.ndarray:
        """The importance, [d] or [d, o] (the name SAGE's result and shap use)."""
        return self.importance

    def _col(self, a, output):
        return a if a.ndim == 1 else a[:, output]

    def order(self, output: int = 0) -> np.ndarray:
        """Feature indices sorted by decreasing importance for ``output`` (stable for ties)."""
        return np.argsort(-self._col(self.importance, output), kind="stable")

    def to_dict(self) -> dict:
        """{output name: {feature name: (mean |value|, stderr)}}, most important first."""
        o = 1 if self.importance.ndim == 1 else self.importance.shape[1]
        return {self.output_names[k]: {self.feature_names[j]: (float(self._col(self.importance, k)[j]),
                                                              float(self._col(self.stderr, k)[j]))
                                       for j in self.order(k)} for k in range(o)}

    def to_pandas(self):
        """DataFrame indexed by feature: columns ``importance`` and ``stderr`` (MultiIndex (output, ...)
        for several outputs), sorted by the first output's importance."""
        pd = _require("pandas", "pandas", "GlobalImportance.to_pandas()")
        imp, se = np.atleast_2d(self.importance.T).T, np.atleast_2d(self.stderr.T).T
        if self.importance.ndim == 1:
            df = pd.DataFrame({"importance": imp[:, 0], "stderr": se[:, 0]}, index=self.feature_names)
        else:
            data = {(o, c): arr[:, k] for k, o in enumerate(self.output_names)
                    for c, arr in (("importance", imp), ("stderr", se))}
            df = pd.DataFrame(data, index=self.feature_names)
        df.index.name = "feature"
        return df.iloc[self.order(0)]

    def __repr__(self):
        o = 1 if self.importance.ndim == 1 else self.importance.shape[1]
        width = max([len(n) for n in self.feature_names] + [7])
        lines = [f"Global importance ({self.method}): mean |value| ± standard error over {self.n} instances"]
        per_column = self.counts is not None and np.any(np.asarray(self.counts) != self.n)
        for k in range(o):
            count = f" ({int(self.counts[k])} rows)" if per_column else ""
            lines.append(f"  {self.output_names[k]}{count}:" if o > 1 else f"  output: {self.output_names[k]}{count}")
            imp, se = self._col(self.importance, k), self._col(self.stderr, k)
            scale = imp.max() + 1e-12
            for j in self.order(k):
                bar = "#" * int(round(imp[j] / scale * 20))
                lines.append(f"    {self.feature_names[j]:<{width}}  {imp[j]:>10.4g} ± {se[j]:<9.3g} {bar}")
        return "\n".join(lines)
