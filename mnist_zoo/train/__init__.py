"""Training: one path for every trainer, fused training, run folders, recipes.

    fit.py       `fit_models`: compiled models on seeded batches, one alone or several fused;
                 `Fit`, `STEPS_PER_EXECUTION`, `DIVERGED_LOSS`
    fused.py     several models that share their batches trained as one wide graph
    run.py       `train()`: one model into results/runs/<name>/ (checkpoints, --resume)
    recipes.py   the reference recipe of each model and dataset (recipes.toml)
    _command.py  `python -m mnist_zoo.train` (__main__.py runs it)

    >>> from mnist_zoo.train import train
    >>> run = train("lenet5", activation="relu", epochs=3, data_dir="~/mnist")
"""

from mnist_zoo.train._command import build_parser, main
from mnist_zoo.train.fit import DIVERGED_LOSS, STEPS_PER_EXECUTION, Fit, fit_models
from mnist_zoo.train.run import RunResult, check_numbers, run_folder, train

__all__ = ["DIVERGED_LOSS", "STEPS_PER_EXECUTION", "Fit", "RunResult", "build_parser",
           "check_numbers", "fit_models", "main", "run_folder", "train"]
