"""The graph properties: one trace for every batch size, XLA, determinism, chunking invisibility."""

import re

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from conftest import mlp_numpy, mlp_tf, mlp_weights


@pytest.fixture(params=["KernelShap", "Lime", "Lime per row"])
def make(request, rng):
    d = 5
    params = mlp_weights(d, outputs=2, seed=4)
    data = rng.normal(size=(64, d)).astype(np.float32)

    def build(**kw):
        if request.param == "KernelShap":
            return tfexplain.KernelShap(mlp_tf(params), data[:8], n_samples=kw.pop("n_samples", 20), **kw)
        return tfexplain.Lime(mlp_tf(params), data, n_samples=kw.pop("n_samples", 60),
                              shared_samples=request.param == "Lime", **kw)

    return build, data


def test_no_retracing_across_batch_sizes(make):
    build, data = make
    explainer = build()
    big = np.tile(data, (5, 1))[:300]
    explainer(big[:3], seed=0)
    explainer(big, seed=0)
    explainer(big[:17], seed=4)
    assert explainer.tracing_count == 1


def test_same_seed_same_numbers_other_seed_other_numbers(make):
    build, data = make
    explainer = build()
    a = explainer(data[:6], seed=11).values
    np.testing.assert_array_equal(a, explainer(data[:6], seed=11).values)
    np.testing.assert_array_equal(a, build()(data[:6], seed=11).values)  # a fresh explainer too
    assert not np.allclose(a, explainer(data[:6], seed=12).values)


def test_results_do_not_depend_on_batching_or_chunking(make):
    build, data = make
    whole = build()(data[:10], seed=3).values
    # row by row with the global row index, and with tiny chunks (many loop iterations)
    tiny = build(batch_size=7)
    pieces = [tiny(data[i:min(i + 3, 10)], seed=3, row_offset=i).values for i in range(0, 10, 3)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-5, atol=1e-6)
    # a row's numbers depend on its index, not on its neighbours
    shuffled = build()(np.concatenate([data[:5], data[20:25]]), seed=3).values
    np.testing.assert_array_equal(shuffled[:5], whole[:5])


def test_xla_compiles_and_matches(make):
    build, data = make
    plain = build()(data[:4], seed=2)
    xla_explainer = build(jit_compile=True)
    compiled = xla_explainer(data[:4], seed=2)
    np.testing.assert_allclose(compiled.values, plain.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled.base_values, plain.base_values, rtol=1e-5, atol=1e-6)
    if plain.stderr is not None:  # the bootstrap's many small solves take the unrolled factorization
        np.testing.assert_allclose(compiled.stderr, plain.stderr, rtol=1e-3, atol=1e-6)
    # the explain function really is an XLA cluster with no host-side ops
    hlo = xla_explainer.graph_function(jit_compile=True).experimental_get_compiler_ir(
        tf.constant(data[:4]), tf.constant(2, tf.int64), tf.range(4, dtype=tf.int64))(stage="hlo")
    assert "HloModule" in hlo and "custom-call" not in hlo.replace("custom_call_target=\"__cpu", "")
    # the chunk program the calls run is a host-op-free XLA program too
    c = xla_explainer.instances_per_chunk
    xs = np.resize(data, (c, data.shape[1])).astype(np.float32)
    hlo = xla_explainer._xla_program.experimental_get_compiler_ir(
        tf.constant(xs), tf.constant(2, tf.int64), tf.range(c, dtype=tf.int64))(stage="hlo")
    assert "HloModule" in hlo and "custom-call" not in hlo.replace("custom_call_target=\"__cpu", "")


def test_xla_compiles_at_most_two_programs_whatever_the_batch_sizes(make):
    build, data = make
    try:  # KernelShap: the plain regression (the adjustment's XLA compile is slow and tested elsewhere)
        explainer, plain = (build(jit_compile=True, batch_size=2**16, adjust=False),
                            build(batch_size=2**16, adjust=False))
    except TypeError:  # Lime
        explainer, plain = build(jit_compile=True, batch_size=2**16), build(batch_size=2**16)
    assert explainer.instances_per_chunk > 1
    big = np.tile(data, (3, 1))
    for n in (1, 7, 49, 50, 130, 3):
        got = explainer(big[:n], seed=5)
        np.testing.assert_allclose(got.values, plain(big[:n], seed=5).values, rtol=1e-4, atol=1e-5)
    # Lime's shared samples: chunks of a fixed size, the last padded: one program
    assert explainer.compilations == (1 if explainer.fixed_chunks else 2)
    assert explainer.tracing_count == 1


