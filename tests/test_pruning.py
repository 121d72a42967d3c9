"""Issue #32: pruning in grid and random searches, with the whole table kept.

The rule on plain numbers first; then real (tiny) searches on mnist-8k2k: a grid with
clearly lost trials (learning rate 1e-5) searched with and without --prune median.
"""

import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from mnist_zoo import search as search_lib
from mnist_zoo.errors import SettingsError
from mnist_zoo.search.pruning import PruneRule, parse_prune, pruned_summary, should_prune
from conftest import MNIST_8K2K, one_line_error

MEDIAN = PruneRule(keep=50, warmup=1, min_trials=3)


# ------------------------------------------------------------------------------- the rule
def test_median_rule_on_plain_values():
    others = [0.9, 0.5, 0.7, 0.2]  # median 0.6
    assert should_prune(0.55, others, epoch=1, last_epoch=3, rule=MEDIAN)
    assert not should_prune(0.65, others, epoch=1, last_epoch=3, rule=MEDIAN)
    assert not should_prune(0.6, others, epoch=1, last_epoch=3, rule=MEDIAN)  # a tie is kept
    # Lower is better (a loss): worse means above the median.
    assert should_prune(0.65, others, 1, 3, MEDIAN, higher_is_better=False)
    assert not should_prune(0.55, others, 1, 3, MEDIAN, higher_is_better=False)


def test_warmup_last_epoch_and_fewest_trials():
    others = [0.9, 0.8, 0.7]
    late = PruneRule(keep=50, warmup=2, min_trials=3)
    assert not should_prune(0.1, others, epoch=1, last_epoch=3, rule=late)  # still warming up
    assert should_prune(0.1, others, epoch=2, last_epoch=3, rule=late)
    assert not should_prune(0.1, others, epoch=3, last_epoch=3, rule=late)  # saves nothing
    needy = PruneRule(keep=50, warmup=1, min_trials=4)
    assert not should_prune(0.1, others, 1, 3, needy)  # 3 others < 4
    assert not should_prune(0.1, [*others, math.nan], 1, 3, needy)  # NaN is no value
    assert should_prune(0.1, [*others, 0.6], 1, 3, needy)


def test_percentile_keeps_the_best_share_and_nan_is_worst():
    others = [0.1, 0.2, 0.3, 0.4, 0.5]
    top_quarter = parse_prune("percentile:25", min_trials=3)  # bar: 75th percentile, 0.4
    assert top_quarter.name == "percentile:25" and top_quarter.keep == 25
    assert should_prune(0.39, others, 1, 2, top_quarter)
    assert not should_prune(0.41, others, 1, 2, top_quarter)
    everyone = parse_prune("percentile:100", min_trials=3)  # only one worse than all others
    assert should_prune(0.09, others, 1, 2, everyone)
    assert not should_prune(0.1, others, 1, 2, everyone)
    assert should_prune(math.nan, others, 1, 2, MEDIAN)


def test_parse_prune():
    assert parse_prune("none") is None
    assert parse_prune("median") == PruneRule(50.0, 1, 4)
    assert parse_prune("Median", warmup=2, min_trials=5) == PruneRule(50.0, 2, 5)
    for bad in ("mean", "percentile", "percentile:0", "percentile:101", "percentile:x"):
        with pytest.raises(SettingsError, match="none, median or percentile:P"):
            parse_prune(bad)
    with pytest.raises(SettingsError, match=">= 1"):
        parse_prune("median", warmup=0)
    assert pruned_summary(["completed", "pruned", "pruned"], ["", "median", "median"]) == (
        "2 trials pruned (2 by median): they stopped behind the others and have no test score "
        "or model; rerun with --prune none to finish them")
    assert pruned_summary(["completed"], [""]) is None


# --------------------------------------------------------------- reports and judgements
def _run(optimizer: str, repeat: int) -> dict:
    return {"model": "mlp_bp", "optimizer": optimizer, "epochs": 3, "repeat": repeat}


