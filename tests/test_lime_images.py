"""Lime for images: tfexplain.Lime(model, masker=tfexplain.maskers.Image(...)) checked against the
lime package's LimeImageExplainer (in expectation over its sampling, and exactly on the same samples
through lime's own regression), a model reading one patch, the cosine kernel against numpy, per-row
streams, one trace for any batch size and an export round trip."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import kernels
from tfexplain.maskers import Image
from tfexplain.samplers import BinarySampler, Sample

H, W, CH = 4, 4, 3
GRID = (2, 4)                      # 8 segments of 2 x 1 pixels
P = GRID[0] * GRID[1]
SEGMENTS = ((np.arange(H)[:, None] * GRID[0] // H) * GRID[1] + np.arange(W)[None, :] * GRID[1] // W)
RNG = np.random.default_rng(7)
A, B, C = (RNG.normal(size=H * W * CH) / 4 for _ in range(3))


def _np_model(x):
    """float64 reference of the TF model below: x [..., H, W, C] -> [..., 2] (two 'probabilities')."""
    f = np.asarray(x, np.float64).reshape(*np.shape(x)[:-3], H * W * CH)
    a, b = np.tanh(f @ A) + (f @ B) * (f @ C), f @ C
    return np.stack([1.0 / (1.0 + np.exp(-a)), 1.0 / (1.0 + np.exp(-b))], -1)


@tf.function(input_signature=[tf.TensorSpec([None, H, W, CH], tf.float32)])
def MODEL(x):
    f = tf.reshape(x, [-1, H * W * CH])
    dot = lambda v: tf.linalg.matvec(f, tf.constant(v, tf.float32))  # noqa: E731
    return tf.sigmoid(tf.stack([tf.tanh(dot(A)) + dot(B) * dot(C), dot(C)], 1))


X = RNG.uniform(0, 1, size=(3, H, W, CH)).astype(np.float32)
LIME = tfexplain.Lime(MODEL, masker=Image(GRID, fill=0.0), n_samples=1000, target=0)


def _lime_reference(image, n_samples, runs, label=0):
    """lime's LimeImageExplainer on our grid (hide_color=0): coefficients [runs, P] and intercepts."""
    lime_image = pytest.importorskip("lime.lime_image")
    coefs, intercepts = [], []
    for r in range(runs):
        explainer = lime_image.LimeImageExplainer(random_state=r)
        exp = explainer.explain_instance(image.astype(np.float64), _np_model, labels=(label,), hide_color=0,
                                         top_labels=None, num_samples=n_samples, batch_size=n_samples,
                                         segmentation_fn=lambda img: SEGMENTS.copy(), random_seed=0)
        local = dict(exp.local_exp[label])
        coefs.append([local[j] for j in range(P)])
        intercepts.append(exp.intercept[label])
    return np.array(coefs), np.array(intercepts)


def test_agrees_with_lime_image_in_expectation():
    """Same model, image, grid and hide colour, 16 independent runs of 2000 samples each: the mean
    coefficients and intercepts agree with lime's within 4.5 standard errors of the difference (from
    the runs' pooled spread), a band much narrower than the coefficients' range; the runs' spread
    matches lime's; another kernel width or lime_text's sampling scheme falls outside the band."""
    runs, m = 16, 2000
    image = X[0]
    theirs, their_icpt = _lime_reference(image, m, runs)
    explainer = tfexplain.Lime(MODEL, masker=Image(GRID, fill=0.0), n_samples=m, target=0)
    batch = np.repeat(image[None], runs, 0)                          # 16 rows: 16 independent streams
    ours = explainer(batch, seed=11)
    sd_ours, sd_theirs = ours.values.std(0, ddof=1), theirs.std(0, ddof=1)
    assert 0.7 < np.sqrt(np.mean(sd_ours ** 2) / np.mean(sd_theirs ** 2)) < 1.4
    tol = 4.5 * np.sqrt(np.mean(sd_ours ** 2 + sd_theirs ** 2) / runs)
    diff = ours.values.mean(0) - theirs.mean(0)
    assert np.all(np.abs(diff) <= tol), (diff, tol)
    assert tol < 0.1 * np.ptp(theirs.mean(0))                         # the band is narrow: the test has teeth
    icpt_tol = 4.5 * np.sqrt((ours.intercept.var(ddof=1) + their_icpt.var(ddof=1)) / runs)
    assert abs(ours.intercept.mean() - their_icpt.mean()) <= icpt_tol
    wide = tfexplain.Lime(MODEL, masker=Image(GRID, fill=0.0), n_samples=m, target=0, kernel_width=2.0)
    assert np.max(np.abs(wide(batch, seed=11).values.mean(0) - theirs.mean(0))) > 3 * tol
    sizes = Image(GRID, fill=0.0)
    sizes.lime_sampling = "uniform_sizes"                              # lime_text's scheme: not lime_image's
    other = tfexplain.Lime(MODEL, masker=sizes, n_samples=m, target=0)
    assert np.max(np.abs(other(batch, seed=11).values.mean(0) - theirs.mean(0))) > 1.5 * tol


