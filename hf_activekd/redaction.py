"""Keep secrets out of what is written or published: known tokens, Hub-token-looking strings, credentials in URLs,
and secret-looking keys of a teacher description."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .utils import strip_url_credentials

_SECRET_KEY = re.compile(
    r"(^|[_-])(token|secret|password|passwd|api[_-]?key|authorization|auth|headers?|cookies?|credentials?)$", re.I
)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s)\]>'\"`|]+")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{16,}\b")


def _redact_url(url: str) -> str:
    try:
        return strip_url_credentials(url)
    except ValueError:
        return "<url>"


def known_secrets(extra: Sequence[str | None] = ()) -> list[str]:
    """The tokens this process knows (``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN``, the stored token, ``extra``)."""
    secrets = [os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN"), *extra]
    try:
        from huggingface_hub import get_token

        secrets.append(get_token())
    except Exception:  # noqa: BLE001 - no token is fine
        pass
    return sorted({s for s in secrets if isinstance(s, str) and len(s) >= 6}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove known secrets, Hub-token-looking strings and credentials in URLs from ``text``."""
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    text = _HF_TOKEN.sub("<redacted>", text)
    return _URL.sub(lambda m: _redact_url(m.group(0)) if "@" in m.group(0) else m.group(0), text)


def public_description(description: Mapping[str, Any]) -> dict[str, Any]:
    """A teacher description without secret-looking keys, and with URLs stripped of credentials and queries."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return _URL.sub(lambda m: _redact_url(m.group(0)), value)
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return clean(dict(description))
