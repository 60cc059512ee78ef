"""Surrogate solvers: attributions out of evaluations. Pure functions of tensors, batched over
instances and outputs, solved in float64 by Cholesky (small d x d systems; XLA-compilable).

- :func:`shapley_wls`: KernelSHAP's weighted least squares with the efficiency constraint enforced
  exactly (projection onto sum(phi) = v(full) - v(empty)).
- :func:`weighted_ridge` (+ :func:`weighted_moments`, merged over pieces by :func:`merge_moments`): lime's surrogate (Ridge with intercept and
  sample weights), with its weighted R^2 and local prediction; :func:`forward_selection` and
  :func:`highest_weights` choose features the way lime does.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from . import _xla
from ._lanes import elementwise

_F64 = tf.float64
_JITTER = 1e-10
_NEGLIGIBLE = float(np.log(1e-30))
_CANCELLATION = 1e3   # shared_moments: float32 sums keep ~1e-7 * this of the spread


@contextlib.contextmanager
def compiled_solves(enabled: bool = True):
    """While tracing a graph XLA will compile: factor and solve the small SPD systems with graph loops
    over their columns (:func:`_loop_cholesky`, :func:`_loop_substitute`; in blocks of 32 columns
    above that, :func:`_xla_factor`) rather than XLA's Cholesky and triangular-solve expanders, which
    unroll into hundreds of kernels (each compiled on its own: 10-25 s of compile time at d = 30) and
    run batched small factorizations about 10x slower on CPUs (the bootstrap factors 32 systems per
    instance). The program grows with the blocks (one loop body each), not with the columns.
    (``_xla.tracing``: every part that has an XLA form uses it.) Only inside a function XLA compiles:
    the factorization writes its columns with XLA's dynamic update slice, which has no TensorFlow
    kernel."""
    with _xla.tracing(enabled):
        yield


def _loop(body, p, state, reverse=False):
    """``state = body(j, state)`` for j = 0, ..., p - 1 (p - 1, ..., 0 with ``reverse``) as one graph loop."""
    start, step = (p - 1, -1) if reverse else (0, 1)
    _, out = tf.while_loop(lambda j, _: (j >= 0) & (j < p), lambda j, s: (j + step, body(j, s)),
                           (tf.constant(start), state))
    return out


def _loop_cholesky(a):
    """Lower Cholesky factors of SPD matrices [..., p, p], a column per iteration of one graph loop
    (element-wise products and sums: the same rounding for any batch shape). The loop holds L^T (row
    k: column k of L) and writes each new column in place (:func:`_loop_rows`), so an iteration reads
    the factor once and writes p numbers instead of rewriting all p^2."""
    idx = tf.range(a.shape[-1])

    def column(j, rows):
        l_j = tf.gather(rows, j, axis=-1)                                    # L[j, k] for every k
        v = tf.gather(a, j, axis=-1) - tf.reduce_sum(rows * l_j[..., :, None], -2)
        return tf.where(idx >= j, v / tf.sqrt(tf.gather(v, j, axis=-1))[..., None], tf.zeros_like(v))

    return tf.linalg.matrix_transpose(_loop_rows(a.shape[-1], tf.zeros_like(a), column))


def _loop_rows(p, y, body, reverse=False):
    """``y[..., j, :] = body(j, y)`` for j = 0, ..., p - 1 (or back), writing row j in place (XLA's
    dynamic update slice: an iteration writes one row, not all of y)."""
    from tensorflow.compiler.tf2xla.python import xla as tf2xla   # an XLA op: traced for XLA only

    lead = tf.zeros([y.shape.rank - 2], tf.int32)

    def write(j, y):
        return tf2xla.dynamic_update_slice(y, body(j, y)[..., None, :], tf.concat([lead, [j, 0]], 0))

    return _loop(write, p, y, reverse=reverse)


def _loop_substitute(chol, b, lower=True):
    """Solves L y = b (``lower``) or L^T y = b for lower factors L [..., p, p], b [..., p, k]: a row per
    iteration of a graph loop, written in place."""
    def row(j, y):
        l_j = tf.gather(chol, j, axis=-2 if lower else -1)                        # row j of L or of L^T
        done = tf.reduce_sum(l_j[..., :, None] * y, -2)                          # the rows solved so far
        return (tf.gather(b, j, axis=-2) - done) / tf.gather(l_j, j, axis=-1)[..., None]
    return _loop_rows(chol.shape[-1], tf.zeros_like(b), row, reverse=not lower)


_BLOCK = 32   # under XLA, systems larger than this are factored and solved in blocks of as many columns


class _XlaFactor(NamedTuple):
    """A Cholesky factor made under XLA: L [..., p, p] and, for a blocked one, the inverses of its
    diagonal blocks (with which substitution is a chain of matrix products)."""

    chol: tf.Tensor
    inverses: tuple = ()


def _blocks(p):
    return [(s, min(s + _BLOCK, p)) for s in range(0, p, _BLOCK)]


def _xla_factor(a) -> _XlaFactor:
    """Lower Cholesky factor of SPD matrices [..., p, p] for XLA. Up to ``_BLOCK`` columns: the column
    loop (:func:`_loop_cholesky`). Larger: a left-looking blocked factorization, each block of columns
    updated by one matrix product with the columns before it, its diagonal block factored by the loop
    and the rows below it solved with that block's inverse (one substitution loop of the block's size).
    The loops then touch [..., 32, 32] blocks instead of the whole [..., p, p] factor at each column:
    solving 32 systems at p = 101 (factor and both substitutions) took 16.7 -> 7.4 ms on 2 CPU cores."""
    p = a.shape[-1]
    if p <= _BLOCK:
        return _XlaFactor(_loop_cholesky(a))
    cols, inverses = [], []
    for s, e in _blocks(p):
        panel = a[..., s:, s:e]                                                   # A[s:, s:e]
        if cols:
            left = tf.concat(cols, -1)                                            # L[:, :s]
            panel = panel - tf.matmul(left[..., s:, :], left[..., s:e, :], transpose_b=True)
        diag = _loop_cholesky(panel[..., :e - s, :])
        eye = tf.broadcast_to(tf.eye(e - s, dtype=a.dtype), tf.shape(diag))
        inverse = _loop_substitute(diag, eye, True)                               # L_JJ^-1
        below = tf.matmul(panel[..., e - s:, :], inverse, transpose_b=True)      # A' L_JJ^-T
        above = tf.zeros(tf.concat([tf.shape(diag)[:-2], [s, e - s]], 0), a.dtype)
        cols.append(tf.concat([above, diag, below], -2))
        inverses.append(inverse)
    return _XlaFactor(tf.concat(cols, -1), tuple(inverses))


def _xla_substitute(factor: _XlaFactor, b, lower=True):
    """Solves L y = b (``lower``) or L^T y = b for b [..., p, k] with a factor of :func:`_xla_factor`:
    the row loop, or for a blocked factor block by block with matrix products only."""
    chol = factor.chol
    if not factor.inverses:
        return _loop_substitute(chol, b, lower)
    bounds = _blocks(chol.shape[-1])
    if lower:
        ys = []
        for (s, e), inverse in zip(bounds, factor.inverses):
            r = b[..., s:e, :]
            if ys:
                r = r - tf.matmul(chol[..., s:e, :s], tf.concat(ys, -2))
            ys.append(tf.matmul(inverse, r))
        return tf.concat(ys, -2)
    xs = []
    for (s, e), inverse in reversed(list(zip(bounds, factor.inverses))):
        r = b[..., s:e, :]
        if xs:
            r = r - tf.matmul(chol[..., e:, s:e], tf.concat(xs, -2), transpose_a=True)
        xs.insert(0, tf.matmul(inverse, r, transpose_a=True))
    return tf.concat(xs, -2)


def _cholesky(matrix):
    """Lower Cholesky factors of SPD matrices [..., p, p] (graph loops while tracing for XLA)."""
    if _xla.active():
        return _xla_factor(matrix).chol
    return tf.linalg.cholesky(matrix)


def _jittered(matrix, jitter):
    p = matrix.shape[-1]
    scale = tf.linalg.trace(matrix)[..., None, None] / p + 1e-30
    return matrix + jitter * scale * tf.eye(p, dtype=matrix.dtype)


def _sym_solve(matrix, rhs, jitter=_JITTER):
    """Solves SPD systems matrix @ x = rhs (batched) with a tiny relative jitter: on a singular (PSD)
    matrix, the minimum-norm solution for rhs in its range, to about jitter / (smallest pivot)."""
    matrix = _jittered(matrix, jitter)
    if _xla.active():
        factor = _xla_factor(matrix)
        rhs = tf.broadcast_to(rhs, tf.concat([tf.shape(matrix)[:-1], tf.shape(rhs)[-1:]], 0))
        return _xla_substitute(factor, _xla_substitute(factor, rhs, True), False)
    return tf.linalg.cholesky_solve(tf.linalg.cholesky(matrix), rhs)


def _factor_inverse(matrix, jitter=_JITTER):
    """(L, inverse): the lower Cholesky factor of SPD matrices [..., p, p] with :func:`_sym_solve`'s
    jitter, and their inverse. Under XLA one forward substitution gives L^-1 and the inverse is
    L^-T L^-1 (half the loop of solving for the identity)."""
    matrix = _jittered(matrix, jitter)
    eye = tf.broadcast_to(tf.eye(matrix.shape[-1], dtype=matrix.dtype), tf.shape(matrix))
    if _xla.active():
        factor = _xla_factor(matrix)
        inv_l = _xla_substitute(factor, eye, True)
        return factor.chol, tf.matmul(inv_l, inv_l, transpose_a=True)
    chol = tf.linalg.cholesky(matrix)
    return chol, tf.linalg.cholesky_solve(chol, eye)


def _players(mask, d):
    """(mask [c, d] float64 or None, number of players [c, 1, 1] or d)."""
    if mask is None:
        return None, float(d)
    mask = tf.cast(mask, _F64)
    return mask, tf.maximum(tf.reduce_sum(mask, -1), 1.0)[:, None, None]


def _per_sample(v0):
    """The empty coalition's value as it broadcasts against values [c, m, o]: [o] (one for every
    instance) as it is, [c, o] (per instance, e.g. an image's own blur as fill) as [c, 1, o]."""
    v0 = tf.cast(v0, _F64)
    return v0[:, None, :] if v0.shape.rank == 2 else v0


def shapley_design(z, y, v0, v1, mask=None):
    """Projected design of the constrained Shapley regression (float64): a = Z P (rows centred),
    b = y - v0 - |S| (v1 - v0) / d, and delta = v1 - v0. With ``mask`` [c, d] (1 for the players
    that can change the output) the regression runs over the masked players only: d is their number,
    |S| counts them, and the other columns of a are zero."""
    d = z.shape[-1]
    mask, n = _players(mask, d)
    z = tf.cast(z, _F64)
    if mask is not None:
        z = z * mask[:, None, :]
    delta = tf.cast(v1 - v0, _F64)                                     # [c, o]
    size = tf.reduce_sum(z, -1, keepdims=True)                         # [c, m, 1]
    b = tf.cast(y, _F64) - _per_sample(v0) - size / n * delta[:, None, :]
    a = z - size / n
    if mask is not None:
        a = a * mask[:, None, :]
    return a, b, delta


def paired_shapley_design(sets, y_sets, y_complements, v1_minus_v0, mask=None):
    """:func:`shapley_design` of coalitions that come with their complements, each pair folded into one
    row (float64): a complement's projected row is -a, so the pair adds w (a a^T + a a^T) to the
    normal equations and w a (b_set - b_complement) to the right-hand side, i.e. one row a with weight
    2 w and target (b_set - b_complement) / 2 = (y_set - y_complement) / 2 - (|S| / d - 1/2) delta
    (v0 cancels). sets [c, P, d] {0, 1}, y_sets / y_complements [c, P, o] their values (link space),
    v1_minus_v0 [c, o]; ``mask`` [c, d] as in :func:`shapley_design`. Returns (a [c, P, d], b [c, P, o]):
    half the rows of the unfolded design, the same normal equations under any weights of the pairs."""
    d = sets.shape[-1]
    mask, n = _players(mask, d)
    z = tf.cast(sets, _F64)
    if mask is not None:
        z = z * mask[:, None, :]
    share = tf.reduce_sum(z, -1, keepdims=True) / n                    # |S| / d  [c, P, 1]
    a = z - share
    if mask is not None:
        a = a * mask[:, None, :]
    delta = tf.cast(v1_minus_v0, _F64)[:, None, :]
    b = 0.5 * (tf.cast(y_sets, _F64) - tf.cast(y_complements, _F64)) - (share - 0.5) * delta
    return a, b


def constraint_term(mask, d, dtype=_F64):
    """What the normal equations add to A^T W A to make it invertible without moving the solution
    in 1-perp: 11^T / d, or with a player mask m, m m^T / |m| + diag(1 - m) (the left-out players'
    coordinates are solved as 0)."""
    if mask is None:
        return tf.constant(1.0 / d, dtype)
    mask, n = _players(mask, d)
    term = mask[:, :, None] * mask[:, None, :] / n + tf.linalg.diag(1.0 - mask)
    return tf.cast(term, dtype)


def shapley_normal_equations(z, y, weights, v0, v1, mask=None):
    """(A^T W A + 11^T/d, A^T W b) of :func:`shapley_wls`; sums of these over independent rounds
    give the pooled estimate (add :func:`constraint_term` once: here it is included)."""
    d = z.shape[-1]
    a, b, _ = shapley_design(z, y, v0, v1, mask)
    w = tf.broadcast_to(tf.cast(weights, _F64), tf.shape(a)[:2])
    aw = a * w[..., None]
    return tf.einsum("cmi,cmj->cij", aw, a) + constraint_term(mask, d), tf.einsum("cmi,cmo->cio", aw, b)


def solve_shapley(gram, rhs, delta, mask=None, jitter=_JITTER):
    """phi = x + delta / d with x the solution of gram x = rhs, kept exactly in 1-perp (over the
    masked players, the others exactly 0, when ``mask`` [c, d] is given; gram and rhs may carry extra
    leading batch dimensions after c, e.g. bootstrap replicates; the minimum-norm solution when the
    design leaves some direction undetermined: see :func:`_sym_solve`)."""
    return _constrained(_sym_solve(gram, rhs, jitter), delta, mask)


def solve_shared_shapley(gram, rhs, delta):
    """:func:`solve_shapley` (no player mask) for one gram [1, d, d] shared by the right-hand sides
    rhs [c, d, o] of many instances (one design, e.g. KernelShap's shared coalitions): one
    factorization, its inverse applied to every right-hand side."""
    _, ginv = _factor_inverse(tf.cast(gram, _F64))
    return _constrained(tf.matmul(ginv, tf.cast(rhs, _F64)), delta)


def _constrained(x, delta, mask=None):
    """The Shapley values from a solution x [c, ..., d, o] of the projected normal equations: x kept
    exactly in 1-perp (over the masked players) plus delta / d."""
    d = x.shape[-2]
    delta = tf.cast(delta, _F64)[..., None, :]
    if mask is None:
        x = x - tf.reduce_mean(x, axis=-2, keepdims=True)
        return x + delta / d
    m, n = _players(mask, d)
    extra = x.shape.rank - 3
    shape = tf.concat([tf.shape(m)[:1], tf.ones([extra], tf.int32), [d, 1]], 0)
    m = tf.reshape(m, shape)
    n = tf.reshape(n, tf.concat([tf.shape(m)[:1], tf.ones([extra + 2], tf.int32)], 0))
    x = (x - tf.reduce_sum(x * m, axis=-2, keepdims=True) / n) * m
    return x + m * delta / n


def shapley_wls(z, y, weights, v0, v1, mask=None):
    """Constrained weighted least squares of KernelSHAP -> values [c, d, o] (float32).

    z [c, m, d] coalitions, y [c, m, o] their values (link space), weights [m] or [c, m] sample
    weights, v0 [o] value of the empty coalition, v1 [c, o] value of the full one. Minimizes
    sum_S w_S (v0 + z_S . phi - y_S)^2 subject to sum(phi) = v1 - v0, by eliminating the constraint
    with the projection P = I - 11^T/d: A = Z P, b = y - v0 - |S| (v1 - v0)/d, phi = x + (v1 - v0)/d
    with x the minimum-norm solution in 1-perp, obtained from (A^T W A + 11^T/d) x = A^T W b.
    ``mask`` [c, d]: players that cannot change the output (0) get exactly 0 and stay out of the solve.
    """
    d = z.shape[-1]
    delta = v1 - v0
    if d == 1:
        return tf.cast(delta[:, None, :], tf.float32)
    gram, rhs = shapley_normal_equations(z, y, weights, v0, v1, mask)
    return tf.cast(solve_shapley(gram, rhs, delta, mask), tf.float32)


def complement_pairs(pair_ids):
    """Host-side layout of the resampling units: (first, second, singles) sample indices, where each
    unit of exactly two samples is a coalition and its complement (what the samplers guarantee) and
    every other sample stands alone."""
    ids = np.asarray(pair_ids)
    order = np.argsort(ids, kind="stable")
    units, starts, counts = np.unique(ids[order], return_index=True, return_counts=True)
    two = counts == 2
    first, second = order[starts[two]], order[starts[two] + 1]
    single_units = np.isin(ids, units[~two])
    singles = np.flatnonzero(single_units)
    # units in order of their first sample, as the samplers lay them out
    by_first = np.argsort(first, kind="stable")
    return (first[by_first].astype(np.int32), second[by_first].astype(np.int32), singles.astype(np.int32))


def fold_complements(a, b, weights, pair_ids):
    """The projected design with each complement pair folded into one row, giving the same normal
    equations under any per-unit reweighting: a complement's projected row is -a, so
    w1 a a^T + w2 a a^T = (w1 + w2) a a^T and w1 a b1 - w2 a b2 = (w1 + w2) a (w1 b1 - w2 b2) / (w1 + w2).
    a [c, m, d], b [c, m, o], weights [m] or [c, m] -> (a, b, weights [c, m'], unit of each row [m'])."""
    first, second, singles = complement_pairs(pair_ids)
    w = tf.broadcast_to(tf.cast(weights, a.dtype), tf.shape(a)[:2])
    w1, w2 = tf.gather(w, first, axis=1), tf.gather(w, second, axis=1)
    wf = w1 + w2
    bf = (w1[..., None] * tf.gather(b, first, axis=1) - w2[..., None] * tf.gather(b, second, axis=1)) \
        / tf.where(wf > 0, wf, 1.0)[..., None]
    keep = np.concatenate([first, singles])
    return (tf.gather(a, keep, axis=1), tf.concat([bf, tf.gather(b, singles, axis=1)], 1),
            tf.concat([wf, tf.gather(w, singles, axis=1)], 1), np.asarray(pair_ids)[keep])


def replicate_normal_equations(a, b, w, multipliers):
    """Bootstrap replicates' A^T W_r A [c, B, d, d] and A^T W_r b [c, B, d, o] (float64, accumulated in
    float32: they only feed a spread) for rows a [c, m, d], b [c, m, o] with weights w [c, m] times
    the replicates' row multipliers [c, B, m]. The constraint term is not included."""
    a32, b32 = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    wb = tf.cast(w[:, None], tf.float32) * tf.cast(multipliers, tf.float32)   # [c, B, m]
    aw = a32[:, None] * wb[..., None]                                         # [c, B, m, d]
    gram = tf.cast(tf.matmul(aw, a32[:, None], transpose_a=True), _F64)
    rhs = tf.cast(tf.matmul(aw, b32[:, None], transpose_a=True), _F64)
    return gram, rhs


# By the dtype the replicates' normal equations were summed in: the relative jitter of their solves,
# above that dtype's rounding of a singular gram (float32: ~1e-6 of its scale, so the 1e-10 of the
# point estimate would leave it indefinite, i.e. NaN), and the Cholesky pivot (of the mean replicate
# gram at unit diagonal) below which the instance's own design counts as rank-deficient.
_REPLICATE_JITTER = {tf.float64: _JITTER, tf.float32: 1e-5}
_DEFICIENT_PIVOT = {tf.float64: 1e-8, tf.float32: 1e-3}


def bootstrap_stderr_from_normal_equations(gram, rhs, delta, mask=None, summed_in=tf.float32):
    """Standard errors of the constrained Shapley regression from its bootstrap replicates' normal
    equations: gram [c, B, d, d] = A^T W_r A + 11^T/d and rhs [c, B, d, o] = A^T W_r b (what
    :func:`shapley_normal_equations` returns, under each replicate's weights W_r), delta [c, o] =
    v1 - v0; ``mask`` [c, d]: the players solved for (see :func:`solve_shapley`); ``summed_in``: the dtype gram and rhs were accumulated in (float32 or float64; they may
    come in either). Returns [c, d, o] float32: the standard deviation (ddof = 1) over the replicates
    of their solutions by :func:`solve_shapley`.

    Each replicate is solved by the point estimate's own rule: where a replicate leaves out every unit
    touching some direction, its gram is singular and the solve takes the minimum-norm solution there,
    as the point estimate does on a rank-deficient sample (so the spread shows that the estimate would
    fall back to 0 along that direction without those units). The solve's relative jitter is 1e-10
    for float64 sums and 1e-5 for float32 sums, whose rounding would otherwise leave a singular gram
    indefinite (a NaN factorization); directions that weak in a replicate fall back to minimum norm.
    Replicates with non-finite normal equations or solutions are left out. The result is +inf for an
    instance with fewer than two finite replicates, or whose own design is rank-deficient (its estimate
    is then a minimum-norm guess in some direction, whose error no replicate shows), judged on the
    mean of its replicates' grams (the multipliers have mean 1) scaled to unit diagonal: a Cholesky
    pivot below 1e-8 (float64 sums) or 1e-3 (float32). It is 0 only where the replicates agree exactly.
    """
    summed_in = tf.as_dtype(summed_in)
    if summed_in not in _REPLICATE_JITTER:
        raise ValueError(f"`summed_in` must be float32 or float64, got {summed_in.name}.")
    d = gram.shape[-1]
    g, b = tf.cast(gram, _F64), tf.cast(rhs, _F64)
    finite = tf.reduce_all(tf.math.is_finite(g), [-2, -1]) & tf.reduce_all(tf.math.is_finite(b), [-2, -1])
    eye = tf.eye(d, dtype=_F64)
    g = tf.where(finite[..., None, None], 0.5 * (g + tf.linalg.matrix_transpose(g)), eye)
    b = tf.where(finite[..., None, None], b, tf.zeros_like(b))
    phi = solve_shapley(g, b, tf.cast(delta, _F64)[:, None], mask, jitter=_REPLICATE_JITTER[summed_in])   # [c, B, d, o]
    ok = finite & tf.reduce_all(tf.math.is_finite(phi), [-2, -1])                           # [c, B]
    keep = ok[..., None, None]
    phi = tf.where(keep, phi, tf.zeros_like(phi))
    n = tf.reduce_sum(tf.cast(ok, _F64), axis=1)[:, None, None]                             # [c, 1, 1]
    mean = tf.reduce_sum(phi, axis=1) / tf.maximum(n, 1.0)
    dev = tf.where(keep, phi - mean[:, None], tf.zeros_like(phi))
    var = tf.reduce_sum(tf.square(dev), axis=1) / tf.maximum(n - 1.0, 1.0)
    # the instance's own design: mean replicate gram at unit diagonal, smallest Cholesky pivot
    g_mean = tf.reduce_sum(tf.where(keep, g, tf.zeros_like(g)), axis=1) / tf.maximum(n, 1.0)
    full_rank = _full_rank(g_mean, _DEFICIENT_PIVOT[summed_in])[:, None, None]
    se = tf.where((n >= 2.0) & full_rank, tf.sqrt(var), tf.constant(np.inf, _F64))
    return tf.cast(se, tf.float32)


def _full_rank(gram, pivot):
    """[c] whether grams [c, d, d] (float64) are of full rank: the smallest Cholesky pivot at unit
    diagonal above ``pivot`` (False for NaN)."""
    eye = tf.eye(gram.shape[-1], dtype=_F64)
    diag = tf.linalg.diag_part(gram)
    scale = tf.where(diag > 0, tf.math.rsqrt(tf.where(diag > 0, diag, 1.0)), tf.zeros_like(diag))
    chol = _cholesky(gram * scale[..., :, None] * scale[..., None, :] + _JITTER * eye)
    pivots = tf.square(tf.linalg.diag_part(chol)) - _JITTER
    return tf.reduce_all(pivots > pivot, -1)


def _full_rank_from_factor(gram, chol, pivot):
    """:func:`_full_rank` from the factor L of ``gram`` plus :func:`_sym_solve`'s jitter, without
    factoring again: scaling rows and columns by D = diag(gram)^-1/2 scales L's rows by D, so the
    pivots at unit diagonal are L_ii^2 / gram_ii, less the jitter's share (to first order
    1e-10 (trace / p) / gram_ii: ~1e-10 for grams of comparable diagonals, as KernelShap's)."""
    diag = tf.linalg.diag_part(gram)
    jitter = _JITTER * (tf.linalg.trace(gram)[..., None] / gram.shape[-1] + 1e-30)
    pivots = tf.where(diag > 0, (tf.square(tf.linalg.diag_part(chol)) - jitter) / tf.where(diag > 0, diag, 1.0),
                      tf.zeros_like(diag))
    return tf.reduce_all(pivots > pivot, -1)


def _stratified_variance(t, e, strata, factors):
    """sum_h f_h sum_{p in h} (u_p - mean_h u)^2 for the units u_p = t_p e_p^T (t [c, P, d], e [c, P, o]
    float64; strata int [P] and factors [H] numpy), never forming the units [c, P, d, o]: it is
    sum_p f_p (t_p^2)(e_p^2)^T - sum_h f_h / n_h S_h^2 with S_h = sum_{p in h} t_p e_p^T. The S_h are
    one batched [d, n] x [n, o] product per stratum, over the units gathered into a [H', n_max] layout
    (only the H' strata with f_h > 0; padding points at a zero unit). A stratum mean is small against
    the units' spread here (the residuals are centred by the fit), and float64 keeps the difference
    exact to ~1e-12 relative even so; it is clamped at 0."""
    strata, factors = np.asarray(strata), np.asarray(factors, np.float64)
    counts = np.bincount(strata, minlength=len(factors))
    per_unit = tf.constant(factors[strata], _F64)
    var = tf.matmul(tf.square(t), tf.square(e) * per_unit[None, :, None], transpose_a=True)   # [c, d, o]
    live = np.flatnonzero((factors > 0) & (counts > 0))
    if len(live) == 0:
        return var
    n_max = int(counts[live].max())
    members = [np.flatnonzero(strata == h) for h in live]
    idx = np.full((len(live), n_max), len(strata), np.int32)          # padding: the zero unit at P
    for i, units in enumerate(members):
        idx[i, :len(units)] = units

    def blocks(v):   # [c, P, k] -> [c, H', n_max, k]
        v = tf.concat([v, tf.zeros_like(v[:, :1])], axis=1)
        return tf.gather(v, tf.constant(idx), axis=1)

    sums = tf.matmul(blocks(t), blocks(e), transpose_a=True)          # S_h [c, H', d, o]
    between = tf.constant(factors[live] / counts[live], _F64)[None, :, None, None]
    return tf.maximum(var - tf.reduce_sum(between * tf.square(sums), axis=1), 0.0)


def linearized_stderr(a, b, w, gram, rhs, strata, factors, mask=None):
    """Standard errors of the constrained Shapley regression by linearization (the sandwich, or delta
    method, for a stratified sample): one pass over the samples instead of re-solving bootstrap
    replicates, and the variance the stratified Rao-Wu bootstrap approximates.

    The estimate is x = G^-1 r with G = sum_p w_p a_p a_p^T + C and r = sum_p w_p a_p b_p^T, so to first
    order x - x* = G^-1 sum_p u_p with u_p = w_p a_p e_p^T, e_p = b_p - a_p^T x its residual. The units
    p (complement pairs folded into one row) are drawn independently within strata (the sampler's size
    classes): Var(sum_p u_p) = sum_h f_h sum_{p in h} (u_p - mean_h u)^2, with f_h = (1 - n_h / N_h) n_h /
    (n_h - 1) (0 for an enumerated stratum or one of a single unit). The values are L x (+ constants),
    L the projection onto the constraint (over the masked players), so their variance is that of
    L G^-1 sum_p u_p (:func:`_stratified_variance`), times units / (units - (players - 1))
    (HC1: the residuals come from a fit of players - 1 free parameters).

    a [c, P, d] folded projected rows, b [c, P, o] their targets, w [c, P] weights, gram [c, d, d] and
    rhs [c, d, o] the normal equations (constraint term included), strata int [P] (numpy: each unit's
    stratum), factors [H] (numpy: f_h), mask [c, d] the players solved for. Returns [c, d, o] float32:
    +inf where the design is rank-deficient (as :func:`bootstrap_stderr_from_normal_equations`)."""
    return _linearized(a, b, w, gram, rhs, strata, factors, mask)[1]


def linearized_shapley(a, b, w, gram, rhs, delta, strata, factors, mask=None):
    """(values [c, d, o] float64, standard errors [c, d, o] float32): :func:`solve_shapley` and
    :func:`linearized_stderr` from one factorization of the normal equations."""
    x, se = _linearized(a, b, w, gram, rhs, strata, factors, mask)
    return _constrained(x, delta, mask), se


def _linearized(a, b, w, gram, rhs, strata, factors, mask):
    d = a.shape[-1]
    a, b = tf.cast(a, _F64), tf.cast(b, _F64)
    chol, ginv = _factor_inverse(gram)                                           # G^-1 [c, d, d]
    x = tf.matmul(ginv, rhs)                                                     # [c, d, o]
    e = b - tf.matmul(a, x)                                                      # residuals [c, P, o]
    m, n = _players(mask, d)
    if m is None:
        lg = ginv - tf.reduce_mean(ginv, axis=-2, keepdims=True)                 # (I - 11^T/d) G^-1
    else:
        proj = m[:, :, None] * (tf.eye(d, dtype=_F64)[None] - m[:, None, :] / n)
        lg = tf.matmul(proj, ginv)                                               # L G^-1 [c, d, d]
    # t only feeds a spread: its product in float32 (the stratum sums below stay in float64)
    t = tf.matmul(tf.cast(a, tf.float32), tf.cast(lg, tf.float32), transpose_b=True)
    t = tf.cast(t, _F64) * tf.cast(w, _F64)[..., None]                          # [c, P, d]
    var = _stratified_variance(t, e, strata, factors)
    # small-sample (HC1) correction: the residuals are fitted with n - 1 free parameters (the players
    # less the constraint), which shrinks them by about units / (units - (n - 1))
    units_n = float(len(strata))
    free = (tf.reduce_sum(m, -1)[:, None, None] if m is not None else float(d)) - 1.0
    var = var * units_n / tf.maximum(units_n - tf.cast(free, _F64), 1.0)
    full_rank = _full_rank_from_factor(gram, chol, _DEFICIENT_PIVOT[tf.float64])[:, None, None]
    return x, tf.cast(tf.where(full_rank, tf.sqrt(var), tf.constant(np.inf, _F64)), tf.float32)


def shapley_bootstrap_stderr(z, y, weights, v0, v1, multipliers, pair_ids, mask=None):
    """Standard errors of :func:`shapley_wls` by re-solving it under bootstrap weight multipliers.

    multipliers [c, B, units] (see ``samplers.BootstrapPlan``), pair_ids [m] (numpy) the unit of each
    sample. Returns [c, d, o]: the standard deviation over the replicates (ddof = 1), +inf for an
    instance whose own design is rank-deficient (see :func:`bootstrap_stderr_from_normal_equations`).
    Complement pairs are folded first (half the rows, same replicates); the replicates' normal
    equations are accumulated in float32 (they only feed a spread), solved in float64.
    """
    d = z.shape[-1]
    if d == 1:
        return tf.zeros([tf.shape(z)[0], 1, y.shape[-1]], tf.float32)
    a, b, delta = shapley_design(z, y, v0, v1, mask)
    a, b, w, units = fold_complements(a, b, weights, pair_ids)
    gram, rhs = replicate_normal_equations(a, b, w, tf.gather(multipliers, units, axis=-1))
    term = constraint_term(mask, d)
    gram = gram + (term if mask is None else term[:, None])
    return bootstrap_stderr_from_normal_equations(gram, rhs, delta, mask, summed_in=tf.float32)


# The adjustment model: a flat prior (fixed effects, fitted by generalized least squares) on its
# intercept and additive part, Gaussian priors with these variances on its order-2 and order-3
# interactions. Paired sampling already recovers orders <= 2 exactly, so only the model's order-3 part
# moves the estimate: an additive game is fitted exactly by the fixed effects and leaves the kernel
# nothing (a large but finite prior variance there instead leaks part of it into order 3, errors of
# 1e-5..1e-4 relative at budgets near 2d); order 2 is nearly unpenalized for the same reason. The ridge
# strength acts against weights normalized to mean 1.
ADJUST_ORDER_VARIANCES = (1e6, 1.0)   # orders 2, 3
ADJUST_RIDGE = 0.1


def _overlap_binomials(o, orders):
    """C(o, t) for t = 0..orders-1, elementwise (o: float64 counts)."""
    out, term = [], tf.ones_like(o)
    for t in range(orders):
        out.append(term)
        term = term * (o - t) / (t + 1)
    return out


def regression_adjusted_shapley(z, y, weights, v0, v1, variances=ADJUST_ORDER_VARIANCES, ridge=ADJUST_RIDGE,
                                mask=None):
    """Regression-adjusted KernelSHAP (after Witter, Liu & Musco 2025): fit a model g of the game on the
    sampled coalitions, take g's exact Shapley values, and estimate only the residual game v - g with
    the constrained WLS. g(S) = beta_0 + z_S . beta + h(S): an intercept and additive part with a flat
    prior, and a Gaussian process h over the interactions of orders 2 and 3 (prior ``variances``),
    whose kernel is a function of the overlap o = |S n S'| alone: k(S, S') = sum_t variances[t - 2] C(o, t).
    With noise variance ``ridge`` / w_S this is universal kriging: beta by generalized least squares
    under the covariance Sigma = K + ridge W^-1, then h's weights alpha = Sigma^-1 (y - X beta) (so an
    additive game gives alpha = 0: it is fitted, and explained, exactly). g's Shapley values are
    closed-form: phi_j(g) = beta_j + sum_a alpha_a 1{j in S_a} sum_t variances[t - 2] C(|S_a| - 1, t - 1) / t.
    Efficiency still holds exactly. Returns (values [c, d, o] float32, residual values [c, m, o] and
    residual endpoints (r0 [c, o], r1 [c, o]) for error estimates). ``mask`` [c, d]: players that
    cannot change the output (0) are left out of the model and of the regression (their values are 0).
    """
    z64 = tf.cast(z, _F64)
    if mask is not None:
        z64 = z64 * tf.cast(mask, _F64)[:, None, :]
    m = tf.shape(z64)[1]
    w = tf.broadcast_to(tf.cast(weights, _F64), tf.shape(z64)[:2])
    w = w / tf.reduce_mean(w, axis=1, keepdims=True)
    yc = tf.cast(y, _F64) - _per_sample(v0)                                    # game with v(empty) = 0
    top = len(variances) + 2                                                   # orders 2 .. top - 1
    overlaps = _overlap_binomials(tf.matmul(z64, z64, transpose_b=True), top)
    kernel = tf.add_n([v * b for v, b in zip(variances, overlaps[2:])])
    root = tf.sqrt(w)[..., None]                                               # [c, m, 1]
    system = root * kernel * tf.linalg.matrix_transpose(root) + ridge * tf.eye(m, dtype=_F64)
    design = tf.concat([tf.ones_like(z64[..., :1]), z64], -1)                 # [c, m, d + 1]
    k = design.shape[-1]
    solved = _sym_solve(system, root * tf.concat([design, yc], -1))           # M^-1 W^1/2 [X, y]
    sx, sy = solved[..., :k], solved[..., k:]
    xw = root * design
    gls = tf.matmul(xw, sx, transpose_a=True)                                  # X^T Sigma^-1 X, [c, d+1, d+1]
    scale = tf.math.rsqrt(tf.maximum(tf.linalg.diag_part(gls), 1e-300))[..., None]   # unit diagonal first: the
    beta = scale * _sym_solve(scale * gls * tf.linalg.matrix_transpose(scale),        # intercept's is far smaller
                              scale * tf.matmul(xw, sy, transpose_a=True))            # [c, d+1, o]
    alpha = root * (sy - tf.matmul(sx, beta))                                  # Sigma^-1 (y - X beta), [c, m, o]
    fitted = tf.matmul(design, beta) + tf.matmul(kernel, alpha)
    size = tf.reduce_sum(z64, -1)                                              # [c, m]
    below = _overlap_binomials(size - 1.0, top - 1)
    share = tf.add_n([v * below[t - 1] / t for t, v in enumerate(variances, 2)])
    phi_g = beta[:, 1:] + tf.einsum("cmo,cm,cmj->cjo", alpha, share, z64)
    g0 = beta[:, 0]                                                            # g(empty): h(empty) = 0
    full = tf.add_n([v * b for v, b in zip(variances, _overlap_binomials(size, top)[2:])])
    g1 = g0 + tf.reduce_sum(beta[:, 1:], axis=1) + tf.einsum("cmo,cm->co", alpha, full)   # g(full)
    residual = yc - fitted + g0[:, None, :]                                   # r - r(empty): r0 = 0
    r1 = tf.cast(v1 - v0, _F64) - g1 + g0
    gram, rhs = shapley_normal_equations(z, residual, weights, tf.zeros([y.shape[-1]], _F64), r1, mask)
    phi_r = solve_shapley(gram, rhs, r1, mask)
    return tf.cast(phi_g + phi_r, tf.float32), residual, r1


def adjusted_bootstrap_stderr(z, y, weights, v0, v1, multipliers, pair_ids, mask=None):
    """Standard errors of :func:`regression_adjusted_shapley`: each bootstrap replicate refits the
    adjustment model too (its fit on the same samples is where most of the estimate comes from), so
    the B replicates run as one batch of c * B problems. Returns [c, d, o] (ddof = 1)."""
    c, m = tf.shape(z)[0], tf.shape(z)[1]
    n_boot = tf.shape(multipliers)[1]
    w = tf.cast(weights, _F64) * tf.gather(multipliers, pair_ids, axis=-1)     # [c, B, m]
    tile = lambda t: tf.reshape(tf.repeat(t[:, None], n_boot, axis=1),       # noqa: E731
                                tf.concat([[c * n_boot], tf.shape(t)[1:]], 0))
    v0 = tile(v0) if v0.shape.rank == 2 else v0
    phi, _, _ = regression_adjusted_shapley(tile(z), tile(y), tf.reshape(w, [c * n_boot, m]), v0, tile(v1),
                                            mask=None if mask is None else tile(mask))
    phi = tf.reshape(tf.cast(phi, _F64), tf.concat([[c, n_boot], tf.shape(phi)[1:]], 0))
    mean = tf.reduce_mean(phi, axis=1, keepdims=True)
    var = tf.reduce_sum(tf.square(phi - mean), axis=1) / tf.maximum(tf.cast(n_boot, _F64) - 1.0, 1.0)
    return tf.cast(tf.sqrt(var), tf.float32)


def shapley_bootstrap_stderr_weighted(z, y, replicate_weights, v0, v1, mask=None):
    """Standard errors of :func:`shapley_wls` from full per-sample replicate weights.

    replicate_weights [c, B, m] (e.g. ``samplers.KernelSampler.replicate_weights``): replicate b is the
    constrained WLS of :func:`shapley_wls` with weights replicate_weights[:, b], solved in float64 on
    all m rows (no folding). Returns the standard deviation over the replicates, [c, d, o] (ddof = 1).
    A replicate whose design is singular gets the minimum-norm solution, as :func:`shapley_wls` would
    (the solve's jitter); a replicate with a non-finite solution (non-finite values y) is left out,
    and with fewer than two finite replicates the standard error is +inf (unknown), never NaN.
    """
    d = z.shape[-1]
    if d == 1:
        return tf.zeros([tf.shape(z)[0], 1, y.shape[-1]], tf.float32)
    a, b, delta = shapley_design(z, y, v0, v1, mask)
    w = tf.cast(replicate_weights, _F64)
    w = tf.where(w > 0, w, tf.zeros_like(w))                           # negative or NaN weights: none
    aw = a[:, None] * w[..., None]                                      # [c, B, m, d]
    term = constraint_term(mask, d)
    gram = tf.matmul(aw, a[:, None], transpose_a=True) + (term if mask is None else term[:, None])
    rhs = tf.matmul(aw, b[:, None], transpose_a=True)                  # [c, B, d, o]
    phi = solve_shapley(gram, rhs, delta[:, None], mask)
    ok = tf.reduce_all(tf.math.is_finite(phi), axis=[2, 3])            # [c, B]
    keep = tf.cast(ok, _F64)[:, :, None, None]
    phi = tf.where(ok[:, :, None, None], phi, tf.zeros_like(phi))
    n_ok = tf.reduce_sum(keep, axis=1)                                  # [c, 1, 1]
    mean = tf.reduce_sum(phi * keep, axis=1, keepdims=True) / tf.maximum(n_ok, 1.0)[:, None]
    var = tf.reduce_sum(keep * tf.square(phi - mean), axis=1) / tf.maximum(n_ok - 1.0, 1.0)
    se = tf.where(n_ok >= 2.0, tf.sqrt(var), tf.constant(np.inf, _F64))
    return tf.cast(se, tf.float32)


class Moments(NamedTuple):
    """Weighted, centred second moments of a regression problem (float64). Moments of disjoint sets of
    samples merge exactly (:func:`merge_moments`), so samples can be reduced a piece at a time."""

    gram: tf.Tensor   # [c, p, p]  Xc^T W Xc
    xy: tf.Tensor     # [c, o, p]  Xc^T W yc
    yy: tf.Tensor     # [c, o]     yc^T W yc
    x_mean: tf.Tensor  # [c, p]
    y_mean: tf.Tensor  # [c, o]
    w: tf.Tensor      # [c]        the total weight


def weighted_moments(x, y, *, log_w) -> Moments:
    """Moments of samples x [c, m, p], y [c, m, o] with weights exp(log_w) (log_w [c, m]; -inf: weighs 0).

    The heavy products run in the samples' float32 (the d x d products over every sample, at twice the
    float64 speed), on weights relative to each instance's largest (in (0, 1]) and samples centred on
    their weighted mean (no cancellation); the result is float64 with the weights' true scale, however
    small (lime's weights of an instance far from the data are ~1e-40: the ridge penalty acts against
    their absolute scale)."""
    w, top = _relative_weights(log_w)
    x, y = tf.cast(x, tf.float32), tf.cast(y, tf.float32)
    sw = tf.reduce_sum(w, -1)
    safe = tf.where(sw > 0, sw, 1.0)[:, None]
    x_mean = tf.einsum("cm,cmp->cp", w, x) / safe
    y_mean = tf.einsum("cm,cmo->co", w, y) / safe
    xc = x - x_mean[:, None, :]
    yc = y - y_mean[:, None, :]
    xw = xc * w[..., None]
    scale = elementwise(tf.exp, top)                                                     # float64
    return Moments(
        gram=scale[:, None, None] * tf.cast(tf.einsum("cmi,cmj->cij", xw, xc), _F64),
        xy=scale[:, None, None] * tf.cast(tf.einsum("cmp,cmo->cop", xw, yc), _F64),
        yy=scale[:, None] * tf.cast(tf.einsum("cm,cmo->co", w, yc * yc), _F64),
        x_mean=tf.cast(x_mean, _F64), y_mean=tf.cast(y_mean, _F64), w=scale * tf.cast(sw, _F64))


def _relative_weights(log_w):
    """Weights exp(log_w) [c, m] as float32 relative to each instance's largest (in [0, 1]) and the
    largest's log, float64 [c] (0 when no sample weighs)."""
    top = tf.reduce_max(tf.cast(log_w, _F64), -1)                                        # [c]
    top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))                      # no sample weighs
    rel = tf.cast(tf.cast(log_w, _F64) - top[:, None], tf.float32)
    # weights below 1e-30 of the largest are far under float32's resolution of the sums: exact zeros
    # rather than subnormal numbers, whose arithmetic is ~100x slower on CPUs
    return tf.where(rel > _NEGLIGIBLE, elementwise(tf.exp, rel), 0.0), top