@pytest.mark.parametrize("num_features, selection", [(None, "auto"), (3, "auto"), (5, "highest_weights")])
def test_same_samples_give_lime_base_numbers(num_features, selection):
    """On our own samples, lime's LimeBase (its kernel on sklearn's cosine distances, its feature
    selection and sklearn's Ridge) gives our coefficients, intercept, score and local prediction."""
    lime_base = pytest.importorskip("lime.lime_base")
    from sklearn.metrics import pairwise_distances
    explainer = LIME if num_features is None else tfexplain.Lime(
        MODEL, masker=Image(GRID, fill=0.0), n_samples=1000, target=0, num_features=num_features,
        feature_selection=selection)
    s = explainer.samples(X[1:2], seed=4, row_offset=1)
    exp = explainer(X[:2], seed=4)
    data = s["z"][0].astype(np.float64)
    distances = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    base = lime_base.LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / 0.25 ** 2)), random_state=0)
    labels = _np_model(np.where(data[:, SEGMENTS][..., None] > 0, X[1][None], 0.0))    # the samples' images
    intercept, local, score, pred = base.explain_instance_with_data(
        data, labels, distances, 0, P if num_features is None else num_features, feature_selection=selection)
    coef = np.zeros(P)
    for j, v in local:
        coef[j] = v
    np.testing.assert_allclose(exp.values[1], coef, atol=2e-5)
    np.testing.assert_allclose(exp.intercept[1], intercept, atol=2e-5)
    np.testing.assert_allclose(exp.score[1], score, atol=1e-4)
    np.testing.assert_allclose(exp.local_pred[1], pred[0], atol=2e-5)
    np.testing.assert_allclose(s["y"][0, :, 0], labels[:, 0], atol=2e-6)


def test_samples_and_cosine_kernel_against_numpy():
    """Row 0 all on, the other bits fair coins; weights = sqrt(exp(-d^2 / 0.25^2)) of sklearn's cosine
    distance (an all-off sample at distance 1); kernels.cosine ignores null players."""
    from sklearn.metrics import pairwise_distances
    s = LIME.samples(X, seed=1)
    z, w = s["z"], s["weights"]
    assert z.shape == (3, 1000, P) and set(np.unique(z)) == {0.0, 1.0}
    np.testing.assert_array_equal(z[:, 0], 1.0)
    assert abs(z[:, 1:].mean() - 0.5) < 0.02
    assert not np.array_equal(z[0], z[1])                               # each row its own stream
    for i in range(3):
        d = pairwise_distances(z[i].astype(np.float64), np.ones((1, P)), metric="cosine").ravel()
        np.testing.assert_allclose(w[i], np.sqrt(np.exp(-d ** 2 / 0.0625)), rtol=1e-12, atol=1e-15)
    zz = np.array([[[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]]], np.float32)
    origin = np.array([[1, 1, 1, 0]], np.float32)                      # player 3 is null
    k = kernels.cosine(0.5)(Sample(tf.constant(zz), None, None), tf.constant(origin)).numpy()
    d = pairwise_distances(zz[0, :, :3].astype(np.float64), origin[:, :3], metric="cosine").ravel()
    np.testing.assert_allclose(k[0], np.sqrt(np.exp(-d ** 2 / 0.25)), rtol=1e-12)
    assert d[1] == 1.0


