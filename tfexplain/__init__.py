"""tfexplain: LIME and KernelSHAP for TensorFlow/Keras models, computed inside TensorFlow graphs."""

from .explainers import Explainer, KernelShap, Lime
from .explanation import Explanation
from .export import export
from . import metrics

__all__ = ["Explainer", "Explanation", "KernelShap", "Lime", "export", "metrics"]
__version__ = "0.1.0"