def shared_moments(x, y, *, log_w, with_redone: bool = False) -> Moments:
    """Moments of samples every instance shares, x [m, p] and y [m, o], each instance weighing them its
    own way, exp(log_w) (log_w [c, m]; -inf: weighs 0): what :func:`weighted_moments` gives for x and y
    repeated per instance, as one matrix product over the samples for all instances.

    Each sample's products (1, x, y, the upper triangle of x x^T, y x^T, y^2: q = 1 + p + o + p(p+1)/2 +
    op + o columns, built once for all instances) are summed with the instances' weights [c, m] x
    [m, q] in float32, on samples centred on their plain mean (shared by all instances; the weighted
    means are taken out afterwards, in float64) and weights relative to each instance's largest; the
    result has the weights' true scale, as :func:`weighted_moments`'s. The product is one wide matrix
    multiply, the kind the model's own layers run, with about half the operations of
    :func:`weighted_moments` per instance and sample (q = 560 multiply-adds at d = 30, o = 2, against
    ~1,060). Instances whose float32 sums would cancel are redone on their own (see below);
    ``with_redone``: also return which ([c] bool)."""
    w, top = _relative_weights(log_w)
    x, y = tf.cast(x, tf.float32), tf.cast(y, tf.float32)
    p, o = x.shape[-1], y.shape[-1]
    cx, cy = tf.reduce_mean(x, 0), tf.reduce_mean(y, 0)
    xs, ys = x - cx, y - cy
    i, j = np.triu_indices(p)
    # the upper triangle row by row (slices, not a gather: XLA turned the gather into a transposing copy
    # that cost ~5x the product itself)
    columns = ([tf.ones_like(xs[:, :1]), xs, ys] + [xs[:, a:a + 1] * xs[:, a:] for a in range(p)]
               + [tf.reshape(ys[:, :, None] * xs[:, None, :], [-1, o * p]), ys * ys])
    sums = tf.cast(tf.matmul(w, tf.concat(columns, 1)), _F64)                            # [c, q]
    sw, sx, sy, sxx, sxy, syy = tf.split(sums, [1, p, o, len(i), o * p, o], axis=1)
    safe = tf.where(sw > 0, sw, 1.0)
    mx, my = sx / safe, sy / safe                                                        # [c, p], [c, o]
    # the symmetric Gram matrix from its upper triangle: entry (a, b) reads pair (min, max)
    pair = np.zeros((p, p), np.int64)
    pair[i, j] = pair[j, i] = np.arange(len(i))
    gram = tf.reshape(tf.gather(sxx, pair.reshape(-1), axis=1), [-1, p, p]) - sw[:, :, None] * (
        mx[:, :, None] * mx[:, None, :])
    xy = tf.reshape(sxy, [-1, o, p]) - sw[:, :, None] * my[:, :, None] * mx[:, None, :]
    yy = syy - sw * my * my
    scale = elementwise(tf.exp, top)
    mom = Moments(gram=scale[:, None, None] * gram, xy=scale[:, None, None] * xy, yy=scale[:, None] * yy,
                  x_mean=mx + tf.cast(cx, _F64), y_mean=my + tf.cast(cy, _F64), w=scale * sw[:, 0])
    # Taking the weighted means out of float32 sums loses their digits when an instance's weight sits on
    # a few samples far from the samples' mean (a narrow kernel), or when an output is constant where
    # it weighs: the mean's part of a sum is then ~1 / eps of the spread's. Such instances
    # (`bad`) are redone one at a time as weighted_moments does (centred on their own
    # weighted mean), only in chunks that have one; every other row keeps the shared numbers, whatever
    # its neighbours.
    spread = tf.concat([tf.linalg.diag_part(gram), yy], 1)          # the off-diagonal terms are bounded
    mean_part = sw * tf.concat([mx * mx, my * my], 1)                 # by these (Cauchy-Schwarz)
    bad = tf.reduce_any(mean_part > _CANCELLATION * spread, 1)                          # [c]
    zeros = Moments(*[tf.zeros([1] + list(t.shape[1:]), _F64) for t in mom])

    def one(e):
        flagged, lw = e
        return tf.cond(flagged, lambda: weighted_moments(x[None], y[None], log_w=lw[None]), lambda: zeros)

    def redo():
        return tf.map_fn(one, (bad, log_w), parallel_iterations=1,
                         fn_output_signature=Moments(*[tf.TensorSpec(t.shape, _F64) for t in zeros]))

    exact = tf.cond(tf.reduce_any(bad), redo,
                    lambda: Moments(*[tf.zeros(tf.concat([tf.shape(bad), t.shape], 0), _F64) for t in zeros]))
    out = Moments(*[tf.where(tf.reshape(bad, [-1] + [1] * (t.shape.rank - 1)), e[:, 0], t)
                    for e, t in zip(exact, mom)])
    return (out, bad) if with_redone else out


