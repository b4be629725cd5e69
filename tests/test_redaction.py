"""Redaction: no token, secret-looking key or credentialed URL of a teacher description reaches a card."""

from __future__ import annotations

from card_testing import SECRET, card_inputs

from hf_activekd.card import build_model_card
from hf_activekd.redaction import public_description


def test_no_secret_from_the_teacher_description_reaches_the_card():
    teacher = {
        "name": "llama",
        "type": "TGITeacher",
        "endpoint": f"https://user:{SECRET}@tgi.example.com:8080/v1?api_key=sk-abcdef",
        "token": SECRET,
        "api_key": "sk-abcdef",
        "headers": {"Authorization": f"Bearer {SECRET}"},
        "max_total_tokens": 1000,
    }
    assert "max_total_tokens" in public_description(teacher) and "token" not in public_description(teacher)
    card = str(build_model_card(card_inputs(teacher=teacher), secrets=[SECRET]))
    assert SECRET not in card and "sk-abcdef" not in card and "user:" not in card
    assert "tgi.example.com:8080" in card and "- `max_total_tokens`: 1000" in card
