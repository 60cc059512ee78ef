"""Helpers shared by the compat layers: seeds from numpy RNGs and a small explainer cache."""

from __future__ import annotations

import inspect
from collections import OrderedDict

import numpy as np


def check_random_state(random_state) -> np.random.RandomState:
    """sklearn's rule: None -> numpy's global RandomState, int -> a new one, a RandomState as is."""
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, (int, np.integer)):
        return np.random.RandomState(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return random_state
    raise ValueError(f"`random_state` must be None, an int or a numpy RandomState, got {random_state!r}.")


def next_seed(rs: np.random.RandomState) -> int:
    """One tfexplain seed per call, drawn from the RandomState (so np.random.seed / random_state
    make a sequence of calls reproducible, and repeated calls differ as they do in lime and shap)."""
    return int(rs.randint(0, 2**31 - 1))


def fn_key(fn):
    """A cache key for a model / predict function: a bound method by (its object, its function),
    since ``model.predict`` is a new object at every attribute access; anything else by identity."""
    if inspect.ismethod(fn):
        return ("method", id(fn.__self__), fn.__func__)
    return ("object", id(fn))


class ExplainerCache:
    """The last few explainers built, by (model, settings); holds the models so their ids stay valid."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items = OrderedDict()

    def get(self, fn, settings, build):
        key = (fn_key(fn), settings)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][1]
        explainer = build()
        self._items[key] = (fn, explainer)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return explainer

    def __len__(self):
        return len(self._items)
