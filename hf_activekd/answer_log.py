"""The answer log: every teacher answer of a run, written to disk the moment it arrives.

``<output_dir>/activekd/answers.jsonl`` holds one JSON line per answer (successful or failed), appended and fsynced
as soon as the teacher returns it, so that a crash, a ``kill -9`` or a Ctrl-C in the middle of a round loses at most
the requests in flight. A torn last line (a crash during a write) is skipped when reading and never glued to the
next entry. Each entry carries the run id, the round, the request's key, label and content fingerprint, and what the
answer cost, so that a resumed run can

- replay the answers of its own run (never those of an earlier run in the same folder, see :func:`replay_plan`);
- restore what the teacher has spent, including answers that arrived after the last checkpoint
  (:meth:`AnswerLog.spend`).

Generation answers carry no ``kind``; labelling answers carry ``kind: "annotate"`` (texts picked for annotation) or
``kind: "verify"`` (rows sent back for verification), with the texts they label, written by :func:`label_logged`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .teachers.base import LabelAnswer, LabelQuery, Teacher, TeacherRequest, TeacherResponse

logger = logging.get_logger(__name__)

ANSWERS_FILE = "answers.jsonl"
LEGACY_RUN_ID = ""  # entries written by 0.1.0 carry no run id
ANNOTATE, VERIFY = "annotate", "verify"  # the kinds of labelling answers
LABEL_QUERIES_PER_CALL = 8  # labelling requests per teacher.label() call (at least; see label_logged)


def request_fingerprint(request: TeacherRequest, teacher_name: str) -> str:
    """What identifies a request's content: the teacher, messages, schema, sample count, parameters and seed."""
    return request.fingerprint(teacher_name)


class AnswerLog:
    """Append-only, crash-tolerant log of teacher answers (``answers.jsonl``).

    Args:
        directory (`str` or `os.PathLike`): The folder of the log.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / ANSWERS_FILE
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] | None = None

    def entries(self) -> list[dict[str, Any]]:
        """Every readable entry, in the order written (read once, then kept up to date by :meth:`append`)."""
        if self._entries is None:
            entries = []
            try:
                with open(self.path, encoding="utf-8") as f:
                    for line in f:
                        try:
                            entry = json.loads(line)
                        except json.JSONDecodeError:  # a torn line from a crash
                            continue
                        if isinstance(entry, dict) and isinstance(entry.get("response"), dict):
                            entries.append(_upgrade(entry))
            except FileNotFoundError:
                pass
            self._entries = entries
        return self._entries

    def append(
        self, run_id: str, round_index: int, request: TeacherRequest, response: TeacherResponse, fingerprint: str
    ) -> None:
        """Write one answer and fsync it. Safe to call from several threads (the teacher's event loop included)."""
        entry = {
            "run_id": run_id,
            "round": int(round_index),
            "key": request.key,
            "label": request.label,
            "num_samples": request.num_samples,
            "reason": request.reason,
            "fingerprint": fingerprint,
            "response": response.to_dict(),
        }
        self._write(entry)

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            entries = self.entries()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                if f.tell() > 0 and not _ends_with_newline(self.path):
                    f.write(b"\n")  # close a torn last line: the new entry must stay readable on its own
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            entries.append(entry)

    def append_labels(
        self,
        run_id: str,
        round_index: int,
        query: LabelQuery,
        answer: LabelAnswer,
        reasons: list[str] | None = None,
        kind: str = ANNOTATE,
    ) -> dict[str, Any]:
        """Write one labelling answer (the texts, why each was picked, and the labels the teacher gave them) under
        ``kind`` (``"annotate"`` or ``"verify"``), so that a resumed round reuses it instead of paying again.
        Returns the entry."""
        entry = {
            "run_id": run_id,
            "round": int(round_index),
            "kind": kind,
            "key": query.key,
            "label": None,
            "num_samples": len(query.texts),
            "reason": kind,
            "fingerprint": None,
            "texts": list(query.texts),
            "reasons": list(reasons or []),
            "response": answer.to_dict(),
        }
        self._write(entry)
        return entry

    def labelled(self, run_id: str, round_index: int, kind: str) -> list[dict[str, Any]]:
        """The successful labelling answers of ``kind`` logged for round ``round_index`` of run ``run_id``."""
        return [
            e
            for e in self.of_run(run_id)
            if e.get("kind") == kind and e["round"] == round_index and e["response"].get("error") is None
        ]

    def of_run(self, run_id: str) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["run_id"] == run_id]

    def spend(self, run_id: str) -> dict[str, Any]:
        """What the answers of ``run_id`` cost: HTTP requests, tokens (estimated ones included) and money."""
        total = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "estimated_tokens": 0}
        for entry in self.of_run(run_id):
            response = entry["response"]
            if response.get("cached") and not response.get("attempts"):
                continue  # answered from the disk cache: nothing was sent
            total["requests"] += int(response.get("attempts") or 0)
            total["prompt_tokens"] += int(response.get("prompt_tokens") or 0)
            total["completion_tokens"] += int(response.get("completion_tokens") or 0)
            total["cost"] += float(response.get("cost") or 0.0)
            total["estimated_tokens"] += int(response.get("estimated_tokens") or 0)
        return total


