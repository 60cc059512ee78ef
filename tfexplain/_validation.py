"""Checks at the public boundary: clear errors naming the argument, before any graph is traced."""

from __future__ import annotations

import numbers

import numpy as np


def as_matrix(value, name: str, *, n_features: int | None = None, allow_vector: bool = False,
              width_of: str = "the explainer's background") -> np.ndarray:
    """Converts ``value`` to a finite float32 matrix [rows, features] or raises."""
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    if hasattr(value, "to_numpy") and callable(value.to_numpy):  # pandas
        value = value.to_numpy()
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"`{name}` must be a numeric array, got {type(value).__name__}: {err}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"`{name}` must have a numeric dtype, got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"`{name}` must be real-valued, got dtype {arr.dtype}.")
    if arr.ndim <= 1 and arr.size == 0:  # [] is no rows, not one row of 0 features
        raise ValueError(f"`{name}` is empty (shape {arr.shape}): it needs at least one row.")
    if arr.ndim == 1 and allow_vector:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have rank 2 [rows, features], got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape}): it needs at least one row.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"`{name}` has {arr.shape[1]} features but {width_of} has {n_features}.")
    if arr.shape[1] == 0:
        raise ValueError(f"`{name}` has no features (shape {arr.shape}).")
    finite = np.isfinite(arr)
    if not np.all(finite):
        bad = np.argwhere(~finite)[0]
        raise ValueError(f"`{name}` contains NaN or Inf (first at row {bad[0]}, column {bad[1]}).")
    with np.errstate(over="ignore"):
        arr32 = arr.astype(np.float32)
    if not np.all(np.isfinite(arr32)):  # finite in its own dtype, Inf in float32
        bad = np.argwhere(~np.isfinite(arr32))[0]
        raise ValueError(
            f"`{name}` has a value beyond float32's range ({arr[bad[0], bad[1]]:.4g} at row {bad[0]}, column "
            f"{bad[1]}; |value| must be at most {np.finfo(np.float32).max:.4g}): explanations are computed in float32.")
    return arr32


def as_int(value, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return value


def as_seed(seed) -> int:
    """A seed is an int in [0, 2^63)."""
    if isinstance(seed, np.ndarray) and seed.shape == ():
        seed = seed.item()
    seed = as_int(seed, "seed", minimum=0)
    if seed >= 2**63:
        raise ValueError(f"`seed` must be < 2**63, got {seed}.")
    return seed


def as_weights(weights, n: int, name: str = "background_weights"):
    """None, or ``n`` finite non-negative float64 weights with a positive sum (one per background row)."""
    if weights is None:
        return None
    w = np.asarray(weights, np.float64).reshape(-1)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"`{name}` must be {n} finite non-negative numbers with a positive sum.")
    return w


MAX_ROW_ID = 2**32  # row ids are the 32-bit counters of the rows' random streams


def as_row_ids(row_ids, n: int, name: str = "row_ids") -> np.ndarray:
    """int64 [n]: one global row index per row, each in [0, 2^32)."""
    if hasattr(row_ids, "numpy"):
        row_ids = row_ids.numpy()
    a = np.asarray(row_ids)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"`{name}` must be integers, got dtype {a.dtype}.")
    if a.shape != (n,):
        raise ValueError(f"`{name}` must have one id per row: shape ({n},), got {a.shape}.")
    if n and (a.min() < 0 or a.max() >= MAX_ROW_ID):
        bad = int(np.flatnonzero((a < 0) | (a >= MAX_ROW_ID))[0])
        raise ValueError(f"`{name}` must be in [0, 2**32) (the rows' global indices); got {int(a[bad])} at "
                         f"index {bad}.")
    return a.astype(np.int64)


def row_range(n: int, offset: int) -> np.ndarray:
    """int64 [n]: the global ids ``offset`` .. ``offset + n - 1`` of consecutive rows (``row_offset=``)."""
    if offset + n > MAX_ROW_ID:
        raise ValueError(f"`row_offset` + rows must stay below 2**32 (row ids are 32-bit counters), got {offset + n}.")
    return np.arange(offset, offset + n, dtype=np.int64)


def as_real(value, name: str) -> float:
    """A finite real number (not a bool) as a float; TypeError / ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}.")
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    return float(value)


def as_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}, got {value!r}.")
    return value


def as_names(names, n: int, name: str, default_prefix: str) -> list[str]:
    if names is None:
        return [f"{default_prefix}{i}" for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValueError(f"`{name}` has {len(names)} entries but there are {n}.")
    return names


def frame_columns(value) -> list[str] | None:
    """The column names of a pandas DataFrame (as str), else None (arrays, tensors, lists)."""
    columns = getattr(value, "columns", None)
    if columns is None or not hasattr(value, "to_numpy") or getattr(value, "ndim", 2) != 2:
        return None
    return [str(c) for c in columns]


def check_columns(x, expected: list[str], name: str = "x") -> None:
    """If ``x`` is a DataFrame, its columns must be ``expected`` (names and order), else ValueError
    naming the missing, unexpected or reordered columns."""
    columns = frame_columns(x)
    if columns is None or columns == list(expected):
        return
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    if not parts:
        parts.append(f"same names in a different order (expected {list(expected)}, got {columns}); "
                     f"reorder with {name}[explainer.feature_names]")
    raise ValueError(f"`{name}`'s columns do not match the explainer's features: " + "; ".join(parts) + ".")
