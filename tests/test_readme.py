"""The README as a newcomer meets it (issue #35): one screen to start, a Quickstart whose
commands exist with real options and run, details in docs/."""

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LINES = README.splitlines()
SETUP = ["pip install -e . && python -m mnist_zoo.search --grid full",
         "pip install -e '.[test]' && python -m pytest"]


def prose_blocks() -> list[list[str]]:
    """Runs of non-blank lines outside code fences and tables: the README's paragraphs."""
    blocks, block, fenced = [], [], False
    for line in LINES + [""]:
        if line.startswith("```"):
            fenced = not fenced
            line = ""
        # A list item starts a paragraph of its own.
        if fenced or not line.strip() or line.startswith("|") or re.match(r"(- |\d+\. )", line):
            if block:
                blocks.append(block)
            block = [line] if re.match(r"(- |\d+\. )", line) and not fenced else []
        else:
            block.append(line)
    return blocks


def code_blocks(section: str | None = None) -> list[str]:
    text = README if section is None else README.split(f"## {section}\n", 1)[1].split("\n## ")[0]
    return re.findall(r"```\w*\n(.*?)```", text, flags=re.S)


def quickstart_commands() -> list[list[str]]:
    """Each `python -m mnist_zoo.X ...` line of the Quickstart, without its comment."""
    commands = []
    for block in code_blocks("Quickstart"):
        for line in block.splitlines():
            if line.startswith("python -m mnist_zoo."):
                commands.append(shlex.split(line.split("#")[0]))
    return commands


def parser_of(module: str):
    """The argparse parser behind `python -m <module>`."""
    try:
        return importlib.import_module(f"{module}._command").build_parser()
    except ModuleNotFoundError:
        return importlib.import_module(module).build_parser()


def test_the_first_screen_has_the_two_set_up_commands_first():
    first = code_blocks()[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first] == SETUP
    assert README.index("```") < README.index("\n## ")  # before any section
    assert README.count("\n", 0, README.index(SETUP[1])) < 15


def test_shape_length_headings_paragraphs_and_lines():
    assert len(LINES) <= 150
    headings = [line[3:] for line in LINES if line.startswith("## ")]
    assert headings[0] == "Contents" and headings[1] == "Quickstart"
    contents = re.findall(r"^- \[(.+?)\]\(#(.+?)\)$",
                          README.split("## Contents\n")[1].split("\n## ")[0], flags=re.M)
    assert [title for title, _ in contents] == headings[1:]
    assert [anchor for _, anchor in contents] == [
        re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-") for title in headings[1:]]
    assert max(len(block) for block in prose_blocks()) <= 8
    fenced, long_lines = False, []
    for line in LINES:
        fenced ^= line.startswith("```")
        if not fenced and not line.startswith(("|", "```")) and len(line) > 100:
            long_lines.append(line)
    assert long_lines == []


def test_every_link_to_a_file_leads_to_one():
    targets = re.findall(r"\]\(((?!https?://|#)[^)#]+)", README)
    assert targets and [t for t in targets if not (ROOT / t).exists()] == []


def test_quickstart_commands_exist_and_their_options_are_real():
    commands = quickstart_commands()
    assert [command[2] for command in commands][:5] == [
        "mnist_zoo.search", "mnist_zoo.plot", "mnist_zoo.train", "mnist_zoo.evaluate",
        "mnist_zoo.predict"]
    for command in commands:
        parser_of(command[2]).parse_args(command[3:])  # an unknown option exits with 2


# Toy size for each command: the data folder, tiny subsets and epochs, in a temporary folder.
TOY = {"mnist_zoo.search": ["--jobs", "1", "--no-tensorboard"],
       "mnist_zoo.train": ["--subset", "1000", "--out", "runs"],
       "mnist_zoo.evaluate": ["--out", "evaluation"]}


@pytest.mark.slow
def test_quickstart_runs_at_toy_size(tmp_path, monkeypatch, mnist_8k2k):
    from PIL import Image, ImageDraw

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_ZOO_DATA_DIR", str(mnist_8k2k))
    paper = Image.new("L", (200, 200), 240)
    ImageDraw.Draw(paper).line([(100, 30), (100, 170)], fill=10, width=16)  # a 1
    paper.save("my_digit.png")
    for command in quickstart_commands():
        module = command[2]
        if module not in (*TOY, "mnist_zoo.plot", "mnist_zoo.predict"):
            continue  # a server or an optional extra: its own tests run it
        main = importlib.import_module(f"{module}._command" if module != "mnist_zoo.evaluate"
                                       and module != "mnist_zoo.predict" else module).main
        assert main(command[3:] + TOY.get(module, [])) == 0, command
    assert (tmp_path / "results/smoke/plots/report.html").is_file()
    assert len((tmp_path / "results/smoke/experiment_results.csv").read_text().splitlines()) == 5
    assert list((tmp_path / "runs").glob("*/metrics.json"))
    assert (tmp_path / "evaluation" / "confusion_matrix.png").is_file()
