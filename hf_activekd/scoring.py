"""The student's class probabilities for unlabeled texts (annotation, see :mod:`hf_activekd.annotation`), computed
in shards when there are several processes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .distributed import MainProcessError, process_info

ScoreFn = Callable[[list[str]], Any]


class StudentScorer:
    """The student's class probabilities for texts: batched, without gradients, on the model's device; the model's
    train/eval mode is restored afterwards.

    Args:
        model (`torch.nn.Module`): The student (a sequence classifier whose output has ``logits``).
        preprocess (`Callable`): Turns ``{text_column: [...], label_column: [...]}`` into model inputs.
        collate_fn (`Callable`): Pads a list of features into a batch of tensors (e.g. `DataCollatorWithPadding`).
        text_column (`str`), label_column (`str`): Keys of the batch given to ``preprocess``.
        batch_size (`int`, defaults to `64`): Texts per forward pass.
        input_names (`set[str]`, *optional*): The model's input names (default: every column ``preprocess`` returns
            but labels and text).
    """

    def __init__(
        self,
        model,
        preprocess: Callable,
        collate_fn: Callable,
        text_column: str = "text",
        label_column: str = "label",
        batch_size: int = 64,
        input_names: set[str] | None = None,
    ):
        self.model = model
        self.preprocess = preprocess
        self.collate_fn = collate_fn
        self.text_column, self.label_column = text_column, label_column
        self.batch_size = max(1, int(batch_size))
        self.input_names = input_names

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self.model
        skip = {"labels", "label", "label_ids", self.label_column, self.text_column}
        was_training = model.training
        device = next(model.parameters()).device
        out = []
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(texts), self.batch_size):
                    chunk = list(texts[start : start + self.batch_size])
                    encoded = self.preprocess({self.text_column: chunk, self.label_column: [0] * len(chunk)})
                    names = self.input_names
                    keys = [k for k in encoded if k not in skip and (names is None or k in names)]
                    batch = self.collate_fn([{k: encoded[k][i] for k in keys} for i in range(len(chunk))])
                    batch = {k: v.to(device) for k, v in batch.items() if k in keys and hasattr(v, "to")}
                    output = model(**batch)
                    logits = output["logits"] if isinstance(output, dict) or hasattr(output, "keys") else output[0]
                    out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, 0))


def score_sharded(score_fn: ScoreFn, texts: Sequence[str]) -> np.ndarray:
    """``score_fn(texts)`` as an array, computed in shards under several processes (rank ``r`` scores
    ``texts[r::world_size]``, padded so that every rank runs the same number of batches, which a sharded model's
    forward pass needs) and gathered: every rank returns the same array. Call it on every process. A failure on one
    rank raises :class:`~hf_activekd.distributed.MainProcessError` on every rank (never a hang)."""
    rank, world = process_info()
    if world == 1:
        return np.asarray(score_fn(list(texts)), dtype=np.float64) if len(texts) else np.zeros((0, 0))
    import torch.distributed as dist

    mine = list(range(rank, len(texts), world))
    per_rank = math.ceil(len(texts) / world)
    padded = mine + [mine[-1] if mine else 0] * (per_rank - len(mine))
    try:
        scores = np.asarray(score_fn([texts[i] for i in padded]), dtype=np.float64) if padded else None
        local: tuple = ("ok", None if scores is None else scores[: len(mine)])
    except Exception as exc:  # noqa: BLE001 - every rank must hear of it
        local = ("error", f"rank {rank}: {type(exc).__name__}: {exc}")
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, local)
    errors = [value for status, value in gathered if status == "error"]
    if errors:
        raise MainProcessError("; ".join(errors))
    width = max((v.shape[1] for _, v in gathered if v is not None and len(v)), default=0)
    probs = np.zeros((len(texts), width))
    for r, (_, value) in enumerate(gathered):
        if value is not None and len(value):
            probs[r::world] = value
    return probs
