"""mnist_zoo.evaluate on a LeNet-5 trained on real MNIST digits, saved both ways."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mnist_zoo import evaluate as evaluate_lib
from mnist_zoo.errors import ModelError
from mnist_zoo.models.saved import load_model, model_name, resolve_model_path

SAVED_FORMS = {"saved_model": "saved_model", "keras": "model.keras"}
FILES = ("metrics.json", "classification_report.csv", "confusion_matrix.png",
         "misclassified.png", "correct.png", "samples.png")


@pytest.fixture(scope="module")
def zoo_keras_scores(zoo_lenet_run, zoo_digits):
    """The model's own Keras evaluate and predict on the test digits."""
    model = zoo_lenet_run.model
    scores = model.evaluate(zoo_digits.x_test, zoo_digits.y_test, verbose=0, return_dict=True)
    probabilities = model.predict(zoo_digits.x_test, verbose=0)
    return scores, probabilities


@pytest.mark.parametrize("form", SAVED_FORMS)
def test_evaluate_matches_keras(form, zoo_lenet_run, zoo_digits, zoo_keras_scores, zoo_data_dir,
                                tmp_path, zoo_check_image):
    keras_scores, keras_probabilities = zoo_keras_scores
    model_path = zoo_lenet_run.run_dir / SAVED_FORMS[form]

    result = evaluate_lib.evaluate(model_path, "mnist", zoo_data_dir, tmp_path, verbose=False)

    assert result["model_kind"] == form
    assert result["images"] == len(zoo_digits.x_test) == 2000
    assert result["accuracy"] >= 0.95
    assert abs(result["accuracy"] - keras_scores["accuracy"]) < 1e-6
    assert result["loss"] == pytest.approx(keras_scores["loss"], rel=1e-4)
    # The mistakes, counted from Keras' own predictions (#30: they were derived from the
    # accuracy, as evaluate derives them).
    keras_mistakes = int((keras_probabilities.argmax(axis=1) != zoo_digits.y_test).sum())
    assert result["errors"] == keras_mistakes and 0 < keras_mistakes <= 100
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    for name in FILES[2:]:
        zoo_check_image(tmp_path / name)
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == result["accuracy"]

    # The gallery holds the most confident mistakes, with the labels of the data set.
    gallery = result["galleries"]["misclassified"]
    indices = np.array(gallery["indices"])
    assert len(indices) == min(25, result["errors"])
    assert gallery["true"] == zoo_digits.y_test[indices].tolist()
    assert gallery["predicted"] == keras_probabilities[indices].argmax(axis=1).tolist()
    assert all(p != t for p, t in zip(gallery["predicted"], gallery["true"]))
    assert gallery["confidence"] == sorted(gallery["confidence"], reverse=True)
    correct = result["galleries"]["correct"]
    assert correct["predicted"] == correct["true"] == zoo_digits.y_test[correct["indices"]].tolist()


def test_classification_report_csv(zoo_lenet_run, zoo_data_dir, tmp_path):
    result = evaluate_lib.evaluate(zoo_lenet_run.run_dir / "model.keras", data_dir=zoo_data_dir,
                                   out=tmp_path, gallery_size=4, verbose=False)

    table = pd.read_csv(tmp_path / "classification_report.csv", index_col="class")
    assert list(table.index[:10]) == [str(d) for d in range(10)]
    assert {"macro avg", "weighted avg", "accuracy"} <= set(table.index)
    assert table.loc["accuracy", "f1-score"] == pytest.approx(result["accuracy"], abs=1e-4)
    assert table["support"].iloc[:10].sum() == 2000
    assert len(result["galleries"]["samples"]["indices"]) == 4


def test_cli(zoo_lenet_run, zoo_data_dir, tmp_path, capsys):
    out = tmp_path / "evaluation"
    code = evaluate_lib.main([str(zoo_lenet_run.run_dir), "--data-dir", str(zoo_data_dir),
                              "--out", str(out), "--gallery-size", "10"])

    assert code == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "test accuracy" in printed
    assert json.loads((out / "metrics.json").read_text())["model_kind"] == "saved_model"


def test_cli_errors(tmp_path, capsys):
    assert evaluate_lib.main([str(tmp_path / "missing.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("not a zip archive")
    assert evaluate_lib.main([str(not_a_model)]) == 2
    assert capsys.readouterr().err.startswith("error: cannot load model")


def test_model_paths(zoo_lenet_run, tmp_path):
    run = zoo_lenet_run.run_dir
    assert resolve_model_path(run) == (run / "saved_model", "saved_model")
    assert resolve_model_path(run / "model.keras") == (run / "model.keras", "keras")
    assert model_name(run / "model.keras") == model_name(run / "saved_model") == "lenet5"
    with pytest.raises(ModelError, match="not a model"):
        load_model(tmp_path)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_lib.main(["--help"])
    assert exit_info.value.code == 0
    assert "--gallery-size" in capsys.readouterr().out
