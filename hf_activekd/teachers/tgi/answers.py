"""Reading a teacher's answer: JSON decoding with safe repairs, and the parsers that turn an answer into samples,
labels or an EvoKD analysis (raising :class:`_ContentError`, which the transport retries with another seed)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from ..base import GeneratedSample, LabelQuery, parse_labels, parse_samples


def _complete_items(text: str, start: int) -> list[Any]:
    """The complete JSON values of the array whose ``[`` is at ``start`` (stops at the first incomplete one)."""
    decoder = json.JSONDecoder()
    items = []
    i = start + 1
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            break
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            break
        items.append(value)
    return items


def extract_json(text: str) -> tuple[Any, bool]:
    """Decode a teacher's answer; returns ``(payload, repaired)``.

    Tries, in order: the text as is; the text inside a Markdown code fence; the outermost ``{...}`` (or ``[...]``)
    after leading or before trailing chatter; and, for a truncated answer, the complete items of its examples array
    (``{"examples": [<complete items>]}``). Raises `ValueError` when none works.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty reply")
    try:
        return json.loads(stripped), False
    except ValueError:
        pass
    fence = re.search(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", stripped, re.DOTALL)
    candidates = []
    if fence and fence.group(1).strip():
        candidates.append(fence.group(1).strip())
    candidates.append(stripped)
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            return json.loads(candidate), True
        except ValueError:
            pass
        first = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
        if first < 0:
            continue
        try:
            value, _ = decoder.raw_decode(candidate, first)
            return value, True
        except ValueError:
            pass
        last = candidate.rfind("}")
        if candidate[first] == "{" and last > first:
            try:
                return json.loads(candidate[first : last + 1]), True
            except ValueError:
                pass
        # Truncated: keep the complete items of the examples array (or of the top-level array).
        match = re.search(r'"(?:examples|samples|data|items)"\s*:\s*\[', candidate[first:])
        if match:
            items = _complete_items(candidate, first + match.end() - 1)
        elif candidate[first] == "[":
            items = _complete_items(candidate, first)
        else:
            items = []
        if items:
            return {"examples": items}, True
    raise ValueError("no JSON object found in the reply")


class _ContentError(Exception):
    """The server answered, but the answer is unusable (malformed JSON, empty, no samples)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def parse_samples_answer(text: str, label: str, faults: Counter) -> list[GeneratedSample]:
    """The samples of a generation answer (``label`` for items without one); counts ``repaired_json`` in
    ``faults`` when the JSON needed a repair."""
    try:
        payload, repaired = extract_json(text)
    except ValueError as err:
        kind = "empty_reply" if not text.strip() else "malformed_json"
        raise _ContentError(kind, str(err)) from None
    try:
        samples = parse_samples(payload, default_label=label)
    except ValueError as err:
        raise _ContentError("malformed_json", str(err)) from None
    if not samples:
        raise _ContentError("empty_reply", "the answer holds no samples")
    if repaired:
        faults["repaired_json"] += 1
    return samples


def parse_labels_answer(text: str, query: LabelQuery) -> list[str]:
    """The labels of a verification answer, one per text of ``query``, each among its options."""
    try:
        return parse_labels(extract_json(text)[0], query.label_options, len(query.texts))
    except ValueError as err:
        raise _ContentError("malformed_labels", str(err)) from None


def parse_analysis_answer(text: str) -> str:
    """An EvoKD analysis: free text, at most 2000 characters."""
    text = text.strip()
    if not text:
        raise _ContentError("empty_reply", "empty analysis")
    return text[:2000]
