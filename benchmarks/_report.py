"""Shared by benchmarks/images.py and benchmarks/text.py: timing, the machine line, the peers' row
counting and the markdown table (tfexplain rows next to lime's and shap's on the same model)."""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass, field


def timed(fn, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` calls of fn() (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    import lime
    import shap
    import tensorflow as tf
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = tf.config.list_physical_devices("GPU")
    lime_version = getattr(lime, "__version__", None)
    if lime_version is None:
        from importlib.metadata import version
        lime_version = version("lime")
    return (f"Machine: {platform.machine()}, {cores} CPU cores, {'GPU: ' + str(len(gpus)) if gpus else 'no GPU'}; "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}, shap {shap.__version__}, "
            f"lime {lime_version}")


class Counted:
    """A peer's model function that counts the rows it is called on (model rows per instance)."""

    def __init__(self, fn):
        self.fn, self.rows, self.calls = fn, 0, 0

    def __call__(self, batch):
        self.rows += len(batch)
        self.calls += 1
        return self.fn(batch)


@dataclass
class Row:
    method: str
    xla: str                    # "yes" / "no" / "–"
    instances: int
    rows_per_instance: float    # model rows evaluated per instance
    seconds: float
    floor_per_row: float        # seconds of the model alone per model row (same chunks), for the ratio
    peer: str = ""              # tfexplain rows: which peer family ("shap" / "lime") they compare with
    family: str = ""            # peer rows: their family and model call, e.g. ("lime", "model.predict")
    call: str = ""
    first_call: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def per_instance(self) -> float:
        return self.seconds / self.instances

    @property
    def ratio(self) -> float:
        return self.per_instance / (self.rows_per_instance * self.floor_per_row)


def table(rows: list[Row], calls=("model.predict", "tf.function")) -> str:
    """The markdown table; a tfexplain row's speed-up is its instances/s over each peer row's of its family."""
    peers = {(r.family, r.call): r for r in rows if r.family}
    head = (f"| method | XLA | instances | model rows / instance | seconds | instances/s | ratio to floor | "
            f"first call (s) | speed-up vs peer ({' / '.join(calls)}) |")
    out = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r.peer:
            ups = [peers.get((r.peer, c)) for c in calls]
            speed = " / ".join("–" if p is None else f"{p.per_instance / r.per_instance:,.1f}×" for p in ups)
            speed = f"{speed} vs {r.peer}"
        else:
            speed = "–"
        first = "–" if r.first_call is None else f"{r.first_call:.1f}"
        out.append(f"| {r.method} | {r.xla} | {r.instances} | {r.rows_per_instance:,.0f} | {r.seconds:.2f} | "
                   f"{r.instances / r.seconds:,.2f} | {r.ratio:.2f} | {first} | {speed} |")
    return "\n".join(out)


def arguments(doc: str, *, instances: int, epochs: int, trained: str) -> argparse.ArgumentParser:
    """The options benchmarks/images.py and text.py share."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=instances,
                        help=f"instances tfexplain explains (default {instances})")
    parser.add_argument("--peer-instances", type=int, default=2, help="instances lime / shap explain (default 2)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per instance (default 1000; even)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of tfexplain and floor, best kept")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs of {trained}")
    parser.add_argument("--no-xla", action="store_true", help="skip the jit_compile=True rows")
    parser.add_argument("--no-peers", action="store_true", help="skip lime and shap")
    parser.add_argument("--peer-calls", default="model.predict,tf.function",
                        help="how the peers call the model: model.predict, tf.function or both (default)")
    return parser


def measure(explainer, x, name: str, peer: str, jit: bool, repeats: int):
    """(Row, the last Explanation) of a tfexplain explainer on x: the first call (trace + XLA compile and
    one run), the best of ``repeats`` further calls, and the model alone on the same rows in the same
    chunks (``model_floor``, warmed up on the same shape)."""
    from tfexplain.evaluation import model_floor
    out = []
    start = time.perf_counter()
    explainer(x, seed=0)
    first = time.perf_counter() - start
    seconds = timed(lambda: out.append(explainer(x, seed=1)), repeats)
    floor = model_floor(explainer)
    floor(x)                                # trace (+ XLA compile: one program per shape)
    floor_seconds = timed(lambda: floor(x).numpy(), repeats)
    floor_rows = len(x) * explainer.sampler.n_samples * explainer.masker.rows_per_sample
    row = Row(name, "yes" if jit else "no", len(x), explainer.n_evals_per_instance, seconds,
              floor_seconds / floor_rows, peer=peer, first_call=first, extra={"floor_s": floor_seconds})
    return row, out[-1]
