"""Images: tfexplain.maskers.Image with KernelShap (segments as players), checked against exact
Shapley values by enumeration, closed forms, a CNN on scikit-learn's digits, and an export round trip."""

import math
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain.maskers import Image, gaussian_blur

H, W = 4, 4
GRID = (2, 4)          # 8 segments of 2 x 1 pixels: 2^8 coalitions
P = GRID[0] * GRID[1]
RNG = np.random.default_rng(0)
A, B, C = (RNG.normal(size=H * W) for _ in range(3))


def _np_model(x):
    """float64 reference of the TF model below: x [..., H, W, 1] -> [..., 2]."""
    f = x.reshape(*x.shape[:-3], H * W)
    return np.stack([np.tanh(f @ A) + (f @ B) * (f @ C), 1.0 / (1.0 + np.exp(-(f @ C)))], -1)


class _Model(tf.Module):
    def __init__(self):
        self.a, self.b, self.c = (tf.constant(v, tf.float32) for v in (A, B, C))

    @tf.function(input_signature=[tf.TensorSpec([None, H, W, 1], tf.float32)])
    def __call__(self, x):
        f = tf.reshape(x, [-1, H * W])
        dot = lambda v: tf.linalg.matvec(f, v)  # noqa: E731
        return tf.stack([tf.tanh(dot(self.a)) + dot(self.b) * dot(self.c), tf.sigmoid(dot(self.c))], 1)


