"""The one exception of `fixedpoint.onnx` for models it cannot read, convert or write."""


class OnnxModelError(ValueError):
    """A model file or graph that cannot be imported or exported; the message names the file, node or argument.

    `argument` is the name of the caller's argument at fault ("input_shape") when it is one, else None.
    """

    def __init__(self, message: str, argument: str | None = None):
        super().__init__(message)
        self.argument = argument
