"""The generated rows on disk: validation, deduplication, and the append-only round files.

The pool lives in files (``round-NNNN.jsonl``, one per round) rather than in memory, so that dataloader worker
processes see new rows (they re-read the folder when a file's size or mtime changes), and so that the files are the
record of what was generated and survive a crash.
"""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .near_duplicates import NearDuplicateIndex
from .prompts import prompt_examples
from .quality import QUALITY_CHECKS, QualityGate
from .teachers.base import GeneratedSample, TeacherRequest
from .utils import atomic_write_text

ROUND_FILE = re.compile(r"^round-(\d{4,})\.jsonl$")

DROP_REASONS = (
    "unknown_label",
    "empty",
    "too_short",
    "too_long",
    "label_echo",
    "eval_text",
    "duplicate",
    *QUALITY_CHECKS,
    "over_request",
    "disagreement",  # teacher verification (verify="teacher", see verification.py)
)


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, collapse whitespace and strip punctuation at the ends: the key of deduplication."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" .,!?;:'\"()[]{}-")


class RowFilter:
    """Checks generated samples and counts every drop by reason.

    A sample is kept when its label is a known label, its text is non-empty and within ``[min_chars, max_chars]``,
    it is not just a label name, it is neither a copy nor a near copy of an evaluation text (``eval_text``: see
    :class:`~hf_activekd.near_duplicates.NearDuplicateIndex`), and its normalised text was not seen before
    (``duplicate``: training data, earlier rounds, or earlier in this round), and it passes the ``quality`` gate
    (:class:`~hf_activekd.quality.QualityGate`: markup, prompt echoes, not words, repetition, copies of prompt texts,
    near-duplicates of accepted rows; every check on by default).

    Validation texts must never enter training: they would inflate the validation metric that judges rounds, picks
    the best checkpoint and goes into the model card, and be published with the generated data. Prompts quote them,
    so a teacher may echo one, even under another class.

    Args:
        label_names (`Sequence[str]`): The known labels.
        min_chars (`int`, defaults to `8`), max_chars (`int`, defaults to `1000`): Accepted text lengths.
        seen (`Iterable[str]`, *optional*): Texts whose exact (normalised) copies are dropped, e.g. training texts.
        eval_texts (`Iterable[str]`, *optional*): Texts whose copies and near copies are dropped: every evaluation text
            and every text a prompt may quote. More can be added with :meth:`add_eval_texts`.
        near_threshold (`float`, defaults to `0.9`): Similarity from which a text is a near copy of an eval text.
        quality (`QualityGate`, *optional*): The quality gate run on texts not seen before; defaults to every check.
    """

    def __init__(
        self,
        label_names: Sequence[str],
        min_chars: int = 8,
        max_chars: int = 1000,
        seen: Iterable[str] = (),
        eval_texts: Iterable[str] = (),
        near_threshold: float = 0.9,
        quality: QualityGate | None = None,
    ):
        self.label_names = list(label_names)
        self._known = set(self.label_names)
        self._label_keys = {normalize_text(n) for n in self.label_names} | {
            normalize_text(n.replace("_", " ")) for n in self.label_names
        }
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.seen: set[str] = {normalize_text(t) for t in seen}
        self.eval_index = NearDuplicateIndex(near_threshold)
        self.add_eval_texts(eval_texts)
        self.quality = quality if quality is not None else QualityGate()

    def add_seen(self, texts: Iterable[str]) -> None:
        """Mark generated rows (of earlier rounds) as seen: their duplicates and near-duplicates are dropped."""
        texts = list(texts)
        self.seen.update(normalize_text(t) for t in texts)
        self.quality.add(texts)

    def add_eval_texts(self, texts: Iterable[str]) -> None:
        """Protect more texts (copies and near copies are dropped as ``eval_text``)."""
        self.eval_index.add(t for t in texts if isinstance(t, str) and t.strip())

    def check(self, sample: GeneratedSample, prompt_texts: Sequence[str] = (), quality: bool = True) -> str | None:
        """The drop reason for ``sample``, or None when it is accepted (it is then marked as seen). ``quality=False``
        skips the quality gate (for the user's own texts, labelled by the teacher: see :mod:`hf_activekd.annotation`);
        the text still joins the gate's index of accepted rows."""
        if sample.label not in self._known:
            return "unknown_label"
        text = sample.text.strip() if isinstance(sample.text, str) else ""
        if not text:
            return "empty"
        key = normalize_text(text)
        if key in self._label_keys:
            return "label_echo"
        if len(text) < self.min_chars:
            return "too_short"
        if len(text) > self.max_chars:
            return "too_long"
        if self.eval_index.find(text) is not None:
            return "eval_text"
        if key in self.seen:
            return "duplicate"
        reason = self.quality.check(text, sample.label, prompt_texts) if quality else None
        if reason is not None:
            return reason
        self.seen.add(key)
        self.quality.add(text)
        return None

    def accept(
        self, request: TeacherRequest, samples: Sequence[GeneratedSample], round_index: int, teacher: str
    ) -> tuple[list[dict[str, Any]], Counter]:
        """Check ``samples`` answered to ``request``: the accepted rows (at most ``request.num_samples``: a teacher
        that writes more than it was asked for gets the extra ones dropped as ``over_request``, so a round never
        trains on more rows than ``samples_per_round``) and the drops by reason."""
        rows, drops = [], Counter()
        shown = prompt_examples(request.messages)
        for sample in samples:
            label = sample.label if sample.label else request.label
            reason = self.check(GeneratedSample(text=sample.text, label=label), shown)
            if reason is None and len(rows) >= request.num_samples:
                reason = "over_request"
            if reason is not None:
                drops[reason] += 1
                continue
            rows.append(
                {
                    "text": sample.text.strip(),
                    "label": label,
                    "round": round_index,
                    "reason": request.reason,
                    "request": request.key,
                    "teacher": teacher,
                    "origin": "generated",
                }
            )
        return rows, drops


