"""The JSON schema a request carries: TGI's ``parameters.grammar`` or OpenAI's ``response_format``.

The backend gets the schema and enforces it (constrained decoding or validate-and-retry); these helpers only read it.
Each raises `ValueError` with the reason when the request's value is not a usable JSON schema.
"""

from __future__ import annotations

import json
from typing import Any


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


def _grammar_schema(grammar: Any) -> dict[str, Any] | None:
    """The schema of a TGI ``parameters.grammar`` (``{"type": "json", "value": schema}``); `None` without one."""
    if not grammar:
        return None
    if not isinstance(grammar, dict) or grammar.get("type") not in ("json", "json_object"):
        raise ValueError("only JSON grammars are supported")
    try:
        return _schema_from(grammar.get("value"))
    except ValueError as err:
        raise ValueError(f"invalid grammar: {err}") from None
