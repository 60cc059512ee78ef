"""Counter-based random streams: every row's numbers depend on (seed, global row index) alone.

TensorFlow's stateless ops take one seed per call, so they cannot give each row of a batch its own
stream in one vectorized op. We therefore use the seed only through TFP's seed utilities
(``sanitize_seed`` / ``split_seed``: one derived key per purpose) and turn (key, row, element) into
bits with Threefry-2x32-20 (Salmon et al. 2011, the generator JAX uses), written with uint32
element-wise ops so that it runs unchanged on CPU, GPU and under XLA. A row's numbers therefore never
depend on the batch it came in, the chunk it was evaluated in, or the device.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ._lanes import elementwise

_M32 = 0xFFFFFFFF
_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA


def seed_to_tensor(seed) -> tf.Tensor:
    """Maps a user seed (int64 scalar tensor) to a stateless TFP seed, int32[2]."""
    seed = tf.cast(seed, tf.int64)
    words = tf.stack([tf.bitwise.right_shift(seed, 32), tf.bitwise.bitwise_and(seed, _M32)])
    # Reinterpret the two 32-bit words as int32 without overflow-dependent casts.
    words = tf.where(words >= 2**31, words - 2**32, words)
    return tfp.random.sanitize_seed(tf.cast(words, tf.int32))


def split_keys(seed: tf.Tensor, n: int, salt: str = "tfexplain") -> list[tf.Tensor]:
    """``n`` independent purpose keys from one stateless seed (TFP's split, no state); another ``salt``
    gives another, independent set."""
    return list(tfp.random.split_seed(seed, n=n, salt=salt))


_U32 = tf.uint32


def _rotl(x, r):
    return tf.bitwise.bitwise_or(tf.bitwise.left_shift(x, tf.constant(r, _U32)),
                                 tf.bitwise.right_shift(x, tf.constant(32 - r, _U32)))


def _u32(t):
    """int tensor holding values in [0, 2^32) -> uint32 (int32 words are reinterpreted bit for bit)."""
    if t.dtype == tf.int32:
        return tf.bitcast(t, _U32)
    return t if t.dtype == _U32 else tf.cast(tf.bitwise.bitwise_and(tf.cast(t, tf.int64), _M32), _U32)


def threefry2x32(key, c0, c1):
    """Threefry-2x32 with 20 rounds in uint32 arithmetic (wrap-around adds, native on CPU, GPU and XLA).

    key: [2] words; c0, c1: broadcastable counters; each int32, int64 (values in [0, 2^32)) or uint32.
    Returns two uint32 tensors.
    """
    key = _u32(tf.convert_to_tensor(key))
    k0, k1 = key[0], key[1]
    ks = (k0, k1, tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(k0, k1), tf.constant(_PARITY, _U32)))
    x0 = _u32(tf.convert_to_tensor(c0)) + ks[0]
    x1 = _u32(tf.convert_to_tensor(c1)) + ks[1]
    for i in range(20):
        x0 = x0 + x1
        x1 = tf.bitwise.bitwise_xor(_rotl(x1, _ROTATIONS[i % 8]), x0)
        if i % 4 == 3:
            j = (i + 1) // 4
            x0 = x0 + ks[j % 3]
            x1 = x1 + ks[(j + 1) % 3] + tf.constant(j, _U32)
    return x0, x1


def uniform(key, rows, shape) -> tf.Tensor:
    """float32 uniforms in the open interval (0, 1), shape [len(rows), *shape].

    Element e of row r is a function of (key, r, e) only.
    """
    size = int(np.prod(shape))
    counters = tf.range((size + 1) // 2, dtype=tf.int32)  # each counter gives two 32-bit words
    y0, y1 = threefry2x32(key, _u32(rows)[:, None], _u32(counters)[None, :])
    bits = tf.concat([y0, y1], axis=1)[:, :size]
    return tf.reshape(bits_to_unit(bits), tf.concat([tf.shape(rows), list(shape)], 0))


def uniform_row_blocks(key, rows, blocks, width: int) -> tf.Tensor:
    """float32 uniforms [len(rows), width]: row i's ``width`` numbers of its own block ``blocks[i]`` (int
    tensor [len(rows)]), the numbers :func:`uniform_blocks` gives that row for that block, so each row of
    a batch can read a different block of its stream (e.g. its visit in a pass over a data set)."""
    half = (width + 1) // 2
    counters = tf.cast(blocks, tf.int32)[:, None] * half + tf.range(half, dtype=tf.int32)[None]   # [n, half]
    y0, y1 = threefry2x32(key, _u32(rows)[:, None], _u32(counters))
    return bits_to_unit(tf.concat([y0, y1], axis=-1)[:, :width])


def uniform_blocks(key, rows, blocks, width: int) -> tf.Tensor:
    """float32 uniforms [len(rows), *blocks.shape, width]: ``width`` numbers for each block index in
    ``blocks`` (int tensor, any values in [0, 2^31 / ceil(width / 2))), from the row's own stream.

    Block b of row r reads the counters b * ceil(width / 2) + (0, 1, ...), two words each, so any chunk
    of blocks gives the numbers of the whole: samples can be generated in pieces, in any order.
    """
    half = (width + 1) // 2
    blocks = tf.cast(blocks, tf.int32)
    counters = blocks[..., None] * half + tf.range(half, dtype=tf.int32)       # [*blocks, half]
    rank = counters.shape.rank
    r = tf.reshape(_u32(rows), tf.concat([tf.shape(rows), tf.ones([rank], tf.int32)], 0))
    y0, y1 = threefry2x32(key, r, _u32(counters)[None])
    bits = tf.concat([y0, y1], axis=-1)[..., :width]
    return bits_to_unit(bits)


def normal_blocks(key, rows, blocks, width: int) -> tf.Tensor:
    """Standard normal draws [len(rows), *blocks.shape, width], block b of row r from the same counters
    as :func:`uniform_blocks` (b * ceil(width / 2) + (0, 1, ...)): each counter's two words are one
    Box-Muller pair (:func:`box_muller`)."""
    half = (width + 1) // 2
    u = uniform_blocks(key, rows, blocks, 2 * half)
    return box_muller(u[..., :half], u[..., half:])[..., :width]


_COMPILED_NORMALS = {}


def normal_blocks_compiled(key, rows, blocks, width: int) -> tf.Tensor:
    """:func:`normal_blocks` as one XLA program, also inside a graph that is not compiled (inside one
    that is, it is simply part of it): the generator is ~60 element-wise ops per number, which
    TensorFlow's kernels run as ~60 passes over memory (3.9 ms per 150,000 normals on this CPU, 80% of
    a default Lime call), XLA as one loop. The rows are padded to a power of two, so at most
    log2(rows) + 1 programs are compiled per (width, number of blocks), each on first use (about
    0.3 s), and the numbers generated at once are at most twice those asked for; the numbers are those
    of the row's own stream."""
    if width not in _COMPILED_NORMALS:
        _COMPILED_NORMALS[width] = tf.function(
            lambda k, r, b: normal_blocks(k, r, b, width), jit_compile=True, autograph=False, reduce_retracing=True)
    rows = tf.convert_to_tensor(rows)
    n = tf.shape(rows)[0]
    log2 = tf.math.log(tf.cast(tf.maximum(n, 1), tf.float64)) / np.log(2.0)
    size = tf.bitwise.left_shift(1, tf.cast(tf.math.ceil(log2), tf.int32))
    size = tf.where(size < n, 2 * size, size)              # the logarithm's rounding, either way:
    size = tf.where((size % 2 == 0) & (size // 2 >= n), size // 2, size)   # the least power of two >= n
    padded = tf.concat([rows, tf.zeros([size - n], rows.dtype)], 0)
    out = _COMPILED_NORMALS[width](tf.convert_to_tensor(key), padded, tf.convert_to_tensor(blocks))
    return tf.ensure_shape(out[:n], rows.shape.concatenate(blocks.shape).concatenate([width]))


def box_muller(u1, u2):
    """Standard normals from uniforms u1, u2 in (0, 1) (Box & Muller 1958): with r = sqrt(-2 log u1) and
    t = 2 pi u2, the pairs (r cos t, r sin t), concatenated along the last axis. Exactly normal for
    exact uniforms; about 2.4x cheaper than the inverse-CDF transform under XLA on a CPU (log and sqrt
    vectorize, the quantile's branches do not), and (cos, sin) by :func:`cos_sin_2pi`'s polynomials
    (XLA's sin and cos took 1.5 of the 1.75 ms per 150,000 normals on this CPU; now about 0.5 ms in all). The log is
    computed batch-invariantly (``_lanes``)."""
    r = elementwise(lambda t: tf.sqrt(-2.0 * tf.math.log(t)), u1, 0.5)
    cos, sin = cos_sin_2pi(u2)
    return tf.concat([r * cos, r * sin], -1)


# Taylor coefficients of cos and sin on [-pi/4, pi/4]: truncation below 3e-8 (float32's half ulp at 1)
_COS = [(-1.0) ** k / np.prod(np.arange(1, 2 * k + 1, dtype=np.float64)) for k in range(6)]
_SIN = [(-1.0) ** k / np.prod(np.arange(1, 2 * k + 2, dtype=np.float64)) for k in range(5)]


def cos_sin_2pi(u):
    """(cos 2 pi u, sin 2 pi u) for float32 u in [0, 1), to float32 accuracy, with multiplies and adds
    only (the same numbers on any device, for any batch shape): the quadrant k = floor(4u), the angle
    within it pi/4 + t with |t| <= pi/4 from Taylor polynomials, rotated by k quarter turns."""
    q = 4.0 * u
    k = tf.floor(q)
    t = (q - k - 0.5) * (np.pi / 2)              # the angle within the quadrant, less pi/4
    t2 = t * t

    def horner(coefs):
        acc = tf.fill(tf.shape(t2), tf.constant(coefs[-1], t2.dtype))
        for c in coefs[-2::-1]:
            acc = acc * t2 + c
        return acc

    c, s = horner(_COS), t * horner(_SIN)
    half = np.sqrt(0.5)
    cos, sin = (c - s) * half, (c + s) * half     # of pi/4 + t
    k = tf.cast(k, tf.int32) % 4
    return (tf.where(k == 0, cos, tf.where(k == 1, -sin, tf.where(k == 2, -cos, sin))),
            tf.where(k == 0, sin, tf.where(k == 1, cos, tf.where(k == 2, -sin, -cos))))


def bits_to_unit(bits):
    """32-bit words (uint32, or int64 in [0, 2^32)) -> float32 in [2^-24, 1 - 2^-24]: 23 bits, so that
    the largest value stays representable below 1 (with 24 bits it rounds to 1.0 and the normal
    quantile is inf)."""
    top = tf.bitwise.right_shift(_u32(tf.convert_to_tensor(bits)), tf.constant(9, _U32))
    return (tf.cast(top, tf.float32) + 0.5) * (2.0 ** -23)


def normal(key, rows, shape) -> tf.Tensor:
    """Standard normal draws [len(rows), *shape]: Box-Muller pairs (:func:`box_muller`) of
    :func:`uniform`'s words."""
    size = int(np.prod(shape))
    half = (size + 1) // 2
    u = uniform(key, rows, (2 * half,))
    z = box_muller(u[:, :half], u[:, half:])[:, :size]
    return tf.reshape(z, tf.concat([tf.shape(rows), list(shape)], 0))