def is_generation(entry: dict[str, Any]) -> bool:
    """Whether a log entry answers a generation request (not a labelling one)."""
    return entry.get("kind") is None


def label_answer(entry: dict[str, Any]) -> LabelAnswer:
    """The :class:`~hf_activekd.teachers.base.LabelAnswer` a labelling entry recorded."""
    return LabelAnswer.from_dict({**entry["response"], "key": entry["key"]})


def label_logged(
    teacher: Teacher,
    queries: list[LabelQuery],
    log: AnswerLog,
    run_id: str,
    round_index: int,
    kind: str,
    reasons: list[list[str]] | None = None,
    raise_errors: bool = False,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Ask ``teacher`` to label ``queries``, each answer written to ``log`` (under ``kind``, with ``reasons[i]`` for
    query ``i``) before it is used. Queries go out :data:`LABEL_QUERIES_PER_CALL` per call, or the teacher's
    ``max_concurrency`` if larger (one call keeps every connection busy): a crash loses at most one call's answers.
    A call that raises gives each of its queries an error answer, unless ``raise_errors``. Returns the log entries, in
    the order of the queries."""
    per_call = max(LABEL_QUERIES_PER_CALL, int(getattr(teacher, "max_concurrency", 0) or 0))
    entries = []
    for start in range(0, len(queries), per_call):
        part = queries[start : start + per_call]
        try:
            answers = teacher.label(part, progress=progress)
        except Exception as exc:  # noqa: BLE001 - a failing teacher must not end training
            if raise_errors:
                raise
            logger.error("Teacher %s failed to label texts (%s) in round %d: %s", teacher.name, kind, round_index, exc)
            answers = [LabelAnswer(key=q.key, error=f"{type(exc).__name__}: {exc}") for q in part]
        for offset, (query, answer) in enumerate(zip(part, answers)):
            why = reasons[start + offset] if reasons else None
            entries.append(log.append_labels(run_id, round_index, query, answer, why, kind=kind))
    return entries


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _upgrade(entry: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields a 0.1.0 entry (``{"key", "response"}``) lacks, from its key ``r0003/label/0``."""
    if "run_id" in entry:
        return entry
    parts = str(entry.get("key", "")).split("/")
    round_index = int(parts[0][1:]) if parts and parts[0][1:].isdigit() else -1
    return {
        "run_id": LEGACY_RUN_ID,
        "round": round_index,
        "key": entry.get("key"),
        "label": "/".join(parts[1:-1]) if len(parts) >= 3 else None,
        "num_samples": len(entry["response"].get("samples") or []),
        "reason": "",
        "fingerprint": None,
        "response": entry["response"],
    }


def replay_plan(
    requests: list[TeacherRequest],
    logged: Iterable[dict[str, Any]],
    fingerprints: dict[str, str],
) -> tuple[dict[str, dict[str, Any]], list[TeacherRequest], list[dict[str, Any]]]:
    """Match a round's planned requests with the successful answers already logged for that round of this run.

    A planned request takes, in this order, an unused logged answer with the same content fingerprint, then one for
    the same label (the student may have moved a little since the crash, so the prompt differs, but the answer was
    paid for this round and this class). Logged answers left over (classes the new plan does not ask for) are used
    too, and the plan's last requests (the smallest shares) are dropped to make room for them: the round asks only
    for the rest of its budget.

    Returns ``(replayed, to_send, extra)``: logged entries by planned request key, the requests still to send, and
    the leftover logged entries (each becomes a request of its own in the round's records).
    """
    pending = [e for e in logged if e["response"].get("error") is None]
    replayed: dict[str, dict[str, Any]] = {}
    for request in requests:  # same content first
        for i, entry in enumerate(pending):
            if entry.get("fingerprint") and entry["fingerprint"] == fingerprints[request.key]:
                replayed[request.key] = pending.pop(i)
                break
    for request in requests:  # then the same class
        if request.key in replayed:
            continue
        for i, entry in enumerate(pending):
            if entry.get("label") == request.label:
                replayed[request.key] = pending.pop(i)
                break
    to_send = [r for r in requests if r.key not in replayed]
    room = sum(int(e.get("num_samples") or 0) for e in pending)
    while to_send and room >= to_send[-1].num_samples:
        room -= to_send.pop().num_samples
    return replayed, to_send, pending
