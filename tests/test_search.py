"""Issue #3: the keras-tuner grid search on real MNIST digits (no network)."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mnist_zoo.search import grid as grid_lib
from mnist_zoo.search import processes
from mnist_zoo import search as search_lib
from mnist_zoo.train import DIVERGED_LOSS
from conftest import MNIST_8K2K


AXES = list(grid_lib.CORE_AXES)


def write_grid(path: Path, axes: str, settings: str = "subset = 600") -> Path:
    path.write_text(f"[axes]\n{axes}\n[settings]\n{settings}\n")
    return path


def run_search(*args, timeout=400, **popen):
    command = [sys.executable, "-m", "mnist_zoo.search", "--data-dir", str(MNIST_8K2K), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **popen)


def grid_values(table: pd.DataFrame) -> set:
    return {tuple(row) for row in table[AXES].astype(str).itertuples(index=False)}


def expected_values(grid: str) -> set:
    points = grid_lib.grid_points(grid_lib.load_grid(grid)["axes"])
    return {tuple(str(p[axis]) for axis in AXES) for p in points}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, mnist_8k2k):
    """The README's command on the smoke grid, in two local processes (what `--jobs auto`
    gives on CI's 2 cores; said explicitly so that other machines run the same), over the
    leftovers of an earlier search that --overwrite must clear."""
    out = tmp_path_factory.mktemp("smoke")
    (out / "tuner" / "smoke").mkdir(parents=True)
    (out / "tuner" / "smoke" / "stale.txt").write_text("from an earlier search")
    result = run_search("--grid", "smoke", "--out", str(out), "--export-top", "2", "--jobs", "2",
                        "--overwrite")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.slow  # the smoke fixture: a 2-process search, tens of seconds
def test_smoke_grid_end_to_end(smoke):
    out, result = smoke
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 4 and table["trial_id"].is_unique
    assert grid_values(table) == expected_values("smoke")
    assert (table["status"] == "completed").all()
    assert (table["val_accuracy"] > 0.2).all() and (table["test_accuracy"] > 0.2).all()
    assert table["val_accuracy"].max() > 0.7  # adam at lr 0.01 learns well on 1,100 digits
    assert (table["epochs_run"] == 2).all() and (table["dataset"] == "mnist").all()
    assert (table["params"] == 101770).all() and (table["seconds"] > 0).all()
    for row in table.itertuples():
        history = pd.read_csv(out / row.history_path)
        assert len(history) == 2
        assert history["val_accuracy"].iloc[-1] == pytest.approx(row.val_accuracy)
    # One progress line per trial, then the best-trials table.
    # (--jobs auto: two workers print them, so their order may interleave.)
    assert sorted(line[:5] for line in result.stdout.splitlines() if line.startswith("[")) == \
        ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "best 3 by val_accuracy" in result.stdout
    # One start line and one TensorBoard line for the search, not one per process (#35).
    assert result.stdout.count("grid smoke: 4 trials") == 1
    assert result.stdout.count("tensorboard: logged 4 trials") == 1
    assert not (out / "tuner" / "smoke" / "stale.txt").exists()


@pytest.mark.slow  # the smoke fixture: a 2-process search, tens of seconds
def test_top_models_are_exported_and_reload(smoke):
    out, _ = smoke
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    best = table.sort_values("val_accuracy", ascending=False, kind="stable").iloc[0]
    exported = sorted((out / "models").iterdir())
    assert [p.name for p in exported][0] == f"top1_trial_{best.trial_id}" and len(exported) == 2
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    model = keras.models.load_model(exported[0] / "model.keras")
    served = tf.saved_model.load(str(exported[0] / "saved_model"))
    np.testing.assert_allclose(served.serve(images).numpy(), model.predict(images, verbose=0),
                               atol=1e-5)


@pytest.mark.slow  # the smoke fixture: a 2-process search, tens of seconds
def test_rerun_of_a_finished_search_trains_nothing(smoke, capsys):
    out, _ = smoke
    code = search_lib.main(["--grid", "smoke", "--out", str(out), "--data-dir", str(MNIST_8K2K),
                            "--export-top", "0", "--jobs", "1"])
    assert code == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(pd.read_csv(out / "experiment_results.csv")) == 4


@pytest.mark.slow
def test_kill_9_then_resume_runs_every_trial_once(tmp_path, mnist_8k2k):
    grid = write_grid(tmp_path / "resume.toml",
                      'model = ["mlp_bp"]\nactivation = ["relu", "tanh", "sigmoid"]\n'
                      'optimizer = ["adam", "sgd"]\nepochs = [3]\nbatch_size = [32]')
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mnist_zoo.search", "--grid", str(grid), "--out", str(out),
               "--data-dir", str(MNIST_8K2K), "--export-top", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not list(out.glob("tuner/resume/trial_*/result.json")) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # With --jobs auto its chief and workers die with it (a parent-death signal): count
    # what was finished once none of them can write any more.
    deadline = time.time() + 30
    while _processes_naming(out) and time.time() < deadline:
        time.sleep(0.2)
    assert not _processes_naming(out), "a child process outlived the killed search"
    finished = len(list(out.glob("tuner/resume/trial_*/result.json")))
    assert 1 <= finished < 6, "the search should be killed part-way"
    result = run_search("--grid", str(grid), "--out", str(out), "--export-top", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    ran_now = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(ran_now) == 6 - finished
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 6 and table["trial_id"].is_unique
    assert grid_values(table) == expected_values(str(grid))


def _processes_naming(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if str(path).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def test_diverging_trial_is_recorded_and_the_grid_goes_on(tmp_path, mnist_8k2k):
    grid = write_grid(tmp_path / "diverge.toml",
                      'model = ["mlp_bp"]\noptimizer = ["sgd"]\nlearning_rate = [1e12, 1e6, 0.1]\n'
                      "epochs = [2]", settings="subset = 2000")
    table = search_lib.search(str(grid), data_dir=MNIST_8K2K, out=tmp_path / "out",
                              export_top=1, verbose=0)
    by_rate = table.set_index("learning_rate")
    # 1e12 turns the loss into NaN; 1e6 into NaN or a finite but absurd loss (~1e27).
    assert by_rate.loc[1e12, "status"] == "diverged" and np.isnan(by_rate.loc[1e12, "train_loss"])
    assert by_rate.loc[1e6, "status"] == "diverged"
    assert not by_rate.loc[1e6, "train_loss"] <= DIVERGED_LOSS
    assert by_rate.loc[1e12, "model_path"] == by_rate.loc[1e6, "model_path"] == ""  # no model
    assert by_rate.loc[0.1, "status"] == "completed" and by_rate.loc[0.1, "val_accuracy"] > 0.5
    assert len(list((tmp_path / "out" / "models").iterdir())) == 1


BAD_GRIDS = {
    "unknown_axis": ('activaton = ["relu"]', "unknown axis 'activaton'.*allowed axes: model"),
    "unknown_model": ('model = ["lenet6"]', "model = 'lenet6'.*choose from cnn3, .*lenet5"),
    "unknown_activation": ('activation = ["relu6"]', "activation = 'relu6'.*choose from relu"),
    "empty_list": ("batch_size = []", "axis 'batch_size' must be a non-empty list"),
    "wrong_type": ('learning_rate = ["fast"]', "learning_rate = 'fast'.*expected a number"),
    "not_a_list": ("epochs = 3", "axis 'epochs' must be a non-empty list"),
    "bad_toml": ("model = [lenet5", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_GRIDS)
def test_bad_grid_files_fail_before_training(case, tmp_path, capsys):
    """A bad grid is refused with its one line by load_grid and by the command, which
    exits with status 2 before it writes anything, not even --out."""
    line, message = BAD_GRIDS[case]
    grid = write_grid(tmp_path / f"{case}.toml", line, settings="")
    out = tmp_path / "out"
    with pytest.raises(grid_lib.GridError, match=f"{case}.toml: {message}"):
        grid_lib.load_grid(str(grid))
    capsys.readouterr()
    code = search_lib.main(["--grid", str(grid), "--out", str(out), "--jobs", "1"])
    error = capsys.readouterr().err
    assert code == 2 and re.search(f"^error: .*{case}.toml: {message}", error, re.MULTILINE)
    assert not out.exists()
    if case == "unknown_model":  # once through a real process too: one line, no traceback
        result = run_search("--grid", str(grid), "--out", str(out), timeout=120)
        assert result.returncode == 2 and "lenet6" in result.stderr
        assert "Traceback" not in result.stderr
        assert not out.exists()


def test_unknown_grid_name_lists_the_built_in_ones():
    with pytest.raises(grid_lib.GridError, match="unknown grid 'ful'.*full, full_hyperband, mlp, quick, smoke"):
        grid_lib.load_grid("ful")


def test_a_folder_named_like_a_grid_is_not_taken_for_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()  # e.g. --out full
    assert grid_lib.load_grid("full")["path"].parent.name == "search"


def test_built_in_grids_have_the_promised_sizes():
    sizes = {name: grid_lib.grid_size(grid_lib.load_grid(name)["axes"])
             for name in ("full", "mlp", "quick", "smoke")}
    assert sizes == {"full": 81, "mlp": 256, "quick": 8, "smoke": 4}
    full = grid_lib.load_grid("full")["axes"]
    assert full["activation"] == ["tanh", "relu", "sigmoid"] and full["batch_size"] == [16, 32, 64]


def test_resuming_with_a_changed_grid_is_refused(tmp_path, mnist_8k2k):
    grid = write_grid(tmp_path / "g.toml", 'model = ["mlp_bp"]\nepochs = [1]')
    search_lib.search(str(grid), data_dir=MNIST_8K2K, out=tmp_path, export_top=0, verbose=0)
    write_grid(grid, 'model = ["mlp_bp"]\nepochs = [2]')
    # The refusal names what changed (#29).
    with pytest.raises(grid_lib.GridError,
                       match=r"another grid: axis epochs \[1\] -> \[2\]; .*--overwrite"):
        search_lib.search(str(grid), data_dir=MNIST_8K2K, out=tmp_path, verbose=0)
    table = search_lib.search(str(grid), data_dir=MNIST_8K2K, out=tmp_path, overwrite=True,
                              export_top=0, verbose=0)
    assert table["epochs"].tolist() == [2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_distributed_chief_and_two_workers_share_the_grid(tmp_path, mnist_8k2k):
    grid = write_grid(tmp_path / "dist.toml",
                      'model = ["mlp_bp"]\nactivation = ["relu", "tanh"]\n'
                      'optimizer = ["adam", "sgd"]\nepochs = [2]', settings="subset = 2000")
    out = tmp_path / "out"
    common = [sys.executable, "-m", "mnist_zoo.search", "--grid", str(grid), "--out", str(out),
              "--data-dir", str(MNIST_8K2K), "--oracle", f"127.0.0.1:{_free_port()}"]
    chief = subprocess.Popen([*common, "--chief"], stdout=subprocess.PIPE, text=True)
    workers = [subprocess.Popen([*common, "--worker", str(i)], stdout=subprocess.PIPE, text=True)
               for i in range(2)]
    try:
        outputs = [w.communicate(timeout=400)[0] for w in workers]
        chief_output = chief.communicate(timeout=120)[0]
    finally:
        for process in (chief, *workers):
            process.kill()
    assert chief.returncode == 0 and all(w.returncode == 0 for w in workers)
    trials_run = [line for text in outputs for line in text.splitlines() if line.startswith("[")]
    assert len(trials_run) == 4
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 4 and table["trial_id"].is_unique
    assert grid_values(table) == expected_values(str(grid))
    assert (table["status"] == "completed").all()
    # The chief ranks and exports once everyone is done.
    assert "best 3 by val_accuracy" in chief_output
    # Started by hand, each says what it is: the chief where it serves, each worker its data.
    assert chief_output.startswith("chief: serving grid dist (4 trials) on 127.0.0.1:")
    assert all(text.count("grid dist: 4 trials, ") == 1 for text in outputs)
    assert len(list((out / "models").iterdir())) == 3
    trial_files = [json.loads(p.read_text()) for p in out.glob("tuner/dist/trial_*/trial.json")]
    assert sorted(t["status"] for t in trial_files) == ["COMPLETED"] * 4


def test_search_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        search_lib.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--grid", "--dataset", "--data-dir", "--out", "--epochs", "--subset", "--seed",
                   "--overwrite", "--export-top", "--objective", "--chief", "--worker",
                   "--jobs", "--max-memory-growth"):
        assert option in text


@pytest.mark.slow
def test_a_process_that_outgrows_its_memory_restarts_and_the_search_resumes(tmp_path, mnist_8k2k):
    # A tiny allowance makes a process restart after its second trial (every model
    # built adds some MiB) while trials are left; the restarted process must pick up
    # the remaining trials. Two repeats: 8 trials, so each of the two workers has some.
    out = tmp_path / "out"
    result = run_search("--grid", "smoke", "--out", str(out), "--no-fuse", "--export-top", "0",
                        "--max-memory-growth", "0.000001", "--repeats", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarting this process" in result.stdout
    assert result.stdout.count("grid smoke: 8 trials") == 1  # once, not per (re)started process
    trial_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(trial_lines) == 8  # each trial trained once, none twice
    table = pd.read_csv(out / "experiment_results.csv", dtype={"trial_id": str})
    assert len(table) == 8 and table["trial_id"].is_unique
    assert grid_values(table.query("repeat == 0")) == expected_values("smoke")
    assert (table["status"] == "completed").all()


def test_a_restarted_or_worker_process_never_gets_overwrite(capsys):
    # A restart or a worker passing --overwrite on would wipe the results; argparse's
    # abbreviations ("--ov") are off, so dropping the full names is enough.
    argv = ["--grid", "full", "--out", "x", "--overwrite", "--jobs", "2", "--threads=1"]
    assert processes.drop_options(argv, ["--overwrite"], ["--jobs", "--threads"]) == \
        ["--grid", "full", "--out", "x"]
    with pytest.raises(SystemExit):
        search_lib.build_parser().parse_args(["--ov"])
    assert "unrecognized arguments: --ov" in capsys.readouterr().err


def test_the_chief_ends_as_soon_as_the_last_worker_is_told_the_grid_is_done(tmp_path,
                                                                              monkeypatch):
    # Two workers: one is told "done" while the other still trains; keras-tuner's own chief
    # then looked again only every 20 s, so the finished grid's report waited up to 20 s.
    import threading

    import grpc
    import keras_tuner as kt
    from keras_tuner.src import protos

    from mnist_zoo.search._keras_tuner import TrialStatus, serve_trials
    from mnist_zoo.search.oracle import ResumableGridOracle, make_hyperparameters

    axes = {"model": ["mlp_bp"], "learning_rate": [0.01]}
    oracle = ResumableGridOracle(grid_lib.grid_points(axes),
                                 objective=kt.Objective("val_accuracy", "max"),
                                 hyperparameters=make_hyperparameters(axes))
    oracle._set_project_dir(str(tmp_path), "chief")
    port = _free_port()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    chief = threading.Thread(target=serve_trials, args=(oracle,), daemon=True)
    chief.start()
    service = protos.get_service()
    stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    def ask(worker: str):
        request = service.CreateTrialRequest(tuner_id=worker)
        return kt.engine.trial.Trial.from_proto(
            stub.CreateTrial(request, wait_for_ready=True, timeout=30).trial)

    trial = ask("worker0")
    assert trial.status == TrialStatus.RUNNING
    assert ask("worker1").status == TrialStatus.IDLE  # the only trial is taken
    stub.UpdateTrial(service.UpdateTrialRequest(trial_id=trial.trial_id,
                                                metrics={"val_accuracy": 0.5}), timeout=30)
    trial.status = TrialStatus.COMPLETED
    stub.EndTrial(service.EndTrialRequest(trial=trial.to_proto()), timeout=30)
    assert ask("worker1").status == TrialStatus.STOPPED  # worker0 has not asked yet
    time.sleep(1.5)
    assert chief.is_alive()  # worker0 is still registered
    told = time.perf_counter()
    assert ask("worker0").status == TrialStatus.STOPPED
    chief.join(timeout=10)
    assert not chief.is_alive() and time.perf_counter() - told < 3
