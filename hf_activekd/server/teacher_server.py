"""The embedded teacher: a TGI-protocol HTTP server in a daemon thread, in front of a backend.

Tokens in ``usage`` and ``details`` are those the backend recorded on the request (``BackendRequest.prompt_tokens``
and ``completion_tokens``: the real model counts its own), else its ``count_tokens`` where it has one, else an
estimate (one token per 4 characters).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from transformers.utils import logging

from .backends.request import BackendRequest, Fault
from .handler import _Handler
from .http_plumbing import _Server

logger = logging.get_logger(__name__)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


@dataclass
class Generation:
    """A backend's answer with its token counts, ready for any route's reply.

    Args:
        text (`str`): The generated text.
        prompt_tokens (`int`): Tokens of the prompt (the backend's count, else counted, else estimated).
        completion_tokens (`int`): Tokens of the answer (likewise).
        truncated (`bool`): Whether the answer used the whole ``max_new_tokens`` (finish reason ``"length"``).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool


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

    def generate(self, request: BackendRequest) -> Generation | Fault:
        """Run the backend (:meth:`run_backend`) and count the tokens; returns the answer, or the :class:`Fault`."""
        result = self.run_backend(request)
        if isinstance(result, Fault):
            return result
        count = self.count_tokens
        prompt_tokens = request.prompt_tokens if request.prompt_tokens is not None else count(request.text)
        completion_tokens = request.completion_tokens if request.completion_tokens is not None else count(result)
        truncated = bool(request.max_new_tokens) and completion_tokens >= int(request.max_new_tokens)
        return Generation(result, prompt_tokens, completion_tokens, truncated)
