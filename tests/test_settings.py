"""Issue #30: one table of settings, and settings that apply only where they mean
something. The fast tier: plain values against literal expectations, no training (the
keras-tuner space test and the train() refusals import TensorFlow, nothing trains)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from mnist_zoo import settings as table
from mnist_zoo.errors import GridError, SettingsError
from mnist_zoo.search import grid as grid_lib
from mnist_zoo.search.space import check_conditions
from conftest import MNIST_8K2K

README = Path(__file__).resolve().parents[1] / "README.md"
SEARCH_GUIDE = README.parent / "docs" / "search.md"


# --------------------------------------------------------------------------- the table
def test_the_table_names_the_axes_in_the_results_order():
    assert table.AXES == ("model", "activation", "learning_rate", "optimizer", "batch_size",
                          "epochs", "momentum", "dropout", "pooling", "augment", "lr_schedule",
                          "nesterov")
    assert table.CORE == ("model", "activation", "learning_rate", "optimizer", "batch_size",
                          "epochs")
    assert table.RANGE_AXES == ("learning_rate", "batch_size", "epochs", "momentum", "dropout")
    assert table.MEMBER_AXES == ("learning_rate", "optimizer", "momentum", "lr_schedule",
                                 "nesterov")
    assert table.in_group("optimizer") == ("learning_rate", "optimizer", "momentum",
                                           "lr_schedule", "nesterov")
    assert dict(table.SHORT_NAMES) == {
        "learning_rate": "lr", "batch_size": "bs", "epochs": "ep", "momentum": "mom",
        "dropout": "drop", "pooling": "pool", "augment": "aug", "lr_schedule": "sched",
        "nesterov": "nest"}


def test_the_readme_and_the_search_guide_list_the_tables_settings():
    """The README names every axis; docs/search.md has the table as settings.py does."""
    listed = re.search(r"Any of `([^`]*)` may be an axis", README.read_text(encoding="utf-8"))
    assert listed and listed.group(1).replace("\n", " ").split(", ") == list(table.AXES)
    assert table.markdown_table() in SEARCH_GUIDE.read_text(encoding="utf-8")


def test_the_tables_models_are_the_registrys():
    from mnist_zoo.models import list_models, model_settings

    assert sorted(table.MODELS) == list_models()
    # Where a setting applies to some models, exactly their builders take it.
    for name, setting in table.SETTINGS.items():
        if "model" in setting.applies:
            takers = tuple(m for m in list_models() if name in model_settings(m))
            assert takers == setting.applies["model"], name


def test_the_recipe_keys_and_the_train_options_come_from_the_table():
    from mnist_zoo.train import build_parser
    from mnist_zoo.train.recipes import FIELDS

    assert FIELDS == ("activation", "learning_rate", "optimizer", "batch_size", "epochs",
                      "momentum", "dropout", "pooling", "augment", "lr_schedule", "nesterov")
    options = {option for action in build_parser()._actions for option in action.option_strings}
    assert {"--learning-rate", "--lr", "--momentum", "--lr-schedule", "--seed", "--nesterov",
            "--no-nesterov"} <= options


@pytest.mark.parametrize("name, value, problem", [
    ("learning_rate", 0.0, "expected a value > 0"),
    ("learning_rate", math.nan, "expected a finite number"),
    ("learning_rate", "fast", "expected a number"),
    ("epochs", 2.0, "expected a whole number"),
    ("epochs", True, "expected a whole number"),
    ("momentum", 1.0, "expected a value >= 0 and < 1"),
    ("dropout", 1.5, "expected a value >= 0 and < 1"),
    ("seed", -1, "expected a value >= 0"),
    ("optimizer", "adamw", "choose from sgd, adam, rmsprop"),
    ("pooling", "min", "choose from avg, max"),
    ("model", "lenet6", "choose from cnn3, cnn_bn, lenet5, mlp_bp, mlp_complex, mlp_medium, "
                        "mlp_residual, mlp_simple"),
])
def test_each_check_names_the_problem(name, value, problem):
    assert table.SETTINGS[name].check(value) == problem


def test_numpy_numbers_pass_the_checks():
    assert table.SETTINGS["learning_rate"].check(np.float32(0.01)) is None
    assert table.SETTINGS["epochs"].check(np.int64(3)) is None
    assert table.SETTINGS["momentum"].check(np.int64(0)) is None


# --------------------------------------------------------------------------- a run's settings
def test_a_runs_settings_leave_out_what_does_not_apply():
    run = table.run_settings({"model": "mlp_bp", "optimizer": "adam", "learning_rate": 0.01})
    assert dict(run) == {"model": "mlp_bp", "activation": "relu", "learning_rate": 0.01,
                         "optimizer": "adam", "batch_size": 64, "epochs": 3, "dropout": 0.0,
                         "augment": "none", "lr_schedule": "constant", "seed": 0}
    assert run.group("optimizer") == {"learning_rate": 0.01, "optimizer": "adam",
                                      "lr_schedule": "constant"}
    with pytest.raises(TypeError):
        run["epochs"] = 5  # frozen
    sgd = table.run_settings({"optimizer": "sgd", "momentum": 0.9})
    assert (sgd["momentum"], sgd["nesterov"], sgd["pooling"]) == (0.9, False, "avg")
    assert "nesterov" not in table.run_settings({"optimizer": "rmsprop"})


def test_nesterov_is_one_entry_and_reaches_sgd():
    """Issue #30: a new optimizer setting is one table entry plus its use in the factory."""
    from mnist_zoo.models import make_optimizer
    from mnist_zoo.train import build_parser

    assert grid_lib.grid_points({"optimizer": ["sgd", "rmsprop"], "nesterov": [False, True]}) \
        == [{"optimizer": "sgd", "nesterov": False}, {"optimizer": "sgd", "nesterov": True},
            {"optimizer": "rmsprop"}]
    assert make_optimizer("sgd", 0.1, momentum=0.9, nesterov=True).nesterov is True
    assert make_optimizer("sgd", 0.1, momentum=0.9).nesterov is False
    assert build_parser().parse_args(["--nesterov"]).nesterov is True
    assert table.SETTINGS["nesterov"].check(1) == "expected true or false"
    with pytest.raises(SettingsError, match="nesterov applies only to optimizer sgd"):
        table.run_settings({"optimizer": "adam", "nesterov": True})


