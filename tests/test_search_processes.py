"""Issue #29 items 1, 2, 5, 8, 9 and #35 item 3: a search's processes, on real processes.

A second search on a running one's --out is refused; SIGTERM stops a --jobs search as
Ctrl-C does; a chief on a busy port and a worker without a chief end in one line; a
kill -9 leaves no folder that a later search does not remove; an error every --jobs
process would hit is printed once.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_zoo import search as search_lib
from mnist_zoo.search import processes
from conftest import MNIST_8K2K

ROOT = Path(__file__).resolve().parents[1]
# Two epochs of 2,000 digits per trial: slow enough to act while the search runs.
SLOW_GRID = ('model = ["mlp_bp"]\nactivation = ["relu", "tanh", "sigmoid"]\n'
             'optimizer = ["adam", "sgd"]\nepochs = [2]\nbatch_size = [16]')


def grid_file(folder: Path, name: str = "g", axes: str = SLOW_GRID) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(f"[axes]\n{axes}\n")
    return path


def command(*args) -> list[str]:
    return [sys.executable, "-m", "mnist_zoo.search", "--data-dir", str(MNIST_8K2K),
            "--subset", "2000", "--export-top", "0", "--no-fuse", *args]


def start(args, temp: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, **({"TMPDIR": str(temp)} if temp else {})}
    return subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=env, cwd=ROOT)


def wait_for(condition, seconds: float):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if (found := condition()):
            return found
        time.sleep(0.2)
    return None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --------------------------------------------------------------------------- item 1
@pytest.mark.slow  # ~30 s: a process starts TensorFlow and finishes a trial first
def test_a_second_search_on_a_running_ones_out_is_refused(tmp_path, capsys):
    """--overwrite while a search runs on the same --out deleted its trials, then both
    trained into one folder: now the folder is locked while a search runs."""
    grid, out = grid_file(tmp_path), tmp_path / "out"
    first = start(["--grid", str(grid), "--out", str(out), "--jobs", "1"])
    try:
        assert wait_for(lambda: list(out.glob("tuner/g/trial_*/result.json")), 120), \
            first.communicate()[1][-2000:] if first.poll() is not None else "no trial finished"
        code = search_lib.main(["--grid", str(grid), "--out", str(out), "--data-dir",
                                str(MNIST_8K2K), "--jobs", "1", "--overwrite"])
        err = capsys.readouterr().err
        finished = list(out.glob("tuner/g/trial_*/result.json"))
    finally:
        stop(first)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: another search is running on --out {out} (pid {first.pid}")
    assert finished, "the running search's trials were deleted"


# --------------------------------------------------------------------------- items 2 and 8
@pytest.mark.slow
def test_sigterm_to_a_jobs_search_stops_it_as_ctrl_c_does(tmp_path):
    """SIGTERM (kill, timeout, schedulers) ended a --jobs search silently (status -15), its
    workers SIGKILLed and its jobs folder left in the temp folder."""
    grid, out, temp = grid_file(tmp_path), tmp_path / "out", tmp_path / "temp"
    temp.mkdir()
    parent = start(["--grid", str(grid), "--out", str(out), "--jobs", "2"], temp)
    try:
        assert wait_for(lambda: len(children_of(parent.pid)) == 3, 60)
        workers = children_of(parent.pid)
        time.sleep(3)
        parent.send_signal(signal.SIGTERM)  # the parent only, as `kill PID` does
        _, err = parent.communicate(timeout=60)
    finally:
        stop(parent)
    assert parent.returncode == 128 + signal.SIGTERM, err[-2000:]
    said = [line for line in err.splitlines() if "interrupted" in line]
    assert said == ["interrupted (SIGTERM): finished trials are saved; rerun the same command "
                    "to resume"], err[-2000:]
    assert "Traceback" not in err and not error_lines(err), err[-2000:]
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not list(temp.iterdir()), "the jobs folder was left behind"


def test_a_jobs_folder_a_kill_9_left_is_removed_by_the_next_search(tmp_path, monkeypatch,
                                                                  capsys):
    grid, out, temp = grid_file(tmp_path), tmp_path / "out", tmp_path / "temp"
    temp.mkdir()
    parent = start(["--grid", str(grid), "--out", str(out), "--jobs", "2"], temp)
    try:
        assert wait_for(lambda: len(children_of(parent.pid)) == 3, 60)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    finally:
        stop(parent)
    left = list(temp.iterdir())
    assert len(left) == 1 and left[0].name.startswith("mnist_zoo_stop_")
    # A later --jobs search (here one that stops at its data, before any process starts)
    # removes it: its owner is gone.
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    code = search_lib.main(["--grid", str(grid), "--out", str(tmp_path / "other"),
                            "--data-dir", str(tmp_path / "no_data"), "--jobs", "2"])
    assert not list(temp.iterdir())
    assert code == 2 and "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- items 5 and 9
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_chief_on_a_port_in_use_says_so_in_one_line(tmp_path):
    """A 28-line gRPC traceback, after the chief had written its tuner files."""
    grid, out = grid_file(tmp_path), tmp_path / "out"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(command("--grid", str(grid), "--out", str(out), "--chief",
                                        "--oracle", f"127.0.0.1:{port}"),
                                capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: the chief cannot serve on --oracle 127.0.0.1:{port} (it is in use, by another "
        "chief or program); pass --oracle 127.0.0.1:PORT with a free port, and the same to its "
        "workers"]
    assert not (out / "tuner" / "g" / "oracle.json").exists()  # checked before any write


@pytest.mark.slow
def test_a_worker_without_a_chief_says_what_it_waits_for_and_gives_up(tmp_path):
    """It waited (60 minutes, keras-tuner's limit) without a word."""
    grid, address = grid_file(tmp_path), f"127.0.0.1:{free_port()}"
    started = time.time()
    result = subprocess.run(command("--grid", str(grid), "--out", str(tmp_path / "out"),
                                    "--worker", "0", "--oracle", address,
                                    "--chief-timeout", "2"),
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    took = time.time() - started
    lines = [line for line in result.stderr.splitlines() if address in line]
    assert lines == [
        f"worker 0: waiting for the chief at {address} (start it with --chief and the same "
        "--oracle); giving up after 2 s (--chief-timeout)",
        f"error: worker 0: no answer from the chief at {address} in 2 s; start it (--chief, "
        "with the same --oracle), check --oracle, or raise --chief-timeout; finished trials "
        "are saved"], result.stderr[-2000:]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert took < 60


# --------------------------------------------------------------------------- #35 item 3
@pytest.mark.slow
def test_offline_without_data_a_jobs_search_prints_one_error(tmp_path):
    """`python -m mnist_zoo.search --grid full` as a newcomer runs it, offline, with no data
    (no --data-dir, no MNIST_ZOO_DATA_DIR, no Keras cache): the error was printed once per
    worker, then a third one about worker 1."""
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        pytest.skip("this machine reaches the network: Keras would download MNIST")
    except OSError:
        pass
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("MNIST_ZOO_DATA_DIR", "KERAS_HOME")}
    # As a newcomer types it: --jobs auto, one process per core (two on CI's 2 cores).
    result = subprocess.run([sys.executable, "-m", "mnist_zoo.search", "--grid", "full"],
                            capture_output=True, text=True, timeout=180, cwd=tmp_path,
                            env={**env, "HOME": str(home)})
    errors = error_lines(result.stdout + result.stderr)
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith("error: no mnist data found") and "--data-dir" in errors[0]
    assert not list((tmp_path / "results" / "tuner" / "full").glob("trial_*"))


def test_stale_jobs_folders_are_told_by_their_owner(tmp_path):
    """Only folders whose owning process is gone are removed: a running search's stays."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mine = tmp_path / f"mnist_zoo_stop_{os.getpid()}_abc"
    stale = tmp_path / f"mnist_zoo_stop_{gone.pid}_def"
    other = tmp_path / "mnist_zoo_stop_x"  # not ours to judge
    for folder in (mine, stale, other):
        folder.mkdir()
    assert processes.remove_stale_jobs_folders(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])