def point_moments(x, y, w) -> Moments:
    """The moments of one sample per instance, x [c, p], y [c, o], weighing w [c] (e.g. lime's instance)."""
    x, y = tf.cast(x, _F64), tf.cast(y, _F64)
    c, p, o = tf.shape(x)[0], x.shape[-1], y.shape[-1]
    return Moments(gram=tf.zeros([c, p, p], _F64), xy=tf.zeros([c, o, p], _F64), yy=tf.zeros([c, o], _F64),
                   x_mean=x, y_mean=y, w=tf.broadcast_to(tf.cast(w, _F64), [c]))


def merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two disjoint sets of samples together (Chan, Golub & LeVeque 1979): means
    weighted by the sets' weights, cross products plus the between-set term."""
    w = a.w + b.w
    share = tf.where(w > 0, b.w / tf.where(w > 0, w, 1.0), tf.zeros_like(w))            # b's part of w
    dx, dy = b.x_mean - a.x_mean, b.y_mean - a.y_mean
    between = (a.w * share)[:, None, None]                                               # a.w b.w / w
    return Moments(gram=a.gram + b.gram + between * dx[:, :, None] * dx[:, None, :],
                   xy=a.xy + b.xy + between * dy[:, :, None] * dx[:, None, :],
                   yy=a.yy + b.yy + between[:, 0] * dy * dy,
                   x_mean=a.x_mean + share[:, None] * dx, y_mean=a.y_mean + share[:, None] * dy, w=w)


