"""Markdown of the cards: hostile text becomes one safe table cell."""

from __future__ import annotations

import re

from card_testing import card_inputs

from hf_activekd.card import build_model_card, escape_markdown_cell


def test_escape_markdown_cell_makes_hostile_text_one_safe_cell():
    text = "a | b\nnext line <script>alert(1)</script> `code` " + "long " * 50
    cell = escape_markdown_cell(text, max_chars=80)
    assert "\n" not in cell and "<script>" not in cell and "&lt;script&gt;" in cell
    assert re.search(r"(?<!\\)\|", cell) is None  # every pipe escaped
    assert cell.endswith("…") and len(cell) < 120

    inputs = card_inputs(rows=[{"text": text, "label": "a", "round": 0, "reason": "x|y", "teacher": "t"}])
    card = str(build_model_card(inputs))
    example_rows = [line for line in card.splitlines() if line.startswith("| 0 | a |")]
    assert len(example_rows) == 1 and example_rows[0].count(" | ") == 3  # still four cells
