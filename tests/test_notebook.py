"""docs/lab_report.ipynb runs top to bottom on real digits (issue #35): every cell, as a
newcomer runs it, with the data folder given the way the notebook says."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "lab_report.ipynb"


@pytest.mark.slow
def test_lab_report_notebook_runs_and_reports(tmp_path, monkeypatch, mnist_8k2k):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MNIST_ZOO_DATA_DIR", str(mnist_8k2k))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "commit it without outputs"
    # A cell that raises makes execute() raise CellExecutionError: the test fails there.
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      for output in cell.get("outputs", []))
    assert "8 trials (8 completed)" in printed
    assert "test accuracy" in printed and "the model reads" in printed
    out = tmp_path / "lab_report_results"
    assert (out / "plots" / "report.html").is_file()
    assert len(list((out / "models").iterdir())) == 1
