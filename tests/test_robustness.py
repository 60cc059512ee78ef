"""Bad inputs found by the sweep of issue #11: each is rejected with an error naming the argument
(or, for models that cannot be traced, handled) instead of giving silent NaN / zeros or a TF error."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfexplain
from tfexplain import metrics


def _sum_model(t):
    return tf.reduce_sum(t, 1)


# ---- item 15: messages for empty x and values beyond float32 ------------------------------------

@pytest.mark.parametrize("empty", [[], np.zeros(0), np.zeros((0, 3))])
def test_empty_x_is_reported_as_empty_not_as_zero_features(empty, rng):
    bg = rng.normal(size=(4, 3)).astype(np.float32)
    explainer = tfexplain.KernelShap(_sum_model, bg, n_samples=6)
    with pytest.raises(ValueError, match=r"`x` is empty") as info:
        explainer(empty)
    assert "features" not in str(info.value)
    with pytest.raises(ValueError, match=r"`x` is empty"):
        metrics.deletion(_sum_model, empty, np.zeros((0, 3)))


def test_values_beyond_float32_range_are_named_as_such(rng):
    bg = rng.normal(size=(4, 3))
    big = bg.copy()
    big[1, 2] = 1e39
    with pytest.raises(ValueError, match=r"`background`.*float32.*row 1, column 2") as info:
        tfexplain.KernelShap(_sum_model, big)
    assert "NaN" not in str(info.value)
    explainer = tfexplain.KernelShap(_sum_model, bg.astype(np.float32), n_samples=6)
    with pytest.raises(ValueError, match=r"`x`.*float32.*row 1, column 2"):
        explainer(big)
    with pytest.raises(ValueError, match=r"`x` contains NaN or Inf"):  # a real Inf is still an Inf
        explainer(np.array([[0.0, np.inf, 1.0]]))
    assert explainer.tracing_count == 0


def test_faithfulness_correlation_subset_size_zero_is_an_error(rng):
    x = rng.normal(size=(2, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="subset_size.*>= 1"):
        metrics.faithfulness_correlation(_sum_model, x, x, subset_size=0, n_runs=4)
    default = metrics.faithfulness_correlation(_sum_model, x, x, subset_size=None, n_runs=4)
    one = metrics.faithfulness_correlation(_sum_model, x, x, subset_size=1, n_runs=4)
    np.testing.assert_allclose(default, one)  # None: the default max(1, d // 4) = 1
