"""Markdown helpers of the cards: safe table cells, inline code, numbers and tables."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any


def escape_markdown_cell(text: Any, max_chars: int = 120) -> str:
    """Make ``text`` safe inside a Markdown table cell: one line, at most ``max_chars`` characters, HTML escaped,
    pipes, backslashes and backticks escaped."""
    text = " ".join(str(text).split())
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    text = html.escape(text, quote=False)
    for char in ("\\", "|", "`", "*", "_", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def code_span(text: Any, max_chars: int = 200) -> str:
    """``text`` as an inline code span: one line, shortened, without backticks or pipes (escapes do not work there)."""
    text = " ".join(str(text).split()).replace("`", "'").replace("|", "/")
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return f"`{text}`"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
