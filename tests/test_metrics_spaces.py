"""Metrics score an explainer in its own output space (link, output_key), with independent random
streams per purpose."""
import numpy as np
import tensorflow as tf

import tfexplain
from tfexplain import metrics

W = np.array([1.5, -1.0, 0.5, 2.0])


def sigmoid_model(x):
    return tf.sigmoid(tf.linalg.matvec(x, tf.constant(W, tf.float32)) - 0.2)


def test_logit_attributions_are_scored_against_log_odds(rng):
    # exact SHAP in log-odds of a logistic model against one background row b: phi_j = w_j (x_j - b_j),
    # which explains log-odds drops exactly (and probability drops only roughly)
    b = np.zeros((1, 4), np.float32)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    exp = tfexplain.KernelShap(sigmoid_model, b, sampler="exact", link="logit")(x)
    np.testing.assert_allclose(exp.values, W * (x - b), rtol=1e-4, atol=1e-5)
    inf = metrics.infidelity(sigmoid_model, x, exp, baseline=b, n_samples=40)
    np.testing.assert_allclose(inf, 0.0, atol=1e-8)
    corr = metrics.faithfulness_correlation(sigmoid_model, x, exp, baseline=b, subset_size=2, n_runs=30)
    np.testing.assert_allclose(corr, 1.0, atol=1e-5)
    curve = metrics.deletion(sigmoid_model, x, exp, baseline=b)
    p = 1 / (1 + np.exp(-(x @ W - 0.2)))
    np.testing.assert_allclose(curve.values[:, 0], np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(curve.values[:, -1], -0.2, atol=1e-4)
    # plain arrays are scored in the model's own space unless told otherwise
    raw = metrics.deletion(sigmoid_model, x, exp.values, baseline=b)
    np.testing.assert_allclose(raw.values[:, 0], p, rtol=1e-5)
    told = metrics.deletion(sigmoid_model, x, exp.values, baseline=b, link="logit")
    np.testing.assert_allclose(told.values, curve.values, rtol=1e-6)


def test_evaluate_scores_a_logit_explainer_in_log_odds(rng):
    b = np.zeros((1, 4), np.float32)
    x = rng.normal(size=(4, 4)).astype(np.float32)
    ks = tfexplain.KernelShap(sigmoid_model, b, sampler="exact", link="logit")
    report = metrics.evaluate({"ks": ks}, x, baseline=b, n_runs=20, sensitivity_samples=2)
    np.testing.assert_allclose(report["ks"]["infidelity"], 0.0, atol=1e-8)


def test_output_key_is_honoured(rng):
    def dict_model(x):
        return {"proba": sigmoid_model(x), "other": tf.reduce_sum(x, 1) * 100.0}

    x = rng.normal(size=(3, 4)).astype(np.float32)
    a = rng.normal(size=(3, 4))
    plain = metrics.deletion(sigmoid_model, x, a)
    keyed = metrics.deletion(dict_model, x, a, output_key="proba")
    np.testing.assert_allclose(keyed.values, plain.values, rtol=1e-6)
    np.testing.assert_allclose(metrics.infidelity(dict_model, x, a, output_key="proba", seed=3),
                               metrics.infidelity(sigmoid_model, x, a, seed=3), rtol=1e-6)
    ks = tfexplain.KernelShap(dict_model, np.zeros((1, 4), np.float32), sampler="exact", output_key="proba")
    report = metrics.evaluate({"ks": ks}, x, baseline=np.zeros(4), n_runs=10, sensitivity_samples=2)
    ref = metrics.deletion(sigmoid_model, x, ks(x), baseline=np.zeros(4))
    np.testing.assert_allclose(report["ks"]["deletion_auc"], ref.auc, rtol=1e-6)


def test_each_random_purpose_has_its_own_stream():
    n, d, runs, seed = 3, 8, 400, 7
    faith = metrics._uniforms("faithfulness", seed, n, (runs, d))
    infid = metrics._uniforms("infidelity", seed, n, (runs, d))
    sens = metrics._uniforms("sensitivity", seed, n, (runs, d))
    for a, b in [(faith, infid), (faith, sens), (infid, sens)]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.05
    # faithfulness subsets (the 2 smallest keys) and infidelity subsets (keys < 1/2) don't share draws
    subsets = metrics._random_subsets(n, d, d // 2, runs, seed)
    halves = (infid < 0.5).astype(np.float32)
    agreement = np.mean(subsets == halves)
    assert 0.45 < agreement < 0.55
    # and each is reproducible from the seed
    np.testing.assert_array_equal(metrics._uniforms("infidelity", seed, n, (runs, d)), infid)
