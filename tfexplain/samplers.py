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
    aux: None, or a dict of per-instance tensors a sampler passes on to its own bootstrap
       (``KernelSampler.replicate_weights``).
    """

    z: tf.Tensor
    weights: Optional[tf.Tensor]
    points: Optional[tf.Tensor]
    aux: Optional[dict] = None


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


def random_subsets(u: tf.Tensor, sizes) -> tf.Tensor:
    """Uniform random subsets: u [..., d] uniforms, sizes a Python int or an int tensor [...] -> {0,1}
    float [..., d] with exactly ``sizes`` ones: the features holding the ``sizes`` smallest keys, ties
    broken by index. Found through the size-th smallest key (``top_k`` for a static size, one sort
    otherwise) and a cumulative count of the ties, not by ranking every key (two sorts)."""
    if isinstance(sizes, (int, np.integer)):
        if sizes == 0:
            return tf.zeros_like(u)
        kth = -tf.math.top_k(-u, int(sizes), sorted=True).values[..., -1:]
        sizes = tf.constant(int(sizes), tf.int32)
    else:
        sizes = tf.cast(sizes, tf.int32)
        position = tf.maximum(sizes - 1, 0)[..., None]
        kth = tf.gather(tf.sort(u, axis=-1), position, batch_dims=position.shape.rank - 1)
        kth = tf.where(sizes[..., None] > 0, kth, tf.fill(tf.shape(kth), -1.0))
        sizes = sizes[..., None]
    below = u < kth
    tie = tf.equal(u, kth)
    need = sizes - tf.reduce_sum(tf.cast(below, tf.int32), -1, keepdims=True)
    take = tie & (tf.cumsum(tf.cast(tie, tf.int32), axis=-1) <= need)
    return tf.cast(below | take, tf.float32)


class BootstrapPlan:
    """Static description of a stratified Rao-Wu rescaling bootstrap over sampled coalition pairs.

    pair_ids [m]: the resampling unit of each sample (a coalition and its complement share one);
    strata: (first unit, units in the stratum n_h, sampling fraction f_h). A stratum with n_h >= 2 and
    f_h < 1 is resampled by drawing n_h - 1 of its units with replacement; unit weights are rescaled by
    1 - lam + lam * n_h / (n_h - 1) * count with lam = sqrt(1 - f_h) (Rao & Wu 1988, with the
    finite-population correction). Other units keep weight 1.
    """

    def __init__(self, pair_ids, n_units, strata):
        self.pair_ids = np.asarray(pair_ids, np.int32)
        self.n_units = int(n_units)
        self.lam = np.zeros(self.n_units, np.float64)
        self.scale = np.ones(self.n_units, np.float64)
        starts, sizes = [], []
        for first, n, f in strata:
            if n >= 2 and f < 1.0:
                self.lam[first:first + n] = np.sqrt(1.0 - f)
                self.scale[first:first + n] = n / (n - 1.0)
                starts += [first] * (n - 1)
                sizes += [n] * (n - 1)
        self.draw_start = np.asarray(starts, np.int32)
        self.draw_size = np.asarray(sizes, np.int32)

    @property
    def active(self) -> bool:
        return len(self.draw_start) > 0

    def multipliers(self, key, rows, n_boot: int, rescale: bool = True):
        """Per-unit weight multipliers [c, n_boot, n_units] from each row's own stream. With
        ``rescale=False`` resampled units get n_h / (n_h - 1) * count (a unit left out gets 0): the plain
        bootstrap, for estimators that (nearly) interpolate their samples and so ignore reweighting."""
        draws = len(self.draw_start)
        c = tf.shape(rows)[0]
        u = _random.uniform(key, rows, (n_boot, draws))
        idx = tf.constant(self.draw_start) + tf.minimum(
            tf.cast(u * tf.cast(tf.constant(self.draw_size), tf.float32), tf.int32), tf.constant(self.draw_size) - 1)
        replicate = tf.reshape(tf.range(c * n_boot), [c, n_boot, 1])
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(idx, tf.float64), replicate * self.n_units + idx, c * n_boot * self.n_units)
        counts = tf.reshape(counts, [c, n_boot, self.n_units])
        lam, scale = tf.constant(self.lam), tf.constant(self.scale)
        if not rescale:
            lam = tf.cast(lam > 0, tf.float64)
        return 1.0 - lam + lam * scale * counts


def water_fill(caps, total):
    """Level c with sum(min(c, caps)) = total (caps sorted or not); returns the per-entry targets."""
    caps = np.asarray(caps, np.float64)
    if caps.size == 0:
        return caps
    order = np.sort(caps)
    left, n = float(total), len(caps)
    level = 0.0
    for i, cap in enumerate(order):
        if cap * (n - i) >= left:
            level = left / (n - i)
            break
        left -= cap
    else:
        level = order[-1]
    return np.minimum(caps, level)


def largest_remainder(targets, total, caps):
    """Integers close to ``targets`` summing to ``total`` (never above ``caps``)."""
    base = np.floor(targets + 1e-9).astype(np.int64)
    base = np.minimum(base, caps)
    rest = int(total - base.sum())
    order = np.argsort(-(targets - base), kind="stable")
    for i in order:
        if rest <= 0:
            break
        if base[i] < caps[i]:
            base[i] += 1
            rest -= 1
    return base


ENUMERATION_CAP = 4096  # sample without replacement by random keys over at most this many sets


class LeverageSampler:
    """Paired leverage-score sampling of coalitions (Musco & Witter, ICLR 2025).

    The leverage scores of the Shapley regression are uniform over coalition sizes, so every size
    1..d-1 gets the same expected number of coalitions, capped at C(d, s) ("water filling"; a capped
    size is enumerated). Integer pair counts per size are fixed on the host (largest remainder). Each
    sampled set comes with its complement; for even d the middle layer is drawn through the sets that
    contain the last player, so a set and its complement can't both be drawn twice. Within a size,
    sets are drawn without replacement (random keys over all sets) when there are at most
    ``ENUMERATION_CAP`` of them, else with replacement (duplicates then have negligible probability).
    Weights: w_S = mu(s) / pi_s with mu(s) = 1 / (C(d,s) s (d-s)) and pi_s the inclusion probability
    from the counts actually drawn. ``n_samples >= 2^d - 2`` enumerates everything (exact).
    """

    def __init__(self, n_features: int, n_samples: int):
        d = self.n_features = n_features
        full = 2**d - 2 if d < 63 else None
        if full is not None and n_samples >= full:
            n_samples = full
        half = d // 2
        classes = list(range(1, (d + 1) // 2))           # s < d/2 (complement has size d - s)
        middle = d % 2 == 0 and d >= 2
        populations = [comb(d, s) for s in classes] + ([comb(d, half) // 2] if middle else [])
        sizes = classes + ([half] if middle else [])
        per_size = water_fill([comb(d, s) for s in range(1, d)], n_samples)   # expected sets per size
        targets = np.array([per_size[s - 1] for s in classes] + ([per_size[half - 1] / 2] if middle else []))
        caps = np.array(populations, np.int64)
        counts = largest_remainder(targets, min(n_samples // 2, int(caps.sum())), caps)
        self.classes = []
        weights, pair_ids, strata = [], [], []
        unit = 0
        for s, pop, k in zip(sizes, populations, counts):
            k = int(k)
            if k == 0:
                continue
            is_middle = middle and s == half
            w = 1.0 / ((2 * k if is_middle else k) * s * (d - s))
            kind = "full" if k == pop else "without_replacement" if pop <= ENUMERATION_CAP else "with_replacement"
            table = None
            if kind != "with_replacement":  # every canonical set of this size, on the host
                if is_middle:  # the sets holding the last player
                    sets = all_coalitions(d - 1, [s - 1])
                    table = np.concatenate([sets, np.ones((len(sets), 1), np.float32)], 1)
                else:
                    table = all_coalitions(d, [s])
            self.classes.append((s, k, kind, table, is_middle))
            weights += [w] * (2 * k)
            pair_ids += list(range(unit, unit + k)) * 2
            strata.append((unit, k, k / pop if kind != "with_replacement" else 0.0))
            unit += k
        self.n_samples = len(weights)
        self.weights = np.asarray(weights, np.float32)
        self.exact = full is not None and self.n_samples == full
        self.bootstrap = BootstrapPlan(pair_ids, unit, strata)
        self.n_keys = max(1, len(self.classes))  # one stream key per size class

    def __call__(self, keys, rows, x) -> Sample:
        c = tf.shape(x)[0]
        d = self.n_features
        blocks = []
        for i, (s, k, kind, table, is_middle) in enumerate(self.classes):
            if kind == "full":
                sets = tf.tile(tf.constant(table)[None], [c, 1, 1])
            elif kind == "without_replacement":
                u = _random.uniform(keys[i], rows, (len(table),))
                _, idx = tf.math.top_k(u, k)
                sets = tf.gather(tf.constant(table), idx)
            else:
                width = d - 1 if is_middle else d
                u = _random.uniform(keys[i], rows, (k, width))
                sets = random_subsets(u, s - 1 if is_middle else s)
                if is_middle:
                    sets = tf.concat([sets, tf.ones([c, k, 1])], -1)
            blocks += [sets, 1.0 - sets]
        z = tf.concat(blocks, axis=1) if blocks else tf.zeros([c, 0, d])
        return Sample(z, tf.constant(self.weights), None)


_WORD_BITS = 63  # features per int64 word of a packed coalition (bit 63, the sign, stays clear)


def pack_masks(masks) -> tf.Tensor:
    """{0,1} masks [..., d] -> int64 words [..., ceil(d / 63)]: bit k of word w is feature 63 w + k.
    Two masks are equal exactly when their words are (any d)."""
    d = masks.shape[-1]
    words = []
    for start in range(0, d, _WORD_BITS):
        part = masks[..., start:start + _WORD_BITS]
        powers = tf.constant([2**k for k in range(part.shape[-1])], tf.int64)
        words.append(tf.reduce_sum(tf.cast(part > 0.5, tf.int64) * powers, -1))
    return tf.stack(words, -1)


def first_occurrences(words) -> tf.Tensor:
    """words [c, T, W] (packed masks, :func:`pack_masks`) -> int32 [c, T]: for each candidate the index
    of the first candidate with the same mask (its own index when it is new). Exact: the candidates are
    sorted lexicographically by their words (stable sorts from the last word to the first, so equal
    masks keep their draw order), equal neighbours form a group, and a group's first member is its
    smallest index."""
    c, n = tf.shape(words)[0], words.shape[1]
    order = tf.broadcast_to(tf.range(n), [c, n])
    for w in reversed(range(words.shape[-1])):
        key = tf.gather(words[..., w], order, batch_dims=1)
        order = tf.gather(order, tf.argsort(key, axis=-1, stable=True), batch_dims=1)
    ordered = tf.gather(words, order, batch_dims=1)
    start = tf.concat([tf.ones([c, 1], tf.bool),
                       tf.reduce_any(tf.not_equal(ordered[:, 1:], ordered[:, :-1]), -1)], 1)
    offset = tf.range(c)[:, None] * n
    group = tf.cumsum(tf.cast(start, tf.int32), axis=1) - 1 + offset          # [c, T], flat group ids
    first = tf.math.unsorted_segment_min(order, group, c * n)                  # smallest index per group
    rep_sorted = tf.gather(first, group)
    rep = tf.math.unsorted_segment_sum(rep_sorted, order + offset, c * n)    # back to draw order
    return tf.reshape(rep, [c, n])


class KernelSampler:
    """shap's KernelExplainer scheme (``shap.KernelExplainer.explain``), vectorized with static shapes.

    As in shap: coalition sizes are weighted by the Shapley kernel; sizes (with their complements, the
    middle size of an even d alone) whose share of the budget covers them are enumerated on the host,
    each coalition followed by its complement; the ``L`` coalitions left are random: ``T = 4 L``
    candidate (size, subset) draws, a size from shap's probabilities (kernel weight of the size, halved
    for paired sizes, over the sizes not enumerated), then a uniform subset of it. Candidates are
    processed in draw order until ``L`` coalitions are in: a new subset is added, followed by its
    complement for a paired size if the budget has room left (so an odd budget is honoured exactly and
    the last complement may be dropped); a repeated subset adds one to its first occurrence's count and
    its complement's. The random coalitions' weights are their counts, rescaled to sum to the kernel
    weight the enumerated sizes leave. So coalitions are distinct, and the weights and the
    distribution of what is drawn are shap's; the random numbers are not (Threefry per row, subsets as
    the ``s`` smallest of ``d`` uniform keys rather than ``np.random.permutation``). When the budget
    covers all 2^d - 2 coalitions, everything is enumerated: exact Shapley values.

    In the graph all ``T`` candidates are drawn at once; repeats are found exactly by sorting the
    candidates' packed masks (:func:`first_occurrences`), and a cumulative sum of each new candidate's
    cost (1 or 2 rows) gives the cut-off where the budget is used up. Differences from shap: when the
    ``T`` candidates hold fewer than ``L`` coalitions (tiny, nearly enumerated spaces), shap's design
    has fewer rows; here the ``n_samples`` rows stay, the unfilled ones as empty coalitions with weight
    0 (no effect on the estimate, but the model still evaluates them: ``n_evals`` counts them).
    Weights are per instance: ``Sample.weights`` [c, m]. ``Sample.aux`` carries what
    :meth:`replicate_weights` (the bootstrap over the draws) needs.
    """

    n_keys = 2

    def __init__(self, n_features: int, n_samples: int):
        d = self.n_features = n_features
        full = 2**d - 2 if d < 63 else None
        if full is not None and n_samples >= full:
            n_samples = full
        n_sizes = (d - 1 + 1) // 2              # sizes 1..ceil((d-1)/2); their complements are the rest
        n_paired = self.n_paired = (d - 1) // 2
        sizes = np.arange(1, n_sizes + 1)
        weight = (d - 1) / (sizes * (d - sizes)).astype(np.float64)
        weight[:n_paired] *= 2
        weight /= weight.sum()

        fixed, fixed_w = [], []
        left = int(n_samples)
        remaining = weight.copy()
        n_full = 0
        for s in sizes:
            paired = s <= n_paired
            count = comb(d, int(s)) * (2 if paired else 1)
            if left * remaining[s - 1] / count < 1.0 - 1e-8:
                break
            n_full += 1
            left -= count
            if remaining[s - 1] < 1.0:
                remaining /= 1.0 - remaining[s - 1]
            per = weight[s - 1] / comb(d, int(s)) / (2 if paired else 1)
            z = all_coalitions(d, [int(s)])
            fixed.append(np.stack([z, 1.0 - z], 1).reshape(-1, d) if paired else z)  # set, complement, ...
            fixed_w.append(np.full(count, per))
        self.fixed = np.concatenate(fixed, 0) if fixed else np.zeros((0, d), np.float32)
        self.fixed_weights = (np.concatenate(fixed_w) if fixed_w else np.zeros(0)).astype(np.float32)
        self.exact = n_full == n_sizes
        self.n_random = 0 if self.exact else left                       # L
        self.n_draws = 4 * self.n_random                                 # T candidates, as shap
        self.first_random_size = n_full + 1
        if self.n_random:
            p = weight.copy()
            p[:n_paired] /= 2                                            # two coalitions per paired draw
            p = p[n_full:] / p[n_full:].sum()
            self.size_probabilities = p
            self.size_cdf = np.cumsum(p)[:-1].astype(np.float32)
            self.weight_left = float(weight[n_full:].sum())
        else:
            self.size_probabilities = np.zeros(0)
            self.size_cdf = np.zeros(0, np.float32)
            self.weight_left = 0.0
        self.n_samples = len(self.fixed) + self.n_random

    @property
    def draw_floats(self) -> int:
        """Floats one instance holds while its candidates are drawn and deduplicated (keys, their sort,
        the masks)."""
        return 3 * self.n_draws * self.n_features

    def replicate_floats(self, n_boot: int) -> int:
        """Floats one instance holds in :meth:`replicate_weights` and the replicate solves
        (float64 weighted designs [B, m, d + 1])."""
        return n_boot * (4 * self.n_draws + 2 * self.n_samples * (self.n_features + 1))

    def __call__(self, keys, rows, x) -> Sample:
        c = tf.shape(x)[0]
        n_fixed = len(self.fixed)
        fixed = tf.tile(tf.constant(self.fixed)[None], [c, 1, 1])
        fixed_w = tf.tile(tf.constant(self.fixed_weights)[None], [c, 1])
        if not self.n_random:
            return Sample(fixed, fixed_w, None)
        L, T, d = self.n_random, self.n_draws, self.n_features
        u_size = _random.uniform(keys[0], rows, (T,))
        sizes = self.first_random_size + tf.reduce_sum(
            tf.cast(u_size[..., None] >= tf.constant(self.size_cdf), tf.int32), -1)          # [c, T]
        masks = random_subsets(_random.uniform(keys[1], rows, (T, d)), sizes)                 # [c, T, d]
        rep = first_occurrences(pack_masks(masks))
        new = tf.equal(rep, tf.range(T))
        paired = sizes <= self.n_paired
        cost = tf.cast(new, tf.int32) * (1 + tf.cast(paired, tf.int32))  # rows a candidate adds
        before = tf.cumsum(cost, axis=1, exclusive=True)                 # rows in before it
        processed = before < L                                           # shap's loop reaches it
        n_processed = tf.reduce_sum(tf.cast(processed, tf.int32), 1)
        offset = tf.range(c)[:, None]
        counts = tf.reshape(tf.math.unsorted_segment_sum(                # draws of each first occurrence
            tf.cast(processed, tf.float32), rep + offset * T, c * T), [c, T])
        # output row of each new candidate (position `before`) and of its complement (`before + 1`)
        dump = c * L
        first = tf.where(new & processed, offset * L + before, dump)
        second = tf.where(new & processed & paired & (before + 1 < L), offset * L + before + 1, dump)
        draw_ids = tf.broadcast_to(tf.range(T), [c, T])
        source = tf.math.unsorted_segment_max(
            tf.concat([2 * draw_ids + 1, 2 * draw_ids + 2], 1), tf.concat([first, second], 1), dump + 1)
        source = tf.reshape(tf.maximum(source[:dump], 0), [c, L])       # 0: row left unfilled
        filled = source > 0
        draw = tf.maximum(source - 1, 0) // 2
        z = tf.gather(masks, draw, batch_dims=1)
        z = tf.where((source % 2 == 0)[..., None], 1.0 - z, z) * tf.cast(filled, tf.float32)[..., None]
        raw = tf.gather(counts, draw, batch_dims=1) * tf.cast(filled, tf.float32)
        w = raw * (self.weight_left / tf.maximum(tf.reduce_sum(raw, 1, keepdims=True), 1e-30))
        aux = {"rep": rep, "processed": n_processed, "draw": draw, "filled": filled}
        return Sample(tf.concat([fixed, z], 1), tf.concat([fixed_w, w], 1), None, aux)

    def replicate_weights(self, key, rows, aux, n_boot: int) -> tf.Tensor:
        """Bootstrap over the draws: per instance, the P candidate draws its sample processed (i.i.d.
        in shap's scheme, repeats included) are resampled P times with replacement from the row's own
        stream; a random coalition's replicate weight is proportional to its draws among the resampled
        ones (complements with their sets), rescaled to the same kernel weight left; enumerated
        coalitions keep their weights. Returns [c, n_boot, m] float32 (a coalition no resampled draw
        hits gets 0)."""
        c = tf.shape(rows)[0]
        fixed = tf.tile(tf.constant(self.fixed_weights)[None, None], [c, n_boot, 1])
        if not self.n_random:
            return fixed
        T = self.n_draws
        p = aux["processed"][:, None, None]                                           # [c, 1, 1]
        u = _random.uniform(key, rows, (n_boot, T))
        pick = tf.minimum(tf.cast(u * tf.cast(p, tf.float32), tf.int32), p - 1)      # [c, B, T]
        live = tf.range(T) < p                                                        # P draws each
        rep = tf.gather(aux["rep"], pick, batch_dims=1)
        replicate = tf.reshape(tf.range(c * n_boot), [c, n_boot, 1])
        counts = tf.reshape(tf.math.unsorted_segment_sum(
            tf.cast(live & tf.ones_like(rep, tf.bool), tf.float32), replicate * T + rep, c * n_boot * T),
            [c, n_boot, T])
        draw = tf.tile(aux["draw"][:, None], [1, n_boot, 1])
        raw = tf.gather(counts, draw, batch_dims=2) * tf.cast(aux["filled"], tf.float32)[:, None]
        w = raw * (self.weight_left / tf.maximum(tf.reduce_sum(raw, -1, keepdims=True), 1e-30))
        return tf.concat([fixed, w], -1)


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
        x_std = (x - mean) / std
        if len(self.cat_columns):
            n_cat, width = self.cat_values.shape
            u = _random.uniform(keys[1], rows, (m - 1, n_cat))
            idx = tf.reduce_sum(tf.cast(u[..., None] >= tf.constant(self.cat_cdf), tf.int32), -1)
            slots = tf.range(n_cat) * width + tf.minimum(idx, width - 1)      # into the flat value table
            drawn = tf.gather(tf.reshape(tf.constant(self.cat_values), [-1]), slots)
            drawn_full = tf.gather(drawn, tf.constant(self.col_slot), axis=-1)
            is_cat = tf.constant(self.is_cat)
            points = tf.where(is_cat, drawn_full, points)
            z = tf.where(is_cat, tf.cast(tf.equal(drawn_full, x[:, None, :]), tf.float32), z)
            x_std = tf.where(is_cat, tf.ones_like(x), x_std)
        z = tf.concat([x_std[:, None, :], z], axis=1)
        points = tf.concat([x[:, None, :], points], axis=1)
        return Sample(z, None, points)
