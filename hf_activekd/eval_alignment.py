"""Which evaluation a Trainer's ``on_evaluate`` is about, and validation texts in the order of its predictions.

- With a dict of eval datasets the Trainer evaluates each key ``K`` in turn and calls ``on_evaluate`` with metrics
  named ``eval_K_<metric>``. :func:`evaluated_key` tells ``K`` exactly, also when one key is a prefix of another
  (``val`` and ``val_ood``).
- Predictions arrive in the order of the eval sampler, which is not always dataset order: with
  ``train_sampling_strategy="group_by_length"`` transformers 5 length-groups the eval sampler too.
  :class:`EvalOrderTracker` wraps ``trainer._get_eval_sampler`` to record the indices the eval dataloader consumed;
  :func:`align_texts` puts the texts in that order and checks it against the true labels of the predictions, and
  returns no texts rather than misaligned ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers.utils import logging

logger = logging.get_logger(__name__)


def evaluated_key(metrics: Mapping[str, Any] | None, keys: Sequence[str]) -> str | None:
    """The eval dataset key whose evaluation produced ``metrics`` (all named ``eval_<key>_...``, apart from
    ``epoch``): the longest key that prefixes every metric name, so that ``val_ood`` is not taken for ``val``.
    None when no key fits."""
    names = [k for k in (metrics or {}) if k != "epoch"]
    if not names:
        return None
    fitting = [key for key in keys if all(name.startswith(f"eval_{key}_") for name in names)]
    return max(fitting, key=len) if fitting else None


def _is_batch_sampler(sampler) -> bool:
    try:
        from transformers.trainer_pt_utils import BatchRebalanceSampler
    except ImportError:  # pragma: no cover - older transformers
        return False
    return isinstance(sampler, BatchRebalanceSampler)


class RecordingSampler:
    """A sampler that yields the indices of ``sampler`` and records them (``tracker.order``) as they are consumed."""

    def __init__(self, sampler, tracker: EvalOrderTracker):
        self.sampler = sampler
        self.tracker = tracker

    def __iter__(self):
        order: list[int] = []
        self.tracker.order = order
        for index in self.sampler:
            order.append(int(index))
            yield index

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str):  # set_epoch, generator, ... of the wrapped sampler
        if name in ("sampler", "tracker"):
            raise AttributeError(name)
        return getattr(self.sampler, name)


class EvalOrderTracker:
    """Records the order in which the eval dataloader visits the eval dataset (``order``: dataset indices, or None when
    the Trainer used no sampler of its own, i.e. dataset order). Install with :meth:`install`."""

    def __init__(self):
        self.order: list[int] | None = None
        self._saved: tuple[bool, Any] | None = None

    def install(self, trainer) -> None:
        original = getattr(trainer, "_get_eval_sampler", None)
        if original is None or getattr(original, "_activekd_tracker", None) is not None:
            return
        self._saved = ("_get_eval_sampler" in vars(trainer), original)

        def get_eval_sampler(eval_dataset):
            sampler = original(eval_dataset)
            # A batch sampler (BatchRebalanceSampler) is handed to the DataLoader as such: leave it alone.
            if sampler is None or _is_batch_sampler(sampler):
                return sampler
            return RecordingSampler(sampler, self)

        get_eval_sampler._activekd_tracker = self
        trainer._get_eval_sampler = get_eval_sampler

    def uninstall(self, trainer) -> None:
        """Give the trainer its own eval sampler back (a dataloader already built keeps recording, harmlessly)."""
        current = vars(trainer).get("_get_eval_sampler")
        if self._saved is None or getattr(current, "_activekd_tracker", None) is not self:
            return
        was_instance_attribute, original = self._saved
        if was_instance_attribute:
            trainer._get_eval_sampler = original
        else:
            del trainer._get_eval_sampler
        self._saved = None

    def take(self) -> list[int] | None:
        """The order of the last evaluation, forgotten once taken."""
        order, self.order = self.order, None
        return order


def align_texts(
    texts: Sequence[str],
    dataset_labels: Sequence[int] | None,
    prediction_labels: Sequence[int],
    order: Sequence[int] | None,
) -> tuple[list[str] | None, str | None]:
    """Texts in the order of the predictions, or None with the reason why they cannot be aligned.

    Candidates are the recorded sampler ``order``, then dataset order. A candidate is taken only when it has one index
    per prediction and, where the dataset's labels are known, the labels it gives are the predictions' true labels.
    """
    n = len(prediction_labels)
    truth = [int(v) for v in prediction_labels]
    candidates = []
    if order is not None:
        candidates.append(("the eval sampler's order", list(order)))
    candidates.append(("dataset order", list(range(len(texts)))))
    reasons = []
    for name, indices in candidates:
        if len(indices) != n or (indices and max(indices) >= len(texts)):
            reasons.append(f"{name} has {len(indices)} indices for {n} predictions")
            continue
        if dataset_labels is not None:
            if len(dataset_labels) != len(texts):
                reasons.append(f"{len(dataset_labels)} labels for {len(texts)} texts")
                continue
            if [int(dataset_labels[i]) for i in indices] != truth:
                reasons.append(f"the labels in {name} are not the labels of the predictions")
                continue
        return [texts[i] for i in indices], None
    return None, "; ".join(reasons)