def masked_ridge(mom: Moments, mask, alpha: float):
    """Ridge on the features selected by ``mask`` [c, o, k, p] (k candidate sets per output).

    Returns coef [c, o, k, p] (zero outside the mask) and weighted R^2 [c, o, k].
    """
    mask = tf.cast(mask, _F64)
    p = mom.gram.shape[-1]
    eye = tf.eye(p, dtype=_F64)
    outer = mask[..., :, None] * mask[..., None, :]
    gram = mom.gram[:, None, None] * outer + eye * (1.0 - mask)[..., None, :] + alpha * eye * mask[..., None, :]
    rhs = mom.xy[:, :, None, :] * mask
    coef = _sym_solve(gram, rhs[..., None])[..., 0] * mask
    sse = (mom.yy[..., None] - 2.0 * tf.reduce_sum(coef * mom.xy[:, :, None, :], -1)
           + tf.einsum("coki,cij,cokj->cok", coef, mom.gram, coef))
    return coef, _r2(sse, mom.yy[..., None])


def _r2(sse, sst):
    """Weighted R^2, at most 1: a near-perfect fit's sse is below the moments' float32 resolution and
    may come out < 0; 1 where the targets do not vary."""
    return tf.where(sst > 0, tf.minimum(1.0 - sse / tf.where(sst > 0, sst, 1.0), 1.0), tf.ones_like(sst))


