"""The result of an explainer call, shaped like shap's ``Explanation``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Explanation:
    """Attributions for a batch of instances.

    values: [n, d] for one explained output, [n, d, o] for several.
    base_values: [n] or [n, o]; for KernelSHAP the (link of the) mean model output over the
        background, for LIME the surrogate's intercept.
    data: the explained instances [n, d].
    stderr: standard errors of ``values`` where the method estimates them, else None.
    intercept, score, local_pred: LIME's surrogate intercept, weighted R^2 and prediction at the instance.
    contributions: LIME's coefficients times the instance's standardized features.
    model_output: the model's output for each instance (link space), [n] or [n, o].
    n_evals: model evaluations (input rows) spent per instance; seconds: wall time of the call.
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
    feature_conditions: Optional[np.ndarray] = None   # LIME: [n, d] readable interpretable features
    link: str = "identity"                             # output space of values / base_values / model_output

    @property
    def attributions(self) -> np.ndarray:
        """Per-feature contributions to this instance's output: ``values`` for SHAP, the surrogate's
        coefficient x the instance's standardized feature for LIME (what metrics rank and remove)."""
        return self.values if self.contributions is None else self.contributions

    def __len__(self):
        return len(self.values)

    def __getitem__(self, rows):
        """Row selection: ``exp[0]``, ``exp[:5]``, ``exp[mask]`` (keeps the batch dimension)."""
        if isinstance(rows, (int, np.integer)):
            rows = slice(rows, rows + 1 if rows != -1 else None)
        pick = lambda a: None if a is None else np.asarray(a)[rows]  # noqa: E731
        return replace(
            self, values=pick(self.values), base_values=pick(self.base_values), data=pick(self.data),
            model_output=pick(self.model_output), n_evals=pick(self.n_evals), stderr=pick(self.stderr),
            intercept=pick(self.intercept), score=pick(self.score), local_pred=pick(self.local_pred),
            contributions=pick(self.contributions), feature_conditions=pick(self.feature_conditions))

    def _column(self, array, row, output):
        return array[row] if array.ndim == 2 else array[row, :, output]

    def _top(self, row, k, output):
        return np.argsort(-np.abs(self._column(self.values, row, output)), kind="stable")[:k]

    def top_features(self, row: int = 0, k: int = 5, output: int = 0):
        """[(feature name, value, attribution), ...] for the k largest |attributions| of one row."""
        vals = self._column(self.values, row, output)
        return [(self.feature_names[j], float(self.data[row, j]), float(vals[j])) for j in self._top(row, k, output)]

    def table(self, rows=None, k: int = 5, output: int = 0) -> str:
        """A readable plain-text table of each row's top-k features."""
        rows = range(min(len(self), 5)) if rows is None else rows
        lines = []
        for i in rows:
            base = np.ravel(self.base_values[i])
            out = np.ravel(self.model_output[i])
            o = min(output, len(out) - 1)
            head = f"row {i}: {self.method} of {self.output_names[o]}  f(x)={out[o]:.4f}  base={base[min(o, len(base) - 1)]:.4f}"
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
                lines.append(f"  {self.feature_names[j]:<{width}}  = {self.data[i, j]:>10.4g}   {attr:>+10.4f}{err}  {bar}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"Explanation(method={self.method!r}, values.shape={self.values.shape}, "
                f"n_evals/instance={int(self.n_evals[0]) if len(self.n_evals) else 0}, seconds={self.seconds:.3f})")
