"""``lime.lime_tabular.LimeTabularExplainer`` on :class:`tfexplain.Lime`.

Code written for lime runs with one import changed::

    import tfexplain.compat.lime as lime
    import tfexplain.compat.lime.lime_tabular

    explainer = lime.lime_tabular.LimeTabularExplainer(X_train, mode="classification", feature_names=names)
    exp = explainer.explain_instance(x, model.predict, num_features=5)
    exp.as_list()

Same defaults as lime 0.2.0.1 (``discretize_continuous=True``, quartile bins, kernel width
0.75 sqrt(d), ``feature_selection="auto"``, 5000 samples, ``labels=(1,)``), same sampling scheme and
surrogate, so the explanations agree with lime's in distribution (not sample for sample: the random
numbers come from tfexplain's counter-based streams, seeded from ``random_state``). ``predict_fn`` may
be a Keras model, its bound ``predict`` (run in-graph as the model itself), a ``tf.function`` or any
callable of TF ops; a NumPy-only callable runs through ``tf.numpy_function`` with a warning. The
underlying :class:`tfexplain.Lime` is built once per (predict_fn, num_features, num_samples) and
reused, so repeated ``explain_instance`` calls neither rebuild nor retrace.

Not supported (NotImplementedError): ``sample_around_instance=True``, a custom ``kernel``,
``training_data_stats``, a ``BaseDiscretizer`` instance, ``feature_selection="lasso_path"``, sparse
input, ``distance_metric`` other than "euclidean", ``model_regressor``.
"""

from __future__ import annotations

import numpy as np

from ... import explainers as _explainers
from ...models import ModelAdapter
from .._common import ExplainerCache, check_random_state, next_seed
from .explanation import Explanation