@pytest.mark.parametrize("given, message", [
    ({"optimizer": "adam", "momentum": 0.9},
     "momentum applies only to optimizer sgd or rmsprop, not to optimizer adam; leave it out"),
    ({"model": "mlp_bp", "pooling": "max"},
     "pooling applies only to model lenet5, not to model mlp_bp; leave it out"),
    ({"dropout": 1.5}, "dropout must be a value >= 0 and < 1, got 1.5"),
    ({"seed": -1}, "seed must be a value >= 0, got -1"),
    ({"activation": "relu6"}, "unknown activation 'relu6'; choose from relu, tanh, sigmoid, "
                              "elu, selu, gelu, leaky_relu, swish"),
    ({"lr_schedule": "linear"}, "unknown lr_schedule 'linear'; choose from constant, "
                                "exponential, cosine"),
    ({"momemtum": 0.9}, "unknown setting(s) ['momemtum']"),
])
def test_a_run_refuses_a_bad_or_misplaced_setting(given, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        table.run_settings(given)


def test_a_default_where_it_does_not_apply_is_no_mistake():
    """momentum=0.0 for Adam says "none" as leaving it out does: accepted, and dropped."""
    assert "momentum" not in table.run_settings({"optimizer": "adam", "momentum": 0.0})


# --------------------------------------------------------------------------- grid points
def test_a_setting_is_crossed_only_where_it_applies():
    axes = {"optimizer": ["sgd", "adam"], "momentum": [0.0, 0.9]}
    assert grid_lib.grid_points(axes) == [{"optimizer": "sgd", "momentum": 0.0},
                                          {"optimizer": "sgd", "momentum": 0.9},
                                          {"optimizer": "adam"}]
    assert grid_lib.grid_size(axes) == 3
    models = {"model": ["lenet5", "mlp_bp"], "pooling": ["avg", "max"], "repeat": [0, 1]}
    assert grid_lib.grid_points(models) == [
        {"model": "lenet5", "pooling": "avg", "repeat": 0},
        {"model": "lenet5", "pooling": "avg", "repeat": 1},
        {"model": "lenet5", "pooling": "max", "repeat": 0},
        {"model": "lenet5", "pooling": "max", "repeat": 1},
        {"model": "mlp_bp", "repeat": 0}, {"model": "mlp_bp", "repeat": 1}]
    assert grid_lib.grid_size({"learning_rate": {"min": 0.1, "max": 1.0, "log": False}}) \
        == math.inf


def test_the_conditional_grids_points_share_their_batches():
    """SGD with and without momentum and Adam see the same batches: one fused group."""
    points = grid_lib.grid_points({"model": ["mlp_bp"], "batch_size": [64],
                                   "optimizer": ["sgd", "adam"], "momentum": [0.0, 0.9]})
    assert len({grid_lib.batches_key(p) for p in points}) == 1
    assert len({grid_lib.values_key(p) for p in points}) == 3


def test_a_grid_axis_that_never_applies_is_refused(tmp_path):
    with pytest.raises(GridError, match=re.escape(
            "axis momentum applies only to optimizer sgd or rmsprop, and the grid's optimizer "
            "is adam; remove momentum or add optimizer sgd or rmsprop")):
        check_conditions(tmp_path / "g.toml", {"optimizer": ["adam"], "momentum": [0.0, 0.9]})
    grid = tmp_path / "g.toml"
    grid.write_text('[axes]\nmodel = ["mlp_bp"]\npooling = ["max"]\n')
    with pytest.raises(GridError, match="axis pooling applies only to model lenet5"):
        grid_lib.load_grid(str(grid))


def test_a_bad_grid_value_is_refused_without_tensorflow(tmp_path):
    """#29: a bad value in a grid file was refused only after TensorFlow had loaded
    (6-13 s, the model and optimizer checks imported it)."""
    import subprocess
    import sys

    grid = tmp_path / "g.toml"
    grid.write_text('[axes]\nmodel = ["lenet6"]\noptimizer = ["adamw"]\n')
    code = ("import sys\nfrom mnist_zoo.search.grid import load_grid\n"
            f"try:\n    load_grid({str(grid)!r})\nexcept Exception as err:\n    print(err)\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.splitlines()
    assert out == [f"{grid}: model = 'lenet6' is not allowed: choose from cnn3, cnn_bn, lenet5, "
                   "mlp_bp, mlp_complex, mlp_medium, mlp_residual, mlp_simple", "[]"]


# --------------------------------------------------------------------------- drawn searches
def test_random_draws_leave_out_a_setting_where_it_does_not_apply():
    import keras_tuner as kt

    from mnist_zoo.search.strategies import search_space

    axes = {"optimizer": ["sgd", "adam"], "momentum": {"min": 0.5, "max": 0.9, "log": False},
            "model": ["lenet5", "mlp_bp"], "pooling": ["avg", "max"]}
    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=40, seed=3,
                                           hyperparameters=search_space(axes, "random"))
    draws = [oracle._random_values() for _ in range(40)]
    assert {d["optimizer"] for d in draws} == {"sgd", "adam"}
    for values in draws:
        assert ("momentum" in values) == (values["optimizer"] == "sgd"), values
        assert ("pooling" in values) == (values["model"] == "lenet5"), values
        assert 0.5 <= values.get("momentum", 0.5) <= 0.9


# --------------------------------------------------------------------------- train()
@pytest.fixture(scope="module")
def few_digits(mnist_8k2k):
    from mnist_zoo.data import load_dataset

    return load_dataset("mnist", MNIST_8K2K, subset=120, validation_size=20)


@pytest.mark.parametrize("bad", [
    {"model": "lenet6"}, {"optimizer": "adamw"}, {"activation": "relu6"},
    {"augment": "sideways"}, {"lr_schedule": "linear"}, {"dropout": 1.5},
    {"model": "mlp_bp", "pooling": "max"}, {"seed": -1}, {"optimizer": "adam", "momentum": 0.9},
])
def test_train_checks_every_setting_before_it_writes(bad, tmp_path, few_digits):
    """#29 items 3 and 6: a bad model, optimizer, activation, augment, lr_schedule, dropout
    or pooling left settings.json and checkpoints/ behind (and the corrected run was then
    refused: "already holds a run"); dropout=1.5 and seed=-1 raised Keras' own ValueError."""
    from mnist_zoo.train import train

    bad = dict(bad)
    with pytest.raises(SettingsError):
        train(bad.pop("model", "mlp_bp"), data=few_digits, out=tmp_path / "runs", name="c",
              epochs=1, verbose=0, export=False, **bad)
    assert not (tmp_path / "runs").exists()


def test_the_train_command_refuses_pooling_for_an_mlp_in_one_line(tmp_path, capsys):
    from mnist_zoo import train

    out = tmp_path / "runs"
    code = train.main(["--model", "mlp_bp", "--pooling", "max", "--name", "c", "--out", str(out),
                       "--data-dir", str(MNIST_8K2K)])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == ("error: pooling applies only to model lenet5, not to "
                                       "model mlp_bp; leave it out\n")


def test_argparse_errors_are_one_line_with_a_hint(capsys):
    from mnist_zoo import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["--seed", "-1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == ("error: argument --seed: must be a value >= 0, got '-1' "
                                       "(see python -m mnist_zoo.train --help)\n")


# --------------------------------------------------------------------------- a file's [when]
def write(tmp_path, text: str) -> str:
    grid = tmp_path / "g.toml"
    grid.write_text(text)
    return str(grid)


def test_a_search_file_narrows_where_an_axis_applies(tmp_path):
    spec = grid_lib.load_grid(write(tmp_path, """
[axes]
model = ["lenet5", "mlp_simple"]
optimizer = ["sgd", "rmsprop", "adam"]
momentum = [0.0, 0.9]
dropout = [0.0, 0.5]

[when]
momentum = { optimizer = ["sgd"] }
dropout = { model = ["mlp_simple"] }
"""))
    axes = grid_lib.with_repeats(spec["axes"], 1)
    points = [{k: v for k, v in p.items() if k not in ("activation", "learning_rate",
                                                        "batch_size", "epochs")}
              for p in grid_lib.grid_points(axes)]
    assert points == [
        {"model": "lenet5", "optimizer": "sgd", "momentum": 0.0},
        {"model": "lenet5", "optimizer": "sgd", "momentum": 0.9},
        {"model": "lenet5", "optimizer": "rmsprop"},
        {"model": "lenet5", "optimizer": "adam"},
        {"model": "mlp_simple", "optimizer": "sgd", "momentum": 0.0, "dropout": 0.0},
        {"model": "mlp_simple", "optimizer": "sgd", "momentum": 0.0, "dropout": 0.5},
        {"model": "mlp_simple", "optimizer": "sgd", "momentum": 0.9, "dropout": 0.0},
        {"model": "mlp_simple", "optimizer": "sgd", "momentum": 0.9, "dropout": 0.5},
        {"model": "mlp_simple", "optimizer": "rmsprop", "dropout": 0.0},
        {"model": "mlp_simple", "optimizer": "rmsprop", "dropout": 0.5},
        {"model": "mlp_simple", "optimizer": "adam", "dropout": 0.0},
        {"model": "mlp_simple", "optimizer": "adam", "dropout": 0.5}]
    assert grid_lib.grid_size(axes) == 12
    # A changed [when] is another grid to the resume check: it is in the fingerprint.
    assert spec["settings"] == {"when": {"momentum": {"optimizer": ["sgd"]},
                                         "dropout": {"model": ["mlp_simple"]}}}


def test_random_draws_follow_the_files_when(tmp_path):
    import keras_tuner as kt

    from mnist_zoo.search.strategies import search_space

    spec = grid_lib.load_grid(write(tmp_path, """
[search]
strategy = "random"
[axes]
optimizer = ["sgd", "rmsprop"]
momentum = { min = 0.5, max = 0.9 }
[when]
momentum = { optimizer = ["rmsprop"] }
"""))
    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=20, seed=1,
                                           hyperparameters=search_space(spec["axes"], "random"))
    draws = [oracle._random_values() for _ in range(20)]
    assert {d["optimizer"] for d in draws} == {"sgd", "rmsprop"}
    assert all(("momentum" in d) == (d["optimizer"] == "rmsprop") for d in draws), draws


