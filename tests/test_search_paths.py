"""Issue #11: the search's one training path, end to end, in-process on real digits.

Each test runs `mnist_zoo.search.search()` in this process (a new TensorFlow process
costs ~5 s) on a few hundred MNIST digits and checks what lands in the results table.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnist_zoo.search import grid as grid_lib
from mnist_zoo import plot
from mnist_zoo import search as search_lib
from conftest import MNIST_8K2K




@pytest.fixture(scope="module")
def digits(mnist_8k2k):
    from mnist_zoo.data import load_dataset

    return load_dataset("mnist", MNIST_8K2K, subset=440, validation_size=40)


def run_grid(tmp_path: Path, axes: str, data, name="grid", **kwargs) -> pd.DataFrame:
    tmp_path.mkdir(parents=True, exist_ok=True)
    grid = tmp_path / f"{name}.toml"
    grid.write_text(f"[axes]\n{axes}\n")
    kwargs.setdefault("export_top", 0)
    return search_lib.search(str(grid), data=data, out=tmp_path / "out", verbose=0, **kwargs)


@pytest.mark.slow
@pytest.mark.kernels
def test_a_tiny_search_plots_from_its_own_csv(tmp_path, digits, zoo_check_image):
    table = run_grid(tmp_path, 'model = ["lenet5"]\nactivation = ["relu", "tanh"]\n'
                     'learning_rate = [0.01, 0.001]\nbatch_size = [32, 64]\nepochs = [2]',
                     digits)
    assert len(table) == 8 and (table["status"] == "completed").all()
    csv_path = tmp_path / "out" / "experiment_results.csv"
    charts = plot.main([str(csv_path), "--out", str(tmp_path / "plots")])
    assert charts == 0
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert {"ranking.png", "lines_by_batch_size.png", "heatmap_learning_rate_x_batch_size.png",
            "what_matters.png", "training_curves.png"} <= set(pngs), pngs
    for name in pngs:
        zoo_check_image(tmp_path / "plots" / name, min_size=(200, 150))
    report = (tmp_path / "plots" / "report.html").read_text()
    best = table.sort_values("val_accuracy", ascending=False, kind="stable").iloc[0]
    first_row = report[report.index("<tbody>"):][:400]  # the report's best trial
    assert best["trial_id"] in first_row and f"{best['val_accuracy']:.2%}" in first_row


@pytest.mark.slow
def test_the_full_grids_axes_run_through_the_search_at_toy_size(tmp_path, digits):
    """The README's grid as 1 epoch on 400 digits, for one of its three activations: 27 of
    its 81 trials, three fused groups (the other activations only repeat the grouping, at
    ~8 s of graph building per group; test_built_in_grids_have_the_promised_sizes counts
    all 81 points)."""
    axes = grid_lib.load_grid("full")["axes"]
    axes = {**axes, "activation": axes["activation"][:1], "epochs": [1]}
    lines = [f"{axis} = {[str(v) if isinstance(v, str) else v for v in values]!r}"
             for axis, values in axes.items()]
    table = run_grid(tmp_path, "\n".join(lines).replace("'", '"'), digits, export_top=1)
    assert len(table) == 27 and table["trial_id"].is_unique
    points = {tuple(str(p[a]) for a in grid_lib.CORE_AXES) for p in grid_lib.grid_points(axes)}
    assert {tuple(map(str, row)) for row in
            table[list(grid_lib.CORE_AXES)].itertuples(index=False)} == points
    assert set(table["status"]) <= {"completed", "diverged"}
    assert (table["status"] == "completed").sum() >= 22
    # Trials sharing batches are trained nine at a time (3 lrs x 3 optimizers).
    assert (table["trained_with"] == 9).all()
    assert table["val_accuracy"].max() > 0.5  # 1 epoch on 400 digits, chance is 0.1
    assert len(list((tmp_path / "out" / "models").iterdir())) == 1


EXTRA_AXES = {
    "momentum": ('optimizer = ["sgd"]\nlearning_rate = [0.05]\nmomentum = [0.0, 0.9]', "mlp_bp"),
    "dropout": ("dropout = [0.0, 0.5]", "mlp_simple"),
    "pooling": ('pooling = ["avg", "max"]', "lenet5"),
    "augment": ('augment = ["none", "rotate+translate"]', "lenet5"),
    "lr_schedule": ('optimizer = ["sgd"]\nlearning_rate = [0.1]\n'
                    'lr_schedule = ["constant", "cosine"]', "mlp_bp"),
    "nesterov": ('optimizer = ["sgd"]\nlearning_rate = [0.05]\nmomentum = [0.9]\n'
                 'nesterov = [false, true]', "mlp_bp"),
}


@pytest.mark.slow
@pytest.mark.parametrize("axis", EXTRA_AXES)
def test_each_extra_axis_reaches_the_trained_model(axis, tmp_path, digits):
    axes, model = EXTRA_AXES[axis]
    table = run_grid(tmp_path, f'model = ["{model}"]\nepochs = [2]\n{axes}', digits)
    assert len(table) == 2 and (table["status"] == "completed").all()
    assert table[axis].astype(str).nunique() == 2  # the CSV names the axis' values
    # The setting changed the training: the two trials end with different losses.
    first, second = table["train_loss"]
    assert abs(first - second) > 1e-4, table[[axis, "train_loss"]]
    assert (table["val_accuracy"] > 0.1).all()


@pytest.mark.slow
@pytest.mark.kernels
def test_a_diverged_trial_has_the_same_epochs_run_fused_or_not(tmp_path, digits):
    axes = ('model = ["lenet5"]\noptimizer = ["sgd"]\nlearning_rate = [1e12, 0.05]\n'
            "epochs = [3]")
    fused = run_grid(tmp_path / "fused", axes, digits).set_index("learning_rate")
    alone = run_grid(tmp_path / "alone", axes, digits, fuse=False).set_index("learning_rate")
    assert (fused["trained_with"] == 2).all() and (alone["trained_with"] == 1).all()
    for table in (fused, alone):
        assert table.loc[1e12, "status"] == "diverged"
        assert table.loc[0.05, "status"] == "completed" and table.loc[0.05, "epochs_run"] == 3
    # TerminateOnNaN stops a lone model after its first NaN epoch; a fused member's
    # history is cut at the same place.
    assert fused.loc[1e12, "epochs_run"] == alone.loc[1e12, "epochs_run"] < 3
    np.testing.assert_allclose(fused.loc[0.05, "val_accuracy"], alone.loc[0.05, "val_accuracy"],
                               atol=0.03)


@pytest.mark.slow
def test_trials_are_logged_for_tensorboard_hparams(tmp_path, digits):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    axes = 'model = ["mlp_bp"]\nlearning_rate = [0.01, 0.001]\nepochs = [2]'
    table = run_grid(tmp_path / "on", axes, digits).set_index("trial_id")
    board = tmp_path / "on" / "out" / "tuner" / "grid" / "tensorboard"
    config = EventAccumulator(str(board), size_guidance={"tensors": 0})
    config.Reload()
    assert "_hparams_/experiment" in config.Tags()["tensors"]  # the grid's axes and metrics
    for trial_id, row in table.iterrows():
        events = EventAccumulator(str(board / f"trial_{trial_id}"), size_guidance={"tensors": 0})
        events.Reload()
        tags = events.Tags()["tensors"]
        assert "_hparams_/session_start_info" in tags
        curve = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("epoch_val_accuracy")]
        assert len(curve) == 2 and curve[-1] == pytest.approx(row["val_accuracy"])
        (final,) = events.Tensors("test_accuracy")
        assert float(tf.make_ndarray(final.tensor_proto)) == pytest.approx(row["test_accuracy"])
    run_grid(tmp_path / "off", axes, digits, tensorboard=False)
    assert not (tmp_path / "off" / "out" / "tuner" / "grid" / "tensorboard").exists()


@pytest.mark.slow  # 28 s measured on the shared 2-core machine
@pytest.mark.kernels
def test_split_groups_cut_a_fused_group_into_parts(tmp_path, digits):
    """--split-groups N cuts each fused group into N parts: here one group of 4 into 2 + 2."""
    axes = ('model = ["lenet5"]\noptimizer = ["adam", "rmsprop"]\n'
            'learning_rate = [0.01, 0.001]\nepochs = [1]')
    whole = run_grid(tmp_path / "whole", axes, digits)
    parts = run_grid(tmp_path / "parts", axes, digits, split_groups=2)
    assert (whole["trained_with"] == 4).all() and (parts["trained_with"] == 2).all()
    np.testing.assert_allclose(parts["val_accuracy"], whole["val_accuracy"], atol=0.03)


@pytest.mark.slow
def test_with_two_workers_the_group_left_over_at_the_end_is_cut_in_two(tmp_path, digits):
    """Three groups on two workers: the first two stay whole, the third (left over once each
    worker has one) is cut into one part per worker, so neither idles at the end."""
    axes = ('model = ["lenet5"]\noptimizer = ["adam", "sgd"]\n'
            'learning_rate = [0.01, 0.001]\nbatch_size = [16, 32, 64]\nepochs = [1]')
    whole = run_grid(tmp_path / "whole", axes, digits)
    shared = run_grid(tmp_path / "shared", axes, digits, workers=2)
    assert (whole["trained_with"] == 4).all()
    sizes = shared.groupby("batch_size")["trained_with"].agg(sorted).to_dict()
    assert sizes == {16: [4] * 4, 32: [4] * 4, 64: [2] * 4}
    np.testing.assert_allclose(shared["val_accuracy"], whole["val_accuracy"], atol=0.03)


def test_a_process_with_nothing_left_to_train_does_not_restart(tmp_path):
    """The memory restart is for work still to do: not when the only untrained group is
    locked by another worker (the restart cost 4-5 s at the end of every --jobs grid)."""
    import fcntl

    import keras_tuner as kt

    from mnist_zoo.search.grid import values_key
    from mnist_zoo.search.tuner import ZooTuner

    axes = {"model": ["lenet5"], "activation": ["relu"], "learning_rate": [0.01],
            "optimizer": ["adam", "sgd"], "batch_size": [32, 64], "epochs": [1]}
    tuner = ZooTuner(axes, kt.Objective("val_accuracy", "max"), directory=str(tmp_path),
                     project_name="p", results_csv=tmp_path / "results.csv", seed=0)
    runs = tmp_path / "p" / "runs"
    assert tuner.trainer.work_left()
    for values in tuner.points:  # the batch-64 group is done, the batch-32 one is not
        if values["batch_size"] == 64:
            (runs / values_key(values)).mkdir(parents=True)
            (runs / values_key(values) / "run.json").write_text("{}")
    assert tuner.trainer.work_left()
    first_of_32 = next(v for v in tuner.points if v["batch_size"] == 32)
    with open(runs / f"{values_key(first_of_32)}.lock", "w") as lock:  # another worker's
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert not tuner.trainer.work_left()
    assert tuner.trainer.work_left()


def test_a_setting_is_not_crossed_where_it_does_not_apply(tmp_path, digits, capsys):
    """Issue #30: optimizer = [sgd, adam] with momentum = [0.0, 0.9] trained Adam twice
    (make_optimizer ignores momentum for Adam), and the charts showed two Adam cells that
    differed only by noise. Now 3 trials, momentum left empty for Adam; with repeats the
    summary has 3 points, Adam's with an empty momentum."""
    axes = ('model = ["mlp_bp"]\noptimizer = ["sgd", "adam"]\nlearning_rate = [0.05]\n'
            'momentum = [0.0, 0.9]\nepochs = [1]')
    table = run_grid(tmp_path, axes, digits, repeats=2, show_top=3)
    assert len(table) == 6 and (table["status"] == "completed").all()
    assert table.groupby("optimizer")["repeat"].count().to_dict() == {"adam": 2, "sgd": 4}
    adam = table[table["optimizer"] == "adam"]
    assert adam["momentum"].isna().all()
    assert sorted(table.loc[table["optimizer"] == "sgd", "momentum"].unique()) == [0.0, 0.9]
    lines = (tmp_path / "out" / "experiment_results.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert [c["momentum"] for c in cells if c["optimizer"] == "adam"] == ["", ""]
    summary = pd.read_csv(tmp_path / "out" / "experiment_summary.csv")
    assert len(summary) == 3 and summary["runs"].tolist() == [2, 2, 2]
    assert summary.loc[summary["optimizer"] == "adam", "momentum"].isna().all()
    # The three trained together (they share their batches), as before.
    assert (table["trained_with"] == 6).all()
    # The printed best points say "none" for Adam's momentum, as the charts do.
    header, *top = capsys.readouterr().out.split("best 3 grid points")[1].splitlines()[1:5]
    assert header.split()[:2] == ["optimizer", "momentum"]
    assert sorted(tuple(line.split()[:2]) for line in top) == [
        ("adam", "none"), ("sgd", "0.0"), ("sgd", "0.9")]
    # The charts label Adam's momentum "none": 3 points, not a fourth Adam cell.
    res = plot.load_results(tmp_path / "out" / "experiment_results.csv")
    assert res.axes == ["optimizer", "momentum"]
    assert sorted(set(plot.trial_labels(res.trials, res.axes, unique=False))) == [
        "adam · mom none", "sgd · mom 0", "sgd · mom 0.9"]
    assert len(res.points) == 3
