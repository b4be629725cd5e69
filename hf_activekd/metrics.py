"""Per-class validation results from the predictions the Trainer already gathered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from transformers.utils import logging

logger = logging.get_logger(__name__)


@dataclass
class EvalReport:
    """The student's validation results, per class.

    Args:
        label_names (`list[str]`): Class names by id.
        labels (`np.ndarray`): True class ids, one per validation example (in dataset order).
        predictions (`np.ndarray`): Predicted class ids.
        confidences (`np.ndarray`): Probability the student gave to its prediction (NaN when the report was built
            from class ids, without logits: see :attr:`has_confidences`).
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
    def has_confidences(self) -> bool:
        """Whether the report knows the student's confidences (it was built from logits, not from class ids)."""
        return bool(len(self.confidences)) and not np.isnan(self.confidences).all()

    def _ranked(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` most confident first, or in dataset order without confidences."""
        if not self.has_confidences:
            return idx
        return idx[np.argsort(-self.confidences[idx], kind="stable")]

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
        """Indices of misclassified examples with the highest confidence (in dataset order when the report has no
        confidences), optionally restricted to a true or predicted class."""
        wrong = self.labels != self.predictions
        if true is not None:
            wrong &= self.labels == true
        if predicted is not None:
            wrong &= self.predictions == predicted
        return [int(i) for i in self._ranked(np.flatnonzero(wrong))[:limit]]

    def correct(self, label: int, limit: int) -> list[int]:
        """Indices of correctly classified examples of ``label``, most confident first (or in dataset order)."""
        return [
            int(i) for i in self._ranked(np.flatnonzero((self.labels == label) & (self.predictions == label)))[:limit]
        ]


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy array from a NumPy array, a list, or a torch tensor on any device and of any dtype (bf16 and fp16
    become float32, which NumPy can hold)."""
    if hasattr(value, "detach"):
        value = value.detach()
        if value.is_floating_point():
            value = value.float()
        return value.cpu().numpy()
    return np.asarray(value)


def _logits_of(predictions: Any) -> np.ndarray:
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return to_numpy(predictions)


def is_class_ids(predictions: Any) -> bool:
    """Whether ``predictions`` (as handed to ``compute_metrics``) are class ids (``[n]``), e.g. from
    ``preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1)``, rather than logits."""
    return _logits_of(predictions).ndim == 1


def build_report(logits: Any, labels: Any, label_names: Sequence[str]) -> EvalReport:
    """Compute an :class:`EvalReport` from classification logits (``[n, num_labels]``) and true ids.

    Predicted class ids (``[n]``) are accepted too: the report then has no confidences (NaN), and hard negatives are
    ranked in dataset order.
    """
    logits = _logits_of(logits)
    labels = to_numpy(labels).reshape(-1).astype(np.int64)
    from_ids = logits.ndim == 1
    if from_ids:
        if len(logits) and (
            not np.allclose(logits, np.round(logits)) or logits.min() < 0 or logits.max() >= len(label_names)
        ):
            raise ValueError(
                f"ActiveKD got predictions of shape {logits.shape}, read as class ids, but they are not class ids "
                f"0..{len(label_names) - 1}. Pass logits of shape [n, num_labels] (or argmax class ids) to "
                "compute_metrics."
            )
        logits = logits.astype(np.int64)
    elif logits.ndim != 2:
        raise ValueError(
            f"ActiveKD needs sequence-classification logits of shape [n, num_labels] (or class ids of shape [n]), "
            f"got shape {logits.shape}."
        )
    elif logits.shape[1] != len(label_names):
        raise ValueError(f"Logits have {logits.shape[1]} classes but {len(label_names)} label names are known.")
    keep = labels >= 0  # -100 / padding labels
    logits, labels = logits[keep], labels[keep]
    if from_ids:
        predictions, confidences = logits, np.full(len(logits), np.nan)
    else:
        probs = _softmax(logits.astype(np.float64)) if len(logits) else logits.astype(np.float64)
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
    macro-F1). Handles ``batch_eval_metrics=True`` by accumulating batches (torch tensors on any device and of any
    dtype) until ``compute_result=True``. Non-scalar results (the report) never go into the returned metrics; a user
    function that returns `None` counts as returning ``{}``. Predictions that are class ids (from a
    ``preprocess_logits_for_metrics`` that takes the argmax) give a report without confidences (said once).
    """

    def __init__(self, user_fn: Callable | None, label_names: Sequence[str]):
        self.user_fn = user_fn
        self.label_names = list(label_names)
        self.last_report: EvalReport | None = None
        self._batches: list[tuple[np.ndarray, np.ndarray]] = []
        self._said_ids = False

    def _report(self, logits: Any, labels: Any) -> EvalReport:
        if not self._said_ids and is_class_ids(logits):
            self._said_ids = True
            logger.warning(
                "compute_metrics receives class ids, not logits (preprocess_logits_for_metrics takes the argmax?): "
                "the ActiveKD report has no confidences, and prompts show misclassified examples in dataset order "
                "instead of the most confident errors first. Return the logits from preprocess_logits_for_metrics to "
                "rank them."
            )
        return build_report(logits, labels, self.label_names)

    def __call__(self, eval_pred, compute_result: bool | None = None):
        if compute_result is None:  # whole evaluation in one call
            self.last_report = self._report(eval_pred.predictions, eval_pred.label_ids)
            return self._user(eval_pred, None)
        logits = _logits_of(eval_pred.predictions)
        labels = to_numpy(eval_pred.label_ids)
        self._batches.append((logits, labels))
        result = self._user(eval_pred, compute_result)
        if compute_result:
            all_logits = np.concatenate([b[0] for b in self._batches])
            all_labels = np.concatenate([b[1].reshape(-1) for b in self._batches])
            self._batches = []
            self.last_report = self._report(all_logits, all_labels)
            if self.user_fn is None:
                return self._default_metrics(self.last_report)
        return result

    def _user(self, eval_pred, compute_result):
        if self.user_fn is None:
            if compute_result is None:
                return self._default_metrics(self.last_report)
            return {}
        if compute_result is None:
            result = self.user_fn(eval_pred)
        else:
            result = self.user_fn(eval_pred, compute_result=compute_result)
        return {} if result is None else result

    @staticmethod
    def _default_metrics(report: EvalReport | None) -> dict[str, float]:
        if report is None:
            return {}
        return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
