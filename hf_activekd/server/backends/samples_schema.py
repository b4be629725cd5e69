"""Reading a samples schema (:func:`~hf_activekd.teachers.samples_schema`): the labels, how many examples, how long."""

from __future__ import annotations

from typing import Any


def schema_labels(schema: dict[str, Any] | None) -> list[str]:
    """The label enum of a :func:`~hf_activekd.teachers.samples_schema` schema (empty when there is none)."""
    try:
        enum = schema["properties"]["examples"]["items"]["properties"]["label"]["enum"]  # type: ignore[index]
        return [str(v) for v in enum]
    except (KeyError, TypeError):
        return []


def schema_max_items(schema: dict[str, Any] | None, default: int = 1) -> int:
    """The ``maxItems`` of the examples array of a samples schema (``default`` when absent)."""
    try:
        return max(1, int(schema["properties"]["examples"]["maxItems"]))  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return default


def _text_limits(schema: dict[str, Any] | None) -> tuple[int, int | None]:
    try:
        props = schema["properties"]["examples"]["items"]["properties"]["text"]  # type: ignore[index]
        return int(props.get("minLength", 0)), props.get("maxLength")
    except (KeyError, TypeError, ValueError):
        return 0, None
