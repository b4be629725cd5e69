"""The OpenAI-compatible route: ``POST /v1/chat/completions`` (and ``/chat/completions``), plain or streamed.

``response_format`` may be ``{"type": "json_object", "value": schema}`` (what ``InferenceClient`` sends),
``{"type": "json", "value": schema}`` or ``{"type": "json_schema", "json_schema": {"schema": schema}}``. A streamed
answer ends with ``data: [DONE]``; its last chunk carries ``usage``.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from .backends.request import BackendRequest, Fault
from .http_plumbing import _HTTPError
from .json_grammar import _response_format_schema
from .streaming import _tokens_of

if TYPE_CHECKING:
    from .handler import _Handler

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
SYSTEM_FINGERPRINT = "hf-activekd-embedded"


def chat(handler: _Handler, path: str) -> None:
    """Answer a chat completion request on ``path`` (one of :data:`CHAT_PATHS`)."""
    body = handler._read_json()
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _HTTPError(422, "`messages` must be a list of objects", "validation")
    for m in messages:
        if isinstance(m.get("content"), list):  # OpenAI content parts: keep the text parts
            m["content"] = "".join(p.get("text", "") for p in m["content"] if isinstance(p, dict))
    try:
        schema = _response_format_schema(body.get("response_format"))
    except ValueError as err:
        raise _HTTPError(422, f"invalid response_format: {err}", "validation") from None
    request = BackendRequest(
        messages=messages,
        schema=schema,
        max_new_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
        temperature=body.get("temperature"),
        seed=body.get("seed"),
        route=path,
    )
    answer = handler.teacher_server.generate(request)
    if isinstance(answer, Fault):
        handler._send_fault(answer)
        return
    finish = "length" if answer.truncated else "stop"
    usage = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
    model = (
        body.get("model") if body.get("model") not in (None, "", "dummy", "tgi") else handler.teacher_server.model_id
    )
    envelope = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model}
    if body.get("stream"):
        handler._start_sse()
        pieces = _tokens_of(answer.text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            delta = {"role": "assistant", "content": piece}
            chunk = _completion(envelope, "chat.completion.chunk", "delta", delta, finish if last else None)
            if last:
                chunk["usage"] = usage
            handler._event(chunk)
        handler._event("[DONE]")
        return
    message = {"role": "assistant", "content": answer.text}
    handler._send_json(200, {**_completion(envelope, "chat.completion", "message", message, finish), "usage": usage})


def _completion(
    envelope: dict[str, Any], kind: str, field: str, content: dict[str, Any], finish: str | None
) -> dict[str, Any]:
    """A chat completion (``field="message"``) or a stream chunk (``field="delta"``) with one choice."""
    return {
        "id": envelope["id"],
        "object": kind,
        "created": envelope["created"],
        "model": envelope["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, field: content, "logprobs": None, "finish_reason": finish}],
    }
