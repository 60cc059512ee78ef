"""lime's ``Explanation`` object, as ``LimeTabularExplainer.explain_instance`` returns it."""

from __future__ import annotations

import html
import json

import numpy as np


class Explanation:
    """What lime's tabular ``explain_instance`` returns: ``local_exp`` {label: [(feature, weight), ...]}
    (selected features by decreasing |weight|), ``intercept`` {label: float}, ``score`` and
    ``local_pred`` (of the last label explained, as lime), ``predict_proba`` (classification) or
    ``predicted_value`` (regression), ``top_labels``, ``class_names``; ``as_list``, ``as_map``,
    ``available_labels``, ``as_pyplot_figure`` (matplotlib, imported when called), ``as_html``,
    ``save_to_file`` and ``show_in_notebook`` (a simple HTML table and bar chart, not lime's
    JavaScript widget)."""

    def __init__(self, mode, class_names, feature_names, feature_values):
        self.mode = mode
        self.local_exp, self.intercept = {}, {}
        self.score, self.local_pred = None, None
        self._names = list(feature_names)          # readable name of each interpretable feature
        self._values = list(feature_values)        # the instance's value of each, as lime prints it
        if mode == "classification":
            self.class_names = class_names
            self.top_labels = None
            self.predict_proba = None
        else:
            self.class_names = ["negative", "positive"]
            self.predicted_value = None
            self.min_value, self.max_value = None, None   # lime's min / max over the samples: not kept
            self.dummy_label = 1

    def available_labels(self):
        if self.mode != "classification":
            raise NotImplementedError("Not supported for regression explanations.")
        return list(self.top_labels if self.top_labels else self.local_exp.keys())

    def as_list(self, label=1, **kwargs):
        label = label if self.mode == "classification" else self.dummy_label
        return [(self._names[j], float(w)) for j, w in self.local_exp[label]]

    def as_map(self):
        return self.local_exp

    def as_pyplot_figure(self, label=1, **kwargs):
        import matplotlib.pyplot as plt

        exp = self.as_list(label=label, **kwargs)
        fig = plt.figure()
        vals = [x[1] for x in exp][::-1]
        names = [x[0] for x in exp][::-1]
        pos = np.arange(len(exp)) + 0.5
        plt.barh(pos, vals, align="center", color=["green" if v > 0 else "red" for v in vals])
        plt.yticks(pos, names)
        plt.title("Local explanation for class %s" % self.class_names[label] if self.mode == "classification"
                  else "Local explanation")
        return fig

    def as_html(self, labels=None, predict_proba=True, show_predicted_value=True, **kwargs):
        """A self-contained HTML page: the prediction, then per label a table of the features with a bar
        per weight."""
        if labels is None:
            labels = self.available_labels() if self.mode == "classification" else [self.dummy_label]
        parts = ["<html><head><meta charset='utf-8'><style>table{border-collapse:collapse}"
                 "td{padding:2px 8px}.pos{background:#4caf50}.neg{background:#f44336}</style></head><body>"]
        if self.mode == "classification" and predict_proba and self.predict_proba is not None:
            rows = "".join(f"<tr><td>{html.escape(str(c))}</td><td>{p:.4f}</td></tr>"
                           for c, p in zip(self.class_names, self.predict_proba))
            parts.append(f"<h3>Prediction probabilities</h3><table>{rows}</table>")
        elif self.mode == "regression" and show_predicted_value:
            parts.append(f"<h3>Predicted value</h3><p>{float(self.predicted_value):.4f}</p>")
        for label in labels:
            exp = self.as_list(label)
            scale = max([abs(w) for _, w in exp] + [1e-12])
            title = self.class_names[label] if self.mode == "classification" else "value"
            rows = "".join(
                f"<tr><td>{html.escape(name)}</td><td>{w:+.4f}</td><td><div class='{'pos' if w > 0 else 'neg'}' "
                f"style='width:{int(200 * abs(w) / scale)}px'>&nbsp;</div></td></tr>" for name, w in exp)
            parts.append(f"<h3>Explanation of {html.escape(str(title))}</h3><table>{rows}</table>")
        parts.append("<script type='application/json' id='lime-explanation'>"
                     + html.escape(json.dumps({str(k): v for k, v in self.as_map().items()}, default=float))
                     + "</script></body></html>")
        return "".join(parts)

    def save_to_file(self, file_path, labels=None, predict_proba=True, show_predicted_value=True, **kwargs):
        with open(file_path, "w", encoding="utf8") as f:
            f.write(self.as_html(labels, predict_proba, show_predicted_value, **kwargs))

    def show_in_notebook(self, labels=None, predict_proba=True, show_predicted_value=True, **kwargs):
        from IPython.display import HTML, display

        display(HTML(self.as_html(labels, predict_proba, show_predicted_value, **kwargs)))
