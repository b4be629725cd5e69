"""Latency per sample: the teacher's, from the round records and answers, and the student's, measured."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..utils import forward_params


def teacher_latency(rounds: Sequence[Mapping[str, Any]], answers: Mapping[str, Mapping[str, Any]] | None = None):
    """The teacher's measured latency per accepted sample.

    The latency of a round is, by preference, its record's ``latency_s``, else the sum of the ``latency_s`` of its
    answers (request keys are the keys of ``record["reasons"]``, answers come from ``answers.jsonl``), else its
    ``wall_time_s``.

    Returns:
        `dict` with ``total_s``, ``accepted``, ``ms_per_sample`` (None without accepted samples) and ``source``.
    """
    answers = answers or {}
    total, accepted, sources = 0.0, 0, set()
    for record in rounds:
        if not record.get("generated"):
            continue
        accepted += int(record.get("accepted", 0))
        if record.get("latency_s") is not None:
            total += float(record["latency_s"])
            sources.add("round records")
            continue
        latencies = [
            float(answers[key].get("latency_s", 0.0)) for key in (record.get("reasons") or {}) if key in answers
        ]
        if latencies:
            total += sum(latencies)
            sources.add("request latencies")
        else:
            total += float(record.get("wall_time_s", 0.0))
            sources.add("round wall time")
    return {
        "total_s": total,
        "accepted": accepted,
        "ms_per_sample": 1000.0 * total / accepted if accepted else None,
        "source": ", ".join(sorted(sources)) or "none",
    }


def measure_student_latency(
    model, dataset, collate_fn: Callable | None, batch_size: int = 32, max_samples: int = 512
) -> dict[str, Any] | None:
    """Measure the student's inference time per sample on ``dataset`` (batched, on the model's device, no grad).

    One batch warms up first and is not counted. Columns the model's ``forward`` does not take are removed, and so are
    labels. Returns ``{"ms_per_sample", "samples", "batch_size", "device"}``, or None when it cannot be measured.
    """
    import torch
    from torch.utils.data import DataLoader

    if dataset is None:
        return None
    columns = forward_params(model)
    if columns is not None and hasattr(dataset, "column_names"):
        drop = [c for c in dataset.column_names if c not in columns or c in ("labels", "label", "label_ids")]
        dataset = dataset.remove_columns(drop)
    if hasattr(dataset, "select") and len(dataset) > max_samples + batch_size:
        dataset = dataset.select(range(max_samples + batch_size))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    timed, samples = 0.0, 0
    try:
        with torch.inference_mode():
            for i, batch in enumerate(loader):
                batch = {
                    k: v.to(device)
                    for k, v in dict(batch).items()
                    if isinstance(v, torch.Tensor) and k not in ("labels", "label", "label_ids")
                }
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(**batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i > 0 or len(loader) == 1:
                    timed += time.perf_counter() - start
                    samples += len(next(iter(batch.values())))
    finally:
        model.train(was_training)
    if not samples:
        return None
    return {
        "ms_per_sample": 1000.0 * timed / samples,
        "samples": samples,
        "batch_size": batch_size,
        "device": str(device),
    }
