"""A PEFT LoRA-wrapped student trains with the callback attached."""

from __future__ import annotations

import pytest

from hf_activekd import ActiveKDCallback, ActiveKDConfig
from testing_utils import MARKER, ForwardRecorder, make_model

peft = pytest.importorskip("peft")


def test_lora_student_trains_on_generated_rows(make_trainer, preprocess, tokenizer, pool_teacher):
    config = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
    model = peft.get_peft_model(make_model(), config)
    # copies on the CPU: the Trainer moves the model to torch_device
    trainable_before = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen_before = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainer = make_trainer(model=model, max_steps=10, eval_steps=5)
    callback = ActiveKDCallback(
        trainer, pool_teacher, ActiveKDConfig(samples_per_round=8, patience=0), preprocess=preprocess
    )
    trainer.add_callback(callback)
    recorder = ForwardRecorder(model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    assert len(callback.rounds) == 2 and callback.rounds[0]["accepted"] == 8
    assert recorder.train_marker_rows > 0 and recorder.eval_marker_rows == 0
    after = {n: p.detach().cpu() for n, p in model.named_parameters()}
    changed = [n for n in trainable_before if not after[n].equal(trainable_before[n])]
    assert any("lora" in n for n in changed)
    assert all(after[n].equal(p) for n, p in frozen_before.items())