def test_efficiency_and_shapes_under_xla_with_chunks(rng):
    d = 6
    params = mlp_weights(d, outputs=1, seed=9)
    bg = rng.normal(size=(7, d)).astype(np.float32)
    x = rng.normal(size=(9, d)).astype(np.float32)
    # the plain regression (adjustment and bootstrap under XLA: test_xla_compiles_and_matches)
    exp = tfexplain.KernelShap(mlp_tf(params, squeeze=True), bg, n_samples=30, batch_size=50, jit_compile=True,
                               adjust=False, n_bootstrap=0)(x)
    np.testing.assert_allclose(exp.values.sum(1), exp.model_output - exp.base_values, atol=2e-5)


def test_model_floor_evaluates_the_same_rows_in_the_same_chunks(rng):
    from tfexplain.evaluation import model_floor
    d = 4
    params = mlp_weights(d, outputs=1, seed=2)
    bg = rng.normal(size=(3, d)).astype(np.float32)
    x = rng.normal(size=(5, d)).astype(np.float32)
    explainer = tfexplain.KernelShap(mlp_tf(params), bg, n_samples=10, batch_size=8)  # pieces of 2 pairs
    got = float(model_floor(explainer)(x))
    scale = 1.0 + 1e-6 * (np.arange(3) % 7)
    rows = x[:, None, :] * scale[None, :, None]
    want = explainer.sampler.n_samples * mlp_numpy(params, rows.reshape(-1, d)).reshape(5, 3).mean(1).sum()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_model_floor_takes_images_and_token_ids(rng):
    """The floor takes the model's own input: images [n, H, W, C] (the model alone on each image,
    n_samples times, not on the masker's flat rows) and int token ids [n, L]."""
    from tfexplain.evaluation import model_floor
    w = rng.normal(size=(4 * 4 * 2, 2)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 2], tf.float32)])
    def cnn(img):
        return tf.tanh(tf.reshape(img, [-1, 32]) @ w)

    images = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    explainer = tfexplain.Lime(cnn, masker=tfexplain.maskers.Image((2, 2), fill=0.5), n_samples=12, target=1,
                               batch_size=5)
    want = 12 * np.tanh(images.reshape(3, 32) @ w)[:, 1].sum()
    np.testing.assert_allclose(float(model_floor(explainer)(images)), want, rtol=1e-5)
    emb = rng.normal(size=(10,)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.int32)])
    def text(ids):
        return tf.sigmoid(tf.reduce_sum(tf.gather(emb, ids) * tf.range(1.0, 7.0), 1))

    ids = rng.integers(0, 10, size=(4, 6)).astype(np.int32)
    explainer = tfexplain.KernelShap(text, tfexplain.maskers.Text(mask_token=1), n_samples=10, batch_size=7)
    want = 10 * (1 / (1 + np.exp(-(emb[ids] * np.arange(1.0, 7.0)).sum(1)))).sum()
    np.testing.assert_allclose(float(model_floor(explainer)(ids)), want, rtol=1e-5)


@pytest.mark.parametrize("p", [1, 7, 64, 65])
def test_solves_traced_for_xla_match_numpy(rng, p):
    from tfexplain import solvers
    a = rng.normal(size=(3, p, 2 * p + 3))
    matrix = a @ np.swapaxes(a, -1, -2)
    rhs = rng.normal(size=(3, p, 2))

    def solve(m, r):
        with solvers.compiled_solves():
            return solvers._sym_solve(m, r)

    got = tf.function(solve, jit_compile=True)(tf.constant(matrix), tf.constant(rhs)).numpy()
    np.testing.assert_allclose(got, np.linalg.solve(matrix, rhs), rtol=1e-6, atol=1e-8)


def test_lime_shared_chunks_grow_with_the_width():
    # the chunk's product columns are made once for its rows: wider tables share them over more rows
    sizes = {d: tfexplain.explainers.shared_chunk(d) for d in (1, 12, 32, 33, 64, 65, 100, 1000)}
    assert sizes == {1: 32, 12: 32, 32: 32, 33: 64, 64: 64, 65: 128, 100: 128, 1000: 128}
    train = np.random.default_rng(0).normal(size=(50, 100)).astype(np.float32)
    lime = tfexplain.Lime(lambda t: tf.reduce_sum(t, 1), train, n_samples=200)
    assert lime.instances_per_chunk == 128 and lime.fixed_chunks


