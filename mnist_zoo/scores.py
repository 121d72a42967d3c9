"""What a model scores on a split: accuracy, loss, per-class precision/recall/F1 and the
confusion matrix. train() records them in metrics.json; evaluate writes its report from them.
"""

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
    """Loss and the scikit-learn report, from one pass of predictions over the images."""
    probabilities = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    return {"loss": crossentropy(y, probabilities),
            **score_predictions(y, probabilities, class_names)}


def crossentropy(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean loss as Keras computes it (it clips probabilities, so a 0 gives no infinity)."""
    import keras

    losses = keras.losses.sparse_categorical_crossentropy(y, probabilities.astype(np.float32))
    return float(np.mean(keras.ops.convert_to_numpy(losses)))
