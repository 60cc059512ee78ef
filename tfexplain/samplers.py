"""Samplers: which coalitions / perturbations an explainer evaluates.

A sampler is built on the host (static shapes: its sample count ``n_samples`` is fixed) and called in
the graph as ``sampler(keys, rows, x) -> Sample`` for a chunk of instances ``x`` [c, d] whose global
row indices are ``rows`` [c]. Every random number a sampler draws comes from :mod:`tfexplain._random`,
so row r's samples depend on (seed, r) only.
"""

from __future__ import annotations

import itertools
from math import comb
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from . import _random


class Sample(NamedTuple):
    """What a sampler returns for a chunk of c instances and m samples each.

    z: [c, m, p] interpretable representation the surrogate is fitted on (coalitions in {0, 1} for
       SHAP, standardized perturbations for LIME).
    weights: [m] or [c, m] prior sample weights (Shapley kernel weights), or None.
    points: [c, m, d] model-space points when the sampler makes them itself (LIME), else None: then a
       masker turns (x, z) into model input.
    """

    z: tf.Tensor
    weights: Optional[tf.Tensor]
    points: Optional[tf.Tensor]


def shapley_kernel_weight(d: int, s: np.ndarray) -> np.ndarray:
    """Shapley kernel pi(s) = (d - 1) / (C(d, s) s (d - s)) for coalition sizes 0 < s < d."""
    s = np.asarray(s, dtype=np.float64)
    binom = np.array([comb(d, int(v)) for v in np.ravel(s)], dtype=np.float64).reshape(s.shape)
    return (d - 1) / (binom * s * (d - s))


def all_coalitions(d: int, sizes=None) -> np.ndarray:
    """Every coalition of the given sizes (default 1..d-1), as a float32 {0,1} matrix."""
    sizes = range(1, d) if sizes is None else sizes
    rows = []
    for s in sizes:
        for idx in itertools.combinations(range(d), s):
            row = np.zeros(d, np.float32)
            row[list(idx)] = 1.0
            rows.append(row)
    return np.array(rows, np.float32).reshape(-1, d)