MODEL = _Model()
SEGMENTS = ((np.arange(H)[:, None] * GRID[0] // H) * GRID[1] + np.arange(W)[None, :] * GRID[1] // W)


def _exact_shapley(x, fills):
    """Shapley values of one image x [H, W, 1] by enumerating all 2^P coalitions: hidden segments take
    each of ``fills`` [k, H, W, 1] in turn, the coalition's value is the mean output over them."""
    masks = np.array([[(s >> j) & 1 for j in range(P)] for s in range(2**P)], bool)      # [2^P, P]
    on = masks[:, SEGMENTS][..., None]                                                    # [2^P, H, W, 1]
    rows = np.where(on[:, None], x[None, None], fills[None])                              # [2^P, k, H, W, 1]
    v = _np_model(rows.astype(np.float64)).mean(1)                                        # [2^P, 2]
    phi = np.zeros((P, v.shape[1]))
    for s in range(2**P):
        size = bin(s).count("1")
        for j in range(P):
            if not (s >> j) & 1:
                w = math.factorial(size) * math.factorial(P - size - 1) / math.factorial(P)
                phi[j] += w * (v[s | 1 << j] - v[s])
    return phi, v[0]


X = RNG.uniform(0, 1, size=(3, H, W, 1)).astype(np.float32)
BG = RNG.uniform(0, 1, size=(2, H, W, 1)).astype(np.float32)


@pytest.mark.parametrize("fill", [0.25, "mean", "background"])
def test_exact_shapley_by_enumeration(fill):
    masker = Image(GRID, fill=BG if fill == "background" else fill)
    explainer = tfexplain.KernelShap(MODEL, masker, n_samples=2**P - 2, n_bootstrap=0)
    assert explainer.exact and explainer.n_features == P
    exp = explainer(X, seed=3)
    assert exp.values.shape == (3, P, 2) and exp.segments.shape == (3, H, W)
    np.testing.assert_array_equal(exp.segments, np.broadcast_to(SEGMENTS, (3, H, W)))
    for i, x in enumerate(X):
        if fill == "background":
            fills = BG
        elif fill == "mean":
            fills = np.broadcast_to(x.mean(axis=(0, 1), keepdims=True), x.shape)[None]
        else:
            fills = np.full((1, H, W, 1), fill, np.float32)
        phi, v0 = _exact_shapley(x, fills)
        np.testing.assert_allclose(exp.values[i], phi, atol=2e-4, rtol=1e-4)
        np.testing.assert_allclose(exp.base_values[i], v0, atol=1e-5, rtol=1e-5)
    # efficiency, and each pixel carries its segment's value
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=1e-4)
    np.testing.assert_array_equal(exp.heatmap[1, 3, 2], exp.values[1, SEGMENTS[3, 2]])
    assert exp.heatmap.shape == (3, H, W, 2)
    assert exp.data.shape == (3, H, W, 1) and exp.feature_names[0] == "segment 0"


@tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
def _patch_mean(x):
    return tf.reduce_mean(x[:, 4:, :4, :], axis=[1, 2, 3])        # one grid cell of a 2 x 2 grid


@pytest.mark.parametrize("fill", [0.0, "blur"])
def test_one_patch_gets_the_whole_difference(fill):
    x = RNG.uniform(0, 1, size=(2, 8, 8, 3)).astype(np.float32)
    exp = tfexplain.KernelShap(_patch_mean, Image((2, 2), fill=fill, shape=(8, 8, 3)), n_bootstrap=0)(x)
    if fill == "blur":
        fx0 = _patch_mean(gaussian_blur(tf.constant(x), 1.0)).numpy()
    else:
        fx0 = np.zeros(2)
    np.testing.assert_allclose(exp.base_values, fx0, atol=1e-6)
    np.testing.assert_allclose(exp.values[:, 2], exp.model_output - fx0, atol=1e-5)   # cell (1, 0) is id 2
    np.testing.assert_allclose(np.delete(exp.values, 2, axis=1), 0.0, atol=1e-5)


def test_blur_matches_scipy_inside_and_keeps_constants():
    from scipy.ndimage import gaussian_filter
    img = RNG.uniform(size=(1, 12, 12, 2)).astype(np.float32)
    ours = gaussian_blur(tf.constant(img), 1.0).numpy()
    ref = np.stack([gaussian_filter(img[0, :, :, c].astype(np.float64), 1.0, truncate=3.0) for c in range(2)], -1)
    np.testing.assert_allclose(ours[0, 3:-3, 3:-3], ref[3:-3, 3:-3], atol=1e-5)
    flat = gaussian_blur(tf.fill([1, 5, 7, 1], 0.7), 1.5).numpy()
    np.testing.assert_allclose(flat, 0.7, atol=1e-6)                 # borders keep their level


def test_user_maps_unused_ids_and_row_offset():
    """Per-image maps [n, H, W]: image i of a call uses map row_offset + i; ids without pixels are
    null players (exactly 0); so are segments equal to their fill."""
    maps = np.stack([SEGMENTS % 3, (SEGMENTS % 2) * 4]).astype(np.int64)   # ids {0,1,2} and {0,4}
    masker = Image(maps, fill=0.0, n_segments=6)
    explainer = tfexplain.KernelShap(MODEL, masker, n_bootstrap=0)
    x = X[:2].copy()
    x[1][maps[1] == 0] = 0.0                                            # segment 0 of image 1 equals the fill
    exp = explainer(x)
    assert exp.values.shape == (2, 6, 2)
    np.testing.assert_array_equal(exp.values[0, 3:], 0.0)
    np.testing.assert_array_equal(exp.values[1, [0, 1, 2, 3, 5]], 0.0)
    np.testing.assert_allclose(exp.values[1, 4], exp.model_output[1] - exp.base_values[1], atol=1e-5)
    np.testing.assert_array_equal(exp.segments, maps)
    back = tfexplain.Explanation.from_dict(exp.to_dict())
    assert back.segments.dtype == np.int32
    np.testing.assert_array_equal(back.heatmap, exp.heatmap)
    second = explainer(x[1:], row_offset=1)                            # the second map, by row id
    np.testing.assert_allclose(second.values[0], exp.values[1], atol=1e-6)
    with pytest.raises(ValueError, match="segmentation"):
        explainer(x, row_offset=1)


def test_boundary_errors_name_the_argument():
    with pytest.raises(TypeError, match="segmentation"):
        Image(np.zeros((H, W), np.float32))
    with pytest.raises(ValueError, match="segmentation"):
        Image(np.zeros((2, 2, H, W), np.int32))
    with pytest.raises(ValueError, match="segmentation"):
        tfexplain.KernelShap(MODEL, Image(np.zeros((3, 3), np.int32)))          # 3 x 3 map, 4 x 4 images
    with pytest.raises(ValueError, match="fill"):
        Image((2, 2), fill=np.zeros((2, 3, 3, 1), np.float32), shape=(H, W, 1))
    with pytest.raises(ValueError, match="fill"):
        Image((2, 2), fill="noise")
    with pytest.raises(ValueError, match="n_segments"):
        Image(np.full((H, W), 5, np.int32), n_segments=3)
    with pytest.raises(ValueError, match="shape"):
        tfexplain.KernelShap(lambda t: t, Image((2, 2)))                       # no shape anywhere
    explainer = EXPLAINER
    with pytest.raises(ValueError, match="`x`"):
        explainer(np.zeros((2, H, W), np.float32))                             # rank 3 of the wrong shape
    with pytest.raises(ValueError, match="`x`"):
        explainer(np.zeros((2, H, W + 1, 1), np.float32))
    with pytest.raises(ValueError, match="`x`"):
        explainer(np.full((1, H, W, 1), np.nan, np.float32))
    assert explainer.tracing_count <= 1                                        # nothing traced for those


EXPLAINER = tfexplain.KernelShap(MODEL, Image(GRID, fill="mean"), n_samples=64, n_bootstrap=8)


def test_no_retracing_across_batch_sizes_and_batch_invariance():
    explainer = EXPLAINER
    one = explainer(X[:1], seed=5)
    three = explainer(X, seed=5)
    explainer(X[:2], seed=1)
    assert explainer.tracing_count == 1
    np.testing.assert_allclose(three.values[:1], one.values, atol=1e-5)
    assert three.stderr is not None and np.all(np.isfinite(three.stderr))


def test_export_round_trip():
    explainer = EXPLAINER
    with tempfile.TemporaryDirectory() as tmp:
        path = tfexplain.export(explainer, os.path.join(tmp, "img"))
        loaded = tf.saved_model.load(path)
        out = loaded.signatures["explain"](x=tf.constant(X), seed=tf.constant(7, tf.int64))
        ref = explainer(X, seed=7)
        np.testing.assert_allclose(out["values"].numpy(), ref.values, atol=1e-5)
        np.testing.assert_allclose(out["base_values"].numpy(), ref.base_values, atol=1e-6)
        np.testing.assert_array_equal(out["segments"].numpy(), ref.segments)
        served = loaded.signatures["serving_default"](x=tf.constant(X))["output_0"].numpy()
        np.testing.assert_allclose(served, MODEL(tf.constant(X)).numpy(), atol=1e-6)
        empty = loaded.signatures["explain"](x=tf.zeros([0, H, W, 1]), seed=tf.constant(0, tf.int64))
        assert empty["values"].shape == (0, P, 2) and empty["segments"].shape == (0, H, W)


@pytest.fixture(scope="module")
def digits_cnn():
    from sklearn.datasets import load_digits
    import keras
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    y = data.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=8, batch_size=64, verbose=0)
    accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)[1]
    return model, x[1500:], accuracy


