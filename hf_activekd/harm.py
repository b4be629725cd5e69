"""Harm detection: when the validation metric falls below the best so far, the rows trained on since are set aside.

A round's rows are generated after its evaluation and trained on until the next one, so when evaluation ``n`` falls
more than ``harm_delta`` below the best evaluation (round ``b``), the suspects are the rows of rounds ``b`` to
``n - 1``. With ``on_harm="drop_round"`` their files are renamed ``round-NNNN.jsonl.set-aside`` (nothing is deleted):
every :class:`~hf_activekd.pool.GeneratedPool` reading the folder, in every process and dataloader worker, stops
seeing them, so the collator stops mixing them into batches.

The decision depends only on the round records, which are the same on every process (the teacher's results are
broadcast), so every process takes it alike and moves the files it can see (nodes may not share a file system).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .pool import GeneratedPool

SET_ASIDE_SUFFIX = ".set-aside"


def set_aside_rounds(rounds: Iterable[dict[str, Any]]) -> set[int]:
    """The rounds whose rows are set aside, according to the round records."""
    return {int(i) for r in rounds for i in r.get("set_aside_rounds") or ()}


def detect_harm(
    rounds: Sequence[dict[str, Any]],
    value: float,
    best_metric: float | None,
    best_round: int | None,
    round_index: int,
    greater_is_better: bool,
    harm_delta: float,
    global_step: int | None = None,
) -> dict[str, Any] | None:
    """The harm of evaluation ``round_index`` (metric ``value``), or None when it is within ``harm_delta`` of the best.

    Returns ``{"metric", "best", "best_round", "drop", "rounds"}``: ``rounds`` are the rounds with rows trained on
    since the best evaluation and not set aside yet (the argument ``rounds`` holds the records of earlier rounds).

    With ``global_step`` (the step of this evaluation), "trained on since the best evaluation" is read from the steps
    at which each round's rows arrived (``arrived_at_step``, the evaluation's own step for a blocking round): rows
    that arrived at or after the best evaluation's step and before this evaluation's. An overlapped round whose rows
    arrived only when this evaluation waited for them, or that is still in flight, was not trained on: not a suspect.
    """
    if best_metric is None or best_round is None or best_round >= round_index:
        return None
    drop = best_metric - value if greater_is_better else value - best_metric
    if not drop > harm_delta:
        return None
    done = set_aside_rounds(rounds)
    if global_step is None:
        trained_since_best = [r for r in rounds if best_round <= r["round"] < round_index]
    else:
        best_step = next((r.get("global_step") for r in rounds if r["round"] == best_round), None) or 0
        trained_since_best = [r for r in rounds if best_step <= _arrived(r) < global_step]
    suspects = [int(r["round"]) for r in trained_since_best if r.get("accepted", 0) > 0 and r["round"] not in done]
    return {
        "metric": float(value),
        "best": float(best_metric),
        "best_round": int(best_round),
        "drop": float(drop),
        "rounds": suspects,
    }


def _arrived(record: dict[str, Any]) -> float:
    """The step at which a round's rows arrived (its evaluation's step for records without ``arrived_at_step``);
    infinity while in flight or when it never arrived (cancelled)."""
    step = record.get("arrived_at_step", record.get("global_step"))
    return float("inf") if step is None else step


def move_round_aside(pool: GeneratedPool, round_index: int) -> Path | None:
    """Set a round's file aside as ``round-NNNN.jsonl.set-aside`` (numbered when taken; see
    :meth:`GeneratedPool.move_round_aside`). None when this process sees no such file."""
    return pool.move_round_aside(round_index, SET_ASIDE_SUFFIX)


def set_aside_texts(directory: str | os.PathLike) -> list[str]:
    """The texts of every set-aside round file in ``directory`` (kept in the dedup set: the same rows are not accepted
    again)."""
    texts = []
    folder = Path(directory)
    if not folder.is_dir():
        return texts
    for path in sorted(folder.glob(f"round-*.jsonl{SET_ASIDE_SUFFIX}*")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("text"), str):
                    texts.append(row["text"])
    return texts


def harm_note(record: dict[str, Any], metric: str = "macro_f1") -> str:
    """The model card's note on a round whose evaluation fell below the best (a Markdown list item)."""
    harm = record["harm"]
    text = (
        f"- Round {record['round']}: validation `{metric}` {harm['metric']:.4f} fell {harm['drop']:.4f} below the "
        f"best ({harm['best']:.4f} at round {harm['best_round']})"
    )
    if record.get("set_aside_rounds"):
        rounds = ", ".join(str(i) for i in record["set_aside_rounds"])
        return text + (
            f": the {record.get('set_aside_rows', 0)} rows of round(s) {rounds}, trained on since the best, were set "
            "aside for the rest of training."
        )
    if harm.get("rounds"):
        rounds = ", ".join(str(i) for i in harm["rounds"])
        return text + f"; the rows of round(s) {rounds} were kept (`on_harm='keep'`)."
    return text + "; no rows trained on since then were left to set aside."