def subset_ridge(mom: Moments, idx, alpha: float):
    """:func:`masked_ridge` on the features ``idx`` [c, o, n] (distinct indices, the same n for every
    row and output), solved in their own n-dimensional space: the masked system is block-diagonal (the
    identity outside the mask), so the selected block is the whole problem. One n x n factorization per
    (row, output) instead of one p x p (d = 100, 10 features: 101 -> 10 columns). Returns coef [c, o, p]
    (zero outside idx) and weighted R^2 [c, o]."""
    p, n = mom.gram.shape[-1], idx.shape[-1]
    gram = tf.broadcast_to(mom.gram[:, None], tf.concat([tf.shape(idx)[:2], [p, p]], 0))
    gram = tf.gather(tf.gather(gram, idx, axis=2, batch_dims=2), idx, axis=3, batch_dims=2)   # [c, o, n, n]
    rhs = tf.gather(mom.xy, idx, axis=2, batch_dims=2)                                        # [c, o, n]
    coef = _sym_solve(gram + alpha * tf.eye(n, dtype=_F64), rhs[..., None])[..., 0]
    sse = (mom.yy - 2.0 * tf.reduce_sum(coef * rhs, -1)
           + tf.einsum("coi,coij,coj->co", coef, gram, coef))
    full = tf.einsum("conp,con->cop", tf.one_hot(idx, p, dtype=_F64), coef)
    return full, _r2(sse, mom.yy)