def test_digits_cnn_efficiency_and_fidelity(digits_cnn):
    """A small CNN on load_digits (8 x 8) explained with a 4 x 4 grid (shape from the model): the
    values add up to f(x) - E f(all masked); hiding the 4 most positive segments lowers the predicted
    class's probability more than hiding the 4 most negative ones."""
    model, x, accuracy = digits_cnn
    assert accuracy > 0.8
    x = x[:6]
    explainer = tfexplain.KernelShap(model, Image((4, 4), fill=0.0), target="predicted", n_samples=512,
                                     n_bootstrap=0)
    exp = explainer(x, seed=0)
    assert exp.values.shape == (6, 16) and exp.heatmap.shape == (6, 8, 8)
    probs = model(x).numpy()
    cls = probs.argmax(1)
    np.testing.assert_array_equal(exp.target, cls)
    empty = model(np.zeros((1, 8, 8, 1), np.float32)).numpy()[0]
    np.testing.assert_allclose(exp.base_values, empty[cls], atol=1e-6)
    np.testing.assert_allclose(exp.values.sum(1), probs[np.arange(6), cls] - empty[cls], atol=1e-4)
    order = np.argsort(-exp.values, axis=1)

    def hidden(keep_out):
        masked = x.copy()
        for i in range(len(x)):
            masked[i][np.isin(exp.segments[i], keep_out[i])] = 0.0
        return model(masked).numpy()[np.arange(len(x)), cls]

    assert hidden(order[:, :4]).mean() < hidden(order[:, -4:]).mean() - 0.1


