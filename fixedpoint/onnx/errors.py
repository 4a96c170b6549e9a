"""The one exception of `fixedpoint.onnx` for models it cannot read, convert or write."""


class OnnxModelError(ValueError):
    """A model file or graph that cannot be imported or exported; the message names the file, node or argument."""
