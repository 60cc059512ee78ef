"""``import tfexplain.compat.lime as lime``: lime's tabular API (``lime.lime_tabular.LimeTabularExplainer``)
computed by :class:`tfexplain.Lime` in one TensorFlow graph. See :mod:`.lime_tabular`."""

from . import explanation, lime_tabular  # noqa: F401

__all__ = ["explanation", "lime_tabular"]
