"""Maskers: what the players of an instance are, and how a coalition of them becomes model input.

An explainer is a sampler (which coalitions), a masker (coalition -> model rows -> one value), a
kernel (how much each sample counts) and a solver (the surrogate fit). The masker owns everything
that depends on the model's input, so samplers, kernels and solvers only see ``p`` players:

- ``n_players``: p, static; ``player_prefix``: default player names (``prefix + str(j)``).
- ``input_spec``: ``tf.TensorSpec([None, ...], dtype)`` of the model input (the explain signature's x).
- ``flat_size``: D, the width of an instance inside the explain graph, which works on instances
  flattened to ``[n, D]`` float32 (so chunking, XLA chunks and per-row streams need no shapes);
  ``row_floats``: floats of one model-input row (the unit of the ``batch_size`` memory budget);
  ``instance_floats``: floats an instance holds outside the model call (e.g. the null-player test).
- ``check(x, name)`` (host, before tracing): the user's instances as a validated numpy array shaped
  like ``input_spec`` (ValueError / TypeError naming ``name``); ``check_rows(row_ids)`` likewise for
  the rows' global ids (a per-image segment map must exist for every row).
- ``flatten(x, row_ids)``: model-input instances [n, ...] -> [n, D] (with what a row carries besides
  its input, e.g. its segment map and fill image); ``instances(flat)``: [n, ...] the instances as
  model input (their own output is f(x)).
- ``inputs(flat, z, points)``: P (instance, coalition) pairs -- flat [P, D], z [P, p] float 0/1,
  points [P, ...] or None (a sampler that makes model-space points itself, LIME) -> model rows
  [P * rows_per_sample, ...]; ``reduce(y)``: their outputs [P * rows_per_sample, o] -> [P, o].
- ``players(flat)``: [n, p] float64, 1 for players whose absence can change the model input; the
  others are null players (exactly 0, left out of the solve).
- ``constant_base()``: (model rows, weights) whose weighted mean output is the value of the empty
  coalition for every instance (computed once, eagerly), or None when it depends on the instance
  (then it is evaluated in-graph per row: ``inputs(flat, zeros)``).
- ``extras(flat)`` / ``extras_spec()``: per-row outputs the explanation carries (e.g. ``segments``);
  ``explanation_fields(data, out)`` (host): the Explanation's fields from them and the checked
  instances (e.g. ``tokens``, the words of token ids).
"""

from __future__ import annotations

import copy

import numpy as np
import tensorflow as tf

from ._validation import as_matrix, as_names, check_columns, frame_columns

__all__ = ["Masker", "Tabular", "Points", "Image", "Text", "Words", "Composite", "BackgroundMasker",
           "PointMasker", "gaussian_blur", "segment_means", "slic"]


class Masker:
    """Base class of maskers (see the module docstring for the interface)."""

    n_players: int
    flat_size: int
    rows_per_sample: int = 1
    player_prefix: str = "x"
    player_names = None           # the players' default names (else player_prefix + index)
    supports_xla: bool = True     # False: the masker's ops (e.g. strings) do not compile with XLA
    exportable: bool = True       # False: tfexplain.export cannot hold what the model needs (yet)

    @property
    def input_spec(self) -> tf.TensorSpec:
        raise NotImplementedError

    @property
    def row_floats(self) -> int:
        return int(np.prod(self.input_spec.shape[1:]))

    @property
    def instance_floats(self) -> int:
        return self.flat_size

    def probe(self) -> np.ndarray:
        """A few model-input rows to probe the model with (shape and outputs)."""
        raise NotImplementedError

    def bind(self, model) -> "Masker":
        """The masker ready for ``model`` (e.g. an image shape taken from the model): self when nothing is
        missing, else a bound copy (the masker passed in is never changed, so it can serve several models)."""
        return self

    def check(self, x, name: str = "x") -> np.ndarray:
        raise NotImplementedError

    def check_rows(self, row_ids: np.ndarray) -> None:
        return None

    def graph_checks(self, x) -> list:
        """In-graph assertions on a batch ``x`` of model input (exported signatures, where ``check`` cannot
        run): what ``check`` refuses beyond shape, dtype and finiteness. None by default."""
        return []

    def flatten(self, x, row_ids):
        return x

    def instances(self, flat):
        return flat

    def inputs(self, flat, z, points=None):
        raise NotImplementedError

    def reduce(self, y):
        return y

    def players(self, flat):
        return tf.ones([tf.shape(flat)[0], self.n_players], tf.float64)

    def constant_base(self):
        return None

    def extras(self, flat) -> dict:
        return {}

    def extras_spec(self) -> dict:
        return {}

    def explanation_fields(self, data, out: dict) -> dict:
        """The Explanation's masker-specific fields (host): by default the graph's extras."""
        return {k: out[k] for k in self.extras_spec()}


class Tabular(Masker):
    """Interventional tabular masking: features in the coalition come from x, the others from each
    background row; the value of a coalition is the (weighted) mean output over the background rows,
    as in shap's KernelExplainer. Players are the d columns; a column equal to x in every (weighted)
    background row is a null player.

    background: [k, d] rows (array, tensor, DataFrame); weights: optional [k] non-negative weights;
    feature_names: optional d names of the columns (default: a DataFrame's columns)."""

    def __init__(self, background, weights=None, feature_names=None):
        columns = frame_columns(background)
        self.background = as_matrix(background, "background")
        k, d = self.background.shape
        if weights is None:
            w = np.full(k, 1.0 / k)
        else:
            w = np.asarray(weights, np.float64).reshape(-1)
            if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError(f"`background_weights` must be {k} finite non-negative numbers with a positive sum.")
            w = w / np.sum(w)
        self.weights = w.astype(np.float32)
        self.rows_per_sample = k
        self.n_players = self.flat_size = d
        self.columns = columns        # a DataFrame background: x frames must have these columns, in order
        names = columns if feature_names is None else feature_names
        self.player_names = None if names is None else as_names(names, d, "feature_names", "x")
        # background rows that count (weight > 0): a feature equal to x in all of them is a null player
        self.active_background = self.background if weights is None else self.background[w > 0]

    @property
    def input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, self.n_players], tf.float32)

    @property
    def instance_floats(self) -> int:
        return len(self.active_background) * self.n_players   # the null-player test

    def probe(self) -> np.ndarray:
        return self.background

    def check(self, x, name: str = "x") -> np.ndarray:
        if self.columns is not None:
            check_columns(x, self.columns, name)
        return as_matrix(x, name, n_features=self.n_players, allow_vector=True)

    def inputs(self, flat, z, points=None):
        """Coalitions z [S, d] in {0, 1} of the rows flat [S, d] -> [S * k, d]: x's value where z is 1
        (z > 0.5), each background row's elsewhere. One select, not z x + (1 - z) bg: a single pass
        over the k copies (the largest tensor a tabular explainer makes besides the model's own)."""
        bg = tf.constant(self.background)
        mixed = tf.where(z[:, None, :] > 0.5, flat[:, None, :], bg[None])
        return tf.reshape(mixed, [-1, self.background.shape[1]])

    def reduce(self, y):
        k = self.rows_per_sample
        y = tf.reshape(y, [-1, k, y.shape[-1]])
        return tf.einsum("pko,k->po", y, tf.constant(self.weights))

    def players(self, flat):
        """[c, d] float64: 1 for the features that differ between x and some (weighted) background row.
        The others cannot change any coalition's value: they get exactly 0 and stay out of the solve."""
        bg = tf.constant(self.active_background)
        return tf.cast(tf.reduce_any(tf.not_equal(flat[:, None, :], bg[None]), axis=1), tf.float64)

    def constant_base(self):
        return self.background, self.weights


