"""HTTP plumbing of the teacher server: the threading server, and a request handler that reads and writes JSON,
errors and injected faults. Knows nothing of the routes (see :mod:`~hf_activekd.server.handler`)."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from transformers.utils import logging

if TYPE_CHECKING:
    from .backends.request import Fault

logger = logging.get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


class _HTTPError(Exception):
    """Raised by a route to answer with an error: HTTP ``status``, ``message`` and TGI's ``error_type``."""

    def __init__(self, status: int, message: str, error_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when a client opens many at once (the kernel then retries
    # the connection after a second): keep it as large as a real server's.
    request_queue_size = 1024
    daemon_threads = True
    block_on_close = False


class _JSONHandler(BaseHTTPRequestHandler):
    """A request handler of the teacher server: JSON in, JSON (or an error, or a fault) out.

    ``teacher_server`` is set on the subclass that :class:`~hf_activekd.server.TeacherServer` builds; errors are
    counted there.
    """

    teacher_server: Any
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