class RidgeFit(NamedTuple):
    coef: tf.Tensor        # [c, o, p]
    intercept: tf.Tensor   # [c, o]
    score: tf.Tensor       # [c, o] weighted R^2 on the samples
    local_pred: tf.Tensor  # [c, o] surrogate's prediction at row 0 (the instance)


def weighted_ridge(mom: Moments, x0, mask, alpha: float, n_selected: Optional[int] = None) -> RidgeFit:
    """Final surrogate: ridge with intercept on the selected features ``mask`` [c, o, p]; x0 [c, p] is
    the instance's own representation (row 0). ``n_selected``: when every (row, output) selects exactly
    that many features (lime's selections do), fewer than p, the fit runs in their own space
    (:func:`subset_ridge`)."""
    p = mom.gram.shape[-1]
    if n_selected is not None and n_selected < p:
        idx = tf.math.top_k(tf.cast(mask, tf.float32), n_selected).indices     # the selected features
        coef, score = subset_ridge(mom, idx, alpha)
    else:
        coef, score = masked_ridge(mom, mask[:, :, None, :], alpha)
        coef, score = coef[:, :, 0], score[:, :, 0]
    intercept = mom.y_mean - tf.reduce_sum(mom.x_mean[:, None, :] * coef, -1)
    local = intercept + tf.reduce_sum(tf.cast(x0, _F64)[:, None, :] * coef, -1)
    f32 = lambda t: tf.cast(t, tf.float32)  # noqa: E731
    return RidgeFit(f32(coef), f32(intercept), f32(score), f32(local))


