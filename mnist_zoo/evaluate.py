"""Scoring a trained model: accuracy, loss, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix


def score_predictions(y_true: np.ndarray, probabilities: np.ndarray,
                      class_names: list[str]) -> dict:
    """Per-class report and confusion matrix from predicted class probabilities."""
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(class_names)))
    report = classification_report(y_true, y_pred, labels=labels, target_names=class_names,
                                   output_dict=True, zero_division=0)
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "per_class": {name: report[name] for name in class_names},
        "macro_avg": report["macro avg"],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate_model(model, x: np.ndarray, y: np.ndarray, class_names: list[str],
                   batch_size: int = 1024) -> dict:
    """Loss from Keras' own evaluate, plus the scikit-learn report on the same images."""
    probabilities = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    loss = float(model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)["loss"])
    return {"loss": loss, **score_predictions(y, probabilities, class_names)}
