"""The package's shape (issue #19): imports run one way, with no cycle; pretrained weights
are a leaf; the zoo knows nothing of the search or the reports; one error base, which the
commands turn (and only it) into a one-line `error:`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mnist_zoo
from mnist_zoo.cli import command
from mnist_zoo.errors import ZooError

PACKAGE = Path(mnist_zoo.__file__).resolve().parent
# The layers, bottom up: a module may import from its own layer and the ones below.
ZOO = ("mnist_zoo", "mnist_zoo.quiet", "mnist_zoo.errors", "mnist_zoo.cli", "mnist_zoo.files",
       "mnist_zoo.settings", "mnist_zoo.axes", "mnist_zoo.data", "mnist_zoo.scores",
       "mnist_zoo.models", "mnist_zoo.train")
SEARCH = ("mnist_zoo.search",)
REPORTS = ("mnist_zoo.plot", "mnist_zoo.evaluate", "mnist_zoo.predict", "mnist_zoo.export",
           "mnist_zoo.demo")


def module_names() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at the top or inside a function. An
    import of the package a module belongs to (plot's command reads the package's
    docstring) is left out: a package's __init__ is a facade over its own modules."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                              else base for alias in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    for number, layer in enumerate((ZOO, SEARCH, REPORTS)):
        if any(module == top or module.startswith(top + ".") for top in layer if top != "mnist_zoo"):
            return number
    return 0


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"mnist_zoo.search.tuner", "mnist_zoo.models.registry"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_run_down_the_layers():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items()
              for target in targets if layer_of(target) > layer_of(module)]
    assert upward == []


def test_pretrained_weights_are_a_leaf():
    graph = import_graph()
    assert graph["mnist_zoo.models.pretrained"] <= {"mnist_zoo.errors"}
    assert "mnist_zoo.models.pretrained" in graph["mnist_zoo.models.registry"]


def test_the_light_modules_load_no_tensorflow():
    """plot reads the search's table rules, tools read the weights' sidecars: neither waits
    for TensorFlow."""
    light = ["mnist_zoo.search", "mnist_zoo.search.table", "mnist_zoo.search.grid",
             "mnist_zoo.models.pretrained", "mnist_zoo.models.saved", "mnist_zoo.axes",
             "mnist_zoo.settings",
             "mnist_zoo.errors", "mnist_zoo.files", "mnist_zoo.cli"]
    code = (f"import importlib, sys\nfor name in {light!r}:\n    importlib.import_module(name)\n"
            "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_module_imports():
    import importlib

    names = sorted(name for name in module_names() if not name.endswith("__main__"))
    assert len(names) >= 40, names  # the walk found the package (running a __main__ is its command)
    for name in names:
        module = importlib.import_module(name)  # an ImportError or a cycle fails here
        assert module.__name__ == name and Path(module.__file__).is_relative_to(PACKAGE), name


def test_every_error_of_the_package_is_a_zoo_error():
    from mnist_zoo import errors

    kinds = [value for value in vars(errors).values()
             if isinstance(value, type) and issubclass(value, Exception)]
    assert len(kinds) >= 8 and all(issubclass(kind, ZooError) for kind in kinds)
    defined = [f"{path.relative_to(PACKAGE)}: {node.name}" for path in PACKAGE.rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
               and path.name != "errors.py"]
    assert defined == []  # one home for the error kinds


def test_the_command_runner_turns_a_zoo_error_and_only_it_into_one_line(capsys):
    @command
    def refuses(argv=None):
        raise ZooError("--epochs must be a whole number")

    @command
    def has_a_bug(argv=None):
        raise ValueError("a bug, not the user's mistake")

    assert refuses() == 2
    assert capsys.readouterr().err == "error: --epochs must be a whole number\n"
    with pytest.raises(ValueError, match="a bug"):
        has_a_bug()


def test_a_bad_setting_from_the_command_line_is_one_line(tmp_path, capsys, mnist_8k2k):
    """--augment is free text, checked by data.parse_augment: a SettingsError, exit 2
    (train's main no longer catches every ValueError, so this must be a ZooError)."""
    from mnist_zoo import train

    code = train.main(["--augment", "sideways", "--data-dir", str(mnist_8k2k), "--subset",
                       "100", "--epochs", "1", "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("error: unknown augmentation") and "Traceback" not in error
