"""Small helpers shared across the package. Imports nothing from the package (the bottom layer)."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def atomic_write_text(path: str | os.PathLike, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename (readers never see a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def strip_url_credentials(url: str) -> str:
    """``https://user:pass@host:8080/path?token=x#f`` becomes ``https://host:8080/path`` (no user info, query or
    fragment). Raises `ValueError` for a URL that cannot be parsed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def forward_params(model) -> set[str] | None:
    """Named parameters of the ``forward`` of ``model``, unwrapped from DDP (``.module``) and peft
    (``get_base_model``); None when the signature cannot be read."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    return {name for name, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
