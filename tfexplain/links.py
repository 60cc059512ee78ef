"""Link functions: the space attributions are computed in. ``"identity"``: the model's outputs as they
are; ``"logit"``: log-odds of a probability output (values outside [0, 1] become NaN rather than being
clipped, so the call boundary can say the model gave no probabilities)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import _diagnostics
from ._lanes import elementwise

LOGIT_EPS = 1e-7


def logit(t):
    """log(p / (1 - p)) of p clipped to [eps, 1 - eps]; NaN where t is not in [0, 1] (NaN, Inf, or a
    logit / score: no probability, and clipping it would quietly explain a constant)."""
    p = tf.clip_by_value(t, LOGIT_EPS, 1.0 - LOGIT_EPS)
    log_odds = elementwise(tf.math.log, p, 0.5) - elementwise(tf.math.log1p, -p, 0.5)
    return tf.where(_diagnostics.inside_unit(t), log_odds, tf.constant(np.nan, t.dtype))


def link_fn(name: str):
    """The link ``name`` ("identity" or "logit", already validated) as a function of tensors."""
    if name == "identity":
        return lambda t: t
    return logit
