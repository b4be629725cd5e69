"""Annotation (``ActiveKDConfig(source="annotate")``): the teacher labels the user's own unlabeled texts, picked
where the student is weak or unsure.

Each round, on top of the per-class report that guides generation:

1. :meth:`Annotator.candidates` draws a bounded random subset (``max_unlabeled_scored``) of the unlabeled texts that
   are not training texts, validation texts (or near copies of them), texts labelled in an earlier round, or texts
   already sent to the teacher in this run.
2. The student scores them (:class:`~hf_activekd.scoring.StudentScorer`: batched, ``torch.no_grad``, on the
   student's device, its train or eval mode restored); under several processes each rank scores a shard and the
   results are gathered (:func:`~hf_activekd.scoring.score_sharded`), so every rank holds the same scores.
3. :func:`select_texts` picks the texts to label. ``"guided"``: each class gets its share of the budget from the same
   allocation as generation (:func:`~hf_activekd.policy.allocate`); its candidates are the texts the student puts the
   class in its top two for, smallest margin between the top two first, a text of the class's main confusion pair
   first, at most half of the class's share per predicted pair, and never a near-duplicate of a text already picked
   (:class:`~hf_activekd.near_duplicates.MinHashIndex`); shares a class cannot fill go to the smallest margins left.
   ``"margin"``: the smallest margins overall. ``"random"``: a random sample.
4. The teacher labels them with :meth:`~hf_activekd.Teacher.label`: one constrained request per
   ``annotate_texts_per_request`` texts, answered as ``{"labels": [...]}`` with an enum of the label names (plus
   ``"none of these"`` with ``annotate_none_option``: such a text is dropped and counted as ``none_of_these``).
   Every answer goes to the answer log (``kind: "annotate"``) before its rows are built: a round resumed after a
   crash reuses the texts already labelled in it and asks only for the rest of its budget. Tokens and cost count in
   the teacher's budget and the round's totals as for generation.
5. The labelled texts go through the same :class:`~hf_activekd.pool.RowFilter` as generated rows (known label,
   length, label echo, validation texts, duplicates) except the quality gate: these are the user's real texts, not
   teacher output, and real tickets may well contain markup, digits or repetition that the gate (made for junk an LLM
   writes) would drop. They join the same round files with ``origin: "annotated"`` (generated rows carry
   ``origin: "generated"``), so the collator, records, card and generated dataset work unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from transformers.utils import logging

from .annotation_selection import Pick, select_texts
from .answer_log import ANNOTATE, AnswerLog, label_logged
from .config import ActiveKDConfig
from .metrics import EvalReport
from .policy import allocate, stable_seed
from .pool import RowFilter, normalize_text
from .prompts import format_taxonomy
from .teachers.base import GeneratedSample, LabelQuery, Teacher, TeacherError, labels_schema

logger = logging.get_logger(__name__)

NONE_OF_THESE = "none of these"
ANNOTATED, GENERATED = "annotated", "generated"
ANNOTATE_SYSTEM_PROMPT = (
    "You are a careful annotator for a text classifier. For each numbered text, choose the one label it belongs "
    "to. Answer with JSON only."
)


def unlabeled_texts(unlabeled: Any, text_column: str = "text") -> list[str]:
    """The texts of ``unlabeled``: a sequence of strings, or a `datasets.Dataset` (or any table with columns) holding
    ``text_column``."""
    if unlabeled is None:
        return []
    if isinstance(unlabeled, str):
        raise TypeError("unlabeled must be a list of texts or a datasets.Dataset, not a single string.")
    names = getattr(unlabeled, "column_names", None)
    if isinstance(names, dict):  # a DatasetDict
        raise TypeError("unlabeled must be one split (a datasets.Dataset), not a DatasetDict.")
    if names is not None:
        if text_column not in names:
            raise ValueError(
                f"The unlabeled dataset has no {text_column!r} column (it has {list(names)}): set "
                "ActiveKDConfig(text_column=...) or pass a list of texts."
            )
        values = unlabeled[text_column]
    else:
        values = list(unlabeled)
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(f"unlabeled texts must be strings, found {type(bad[0]).__name__} ({str(bad[0])[:50]!r}).")
    return [v for v in values if v.strip()]


def check_annotation_setup(config: ActiveKDConfig, teacher: Teacher, unlabeled: Any) -> None:
    """Raise before anything is paid when ``config.source`` needs unlabeled texts or a labelling teacher it lacks."""
    if config.source == "generate":
        return
    if unlabeled is None or (hasattr(unlabeled, "__len__") and len(unlabeled) == 0):
        raise ValueError(
            f"source={config.source!r} has the teacher label your own texts: pass unlabeled=... (a list of texts, or "
            f"a datasets.Dataset with a {config.text_column!r} column) to ActiveKDCallback or RoundRunner "
            "(hf-activekd distill: --unlabeled-file FILE), or set source='generate'."
        )
    if not getattr(teacher, "can_label", False):
        raise TeacherError(
            f"source={config.source!r} needs a teacher that can label texts, and {type(teacher).__name__} "
            f"({teacher.name}) does not implement `label()`: use TGITeacher or PoolTeacher, or source='generate'."
        )


def build_label_query(
    key: str,
    texts: Sequence[str],
    label_names: Sequence[str],
    config: ActiveKDConfig,
    seed: int = 0,
) -> LabelQuery:
    """One labelling request: which label does each text belong to (``"none of these"`` allowed with
    ``annotate_none_option``)? Built like a verification query (:func:`hf_activekd.verification.build_query`)."""
    options = list(label_names) + ([NONE_OF_THESE] if config.annotate_none_option else [])
    numbered = "\n".join(f"{i}. {' '.join(t.split())}" for i, t in enumerate(texts, 1))
    none = f' Answer "{NONE_OF_THESE}" for a text that fits none of the labels.' if config.annotate_none_option else ""
    user = (
        f"Task: {config.task_description}.\n\nLabels:\n{format_taxonomy(list(label_names), config.label_descriptions)}"
        f"\n\nTexts:\n{numbered}\n\n"
        f'Answer with {{"labels": [...]}}: exactly {len(texts)} labels, one per text, in the order of the texts, '
        f"each one of the labels above.{none}"
    )
    longest = max(len(o) for o in options)
    return LabelQuery(
        key=key,
        texts=list(texts),
        label_options=options,
        messages=[{"role": "system", "content": ANNOTATE_SYSTEM_PROMPT}, {"role": "user", "content": user}],
        json_schema=labels_schema(options, len(texts)),
        seed=seed,
        max_new_tokens=16 + len(texts) * (longest // 2 + 4),
    )


class Annotator:
    """The annotation half of a round (see the module docstring); :class:`~hf_activekd.RoundRunner` drives it.

    Args:
        texts (`Sequence[str]`): The user's unlabeled texts.
        config (`ActiveKDConfig`): Settings (``max_unlabeled_scored``, ``annotate_strategy``, ...).
        label_names (`Sequence[str]`): Class names by id.
        row_filter (`RowFilter`): The runner's filter: what is seen (training texts, labelled rows) and protected
            (validation texts).
        log (`AnswerLog`): The runner's answer log.
    """

    def __init__(
        self,
        texts: Sequence[str],
        config: ActiveKDConfig,
        label_names: Sequence[str],
        row_filter: RowFilter,
        log: AnswerLog,
    ):
        if config.annotate_none_option and NONE_OF_THESE in label_names:
            raise ValueError(
                f"A class is named {NONE_OF_THESE!r}, the answer for texts that fit no label: rename it or set "
                "annotate_none_option=False."
            )
        self.texts = list(texts)
        self.config = config
        self.label_names = list(label_names)
        self.filter = row_filter
        self.log = log
        self._clear_of_eval: dict[int, bool] = {}  # text position -> not a (near) copy of a validation text
        self._eval_size = -1

    def _logged(self, run_id: str) -> list[dict[str, Any]]:
        return [e for e in self.log.of_run(run_id) if e.get("kind") == ANNOTATE]

    def candidates(self, round_index: int, run_id: str) -> list[int]:
        """Positions (in :attr:`texts`) of this round's random subset of texts that may be picked."""
        config = self.config
        answered = [e for e in self._logged(run_id) if e["response"].get("error") is None]
        asked = {normalize_text(t) for e in answered for t in e["texts"]}
        size = len(self.filter.eval_index)
        if size != self._eval_size:  # more protected texts: check again
            self._clear_of_eval, self._eval_size = {}, size
        order = np.random.default_rng(stable_seed(config.seed, "annotate-subset", round_index)).permutation(
            len(self.texts)
        )
        chosen: list[int] = []
        for i in order:
            i = int(i)
            text = self.texts[i].strip()
            if not config.min_chars <= len(text) <= config.max_chars:
                continue
            key = normalize_text(text)
            if key in self.filter.seen or key in asked:
                continue
            if i not in self._clear_of_eval:
                self._clear_of_eval[i] = self.filter.eval_index.find(text) is None
            if not self._clear_of_eval[i]:
                continue
            chosen.append(i)
            if len(chosen) >= config.max_unlabeled_scored:
                break
        return chosen

    def annotate(
        self,
        teacher: Teacher,
        report: EvalReport,
        scored: tuple[list[int], np.ndarray] | None,
        budget: int,
        round_index: int,
        run_id: str,
        progress: bool = False,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Pick, label and check up to ``budget`` texts; returns the accepted rows and the round's annotation stats.

        Answers logged for this round of this run (before a crash) are reused first, and only the rest of the budget
        is picked and sent.
        """
        config = self.config
        positions, probs = scored if scored is not None else ([], np.zeros((0, 0)))
        logged = self.log.labelled(run_id, round_index, ANNOTATE)
        left = max(0, budget - sum(len(e["texts"]) for e in logged))
        texts = [self.texts[i] for i in positions]
        picks: list[Pick] = []
        if left and texts:
            counts = allocate(report, replace(config, samples_per_round=left), round_index)
            seed = stable_seed(config.seed, "annotate-select", round_index)
            picks = select_texts(
                probs, counts, config.annotate_strategy, report, texts, seed, config.near_duplicate_threshold
            )
        # one request per annotate_texts_per_request texts (picks come class by class); the label options are every
        # class either way, and fewer requests repeat the taxonomy less
        queries: list[tuple[LabelQuery, list[str]]] = []
        size = config.annotate_texts_per_request
        start = len({e["key"] for e in self._logged(run_id) if e["round"] == round_index})
        for j in range(0, len(picks), size):
            chunk = picks[j : j + size]
            key = f"r{round_index:04d}@annotate/{start + len(queries)}"
            query = build_label_query(
                key, [texts[p.index] for p in chunk], self.label_names, config, stable_seed(config.seed, key)
            )
            queries.append((query, [p.reason for p in chunk]))
        fresh = label_logged(  # each answer on disk before it is used
            teacher,
            [q for q, _ in queries],
            self.log,
            run_id,
            round_index,
            ANNOTATE,
            reasons=[r for _, r in queries],
            raise_errors=config.teacher_on_failure == "raise",
            progress=progress,
        )
        return self._rows(logged, fresh, round_index, teacher.name, len(positions))

    def _rows(
        self,
        logged: list[dict[str, Any]],
        fresh: list[dict[str, Any]],
        round_index: int,
        teacher_name: str,
        scored: int,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        drops: Counter = Counter()
        errors: Counter = Counter()
        stats: dict[str, Any] = {
            "annotate_scored": scored,
            "annotate_requests": len(logged) + len(fresh),
            "annotate_replayed": len(logged),
            "annotate_requested": 0,
            "annotated": 0,
            "none_of_these": 0,
            "annotate_unanswered": 0,
            "annotate_failed_requests": 0,
            "annotate_tokens_in": 0,
            "annotate_tokens_out": 0,
            "annotate_cost": 0.0,
        }
        for entry in logged + fresh:
            response = entry["response"]
            stats["annotate_requested"] += len(entry["texts"])
            # replayed answers were paid by this run (before a crash): they count, as replayed generation answers do
            stats["annotate_tokens_in"] += int(response.get("prompt_tokens") or 0)
            stats["annotate_tokens_out"] += int(response.get("completion_tokens") or 0)
            stats["annotate_cost"] += float(response.get("cost") or 0.0)
            if response.get("error") is not None:
                stats["annotate_failed_requests"] += 1
                errors[response["error"]] += 1
                continue
            labels = list(response.get("labels") or [])
            reasons = entry.get("reasons") or []
            labels += [None] * (len(entry["texts"]) - len(labels))
            for n, (text, label) in enumerate(zip(entry["texts"], labels)):
                if label is None:
                    stats["annotate_unanswered"] += 1
                    continue
                if label == NONE_OF_THESE:
                    stats["none_of_these"] += 1
                    continue
                reason = self.filter.check(GeneratedSample(text=text, label=label), quality=False)
                if reason is not None:
                    drops[reason] += 1
                    continue
                rows.append(
                    {
                        "text": text.strip(),
                        "label": label,
                        "round": round_index,
                        "reason": reasons[n] if n < len(reasons) else "annotate",
                        "request": entry["key"],
                        "teacher": teacher_name,
                        "origin": ANNOTATED,
                    }
                )
        stats["annotated"] = len(rows)
        stats["annotate_dropped"] = dict(drops)
        stats["annotate_errors"] = dict(errors)
        if errors:
            logger.warning(
                "ActiveKD round %d: %d of %d labelling request(s) failed (%s).",
                round_index,
                stats["annotate_failed_requests"],
                stats["annotate_requests"],
                ", ".join(f"{k} x{v}" for k, v in errors.items()),
            )
        return rows, stats
