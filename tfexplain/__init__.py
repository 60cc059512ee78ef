"""tfexplain: LIME and KernelSHAP for TensorFlow/Keras models, computed inside TensorFlow graphs."""

import os as _os

# TensorFlow's C++ start-up lines (CUDA / cuDNN / oneDNN notices, "All log messages before
# absl::InitializeLog() ...") go to stderr as soon as tensorflow is imported: ask for errors only unless
# the user chose a level, and import tensorflow with its remaining absl notices filtered (_quiet).
# Only effective when tfexplain is imported before tensorflow.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from . import _quiet  # noqa: E402

_quiet.import_tensorflow()

from . import background, datasets, maskers, metrics  # noqa: E402
from .background import BackgroundSummary  # noqa: E402
from .explainers import Explainer, KernelShap, Lime  # noqa: E402
from .explanation import Explanation, GlobalImportance  # noqa: E402
from .datasets import ExplanationShards, load_shards  # noqa: E402
from .export import export  # noqa: E402
from .sage import Sage, SageValues  # noqa: E402

__all__ = ["BackgroundSummary", "Explainer", "Explanation", "ExplanationShards", "GlobalImportance", "KernelShap",
           "Lime", "Sage", "SageValues", "background", "datasets", "export", "load_shards", "maskers", "metrics"]
__version__ = "0.1.0"
