"""EvoKD's two steps for :class:`~hf_activekd.teachers.tgi.TGITeacher`: first a short analysis of the student's
weaknesses for the class (one request per class and batch), then the generation request with that analysis and a
memory of the texts already written for the class (asking for different ones) appended to its prompt."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from ..base import TeacherRequest
from .answers import parse_analysis_answer
from .transport import _Tally

EVOKD_ANALYSIS_PROMPT = (
    "Before writing any example, analyse the student's weaknesses for the class {label!r}{pair}: in a few short "
    "bullet points, say what kinds of inputs it probably gets wrong and why, and what new examples would help most "
    "(mix easy and hard ones). Answer with the analysis only, no examples, at most 120 words."
)
EVOKD_GENERATION_SUFFIX = "\n\nAnalysis of the student's weaknesses (use it to choose what to write):\n{analysis}"
EVOKD_MEMORY_SUFFIX = (
    "\n\nExamples already written for {label!r} earlier (do NOT repeat them or their wording; write different ones):"
    "\n{examples}"
)


class _EvoKDMixin:
    """The EvoKD prompts and memory of :class:`~hf_activekd.teachers.tgi.TGITeacher` (``evokd=True``)."""

    evokd: bool
    evokd_analysis_tokens: int
    evokd_memory_shown: int
    memory: dict[str, list[str]]

    def _remember(self, label: str, texts: list[str]) -> None:
        if self.evokd and texts:
            kept = self.memory.setdefault(label, [])
            kept.extend(texts)
            del kept[:-200]

    async def _evokd_messages(
        self, client: Any, request: TeacherRequest, analyses: dict[str, asyncio.Task], tally: _Tally
    ) -> list[dict[str, Any]]:
        """The request's messages with the class's weakness analysis and earlier samples appended."""
        task = analyses.get(request.label)
        if task is None:
            task = asyncio.ensure_future(self._analyse(client, request, tally))
            analyses[request.label] = task
        analysis = await task
        earlier = self.memory.get(request.label, [])[-self.evokd_memory_shown :]
        suffix = ""
        if analysis:
            suffix += EVOKD_GENERATION_SUFFIX.format(analysis=analysis)
        if earlier:
            examples = "\n".join(f"- {' '.join(t.split())[:200]}" for t in earlier)
            suffix += EVOKD_MEMORY_SUFFIX.format(label=request.label, examples=examples)
        messages = copy.deepcopy(request.messages)
        if not suffix:
            return messages
        for message in reversed(messages):
            if message.get("role") == "user":
                message["content"] = f"{message.get('content', '')}{suffix}"
                break
        else:
            messages.append({"role": "user", "content": suffix.strip()})
        return messages

    async def _analyse(self, client: Any, request: TeacherRequest, tally: _Tally) -> str:
        pair = f" (often confused with {request.confused_with!r})" if request.confused_with else ""
        messages = copy.deepcopy(request.messages) + [
            {"role": "user", "content": EVOKD_ANALYSIS_PROMPT.format(label=request.label, pair=pair)}
        ]

        analysis, error = await self._call(
            client,
            messages,
            parse_analysis_answer,
            tally,
            schema=None,
            max_new_tokens=self.evokd_analysis_tokens,
            temperature=0.3,
            seed=request.seed,
        )
        if error is not None:
            tally.faults["evokd_analysis_failed"] += 1
            return ""
        tally.faults["evokd_analysis"] += 1
        return analysis
