"""``import tfexplain.compat.shap as shap``: shap's ``KernelExplainer`` and tabular ``Explainer`` on
:class:`tfexplain.KernelShap`.

    explainer = shap.KernelExplainer(model.predict, background)        # or a Keras model / tf.function
    explainer.expected_value
    shap_values = explainer.shap_values(X, nsamples="auto")

``shap_values`` returns what shap 0.51 returns: ``[n, d]`` for a model with one output per row
(``[d]`` for one row), ``[n, d, o]`` for a model returning ``[n, o]`` (``o = 1`` included), and
``expected_value`` is a float or an ``[o]`` array likewise. Coalitions follow shap's own scheme
(``sampler="kernel"``; ``nsamples="auto"`` = 2d + 2048; a budget of at least 2^d - 2 enumerates every
coalition: exact Shapley values, equal to shap's to float32 precision). ``data`` may be an array, a
DataFrame or shap's ``DenseData`` (``shap.kmeans``: rows and weights). ``link`` is "identity" or
"logit". Differences: no L1 feature selection (shap's default ``l1_reg="num_features(10)"`` only
changes anything above 10 features; a warning says so), one seed per call drawn from numpy's global
RNG (``np.random.seed`` makes runs reproducible), ``silent`` / ``gc_collect`` are accepted and ignored.

``shap.Explainer(model, masker)(X)`` with a background array / DataFrame or ``maskers.Independent``
as masker returns a :class:`tfexplain.Explanation` (``.values``, ``.base_values``, ``.data``,
``.feature_names`` as shap.Explanation; values shaped as shap's) computed exactly (all coalitions)
for d <= 10 features, as shap's ExactExplainer, and with tfexplain's default leverage-sampling
estimator above.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import explainers as _explainers
from ..explanation import Explanation
from ._common import ExplainerCache, check_random_state, next_seed

__all__ = ["KernelExplainer", "Explainer", "maskers"]

EXACT_FEATURES = 10   # shap.Explainer picks its ExactExplainer up to 10 features


def _background(data):
    """(rows float64 [k, d], weights [k] or None) from an array, DataFrame, or shap's DenseData."""
    weights = None
    if hasattr(data, "data") and hasattr(data, "weights") and not isinstance(data, np.ndarray):  # DenseData
        data, weights = data.data, np.asarray(data.weights, np.float64)
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    data = np.asarray(data, np.float64)
    if data.ndim == 1:
        data = data[None]
    return data, weights


def _link_name(link):
    name = link if isinstance(link, str) else type(link).__name__.lower().replace("link", "")
    if name not in ("identity", "logit"):
        raise NotImplementedError(f"`link={link!r}`: only 'identity' and 'logit' are supported.")
    return name


def _shaped(values, squeeze):
    """KernelShap values [n, d] or [n, d, o] -> shap's layout: [n, d] when the model returns [n],
    else [n, d, o] (o = 1 included)."""
    if squeeze:
        return values
    return values[..., None] if values.ndim == 2 else values


