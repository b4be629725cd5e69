"""Which unlabeled texts the teacher labels in a round (step 3 of :mod:`hf_activekd.annotation`): ``"guided"`` by the
student's weak classes and their confusions, ``"margin"`` by the smallest margins, or ``"random"``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import EvalReport
from .near_duplicates import MinHashIndex


@dataclass
class Pick:
    """A text picked for labelling: its position among the scored texts, the class it was picked for (-1: none in
    particular) and why."""

    index: int
    target: int
    reason: str


def select_texts(
    probs: np.ndarray,
    budget_by_class: np.ndarray,
    strategy: str,
    report: EvalReport,
    texts: Sequence[str],
    seed: int = 0,
    near_threshold: float = 0.9,
) -> list[Pick]:
    """Pick ``budget_by_class.sum()`` of the scored ``texts`` (``probs``: one row of class probabilities per text) as
    ``strategy`` says (see the module docstring). Never two near-duplicates (guided and margin)."""
    total = int(budget_by_class.sum())
    n = len(texts)
    if n == 0 or total <= 0:
        return []
    names = report.label_names
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(n)[:total]
        return [Pick(int(i), -1, "annotate: random pick") for i in order]
    top = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    top1, top2 = top[:, 0], top[:, 1] if probs.shape[1] > 1 else top[:, 0]
    margin = probs[np.arange(n), top1] - probs[np.arange(n), top2]
    by_margin = np.lexsort((np.arange(n), margin))  # smallest margin first, ties by position
    picks: list[Pick] = []
    taken: set[int] = set()
    index = MinHashIndex(near_threshold)

    def take(i: int, target: int, why: str) -> bool:
        if i in taken or index.find(texts[i]):
            return False
        taken.add(i)
        index.add(texts[i])
        unsure = f"student unsure between '{names[top1[i]]}' and '{names[top2[i]]}' (margin {margin[i]:.2f})"
        picks.append(Pick(i, target, f"{why}: {unsure}"))
        return True

    if strategy == "guided":
        partner: dict[int, int] = {}
        for true, predicted, _ in report.confusions():
            partner.setdefault(true, predicted)
        for c in np.argsort(-budget_by_class, kind="stable"):
            c, share = int(c), int(budget_by_class[c])
            if share <= 0:
                continue
            why = f"annotate for '{names[c]}' (F1={float(report.f1[c]):.2f})"
            region = [int(i) for i in by_margin if top1[i] == c or top2[i] == c]
            per_pair: Counter = Counter()
            p = partner.get(c)
            if p is not None:  # the main confusion first, as generation's first request
                for i in region:
                    if {int(top1[i]), int(top2[i])} == {c, p} and take(i, c, why):
                        per_pair[frozenset((c, p))] += 1
                        break
            cap = max(1, math.ceil(share / 2))
            # spread over the predicted pairs among the class's most uncertain texts first; then fill its share
            for capped in (True, False):
                for i in region[: 2 * share] if capped else region:
                    if sum(per_pair.values()) >= share:
                        break
                    pair = frozenset((int(top1[i]), int(top2[i])))
                    if capped and per_pair[pair] >= cap:
                        continue
                    if take(i, c, why):
                        per_pair[pair] += 1
    for i in by_margin:  # margin strategy, or the shares guided selection could not fill
        if len(picks) >= total:
            break
        take(int(i), -1, "annotate: smallest margin")
    return picks[:total]
