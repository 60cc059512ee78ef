"""Plots of explanations with matplotlib (an optional dependency: ``pip install 'tfexplain[plots]'``).

- :func:`bar`: global importance, mean |value| per feature with its standard error.
- :func:`beeswarm`: one dot per instance and feature, at its value, colored by the feature's value.
- :func:`waterfall`: one prediction, from the base value through each feature's value to f(x).
- :func:`lime_bars`: LIME-style horizontal bars of one row's weights, green positive, red negative.

Every function draws into ``ax`` (a matplotlib Axes) when given, else into a new figure; returns the
matplotlib Figure; calls ``plt.show()`` only with ``show=True``. Features are ordered by importance,
the most important on top.
"""

from __future__ import annotations

import numpy as np

RED, BLUE = "#ff0051", "#008bfb"          # shap's colors: positive, negative
GREEN, LIME_RED = "green", "red"          # lime's


def _label(e, j: int) -> str:
    """``name = value`` of feature j in the first row of ``e`` (just the name when it has no value)."""
    cell = e.cell(0, j)
    if cell == "":
        return str(e.feature_names[j])
    return f"{e.feature_names[j]} = {cell:.4g}" if isinstance(cell, float) else f"{e.feature_names[j]} = {cell}"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("tfexplain.plots needs matplotlib, which is not installed: "
                          "pip install 'tfexplain[plots]' (or pip install matplotlib)") from None
    return plt


def _axes(ax, height):
    plt = _pyplot()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(7.5, height))
    return fig, ax


def _finish(fig, show):
    fig.tight_layout()
    if show:
        _pyplot().show()
    return fig


def _column(a, output):
    a = np.asarray(a)
    return a if a.ndim == 2 else a[:, :, output]


def _value_label(exp) -> str:
    return "SHAP value" if exp.method == "KernelShap" else f"{exp.method} weight"


def bar(exp, max_display: int = 10, *, output: int = 0, use: str = "values", ax=None, show: bool = False):
    """Global importance: a horizontal bar per feature, mean |value| over the instances of ``exp``
    with its standard error, most important on top.

    exp: an Explanation of several instances (its rows pooled: ``global_importance(by_class=False)``),
    or a ready :class:`~tfexplain.GlobalImportance` (e.g. ``exp.global_importance()`` per class, or
    ``tfexplain.Sage``'s values, drawn signed). max_display: most bars; with more features the last
    bar sums the importance of the rest ("Sum of N other features"). output: index into values' last
    axis (a column of the importance) for several outputs. use: "values" or "attributions" (see
    ``Explanation.global_importance``). ax: Axes to draw into. show: call ``plt.show()``.
    Returns the Figure."""
    from .explanation import GlobalImportance
    g = exp if isinstance(exp, GlobalImportance) else exp.global_importance(use=use, by_class=False)
    imp, se = (g.importance, g.stderr) if g.importance.ndim == 1 else (g.importance[:, output], g.stderr[:, output])
    order = g.order(output)
    names = [g.feature_names[j] for j in order]
    vals, errs = imp[order], se[order]
    if len(order) > max_display:
        rest = len(order) - (max_display - 1)
        names = names[:max_display - 1] + [f"Sum of {rest} other features"]
        vals = np.append(vals[:max_display - 1], vals[max_display - 1:].sum())
        errs = np.append(errs[:max_display - 1], np.sqrt((errs[max_display - 1:] ** 2).sum()))
    fig, ax = _axes(ax, 0.4 * len(names) + 1.2)
    y = np.arange(len(names))[::-1]                      # first (largest) on top
    ax.barh(y, vals, xerr=errs, color=RED, error_kw={"ecolor": "#555555", "capsize": 2, "lw": 1})
    for yi, v, err in zip(y, vals, errs):
        ax.text(max(v, 0.0) + err, yi, f"  {v:+.3g}", va="center", ha="left", fontsize=9, color=RED)
    ax.set_yticks(y, names)
    if g.method == "SAGE":
        ax.set_xlabel(f"SAGE value: loss reduction ({g.output_names[0]})  (± standard error over {g.n} samples)")
    else:
        ax.set_xlabel(f"mean(|{_value_label(g)}|)  (± standard error over {g.n} instances)")
    ax.set_xlim(min(0.0, (vals - errs).min() * 1.25), (vals + errs).max() * 1.25 + 1e-12)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _finish(fig, show)