def test_one_patch_ranks_its_segment_first_and_null_players_get_zero():
    """A model whose output is one grid cell's mean: that segment's coefficient is (about) the output,
    the others about 0 and the fit is nearly perfect; a segment id without pixels is a null player:
    off in every sample's bits, exactly 0."""
    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    def patch_mean(x):
        return tf.reduce_mean(x[:, 4:, :4, :], axis=[1, 2, 3])        # cell (1, 0) of a 2 x 2 grid: id 2

    grid = (np.arange(8)[:, None] // 4) * 2 + np.arange(8)[None, :] // 4
    masker = Image(grid.astype(np.int32), fill=0.0, n_segments=5, shape=(8, 8, 3))   # id 4 has no pixels
    x = RNG.uniform(0.2, 1, size=(4, 8, 8, 3)).astype(np.float32)
    explainer = tfexplain.Lime(patch_mean, masker=masker, n_samples=600)
    exp = explainer(x, seed=0)
    assert exp.values.shape == (4, 5) and exp.heatmap.shape == (4, 8, 8)
    np.testing.assert_array_equal(np.argmax(np.abs(exp.values), 1), 2)
    np.testing.assert_allclose(exp.values[:, 2], exp.model_output, rtol=0.02)
    assert np.abs(exp.values[:, [0, 1, 3]]).max() < 0.01 * exp.values[:, 2].min()
    np.testing.assert_array_equal(exp.values[:, 4], 0.0)
    assert exp.score.min() > 0.999
    np.testing.assert_array_equal(exp.segments, np.broadcast_to(grid, (4, 8, 8)))
    np.testing.assert_array_equal(exp.heatmap[:, 5, 1], exp.values[:, 2])
    np.testing.assert_allclose(exp.contributions.sum(1), exp.local_pred - exp.intercept, atol=1e-6)
    z = explainer.samples(x[:1])["z"]
    np.testing.assert_array_equal(z[..., 4], 0.0)
    assert explainer.kernel_width == 0.25 and explainer.feature_names[2] == "segment 2"


def test_uniform_sizes_scheme_draws_lime_text_sizes_over_active_players():
    """lime_text's scheme (for a text masker): k players off, k uniform in 1..(active players); null
    players never drawn."""
    active = tf.constant([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]], tf.float32)
    sampler = BinarySampler(8, 3001, players=lambda x: x, scheme="uniform_sizes")
    keys = [tf.constant([3, 4], tf.int32)]
    z = sampler(keys, tf.constant([0, 1], tf.int64), active).z.numpy()
    np.testing.assert_array_equal(z[:, 0], active.numpy())
    np.testing.assert_array_equal(z[0, :, 5:], 0.0)
    off = 5 - z[0, 1:].sum(1)
    np.testing.assert_allclose(np.bincount(off.astype(int), minlength=6)[1:] / 3000, 0.2, atol=0.03)
    assert set(np.unique(2 - z[1, 1:].sum(1))) == {1, 2}
    chunk = sampler.chunk(keys, tf.constant([0, 1], tf.int64), active, tf.range(10, 20)).z.numpy()
    np.testing.assert_array_equal(chunk, z[:, 10:20])                   # pieces give the whole's samples


def test_uniform_sizes_with_null_players_anywhere_switch_off_exactly_k_uniformly():
    """Null players before and between the active ones (a text masker's [CLS] at 0, left padding): a
    sample still switches off k in 1..active of the active players, each equally often."""
    active = tf.constant([[0, 1, 1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1, 1]], tf.float32)
    sampler = BinarySampler(8, 6001, players=lambda x: x, scheme="uniform_sizes")
    z = sampler([tf.constant([5, 6], tf.int32)], tf.constant([0, 1], tf.int64), active).z.numpy()[:, 1:]
    np.testing.assert_array_equal(z * (1.0 - active.numpy()[:, None]), 0.0)      # null players stay 0
    off = 3 - z[0].sum(1)
    np.testing.assert_allclose(np.bincount(off.astype(int), minlength=4) / 6000, [0, 1 / 3, 1 / 3, 1 / 3], atol=0.03)
    np.testing.assert_allclose((1 - z[0][:, [1, 2, 4]]).mean(0), 2 / 3, atol=0.03)   # (1 + 2 + 3) / 3 / 3 each
    np.testing.assert_array_equal(np.unique(2 - z[1].sum(1)), [1, 2])


