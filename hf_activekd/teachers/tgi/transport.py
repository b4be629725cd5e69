"""The transport of :class:`~hf_activekd.teachers.tgi.TGITeacher`: one async client per batch, one logical request
sent with retries (backoff, ``Retry-After``, another seed after an unusable answer), the chat-to-``text_generation``
fallback, and the tally of what each request cost against the budget."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transformers.utils import logging

from ..budget import TeacherBudget
from .answers import _ContentError
from .retries import _classify, _describe_error, backoff_delay
from .routes import _estimate_tokens, send_request

logger = logging.get_logger(__name__)


@dataclass
class _Tally:
    """What one request (all its attempts) cost and met."""

    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated_tokens: int = 0
    faults: Counter = field(default_factory=Counter)


class _TransportMixin:
    """Sending requests for :class:`~hf_activekd.teachers.tgi.TGITeacher`, which sets these attributes."""

    name: str
    budget: TeacherBudget
    max_attempts: int
    timeout_s: float
    backoff_base_s: float
    backoff_max_s: float
    use_chat: bool | None
    _target: str
    _token: str | None
    _implicit_token: bool
    _chat_supported: bool
    _fallback_logged: bool
    _budget_warned: bool
    scrub: Callable[[str], str]
    usage: dict[str, Any]

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

    @staticmethod
    def _run(coroutine: Any) -> Any:
        """Run a coroutine to completion, in a fresh thread when an event loop is already running here."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    async def _call(
        self,
        client: Any,
        messages: list[dict[str, Any]],
        parse: Callable[[str], Any],
        tally: _Tally,
        *,
        schema: dict[str, Any] | None,
        max_new_tokens: int,
        temperature: float | None,
        seed: int,
    ) -> tuple[Any, str | None]:
        """Send one logical request with retries; returns ``(parse(answer), None)`` or ``(None, error)``.

        ``parse`` raises :class:`_ContentError` for an unusable answer, which is retried with another seed; the
        tokens, cost, attempts and faults of every attempt are added to ``tally``.
        """
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
                    send_request(
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
        """:func:`~.retries.backoff_delay` with this teacher's ``backoff_base_s`` and ``backoff_max_s``."""
        return backoff_delay(attempt, retry_after, self.backoff_base_s, self.backoff_max_s)

    def _warn_budget(self) -> None:
        if not self._budget_warned:
            self._budget_warned = True
            logger.warning(
                f"Teacher budget exhausted ({self.budget.exhausted_reason}): no more requests will be sent; "
                f"training continues with the data it has. Usage: {self.usage}"
            )