def test_a_point_is_judged_on_the_mean_of_its_repeats_which_stop_together(tmp_path):
    """On plain values: repeats 0.95 and 0.2 (mean 0.575) are behind the others' median
    (0.8), though 0.95 alone would lead; a repeat trained after its point was pruned at an
    epoch stops there whatever its own value."""
    from mnist_zoo.search.pruner import Pruning

    pruning = Pruning(MEDIAN, tmp_path, "val_accuracy", higher_is_better=True)
    for optimizer, value in (("adam", 0.9), ("rmsprop", 0.8), ("nadam", 0.7)):
        for repeat in (0, 1):
            pruning.reports.write(_run(optimizer, repeat), [value])
    mixed = [_run("sgd", 0), _run("sgd", 1)]
    stopper = pruning.stopper(mixed, epochs=3)
    stopper.running = [0, 1]
    assert stopper.members_to_stop(1, {"val_accuracy": np.array([0.95, 0.2])}) == [0, 1]
    assert stopper.series == [[0.95], [0.2]]
    # Their reports say so: a third repeat, trained later, stops at epoch 1 too.
    late = pruning.stopper([_run("sgd", 2)], epochs=3)
    assert late.members_to_stop(1, {"val_accuracy": np.array([0.99])}) == [0]
    # A point ahead of the median goes on; without a validation metric nothing is judged.
    ahead = pruning.stopper([_run("adamax", 0)], epochs=3)
    assert ahead.members_to_stop(1, {"val_accuracy": np.array([0.85])}) == []
    assert ahead.members_to_stop(1, {"loss": np.array([2.3])}) == []


def test_a_reference_search_is_the_fixed_set_judged_against(tmp_path):
    """--prune-reference: the others are a finished search's points (mean over repeats at
    each epoch, from their history.csv files; a pruned run's shorter history counts where
    it reaches), never the point being judged; whatever this search reported so far."""
    from mnist_zoo.search.pruner import Pruning, Reference

    rows = []
    for i, (optimizer, repeat, series, status) in enumerate((
            ("adam", 0, [0.9, 0.95], "completed"), ("adam", 1, [0.7, 0.85], "completed"),
            ("rmsprop", 0, [0.6, 0.7], "completed"), ("sgd", 0, [0.1], "pruned"),
            ("nadam", 0, [0.5, 0.6], "failed"))):  # a failed run is no reference
        history = tmp_path / f"runs/{i}/history.csv"
        history.parent.mkdir(parents=True)
        pd.DataFrame({"val_accuracy": series}).rename_axis("epoch").to_csv(history)
        rows.append({"trial_id": f"{i:04d}", "model": "mlp_bp", "optimizer": optimizer,
                     "learning_rate": 0.01, "batch_size": 64.0, "repeat": repeat,
                     "status": status, "history_path": f"runs/{i}/history.csv"})
    pd.DataFrame(rows).to_csv(tmp_path / "experiment_results.csv", index=False)
    reference = Reference(tmp_path / "experiment_results.csv", "val_accuracy")
    run = {"model": "mlp_bp", "optimizer": "adam", "learning_rate": 0.01, "batch_size": 64}
    assert sorted(reference.others({**run, "optimizer": "sgd"}, 1)) == [0.6, 0.8]
    assert sorted(reference.others(run, 1)) == [0.1, 0.6]  # not adam's own 0.8
    assert sorted(reference.others({**run, "optimizer": "adamax"}, 2)) == pytest.approx([0.7, 0.9])

    rule = PruneRule(keep=50, warmup=1, min_trials=2,
                     reference=str(tmp_path / "experiment_results.csv"))
    pruning = Pruning(rule, tmp_path / "project", "val_accuracy", higher_is_better=True)
    for optimizer, value in (("ftrl", 0.99), ("adagrad", 0.98)):  # this search's own
        pruning.reports.write({**run, "optimizer": optimizer, "repeat": 0}, [value])
    stopper = pruning.stopper([{**run, "optimizer": "adamax", "repeat": 0}], epochs=3)
    stopper.running = [0]
    # 0.75 is behind this search's 0.98 and 0.99, ahead of the reference's median 0.6
    assert stopper.members_to_stop(1, {"val_accuracy": np.array([0.75])}) == []
    assert pruning.stopper(stopper.runs, 3).members_to_stop(
        1, {"val_accuracy": np.array([0.5])}) == [0]

    with pytest.raises(SettingsError, match="no such file"):
        Reference(tmp_path / "missing.csv", "val_accuracy")
    with pytest.raises(SettingsError, match="no trial there has a history with val_loss"):
        Reference(tmp_path / "experiment_results.csv", "val_loss")
    with pytest.raises(SettingsError, match="needs a rule"):
        parse_prune("none", reference="x.csv")