class KernelExplainer:
    """shap.KernelExplainer(model, data, link="identity") on tfexplain's in-graph KernelShap."""

    def __init__(self, model, data, feature_names=None, link="identity", **kwargs):
        self.model = model
        self.data, self.weights = _background(data)
        self.link = _link_name(link)
        self.feature_names = feature_names
        self.random_state = check_random_state(None)
        self._cache = ExplainerCache()
        self._l1_warned = False
        first = self._explainer("auto")
        self._squeeze = first.scalar_output
        base = np.asarray(first.base_values, np.float64)
        self.expected_value = float(base[0]) if self._squeeze else base
        self.fnull = self.expected_value

    @property
    def n_features(self) -> int:
        return self.data.shape[1]

    def _explainer(self, nsamples):
        d = self.n_features
        n = 2 * d + 2**11 if nsamples == "auto" else int(nsamples)
        if d < 31:
            n = min(n, 2**d - 2) if d > 1 else n
        return self._cache.get(self.model, n, lambda: _explainers.KernelShap(
            self.model, self.data, n_samples=max(n, 1), sampler="kernel", link=self.link, n_bootstrap=0,
            background_weights=self.weights, feature_names=self.feature_names))

    def shap_values(self, X, nsamples="auto", l1_reg="num_features(10)", silent=False, gc_collect=False, **kwargs):
        x = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, np.float64)
        single = x.ndim == 1
        if l1_reg not in (False, 0, "auto") and self.n_features > 10 and not self._l1_warned:
            self._l1_warned = True
            warnings.warn(f"tfexplain.compat.shap applies no L1 feature selection (l1_reg={l1_reg!r} is treated as "
                          f"False): with {self.n_features} features shap's default would keep 10 of them.",
                          UserWarning, stacklevel=2)
        explainer = self._explainer(nsamples)
        exp = explainer(x[None] if single else x, seed=next_seed(self.random_state))
        values = _shaped(np.asarray(exp.values, np.float64), self._squeeze)
        return values[0] if single else values

    def __call__(self, X, nsamples="auto", silent=False, **kwargs) -> Explanation:
        """Like shap's ``KernelExplainer.__call__``: an Explanation with values shaped as ``shap_values``."""
        x = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, np.float64)
        explainer = self._explainer(nsamples)
        exp = explainer(x, seed=next_seed(self.random_state))
        n = len(exp.values)
        base = np.broadcast_to(np.asarray(self.expected_value, np.float64), (n,) + np.shape(self.expected_value))
        from dataclasses import replace
        return replace(exp, values=_shaped(exp.values, self._squeeze), base_values=np.array(base))


class _Maskers:
    class Independent:
        """shap.maskers.Independent(data, max_samples=100): background rows, at most ``max_samples``
        (a seeded subsample without replacement above that; shap's own subsample differs)."""

        def __init__(self, data, max_samples=100):
            rows, _ = _background(data)
            if len(rows) > max_samples:
                rows = rows[np.random.RandomState(0).choice(len(rows), max_samples, replace=False)]
            self.data = rows


maskers = _Maskers()


class Explainer:
    """shap.Explainer(model, masker) for tabular data: ``Explainer(model, background)(X)`` returns a
    :class:`tfexplain.Explanation` shaped like shap's (values [n, d] or [n, d, o], base_values [n] or
    [n, o]). Exact for d <= 10 features (as shap's ExactExplainer), else tfexplain's default
    KernelShap estimator with ``max_evals`` coalitions (default 2d + 2048)."""

    def __init__(self, model, masker=None, link="identity", feature_names=None, **kwargs):
        if masker is None:
            raise NotImplementedError("pass a background (array / DataFrame) or maskers.Independent as `masker`.")
        self.model = model
        data = masker.data if isinstance(masker, _Maskers.Independent) else masker
        self.data, self.weights = _background(data)
        if isinstance(masker, np.ndarray) and len(self.data) > 100:
            self.data = _Maskers.Independent(self.data).data
        self.link = _link_name(link)
        self.feature_names = feature_names
        self.random_state = check_random_state(None)
        self._cache = ExplainerCache()

    def __call__(self, X, max_evals="auto", **kwargs) -> Explanation:
        x = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, np.float64)
        d = x.shape[-1]
        exact = d <= EXACT_FEATURES
        budget = None if exact or max_evals == "auto" else int(max_evals)

        def build():
            return _explainers.KernelShap(
                self.model, self.data, sampler="exact" if exact else "leverage", n_samples=budget,
                link=self.link, background_weights=self.weights, n_bootstrap=0, feature_names=self.feature_names)

        explainer = self._cache.get(self.model, (exact, budget), build)
        exp = explainer(x, seed=next_seed(self.random_state))
        if explainer.scalar_output:
            return exp
        from dataclasses import replace
        return replace(exp, values=_shaped(exp.values, False),
                       base_values=np.asarray(exp.base_values).reshape(len(x), -1))