@pytest.mark.parametrize("when, message", [
    ('nesterov = { optimizer = ["sgd"] }', "[when] names 'nesterov', which is no axis"),
    ('momentum = { optimizer = ["adamw"] }', "optimizer = ['adamw'] must be a non-empty list"),
    ('momentum = { dropout = [0.5] }', "'dropout' must be another axis of the file"),
    ('momentum = { momentum = [0.5] }', "'momentum' must be another axis of the file"),
    ('momentum = { optimizer = ["adam"] }',
     "axis momentum applies only to optimizer none ([when] leaves none)"),
    ('momentum = ["sgd"]', "[when] momentum must be a table of axes and values"),
])
def test_a_bad_when_is_refused_in_one_line(when, message, tmp_path):
    text = f'[axes]\noptimizer = ["sgd", "adam"]\nmomentum = [0.0, 0.9]\n[when]\n{when}\n'
    with pytest.raises(GridError, match=re.escape(message)):
        grid_lib.load_grid(write(tmp_path, text))


def test_bayesian_proposals_leave_out_a_setting_where_it_does_not_apply(tmp_path):
    """After its random start, the Gaussian process proposes conditional settings only
    where they apply too (keras-tuner fills an inactive one with its default to fit)."""
    import keras_tuner as kt

    from mnist_zoo.search.strategies import search_space

    axes = {"optimizer": ["sgd", "adam"], "momentum": {"min": 0.5, "max": 0.9, "log": False},
            "learning_rate": {"min": 1e-3, "max": 1e-1, "log": True}}
    oracle = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective("score", "max"), hyperparameters=search_space(axes, "bayesian"),
        max_trials=5, num_initial_points=2, seed=0)
    oracle._set_project_dir(str(tmp_path), "p")
    proposed = []
    for number in range(5):
        trial = oracle.create_trial(f"w{number}")
        values = trial.hyperparameters.values
        proposed.append(values)
        score = values["learning_rate"] * (2 if values["optimizer"] == "adam" else 1)
        oracle.update_trial(trial.trial_id, {"score": score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert len(proposed) == 5
    assert all(("momentum" in v) == (v["optimizer"] == "sgd") for v in proposed), proposed
