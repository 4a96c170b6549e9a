"""ONNX import of float `fixedpoint.nn` models: `load(path_or_model)`."""

from .errors import OnnxModelError
from .importer import SUPPORTED_OPS, load

__all__ = ["OnnxModelError", "SUPPORTED_OPS", "load"]
