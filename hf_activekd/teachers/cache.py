"""A disk cache of teacher answers, so that a resumed or repeated run never pays twice for the same request.

Answers are keyed by :meth:`TeacherRequest.fingerprint` (model, messages, schema, parameters, seed): distinct seeds
give distinct keys, so caching never collapses the diversity of samples. One JSON file per key
(``<dir>/<key[:2]>/<key>.json``), written atomically (temporary file, then rename), so that concurrent writers and
crashes never leave a half-written entry. Only successful answers are stored, and only what a
:class:`TeacherResponse` holds (samples, token counts, cost): never a token or a request header.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ..utils import atomic_write_text

logger = logging.get_logger(__name__)


class ResponseCache:
    """One JSON file per answered request, under ``directory``.

    Args:
        directory (`str` or `os.PathLike`):
            Where the entries live; created if missing.

    Example:

    ```python
    >>> cache = ResponseCache("teacher_cache")
    >>> cache.put(request.fingerprint("my-model"), response.to_dict())
    >>> cache.get(request.fingerprint("my-model"))["samples"]
    ```
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        if not key or any(c not in "0123456789abcdef" for c in key.lower()):
            raise ValueError(f"cache keys are hex digests, got {key!r}")
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for ``key``, or `None` (a corrupt entry counts as absent)."""
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as err:
            logger.warning(f"Ignoring an unreadable teacher cache entry {path}: {err}")
            data = None
        with self._lock:
            if data is None:
                self.misses += 1
            else:
                self.hits += 1
        return data

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` (a JSON-serializable dict) under ``key``, atomically."""
        atomic_write_text(self._path(key), json.dumps(value, ensure_ascii=False))

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json"))
