"""Hardness-aware acceptance: the teacher writes more candidates than a class needs, the student keeps the hard ones.

With ``ActiveKDConfig(candidate_factor=k)`` (``k > 1``), each class's share of ``samples_per_round`` is what the
teacher is asked for (the cost stays ``samples_per_round``), and only about ``share / k`` of them are kept: after the
quality gate (and verification), the student scores every candidate (one batched forward pass, in shards when there
are several processes) and, for each class, keeps the candidates it gives the lowest probability of their label (the
ones it gets wrong or is least sure of: EvoKD's "learn from the student's failures"), with a share
``1 - hard_share`` drawn at random from the rest (EvoKD mixes easy and hard samples). The others are dropped as
``easy_for_student``. Annotated rows (``source="both"``) are kept as they are: they were already chosen by the
student.

Every process makes the same choice from the same broadcast rows, the same gathered scores and the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

EASY_FOR_STUDENT = "easy_for_student"


def keep_counts(requested_by_class: Mapping[str, int], candidate_factor: float) -> dict[str, int]:
    """How many rows each class keeps: ``ceil(requested / candidate_factor)`` (at least one for a class that was
    asked for anything)."""
    return {
        label: max(1, math.ceil(int(n) / candidate_factor)) for label, n in requested_by_class.items() if int(n) > 0
    }


def choose_hard(
    rows: Sequence[dict[str, Any]],
    probabilities: np.ndarray,
    label_names: Sequence[str],
    keep: Mapping[str, int],
    hard_share: float,
    seed: int,
) -> tuple[list[int], np.ndarray]:
    """Positions of the rows to keep (in the order of ``rows``) and each row's probability of its own label.

    Per class: the ``round(hard_share * keep)`` rows with the lowest probability of their label, then the rest of the
    class's quota drawn at random from its other rows. A class with no more rows than its quota keeps them all; rows
    whose label is not in ``keep`` are kept.
    """
    index = {name: i for i, name in enumerate(label_names)}
    columns = [index[row["label"]] for row in rows]
    p_true = np.asarray(probabilities, dtype=np.float64)[np.arange(len(rows)), columns]
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    kept: list[int] = []
    for i, row in enumerate(rows):
        if row["label"] not in keep:
            kept.append(i)
        else:
            by_class.setdefault(row["label"], []).append(i)
    for label in sorted(by_class):
        positions = by_class[label]
        quota = keep[label]
        if len(positions) <= quota:
            kept.extend(positions)
            continue
        order = sorted(positions, key=lambda i: (p_true[i], i))
        n_hard = min(quota, int(round(hard_share * quota)))
        chosen = order[:n_hard]
        rest = order[n_hard:]
        if quota > n_hard:
            chosen += [rest[j] for j in rng.choice(len(rest), size=quota - n_hard, replace=False)]
        kept.extend(chosen)
    return sorted(kept), p_true


def selection_stats(rows: Sequence[dict[str, Any]], kept: Sequence[int], p_true: np.ndarray) -> dict[str, Any]:
    """The round record's view of a selection: candidates scored and the student's mean probability of the label on
    the kept and the dropped candidates (how much harder the kept ones are; the drops are counted in ``dropped``)."""
    kept_set = set(kept)
    dropped = [i for i in range(len(rows)) if i not in kept_set]

    def mean(positions: Sequence[int]) -> float | None:
        return round(float(p_true[list(positions)].mean()), 4) if len(positions) else None

    return {
        "candidates": len(rows),
        "student_p_true_kept": mean(kept),
        "student_p_true_dropped": mean(dropped),
    }
