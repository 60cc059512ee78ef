"""tfexplain: LIME and KernelSHAP for TensorFlow/Keras models, computed inside TensorFlow graphs."""

from .explainers import Explainer, KernelShap, Lime
from .explanation import Explanation
from .export import export

__all__ = ["Explainer", "Explanation", "KernelShap", "Lime", "export"]
__version__ = "0.1.0"
