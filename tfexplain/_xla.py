"""Whether the graph being traced is one XLA will compile (set by the explainer around its XLA
programs): the parts choose their XLA-friendly form then (graph-loop solves; the generator inlined
rather than launched as a program of its own)."""

from __future__ import annotations

import contextlib
import contextvars

_TRACING = contextvars.ContextVar("tfexplain_xla_tracing", default=False)


@contextlib.contextmanager
def tracing(enabled: bool = True):
    """Marks the code traced inside as part of a graph XLA compiles (``enabled``) or not."""
    token = _TRACING.set(bool(enabled))
    try:
        yield
    finally:
        _TRACING.reset(token)


def active() -> bool:
    """Whether the code being traced is part of a graph XLA compiles."""
    return _TRACING.get()