# ------------------------------------------------------------------------------ searches
# One fused group of 6 grid points x 2 repeats; at 1e-5 nothing is learnt in one epoch.
LOST_GRID = """[axes]
model = ["mlp_bp"]
activation = ["relu"]
learning_rate = [0.01, 1e-5]
optimizer = ["adam", "sgd", "rmsprop"]
batch_size = [64]
epochs = [2]
"""
POINT = ["learning_rate", "optimizer"]
# Float rounding of fused training, as tests/test_fused.py measured it for the MLPs.
TOLERANCE = 2e-5


@pytest.fixture(scope="module")
def digits(mnist_8k2k):
    from mnist_zoo.data import load_dataset

    return load_dataset("mnist", MNIST_8K2K, subset=2000)


def grid_file(folder: Path, text: str = LOST_GRID, name: str = "lost") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def run(grid: Path, out: Path, data, **kwargs) -> pd.DataFrame:
    kwargs = {"export_top": 0, "repeats": 2, "tensorboard": False, **kwargs}
    table = search_lib.search(str(grid), data=data, out=out, verbose=0, **kwargs)
    return table.sort_values(["learning_rate", "optimizer", "repeat"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def searches(tmp_path_factory, digits):
    """(folder, table) of the grid searched without pruning, then with --prune median."""
    root = tmp_path_factory.mktemp("pruning")
    grid = grid_file(root)
    plain = run(grid, root / "plain", digits)
    pruned = run(grid, root / "pruned", digits, prune="median", export_top=12)
    return (root / "plain", plain), (root / "pruned", pruned), grid


def _epoch_one(out: Path, table: pd.DataFrame) -> pd.Series:
    """Each row's validation accuracy after its first epoch, from its history.csv."""
    return table["history_path"].map(
        lambda path: float(pd.read_csv(out / path)["val_accuracy"].iloc[0]))


@pytest.mark.slow  # two searches of 12 trials: ~45 s on 2 busy cores
def test_lost_trials_are_pruned_and_the_best_is_kept(searches):
    (plain_out, plain), (out, pruned), _ = searches
    assert len(pruned) == len(plain) == 12
    # What the rule says of the unpruned run's first epochs, point by point (mean of 2).
    means = plain.assign(v=_epoch_one(plain_out, plain)).groupby(POINT)["v"].mean()
    expected = {point for point, value in means.items()
                if should_prune(value, [v for p, v in means.items() if p != point], 1, 2,
                                parse_prune("median"))}
    lost = pruned[pruned["status"] == "pruned"]
    assert {(r.learning_rate, r.optimizer) for r in lost.itertuples()} == expected
    assert {(1e-5, "adam"), (1e-5, "sgd")} <= expected and (0.01, "adam") not in expected
    # All repeats of a pruned point stop together, at epoch 1, unscored, with no model.
    assert lost.groupby(POINT).size().eq(2).all()
    assert (lost["epochs_run"] == 1).all() and (lost["pruned_by"] == "median").all()
    assert lost["test_accuracy"].isna().all() and lost["model_path"].fillna("").eq("").all()
    kept = pruned[pruned["status"] == "completed"]
    assert len(kept) == 12 - len(lost) and (kept["epochs_run"] == 2).all()
    def best(table):
        return table[table["status"] == "completed"].groupby(POINT)["val_accuracy"].mean().idxmax()

    assert best(pruned) == best(plain) == (0.01, "adam")
    # No pruned trial is exported; the summary counts the pruned runs of each point.
    assert len(list((out / "models").iterdir())) == len(kept)
    summary = pd.read_csv(out / "experiment_summary.csv").set_index(POINT)
    assert summary.loc[list(expected), "pruned"].eq(2).all()
    assert summary["pruned"].sum() == len(lost)


@pytest.mark.slow  # two searches of 12 trials: ~45 s on 2 busy cores
def test_surviving_members_equal_an_unpruned_run(searches):
    """The fused group goes on without the pruned members; the others end as without."""
    (plain_out, plain), (out, pruned), _ = searches
    for (_, alone), (_, row) in zip(plain.iterrows(), pruned.iterrows()):
        if row["status"] != "completed":
            continue
        a = keras.models.load_model(plain_out / alone["model_path"]).get_weights()
        b = keras.models.load_model(out / row["model_path"]).get_weights()
        gap = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
        assert gap <= TOLERANCE, f"{row['optimizer']} {row['learning_rate']}: {gap:.2e}"
        assert abs(row["val_loss"] - alone["val_loss"]) <= 10 * TOLERANCE
        assert abs(row["test_accuracy"] - alone["test_accuracy"]) <= 0.002


@pytest.mark.slow  # two searches of 12 trials: ~45 s on 2 busy cores
def test_rerun_adds_nothing_and_prune_none_finishes_the_pruned(searches, digits, tmp_path,
                                                               capsys):
    (plain_out, plain), (out, pruned), grid = searches
    shutil.copytree(out, tmp_path / "out")
    out = tmp_path / "out"
    capsys.readouterr()
    again = run(grid, out, digits, prune="median")
    printed = capsys.readouterr().out
    assert not [line for line in printed.splitlines() if line.startswith("[")]
    assert "trials pruned (" in printed and "by median" in printed
    pd.testing.assert_frame_equal(again, pruned)

    finished = run(grid, out, digits, prune="none")
    printed = capsys.readouterr().out
    trained = [line for line in printed.splitlines() if line.startswith("[")]
    was_pruned = pruned["status"] == "pruned"
    assert f"finishing {was_pruned.sum()} pruned trial(s) from the start" in printed
    assert len(trained) == was_pruned.sum() and len(finished) == 12
    assert (finished["status"] == "completed").all() and (finished["epochs_run"] == 2).all()
    # Trained from the start: as in the search that never pruned them.
    np.testing.assert_allclose(finished["val_loss"], plain["val_loss"], atol=10 * TOLERANCE)
    # The others were not trained again.
    pd.testing.assert_series_equal(finished.loc[~was_pruned, "finished_at"],
                                   pruned.loc[~was_pruned, "finished_at"])


@pytest.mark.slow  # --jobs 2: ~25 s on 2 busy cores
def test_a_reference_decides_under_jobs_2(searches, tmp_path):
    """With --prune-reference, two processes (each training a part of the group, in
    whatever order) judge against the reference alone. Its three points all stand halfway
    between the two best first epochs, so every trial but the best is pruned: the second
    best too, which judged against this search's own trials (all the others behind it but
    one) is always kept."""
    (plain_out, plain), _, grid = searches
    first = plain[plain["repeat"] == 0].assign(v=_epoch_one(plain_out, plain))
    own = first.set_index(POINT)["v"].sort_values(ascending=False)  # this search's runs
    bar = float(own.iloc[:2].mean())
    assert own.iloc[0] > bar > own.iloc[1]
    rows = []
    for i, optimizer in enumerate(("nadam", "adamax", "ftrl")):  # points not in the grid
        history = tmp_path / "reference" / f"{i}.csv"
        history.parent.mkdir(exist_ok=True)
        pd.DataFrame({"val_accuracy": [bar, bar]}).rename_axis("epoch").to_csv(history)
        rows.append({"trial_id": f"{i:04d}", "model": "mlp_bp", "activation": "relu",
                     "learning_rate": 0.01, "optimizer": optimizer, "batch_size": 64,
                     "status": "completed", "history_path": f"reference/{i}.csv"})
    reference = tmp_path / "experiment_results.csv"
    pd.DataFrame(rows).to_csv(reference, index=False)
    result = subprocess.run(
        [sys.executable, "-m", "mnist_zoo.search", "--grid", str(grid), "--out",
         str(tmp_path / "out"), "--data-dir", str(MNIST_8K2K), "--subset", "2000",
         "--export-top", "0", "--jobs", "2", "--no-tensorboard", "--prune", "median",
         "--prune-min-trials", "2", "--prune-reference", str(reference)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "out" / "experiment_results.csv").set_index(POINT)
    assert len(table) == 6
    assert table.loc[own.index[0], "status"] == "completed"
    assert (table.loc[own.index[1:], "status"] == "pruned").all(), table["status"]
    assert (table.loc[own.index[1:], "epochs_run"] == 1).all()


@pytest.mark.slow
def test_random_search_prunes_the_same_way(tmp_path, digits):
    grid = grid_file(tmp_path, LOST_GRID + '\n[search]\nstrategy = "random"\nmax_trials = 5\n'
                     'prune = "median"\nprune_min_trials = 3\n')
    table = run(grid, tmp_path / "out", digits, repeats=1)
    lost = table[table["status"] == "pruned"]
    assert len(table) == 5 and len(lost) >= 1, table[["learning_rate", "optimizer", "status"]]
    assert (table.loc[table["learning_rate"] == 1e-5, "status"] == "pruned").all()
    assert (lost["epochs_run"] == 1).all() and (table["status"] == "completed").any()




def test_bad_pruning_settings_are_refused_in_one_line(tmp_path, capsys):
    base = ["--grid", str(grid_file(tmp_path)), "--out", str(tmp_path / "out"), "--jobs", "1"]
    assert "percentile:P" in one_line_error(capsys, [*base, "--prune", "mean"])
    assert "grid or random" in one_line_error(capsys, [*base, "--prune", "median",
                                                       "--strategy", "hyperband"])
    assert "val_accuracy" in one_line_error(capsys, [*base, "--prune", "median",
                                                     "--objective", "test_accuracy"])
    missing = str(tmp_path / "none.csv")
    assert "no such file" in one_line_error(capsys, [*base, "--prune", "median",
                                                     "--prune-reference", missing])
    assert "needs a rule" in one_line_error(capsys, [*base, "--prune-reference", missing])
    assert not (tmp_path / "out").exists()  # refused before anything was written
    bad_file = grid_file(tmp_path, LOST_GRID + '\n[search]\nprune = "mean"\n', "bad")
    assert "[search]" in one_line_error(capsys, ["--grid", str(bad_file), "--out",
                                                 str(tmp_path / "out2"), "--jobs", "1"])


def test_prune_keys_of_a_search_file_reach_the_command_line(tmp_path):
    """`prune = "median"` in a [search] table, through the command's checks before any
    process starts (--jobs, --strategy): the pruning keys belong to no strategy."""
    from mnist_zoo.search.processes import resolve_jobs

    for strategy in ("grid", "random"):
        grid = grid_file(tmp_path, LOST_GRID + f'\n[search]\nstrategy = "{strategy}"\n'
                         'prune = "median"\nprune_warmup = 1\n', strategy)
        assert resolve_jobs("auto", str(grid), None) >= 1
        assert resolve_jobs(1, str(grid), None, strategy="random", max_trials=3) == 1


@pytest.mark.slow
def test_kill_9_mid_search_then_rerun_loses_nothing(tmp_path):
    """One trial at a time (--no-fuse), each judged against those before it: kill -9
    after the first records, rerun the same command: every trial once, none trained twice."""
    grid = grid_file(tmp_path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mnist_zoo.search", "--grid", str(grid), "--out", str(out),
               "--data-dir", str(MNIST_8K2K), "--subset", "2000", "--export-top", "0",
               "--jobs", "1", "--no-fuse", "--no-tensorboard", "--prune", "median",
               "--prune-min-trials", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = lambda: list(out.glob("tuner/lost/trial_*/result.json"))  # noqa: E731
    deadline = time.time() + 240
    while len(records()) < 2 and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(records())
    assert 2 <= finished < 6, "the search should be killed part-way"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(trained) == 6 - finished
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 6 and table["trial_id"].is_unique
    assert table.groupby(POINT).size().eq(1).all()
    assert set(table["status"]) <= {"completed", "pruned"} and (table["status"] == "pruned").any()


# ------------------------------------------------------------------------------- charts
def test_charts_of_a_table_with_pruned_rows(tmp_path):
    """Pruned rows are drawn as pruned, never averaged with completed ones: the 1e-5 x sgd
    cell (all pruned) is hatched and labelled with its epoch; the 0.01 x sgd cell, with a
    completed trial beside a pruned one, shows the completed one's value alone."""
    import plot_tables

    from mnist_zoo import plot
    from mnist_zoo.plot._heatmaps import plot_heatmaps

    table = plot_tables.results_table(
        {"activation": ["relu", "tanh"], "learning_rate": [0.01, 1e-5],
         "optimizer": ["adam", "sgd"]},
        lambda s: 0.95 if s["learning_rate"] == 0.01 else 0.5, noise=0.0)
    lost = (table["optimizer"] == "sgd") & ((table["learning_rate"] == 1e-5)
                                            | (table["activation"] == "tanh"))
    table.loc[lost, ["status", "epochs_run", "pruned_by"]] = ["pruned", 1, "median"]
    table.loc[lost, ["test_accuracy", "test_loss", "model_path"]] = [np.nan, np.nan, ""]
    table.loc[lost, "val_accuracy"] = 0.05  # would drag any mean it joined far down
    csv = plot_tables.write(table, tmp_path)
    written = plot.plot_results(csv, tmp_path / "plots", top=0)
    assert any(p.name.startswith("heatmap_") for p in written)
    report = (tmp_path / "plots" / "report.html").read_text()
    assert "<strong>3 pruned</strong> (3 by median, after epoch 1)" in report

    res = plot.load_results(csv)
    assert (res.trials["status"] == "completed").all() and len(res.trials) == 5
    (chart,) = plot_heatmaps(res, tmp_path, "png", "learning_rate", "optimizer")
    (ax, *_) = chart.figure.axes
    labels = sorted(t.get_text() for t in ax.texts if t.get_text().startswith("pruned"))
    assert labels == ["pruned @1"]  # the 1e-5 x sgd cell
    assert sum(1 for p in ax.patches if p.get_hatch() == "///") == 1
    values = [t.get_text() for t in ax.texts if not t.get_text().startswith("pruned")]
    # (1e-5, adam), (0.01, adam), (0.01, sgd): relu's alone there, not averaged with 5 %
    assert values == ["50.0", "95.0", "95.0"], values


def test_heatmaps_keep_every_cell_of_the_table_where_whole_values_were_pruned(tmp_path):
    """The benchmark's case: every SGD trial and every trial at the smallest rate pruned.
    Their column and row stay in the heatmap, hatched and labelled, beside the cells of the
    completed trials (the table of every cell a lab user asked for)."""
    import plot_tables

    from mnist_zoo import plot
    from mnist_zoo.plot._heatmaps import plot_heatmaps

    table = plot_tables.results_table(
        {"learning_rate": [0.01, 0.001, 1e-5], "optimizer": ["adam", "rmsprop", "sgd"]},
        lambda s: 0.95 if s["learning_rate"] == 0.01 else 0.9, noise=0.0)
    lost = (table["optimizer"] == "sgd") | (table["learning_rate"] == 1e-5)
    table.loc[lost, ["status", "epochs_run", "pruned_by"]] = ["pruned", 1, "median"]
    table.loc[lost, ["test_accuracy", "val_accuracy"]] = [np.nan, 0.1]
    res = plot.load_results(plot_tables.write(table, tmp_path))
    assert len(res.trials) == 4
    (chart,) = plot_heatmaps(res, tmp_path, "png", "learning_rate", "optimizer")
    (ax, *_) = chart.figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "rmsprop", "sgd"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.00001", "0.001", "0.01"]
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == ["90.0", "90.0", "95.0", "95.0"] + ["pruned @1"] * 5, texts
    assert sum(1 for p in ax.patches if p.get_hatch() == "///") == 5


def test_a_binned_continuous_setting_gets_no_row_per_pruned_value(tmp_path):
    """A learning rate drawn from a range is cut into bins in the heatmaps; a pruned trial
    has no bin, so it adds no row of its own value (found on a random search's chart)."""
    import plot_tables

    from mnist_zoo import plot
    from mnist_zoo.plot._heatmaps import plot_heatmaps

    rates = list(np.geomspace(1e-5, 0.05, 20))
    table = plot_tables.results_table({"learning_rate": rates, "optimizer": ["adam", "sgd"]},
                                      lambda s: 0.5 + s["learning_rate"], noise=0.0)
    lost = table["learning_rate"] < 2e-4
    table.loc[lost, ["status", "epochs_run", "pruned_by"]] = ["pruned", 1, "median"]
    res = plot.load_results(plot_tables.write(table, tmp_path))
    assert "learning_rate" in res.continuous
    binned = res.binned()
    (chart,) = plot_heatmaps(binned, tmp_path, "png", "learning_rate", "optimizer")
    (ax, *_) = chart.figure.axes
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == len(binned.points["learning_rate"].cat.categories) == 5, rows
    assert not any(p.get_hatch() for p in ax.patches)


def test_the_ranking_greys_pruned_points_below_the_completed_ones(tmp_path):
    """The ranking draws the completed trials, best first, then each grid point with only
    pruned runs as a greyed, hatched bar labelled with the epoch it reached and its value
    there: never ranked among the completed ones, though 0.45 > 0.30 would place it so."""
    import plot_tables

    from mnist_zoo import plot

    table = plot_tables.results_table(
        {"activation": ["relu", "sigmoid"], "learning_rate": [0.01, 1e-5],
         "optimizer": ["adam", "sgd"]},
        lambda s: 0.3 if s["learning_rate"] == 1e-5 else 0.9 + 0.01 * (s["optimizer"] == "adam"),
        noise=0.0)
    lost = (table["activation"] == "sigmoid") & (table["optimizer"] == "sgd")
    table.loc[lost, ["status", "epochs_run", "pruned_by"]] = ["pruned", 1, "median"]
    table.loc[lost, ["test_accuracy", "test_loss", "model_path"]] = [np.nan, np.nan, ""]
    table.loc[lost, "val_accuracy"] = [0.45, 0.20]  # lr 0.01, then lr 1e-5
    res = plot.load_results(plot_tables.write(table, tmp_path))
    (chart,) = plot.plot_ranking(res, tmp_path, "png")
    ax = chart.figure.axes[0]
    bars = [p for p in ax.patches if p.get_height() > 0.5]
    greyed = [p.get_hatch() == "///" for p in bars]
    assert greyed == [False] * 6 + [True] * 2, greyed  # completed first, the 2 pruned last
    labels = [t.get_text().split() for t in ax.get_yticklabels()]
    assert labels[-2:] == [["sigmoid", "lr", "0.01", "sgd"], ["sigmoid", "lr", "0.00001", "sgd"]]
    values = [t.get_text() for t in ax.texts]
    assert values[-2:] == ["pruned @1: 45.0%", "pruned @1: 20.0%"], values
    assert "the 2 trials the search pruned" in chart.caption


@pytest.mark.slow
def test_two_processes_judge_on_what_both_reported(tmp_path):
    """--jobs 2: each process trains part of the group and writes its reports to the shared
    folder; every trial ends once, as completed or pruned, the best one completed, and
    the judgements read the other process's reports (which ones were there in time depends
    on timing, so only the invariants are checked)."""
    grid = grid_file(tmp_path)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "mnist_zoo.search", "--grid", str(grid), "--out", str(out),
         "--data-dir", str(MNIST_8K2K), "--subset", "2000", "--export-top", "0", "--jobs", "2",
         "--no-tensorboard", "--prune", "median", "--prune-min-trials", "2"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 6 and table.groupby(POINT).size().eq(1).all()
    assert set(table["status"]) <= {"completed", "pruned"}
    best = table.set_index(POINT).loc[(0.01, "adam")]
    assert best["status"] == "completed" and best["epochs_run"] == 2
    reports = list((out / "tuner" / "lost" / "pruning").glob("*.json"))
    assert len(reports) == 6  # both processes reported every run they trained
