"""The :class:`TGITeacher` itself: construction, concurrent generation and verification, the answer cache, records.

How requests are sent and retried lives in :mod:`.transport`, the health check in :mod:`.health`, the EvoKD steps
in :mod:`.evokd`, answer parsing in :mod:`.answers`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm
from transformers.utils import logging

from ...auth import implicit_token_allowed
from ...utils import strip_url_credentials
from ..base import AnswerHook, LabelAnswer, LabelQuery, Teacher, TeacherRequest, TeacherResponse
from ..budget import TeacherBudget
from ..cache import ResponseCache
from .answer_cache import _AnswerCacheMixin
from .answers import parse_labels_answer, parse_samples_answer
from .evokd import _EvoKDMixin
from .health import _HealthCheckMixin
from .transport import _Tally, _TransportMixin

logger = logging.get_logger(__name__)

_TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{6,}")
_BEARER_PATTERN = re.compile(r"(?i)(bearer\s+)\S+")


def strip_url(url: str) -> str:
    """A URL without credentials, query, fragment or trailing slash (safe to print and record)."""
    return strip_url_credentials(url).rstrip("/")


class TGITeacher(_AnswerCacheMixin, _EvoKDMixin, _HealthCheckMixin, _TransportMixin, Teacher):
    """A teacher LLM behind TGI, an Inference Endpoint, a Hub model id or any OpenAI-compatible server.

    Args:
        model_or_url (`str`):
            A URL (TGI server, Inference Endpoint, OpenAI-compatible base URL such as ``http://host:8000/v1``) or a
            Hub model id (served by Inference Providers).
        token (`str`, *optional*):
            Hugging Face (or provider) token, sent to ``model_or_url`` whatever its host. When not given, the stored
            token (``HF_TOKEN``, saved login) is sent only to Hugging Face over https (the Hub, Inference Providers,
            ``*.endpoints.huggingface.cloud``, the ``HF_ENDPOINT`` host) and for a model id; any other server gets no
            ``Authorization`` header (see :mod:`hf_activekd.auth`). Never logged, stored or recorded.
        max_concurrency (`int`, defaults to 8):
            Requests in flight at once.
        timeout_s (`float`, defaults to 60.0):
            Per-attempt timeout in seconds.
        max_attempts (`int`, defaults to 4):
            Attempts per request (retries on 408/429/5xx, timeouts, connection errors, malformed or empty answers).
        backoff_base_s (`float`, defaults to 0.5):
            First backoff ceiling; doubles with each retry (full jitter: the wait is uniform below the ceiling).
        backoff_max_s (`float`, defaults to 30.0):
            Largest backoff ceiling. A ``Retry-After`` from the server is honoured even when larger (up to 10x this).
        price_per_million_input_tokens (`float`, *optional*):
            Price of a million prompt tokens, for ``cost`` and ``max_cost``.
        price_per_million_output_tokens (`float`, *optional*):
            Price of a million completion tokens.
        max_total_tokens (`int`, *optional*):
            Lifetime budget of prompt plus completion tokens.
        max_requests (`int`, *optional*):
            Lifetime budget of HTTP requests (retries and EvoKD analysis calls included).
        max_cost (`float`, *optional*):
            Lifetime budget of cost (needs prices).
        cache_dir (`str`, *optional*):
            Folder of the disk cache of answers; no cache when `None`. Entries are keyed by the teacher's identity
            (``name`` when given, else the model id or the endpoint) and the request's fingerprint: give a local
            server that changes port between runs a ``name`` to keep its cache.
        use_chat (`bool`, *optional*):
            `True`: chat route only; `False`: ``text_generation`` only; `None` (default): chat, falling back to
            ``text_generation`` when the server has no chat route.
        name (`str`, *optional*):
            Name in records and cards; defaults to the model id or the endpoint's host.
        evokd (`bool`, defaults to `False`):
            Analysis of the student's weaknesses first, then generation with the analysis and a memory of earlier
            samples of the class in the prompt.
        max_new_tokens (`int`, *optional*):
            Overrides the requests' ``max_new_tokens``.
        temperature (`float`, *optional*):
            Overrides the requests' ``temperature``.
        evokd_analysis_tokens (`int`, defaults to 192):
            Generation budget of an EvoKD analysis.
        evokd_memory_shown (`int`, defaults to 5):
            Earlier samples of the class shown in an EvoKD prompt.

    Example:

    ```python
    >>> teacher = TGITeacher("http://localhost:8080", max_concurrency=16, max_total_tokens=200_000)
    >>> teacher.check()
    >>> responses = teacher.generate(requests)
    >>> teacher.usage
    {'requests': 32, 'prompt_tokens': 24576, 'completion_tokens': 9140, 'total_tokens': 33716, 'cost': 0.0, ...}
    ```
    """

    is_simulation = False

    def __init__(
        self,
        model_or_url: str,
        token: str | None = None,
        *,
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        max_attempts: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        price_per_million_input_tokens: float | None = None,
        price_per_million_output_tokens: float | None = None,
        max_total_tokens: int | None = None,
        max_requests: int | None = None,
        max_cost: float | None = None,
        cache_dir: str | None = None,
        use_chat: bool | None = None,
        name: str | None = None,
        evokd: bool = False,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        evokd_analysis_tokens: int = 192,
        evokd_memory_shown: int = 5,
    ):
        if not model_or_url:
            raise ValueError("TGITeacher needs a URL or a model id.")
        if max_concurrency < 1 or max_attempts < 1:
            raise ValueError("max_concurrency and max_attempts must be at least 1.")
        self._target = model_or_url
        self._token = token
        # Without an explicit token, the stored one goes to Hugging Face hosts only (hf_activekd.auth).
        self._implicit_token = token is None and implicit_token_allowed(model_or_url)
        self.is_url = model_or_url.startswith(("http://", "https://"))
        self.endpoint = strip_url(model_or_url) if self.is_url else None
        self.model_id = None if self.is_url else model_or_url
        self._explicit_name = name
        if name is None:
            name = (urlsplit(self.endpoint).netloc or self.endpoint) if self.is_url else model_or_url
        self.name = name
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = float(timeout_s)
        self.max_attempts = int(max_attempts)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.use_chat = use_chat
        self._chat_supported = use_chat is not False
        self.evokd = evokd
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.evokd_analysis_tokens = evokd_analysis_tokens
        self.evokd_memory_shown = evokd_memory_shown
        self.budget = TeacherBudget(
            max_requests=max_requests,
            max_total_tokens=max_total_tokens,
            max_cost=max_cost,
            price_per_million_input_tokens=price_per_million_input_tokens,
            price_per_million_output_tokens=price_per_million_output_tokens,
        )
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self.memory: dict[str, list[str]] = {}
        self._budget_warned = False
        self._fallback_logged = False

    def __repr__(self) -> str:
        return f"TGITeacher({self.endpoint or self.model_id!r}, max_concurrency={self.max_concurrency})"

    # ------------------------------------------------------------------ public helpers
    @property
    def usage(self) -> dict[str, Any]:
        """Lifetime usage: requests, prompt_tokens, completion_tokens, total_tokens, cost, cache_hits, estimated_tokens
        (the part of the tokens that is a worst-case estimate, for timed-out attempts)."""
        return self.budget.usage.to_dict()

    @property
    def uses_chat(self) -> bool:
        """Whether requests currently go to the chat route (`False` after a fallback to ``text_generation``)."""
        return self._chat_supported

    def scrub(self, text: str) -> str:
        """``text`` with the token, bearer credentials and URL credentials removed."""
        text = str(text)
        if self._token:
            text = text.replace(self._token, "***")
        text = _TOKEN_PATTERN.sub("hf_***", text)
        text = _BEARER_PATTERN.sub(r"\1***", text)
        if self.is_url and self._target != self.endpoint:
            text = text.replace(self._target.rstrip("/"), self.endpoint or "")
        return text

    # ------------------------------------------------------------------ generation
    def generate(
        self, requests: list[TeacherRequest], progress: bool = True, on_answer: AnswerHook | None = None
    ) -> list[TeacherResponse]:
        """Answer every request (concurrently), in order. Never raises for a failed request. ``on_answer`` is called
        with each response the moment it is complete."""
        if not requests:
            return []
        start = time.perf_counter()
        responses = self._run(self._generate_all(list(requests), progress, on_answer))
        failed = sum(r.error is not None for r in responses)
        faults: Counter = Counter()
        for response in responses:
            faults.update(response.faults)
        logger.info(
            f"Teacher {self.name}: {len(responses)} requests in {time.perf_counter() - start:.1f}s, {failed} failed, "
            f"{sum(r.prompt_tokens for r in responses)}+{sum(r.completion_tokens for r in responses)} tokens"
            + (f", faults {dict(faults)}" if faults else "")
        )
        return responses

    async def _generate_all(
        self, requests: list[TeacherRequest], progress: bool, on_answer: AnswerHook | None = None
    ) -> list[TeacherResponse]:
        client = self._client()
        semaphore = asyncio.Semaphore(self.max_concurrency)
        analyses: dict[str, asyncio.Task] = {}
        bar = tqdm(total=len(requests), desc=f"Teacher {self.name}", unit="req", disable=not progress)

        async def one(request: TeacherRequest) -> TeacherResponse:
            try:
                response = await self._answer(client, semaphore, request, analyses)
            except Exception as err:  # noqa: BLE001 - a bug must not kill the round
                logger.warning(f"Teacher request {request.key} failed unexpectedly: {self.scrub(repr(err))}")
                response = TeacherResponse(
                    key=request.key, error=self.scrub(f"internal error: {err!r}"), faults={"internal_error": 1}
                )
            bar.update(1)
            if on_answer is not None:
                on_answer(response)
            return response

        try:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        finally:
            bar.close()
            await client.close()

    def label(self, queries: list[LabelQuery], progress: bool = False) -> list[LabelAnswer]:
        """Teacher verification: one constrained request per query (``{"labels": [...]}`` with an enum of the query's
        label options), sent concurrently like generation requests, greedy, with the same retries and budget (a query
        the budget cannot cover gets ``error="budget exhausted"``). Not cached: answers are small and cheap."""
        return self._run(self._label_all(list(queries))) if queries else []

    async def _label_all(self, queries: list[LabelQuery]) -> list[LabelAnswer]:
        client = self._client()
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(query: LabelQuery) -> LabelAnswer:
            tally = _Tally()

            def parse(text: str) -> list[str]:
                return parse_labels_answer(text, query)

            async with semaphore:
                labels, error = await self._call(
                    client,
                    query.messages,
                    parse,
                    tally,
                    schema=query.json_schema,
                    max_new_tokens=query.max_new_tokens,
                    temperature=0.0,
                    seed=query.seed,
                )
            return LabelAnswer(
                key=query.key,
                labels=list(labels or []),
                prompt_tokens=tally.prompt_tokens,
                completion_tokens=tally.completion_tokens,
                cost=tally.cost,
                attempts=tally.attempts,
                error=error,
                faults=dict(tally.faults),
            )

        try:
            return list(await asyncio.gather(*(one(q) for q in queries)))
        finally:
            await client.close()

    async def _answer(
        self,
        client: Any,
        semaphore: asyncio.Semaphore,
        request: TeacherRequest,
        analyses: dict[str, asyncio.Task],
    ) -> TeacherResponse:
        key = self._cache_key(request)
        cached = self._cached_answer(request, key)
        if cached is not None:
            self._remember(request.label, [s.text for s in cached.samples])
            return cached
        tally = _Tally()
        start = time.perf_counter()
        async with semaphore:
            messages = request.messages
            if self.evokd:
                messages = await self._evokd_messages(client, request, analyses, tally)

            def parse(text: str) -> list:
                return parse_samples_answer(text, request.label, tally.faults)

            samples, error = await self._call(
                client,
                messages,
                parse,
                tally,
                schema=request.json_schema or None,
                max_new_tokens=self.max_new_tokens or request.max_new_tokens,
                temperature=self.temperature if self.temperature is not None else request.temperature,
                seed=request.seed,
            )
        response = TeacherResponse(
            key=request.key,
            samples=samples or [],
            prompt_tokens=tally.prompt_tokens,
            completion_tokens=tally.completion_tokens,
            latency_s=time.perf_counter() - start,
            attempts=tally.attempts,
            error=error,
            faults=dict(tally.faults),
            cost=tally.cost,
            estimated_tokens=tally.estimated_tokens,
        )
        if error is None:
            self._remember(request.label, [s.text for s in response.samples])
            self._cache_answer(request, key, response)
        return response

    # ------------------------------------------------------------------ records
    def describe(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "name": self.name,
            "type": type(self).__name__,
            "simulation": False,
            "endpoint": self.endpoint,
            "model_id": self.model_id,
            "route": "chat_completion" if self._chat_supported else "text_generation",
            "max_concurrency": self.max_concurrency,
            "max_attempts": self.max_attempts,
            "timeout_s": self.timeout_s,
            "evokd": self.evokd,
            "price_per_million_input_tokens": budget.price_per_million_input_tokens,
            "price_per_million_output_tokens": budget.price_per_million_output_tokens,
            "max_total_tokens": budget.max_total_tokens,
            "max_requests": budget.max_requests,
            "max_cost": budget.max_cost,
            "usage": self.usage,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "usage": self.budget.state_dict(),
            "chat_supported": self._chat_supported,
            "evokd_memory": {label: texts[-50:] for label, texts in self.memory.items()} if self.evokd else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "usage" in state:
            self.budget.load_state_dict(state["usage"])
        if self.use_chat is None and "chat_supported" in state:
            self._chat_supported = bool(state["chat_supported"])
        for label, texts in (state.get("evokd_memory") or {}).items():
            self.memory[label] = [str(t) for t in texts]
