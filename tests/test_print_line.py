"""Progress lines from several processes on one pipe arrive whole (issue #29 item 0).

With PYTHONUNBUFFERED=1 (set in many containers and CI images) print() makes two write(2)
calls, the text and then its newline, and another worker's line could land between them:
`--jobs 2`'s smoke search once printed "[2/4] ..." in the middle of another line."""

import io
import os
import re
import subprocess
import sys

WRITER = """
import sys
from mnist_zoo.files import print_line
name = sys.argv[1]
for i in range(3000):
    print_line(f"[{name}] line {i:04d} " + "x" * 60)
"""


def test_lines_from_concurrent_processes_never_interleave():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    read, write = os.pipe()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name], stdout=write, env=env)
               for name in ("a", "b", "c")]
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        lines = pipe.read().decode().splitlines()
    assert all(w.wait(timeout=60) == 0 for w in writers)
    assert len(lines) == 9000
    broken = [line for line in lines if not re.fullmatch(r"\[[abc]\] line \d{4} x{60}", line)]
    assert broken == []
    for name in "abc":  # each process' lines in its own order
        own = [line for line in lines if line.startswith(f"[{name}]")]
        assert [int(line.split()[2]) for line in own] == list(range(3000))


def test_print_line_writes_after_what_print_left_in_the_buffer(monkeypatch):
    """On a real file descriptor: text that print() left in Python's buffer (a block-buffered
    stdout, as under a pipe) reaches the pipe before the line written straight to the fd."""
    from mnist_zoo.files import print_line

    read, write = os.pipe()
    stream = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write, "w")), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    print("before")  # stays in the buffer: not line-buffered
    print_line("[1/4] one line")
    stream.close()
    with os.fdopen(read) as pipe:
        assert pipe.read() == "before\n[1/4] one line\n"


def test_print_line_without_a_file_descriptor_goes_through_the_replaced_stdout(capsys):
    from mnist_zoo.files import print_line

    print_line("[1/4] one line")  # pytest's capture has no fileno: the print() path
    assert capsys.readouterr().out == "[1/4] one line\n"
