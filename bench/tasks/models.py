"""Weight files of the tasks and the float ``fixedpoint.nn`` models rebuilt from them.

A weight file (``bench/weights/<task>.npz``, loaded without pickle) holds float32 parameter arrays
in the project's layouts (Linear (out, in); Conv1d (O, K, C) on NLC and Conv2d (O, KH, KW, C) on NHWC
activations; Flatten is C order, so NLC flattens as ``l * C + c``) and two JSON strings:

- ``architecture``: the ordered layer list; each entry has a ``layer`` kind (one of ``LAYER_KINDS``),
  the names of its parameter arrays and its hyper-parameters;
- ``info``: the training record (seed, trainer, library versions, train/test accuracy).
"""
import json
import os

import numpy as np

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
LAYER_KINDS = ("linear", "conv1d", "conv2d", "relu", "maxpool1d", "maxpool2d", "flatten")


def weights_path(task_name, folder=None):
    """Path of the weight file of ``task_name`` in ``folder`` (default: the packaged weights folder)."""
    return os.path.join(WEIGHTS_DIR if folder is None else folder, f"{task_name}.npz")


def save(path, architecture, params, info):
    """Write ``params`` (name -> array, stored as float32) with the architecture and info JSON to ``path``.

    The folder of ``path`` is created if needed.
    """
    _check_architecture(architecture, params)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    arrays = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in params.items()}
    np.savez_compressed(path, architecture=np.array(json.dumps(architecture)),
                        info=np.array(json.dumps(info, sort_keys=True)), **arrays)


def load(path):
    """``(architecture, params, info)`` read from a weight file written by :func:`save`."""
    with np.load(path, allow_pickle=False) as stored:
        architecture = json.loads(str(stored["architecture"]))
        info = json.loads(str(stored["info"]))
        params = {name: stored[name] for name in stored.files if name not in ("architecture", "info")}
    _check_architecture(architecture, params)
    return architecture, params, info


def build(architecture, params):
    """The float ``fixedpoint.nn.Sequential`` described by ``architecture`` with weights from ``params``."""
    _check_architecture(architecture, params)
    from fixedpoint import nn

    layers = []
    for spec in architecture:
        kind = spec["layer"]
        if kind == "linear":
            layers.append(nn.Linear(params[spec["weight"]], params[spec["bias"]]))
        elif kind in ("conv1d", "conv2d"):
            conv_type = nn.Conv1d if kind == "conv1d" else nn.Conv2d
            layers.append(conv_type(params[spec["weight"]], params[spec["bias"]],
                                    stride=spec["stride"], padding=spec["padding"]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind in ("maxpool1d", "maxpool2d"):
            pool_type = nn.MaxPool1d if kind == "maxpool1d" else nn.MaxPool2d
            layers.append(pool_type(spec["kernel"], spec["stride"]))
        else:
            layers.append(nn.Flatten())
    return nn.Sequential(layers)


def _check_architecture(architecture, params):
    for index, spec in enumerate(architecture):
        kind = spec.get("layer")
        if kind not in LAYER_KINDS:
            raise ValueError(f"architecture entry {index}: layer kind {kind!r} is not one of {LAYER_KINDS}")
        for key in ("weight", "bias"):
            if key in spec and spec[key] not in params:
                raise ValueError(f"architecture entry {index} ({kind}) names missing parameter {spec[key]!r}")
