"""Teacher verification (``ActiveKDConfig(verify="teacher")``): the teacher labels the rows it just wrote, blind.

After the quality gate, the rows accepted from each generation request go back to the teacher in one cheap,
constrained request (:class:`~hf_activekd.teachers.base.LabelQuery`): "which of these labels does each text belong
to?", answered as ``{"labels": [...]}`` with an enum of the label names (or of the confused pair, for a pair request),
without saying which label the row was written for. A row whose answer differs from its label is dropped
(``disagreement``). A row the teacher gave no answer for (the query failed, e.g. the budget ran out; or a simulation
teacher does not know the text) is kept, unverified, and counted (``verify_unverified``).

Each round records ``verify_requests``, ``verify_checked`` (rows with an answer), ``verify_agreed``,
``verify_agreement`` (agreed / checked: how often the teacher agrees with itself, a measure of its reliability),
``verify_unverified``, ``verify_failed_requests`` (and ``verify_errors``: their errors, counted),
``verify_replayed`` and ``verify_tokens_in`` / ``verify_tokens_out`` / ``verify_cost``.
The verification tokens and cost are also included in the round's ``tokens_in`` / ``tokens_out`` / ``cost`` (the
round's whole spending), and they count in the teacher's budget like any request.

Every verification answer goes to the answer log (``kind: "verify"``) before it is used: a round resumed after a crash
reuses the answers its rows already had (``verify_replayed``) instead of paying for them again, and a resumed run's
budget includes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from transformers.utils import logging

from .answer_log import VERIFY, AnswerLog, label_answer, label_logged
from .prompts import format_taxonomy
from .teachers.base import LabelAnswer, LabelQuery, Teacher, TeacherError, TeacherRequest, labels_schema

logger = logging.get_logger(__name__)

VERIFY_CHOICES = ("none", "teacher")
DISAGREEMENT = "disagreement"
VERIFY_SYSTEM_PROMPT = (
    "You are a careful annotator for a text classifier. For each numbered text, choose the one label it belongs "
    "to. Answer with JSON only."
)


def check_teacher_can_verify(teacher: Teacher, verify: str) -> None:
    """Raise :class:`~hf_activekd.TeacherError` when ``verify="teacher"`` and the teacher cannot label texts."""
    if verify == "teacher" and not getattr(teacher, "can_label", False):
        raise TeacherError(
            f"verify='teacher' needs a teacher that can label texts, and {type(teacher).__name__} ({teacher.name}) "
            "does not implement `label()`: use TGITeacher or PoolTeacher, implement `label()`, or set verify='none'."
        )


def build_query(
    request: TeacherRequest,
    rows: Sequence[dict[str, Any]],
    label_names: Sequence[str],
    task_description: str = "text classification",
    label_descriptions: dict[str, str] | None = None,
) -> LabelQuery:
    """The verification query for the rows accepted from ``request``: the options are the confused pair for a pair
    request, else every class (plus any row label outside them)."""
    if request.confused_with and request.confused_with in label_names:
        options = [request.label, request.confused_with]
    else:
        options = list(label_names)
    options += sorted({r["label"] for r in rows} - set(options))
    texts = [str(r["text"]) for r in rows]
    numbered = "\n".join(f"{i}. {' '.join(t.split())}" for i, t in enumerate(texts, 1))
    user = (
        f"Task: {task_description}.\n\nLabels:\n{format_taxonomy(options, label_descriptions)}\n\n"
        f"Texts:\n{numbered}\n\n"
        f'Answer with {{"labels": [...]}}: exactly {len(texts)} labels, one per text, in the order of the texts, '
        "each one of the labels above."
    )
    longest = max(len(o) for o in options)
    return LabelQuery(
        key=request.key,
        texts=texts,
        label_options=options,
        messages=[{"role": "system", "content": VERIFY_SYSTEM_PROMPT}, {"role": "user", "content": user}],
        json_schema=labels_schema(options, len(texts)),
        seed=request.seed,
        max_new_tokens=16 + len(texts) * (longest // 2 + 4),
    )


def verify_batches(
    teacher: Teacher,
    batches: Sequence[tuple[TeacherRequest, list[dict[str, Any]]]],
    label_names: Sequence[str],
    config: Any,
    round_index: int,
    log: AnswerLog,
    run_id: str,
    progress: bool = False,
) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """Ask the teacher to label the accepted rows of each (request, rows) batch; return the rows kept per batch and
    the round's verification stats (see the module docstring). ``config`` is the :class:`~hf_activekd.ActiveKDConfig`;
    answers logged in ``log`` for the same texts in this round of run ``run_id`` are reused, and new ones are logged.
    """
    todo = [(i, request, rows) for i, (request, rows) in enumerate(batches) if rows]
    queries = [
        build_query(request, rows, label_names, config.task_description, config.label_descriptions)
        for _, request, rows in todo
    ]
    stats: dict[str, Any] = {
        "verify_requests": len(queries),
        "verify_checked": 0,
        "verify_agreed": 0,
        "verify_agreement": None,
        "verify_unverified": 0,
        "verify_failed_requests": 0,
        "verify_replayed": 0,
        "verify_tokens_in": 0,
        "verify_tokens_out": 0,
        "verify_cost": 0.0,
        "verify_errors": {},
    }
    kept = [list(rows) for _, rows in batches]
    if not queries:
        return kept, stats
    logged: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for entry in log.labelled(run_id, round_index, VERIFY):
        logged.setdefault(tuple(entry["texts"]), []).append(entry)
    answers: list[LabelAnswer | None] = []
    for query in queries:  # a round replayed after a crash: the same rows, already verified
        same = logged.get(tuple(query.texts))
        answers.append(label_answer(same.pop(0)) if same else None)
    stats["verify_replayed"] = sum(a is not None for a in answers)
    missing = [q for q, a in zip(queries, answers) if a is None]
    fresh = iter(
        label_logged(
            teacher,
            missing,
            log,
            run_id,
            round_index,
            VERIFY,
            raise_errors=config.teacher_on_failure == "raise",
            progress=progress,
        )
    )
    answers = [a if a is not None else label_answer(next(fresh)) for a in answers]
    errors: Counter = Counter()
    for (index, _, rows), answer in zip(todo, answers):
        stats["verify_tokens_in"] += answer.prompt_tokens
        stats["verify_tokens_out"] += answer.completion_tokens
        stats["verify_cost"] += answer.cost
        if answer.error is not None:
            stats["verify_failed_requests"] += 1
            errors[answer.error] += 1
        labels = list(answer.labels) if answer.error is None else []
        labels += [None] * (len(rows) - len(labels))
        kept[index] = []
        for row, said in zip(rows, labels):
            if said is None:
                stats["verify_unverified"] += 1
                kept[index].append(row)
                continue
            stats["verify_checked"] += 1
            if said == row["label"]:
                stats["verify_agreed"] += 1
                kept[index].append(row)
    stats["verify_errors"] = dict(errors)
    if stats["verify_checked"]:
        stats["verify_agreement"] = round(stats["verify_agreed"] / stats["verify_checked"], 4)
    if errors:
        logger.warning(
            "ActiveKD round %d: %d of %d verification request(s) failed (%s); %d row(s) of the round kept unverified.",
            round_index,
            stats["verify_failed_requests"],
            len(queries),
            ", ".join(f"{k} x{v}" for k, v in errors.items()),
            stats["verify_unverified"],
        )
    return kept, stats