def test_slic_segments_follow_colour_edges_and_explain():
    """segmentation="slic": superpixels computed in-graph stay on one side of a colour edge that cuts
    the starting grid's cells; the explanation is efficient over them."""
    from tfexplain.maskers import slic
    img = np.zeros((2, 12, 12, 3), np.float32)
    img[:, :, 6:, 0] = 1.0                                     # edge inside the middle of 3 grid columns
    img[1, 9:, :, 2] = 1.0
    img += RNG.uniform(0, 0.05, size=img.shape).astype(np.float32)
    ids = slic(tf.constant(img), 9, 10, 1.0).numpy()
    assert ids.shape == (2, 12, 12) and ids.min() >= 0 and ids.max() < 9
    for i in range(2):
        for s in np.unique(ids[i]):
            side = img[i][ids[i] == s][:, 0] > 0.5
            assert side.all() or not side.any()
    model = tf.function(lambda t: tf.reduce_mean(t[..., 0] * t[..., 2], axis=[1, 2]),
                        input_signature=[tf.TensorSpec([None, 12, 12, 3], tf.float32)])
    exp = tfexplain.KernelShap(model, Image("slic", n_segments=9, fill=0.0), n_bootstrap=0)(img)
    np.testing.assert_array_equal(exp.segments, ids)
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=1e-5)


def test_explain_dataset_of_images_equals_one_call():
    """explain_dataset takes whatever the masker takes: images [n, H, W, C] as an array, a dataset of
    images or of batches, and gives the values and segments of one call, bit for bit."""
    images = RNG.normal(size=(7, H, W, 1)).astype(np.float32)
    explainer = tfexplain.KernelShap(MODEL, Image(GRID, fill=0.0), n_samples=40)
    whole = explainer(images, seed=3)
    for data in (images, tf.data.Dataset.from_tensor_slices(images), tf.data.Dataset.from_tensor_slices(images).batch(3)):
        got = explainer.explain_dataset(data, seed=3, batch_size=2, verbose=0)
        np.testing.assert_array_equal(got.values, whole.values)
        np.testing.assert_array_equal(got.stderr, whole.stderr)
        np.testing.assert_array_equal(got.segments, whole.segments)
    with pytest.raises(ValueError, match="data"):
        explainer.explain_dataset(images[:, :, :, 0], seed=3, verbose=0)
    with tempfile.TemporaryDirectory() as folder:   # shards keep the segments (exp.heatmap works)
        shards = explainer.explain_dataset(images, seed=3, batch_size=2, shard_size=4, verbose=0, out=folder)
        again = explainer.explain_dataset(images, seed=3, batch_size=2, shard_size=4, verbose=0, out=folder).load()
        for got in (shards.load(), again):
            np.testing.assert_array_equal(got.values, whole.values)
            np.testing.assert_array_equal(got.segments, whole.segments)
            np.testing.assert_array_equal(got.heatmap, whole.heatmap)


def test_tables_frames_and_plots_of_image_explanations():
    """A segment has no single number: tables show its name, frames have no data column, plots draw."""
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tfexplain import plots
    images = RNG.normal(size=(3, H, W, 1)).astype(np.float32)
    exp = tfexplain.KernelShap(MODEL, Image(GRID, fill=0.0), n_samples=40, target=0)(images, seed=0)
    assert exp.feature_data() is None and exp.cell(0, 0) == ""
    assert "segment" in exp.table() and len(exp.top_features(k=3)) == 3
    pd = pytest.importorskip("pandas")
    frame = exp.to_pandas()
    assert len(frame) == 3 * P and "data" not in frame and isinstance(frame, pd.DataFrame)
    for fig in (plots.bar(exp), plots.beeswarm(exp), plots.waterfall(exp, row=0)):
        plt.close(fig)


def test_slic_compactness_and_feature_scale_are_checked():
    with pytest.raises(ValueError, match="compactness"):
        Image("slic", n_segments=4, compactness=-1.0)
    explainer = tfexplain.KernelShap(MODEL, Image(GRID, fill=0.0), n_samples=40)
    with pytest.raises(ValueError, match="feature_scale"):
        explainer.feature_scale
