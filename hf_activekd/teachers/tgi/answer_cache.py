"""The disk cache of :class:`~hf_activekd.teachers.tgi.TGITeacher`'s answers: a resumed run pays nothing for what was
already answered. Entries are keyed by the teacher's identity and the request's fingerprint; failed answers are
never stored."""

from __future__ import annotations

from datetime import datetime, timezone

from transformers.utils import logging

from ..base import TeacherRequest, TeacherResponse
from ..budget import TeacherBudget
from ..cache import ResponseCache

logger = logging.get_logger(__name__)


class _AnswerCacheMixin:
    """Cache look-ups for :class:`~hf_activekd.teachers.tgi.TGITeacher`, which sets these attributes."""

    cache: ResponseCache | None
    budget: TeacherBudget
    name: str
    model_id: str | None
    endpoint: str | None
    evokd: bool
    max_new_tokens: int | None
    temperature: float | None
    _explicit_name: str | None

    def _cache_key(self, request: TeacherRequest) -> str | None:
        """The request's cache key; `None` without a cache."""
        if self.cache is None:
            return None
        # The teacher's identity: its explicit name (stable even when a local server changes port between runs),
        # else the model id, else the endpoint without credentials.
        model = self._explicit_name or self.model_id or self.endpoint or ""
        if self.evokd:
            model += "#evokd"
        if self.max_new_tokens is not None or self.temperature is not None:
            model += f"#max_new_tokens={self.max_new_tokens}#temperature={self.temperature}"
        return request.fingerprint(model)

    def _cached_answer(self, request: TeacherRequest, key: str | None) -> TeacherResponse | None:
        """The cached answer to ``request`` (counted as a cache hit), or `None`."""
        if self.cache is None or key is None:
            return None
        entry = self.cache.get(key)
        if entry is None or not isinstance(entry.get("response"), dict):
            return None
        self.budget.count_cache_hit()
        cached = TeacherResponse.from_dict(entry["response"])
        return TeacherResponse(
            key=request.key, samples=cached.samples, attempts=0, cached=True, faults={"cache_hit": 1}
        )

    def _cache_answer(self, request: TeacherRequest, key: str | None, response: TeacherResponse) -> None:
        """Store a successful answer (a failed write is a warning, never an error)."""
        if self.cache is None or key is None:
            return
        try:
            self.cache.put(
                key,
                {
                    "teacher": self.name,
                    "request_key": request.key,
                    "created": datetime.now(timezone.utc).isoformat(),
                    "response": response.to_dict(),
                },
            )
        except OSError as err:
            logger.warning(f"Could not write the teacher cache: {err}")
