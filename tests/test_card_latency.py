"""Latency on the card: the teacher's per accepted sample against the student's, and a sharded student that is not
timed on the main process alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from card_testing import card_inputs, train_tiny

from hf_activekd.card import build_model_card, latency_section, teacher_latency


def test_cost_column_and_latency_ratio_for_a_real_teacher():
    inputs = card_inputs(
        answers={"r0000/a/0": {"latency_s": 1.0}, "r0000/b/0": {"latency_s": 1.0}, "r0001/a/0": {"latency_s": 2.0}},
        student_latency={"ms_per_sample": 2.0, "samples": 64, "batch_size": 16, "device": "cpu"},
    )
    measured = teacher_latency(inputs.rounds, inputs.answers)
    # round 0: 2 s from its answers; round 1: one answer (2 s); 4 accepted samples -> 1000 ms per sample
    assert measured["ms_per_sample"] == pytest.approx(1000.0) and measured["accepted"] == 4
    section = latency_section(inputs)
    assert "**500x**" in section and "not meaningful" not in section
    # without answers the round wall time is used
    assert teacher_latency(inputs.rounds)["ms_per_sample"] == pytest.approx(1500.0)
    card = str(build_model_card(inputs))
    assert "| Cost |" in card and "| 0.2500 |" in card
    assert "2 (duplicate: 1, too\\_short: 1)" in card
    simulated = latency_section(card_inputs(is_simulation=True, student_latency=inputs.student_latency))
    assert "not meaningful" in simulated


# --------------------------------------------------------------------------- a sharded student is not timed alone
def _zero(stage):
    from types import SimpleNamespace

    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=stage)))


def _parallel(**sizes):
    from types import SimpleNamespace

    flags = {"tp_enabled": False, "dp_shard_enabled": False, "cp_enabled": False, "sp_enabled": False, **sizes}
    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=None), parallelism_config=SimpleNamespace(**flags))


@pytest.mark.parametrize(
    "simulate, shown",
    [
        ({"is_fsdp_enabled": True}, "FSDP"),
        ({"is_deepspeed_enabled": True, "accelerator": _zero(3)}, "DeepSpeed ZeRO-3"),
        ({"accelerator": _parallel(tp_enabled=True)}, "tensor parallel"),
        ({"accelerator": _parallel(dp_shard_enabled=True)}, "FSDP"),
        ({"model.tp_size": 2}, "tensor parallel"),
        ({"is_deepspeed_enabled": True, "accelerator": _zero(2)}, None),  # ZeRO-2 keeps whole weights: timed
    ],
)
def test_sharded_student_is_not_timed_alone(make_trainer, pool_teacher, preprocess, monkeypatch, simulate, shown):
    # The card is written on the main process only: a forward pass there alone would hang a sharded model.
    trainer, callback = train_tiny(make_trainer, pool_teacher, preprocess, max_steps=5)
    for name, value in simulate.items():
        target, attr = (trainer.model, "_tp_size") if name == "model.tp_size" else (trainer, name)
        monkeypatch.setattr(target, attr, value, raising=False)
    forwards = []
    handle = trainer.model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        callback.publisher.on_train_end()
    finally:
        handle.remove()
    readme = (Path(trainer.args.output_dir) / "README.md").read_text()
    if shown is None:
        assert forwards and "ms per sample, measured on" in readme
    else:
        assert forwards == []
        assert f"- **Student:** not measured: the model is sharded across processes ({shown})" in readme
