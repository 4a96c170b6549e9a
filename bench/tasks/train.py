"""Reproducible training of the committed task weights.

    python -m fixedpoint.bench.tasks.train [--task NAME ...] [--out FOLDER]

MLPs are trained with scikit-learn's ``MLPClassifier`` (adam, fixed ``random_state``); the CNNs with
PyTorch (the ``train`` extra: ``torch==2.13.0``), seeded, deterministic algorithms.  BLAS and torch
run on one thread, so a run repeats bit for bit on the same machine and library versions.  Each
task's weights go to ``<FOLDER>/<task>.npz`` (default: the packaged ``bench/weights``) with a
training record: the accuracy the training library reports for its own model and the float64
accuracy of the rebuilt ``fixedpoint.nn`` model, which must agree.  The runtime never imports this.
"""
import argparse
import hashlib
import importlib.metadata
import warnings

import numpy as np

from . import models, names, source

RECIPES = {
    "digits-mlp": {"trainer": "mlp", "hidden": [128], "alpha": 1e-3, "max_iter": 300, "seed": 0},
    "mnist1d-mlp": {"trainer": "mlp", "hidden": [256, 256], "alpha": 0.1, "max_iter": 200, "seed": 0},
    "mnist5k-mlp": {"trainer": "mlp", "hidden": [128], "alpha": 1e-2, "max_iter": 100, "seed": 0},
    "mnist1d-cnn": {"trainer": "cnn", "channels": [32, 32, 32], "kernel": 5, "epochs": 60,
                    "batch_size": 100, "max_lr": 1e-2, "weight_decay": 1e-2, "seed": 0},
    "mnist5k-cnn": {"trainer": "cnn", "channels": [16, 32], "kernel": 3, "epochs": 15,
                    "batch_size": 100, "max_lr": 1e-2, "weight_decay": 1e-2, "seed": 0},
}