def forward_selection(mom: Moments, k: int, n_outputs: int):
    """lime's forward selection: k greedy steps, each adding the feature that maximizes the weighted R^2
    of an unregularized fit (all candidates of a step solved as one batch). Returns a mask [c, o, p]."""
    p = mom.gram.shape[-1]
    c = tf.shape(mom.gram)[0]
    selected = tf.zeros([c, n_outputs, p], _F64)
    eye = tf.eye(p, dtype=_F64)
    for _ in range(k):  # k <= 6 steps, static
        candidates = tf.minimum(selected[:, :, None, :] + eye, 1.0)
        _, score = masked_ridge(mom, candidates, 0.0)
        score = tf.where(selected > 0, tf.constant(-float("inf"), _F64), score)
        selected = selected + tf.one_hot(tf.argmax(score, -1), p, dtype=_F64)
    return selected


def highest_weights(mom: Moments, x0, k: int, n_outputs: int):
    """lime's 'highest_weights': ridge(alpha=0.01) on all features, keep the k largest |coef * x0|."""
    p = mom.gram.shape[-1]
    # every output's ridge on all features: one factorization, the outputs as right-hand sides
    coef = tf.linalg.matrix_transpose(
        _sym_solve(mom.gram + 0.01 * tf.eye(p, dtype=_F64), tf.linalg.matrix_transpose(mom.xy)))   # [c, o, p]
    importance = tf.abs(coef * tf.cast(x0, _F64)[:, None, :])
    _, idx = tf.math.top_k(importance, k)
    return tf.reduce_sum(tf.one_hot(idx, p, dtype=_F64), -2)
