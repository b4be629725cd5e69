"""Streaming answers as server-sent events (SSE), one pseudo-token per event, as TGI and OpenAI servers do."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any


def _tokens_of(text: str) -> list[str]:
    """Split an answer into pseudo-tokens for streaming (whitespace stays attached to the following word)."""
    return re.findall(r"\s*\S+|\s+$", text) or ([text] if text else [])


class _SSEMixin(BaseHTTPRequestHandler):
    """Server-sent events for a request handler: :meth:`_start_sse` once, then one :meth:`_event` per message."""

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
