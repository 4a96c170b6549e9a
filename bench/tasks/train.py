"""Reproducible training of the committed task weights.

    python -m fixedpoint.bench.tasks.train [--task NAME ...] [--out FOLDER]

MLPs are trained with scikit-learn's ``MLPClassifier`` (adam, fixed ``random_state``); the CNN with
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
    "mnist1d-cnn": {"trainer": "cnn1d", "channels": 32, "kernel": 5, "blocks": 3, "epochs": 60,
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


def train_cnn1d(x, y, n_classes, recipe):
    """Train ``blocks`` x [Conv1d (k, same padding), ReLU, MaxPool 2] + Linear with PyTorch (NCL).

    ``x`` is NLC (N, L, C).  Returns ``(architecture, params, own_scores)`` in the project's layouts:
    torch's Conv1d weight (O, C, K) becomes (O, K, C); the final Linear's input columns are permuted
    from torch's NCL flatten order ``c * L + l`` to the project's NLC order ``l * C + c``.
    """
    try:
        import torch
    except ImportError as error:
        raise ValueError("training the CNN needs PyTorch: pip install 'fxbench[train]'") from error
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(recipe["seed"])
    length, in_channels = x.shape[1], x.shape[2]
    channels, kernel, blocks = recipe["channels"], recipe["kernel"], recipe["blocks"]
    layers, width = [], in_channels
    for _ in range(blocks):
        layers += [torch.nn.Conv1d(width, channels, kernel, padding=kernel // 2), torch.nn.ReLU(),
                   torch.nn.MaxPool1d(2)]
        width, length = channels, length // 2
    network = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(channels * length, n_classes))

    inputs = torch.tensor(np.transpose(x, (0, 2, 1)), dtype=torch.float32)
    labels = torch.tensor(y, dtype=torch.int64)
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
            return network(torch.tensor(np.transpose(samples, (0, 2, 1)), dtype=torch.float32)).numpy()

    architecture, params = [], {}
    convolutions = [module for module in network if isinstance(module, torch.nn.Conv1d)]
    for index, conv in enumerate(convolutions):
        params[f"conv{index}.weight"] = conv.weight.detach().numpy().transpose(0, 2, 1)
        params[f"conv{index}.bias"] = conv.bias.detach().numpy()
        architecture += [{"layer": "conv1d", "weight": f"conv{index}.weight", "bias": f"conv{index}.bias",
                          "stride": 1, "padding": kernel // 2},
                         {"layer": "relu"}, {"layer": "maxpool1d", "kernel": 2, "stride": 2}]
    head = network[-1]
    weight = head.weight.detach().numpy().reshape(n_classes, channels, length)
    params["fc.weight"] = weight.transpose(0, 2, 1).reshape(n_classes, length * channels)
    params["fc.bias"] = head.bias.detach().numpy()
    architecture += [{"layer": "flatten"}, {"layer": "linear", "weight": "fc.weight", "bias": "fc.bias"}]
    return architecture, params, own_scores


TRAINERS = {"mlp": train_mlp, "cnn1d": train_cnn1d}
LIBRARIES = {"mlp": "scikit-learn", "cnn1d": "torch"}


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