BackgroundMasker = Tabular


class Points(Masker):
    """The sampler already made model-space points (LIME's tabular perturbations): evaluate them as
    they are. Players are the d columns."""

    rows_per_sample = 1

    def __init__(self, n_features: int, probe_rows=None):
        self.n_players = self.flat_size = int(n_features)
        self._probe = probe_rows

    @property
    def input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, self.n_players], tf.float32)

    def probe(self) -> np.ndarray:
        return self._probe

    def check(self, x, name: str = "x") -> np.ndarray:
        return as_matrix(x, name, n_features=self.n_players, allow_vector=True)

    def inputs(self, flat, z, points):
        return points


PointMasker = Points


def _gaussian_taps(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (t / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def gaussian_blur(images, sigma: float):
    """Gaussian blur of images [n, H, W, C] in-graph: a separable depthwise convolution (rows, then
    columns) with zero padding, divided by the blur of ones so that borders keep their level."""
    taps = _gaussian_taps(sigma)
    c = images.shape[-1]
    rows = tf.constant(np.tile(taps[:, None, None, None], [1, 1, c, 1]))     # [k, 1, C, 1]
    cols = tf.constant(np.tile(taps[None, :, None, None], [1, 1, c, 1]))     # [1, k, C, 1]

    def conv(t):
        t = tf.nn.depthwise_conv2d(t, rows, [1, 1, 1, 1], "SAME")
        return tf.nn.depthwise_conv2d(t, cols, [1, 1, 1, 1], "SAME")

    norm = conv(tf.ones_like(images[:1]))
    return conv(images) / norm


def segment_means(images, segments, n_segments: int):
    """Each pixel's segment's mean colour: images [n, H, W, C], segment ids [n, H, W] in
    [0, n_segments) -> [n, H, W, C] (lime_image's fill for ``hide_color=None``)."""
    n, c = tf.shape(images)[0], images.shape[-1]
    ids = tf.reshape(segments + n_segments * tf.range(n)[:, None, None], [-1])           # per image
    colours = tf.reshape(images, [-1, c])
    total = tf.math.unsorted_segment_sum(colours, ids, n * n_segments)
    count = tf.math.unsorted_segment_sum(tf.ones_like(colours[:, :1]), ids, n * n_segments)
    return tf.reshape(tf.gather(total / tf.maximum(count, 1.0), ids), tf.shape(images))


def _grid(shape, rows: int, cols: int) -> np.ndarray:
    h, w = shape
    return ((np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w).astype(np.int32)


class Image(Masker):
    """Images [n, H, W, C] whose players are segments (superpixels): a hidden segment's pixels take a
    fill, a present one's keep the image's.

    segmentation: ``(rows, cols)`` a regular grid of rows x cols cells; an integer map [H, W] (the same
        segments for every image) or [n, H, W] (image i of a call uses map ``row_offset + i``, so a
        dataset explained in batches keeps its maps); or ``"slic"``: SLIC-style superpixels computed
        in-graph for each image (k-means over colour and position, ``slic_iterations`` rounds, started
        on a grid of at most ``n_segments`` cells; ``compactness`` weighs a grid step of distance
        against one standard deviation of colour; see :func:`slic`).
    n_segments: the static number of players (an upper bound): default rows x cols for a grid, the
        largest id + 1 of a map, 16 for "slic". Ids without pixels (or whose pixels all equal their
        fill) are null players: their values are exactly 0.
    fill: what hidden pixels become: a number or one per channel [C]; ``"mean"`` (the image's own
        per-channel mean); ``"segment_mean"`` (each segment's own per-channel mean colour: lime_image's
        default ``hide_color=None``); ``"blur"`` (a Gaussian blur of the image, ``blur_sigma`` pixels, default
        max(H, W) / 8); or background images [k, H, W, C] (interventional: a coalition's value is the
        mean output over the k images, hidden pixels from each, as the tabular masker does).
    shape: (H, W, C) of the model's input; default from the map, the background images or the model.

    Explanations carry ``segments`` [n, H, W] int32 and ``heatmap`` [n, H, W(, outputs)].
    """

    player_prefix = "segment "
    lime_kernel_width = 0.25        # tfexplain.Lime(model, masker=...): lime_image's kernel width
    lime_sampling = "bernoulli"     # and its samples (each segment off with probability 1/2)

    def __init__(self, segmentation=(4, 4), fill=0.0, *, n_segments=None, shape=None, blur_sigma=None,
                 slic_iterations=10, compactness=1.0):
        self._maps = None      # [n, H, W] per-image maps, or None
        self._map = None       # [H, W] one map for every image, or None
        self._slic = False
        map_shape = None
        if isinstance(segmentation, str):
            if segmentation != "slic":
                raise ValueError(f"`segmentation` must be (rows, cols), an integer map [H, W] or [n, H, W], or "
                                 f"'slic'; got {segmentation!r}.")
            self._slic = True
            self.n_players = 16 if n_segments is None else _positive(n_segments, "n_segments")
            self._cells = None
        elif isinstance(segmentation, tuple) and len(segmentation) == 2 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in segmentation):
            self._cells = tuple(_positive(v, "segmentation") for v in segmentation)
            self.n_players = self._cells[0] * self._cells[1]
            if n_segments is not None and n_segments != self.n_players:
                raise ValueError(f"`n_segments` is {n_segments} but the grid {segmentation} has {self.n_players}.")
        else:
            maps = np.asarray(segmentation.numpy() if hasattr(segmentation, "numpy") else segmentation)
            if maps.dtype == np.bool_ or not np.issubdtype(maps.dtype, np.integer):
                raise TypeError(f"`segmentation` must be an integer map (segment ids), got dtype {maps.dtype}.")
            if maps.ndim not in (2, 3) or maps.size == 0:
                raise ValueError(f"`segmentation` must be a map [H, W] or maps [n, H, W], got shape {maps.shape}.")
            if maps.min() < 0:
                raise ValueError(f"`segmentation` ids must be >= 0, got {maps.min()}.")
            top = int(maps.max()) + 1
            self.n_players = top if n_segments is None else _positive(n_segments, "n_segments")
            if self.n_players < top:
                raise ValueError(f"`n_segments` is {self.n_players} but `segmentation` has ids up to {top - 1}.")
            maps = maps.astype(np.int32)
            if maps.ndim == 2:
                self._map = maps
            else:
                self._maps = maps
            map_shape = maps.shape[-2:]
        if self._slic:
            self.slic_iterations = _positive(slic_iterations, "slic_iterations")
            if isinstance(compactness, bool) or not isinstance(compactness, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(compactness) or compactness <= 0:
                raise ValueError(f"`compactness` must be a positive number, got {compactness!r}.")
            self.compactness = float(compactness)
        self.background = None
        self.weights = None
        self.fill = fill
        bg_shape = None
        if isinstance(fill, str):
            if fill not in ("mean", "segment_mean", "blur"):
                raise ValueError(f"`fill` must be a number, one per channel, 'mean', 'segment_mean', 'blur' or "
                                 f"background images [k, H, W, C]; got {fill!r}.")
            self._constant = None
        else:
            arr = np.asarray(fill.numpy() if hasattr(fill, "numpy") else fill)
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)) or arr.dtype == np.bool_:
                raise TypeError(f"`fill` must be a number, 'mean', 'blur' or images, got {type(fill).__name__}.")
            if arr.ndim == 4:
                if len(arr) == 0:
                    raise ValueError("`fill` (background images) is empty: it needs at least one image.")
                self.background = arr.astype(np.float32)
                bg_shape = arr.shape[1:]
                self.weights = np.full(len(arr), 1.0 / len(arr), np.float32)
                self._constant = None
            elif arr.ndim in (0, 1):
                self._constant = arr.astype(np.float32)
            else:
                raise ValueError(f"`fill` must be a number, one per channel [C] or background images [k, H, W, C], "
                                 f"got an array of shape {arr.shape}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError("`fill` contains NaN or Inf.")
        self.rows_per_sample = 1 if self.background is None else len(self.background)
        self.blur_sigma = blur_sigma
        self.shape = None
        given = None if shape is None else tuple(int(v) for v in shape)
        if given is not None and len(given) != 3:
            raise ValueError(f"`shape` must be (H, W, C), got {shape!r}.")
        self._map_shape, self._bg_shape = map_shape, bg_shape
        known = given or bg_shape
        if known is None and map_shape is not None and self._constant is not None and self._constant.ndim == 1:
            known = tuple(map_shape) + (len(self._constant),)
        if known is not None:
            self._set_shape(known, "shape" if given else "fill")

    # ---- shape ------------------------------------------------------------------------------------
    def _set_shape(self, shape, source: str):
        h, w, c = (int(v) for v in shape)
        if min(h, w, c) < 1:
            raise ValueError(f"`{source}` gives an image shape {shape}; H, W and C must be >= 1.")
        if self._bg_shape is not None and tuple(self._bg_shape) != (h, w, c):
            raise ValueError(f"`fill` background images are {tuple(self._bg_shape)} but the model's images are "
                             f"{(h, w, c)}.")
        if self._map_shape is not None and tuple(self._map_shape) != (h, w):
            raise ValueError(f"`segmentation` maps are {tuple(self._map_shape)} (H, W) but the images are {(h, w)}.")
        if self._constant is not None and self._constant.ndim == 1 and len(self._constant) not in (1, c):
            raise ValueError(f"`fill` has {len(self._constant)} values but the images have {c} channels.")
        if self._slic and self._maps is None and self._map is None:
            rows, cols = _slic_grid(h, w, self.n_players)
            if rows * cols > h * w:
                raise ValueError(f"`n_segments` {self.n_players} is more than the image's {h * w} pixels.")
        elif not self._slic and self._map is None and self._maps is None:
            rows, cols = self._cells
            if rows > h or cols > w:
                raise ValueError(f"`segmentation` grid {self._cells} has more cells than the image's {(h, w)} pixels.")
            self._map = _grid((h, w), rows, cols)
        self.shape = (h, w, c)
        self.pixels = h * w * c
        stored_fill = 0 if self.background is not None else self.pixels
        self.flat_size = self.pixels + stored_fill + h * w
        if self.blur_sigma is None:
            self.blur_sigma = max(h, w) / 8.0
        return self

    def bind(self, model) -> "Image":
        """Takes (H, W, C) from ``model``'s input shape when the masker does not know it yet."""
        if self.shape is not None:
            return self
        shape = _model_input_shape(model)
        if isinstance(shape, list):
            shape = shape[0] if len(shape) == 1 else None
        if shape is None or len(shape) != 4 or any(v is None for v in list(shape)[1:]):
            raise ValueError("tfexplain.maskers.Image needs the image shape: pass shape=(H, W, C) (the model's "
                             f"input shape {shape!r} does not give it).")
        return copy.copy(self)._set_shape(tuple(shape)[1:], "shape")   # the user's masker stays as it was

    def _require_shape(self):
        if self.shape is None:
            raise ValueError("the Image masker has no image shape yet: pass shape=(H, W, C) or use it in an explainer.")

    @property
    def input_spec(self) -> tf.TensorSpec:
        self._require_shape()
        return tf.TensorSpec([None, *self.shape], tf.float32)

    @property
    def instance_floats(self) -> int:
        k = 0 if self.background is None else len(self.background)
        return self.flat_size + k * self.pixels

    def probe(self) -> np.ndarray:
        if self.background is not None:
            return self.background[:2]
        return self._fill_image()[None] if self._constant is not None else np.zeros((1, *self.shape), np.float32)

    def _fill_image(self) -> np.ndarray:
        return np.broadcast_to(self._constant, self.shape).astype(np.float32)

    # ---- boundary ---------------------------------------------------------------------------------
    def check(self, x, name: str = "x") -> np.ndarray:
        self._require_shape()
        if hasattr(x, "numpy") and callable(x.numpy):
            x = x.numpy()
        arr = np.asarray(x)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(f"`{name}` must be numeric images [n, H, W, C], got dtype {arr.dtype}.")
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or tuple(arr.shape[1:]) != self.shape:
            raise ValueError(f"`{name}` must be images [n, {', '.join(map(str, self.shape))}] (or one image "
                             f"{list(self.shape)}), got shape {arr.shape}.")
        if len(arr) == 0:
            raise ValueError(f"`{name}` is empty (shape {arr.shape}): it needs at least one image.")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(f"`{name}` contains NaN or Inf (first at {tuple(int(v) for v in bad)}).")
        return arr

    def check_rows(self, row_ids) -> None:
        if self._maps is not None and len(row_ids) and int(np.max(row_ids)) >= len(self._maps):
            raise ValueError(f"`segmentation` has maps for {len(self._maps)} images, but rows up to "
                             f"{int(np.max(row_ids))} (row_offset + index) are explained.")

    # ---- graph ------------------------------------------------------------------------------------
    def segment(self, x, row_ids):
        """Segment ids [n, H, W] int32 of images x [n, H, W, C] (rows' global ids pick per-image maps)."""
        n = tf.shape(x)[0]
        if self._maps is not None:
            return tf.gather(tf.constant(self._maps), row_ids)
        if self._map is not None:
            return tf.broadcast_to(tf.constant(self._map)[None], [n, *self.shape[:2]])
        return slic(x, self.n_players, self.slic_iterations, self.compactness)

    def flatten(self, x, row_ids):
        x = tf.cast(x, tf.float32)
        n = tf.shape(x)[0]
        parts = [tf.reshape(x, [n, self.pixels])]
        seg = self.segment(x, row_ids)
        hw = self.shape[0] * self.shape[1]
        if self.background is None:
            if self._constant is not None:
                fill = tf.broadcast_to(tf.constant(self._fill_image())[None], tf.shape(x))
            elif self.fill == "mean":
                fill = tf.broadcast_to(tf.reduce_mean(x, axis=[1, 2], keepdims=True), tf.shape(x))
            elif self.fill == "segment_mean":
                fill = segment_means(x, seg, self.n_players)
            else:
                fill = gaussian_blur(x, self.blur_sigma)
            parts.append(tf.reshape(fill, [n, self.pixels]))
        parts.append(tf.cast(tf.reshape(seg, [n, hw]), tf.float32))   # ids < 2^24: exact in float32
        return tf.concat(parts, 1)

    def _split(self, flat):
        hw = self.shape[0] * self.shape[1]
        pixels = flat[:, :self.pixels]
        fill = None if self.background is not None else flat[:, self.pixels:2 * self.pixels]
        seg = tf.cast(flat[:, -hw:], tf.int32)
        return pixels, fill, seg

    def instances(self, flat):
        return tf.reshape(flat[:, :self.pixels], [-1, *self.shape])

    def inputs(self, flat, z, points=None):
        pixels, fill, seg = self._split(flat)
        on = tf.repeat(tf.gather(z, seg, batch_dims=1) > 0.5, self.shape[2], axis=1)   # [P, H*W*C]
        if self.background is None:
            return tf.reshape(tf.where(on, pixels, fill), [-1, *self.shape])
        bg = tf.reshape(tf.constant(self.background), [1, -1, self.pixels])
        rows = tf.where(on[:, None, :], pixels[:, None, :], bg)
        return tf.reshape(rows, [-1, *self.shape])

    def reduce(self, y):
        if self.background is None:
            return y
        y = tf.reshape(y, [-1, self.rows_per_sample, y.shape[-1]])
        return tf.einsum("pko,k->po", y, tf.constant(self.weights))

    def players(self, flat):
        """[c, p] float64: 1 for the segments with a pixel whose fill differs from it (in some
        background image); segments without pixels, or whose pixels equal their fill, are null."""
        pixels, fill, seg = self._split(flat)
        c, h, w, ch = tf.shape(flat)[0], *self.shape
        if self.background is None:
            differ = tf.not_equal(pixels, fill)
        else:
            bg = tf.reshape(tf.constant(self.background), [1, -1, self.pixels])
            differ = tf.reduce_any(tf.not_equal(pixels[:, None, :], bg), axis=1)
        differ = tf.reduce_any(tf.reshape(differ, [c, h * w, ch]), axis=2)
        ids = seg + self.n_players * tf.range(c)[:, None]
        counts = tf.math.unsorted_segment_sum(tf.cast(tf.reshape(differ, [-1]), tf.float32), tf.reshape(ids, [-1]),
                                              c * self.n_players)
        return tf.cast(tf.reshape(counts, [c, self.n_players]) > 0, tf.float64)

    def constant_base(self):
        if self.background is not None:
            return self.background, self.weights
        if self._constant is not None:
            return self._fill_image()[None], np.ones(1, np.float32)
        return None

    def extras(self, flat) -> dict:
        _, _, seg = self._split(flat)
        return {"segments": tf.reshape(seg, [-1, *self.shape[:2]])}

    def extras_spec(self) -> dict:
        self._require_shape()
        return {"segments": tf.TensorSpec([None, *self.shape[:2]], tf.int32)}


_MAX_TOKEN_ID = 2**24   # ids travel as float32 inside the explain graph: exact below 2^24


def _token_id(value, name: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < _MAX_TOKEN_ID:
        raise ValueError(f"`{name}` must be a token id, an int in [0, 2**24), got {value!r}.")
    return int(value)


class Text(Masker):
    """Token sequences: a model taking int token ids [n, L] whose players are the L positions.

    A position absent from a coalition holds ``mask_token``; padding positions (ids equal to
    ``pad_token``, on the left as Keras's ``pad_sequences`` puts them by default, on the right, or
    anywhere) are never perturbed, so they are null players with values exactly 0, and every row's
    values are the Shapley values of the game over its own tokens, whatever the lengths of the rows
    sharing its batch (one coalition width L for all; masks, no loop over rows). A token equal to
    ``mask_token`` is a null player too (hiding it changes nothing).

    mask_token: the id that absent tokens become (e.g. the vocabulary's ``[UNK]`` or ``[MASK]`` id);
        None (default) = ``pad_token``: absent tokens become padding, which a model that masks its
        padding (``Embedding(mask_zero=True)``, a pooling that ignores pads) reads as the word being
        deleted; the value of the empty coalition is then the model's output on a row of padding,
        one constant for every row (else it is evaluated per row).
    pad_token: the padding id (default 0), or None when the rows are not padded.
    length: L, the static sequence length; default from the model's input shape.
    vocabulary: optional list of the id -> word table (a ``TextVectorization``'s
        ``get_vocabulary()``): ``exp.tokens`` then holds words, else the ids.
    dtype: the ids' dtype at the model input and in the explain signature, "int32" (default) or "int64".

    ``exp.values`` [n, L(, outputs)]; ``exp.data`` and ``exp.tokens`` [n, L].
    """

    lime_kernel_width = 25.0        # tfexplain.Lime(model, masker=...): lime_text's kernel width,
    lime_distance_scale = 100.0     # on its cosine distance times 100
    lime_n_samples, lime_num_features = 5000, 10   # lime_text's explain_instance defaults
    lime_sampling = "uniform_sizes"  # and its samples (k of the row's words off, k uniform in 1..words)
    player_prefix = "position "
    rows_per_sample = 1

    def __init__(self, mask_token=None, pad_token=0, length=None, *, vocabulary=None, dtype="int32"):
        self.pad_token = _token_id(pad_token, "pad_token", allow_none=True)
        self.mask_token = _token_id(mask_token, "mask_token", allow_none=True)
        if self.mask_token is None:
            if self.pad_token is None:
                raise ValueError("`mask_token` is needed when `pad_token` is None (absent tokens become it).")
            self.mask_token = self.pad_token
        if dtype not in ("int32", "int64", tf.int32, tf.int64, np.int32, np.int64):
            raise ValueError(f"`dtype` must be 'int32' or 'int64', got {dtype!r}.")
        self.dtype = tf.as_dtype(dtype)
        self.vocabulary = None
        if vocabulary is not None:
            if isinstance(vocabulary, (str, bytes)) or not hasattr(vocabulary, "__len__"):
                raise TypeError(f"`vocabulary` must be a list of words, got {type(vocabulary).__name__}.")
            self.vocabulary = np.asarray([w.decode() if isinstance(w, bytes) else str(w) for w in vocabulary])
            for name, t in (("mask_token", self.mask_token), ("pad_token", self.pad_token)):
                if t is not None and t >= len(self.vocabulary):
                    raise ValueError(f"`{name}` {t} is not an id of the {len(self.vocabulary)}-word `vocabulary`.")
        self.length = None
        if length is not None:
            self._set_length(_positive(length, "length"))

    def _set_length(self, length: int):
        self.length = self.n_players = self.flat_size = int(length)
        return self

    def bind(self, model) -> "Text":
        """Takes L from ``model``'s input shape when ``length`` was not given (and checks it when it was)."""
        shape = _model_input_shape(model)
        if isinstance(shape, list):
            shape = shape[0] if len(shape) == 1 else None
        declared = shape[1] if shape is not None and len(shape) == 2 else None
        if self.length is not None:
            if declared is not None and declared != self.length:
                raise ValueError(f"`length` is {self.length} but the model takes sequences of {declared} tokens.")
            return self
        if declared is None:
            raise ValueError("tfexplain.maskers.Text needs the sequence length: pass length=L (the model's input "
                             f"shape {shape!r} does not give it).")
        return copy.copy(self)._set_length(int(declared))   # the user's masker stays as it was

    def _require_length(self):
        if self.length is None:
            raise ValueError("the Text masker has no sequence length yet: pass length=L or use it in an explainer.")

    @property
    def input_spec(self) -> tf.TensorSpec:
        self._require_length()
        return tf.TensorSpec([None, self.length], self.dtype)

    def _blank(self, token) -> np.ndarray:
        return np.full((1, self.length), token, self.dtype.as_numpy_dtype)

    def probe(self) -> np.ndarray:
        self._require_length()
        # a row of hidden tokens only: what every explainer evaluates (a row of padding only may be
        # undefined, e.g. NaN for a mean over unmasked positions, and is never evaluated)
        return self._blank(self.mask_token)

    # ---- boundary ---------------------------------------------------------------------------------
    def check(self, x, name: str = "x") -> np.ndarray:
        self._require_length()
        if hasattr(x, "numpy") and callable(x.numpy):
            x = x.numpy()
        arr = np.asarray(x)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"`{name}` must be integer token ids [n, {self.length}] (int32 / int64), got dtype "
                            f"{arr.dtype}.")
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.length:
            raise ValueError(f"`{name}` must be token ids [n, {self.length}] (or one sequence [{self.length}]), got "
                             f"shape {arr.shape}.")
        if len(arr) == 0:
            raise ValueError(f"`{name}` is empty (shape {arr.shape}): it needs at least one sequence.")
        top = _MAX_TOKEN_ID if self.vocabulary is None else len(self.vocabulary)
        bad = (arr < 0) | (arr >= top)
        if bad.any():
            at = tuple(int(v) for v in np.argwhere(bad)[0])
            what = "2**24" if self.vocabulary is None else f"the vocabulary's {top} words"
            raise ValueError(f"`{name}` has token id {int(arr[at])} at {at}: ids must be >= 0 and below {what}.")
        return arr.astype(self.dtype.as_numpy_dtype)

    # ---- graph ------------------------------------------------------------------------------------

    def graph_checks(self, x) -> list:
        """Token ids in [0, vocabulary size) (or [0, 2^24) without a vocabulary), as ``check`` demands."""
        top = _MAX_TOKEN_ID if self.vocabulary is None else len(self.vocabulary)
        ids = tf.cast(x, tf.int64)
        outside = (ids < 0) | (ids >= top)
        first = tf.where(outside)[:1]
        return [tf.debugging.Assert(~tf.reduce_any(outside),
                                    [f"`x` must hold token ids in [0, {top}); first outside at [row, position]:",
                                     first])]
    def flatten(self, x, row_ids):
        return tf.cast(x, tf.float32)       # ids < 2^24: exact

    def instances(self, flat):
        return tf.cast(flat, self.dtype)

    def _kept(self, flat):
        """[n, L] bool: positions that no coalition changes (padding)."""
        if self.pad_token is None:
            return tf.zeros(tf.shape(flat), tf.bool)
        return tf.equal(flat, float(self.pad_token))

    def inputs(self, flat, z, points=None):
        keep = (z > 0.5) | self._kept(flat)
        return tf.cast(tf.where(keep, flat, float(self.mask_token)), self.dtype)

    def players(self, flat):
        """[c, L] float64: 1 for the tokens (not padding, not the mask token itself)."""
        player = ~self._kept(flat) & tf.not_equal(flat, float(self.mask_token))
        return tf.cast(player, tf.float64)

    def constant_base(self):
        if self.pad_token is not None and self.mask_token == self.pad_token:   # the empty coalition: all padding
            return self._blank(self.pad_token), np.ones(1, np.float32)
        return None

    def explanation_fields(self, data, out: dict) -> dict:
        ids = np.asarray(data)
        return {"tokens": ids.astype(np.int64) if self.vocabulary is None else self.vocabulary[ids]}

    def words(self, ids) -> np.ndarray:
        """The words of token ids (needs ``vocabulary``)."""
        if self.vocabulary is None:
            raise ValueError("`vocabulary` was not given to the Text masker.")
        return self.vocabulary[np.asarray(ids)]


_STRIP = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'   # Keras TextVectorization's punctuation


class Words(Masker):
    """Sentences: a model taking strings [n] (a ``TextVectorization`` inside it) whose players are each
    sentence's first ``length`` words (the layer's ``output_sequence_length``), split in-graph with
    ``tf.strings`` as the layer does (``standardize`` "lower_and_strip_punctuation" (Keras's default),
    "lower", "strip_punctuation" or None, then whitespace). Words are matched to ``vocabulary`` (the
    layer's ``get_vocabulary()``: "" padding at 0, the out-of-vocabulary token ("[UNK]") at 1 for
    words outside it); a hidden word becomes ``mask_word`` (default "[UNK]", which the layer maps to
    its out-of-vocabulary id; "" deletes the word, as lime does) and the sentence is joined again with
    spaces. Positions past a sentence's words are padding: null players, exactly 0. ``exp.tokens``
    [n, length] holds the words ("" for padding, "[UNK]" for unknown words). Strings do not run under
    XLA (``jit_compile``); ``tfexplain.export`` writes signatures taking the sentences (tf.string [None]),
    with the model's lookup tables."""

    lime_kernel_width = 25.0        # tfexplain.Lime(model, masker=...): lime_text's kernel width,
    lime_distance_scale = 100.0     # on its cosine distance times 100
    lime_n_samples, lime_num_features = 5000, 10   # lime_text's explain_instance defaults
    lime_sampling = "uniform_sizes"  # and its samples (k of the row's words off, k uniform in 1..words)
    player_prefix = "word "
    supports_xla = False          # tf.strings ops
    rows_per_sample = 1

    def __init__(self, vocabulary, length, *, mask_word="[UNK]", standardize="lower_and_strip_punctuation"):
        if isinstance(vocabulary, (str, bytes)) or not hasattr(vocabulary, "__len__") or len(vocabulary) < 2:
            raise TypeError("`vocabulary` must be a list of words, \"\" (padding) first: the TextVectorization's "
                            "get_vocabulary().")
        self.vocabulary = np.asarray([w.decode() if isinstance(w, bytes) else str(w) for w in vocabulary])
        if self.vocabulary[0] != "":
            raise ValueError(f"`vocabulary` must start with \"\" (padding, id 0), got {self.vocabulary[0]!r}.")
        self.oov = 1      # TextVectorization's out-of-vocabulary id: unknown words join again as its token
        self.length = self.n_players = self.flat_size = _positive(length, "length")
        if not isinstance(mask_word, str):
            raise TypeError(f"`mask_word` must be a str, got {type(mask_word).__name__}.")
        self.mask_word = mask_word
        if standardize not in (None, "lower", "strip_punctuation", "lower_and_strip_punctuation"):
            raise ValueError(f"`standardize` must be None, 'lower', 'strip_punctuation' or "
                             f"'lower_and_strip_punctuation', got {standardize!r}.")
        self.standardize = standardize

    @property
    def input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string)

    @property
    def row_floats(self) -> int:
        return self.length

    def probe(self) -> np.ndarray:
        return np.array([self.vocabulary[-1].encode(), " ".join(self.vocabulary[-2:]).encode()], object)

    def check(self, x, name: str = "x") -> np.ndarray:
        if hasattr(x, "numpy") and callable(x.numpy):
            x = x.numpy()
        arr = np.asarray([x] if isinstance(x, (str, bytes)) else x, dtype=object)
        if arr.ndim != 1 or not all(isinstance(s, (str, bytes)) for s in arr):
            raise TypeError(f"`{name}` must be sentences: a list or array of strings [n], got "
                            f"{type(x).__name__} of shape {arr.shape}.")
        if len(arr) == 0:
            raise ValueError(f"`{name}` is empty: it needs at least one sentence.")
        return np.array([s.decode() if isinstance(s, bytes) else s for s in arr], object)

    def flatten(self, x, row_ids):
        """Sentences [n] -> vocabulary ids [n, length] (float32; 0 past the words)."""
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            x = tf.strings.lower(x)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            x = tf.strings.regex_replace(x, _STRIP, "")
        words = tf.strings.split(x).to_tensor("", shape=[None, self.length])          # [n, L]
        match = tf.equal(words[:, :, None], tf.constant(self.vocabulary[1:])[None, None])
        found = tf.reduce_any(match, -1)
        ids = tf.argmax(tf.cast(match, tf.int32), -1, output_type=tf.int32) + 1
        ids = tf.where(found, ids, self.oov)
        return tf.cast(tf.where(tf.equal(words, ""), 0, ids), tf.float32)

    def _join(self, ids, hide=None):
        words = tf.gather(tf.constant(self.vocabulary), tf.cast(ids, tf.int32))
        if hide is not None:
            words = tf.where(hide, self.mask_word, words)
        return tf.strings.reduce_join(words, axis=1, separator=" ")

    def instances(self, flat):
        return self._join(flat)

    def inputs(self, flat, z, points=None):
        return self._join(flat, (z < 0.5) & tf.not_equal(flat, 0.0))

    def players(self, flat):
        return tf.cast(tf.not_equal(flat, 0.0), tf.float64)

    def constant_base(self):
        return None

    def extras(self, flat) -> dict:
        return {"token_ids": tf.cast(flat, tf.int32)}

    def extras_spec(self) -> dict:
        return {"token_ids": tf.TensorSpec([None, self.length], tf.int32)}

    def explanation_fields(self, data, out: dict) -> dict:
        return {"tokens": self.vocabulary[np.asarray(out["token_ids"])]}


class Composite(Masker):
    """A model with several inputs (a dict or a list of tensors, as the model takes them), one masker per
    input: ``Composite({"numbers": Tabular(bg_numbers), "tokens": Text(mask_token=1)})``. The players
    are the union of the inputs' players, in the inputs' order (feature names ``"input:player"``), and
    one coalition spans all inputs, so efficiency holds over all of them together.

    Inputs whose masker evaluates several rows per coalition (a tabular background of k rows,
    background images) are *joint*: row j of every such input together is one background row (as the
    inputs co-occur in the data), not a cross product, so they must have the same number of rows and
    the same weights; inputs of one row per coalition (a text mask token, a constant image fill) are
    repeated beside them. ``KernelShap(model, {"a": bg_a, "b": Text(...)})`` builds this masker from
    arrays (tabular backgrounds, sharing ``background_weights``) and maskers.

    x is the model's input: a dict with the same keys (or a list of the same length) of arrays
    [n, ...] with the same n. ``exp.values`` [n, players(, outputs)] holds every input's players
    side by side; ``exp.values_by_input`` splits them keyed like the inputs, and ``exp.data`` holds the
    inputs. Per-input extras (an image's ``segments``, text ``tokens``) are not carried."""

    def __init__(self, maskers):
        if isinstance(maskers, dict):
            self.keys, parts, self._is_dict = list(maskers), list(maskers.values()), True
        elif isinstance(maskers, (list, tuple)):
            self.keys, parts, self._is_dict = list(range(len(maskers))), list(maskers), False
        else:
            raise TypeError(f"`maskers` must be a dict or a list of maskers (one per model input), got "
                            f"{type(maskers).__name__}.")
        if not parts:
            raise ValueError("`maskers` is empty: a multi-input model needs one masker per input.")
        for key, part in zip(self.keys, parts):
            if not isinstance(part, Masker) or isinstance(part, (Composite, Points)):
                raise TypeError(f"input {key!r}: expected a tfexplain.maskers masker (Tabular, Image, Text, ...), got "
                                f"{type(part).__name__}.")
        self.parts = parts
        many = {key: p.rows_per_sample for key, p in zip(self.keys, parts) if p.rows_per_sample > 1}
        if len(set(many.values())) > 1:
            raise ValueError(f"the inputs' backgrounds are joint (row j of every input together is one background "
                             f"row), so they need the same number of rows; got {many}.")
        self.rows_per_sample = max([1, *many.values()])
        weights = [np.asarray(p.weights, np.float64) for key, p in zip(self.keys, parts) if key in many]
        if weights and any(not np.allclose(w, weights[0], rtol=1e-6, atol=1e-9) for w in weights):
            raise ValueError("the inputs' background rows are joint, so they need the same weights (pass one "
                             "`background_weights` for all inputs).")
        self.weights = weights[0].astype(np.float32) if weights else None

    def _name(self, key) -> str:
        return str(key)

    @property
    def supports_xla(self) -> bool:
        return all(p.supports_xla for p in self.parts)

    @property
    def exportable(self) -> bool:
        return all(p.exportable for p in self.parts)

    # ---- layout (parts may learn their shapes from the model: see bind) ------------------------------
    @property
    def n_players(self) -> int:
        return sum(p.n_players for p in self.parts)

    @property
    def flat_size(self) -> int:
        return sum(p.flat_size for p in self.parts)

    @property
    def row_floats(self) -> int:
        return sum(p.row_floats for p in self.parts)

    @property
    def instance_floats(self) -> int:
        return sum(p.instance_floats for p in self.parts)

    @property
    def sizes(self) -> list:
        """Players of each input, in order."""
        return [p.n_players for p in self.parts]

    def _spans(self, attr: str):
        start = 0
        for p in self.parts:
            width = getattr(p, attr)
            yield start, start + width
            start += width

    def pack(self, leaves: list):
        """One value per input, in order -> a dict keyed like the inputs (or a list)."""
        return dict(zip(self.keys, leaves)) if self._is_dict else list(leaves)

    def leaves(self, x) -> list:
        """A dict (or list) of the inputs -> one value per input, in order."""
        return [x[k] for k in self.keys]

    @property
    def is_dict(self) -> bool:
        """Whether the model takes its inputs as a dict (else a list)."""
        return self._is_dict

    @property
    def player_names(self) -> list:
        names = []
        for key, p in zip(self.keys, self.parts):
            own = p.player_names or [f"{p.player_prefix}{j}" for j in range(p.n_players)]
            names += [f"{self._name(key)}:{n}" for n in own]
        return names

    @property
    def input_spec(self):
        return self.pack([p.input_spec for p in self.parts])

    def bind(self, model) -> "Composite":
        """A copy whose inputs' maskers are bound to their shapes in ``model`` (a Keras model's ``input``)."""
        declared = None
        try:
            declared = getattr(unwrapped_model(model), "input", None)
        except Exception:  # noqa: BLE001 -- models without a declared input
            declared = None
        bound = copy.copy(self)      # the user's masker and its parts stay as they were
        bound.parts = list(self.parts)
        for i, (key, part) in enumerate(zip(self.keys, self.parts)):
            spec = None
            if isinstance(declared, dict) and key in declared:
                spec = declared[key]
            elif isinstance(declared, (list, tuple)) and not self._is_dict and i < len(declared):
                spec = declared[i]
            shape = getattr(spec, "shape", None)
            try:
                bound.parts[i] = part.bind(_Declared(None if shape is None else tuple(shape)))
            except ValueError as err:
                raise ValueError(f"input {key!r}: {err}") from None
        return bound

    def probe(self):
        probes = [np.asarray(p.probe()) for p in self.parts]
        r = min(2, *(len(a) for a in probes))
        return self.pack([a[:r] for a in probes])

    # ---- boundary ------------------------------------------------------------------------------------
    def check(self, x, name: str = "x"):
        if self._is_dict:
            if not isinstance(x, dict):
                raise TypeError(f"`{name}` must be a dict of the model's inputs {self.keys}, got {type(x).__name__}.")
            missing = [k for k in self.keys if k not in x]
            extra = [k for k in x if k not in self.keys]
            if missing or extra:
                raise ValueError(f"`{name}` must have the model's inputs {self.keys}: "
                                 + "; ".join(([f"missing {missing}"] if missing else [])
                                             + ([f"unexpected {extra}"] if extra else [])) + ".")
        elif not isinstance(x, (list, tuple)) or len(x) != len(self.parts):
            raise TypeError(f"`{name}` must be a list of the model's {len(self.parts)} inputs, got "
                            f"{type(x).__name__}" + (f" of {len(x)}" if isinstance(x, (list, tuple)) else "") + ".")
        leaves = [np.reshape(v, (-1, 1)) if isinstance(p, Tabular) and p.n_players == 1 and np.ndim(v) == 1
                  and frame_columns(v) is None else v      # one feature: a column [n] is [n, 1], as Keras takes it
                  for p, v in zip(self.parts, self.leaves(x))]
        arrays = [p.check(v, f"{name}[{k!r}]") for k, p, v in zip(self.keys, self.parts, leaves)]
        counts = {k: len(a) for k, a in zip(self.keys, arrays)}
        if len(set(counts.values())) > 1:
            raise ValueError(f"`{name}`'s inputs must have the same number of rows (one per instance); got {counts}.")
        return self.pack(arrays)

    def check_rows(self, row_ids) -> None:
        for p in self.parts:
            p.check_rows(row_ids)

    def graph_checks(self, x) -> list:
        return [c for p, v in zip(self.parts, self.leaves(x)) for c in p.graph_checks(v)]

    # ---- graph ---------------------------------------------------------------------------------------
    def flatten(self, x, row_ids):
        return tf.concat([tf.cast(p.flatten(v, row_ids), tf.float32) for p, v in zip(self.parts, self.leaves(x))], 1)

    def instances(self, flat):
        return self.pack([p.instances(flat[:, a:b]) for p, (a, b) in zip(self.parts, self._spans("flat_size"))])

    def inputs(self, flat, z, points=None):
        k = self.rows_per_sample
        leaves = []
        for p, (a, b), (i, j) in zip(self.parts, self._spans("flat_size"), self._spans("n_players")):
            rows = p.inputs(flat[:, a:b], z[:, i:j])
            leaves.append(tf.repeat(rows, k, axis=0) if p.rows_per_sample == 1 and k > 1 else rows)
        return self.pack(leaves)

    def reduce(self, y):
        if self.rows_per_sample == 1:
            return y
        y = tf.reshape(y, [-1, self.rows_per_sample, y.shape[-1]])
        return tf.einsum("pko,k->po", y, tf.constant(self.weights))

    def players(self, flat):
        return tf.concat([p.players(flat[:, a:b]) for p, (a, b) in zip(self.parts, self._spans("flat_size"))], 1)

    def constant_base(self):
        bases = [p.constant_base() for p in self.parts]
        if any(b is None for b in bases):
            return None
        k = self.rows_per_sample
        leaves = [np.asarray(rows) if p.rows_per_sample > 1 else np.repeat(np.asarray(rows)[:1], k, axis=0)
                  for p, (rows, _) in zip(self.parts, bases)]
        weights = self.weights if self.weights is not None else np.ones(1, np.float32)
        return self.pack(leaves), weights

    def explanation_fields(self, data, out: dict) -> dict:
        return {"inputs": list(self.keys), "input_players": self.sizes}


class _Declared:
    """An input's declared shape, for a part's ``bind`` (which reads ``input_shape``)."""

    def __init__(self, shape):
        self.input_shape = shape


def unwrapped_model(model):
    """A Keras model's bound ``predict`` / ``predict_on_batch`` -> the model; anything else as it is."""
    owner = getattr(model, "__self__", None)
    if owner is not None and getattr(model, "__name__", None) in ("predict", "predict_on_batch"):
        return owner
    return model


def _model_input_shape(model):
    """The input shape a model declares (Keras ``input_shape`` / ``inputs``, a ``tf.function``'s or a
    module's ``__call__`` input signature), or None."""
    model = getattr(model, "__self__", None) if getattr(model, "__name__", None) in ("predict", "predict_on_batch") \
        and getattr(model, "__self__", None) is not None else model
    try:
        shape = getattr(model, "input_shape", None)
    except Exception:  # noqa: BLE001 -- Keras raises for models without a defined input
        shape = None
    if shape is None:
        try:
            inputs = getattr(model, "inputs", None)
            shape = inputs[0].shape if inputs else None
        except Exception:  # noqa: BLE001
            shape = None
    if shape is None:
        for fn in (model, getattr(model, "__call__", None)):
            spec = getattr(fn, "input_signature", None)
            if isinstance(spec, (list, tuple)) and len(spec) == 1 and isinstance(spec[0], tf.TensorSpec):
                shape = spec[0].shape
                break
    if shape is None:
        signature = getattr(model, "structured_input_signature", None)
        if signature is not None and len(signature[0]) == 1 and isinstance(signature[0][0], tf.TensorSpec):
            shape = signature[0][0].shape
    if isinstance(shape, tf.TensorShape):
        shape = tuple(shape.as_list()) if shape.rank is not None else None
    return shape


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def _slic_grid(h: int, w: int, k: int):
    """(rows, cols) of the starting grid: rows x cols <= k cells, shaped like the image."""
    rows = max(1, min(h, int(round(np.sqrt(k * h / w)))))
    cols = max(1, min(w, k // rows))
    return rows, cols


def slic(images, n_segments: int, iterations: int = 10, compactness: float = 1.0):
    """SLIC-style superpixels (Achanta et al. 2012) of images [n, H, W, C], in-graph: k-means over
    (colour, y, x) with colour in units of the image's standard deviation and position scaled by
    compactness / S (S the grid step), centres started on a grid of at most ``n_segments`` cells,
    each pixel compared with the centres within 2S, a fixed number of iterations, one image at a time
    (distances [HW, K]). No connectivity pass. Returns ids [n, H, W] int32 in [0, n_segments)."""
    _, h, w, c = images.shape
    rows, cols = _slic_grid(h, w, n_segments)
    k = rows * cols
    step = float(np.sqrt(h * w / k))
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    pos = np.stack([yy.ravel(), xx.ravel()], -1) * (compactness / step)                  # [HW, 2]
    cy = ((np.arange(rows) + 0.5) * h / rows).astype(np.int64)
    cx = ((np.arange(cols) + 0.5) * w / cols).astype(np.int64)
    seeds = (cy[:, None] * w + cx[None, :]).ravel()                                       # [K] pixel index
    near = np.abs(pos[:, None, :] - pos[seeds][None, :, :]).max(-1) <= 2.0 * compactness + 1e-6  # within 2S
    far = tf.constant(np.where(near, 0.0, np.inf).astype(np.float32))                   # [HW, K]
    pos_t = tf.constant(pos)

    def one(img):
        colour = tf.reshape(img, [h * w, c])
        colour = (colour - tf.reduce_mean(colour, 0)) / (tf.math.reduce_std(colour) + 1e-6)
        feats = tf.concat([colour, pos_t], 1)                                             # [HW, F]
        centres = tf.gather(feats, seeds)                                                 # [K, F]

        def assign(centres):
            d = tf.reduce_sum(tf.square(feats[:, None, :] - centres[None]), -1) + far
            return tf.argmin(d, axis=1, output_type=tf.int32)

        def body(i, centres):
            ids = assign(centres)
            total = tf.math.unsorted_segment_sum(feats, ids, k)
            count = tf.math.unsorted_segment_sum(tf.ones([h * w, 1]), ids, k)
            return i + 1, tf.where(count > 0, total / tf.maximum(count, 1.0), centres)

        _, centres = tf.while_loop(lambda i, _: i < iterations, body, (tf.constant(0), centres),
                                   maximum_iterations=iterations)
        return tf.reshape(assign(centres), [h, w])

    return tf.map_fn(one, tf.cast(images, tf.float32), fn_output_signature=tf.TensorSpec([h, w], tf.int32))