def train_mlp(x, y, n_classes, recipe):
    """Fit an MLPClassifier; return ``(architecture, params, own_scores)``.

    ``own_scores(x)`` -> (N, classes) class scores of the trainer's own model (argmax = its prediction).
    scikit-learn stores weights as (in, out): they are transposed to Linear's (out, in).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    classifier = MLPClassifier(tuple(recipe["hidden"]), alpha=recipe["alpha"], batch_size=100,
                               learning_rate_init=1e-3, max_iter=recipe["max_iter"],
                               random_state=recipe["seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x, y)
    if list(classifier.classes_) != list(range(n_classes)):
        raise ValueError(f"training labels must be 0..{n_classes - 1}, got classes {classifier.classes_}")
    architecture, params = [], {}
    for index, (weight, bias) in enumerate(zip(classifier.coefs_, classifier.intercepts_)):
        if index:
            architecture.append({"layer": "relu"})
        architecture.append({"layer": "linear", "weight": f"fc{index}.weight", "bias": f"fc{index}.bias"})
        params[f"fc{index}.weight"], params[f"fc{index}.bias"] = weight.T, bias
    return architecture, params, classifier.predict_proba


def train_cnn(x, y, n_classes, recipe):
    """Train [Conv (k, same padding), ReLU, MaxPool 2] per entry of ``channels``, then Linear, with PyTorch.

    ``x`` is channels-last: NLC (N, L, C) for a 1-D network, NHWC (N, H, W, C) for a 2-D one.
    Returns ``(architecture, params, own_scores)`` in the project's layouts: torch's channels-first
    weights (O, C, K...) become (O, K..., C), and the Linear's input columns are permuted from torch's
    channels-first flatten order (``c * L + l``) to the project's channels-last order (``l * C + c``).
    """
    try:
        import torch
    except ImportError as error:
        raise ValueError("training a CNN needs PyTorch: pip install 'fxbench[train]'") from error
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(recipe["seed"])
    spatial = x.ndim - 2
    conv_type, pool_type = {1: (torch.nn.Conv1d, torch.nn.MaxPool1d), 2: (torch.nn.Conv2d, torch.nn.MaxPool2d)}[spatial]
    to_channels_first = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
    to_channels_last = (0,) + tuple(range(2, spatial + 2)) + (1,)
    kernel, sizes, width = recipe["kernel"], list(x.shape[1:-1]), x.shape[-1]
    layers = []
    for channels in recipe["channels"]:
        layers += [conv_type(width, channels, kernel, padding=kernel // 2), torch.nn.ReLU(), pool_type(2)]
        width, sizes = channels, [size // 2 for size in sizes]
    network = torch.nn.Sequential(*layers, torch.nn.Flatten(),
                                  torch.nn.Linear(width * int(np.prod(sizes)), n_classes))

    def channels_first(samples):
        return torch.tensor(np.transpose(samples, to_channels_first), dtype=torch.float32)

    inputs, labels = channels_first(x), torch.tensor(y, dtype=torch.int64)
    batch_size, epochs = recipe["batch_size"], recipe["epochs"]
    steps_per_epoch = -(-len(labels) // batch_size)
    optimizer = torch.optim.AdamW(network.parameters(), lr=recipe["max_lr"], weight_decay=recipe["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["max_lr"],
                                                   total_steps=epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(recipe["seed"])
    network.train()
    for _ in range(epochs):
        permutation = torch.randperm(len(labels), generator=order)
        for start in range(0, len(labels), batch_size):
            batch = permutation[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(network(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    network.eval()

    def own_scores(samples):
        with torch.no_grad():
            return network(channels_first(samples)).numpy()

    architecture, params = [], {}
    convolutions = [module for module in network if isinstance(module, conv_type)]
    for index, conv in enumerate(convolutions):
        params[f"conv{index}.weight"] = conv.weight.detach().numpy().transpose(to_channels_last)
        params[f"conv{index}.bias"] = conv.bias.detach().numpy()
        architecture += [{"layer": f"conv{spatial}d", "weight": f"conv{index}.weight", "bias": f"conv{index}.bias",
                          "stride": 1, "padding": kernel // 2},
                         {"layer": "relu"}, {"layer": f"maxpool{spatial}d", "kernel": 2, "stride": 2}]
    head = network[-1]
    weight = head.weight.detach().numpy().reshape([n_classes, width] + sizes)
    params["fc.weight"] = weight.transpose(to_channels_last).reshape(n_classes, -1)
    params["fc.bias"] = head.bias.detach().numpy()
    architecture += [{"layer": "flatten"}, {"layer": "linear", "weight": "fc.weight", "bias": "fc.bias"}]
    return architecture, params, own_scores


TRAINERS = {"mlp": train_mlp, "cnn": train_cnn}
LIBRARIES = {"mlp": "scikit-learn", "cnn": "torch"}


def train(name, folder=None):
    """Train task ``name`` from its recipe, write its weight file and return the training record."""
    from threadpoolctl import threadpool_limits

    data, preprocess, _ = source(name)
    recipe = RECIPES[name]
    x_train, y_train, x_test, y_test = data.load()
    inputs_train, inputs_test = preprocess(x_train), preprocess(x_test)
    with threadpool_limits(1):
        architecture, params, own_scores = TRAINERS[recipe["trainer"]](
            inputs_train, y_train, data.N_CLASSES, recipe)
        trainer_accuracy = float(np.mean(np.argmax(own_scores(inputs_test), axis=1) == y_test))
        model = models.build(architecture, params)
        train_accuracy = _accuracy(model, inputs_train, y_train)
        test_accuracy = _accuracy(model, inputs_test, y_test)
    library = LIBRARIES[recipe["trainer"]]
    info = {"task": name, "recipe": recipe, "n_classes": data.N_CLASSES,
            "n_train": int(y_train.size), "n_test": int(y_test.size),
            "trainer": f"{library} {importlib.metadata.version(library)}",
            "numpy": np.__version__, "trainer_test_accuracy": trainer_accuracy,
            "train_accuracy": train_accuracy, "test_accuracy": test_accuracy,
            "test_data": data_fingerprint(inputs_test, y_test)}
    models.save(models.weights_path(name, folder), architecture, params, info)
    return info


def data_fingerprint(inputs, labels):
    """What identifies a test set: SHA-256 of the int64 labels, float64 sums of the inputs and of their squares."""
    inputs = np.asarray(inputs, dtype=np.float64)
    return {"labels_sha256": hashlib.sha256(np.asarray(labels, dtype="<i8").tobytes()).hexdigest(),
            "inputs_sum": float(inputs.sum()), "inputs_sum_squares": float(np.square(inputs).sum())}


def _accuracy(model, inputs, labels):
    """Float64 accuracy of the rebuilt model (float32 weights, computed in float64)."""
    logits = np.asarray(model(np.asarray(inputs, dtype=np.float64)))
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fixedpoint.bench.tasks.train",
                                     description="Train the task models and write their weight files.")
    parser.add_argument("--task", action="append", choices=names(),
                        help="task to train (repeatable; default: all)")
    parser.add_argument("--out", default=None, help="folder for the .npz files (default: the packaged weights)")
    args = parser.parse_args(argv)
    for name in args.task or names():
        info = train(name, args.out)
        print(f"{name:12s} test accuracy {100 * info['test_accuracy']:6.2f} %  "
              f"(trainer {100 * info['trainer_test_accuracy']:6.2f} %, train {100 * info['train_accuracy']:6.2f} %)")


if __name__ == "__main__":
    main()