class LimeTabularExplainer:
    def __init__(self, training_data, mode="classification", training_labels=None, feature_names=None,
                 categorical_features=None, categorical_names=None, kernel_width=None, kernel=None,
                 verbose=False, class_names=None, feature_selection="auto", discretize_continuous=True,
                 discretizer="quartile", sample_around_instance=False, random_state=None,
                 training_data_stats=None):
        if hasattr(training_data, "toarray") and not isinstance(training_data, np.ndarray):
            raise NotImplementedError("sparse training data is not supported by tfexplain.compat.lime.")
        if sample_around_instance:
            raise NotImplementedError("`sample_around_instance=True` is not implemented in tfexplain.compat.lime "
                                      "(lime's default, False, samples around the training mean).")
        if kernel is not None:
            raise NotImplementedError("a custom `kernel` is not supported: tfexplain uses lime's default "
                                      "sqrt(exp(-d^2 / width^2)); set `kernel_width` instead.")
        if training_data_stats is not None:
            raise NotImplementedError("`training_data_stats` is not supported: pass the training data.")
        if not isinstance(discretizer, str):
            raise NotImplementedError("a BaseDiscretizer instance is not supported: use 'quartile', 'decile' "
                                      "or 'entropy'.")
        if feature_selection not in ("auto", "forward_selection", "highest_weights", "none"):
            raise NotImplementedError(f"`feature_selection={feature_selection!r}` is not supported (use 'auto', "
                                      f"'forward_selection', 'highest_weights' or 'none').")
        if mode not in ("classification", "regression"):
            raise ValueError(f"Invalid explanation mode {mode!r}. Should be either 'classification' or 'regression'.")
        data = np.asarray(training_data.to_numpy() if hasattr(training_data, "to_numpy") else training_data,
                          np.float64)
        d = data.shape[1]
        self.training_data = data
        self.mode = mode
        self.training_labels = training_labels
        self.feature_names = [str(i) for i in range(d)] if feature_names is None else list(feature_names)
        self.categorical_features = list(categorical_features or [])
        self.categorical_names = categorical_names or {}
        self.kernel_width = float(np.sqrt(d) * 0.75 if kernel_width is None else kernel_width)
        self.class_names = class_names
        self.feature_selection = feature_selection
        self.discretize_continuous = bool(discretize_continuous)
        self.discretizer = discretizer
        self.random_state = check_random_state(random_state)
        self.verbose = verbose
        self._cache = ExplainerCache()
        if self.discretize_continuous and discretizer == "entropy" and training_labels is None:
            raise ValueError("Labels must be not None when using EntropyDiscretizer")

    def _explainer(self, predict_fn, num_features, num_samples):
        def build():
            probe = ModelAdapter(predict_fn, self.training_data[:2].astype(np.float32), warn=False)
            return _explainers.Lime(
                predict_fn, self.training_data, n_samples=num_samples, kernel_width=self.kernel_width,
                num_features=num_features, feature_selection=self.feature_selection,
                categorical_features=self.categorical_features, target=list(range(probe.n_outputs)),
                feature_names=self.feature_names, discretize_continuous=self.discretize_continuous,
                discretizer=self.discretizer, training_labels=self.training_labels)

        return self._cache.get(predict_fn, (int(num_features), int(num_samples)), build)

    def _names(self, lime, row):
        """lime's as_list names and printed values of the instance's interpretable features."""
        names = [str(n) for n in lime.feature_conditions(row[None])[0]]
        values = ["%.2f" % v for v in row]
        for j in self.categorical_features:
            value = int(row[j])
            shown = self.categorical_names[j][value] if j in self.categorical_names else value
            names[j] = "%s=%s" % (self.feature_names[j], shown)
            values[j] = "True"
        return names, values

    def explain_instance(self, data_row, predict_fn, labels=(1,), top_labels=None, num_features=10,
                         num_samples=5000, distance_metric="euclidean", model_regressor=None):
        if distance_metric != "euclidean":
            raise NotImplementedError(f"`distance_metric={distance_metric!r}`: only 'euclidean' (lime's default).")
        if model_regressor is not None:
            raise NotImplementedError("`model_regressor` is not supported: the surrogate is lime's Ridge(alpha=1).")
        row = np.asarray(data_row.to_numpy() if hasattr(data_row, "to_numpy") else data_row, np.float64).reshape(-1)
        lime = self._explainer(predict_fn, num_features, num_samples)
        out = lime(row[None], seed=next_seed(self.random_state))
        values = out.values.reshape(lime.n_features, -1)                          # [d, outputs]
        intercept = np.ravel(out.intercept)
        score, local_pred = np.ravel(out.score), np.ravel(out.local_pred)
        prediction = np.ravel(out.model_output)
        names, printed = self._names(lime, row)
        if self.mode == "classification":
            if lime.scalar_output:
                raise NotImplementedError("LIME does not currently support classifier models without probability "
                                          "scores (the model returns one value per row).")
            class_names = ([str(i) for i in range(len(prediction))] if self.class_names is None
                           else list(self.class_names))
            exp = Explanation("classification", class_names, names, printed)
            exp.predict_proba = prediction
            if top_labels:
                labels = list(np.argsort(prediction)[-top_labels:])
                exp.top_labels = labels[::-1]
        else:
            if values.shape[1] != 1:
                raise ValueError(f"Your model needs to output single-dimensional numpy arrays, not arrays of "
                                 f"{values.shape[1]} outputs.")
            exp = Explanation("regression", None, names, printed)
            exp.predicted_value = float(prediction[0])
            labels = [0]
        k = min(int(num_features), lime.n_features)
        for label in labels:
            w = values[:, label]
            chosen = np.flatnonzero(w)
            if self.feature_selection == "none" or len(chosen) > k:
                chosen = np.arange(lime.n_features) if self.feature_selection == "none" else chosen
            order = chosen[np.argsort(-np.abs(w[chosen]), kind="stable")]
            exp.intercept[int(label)] = float(intercept[label])
            exp.local_exp[int(label)] = [(int(j), float(w[j])) for j in order]
            exp.score, exp.local_pred = float(score[label]), np.array([local_pred[label]])
        if self.mode == "regression":
            exp.intercept[1] = exp.intercept[0]
            exp.local_exp[1] = list(exp.local_exp[0])
            exp.local_exp[0] = [(j, -1 * w) for j, w in exp.local_exp[1]]
        return exp