def random_subsets(u: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
    """Uniform random subsets: u [..., d] uniforms, sizes [...] ints -> {0,1} float [..., d] with exactly
    ``sizes`` ones (the features holding the ``size`` smallest keys; ties broken by index)."""
    rank = tf.argsort(tf.argsort(u, axis=-1, stable=True), axis=-1, stable=True)
    return tf.cast(rank < tf.cast(sizes, rank.dtype)[..., None], tf.float32)


class KernelSampler:
    """shap's KernelExplainer scheme, with static shapes.

    Coalition sizes are weighted by the Shapley kernel; sizes (with their complements) whose share of
    the budget covers them are enumerated completely on the host, the rest of the budget is drawn as
    complementary pairs: a size from the remaining kernel mass, then a uniform subset of that size.
    Random samples share the remaining kernel mass equally (shap counts duplicates the same way). When
    the budget covers all 2^d - 2 coalitions, everything is enumerated: exact Shapley values.
    """

    n_keys = 2

    def __init__(self, n_features: int, n_samples: int):
        d = self.n_features = n_features
        full = 2**d - 2 if d < 63 else None
        if full is not None and n_samples >= full:
            n_samples = full
        n_sizes = (d - 1 + 1) // 2              # sizes 1..ceil((d-1)/2); their complements are the rest
        n_paired = (d - 1) // 2
        sizes = np.arange(1, n_sizes + 1)
        weight = (d - 1) / (sizes * (d - sizes)).astype(np.float64)
        weight[:n_paired] *= 2
        weight /= weight.sum()

        fixed, fixed_w = [], []
        left = float(n_samples)
        remaining = weight.copy()
        n_full = 0
        for s in sizes:
            count = comb(d, int(s)) * (2 if s <= n_paired else 1)
            if left * remaining[s - 1] / count < 1.0 - 1e-8:
                break
            n_full += 1
            left -= count
            if remaining[s - 1] < 1.0:
                remaining /= 1.0 - remaining[s - 1]
            per = weight[s - 1] / comb(d, int(s)) / (2 if s <= n_paired else 1)
            z = all_coalitions(d, [int(s)])
            fixed.append(z)
            if s <= n_paired:
                fixed.append(1.0 - z)
            fixed_w.append(np.full(count, per))
        self.fixed = np.concatenate(fixed, 0) if fixed else np.zeros((0, d), np.float32)
        self.fixed_weights = np.concatenate(fixed_w) if fixed_w else np.zeros(0)
        self.n_pairs = 0 if n_full == n_sizes else int(left) // 2
        self.first_random_size = n_full + 1
        if self.n_pairs:
            p = weight[n_full:] / weight[n_full:].sum()
            self.size_cdf = np.cumsum(p)[:-1].astype(np.float32)
            random_w = np.full(2 * self.n_pairs, weight[n_full:].sum() / (2 * self.n_pairs))
        else:
            self.size_cdf = np.zeros(0, np.float32)
            random_w = np.zeros(0)
        self.exact = self.n_pairs == 0 and n_full == n_sizes
        self.n_samples = len(self.fixed) + 2 * self.n_pairs
        self.weights = np.concatenate([self.fixed_weights, random_w]).astype(np.float32)

    def __call__(self, keys, rows, x) -> Sample:
        c = tf.shape(x)[0]
        fixed = tf.tile(tf.constant(self.fixed)[None], [c, 1, 1])
        if not self.n_pairs:
            return Sample(fixed, tf.constant(self.weights), None)
        u_size = _random.uniform(keys[0], rows, (self.n_pairs,))
        offset = tf.reduce_sum(tf.cast(u_size[..., None] >= tf.constant(self.size_cdf), tf.int32), -1)
        sizes = self.first_random_size + offset
        subsets = random_subsets(_random.uniform(keys[1], rows, (self.n_pairs, self.n_features)), sizes)
        z = tf.concat([fixed, subsets, 1.0 - subsets], axis=1)
        return Sample(z, tf.constant(self.weights), None)


class GaussianTabularSampler:
    """lime's LimeTabularExplainer sampling (``discretize_continuous=False``, ``sample_around_instance=False``).

    Continuous features: N(0, 1) draws mapped to ``z * std + mean`` of the training data; categorical
    features: values drawn from their training frequencies, represented for the surrogate as
    1{value == instance's value}. Row 0 of every instance's sample is the instance itself.
    """

    n_keys = 2

    def __init__(self, mean, std, n_samples: int, categorical=None):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.n_features = d = len(self.mean)
        self.n_samples = n_samples
        categorical = categorical or {}
        self.cat_columns = np.array(sorted(categorical), np.int64)
        is_cat = np.zeros(d, bool)
        is_cat[self.cat_columns] = True
        self.is_cat = is_cat
        if len(self.cat_columns):
            width = max(len(categorical[j][0]) for j in self.cat_columns)
            values = np.zeros((len(self.cat_columns), width), np.float32)
            cdf = np.ones((len(self.cat_columns), width), np.float32)
            for i, j in enumerate(self.cat_columns):
                vals, freqs = categorical[j]
                values[i, : len(vals)] = vals
                c = np.cumsum(np.asarray(freqs, np.float64) / np.sum(freqs))
                c[-1] = 1.0
                cdf[i, : len(vals)] = c
            self.cat_values, self.cat_cdf = values, cdf
            # column j of the full matrix reads column col_slot[j] of the categorical draw
            self.col_slot = np.zeros(d, np.int64)
            self.col_slot[self.cat_columns] = np.arange(len(self.cat_columns))

    def __call__(self, keys, rows, x) -> Sample:
        m, d = self.n_samples, self.n_features
        mean, std = tf.constant(self.mean), tf.constant(self.std)
        z = _random.normal(keys[0], rows, (m - 1, d))
        points = z * std + mean
        if len(self.cat_columns):
            u = _random.uniform(keys[1], rows, (m - 1, len(self.cat_columns)))
            idx = tf.reduce_sum(tf.cast(u[..., None] >= tf.constant(self.cat_cdf), tf.int32), -1)
            width = self.cat_values.shape[1]
            idx = tf.minimum(idx, width - 1)
            flat = tf.reshape(idx, [-1, len(self.cat_columns)])
            slots = tf.range(len(self.cat_columns))[None, :] * width + flat
            drawn = tf.reshape(tf.gather(tf.reshape(tf.constant(self.cat_values), [-1]), slots), tf.shape(idx))
            drawn_full = tf.gather(drawn, tf.constant(self.col_slot), axis=-1)
            is_cat = tf.constant(self.is_cat)
            points = tf.where(is_cat, drawn_full, points)
            same = tf.cast(tf.equal(drawn_full, x[:, None, :]), tf.float32)
            z = tf.where(is_cat, same, z)
        x_std = (x - mean) / std
        if len(self.cat_columns):
            x_std = tf.where(tf.constant(self.is_cat), tf.ones_like(x), x_std)
        z = tf.concat([x_std[:, None, :], z], axis=1)
        points = tf.concat([x[:, None, :], points], axis=1)
        return Sample(z, None, points)
