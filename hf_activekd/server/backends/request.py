"""The request a backend sees and the faults it can ask the server to play out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BackendRequest:
    """A generation request as the backend sees it, whatever the HTTP route.

    Args:
        messages (`list[dict]`, *optional*):
            Chat messages (``/v1/chat/completions``); `None` for the TGI routes.
        prompt (`str`, *optional*):
            The raw prompt (TGI ``/`` and ``/generate``); `None` for the chat route.
        schema (`dict`, *optional*):
            The JSON schema the answer must follow (TGI ``grammar`` or OpenAI ``response_format``), if any.
        max_new_tokens (`int`, *optional*):
            Generation budget asked by the client.
        temperature (`float`, *optional*):
            Sampling temperature asked by the client.
        seed (`int`, *optional*):
            Sampling seed asked by the client.
        route (`str`, defaults to `""`):
            The HTTP route the request came from (``"/v1/chat/completions"``, ``"/generate"``, ``"/"``).
        index (`int`, defaults to 0):
            Arrival order of the request at the server (0-based), over the server's lifetime.
        prompt_tokens (`int`, *optional*):
            Set by a backend that counts tokens itself (the real model): reported in ``usage``.
        completion_tokens (`int`, *optional*):
            Likewise, for the answer (all attempts of a validate-and-retry backend included).
    """

    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    schema: dict[str, Any] | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    route: str = ""
    index: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def text(self) -> str:
        """The request as one string (the prompt, or the messages' contents joined)."""
        if self.prompt is not None:
            return self.prompt
        return "\n".join(str(m.get("content", "")) for m in self.messages or [])


@dataclass
class Fault:
    """A fault the server injects instead of (or before) answering.

    Args:
        status (`int`, *optional*):
            Answer with this HTTP status (e.g. 429, 503) and ``body``, after ``delay_s``.
        retry_after (`float`, *optional*):
            Value of the ``Retry-After`` header (seconds) sent with ``status``.
        body (`str`, defaults to `""`):
            Body of the error reply (a JSON ``{"error": ...}`` when empty).
        delay_s (`float`, defaults to 0.0):
            Sleep this long before answering (a client with a shorter timeout sees a timeout).
        then (`str | Fault`, *optional*):
            After the delay, and when ``status`` is `None`: answer with this text (a string, e.g. malformed JSON) or
            apply this fault; `None` means the backend's default answer.
        headers (`dict[str, str]`, *optional*):
            Extra headers of the error reply.

    Example:

    ```python
    >>> Fault(status=429, retry_after=1.0)   # "too many requests, retry in 1 s"
    >>> Fault(delay_s=5.0)                   # answer normally, 5 s late
    >>> Fault(delay_s=0.5, then='{"examples": [')  # late and truncated
    ```
    """

    status: int | None = None
    retry_after: float | None = None
    body: str = ""
    delay_s: float = 0.0
    then: str | Fault | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """A short name of the fault for the server's statistics (``"http_429"``, ``"delay"``)."""
        return f"http_{self.status}" if self.status is not None else "delay"
