"""Plots render with the Agg backend and show what they claim: bars, labels, order, colors, values."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import tfexplain  # noqa: E402
from tfexplain import plots  # noqa: E402
from conftest import mlp_numpy, mlp_tf, mlp_weights  # noqa: E402

NAMES = ["age", "bmi", "bp", "s1", "s2", "s3"]


@pytest.fixture(scope="module")
def setting():
    params = mlp_weights(6, outputs=2, seed=11)
    data = np.random.default_rng(5).normal(size=(60, 6)).astype(np.float32)
    ks = tfexplain.KernelShap(mlp_tf(params), data[:8], n_samples=62, target=1, feature_names=NAMES)  # exact
    exp = ks(data[20:44], seed=0)
    lime = tfexplain.Lime(mlp_tf(params), data, n_samples=200, num_features=4, target=1, feature_names=NAMES)
    return params, data, exp, lime(data[20:22], seed=0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _bars(ax):
    return [p for p in ax.patches if p.get_height() > 0]


def _labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def _top_down(ax, values):
    """values sorted by their bars' y (top first)."""
    ys = [t.get_position()[1] for t in ax.get_yticklabels()]
    return [v for _, v in sorted(zip(ys, values), key=lambda p: -p[0])]


def test_bar_is_mean_abs_sorted_largest_on_top(setting):
    _, _, exp, _ = setting
    fig = plots.bar(exp, max_display=10)
    ax = fig.axes[0]
    bars = _bars(ax)
    assert len(bars) == 6
    imp = np.abs(exp.values).mean(0)
    order = np.argsort(-imp)
    top_first = sorted(bars, key=lambda b: -b.get_y())
    np.testing.assert_allclose([b.get_width() for b in top_first], imp[order], rtol=1e-5)
    label_by_y = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    assert [label_by_y[round(b.get_y() + b.get_height() / 2)] for b in top_first] == [NAMES[j] for j in order]
    assert "mean(|SHAP value|)" in ax.get_xlabel()


def test_bar_sums_the_rest_beyond_max_display(setting):
    _, _, exp, _ = setting
    fig, ax = plt.subplots()
    assert plots.bar(exp, max_display=4, ax=ax) is fig
    bars = sorted(_bars(ax), key=lambda b: -b.get_y())
    assert len(bars) == 4
    imp = np.sort(np.abs(exp.values).mean(0))[::-1]
    assert bars[-1].get_width() == pytest.approx(imp[3:].sum(), rel=1e-5)
    assert _top_down(ax, _labels(ax))[-1] == "Sum of 3 other features"


def test_beeswarm_dots_positions_and_colors(setting):
    _, _, exp, _ = setting
    fig = plots.beeswarm(exp, max_display=3)
    ax = fig.axes[0]
    assert len(fig.axes) == 2                                  # plot and color bar
    coll = ax.collections
    assert len(coll) == 3 and all(len(c.get_offsets()) == len(exp) for c in coll)
    order = np.argsort(-np.abs(exp.values).mean(0))[:3]
    assert _top_down(ax, _labels(ax)) == [NAMES[j] for j in order]   # most important on top
    for c, j in zip(coll, order):
        assert c.get_label() == NAMES[j]
        np.testing.assert_allclose(c.get_offsets()[:, 0], exp.values[:, j], rtol=1e-6)
        # colored by the feature's value: the highest value is the reddest dot
        arr = np.asarray(c.get_array())
        assert np.argmax(arr) == np.argmax(exp.data[:, j]) or arr.max() == 1.0
        assert np.corrcoef(arr, exp.data[:, j])[0, 1] > 0.9
    ys = [c.get_offsets()[:, 1].mean() for c in coll]
    assert ys[0] > ys[1] > ys[2]


def test_waterfall_runs_from_base_to_model_output(setting):
    params, data, exp, _ = setting
    one = exp[3]
    fig = plots.waterfall(one, max_display=4)
    ax = fig.axes[0]
    bars = sorted(_bars(ax), key=lambda b: -b.get_y())        # top first
    assert len(bars) == 4
    fx = float(mlp_numpy(params, data[23:24])[0, 1])
    assert one.model_output[0] == pytest.approx(fx, rel=1e-5)
    top, start = bars[0], bars[-1]
    v = one.values[0]
    order = np.argsort(-np.abs(v))
    assert top.get_width() == pytest.approx(v[order[0]], rel=1e-5)   # largest on top ...
    assert top.get_x() + top.get_width() == pytest.approx(fx, abs=1e-5)   # ... where the steps reach f(x)
    assert start.get_x() == pytest.approx(one.base_values[0], abs=1e-6)
    assert start.get_width() == pytest.approx(v[order[3:]].sum(), abs=1e-5)
    for b in bars:
        assert to_hex(b.get_facecolor()) == (plots.RED if b.get_width() >= 0 else plots.BLUE)
    texts = [t.get_text() for t in ax.texts]
    assert f"f(x) = {fx:.4g}" in texts and f"E[f(X)] = {one.base_values[0]:.4g}" in texts
    assert _top_down(ax, _labels(ax))[0] == f"{NAMES[order[0]]} = {one.data[0, order[0]]:.4g}"
    with pytest.raises(ValueError, match="one instance"):
        plots.waterfall(exp)
    assert len(_bars(plots.waterfall(exp, row=3).axes[0])) == 6


def test_lime_bars_green_red_by_sign(setting):
    _, _, _, lexp = setting
    fig = plots.lime_bars(lexp[1])
    ax = fig.axes[0]
    bars = sorted(_bars(ax), key=lambda b: -b.get_y())
    w = lexp.values[1]
    nz = np.flatnonzero(w)
    assert len(bars) == len(nz) == 4                           # the 4 selected features
    order = nz[np.argsort(-np.abs(w[nz]))]
    np.testing.assert_allclose([b.get_width() for b in bars], w[order], rtol=1e-6)
    assert [to_hex(b.get_facecolor()) for b in bars] == [to_hex("green") if w[j] > 0 else to_hex("red") for j in order]
    assert _top_down(ax, _labels(ax)) == [f"{NAMES[j]} = {lexp.data[1, j]:.4g}" for j in order]
    assert ax.get_title() == "Local explanation for output 1"


def test_missing_matplotlib_says_how_to_install(setting, monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"tfexplain\[plots\]"):
        plots.bar(setting[2])
