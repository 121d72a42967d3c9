"""File rules that train, the search and plot share: a path named by a record or an
option stays inside its folder, and a file is replaced atomically."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def inside(folder: Path, relative) -> Path | None:
    """folder/relative resolved, if it stays inside folder (or is folder itself); None for
    anything that leads elsewhere ("../x", "/tmp/x") or is not a non-empty string. A
    record's path or a --name may not point outside the folder it belongs to."""
    if not relative or not isinstance(relative, str):
        return None
    path = (Path(folder) / relative).resolve()
    return path if path.is_relative_to(Path(folder).resolve()) else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it:
    a killed process or a concurrent worker must not leave a torn result."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def print_line(line: str) -> None:
    """Print one line on stdout as a single write(2) of the whole line and its newline.

    Under --jobs every worker writes progress lines into the same pipe or terminal.
    print() hands the text and the newline to Python's buffer separately, and a buffer
    that another print left part-full or that fills mid-line reaches the pipe in pieces:
    then another process' line can land inside this one. One write of at most PIPE_BUF
    (4,096) bytes is atomic on a pipe, so the line arrives whole."""
    stream = sys.stdout
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO: no fd
        print(line, flush=True)
        return
    stream.flush()  # whatever print() left in the buffer goes first, in order
    data = (line + "\n").encode(stream.encoding or "utf-8", errors="replace")
    while data:
        data = data[os.write(fd, data):]
