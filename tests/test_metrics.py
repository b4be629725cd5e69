"""MetricsRecorder and build_report: the per-class report from whatever the Trainer hands to compute_metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import EvalPrediction
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher, build_report
from hf_activekd.metrics import MetricsRecorder
from testing_utils import LABELS, MARKER, make_texts, require_torch_accelerator, torch_device


class RecordingPoolTeacher(PoolTeacher):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prompts = []

    def generate(self, requests, progress=True):
        self.prompts += [r.messages[-1]["content"] for r in requests]
        return super().generate(requests, progress)


def _teacher():
    texts, labels = make_texts(60, seed=7)
    return RecordingPoolTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS, seed=0)


def test_class_ids_from_preprocess_logits_for_metrics(make_trainer, preprocess):
    trainer = make_trainer(max_steps=10, eval_steps=5)
    trainer.preprocess_logits_for_metrics = lambda logits, labels: logits.argmax(-1)
    teacher = _teacher()
    callback = ActiveKDCallback(
        trainer, teacher, ActiveKDConfig(samples_per_round=8, patience=0), preprocess=preprocess
    )
    trainer.add_callback(callback)
    with CaptureLogger(logging.get_logger("hf_activekd.metrics")) as captured:
        trainer.train()
    assert len(callback.rounds) == 2 and callback.rounds[0]["generated"] and callback.rounds[0]["accepted"]
    assert callback.rounds[1]["skipped"].startswith("last step")  # no round paid for at the last step
    assert 0.0 <= callback.rounds[0]["macro_f1"] <= 1.0
    assert captured.out.count("class ids") == 1  # said once, not at every evaluation
    assert teacher.prompts and not any("confidence" in p or "confident" in p for p in teacher.prompts)


def test_compute_metrics_returning_none(make_trainer, preprocess, pool_teacher):
    trainer = make_trainer(max_steps=6, eval_steps=5)  # a round at step 5; none at the last step
    trainer.compute_metrics = lambda eval_pred: None
    callback = ActiveKDCallback(
        trainer, pool_teacher, ActiveKDConfig(samples_per_round=8, patience=0), preprocess=preprocess
    )
    trainer.add_callback(callback)
    trainer.train()
    assert callback.rounds[0]["generated"] and "eval_loss" in callback.rounds[0]["eval_metrics"]


def _batches(device, dtype):
    torch.manual_seed(0)
    labels = torch.arange(4, device=device).repeat(5)
    logits = torch.randn(20, 4, device=device).to(dtype)
    logits[torch.arange(20), labels] += 3.0
    return logits, labels


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_batched_tensors_on_the_device(dtype):
    logits, labels = _batches(torch_device, dtype)
    expected = build_report(logits.float().cpu().numpy(), labels.cpu().numpy(), LABELS)
    recorder = MetricsRecorder(None, LABELS)
    for start in range(0, 20, 8):
        last = start + 8 >= 20
        sl = slice(start, start + 8)
        result = recorder(EvalPrediction(predictions=logits[sl], label_ids=labels[sl]), compute_result=last)
    assert result == {"accuracy": expected.accuracy, "macro_f1": expected.macro_f1}
    np.testing.assert_array_equal(recorder.last_report.predictions, expected.predictions)
    # the whole evaluation in one call, as a custom loop may hand it over
    recorder(EvalPrediction(predictions=(logits, logits), label_ids=labels))
    np.testing.assert_allclose(recorder.last_report.f1, expected.f1)


def test_report_from_class_ids_has_no_confidences():
    labels = np.array([0, 0, 1, 1, 2, 2])
    report = build_report(np.array([0, 1, 1, 0, 2, 2]), labels, ["a", "b", "c"])
    assert report.accuracy == pytest.approx(4 / 6) and not report.has_confidences
    assert report.hard_negatives(5) == [1, 3]  # in dataset order: there is no confidence to rank by
    with pytest.raises(ValueError, match="class ids"):
        build_report(np.array([0, 7]), np.array([0, 1]), ["a", "b", "c"])


def test_batched_bf16_evaluation_in_a_trainer(make_trainer, preprocess, pool_teacher):
    # on a GPU, CUDA (bf16) tensors reach compute_metrics batch by batch: the crash seen on an H200 with 0.1.0
    trainer = make_trainer(max_steps=6, eval_steps=5, batch_eval_metrics=True, bf16_full_eval=True)
    callback = ActiveKDCallback(
        trainer, pool_teacher, ActiveKDConfig(samples_per_round=8, patience=0), preprocess=preprocess
    )
    trainer.add_callback(callback)
    trainer.train()
    assert callback.rounds[0]["generated"] and 0.0 <= callback.rounds[0]["macro_f1"] <= 1.0


@require_torch_accelerator
def test_the_tests_trainers_run_on_the_accelerator(make_trainer):
    assert make_trainer().args.device.type == torch_device
