"""Progress lines from several processes on one pipe arrive whole (issue #29 item 0).

With PYTHONUNBUFFERED=1 (set in many containers and CI images) print() makes two write(2)
calls, the text and then its newline, and another worker's line could land between them:
`--jobs 2`'s smoke search once printed "[2/4] ..." in the middle of another line."""

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


def test_print_line_goes_through_a_replaced_stdout(capsys):
    from mnist_zoo.files import print_line

    print("before")  # what print() left in the buffer must come first
    print_line("[1/4] one line")
    assert capsys.readouterr().out == "before\n[1/4] one line\n"