def _swarm_offsets(x, width=0.4, bins=60):
    """Vertical offsets spreading points of similar x (a simple beeswarm)."""
    x = np.asarray(x, np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return np.zeros(len(x))
    idx = np.minimum(((x - x.min()) / np.ptp(x) * bins).astype(int), bins - 1)
    offsets = np.zeros(len(x))
    counts = np.bincount(idx, minlength=bins)
    seen = np.zeros(bins, int)
    for i in np.argsort(x, kind="stable"):
        b = idx[i]
        k = seen[b]
        seen[b] += 1
        offsets[i] = (k + 1) // 2 * (1 if k % 2 else -1)
    return offsets * (width / max(1, counts.max() // 2 + 1))


def beeswarm(exp, max_display: int = 10, *, output: int = 0, ax=None, show: bool = False, color_bar: bool = True):
    """Summary plot: one dot per instance and feature at its value (x), colored by the feature's value
    (blue low, red high, per feature between its 5th and 95th percentile), features ordered by mean
    |value|, most important on top.

    exp: an Explanation of several instances. max_display: most features shown (the most important).
    output: index into values' last axis for several explained outputs. ax: Axes to draw into.
    show: call ``plt.show()``. color_bar: draw the feature-value color bar. Returns the Figure."""
    plt = _pyplot()
    from matplotlib.colors import LinearSegmentedColormap
    cmap = LinearSegmentedColormap.from_list("tfexplain", [BLUE, "#7f4fc3", RED])
    v = _column(exp.values, output)
    order = np.argsort(-np.abs(v).mean(0), kind="stable")[:max_display]
    fig, ax = _axes(ax, 0.45 * len(order) + 1.5)
    n_show = len(order)
    for rank, j in enumerate(order):
        y = n_show - 1 - rank
        data = exp.feature_data()
        numeric = data is not None and exp.tokens is None
        col = np.asarray(data[:, j], np.float64) if numeric else np.full(len(exp), np.nan)
        if not np.isfinite(col).any():   # no number per feature (images, text): one neutral colour
            col = np.zeros(len(exp))
        lo, hi = np.nanpercentile(col, [5, 95])
        if hi <= lo:
            lo, hi = col.min(), col.max()
        c = np.clip((col - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(col), 0.5)
        ax.scatter(v[:, j], y + _swarm_offsets(v[:, j]), c=c, cmap=cmap, vmin=0, vmax=1, s=16, alpha=0.85,
                   linewidths=0, zorder=3, label=exp.feature_names[j])
    ax.axvline(0, color="#999999", lw=1, zorder=1)
    ax.set_yticks(np.arange(n_show)[::-1], [exp.feature_names[j] for j in order])
    ax.set_ylim(-0.7, n_show - 0.3)
    ax.set_xlabel(f"{_value_label(exp)} (impact on model output)")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if color_bar:
        sm = plt.cm.ScalarMappable(cmap=cmap)
        sm.set_array([0, 1])
        cb = fig.colorbar(sm, ax=ax, ticks=[0, 1], aspect=40, pad=0.02)
        cb.set_ticklabels(["Low", "High"])
        cb.set_label("Feature value")
        cb.outline.set_visible(False)
    return _finish(fig, show)


def _one_row(exp, row):
    if len(exp) != 1 and row is None:
        raise ValueError(f"this plot shows one instance: pass exp[i] (the explanation has {len(exp)}) or row=.")
    return exp[0 if row is None else row]


def waterfall(exp, max_display: int = 10, *, row: int | None = None, output: int = 0, ax=None, show: bool = False):
    """One prediction as a waterfall: from the base value (bottom) each feature's value moves the
    output (red up, blue down) to f(x) (top); the largest |value| is on top, the smallest
    are summed into "N other features" at the bottom.

    exp: an Explanation of one instance (``exp[0]``), or several with ``row=``. max_display: most bars.
    For KernelShap the bars are SHAP values and end at f(x) = base + sum(values) (efficiency); for Lime
    they are the contributions (weight x standardized feature) from the intercept to the surrogate's
    local prediction. output: index into values' last axis for several explained outputs.
    ax: Axes to draw into. show: call ``plt.show()``. Returns the Figure."""
    e = _one_row(exp, row)
    a = _column(e.attributions, output)[0].astype(np.float64)
    base = float(np.ravel(e.base_values[0])[min(output, np.size(e.base_values[0]) - 1)])
    end = base + a.sum()
    order = np.argsort(-np.abs(a), kind="stable")
    labels = [_label(e, j) for j in order]
    steps = list(a[order])
    if len(order) > max_display:
        rest = len(order) - (max_display - 1)
        labels = labels[:max_display - 1] + [f"{rest} other features"]
        steps = steps[:max_display - 1] + [float(np.sum(steps[max_display - 1:]))]
    fig, ax = _axes(ax, 0.45 * len(steps) + 1.5)
    # bottom-up: the smallest (or the rest) first, starting from the base value
    left = base
    ys = np.arange(len(steps))[::-1]   # labels[0] (largest) at the top
    lefts = np.zeros(len(steps))
    for k in range(len(steps) - 1, -1, -1):
        lefts[k] = left
        left += steps[k]
    colors = [RED if s >= 0 else BLUE for s in steps]
    ax.barh(ys, steps, left=lefts, color=colors, height=0.6, zorder=3)
    span = max(abs(end - base), np.abs(steps).max(), 1e-12)
    for y, s, lft in zip(ys, steps, lefts):
        ax.text(max(lft, lft + s) + 0.01 * span, y, f"{s:+.3g}", va="center", ha="left", fontsize=9,
                color=RED if s >= 0 else BLUE)
    ax.axvline(base, color="#999999", lw=1, ls="--", zorder=1)
    ax.axvline(end, color="#333333", lw=1, ls="--", zorder=1)
    top = len(steps) - 0.4
    what = "E[f(X)]" if e.method == "KernelShap" else "intercept"
    fx = "f(x)" if e.method == "KernelShap" else "local prediction"
    ax.text(base, -0.9, f"{what} = {base:.4g}", ha="center", va="top", fontsize=9)
    ax.text(end, top, f"{fx} = {end:.4g}", ha="center", va="bottom", fontsize=9)
    ax.set_ylim(-1.4, len(steps))
    ax.set_yticks(ys, labels)
    lo, hi = min(lefts.min(), (lefts + steps).min()), max(lefts.max(), (lefts + steps).max())
    ax.set_xlim(lo - 0.08 * span, hi + 0.2 * span)
    ax.set_xlabel(_value_label(exp) if e.method == "KernelShap" else "Lime contribution")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _finish(fig, show)


def lime_bars(exp, max_display: int = 10, *, row: int | None = None, output: int = 0, ax=None, show: bool = False):
    """LIME-style explanation of one instance: a horizontal bar per feature with a non-zero weight
    (lime's ``as_pyplot_figure``), green positive, red negative, largest |weight| on top, labelled
    "feature = value".

    exp: an Explanation of one instance (``exp[0]``), or several with ``row=``. max_display: most bars.
    output: index into values' last axis for several explained outputs. ax: Axes to draw into.
    show: call ``plt.show()``. Returns the Figure."""
    e = _one_row(exp, row)
    w = _column(e.values, output)[0].astype(np.float64)
    order = [j for j in np.argsort(-np.abs(w), kind="stable") if w[j] != 0][:max_display]
    fig, ax = _axes(ax, 0.4 * max(1, len(order)) + 1.2)
    ys = np.arange(len(order))[::-1]
    vals = w[order]
    ax.barh(ys, vals, color=[GREEN if v > 0 else LIME_RED for v in vals], height=0.6)
    ax.set_yticks(ys, [_label(e, j) for j in order])
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_title(f"Local explanation for {e.output_name(0, output)}")
    ax.set_xlabel(_value_label(exp))
    return _finish(fig, show)
