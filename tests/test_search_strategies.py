"""Issue #20: random, Bayesian and Hyperband search over the grid's axes, on real digits.

The oracles' resumption is checked without training (a fixed score per point), the
searches in-process on a few hundred digits (a new TensorFlow process costs ~5 s), and
kill -9 under --jobs 2 with real processes (slow).
"""

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import pandas as pd
import pytest

from mnist_zoo import search as search_lib
from mnist_zoo.errors import GridError
from mnist_zoo.search.grid import load_grid
from mnist_zoo.search.plan import run_values
from mnist_zoo.search.results import record_trial
from mnist_zoo.search.space import resolve_search
from mnist_zoo.search.strategies import make_oracle
from conftest import MNIST_8K2K

RANGE = "learning_rate = { min = 1e-3, max = 0.05, log = true }"


@pytest.fixture(scope="module")
def digits(mnist_8k2k):
    from mnist_zoo.data import load_dataset

    return load_dataset("mnist", MNIST_8K2K, subset=330, validation_size=30)


def search_file(folder: Path, name: str, search: str, axes: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(f"[search]\n{search}\n[axes]\n{axes}\n")
    return path


# --------------------------------------------------------------------------- search files
def test_a_search_file_names_its_strategy_and_ranges(tmp_path):
    path = search_file(tmp_path, "s", 'strategy = "random"\nmax_trials = 7',
                       f'{RANGE}\nbatch_size = {{ min = 16, max = 64, step = 16 }}')
    spec = load_grid(str(path))
    assert spec["axes"]["learning_rate"] == {"min": 1e-3, "max": 0.05, "log": True}
    assert spec["axes"]["batch_size"] == {"min": 16, "max": 64, "log": False, "step": 16}
    assert resolve_search(spec) == {"strategy": "random", "max_trials": 7}
    assert resolve_search(spec, max_trials=3)["max_trials"] == 3
    # --strategy drops the file's settings of another strategy; Hyperband's epochs come
    # from the epochs axis (or --epochs).
    assert resolve_search(spec, "hyperband") == {"strategy": "hyperband", "max_epochs": 3,
                                                 "factor": 3, "iterations": 1}
    assert resolve_search(spec, "hyperband", epochs=2)["max_epochs"] == 2
    full = load_grid("full_hyperband")
    assert full["axes"]["learning_rate"]["log"] and resolve_search(full)["max_epochs"] == 3
    assert {k: v for k, v in full["axes"].items() if k != "learning_rate"} == \
        {k: v for k, v in load_grid("full")["axes"].items() if k != "learning_rate"}


BAD_FILES = {
    "grid_range": ("", RANGE, 'axis learning_rate is a range; a grid needs a list of values, '
                              'or set strategy = "random"'),
    "range_of_names": ('strategy = "random"', 'activation = { min = 1, max = 2 }',
                       "axis activation cannot be a range"),
    "empty_range": ('strategy = "random"', "learning_rate = { min = 0.1, max = 0.01 }",
                    "learning_rate range needs min < max"),
    "half_range": ('strategy = "random"', "learning_rate = { min = 0.1 }",
                   "range learning_rate needs min and max"),
    "bad_strategy": ('strategy = "evolution"', 'epochs = [1]',
                     "strategy = 'evolution' is not allowed: choose from grid, random"),
    "bad_key": ('strategy = "random"\nmax_trails = 3', 'epochs = [1]',
                "unknown \\[search\\] key 'max_trails'"),
    "hyperband_epochs": ('strategy = "hyperband"', "epochs = [1, 3]",
                         "hyperband sets each trial's epochs itself"),
    "wrong_budget": ('strategy = "hyperband"\nmax_trials = 4', "epochs = [3]",
                     "max_trials does not apply to strategy 'hyperband'"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_search_file_is_refused_in_one_line(case, tmp_path, capsys):
    search, axes, message = BAD_FILES[case]
    path = search_file(tmp_path, case, search, axes)
    out = tmp_path / "out"
    code = search_lib.main(["--grid", str(path), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error, error
    assert re.fullmatch(f"error: {re.escape(str(path))}: .*{message}.*\n", error), error
    assert not out.exists()


def test_hyperband_refuses_repeats_and_help_names_the_options(tmp_path, capsys):
    with pytest.raises(GridError, match="--repeats needs strategy grid, random or bayesian"):
        search_lib.search("smoke", strategy="hyperband", repeats=2, out=tmp_path)
    with pytest.raises(SystemExit):
        search_lib.main(["--help"])
    text = capsys.readouterr().out
    assert "--strategy {grid,random,bayesian,hyperband}" in text and "--max-trials N" in text


# --------------------------------------------------------------------------- resumption
AXES = {"model": ["mlp_bp"], "activation": ["relu", "tanh"],
        "learning_rate": {"min": 1e-3, "max": 0.1, "log": True}, "epochs": [3]}
# Bayesian with 4 dimensions: 12 random points, then its Gaussian process proposes.
BAYESIAN_AXES = {**AXES, "optimizer": ["adam", "sgd", "rmsprop"], "batch_size": [16, 32, 64]}
SEARCHES = {"random": {"strategy": "random", "max_trials": 6},
            "bayesian": {"strategy": "bayesian", "max_trials": 16},
            "hyperband": {"strategy": "hyperband", "max_epochs": 3, "factor": 3,
                          "iterations": 2}}


def score(values: dict) -> float:
    """A fixed result per run: a hill in the log learning rate, more epochs better."""
    lr = math.log10(values["learning_rate"])
    return (0.9 - 0.05 * (lr + 2) ** 2 + 0.02 * values["epochs"]
            - 0.01 * (values["activation"] == "tanh") + 0.003 * math.sin(7 * lr)
            - 0.004 * (values.get("optimizer") == "sgd") + values.get("batch_size", 0) / 1e4)


def new_oracle(project: Path, strategy: str, reload: bool = False):
    axes = BAYESIAN_AXES if strategy == "bayesian" else AXES
    oracle = make_oracle(axes, SEARCHES[strategy], seed=0, max_failures=3,
                         objective=kt.Objective("val_accuracy", "max"))
    oracle._set_project_dir(str(project.parent), project.name)
    oracle.verbose = 0
    if reload:
        oracle.reload()
    return oracle

def finish_trial(oracle, trial, project: Path, done: list) -> None:
    """Report a handed-out trial as a worker would; a trial whose record exists finished
    before a kill (or in an earlier run): it is reported, not trained again."""
    run = run_values(trial.hyperparameters.values)
    record = project / f"trial_{trial.trial_id}" / "result.json"
    if not record.exists():
        record_trial({"trial_id": trial.trial_id, "status": "completed",
                      "val_accuracy": score(run)}, record.parent)
        done.append((trial.trial_id, run))
    oracle.update_trial(trial.trial_id, {"val_accuracy": score(run)})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)



def hand_out(project: Path, strategy: str, kill_after: int | None = None,
             between_writes: bool = False) -> list[tuple]:
    """Run the oracle as a search would, the trials scored by `score`, and return the
    (trial id, run) of every finished trial in order. kill_after: kill the search (drop
    the oracle, as kill -9 does) once that many trials were handed out, mid-trial, or with
    between_writes between keras-tuner's write of the trial and of its own state; then
    reload it from the folder and go on."""
    oracle, done, handed = new_oracle(project, strategy), [], 0
    while True:
        saved = project / "oracle.json"
        state = saved.read_text() if saved.exists() else None
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            return done
        handed += 1
        if handed == kill_after:
            if between_writes and state:
                (project / "oracle.json").write_text(state)
            oracle = new_oracle(project, strategy, reload=True)
            continue
        finish_trial(oracle, trial, project, done)


@pytest.mark.parametrize("strategy, kill_after, between_writes", [
    ("random", 3, False), ("random", 3, True), ("bayesian", 14, False),
    ("hyperband", 4, False), ("hyperband", 7, True)])
def test_the_oracles_resume_exactly_after_a_kill(strategy, kill_after, between_writes, tmp_path):
    """Same seed, same proposals in the same order, no trial lost or run twice (Bayesian
    killed at its 2nd Gaussian-process proposal; Hyperband within a later round)."""
    unbroken = hand_out(tmp_path / "unbroken", strategy)
    resumed = hand_out(tmp_path / "killed", strategy, kill_after, between_writes)
    assert resumed == unbroken
    assert len({trial_id for trial_id, _ in resumed}) == len(resumed)
    lrs = [run["learning_rate"] for _, run in unbroken]
    assert min(lrs) >= 1e-3 and max(lrs) <= 0.1 and len(set(lrs)) > 3  # drawn, not listed
    if strategy == "hyperband":
        assert any(run["continued_from"] for _, run in unbroken)
    # A fresh search with the default seed (0) draws the same points again.
    assert hand_out(tmp_path / "again", strategy) == unbroken


# --------------------------------------------------------------------------- searches
@pytest.mark.kernels  # LeNet-5s fused: both CPU kernel paths (CI's TF_ENABLE_ONEDNN_OPTS=0 pass)
@pytest.mark.slow  # (41 s measured) on the shared 2-core machine
def test_random_search_is_fused_repeated_and_recorded_like_the_grid(tmp_path, digits):
    path = search_file(tmp_path, "rnd", 'strategy = "random"\nmax_trials = 3',
                       f'model = ["lenet5"]\n{RANGE}\noptimizer = ["adam", "sgd"]\n'
                       "batch_size = [64]\nepochs = [1]")
    table = search_lib.search(str(path), data=digits, out=tmp_path / "out", verbose=0,
                              export_top=1, repeats=2)
    assert len(table) == 6 and table["trial_id"].is_unique
    assert (table["status"] == "completed").all() and table["val_accuracy"].max() > 0.3
    # Each point twice in a row, repeat 0 then 1, with the same drawn learning rate.
    assert table["repeat"].tolist() == [0, 1] * 3
    assert table["learning_rate"].nunique() == 3
    assert (table.groupby("learning_rate")["seed"].agg(sorted) == pd.Series([[0, 1]] * 3,
            index=sorted(table["learning_rate"].unique()))).all()
    assert (table["trained_with"] == 6).all()  # one batch: all six share their batches
    summary = pd.read_csv(tmp_path / "out" / "experiment_summary.csv")
    assert len(summary) == 3 and (summary["runs"] == 2).all()
    assert len(list((tmp_path / "out" / "models").iterdir())) == 1
    assert list((tmp_path / "out" / "tuner" / "rnd" / "tensorboard").glob("trial_*"))


@pytest.mark.slow  # (22 s measured) on the shared 2-core machine
def test_hyperband_goes_on_from_the_earlier_rounds_weights(tmp_path, digits):
    path = search_file(tmp_path, "hb", 'strategy = "hyperband"\nmax_epochs = 3\nfactor = 3',
                       f'model = ["mlp_bp"]\n{RANGE}\nbatch_size = [32]')
    table = search_lib.search(str(path), data=digits, out=tmp_path / "out", verbose=0,
                              export_top=0, tensorboard=False).set_index("trial_id")
    assert len(table) == 6 and (table["status"] == "completed").all()
    assert sorted(zip(table["bracket"], table["round"], table["epochs"])) == \
        [(0, 0, 3), (0, 0, 3), (1, 0, 1), (1, 0, 1), (1, 0, 1), (1, 1, 3)]
    # A round's runs share their batches and train as one graph.
    assert table.groupby(["bracket", "round"])["trained_with"].max().tolist() == [2, 3, 1]
    (child_id, child), = table[table["round"] == 1].iterrows()
    parent_id = f"{int(child['continued_from']):04d}"
    parent = table.loc[parent_id]
    assert parent["val_accuracy"] == table[table["bracket"] == 1]["val_accuracy"].max()
    out = tmp_path / "out"
    earlier = pd.read_csv(out / parent["history_path"])
    history = pd.read_csv(out / child["history_path"])
    assert child["epochs_run"] == len(history) == 3 and child["initial_epoch"] == 1
    pd.testing.assert_frame_equal(history.iloc[:1], earlier)  # its first epoch is the parent's
    # The second epoch starts from the parent's weights: far below a fresh first epoch.
    assert history["loss"][1] < 0.7 * earlier["loss"][0]
    # ... and from its optimizer's state: Adam counted every step of all three epochs.
    model = keras.models.load_model(out / child["model_path"])
    assert int(model.optimizer.iterations) == 3 * math.ceil(300 / 32)


@pytest.mark.slow
def test_kill_9_of_a_two_job_hyperband_search_then_rerun_runs_every_trial_once(tmp_path,
                                                                                mnist_8k2k,
                                                                                capsys):
    """The search killed in keras-tuner's distributed mode (a chief and two workers),
    then rerun in this process (TensorFlow is loaded already; the oracle resumes from the
    same trial records whichever mode wrote them)."""
    path = search_file(tmp_path, "hb2", 'strategy = "hyperband"\nmax_epochs = 3\nfactor = 3',
                       f'model = ["mlp_bp"]\n{RANGE}\nbatch_size = [32]\n'
                       "[settings]\nsubset = 1200")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mnist_zoo.search", "--grid", str(path), "--out", str(out),
               "--data-dir", str(MNIST_8K2K), "--export-top", "0", "--jobs", "2",
               "--no-tensorboard", "--max-memory-growth", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(list(out.glob("tuner/hb2/trial_*/result.json"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(3)  # its chief and workers die with it (a parent-death signal)
    finished = len(list(out.glob("tuner/hb2/trial_*/result.json")))
    assert 2 <= finished < 6, "the search should be killed part-way"
    capsys.readouterr()
    rerun = [*command[3:command.index("--jobs")], "--jobs", "1", "--no-tensorboard",
             "--max-memory-growth", "0"]
    assert search_lib.main(rerun) == 0
    ran_now = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 6 and table["trial_id"].is_unique
    assert len(ran_now) == 6 - finished
    assert (table["status"] == "completed").all()
    continued = table[table["continued_from"].notna()]
    assert len(continued) == 1 and (continued["epochs_run"] == 3).all()
    trials = [json.loads(p.read_text()) for p in out.glob("tuner/hb2/trial_*/trial.json")]
    assert sorted(t["status"] for t in trials) == ["COMPLETED"] * 6


@pytest.mark.slow  # (63 s measured, its own process) on the shared 2-core machine
def test_bayesian_search_from_the_command_line_and_a_space_that_runs_out(tmp_path, capsys,
                                                                          mnist_8k2k):
    """--strategy over a file without [search]: Bayesian's Gaussian process proposes the
    4th trial after 3 random ones (one axis varies); random search over the 4 points of
    the smoke grid stops at them, owing none."""
    common = ["--data-dir", str(mnist_8k2k), "--subset", "300", "--epochs", "1", "--jobs", "1",
              "--export-top", "0", "--no-tensorboard"]
    path = tmp_path / "lr.toml"
    path.write_text(f'[axes]\nmodel = ["mlp_bp"]\n{RANGE}\n')
    code = search_lib.main(["--grid", str(path), "--strategy", "bayesian", "--max-trials", "4",
                            "--out", str(tmp_path / "bayes"), *common])
    out = capsys.readouterr().out
    assert code == 0 and "lr (bayesian): 4 trials" in out
    table = pd.read_csv(tmp_path / "bayes" / "experiment_results.csv")
    assert len(table) == 4 and (table["status"] == "completed").all()
    assert table["learning_rate"].between(1e-3, 0.05).all() and table["learning_rate"].is_unique
    code = search_lib.main(["--grid", "smoke", "--strategy", "random", "--max-trials", "9",
                            "--out", str(tmp_path / "random"), *common])
    out = capsys.readouterr().out
    assert code == 0 and "have no result" not in out
    assert len(pd.read_csv(tmp_path / "random" / "experiment_results.csv")) == 4


def test_hyperband_records_a_round_that_would_go_on_from_a_diverged_run(tmp_path, digits):
    """Every run diverges (NaN is a result): the best of round 0 has no model to go on
    from, so its next round is recorded as diverged without training."""
    path = search_file(tmp_path, "nan", 'strategy = "hyperband"\nmax_epochs = 3\nfactor = 3',
                       'model = ["mlp_bp"]\noptimizer = ["sgd"]\n'
                       "learning_rate = { min = 1e9, max = 1e12, log = true }")
    table = search_lib.search(str(path), data=digits, out=tmp_path / "out", verbose=0,
                              export_top=1, tensorboard=False)
    assert len(table) == 6 and (table["status"] == "diverged").all()
    (_, child), = table[table["round"] == 1].iterrows()
    assert child["seconds"] == 0 and child["model_path"] == ""  # no model
    assert child["epochs_run"] == 1  # the diverged parent's one epoch, nothing added
    models = tmp_path / "out" / "models"
    assert not models.exists() or not any(models.iterdir())


# --------------------------------------------------------------------------- growing (#29)
def grow(project: Path, strategy: str, budgets: list[int]) -> list[tuple]:
    """Run the oracle as hand_out does, stopping at each budget (max_trials, or Hyperband's
    iterations) and reloading it with the next: a search rerun with a larger budget."""
    budget_key = "iterations" if strategy == "hyperband" else "max_trials"
    axes = BAYESIAN_AXES if strategy == "bayesian" else AXES
    done = []
    for number, budget in enumerate(budgets):
        oracle = make_oracle(axes, {**SEARCHES[strategy], budget_key: budget}, seed=0,
                             max_failures=3, objective=kt.Objective("val_accuracy", "max"))
        oracle._set_project_dir(str(project.parent), project.name)
        oracle.verbose = 0
        if number:
            oracle.reload()
        while (trial := oracle.create_trial("tuner0")).status != "STOPPED":
            finish_trial(oracle, trial, project, done)
    return done


@pytest.mark.parametrize("strategy, budgets", [("random", [4, 6]), ("bayesian", [13, 16]),
                                               ("hyperband", [1, 2])])
def test_a_grown_search_proposes_what_a_search_of_that_size_from_the_start_does(
        strategy, budgets, tmp_path):
    """Bayesian grows after its 12 random points, so its Gaussian process proposes on."""
    grown = grow(tmp_path / "grown", strategy, budgets)
    assert grown == grow(tmp_path / "whole", strategy, budgets[-1:])
    assert len(grown) > len(grow(tmp_path / "small", strategy, budgets[:1]))


def test_a_finished_random_search_grows_by_the_trials_asked_for(tmp_path, digits, capsys):
    """Issue #29: --max-trials 12 on a finished 8-trial random search was refused (and
    --overwrite threw the 8 away): now it runs exactly 4 more, the 8 rows untouched, and
    draws what a 12-trial search draws. Smaller is refused; so is another search, by name."""
    path = search_file(tmp_path, "grow", 'strategy = "random"\nmax_trials = 8',
                       f'model = ["mlp_bp"]\n{RANGE}\noptimizer = ["adam", "sgd"]\n'
                       "batch_size = [64]\nepochs = [1]")
    out = tmp_path / "out"
    run = dict(data=digits, out=out, verbose=0, export_top=0, tensorboard=False)
    first = search_lib.search(str(path), **run)
    records = {p: p.read_text() for p in out.glob("tuner/grow/trial_*/result.json")}
    capsys.readouterr()
    grown = search_lib.search(str(path), max_trials=12, **run)
    trained = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(first) == 8 and len(grown) == 12 and len(trained) == 4
    assert trained[0].startswith("[9/12]") and (grown["status"] == "completed").all()
    pd.testing.assert_frame_equal(grown.head(8), first)
    assert {p: p.read_text() for p in records} == records
    # The proposals of a 12-trial search from the start (its oracle only: no training).
    oracle = make_oracle(load_grid(str(path))["axes"], {"strategy": "random", "max_trials": 12},
                         seed=0, max_failures=3, objective=kt.Objective("val_accuracy", "max"))
    oracle._set_project_dir(str(tmp_path / "fresh"), "grow")
    oracle.verbose = 0
    proposed = []
    while (trial := oracle.create_trial("tuner0")).status != "STOPPED":
        proposed.append(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})  # random: scores unused
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert grown["optimizer"].tolist() == [p["optimizer"] for p in proposed]
    assert grown["learning_rate"].tolist() == pytest.approx([p["learning_rate"] for p in proposed])

    with pytest.raises(GridError, match=r"holds a random search with max_trials 12; it can "
                                        r"grow, not shrink.*--max-trials 12 or more"):
        search_lib.search(str(path), max_trials=10, **run)
    with pytest.raises(GridError, match=r"another grid: axis epochs \[1\] -> \[2\]; max_trials "
                                        r'12 -> 8; strategy "random" -> "bayesian"; rerun it'):
        search_lib.search(str(path), strategy="bayesian", epochs=2, **run)
