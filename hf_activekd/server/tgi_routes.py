"""TGI's routes: ``POST /`` and ``POST /generate`` (``{"inputs": str, "parameters": {...}}``), and their streaming
form (``"stream": true`` on ``/``, always on ``POST /generate_stream``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends.request import BackendRequest, Fault
from .http_plumbing import _HTTPError
from .json_grammar import _grammar_schema
from .streaming import _tokens_of

if TYPE_CHECKING:
    from .handler import _Handler
    from .teacher_server import Generation

TGI_PATHS = ("/", "/generate", "/generate_stream")


def generate(handler: _Handler, path: str) -> None:
    """Answer a TGI generation request on ``path`` (one of :data:`TGI_PATHS`)."""
    body = handler._read_json()
    inputs = body.get("inputs")
    if not isinstance(inputs, str):
        raise _HTTPError(422, "`inputs` must be a string", "validation")
    params = body.get("parameters") or {}
    try:
        schema = _grammar_schema(params.get("grammar"))
    except ValueError as err:
        raise _HTTPError(422, str(err), "validation") from None
    request = BackendRequest(
        prompt=inputs,
        schema=schema,
        max_new_tokens=params.get("max_new_tokens"),
        temperature=params.get("temperature"),
        seed=params.get("seed"),
        route=path,
    )
    stream = path == "/generate_stream" or (path == "/" and bool(body.get("stream")))
    answer = handler.teacher_server.generate(request)
    if isinstance(answer, Fault):
        handler._send_fault(answer)
        return
    if stream:
        handler._start_sse()
        pieces = _tokens_of(answer.text)
        for i, piece in enumerate(pieces):
            handler._event(_stream_event(answer, request, i, piece, last=i == len(pieces) - 1))
        return
    reply: dict[str, Any] = {"generated_text": answer.text}
    if params.get("details"):
        reply["details"] = _details(answer, request, prefill=bool(params.get("decoder_input_details")))
    headers = {"x-prompt-tokens": str(answer.prompt_tokens), "x-generated-tokens": str(answer.completion_tokens)}
    handler._send_json(200, [reply] if path == "/" else reply, headers)


def _finish_reason(answer: Generation) -> str:
    return "length" if answer.truncated else "eos_token"


def _details(answer: Generation, request: BackendRequest, prefill: bool) -> dict[str, Any]:
    """TGI's ``details`` of a reply (``prefill`` holds one empty token per prompt token when asked for)."""
    return {
        "finish_reason": _finish_reason(answer),
        "generated_tokens": answer.completion_tokens,
        "seed": request.seed,
        "prefill": [{"id": 0, "text": "", "logprob": None}] * answer.prompt_tokens if prefill else [],
        "tokens": [],
    }


def _stream_event(answer: Generation, request: BackendRequest, index: int, piece: str, last: bool) -> dict[str, Any]:
    """One TGI stream event; the last one carries the whole text and the details."""
    details = {
        "finish_reason": _finish_reason(answer),
        "generated_tokens": answer.completion_tokens,
        "input_length": answer.prompt_tokens,
        "seed": request.seed,
    }
    return {
        "index": index,
        "token": {"id": index, "text": piece, "logprob": 0.0, "special": False},
        "generated_text": answer.text if last else None,
        "details": details if last else None,
    }
