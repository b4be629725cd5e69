"""The production teacher: a TGI server, an Inference Endpoint, a Hub model id or any OpenAI-compatible server.

:class:`TGITeacher` talks to the server through one ``huggingface_hub.AsyncInferenceClient`` and is built to be fast,
frugal and unbreakable:

- **fast**: all requests of a round run concurrently, at most ``max_concurrency`` at a time, so a round of ``n``
  requests of latency ``L`` takes about ``ceil(n / max_concurrency) * L``;
- **structured**: answers are requested as JSON that follows the request's schema, through ``chat_completion`` with
  ``response_format={"type": "json_object", "value": schema}``; a server without the chat route (404/405) is switched
  to ``text_generation`` with a JSON ``grammar`` for the rest of the teacher's life;
- **robust**: invalid JSON is repaired where that is safe (code fences, chatter around the object, a truncated list:
  the complete items are kept) or retried with another seed; HTTP 408/429/5xx, timeouts and connection errors are
  retried with exponential backoff and full jitter, honouring ``Retry-After``, at most ``max_attempts`` times; a
  request that still fails gets ``error`` set on its response and the round goes on. Every fault is counted by kind;
- **frugal**: token usage comes from the server's ``usage`` (or TGI's details); optional prices turn it into a cost;
  lifetime budgets on requests, tokens and cost stop the sending exactly at the limit (see
  :class:`~hf_activekd.teachers.budget.TeacherBudget`), with one warning, while training goes on; a disk cache keyed by
  the request's fingerprint (model, messages, parameters, seed) means a resumed run pays nothing for what was answered;
- **safe**: the token never appears in logs, errors, records, cache files or :meth:`describe`; the stored token is
  sent only to Hugging Face hosts (an explicit ``token=`` goes wherever the URL points).

The EvoKD option (``evokd=True``) first asks the teacher for a short analysis of the student's weaknesses for the
class, then asks for samples with that analysis and with a few of the texts already written for the class (asking for
different ones) in the prompt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import email.utils
import json
import random
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm
from transformers.utils import logging

from ..auth import implicit_token_allowed
from ..utils import strip_url_credentials
from .base import (
    AnswerHook,
    LabelAnswer,
    LabelQuery,
    Teacher,
    TeacherRequest,
    TeacherResponse,
    TeacherUnavailableError,
    parse_labels,
    parse_samples,
)
from .budget import TeacherBudget
from .cache import ResponseCache

try:  # huggingface_hub >= 2 ships its own httpx fork
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - huggingface_hub 1.x
    import httpx as _httpx  # type: ignore[no-redef]


logger = logging.get_logger(__name__)

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
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
_TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{6,}")
_BEARER_PATTERN = re.compile(r"(?i)(bearer\s+)\S+")


def strip_url(url: str) -> str:
    """A URL without credentials, query, fragment or trailing slash (safe to print and record)."""
    return strip_url_credentials(url).rstrip("/")


def messages_to_prompt(messages: list[dict[str, Any]]) -> str:
    """The tokenizer-free prompt used on the ``text_generation`` route: role-prefixed blocks, then ``Assistant:``.

    ```
    System: <system message>

    User: <user message>

    Assistant:
    ```
    """
    blocks = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n\n".join(blocks + ["Assistant:"])


def _estimate_tokens(text: str) -> int:
    """A conservative token estimate (one token per 3 characters) for reservations and servers without usage."""
    return len(text) // 3 + 1 if text else 0


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


@dataclass
class _Tally:
    """What one request (all its attempts) cost and met."""

    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated_tokens: int = 0
    faults: Counter = field(default_factory=Counter)


class TGITeacher(Teacher):
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

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers

        token = self._token if self._token is not None else (None if self._implicit_token else False)
        try:
            return build_hf_headers(token=token)
        except Exception:  # noqa: BLE001 - no token at all is fine for a local server
            return {}

    def check(self) -> None:
        """Raise :class:`TeacherUnavailableError` (naming the URL, never the token) when the teacher is unreachable.

        For a URL: ``GET /health`` (then ``/info``); any answer below 500 other than 401/403 means reachable. For a
        model id: a one-token request (not counted in the budget). A 5xx on ``/health`` means unhealthy; a server
        without either route (404) is reachable.
        """
        if not self.is_url:
            try:
                self._run(self._tiny_request())
            except Exception as err:  # noqa: BLE001
                raise TeacherUnavailableError(
                    f"Teacher model {self.model_id} is unavailable: {self.scrub(_describe_error(err))}"
                ) from None
            return
        base = self._target.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        for route in ("/health", "/info"):
            request = urllib.request.Request(base + route, headers=self._headers(), method="GET")
            try:
                with urllib.request.urlopen(request, timeout=min(self.timeout_s, 10.0)) as reply:
                    status = reply.status
            except urllib.error.HTTPError as err:
                status = err.code
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise TeacherUnavailableError(
                    f"Teacher server at {self.endpoint} is unreachable: {self.scrub(str(reason))}. "
                    "Start it (e.g. `hf-activekd serve-teacher`) or fix the URL."
                ) from None
            if status in (401, 403):
                raise TeacherUnavailableError(
                    f"Teacher server at {self.endpoint} refused the credentials (HTTP {status}): check the token."
                )
            if status >= 500:
                raise TeacherUnavailableError(
                    f"Teacher server at {self.endpoint} is not healthy (HTTP {status} on {route})."
                )
            if status not in (404, 405):
                return
        # Neither route exists (e.g. a bare OpenAI-compatible server): it answered, so it is reachable.

    def _client(self) -> Any:
        """A fresh ``AsyncInferenceClient`` that sends the token only where it may go.

        huggingface_hub 2.4 refuses ``token=False`` and, for a URL, falls back to the stored token; its providers drop
        headers whose value is `None` after merging the client's headers over the defaults, so ``authorization: None``
        removes the implicit token.
        """
        from huggingface_hub import AsyncInferenceClient

        withheld = self._token is None and not self._implicit_token
        headers = {"authorization": None} if withheld else None
        return AsyncInferenceClient(model=self._target, token=self._token, timeout=self.timeout_s, headers=headers)

    async def _tiny_request(self) -> None:
        client = self._client()
        try:
            await client.chat_completion([{"role": "user", "content": "Say OK."}], max_tokens=1)
        finally:
            await client.close()

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

    @staticmethod
    def _run(coroutine: Any) -> Any:
        """Run a coroutine to completion, in a fresh thread when an event loop is already running here."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

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
                try:
                    return parse_labels(extract_json(text)[0], query.label_options, len(query.texts))
                except ValueError as err:
                    raise _ContentError("malformed_labels", str(err)) from None

            async with semaphore:
                labels, error = await self._call(
                    client,
                    query.messages,
                    schema=query.json_schema,
                    max_new_tokens=query.max_new_tokens,
                    temperature=0.0,
                    seed=query.seed,
                    tally=tally,
                    parse=parse,
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

    def _cache_key(self, request: TeacherRequest) -> str:
        # The teacher's identity: its explicit name (stable even when a local server changes port between runs),
        # else the model id, else the endpoint without credentials.
        model = self._explicit_name or self.model_id or self.endpoint or ""
        if self.evokd:
            model += "#evokd"
        if self.max_new_tokens is not None or self.temperature is not None:
            model += f"#max_new_tokens={self.max_new_tokens}#temperature={self.temperature}"
        return request.fingerprint(model)

    async def _answer(
        self,
        client: Any,
        semaphore: asyncio.Semaphore,
        request: TeacherRequest,
        analyses: dict[str, asyncio.Task],
    ) -> TeacherResponse:
        key = self._cache_key(request) if self.cache is not None else None
        if self.cache is not None and key is not None:
            entry = self.cache.get(key)
            if entry is not None and isinstance(entry.get("response"), dict):
                self.budget.count_cache_hit()
                cached = TeacherResponse.from_dict(entry["response"])
                self._remember(request.label, [s.text for s in cached.samples])
                return TeacherResponse(
                    key=request.key, samples=cached.samples, attempts=0, cached=True, faults={"cache_hit": 1}
                )
        tally = _Tally()
        start = time.perf_counter()
        async with semaphore:
            messages = request.messages
            if self.evokd:
                messages = await self._evokd_messages(client, request, analyses, tally)

            def parse(text: str) -> list:
                try:
                    payload, repaired = extract_json(text)
                except ValueError as err:
                    kind = "empty_reply" if not text.strip() else "malformed_json"
                    raise _ContentError(kind, str(err)) from None
                try:
                    samples = parse_samples(payload, default_label=request.label)
                except ValueError as err:
                    raise _ContentError("malformed_json", str(err)) from None
                if not samples:
                    raise _ContentError("empty_reply", "the answer holds no samples")
                if repaired:
                    tally.faults["repaired_json"] += 1
                return samples

            samples, error = await self._call(
                client,
                messages,
                schema=request.json_schema or None,
                max_new_tokens=self.max_new_tokens or request.max_new_tokens,
                temperature=self.temperature if self.temperature is not None else request.temperature,
                seed=request.seed,
                tally=tally,
                parse=parse,
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
            if self.cache is not None and key is not None:
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
        return response

    async def _call(
        self,
        client: Any,
        messages: list[dict[str, Any]],
        *,
        schema: dict[str, Any] | None,
        max_new_tokens: int,
        temperature: float | None,
        seed: int,
        tally: _Tally,
        parse: Any,
    ) -> tuple[Any, str | None]:
        """Send one logical request with retries; returns ``(parsed, None)`` or ``(None, error)``."""
        prompt_estimate = sum(_estimate_tokens(str(m.get("content", ""))) + 4 for m in messages)
        content_retries = 0
        attempt = 0
        fallback_used = False
        while attempt < self.max_attempts:
            reservation = self.budget.reserve(prompt_estimate, int(max_new_tokens))
            if reservation is None:
                tally.faults["budget_exhausted"] += 1
                self._warn_budget()
                return None, "budget exhausted"
            attempt += 1
            tally.attempts += 1
            via_chat = self._chat_supported
            try:
                text, prompt_tokens, completion_tokens = await asyncio.wait_for(
                    self._send(
                        client, messages, schema, max_new_tokens, temperature, seed + 7919 * content_retries, via_chat
                    ),
                    timeout=self.timeout_s,
                )
            except Exception as err:  # noqa: BLE001 - classified below
                kind, retryable, retry_after, status = _classify(err)
                if kind == "timeout":  # the server may have generated (and billed) it all: count the worst case
                    tally.cost += self.budget.settle(reservation, prompt_estimate, int(max_new_tokens), estimated=True)
                    tally.prompt_tokens += prompt_estimate
                    tally.completion_tokens += int(max_new_tokens)
                    tally.estimated_tokens += prompt_estimate + int(max_new_tokens)
                else:
                    self.budget.settle(reservation, 0, 0)
                if via_chat and self.use_chat is None and status in (404, 405) and not fallback_used:
                    # No chat route: switch to text_generation for the rest of the teacher's life (free retry; a
                    # concurrent request may have switched already).
                    self._chat_supported = False
                    fallback_used = True
                    tally.faults["chat_fallback"] += 1
                    attempt -= 1
                    if not self._fallback_logged:
                        self._fallback_logged = True
                        logger.warning(
                            f"Teacher {self.name} has no chat route (HTTP {status}): using text_generation with a "
                            "JSON grammar from now on."
                        )
                    continue
                tally.faults[kind] += 1
                message = self.scrub(_describe_error(err))
                if not retryable:
                    return None, message
                if attempt >= self.max_attempts:
                    return None, f"{message} (after {attempt} attempts)"
                delay = self._backoff(attempt, retry_after)
                if delay is None:
                    return None, f"{message} (server asked to retry after {retry_after:.0f}s)"
                await asyncio.sleep(delay)
                continue
            tally.cost += self.budget.settle(reservation, prompt_tokens, completion_tokens)
            tally.prompt_tokens += prompt_tokens
            tally.completion_tokens += completion_tokens
            try:
                return parse(text), None
            except _ContentError as err:
                tally.faults[err.kind] += 1
                content_retries += 1
                if attempt >= self.max_attempts:
                    return None, f"{err.kind}: {self.scrub(str(err))} (after {attempt} attempts)"
        return None, "no attempt left"

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Full-jitter exponential backoff, at least ``Retry-After``; `None` when the server asks for too long."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        delay = random.uniform(0, ceiling)
        if retry_after is not None:
            if retry_after > 10 * max(self.backoff_max_s, 1.0):
                return None
            delay = max(delay, retry_after)
        return delay

    async def _send(
        self,
        client: Any,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        max_new_tokens: int,
        temperature: float | None,
        seed: int,
        via_chat: bool,
    ) -> tuple[str, int, int]:
        """One HTTP request; returns ``(text, prompt_tokens, completion_tokens)``."""
        if via_chat:
            output = await client.chat_completion(
                messages,
                response_format={"type": "json_object", "value": schema} if schema else None,
                max_tokens=int(max_new_tokens),
                temperature=temperature,
                seed=int(seed),
            )
            choices = getattr(output, "choices", None) or []
            text = (choices[0].message.content if choices and choices[0].message else None) or ""
            usage = getattr(output, "usage", None)
            prompt_tokens = getattr(usage, "prompt_tokens", None)
            completion_tokens = getattr(usage, "completion_tokens", None)
            if prompt_tokens is None:
                prompt_tokens = sum(_estimate_tokens(str(m.get("content", ""))) for m in messages)
            if completion_tokens is None:
                completion_tokens = _estimate_tokens(text)
            return text, int(prompt_tokens), int(completion_tokens)
        prompt = messages_to_prompt(messages)
        sampling = temperature is not None and temperature > 0
        output = await client.text_generation(
            prompt,
            grammar={"type": "json", "value": schema} if schema else None,
            details=True,
            decoder_input_details=True,
            max_new_tokens=int(max_new_tokens),
            do_sample=sampling,
            temperature=temperature if sampling else None,
            seed=int(seed),
            return_full_text=False,
        )
        if isinstance(output, str):
            return output, _estimate_tokens(prompt), _estimate_tokens(output)
        text = output.generated_text or ""
        details = output.details
        completion_tokens = getattr(details, "generated_tokens", None) if details else None
        prefill = getattr(details, "prefill", None) if details else None
        prompt_tokens = len(prefill) if prefill else _estimate_tokens(prompt)
        return text, int(prompt_tokens), int(completion_tokens if completion_tokens is not None else 0)

    def _warn_budget(self) -> None:
        if not self._budget_warned:
            self._budget_warned = True
            logger.warning(
                f"Teacher budget exhausted ({self.budget.exhausted_reason}): no more requests will be sent; "
                f"training continues with the data it has. Usage: {self.usage}"
            )

    # ------------------------------------------------------------------ EvoKD
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

        def parse(text: str) -> str:
            text = text.strip()
            if not text:
                raise _ContentError("empty_reply", "empty analysis")
            return text[:2000]

        analysis, error = await self._call(
            client,
            messages,
            schema=None,
            max_new_tokens=self.evokd_analysis_tokens,
            temperature=0.3,
            seed=request.seed,
            tally=tally,
            parse=parse,
        )
        if error is not None:
            tally.faults["evokd_analysis_failed"] += 1
            return ""
        tally.faults["evokd_analysis"] += 1
        return analysis

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


def _error_chain(err: BaseException) -> list[BaseException]:
    chain = []
    seen = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen and len(chain) < 8:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _status_of(err: BaseException) -> tuple[int | None, Any]:
    for e in _error_chain(err):
        response = getattr(e, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status, response
    return None, None


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _classify(err: BaseException) -> tuple[str, bool, float | None, int | None]:
    """``(fault kind, retryable, retry_after, status)`` of an exception raised by a request."""
    status, response = _status_of(err)
    if status is not None:
        return f"http_{status}", status in RETRYABLE_STATUS or status >= 500, _retry_after(response), status
    chain = _error_chain(err)
    if any(isinstance(e, (asyncio.TimeoutError, TimeoutError, _httpx.TimeoutException)) for e in chain):
        return "timeout", True, None, None
    if any(isinstance(e, (_httpx.TransportError, ConnectionError)) for e in chain):
        return "connection_error", True, None, None
    return "bad_response", True, None, None


def _describe_error(err: BaseException) -> str:
    status, response = _status_of(err)
    if status is not None:
        detail = ""
        try:
            payload = response.json()
            if isinstance(payload, dict):
                detail = str(payload.get("error") or payload.get("message") or "")
        except Exception:  # noqa: BLE001 - a body that is not JSON
            detail = (getattr(response, "text", "") or "")[:200]
        return f"HTTP {status}" + (f": {detail[:200]}" if detail else "")
    kind = _classify(err)[0]
    if kind == "timeout":
        return "timeout"
    message = str(err).splitlines()[0] if str(err) else ""
    return f"{kind}: {type(err).__name__}" + (f": {message[:200]}" if message else "")
