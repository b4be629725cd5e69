"""Which failures of a teacher request are worth retrying, how long to wait, and how to describe them.

Retried: HTTP 408/425/429/5xx (:data:`RETRYABLE_STATUS`), timeouts, connection errors and answers that are not
HTTP replies at all. The wait is full-jitter exponential backoff (:func:`backoff_delay`), never shorter than the
server's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from datetime import datetime, timezone
from typing import Any

try:  # huggingface_hub >= 2 ships its own httpx fork
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - huggingface_hub 1.x
    import httpx as _httpx  # type: ignore[no-redef]


RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def backoff_delay(attempt: int, retry_after: float | None, base_s: float, max_s: float) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``: full-jitter exponential backoff, at least ``Retry-After``.

    The ceiling is ``base_s * 2 ** (attempt - 1)``, at most ``max_s``; the wait is uniform below it. Returns `None`
    when the server asks to wait more than ten times ``max_s`` (at least 10 s): give up rather than hang.
    """
    ceiling = min(max_s, base_s * (2 ** (attempt - 1)))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        if retry_after > 10 * max(max_s, 1.0):
            return None
        delay = max(delay, retry_after)
    return delay


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