class GeneratedPool:
    """The folder of round files. Cheap to poll: files are re-read only when their size or mtime changes."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._cache: dict[str, tuple[tuple[int, int], list[dict[str, Any]]]] = {}
        self._signature: tuple = ()
        self._folder_mtime: int | None = None
        self._scanned = False
        self._rows: list[dict[str, Any]] = []

    def round_path(self, round_index: int) -> Path:
        return self.directory / f"round-{round_index:04d}.jsonl"

    def round_files(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for entry in os.scandir(self.directory):
            m = ROUND_FILE.match(entry.name)
            if m:
                found.append((int(m.group(1)), Path(entry.path)))
        return sorted(found)

    def write_round(self, round_index: int, rows: Sequence[dict[str, Any]]) -> Path:
        path = self.round_path(round_index)
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return path

    def refresh(self) -> bool:
        """Re-read changed files. Returns whether the rows changed.

        Round files are only ever created or replaced by a rename (:func:`atomic_write_text`), which changes the
        folder's mtime: one ``stat`` of the folder tells whether anything can have changed, so polling once per batch
        costs one system call.
        """
        try:
            folder_mtime = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            folder_mtime = None
        recent = folder_mtime is not None and time.time_ns() - folder_mtime < 2_000_000_000  # coarse clocks: rescan
        if self._scanned and folder_mtime == self._folder_mtime and not recent:
            return False
        self._scanned = True
        self._folder_mtime = folder_mtime
        files = self.round_files()
        signature = []
        for _, path in files:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            signature.append((path.name, st.st_size, st.st_mtime_ns))
        signature = tuple(signature)
        if signature == self._signature:
            return False
        rows: list[dict[str, Any]] = []
        cache = {}
        for name, size, mtime in signature:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == (size, mtime):
                file_rows = cached[1]
            else:
                file_rows = []
                with open(self.directory / name, encoding="utf-8") as f:
                    for line in f:
                        line = line.strip()
                        if line:
                            try:
                                file_rows.append(json.loads(line))
                            except json.JSONDecodeError:  # a torn last line from a crash: skip it
                                continue
            cache[name] = ((size, mtime), file_rows)
            rows.extend(file_rows)
        self._cache = cache
        self._signature = signature
        self._rows = rows
        return True

    def rows(self) -> list[dict[str, Any]]:
        self.refresh()
        return self._rows

    def __len__(self) -> int:
        return len(self.rows())

    def move_round_aside(self, round_index: int, suffix: str) -> Path | None:
        """Rename ``round-NNNN.jsonl`` to ``round-NNNN.jsonl<suffix>`` (``<suffix>.1``, ``<suffix>.2``... when taken,
        so nothing is ever overwritten or deleted). Returns the new path, or None when this process sees no such file
        (another process on the same file system moved it first)."""
        path = self.round_path(round_index)
        for n in range(10_000):
            target = path.with_name(path.name + suffix + (f".{n}" if n else ""))
            if not target.exists():
                break
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        finally:
            self._signature = ()  # re-read at the next call
            self._scanned = False
        return target

    def remove_rounds_after(self, last_round: int) -> list[Path]:
        """Move round files newer than ``last_round`` aside, e.g. when resuming from an earlier checkpoint. Nothing is
        deleted: the first copy is ``round-NNNN.jsonl.discarded``, later ones ``.discarded.1``, ``.discarded.2``..."""
        moved = [self.move_round_aside(index, ".discarded") for index, _ in self.round_files() if index > last_round]
        return [path for path in moved if path is not None]