def test_streams_batches_and_no_retracing():
    """Row r's samples come from (seed, r): explaining rows in other batches (row_offset) gives the
    same numbers, and any batch size runs on one trace."""
    explainer = tfexplain.Lime(MODEL, masker=Image(GRID, fill="mean"), n_samples=300, top_labels=2)
    whole = explainer(X, seed=5)
    one = explainer(X[1:2], seed=5, row_offset=1)
    explainer(X[:2], seed=5)
    assert explainer.tracing_count == 1
    np.testing.assert_allclose(one.values[0], whole.values[1], atol=1e-6)
    assert whole.values.shape == (3, P, 2) and whole.target.shape == (3, 2) and whole.heatmap.shape == (3, H, W, 2)
    np.testing.assert_array_equal(whole.target, np.argsort(-MODEL(X).numpy(), 1))
    assert not np.allclose(explainer(X, seed=6).values, whole.values)


def test_export_round_trip():
    with tempfile.TemporaryDirectory() as tmp:
        path = tfexplain.export(LIME, os.path.join(tmp, "lime_img"))
        loaded = tf.saved_model.load(path)
        out = loaded.signatures["explain"](x=tf.constant(X), seed=tf.constant(7, tf.int64))
        ref = LIME(X, seed=7)
        for key in ("values", "intercept", "score", "local_pred"):
            np.testing.assert_allclose(out[key].numpy(), getattr(ref, key), atol=1e-6)
        np.testing.assert_array_equal(out["segments"].numpy(), ref.segments)


def test_boundary_errors_name_the_argument():
    with pytest.raises(ValueError, match="training_data"):
        tfexplain.Lime(MODEL)
    with pytest.raises(ValueError, match="masker"):
        tfexplain.Lime(MODEL, X.reshape(3, -1), masker=Image(GRID))
    with pytest.raises(TypeError, match="masker"):
        tfexplain.Lime(MODEL, masker="image")
    with pytest.raises(ValueError, match="categorical_features"):
        tfexplain.Lime(MODEL, masker=Image(GRID), categorical_features=[0])
    with pytest.raises(ValueError, match="n_samples"):
        tfexplain.Lime(MODEL, masker=Image(GRID), n_samples=P)
    with pytest.raises(ValueError, match="kernel_width"):
        tfexplain.Lime(MODEL, masker=Image(GRID), kernel_width=0.0)
    with pytest.raises(ValueError, match="`x`"):
        LIME(np.zeros((2, H, W + 1, CH), np.float32))
    with pytest.raises(ValueError, match="tabular"):
        LIME.feature_scale


def test_segment_mean_fill_is_lime_hide_color_none():
    """fill="segment_mean" hides a segment behind its own mean colour, as lime_image's default
    hide_color=None builds its fudged image: the samples' model values equal the numpy model on
    lime's fudged images, and a batch's rows get the numbers they get alone."""
    explainer = tfexplain.Lime(MODEL, masker=Image(GRID, fill="segment_mean"), n_samples=200, target=0)
    image = X[2]
    fudged = image.copy()                                # lime_image.explain_instance, hide_color=None
    for s in np.unique(SEGMENTS):
        fudged[SEGMENTS == s] = [np.mean(image[SEGMENTS == s][:, c]) for c in range(CH)]
    samples = explainer.samples(image[None], seed=3, row_offset=2)
    z = samples["z"][0]
    labels = _np_model(np.where(z[:, SEGMENTS][..., None] > 0, image[None], fudged[None]))
    np.testing.assert_allclose(samples["y"][0, :, 0], labels[:, 0], atol=2e-6)
    np.testing.assert_array_equal(explainer(X, seed=3).values[2], explainer(X[2:], seed=3, row_offset=2).values[0])
