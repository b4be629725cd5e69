"""Per-class validation results from the predictions the Trainer already gathered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


@dataclass
class EvalReport:
    """The student's validation results, per class.

    Args:
        label_names (`list[str]`): Class names by id.
        labels (`np.ndarray`): True class ids, one per validation example (in dataset order).
        predictions (`np.ndarray`): Predicted class ids.
        confidences (`np.ndarray`): Probability the student gave to its prediction.
        precision, recall, f1, support (`np.ndarray`): Per class.
        confusion (`np.ndarray`): ``confusion[i, j]`` = examples of class ``i`` predicted as ``j``.
    """

    label_names: list[str]
    labels: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float((self.labels == self.predictions).mean()) if len(self.labels) else 0.0

    @property
    def macro_f1(self) -> float:
        present = self.support > 0
        return float(self.f1[present].mean()) if present.any() else 0.0

    def per_class(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }
            for i, name in enumerate(self.label_names)
        }

    def confusions(self, min_count: int = 1) -> list[tuple[int, int, int]]:
        """Off-diagonal cells ``(true, predicted, count)``, most frequent first (ties by ids, deterministic)."""
        cells = [
            (i, j, int(self.confusion[i, j]))
            for i in range(len(self.label_names))
            for j in range(len(self.label_names))
            if i != j and self.confusion[i, j] >= min_count
        ]
        return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))

    def hard_negatives(self, limit: int, true: int | None = None, predicted: int | None = None) -> list[int]:
        """Indices of misclassified examples with the highest confidence, optionally restricted to a true or
        predicted class."""
        wrong = self.labels != self.predictions
        if true is not None:
            wrong &= self.labels == true
        if predicted is not None:
            wrong &= self.predictions == predicted
        idx = np.flatnonzero(wrong)
        order = idx[np.argsort(-self.confidences[idx], kind="stable")]
        return [int(i) for i in order[:limit]]

    def correct(self, label: int, limit: int) -> list[int]:
        """Indices of correctly classified examples of ``label``, most confident first."""
        idx = np.flatnonzero((self.labels == label) & (self.predictions == label))
        order = idx[np.argsort(-self.confidences[idx], kind="stable")]
        return [int(i) for i in order[:limit]]


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _logits_of(predictions: Any) -> np.ndarray:
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return np.asarray(predictions)


def build_report(logits: Any, labels: Any, label_names: Sequence[str]) -> EvalReport:
    """Compute an :class:`EvalReport` from classification logits (``[n, num_labels]``) and true ids."""
    logits = _logits_of(logits).astype(np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if logits.ndim != 2:
        raise ValueError(
            f"ActiveKD needs sequence-classification logits of shape [n, num_labels], got shape {logits.shape}."
        )
    if logits.shape[1] != len(label_names):
        raise ValueError(f"Logits have {logits.shape[1]} classes but {len(label_names)} label names are known.")
    keep = labels >= 0  # -100 / padding labels
    logits, labels = logits[keep], labels[keep]
    probs = _softmax(logits) if len(logits) else logits
    predictions = probs.argmax(axis=-1) if len(probs) else np.zeros(0, dtype=np.int64)
    confidences = probs.max(axis=-1) if len(probs) else np.zeros(0)
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=ids, average=None, zero_division=0
    )
    confusion = confusion_matrix(labels, predictions, labels=ids) if len(labels) else np.zeros((len(ids),) * 2, int)
    return EvalReport(
        label_names=list(label_names),
        labels=labels,
        predictions=predictions.astype(np.int64),
        confidences=confidences,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        confusion=confusion,
    )


class MetricsRecorder:
    """Wraps a Trainer's ``compute_metrics``: records the per-class report, returns the user's metrics unchanged.

    Installed in place of ``trainer.compute_metrics`` (or where the user had none, then returning accuracy and
    macro-F1). Handles ``batch_eval_metrics=True`` by accumulating batches until ``compute_result=True``.
    Non-scalar results (the report) never go into the returned metrics.
    """

    def __init__(self, user_fn: Callable | None, label_names: Sequence[str]):
        self.user_fn = user_fn
        self.label_names = list(label_names)
        self.last_report: EvalReport | None = None
        self._batches: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, eval_pred, compute_result: bool | None = None):
        if compute_result is None:  # whole evaluation in one call
            self.last_report = build_report(eval_pred.predictions, eval_pred.label_ids, self.label_names)
            return self._user(eval_pred, None)
        logits = _logits_of(eval_pred.predictions)
        logits = logits.detach().float().cpu().numpy() if hasattr(logits, "detach") else np.asarray(logits)
        labels = eval_pred.label_ids
        labels = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
        self._batches.append((logits, labels))
        result = self._user(eval_pred, compute_result)
        if compute_result:
            all_logits = np.concatenate([b[0] for b in self._batches])
            all_labels = np.concatenate([b[1].reshape(-1) for b in self._batches])
            self._batches = []
            self.last_report = build_report(all_logits, all_labels, self.label_names)
            if self.user_fn is None:
                return self._default_metrics(self.last_report)
        return result

    def _user(self, eval_pred, compute_result):
        if self.user_fn is None:
            if compute_result is None:
                return self._default_metrics(self.last_report)
            return {}
        if compute_result is None:
            return self.user_fn(eval_pred)
        return self.user_fn(eval_pred, compute_result=compute_result)

    @staticmethod
    def _default_metrics(report: EvalReport | None) -> dict[str, float]:
        if report is None:
            return {}
        return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