def test_instance_chunks_fit_the_batch_size_budget(rng):
    d = 12
    params = mlp_weights(d, outputs=1, seed=3)
    bg = rng.normal(size=(4, d)).astype(np.float32)
    budget = 4096

    def make(**kw):
        return tfexplain.KernelShap(mlp_tf(params), bg, n_samples=40, batch_size=budget, **kw)

    for explainer in [make(n_bootstrap=0), make(), make(tolerance=0.05), make(tolerance=0.05, n_bootstrap=0),
                      tfexplain.Lime(mlp_tf(params), bg, n_samples=40, batch_size=budget, shared_samples=False),
                      tfexplain.Lime(mlp_tf(params), bg, n_samples=40, batch_size=budget)]:
        per = explainer._instance_floats()
        cap = tfexplain.explainers.shared_chunk(d) if explainer.fixed_chunks else budget
        assert explainer.instances_per_chunk == min(cap, max(1, budget * d // per))
        assert explainer.instances_per_chunk == 1 or explainer.instances_per_chunk * per <= budget * d
    # the bootstrap's replicate designs count, with tolerance= too (it bootstraps every round)
    assert make().instances_per_chunk < make(n_bootstrap=0).instances_per_chunk
    assert make(tolerance=0.05).instances_per_chunk < make(tolerance=0.05, n_bootstrap=0).instances_per_chunk


def test_solves_traced_for_xla_do_not_grow_with_the_system():
    """The XLA program of a solve is one loop body whatever p (XLA's Cholesky and triangular-solve
    expanders unrolled into hundreds of kernels at p = 30, each compiled on its own: 10-25 s)."""
    from tfexplain import solvers

    def hlo(p):
        def solve(m, r):
            with solvers.compiled_solves():
                return solvers._sym_solve(m, r)
        spec = (tf.TensorSpec([4, p, p], tf.float64), tf.TensorSpec([4, p, 3], tf.float64))
        text = tf.function(solve, jit_compile=True).experimental_get_compiler_ir(*spec)(stage="hlo")
        return [re.search(r"\s([a-z][a-z0-9-]*)\(", line.split(" = ", 1)[1]).group(1)
                for line in text.splitlines() if " = " in line]

    # up to 32 columns one loop body; above, blocks of 32 (each a loop body and products), so the
    # program grows with the blocks, not the columns
    small, medium, large = hlo(20), hlo(30), hlo(40)
    assert "cholesky" not in large and "triangular-solve" not in large
    assert len(medium) == len(small)
    assert abs(len(hlo(60)) - len(large)) <= 0.05 * len(large) and len(large) < 4 * len(small)


@pytest.mark.parametrize("p", [31, 40, 70])
def test_solves_traced_for_xla_of_singular_systems_give_the_minimum_norm_solution(rng, p):
    # a PSD matrix of rank p - 5 and a right-hand side in its range, the blocked factor (p > 32) too
    from tfexplain import solvers
    a = rng.normal(size=(2, p, p - 5))
    matrix = a @ np.swapaxes(a, -1, -2)
    rhs = matrix @ rng.normal(size=(2, p, 2))

    def solve(m, r):
        with solvers.compiled_solves():
            return solvers._sym_solve(m, r), solvers._factor_inverse(m)[1] @ r

    got, via_inverse = [t.numpy() for t in tf.function(solve, jit_compile=True)(tf.constant(matrix), tf.constant(rhs))]
    want = np.linalg.pinv(matrix, hermitian=True) @ rhs
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    np.testing.assert_allclose(via_inverse, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("total,cap", [(1, 4), (7, 7), (8, 4), (10, 4), (13, 5), (29, 6), (5, 1)])
@pytest.mark.parametrize("static", [True, False])
def test_chunked_map_covers_every_row_once_in_equal_chunks(total, cap, static):
    """Chunks are equal slices of at most `cap` rows (the last one starting early instead of padded):
    every row's result comes back once and in order, with and without a static batch; with one, fn
    sees the fewest chunks' size."""
    from tfexplain.evaluation import chunked_map

    x = np.arange(total * 3, dtype=np.float32).reshape(total, 3)
    sizes = []

    def fn(e):
        sizes.append(e["x"].shape[0])
        return {"y": e["x"] * 2.0, "s": tf.reduce_sum(e["x"], 1)}

    spec = {"y": tf.TensorSpec([None, 3], tf.float32), "s": tf.TensorSpec([None], tf.float32)}
    sig = [tf.TensorSpec([total if static else None, 3], tf.float32)]
    run = tf.function(lambda t: chunked_map(fn, {"x": t}, cap, spec), input_signature=sig)
    out = run(tf.constant(x))
    np.testing.assert_array_equal(out["y"].numpy(), x * 2.0)
    np.testing.assert_array_equal(out["s"].numpy(), x.sum(1))
    if static:   # the chunk size is known when tracing: at most cap, the fewest equal chunks
        chunks = -(-total // cap)
        assert sizes == [-(-total // chunks)]
