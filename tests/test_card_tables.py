"""The model card's tables: the teacher agreement column and its notes, only for rounds that verified."""

from __future__ import annotations

from card_testing import card_inputs

from hf_activekd.card import build_model_card


def test_teacher_agreement_column_only_when_a_round_verified():
    plain = str(build_model_card(card_inputs()))
    assert "Teacher agreement" not in plain
    inputs = card_inputs()
    inputs.rounds[1].update(
        verify_requests=2, verify_checked=4, verify_agreed=3, verify_agreement=0.75, verify_unverified=1
    )
    inputs.rounds[1].update(verify_failed_requests=1, verify_errors={"budget exhausted": 1})
    inputs.rounds[1]["dropped"] = {"disagreement": 1}
    card = str(build_model_card(inputs))
    header = next(line for line in card.splitlines() if line.startswith("| Round |"))
    assert "| Dropped (by reason) | Teacher agreement | Tokens in |" in header
    assert "| 0.75 (3/4) + 1 unverified |" in card and "1 (disagreement: 1)" in card
    assert "labelled as they were written" in card
    assert "1 of 2 verification requests failed (budget exhausted): their rows were kept unverified" in card
