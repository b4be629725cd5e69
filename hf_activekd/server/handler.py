"""The teacher server's request handler: which route answers which request.

Routes (the parts of TGI's and OpenAI's protocols that ``huggingface_hub.InferenceClient`` uses):

- ``POST /`` and ``POST /generate``: ``{"inputs": str, "parameters": {...}}``; ``parameters.grammar =
  {"type": "json", "value": schema}`` constrains the answer. Replies ``[{"generated_text": ..., "details": ...}]``
  on ``/`` (as TGI does) and ``{"generated_text": ..., "details": ...}`` on ``/generate``. With ``"stream": true`` on
  ``/``, and always on ``POST /generate_stream``, the answer comes as server-sent events, one token per event
  (:mod:`~hf_activekd.server.tgi_routes`).
- ``POST /v1/chat/completions``: the OpenAI chat shape; ``response_format`` ``{"type": "json_object", "value":
  schema}`` (what InferenceClient sends), ``{"type": "json", "value": schema}`` or ``{"type": "json_schema",
  "json_schema": {"schema": schema}}``; replies with ``choices[0].message.content`` and ``usage``. ``"stream": true``
  answers in server-sent events ending with ``data: [DONE]`` (:mod:`~hf_activekd.server.openai_routes`).
- ``GET /info`` (model id and server limits), ``GET /health`` (200 when up), ``GET /v1/models``.

Request headers (the client's token) are never logged or stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers.utils import logging

from . import openai_routes, tgi_routes
from .http_plumbing import _HTTPError, _JSONHandler
from .streaming import _SSEMixin

if TYPE_CHECKING:
    from .teacher_server import TeacherServer

logger = logging.get_logger(__name__)


class _Handler(_SSEMixin, _JSONHandler):
    teacher_server: TeacherServer

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
            if path in tgi_routes.TGI_PATHS:
                tgi_routes.generate(self, path)
            elif path in openai_routes.CHAT_PATHS and server.chat_route:
                openai_routes.chat(self, path)
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
