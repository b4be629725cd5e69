"""Who gets how many samples, and which requests go to the teacher."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .config import ActiveKDConfig
from .metrics import EvalReport
from .prompts import build_messages
from .teachers.base import TeacherRequest, samples_schema


def stable_seed(*parts: object) -> int:
    """A 31-bit seed derived from ``parts`` (stable across processes and Python hash seeds)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _largest_remainder(quotas: np.ndarray, total: int, seed: int) -> np.ndarray:
    counts = np.floor(quotas).astype(np.int64)
    left = int(total - counts.sum())
    if left > 0:
        remainders = quotas - counts
        tiebreak = np.random.default_rng(seed).random(len(quotas)) * 1e-9
        order = np.argsort(-(remainders + tiebreak), kind="stable")
        counts[order[:left]] += 1
    return counts


def allocate(report: EvalReport, config: ActiveKDConfig, round_index: int = 0) -> np.ndarray:
    """Split ``config.samples_per_round`` over classes.

    ``"uniform"``: evenly (remainders to random classes, seeded). ``"guided"``: a share ``allocation_floor`` of the
    budget is split evenly, the rest in proportion to ``(1 - F1) ** allocation_power``, so that weak classes get more
    and every class keeps at least ``floor(allocation_floor * budget / num_classes)``. Classes without validation
    examples are weighted like the average class. When every class is perfect, the split is uniform.

    Returns:
        `np.ndarray` of ints, one per class, summing to ``samples_per_round``.
    """
    num_classes = len(report.label_names)
    budget = config.samples_per_round
    seed = stable_seed(config.seed, "allocate", round_index)
    even = np.full(num_classes, budget / num_classes)
    if config.allocation == "uniform":
        return _largest_remainder(even, budget, seed)
    weakness = (1.0 - np.clip(report.f1.astype(np.float64), 0.0, 1.0)) ** config.allocation_power
    has_support = report.support > 0
    if has_support.any() and not has_support.all():
        weakness[~has_support] = weakness[has_support].mean()
    if weakness.sum() <= 0:
        return _largest_remainder(even, budget, seed)
    floor = config.allocation_floor
    quotas = floor * even + (1.0 - floor) * budget * weakness / weakness.sum()
    return _largest_remainder(quotas, budget, seed)


def plan_requests(
    report: EvalReport,
    config: ActiveKDConfig,
    round_index: int,
    texts: Sequence[str] | None = None,
    earlier: dict[str, list[str]] | None = None,
) -> list[TeacherRequest]:
    """Turn a validation report into targeted teacher requests for one round.

    Each class with a non-zero share gets ``ceil(share / samples_per_request)`` requests. With
    ``confusion_requests``, a class's first request targets its most frequent confusion (the pair's hard negatives
    go into the prompt); the others ask for more examples of the weak class.
    """
    counts = allocate(report, config, round_index)
    names = report.label_names
    top_confusion: dict[int, tuple[int, int]] = {}
    for true, predicted, count in report.confusions():
        top_confusion.setdefault(true, (predicted, count))
    requests: list[TeacherRequest] = []
    for c in np.argsort(-counts, kind="stable"):
        c = int(c)
        remaining = int(counts[c])
        slot = 0
        while remaining > 0:
            n = min(remaining, config.samples_per_request)
            confused = None
            f1 = float(report.f1[c])
            reason = f"weak class: F1={f1:.2f}" if config.allocation == "guided" else f"uniform share (F1={f1:.2f})"
            if slot == 0 and config.confusion_requests and c in top_confusion:
                confused, count = top_confusion[c]
                reason = f"confused with '{names[confused]}' ({count} errors), F1={f1:.2f}"
            messages = build_messages(
                task_description=config.task_description,
                label_names=names,
                label_descriptions=config.label_descriptions,
                report=report,
                texts=texts,
                target=c,
                num_samples=n,
                confused_with=confused,
                num_correct=config.num_correct_examples,
                num_misclassified=config.num_misclassified_examples,
                num_hard_negatives=config.num_hard_negatives,
                report_classes=config.report_classes,
                earlier_samples=(earlier or {}).get(names[c], [])[-5:],
            )
            requests.append(
                TeacherRequest(
                    key=f"r{round_index:04d}/{names[c]}/{slot}",
                    label=names[c],
                    num_samples=n,
                    messages=messages,
                    json_schema=samples_schema([names[c]], n, config.min_chars, config.max_chars),
                    reason=reason,
                    confused_with=names[confused] if confused is not None else None,
                    seed=stable_seed(config.seed, round_index, names[c], slot),
                    max_new_tokens=config.max_new_tokens,
                    temperature=config.temperature,
                )
            )
            remaining -= n
            slot += 1
    return requests
