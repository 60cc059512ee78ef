"""Import TensorFlow without its C++ start-up noise on stderr.

TensorFlow 2.20+ logs through absl before ``absl::InitializeLog()`` is called, and those lines (CUDA
stubs, oneDNN and CPU-feature notices, "All log messages before absl::InitializeLog() ...") ignore
``TF_CPP_MIN_LOG_LEVEL``. While tensorflow (and keras) are first imported, file descriptor 2 is pointed
at a temporary file; afterwards the lines that are not absl INFO / WARNING notices (errors, Python
warnings, anything else) are written back to stderr. Nothing is filtered when the user set
``TF_CPP_MIN_LOG_LEVEL=0`` (asking for every log line) or tensorflow was already imported.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_NOTICE = re.compile(r"^[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\]")
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LOG_LINE = re.compile(r"^[IWEF]\d{4} ")


def filter_noise(text: str) -> str:
    """``text`` without absl INFO / WARNING lines (and their continuation lines) and the preamble."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(_PREAMBLE):
            dropping = False
            continue
        if _NOTICE.match(line):
            dropping = True
            continue
        if _LOG_LINE.match(line) or not dropping or not line.strip() or line.startswith(("Traceback", "  File")):
            dropping = False
            kept.append(line)
        # else: continuation of a dropped notice (e.g. cpu_feature_guard's "To enable the following ...")
    return "".join(kept)


def import_tensorflow() -> None:
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "") == "0":
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreters and the like)
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
            try:
                import keras  # noqa: F401
            except ImportError:
                pass
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = filter_noise(tmp.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
