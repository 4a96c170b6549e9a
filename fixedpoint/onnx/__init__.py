"""ONNX import and export of float `fixedpoint.nn` models: `load(path_or_model)`, `export(model, input_shape)`."""

from .errors import OnnxModelError
from .exporter import export
from .importer import SUPPORTED_OPS, load

__all__ = ["OnnxModelError", "SUPPORTED_OPS", "export", "load"]
