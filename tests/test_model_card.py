"""Merging the distillation block and metadata into a card of someone else's."""

from __future__ import annotations

from card_testing import card_inputs
from huggingface_hub import ModelCard

from hf_activekd.card import BLOCK_START, build_model_card, merge_model_card


def test_merge_into_a_foreign_card_keeps_its_text():
    ours = build_model_card(card_inputs())
    foreign = ModelCard("---\nlicense: mit\ntags:\n- mine\n---\n\n# Mine\n\nMy own words.\n")
    merged = merge_model_card(foreign, ours, card_inputs())
    again = merge_model_card(ModelCard(str(merged)), build_model_card(card_inputs()), card_inputs())
    text = str(again)
    assert "My own words." in text and text.count(BLOCK_START) == 1
    assert again.data.license == "mit" and again.data.tags[:1] == ["mine"] and "hf-activekd" in again.data.tags
