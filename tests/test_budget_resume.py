"""Budgets across a resume: spending after the checkpoint is not forgotten, and timed-out attempts are counted."""

from __future__ import annotations

import json

import numpy as np

from hf_activekd import ActiveKDConfig, RoundRunner, TGITeacher, build_report
from hf_activekd.server import Fault, ScriptedBackend, TeacherServer
from hf_activekd.teachers import TeacherRequest, samples_schema

NAMES = ["alpha", "beta", "gamma"]


def _report():
    labels = np.repeat(np.arange(3), 4)
    return build_report(np.eye(3)[labels] * 2.0, labels, NAMES)


def test_spend_after_the_checkpoint_is_restored_from_the_answer_log(tmp_path):
    config = ActiveKDConfig(samples_per_round=6, samples_per_request=2, allocation="uniform", patience=0)
    with TeacherServer(ScriptedBackend()) as server:
        teacher = TGITeacher(server.url, max_total_tokens=100_000)
        runner = RoundRunner(teacher, config, NAMES, tmp_path, progress=False)
        runner.run(_report())
        checkpoint = json.loads(json.dumps(runner.state_dict()))  # saved after round 0
        runner.run(_report())  # round 1 is paid for, then the process dies before the next checkpoint
        spent = teacher.usage
        assert spent["requests"] == 6

        resumed_teacher = TGITeacher(server.url, max_total_tokens=100_000)
        RoundRunner(resumed_teacher, config, NAMES, tmp_path, progress=False).load_state_dict(checkpoint)
    usage = resumed_teacher.usage
    assert usage["requests"] == spent["requests"] and usage["total_tokens"] == spent["total_tokens"]


def test_a_timed_out_attempt_counts_at_its_worst_case_marked_as_estimate():
    request = TeacherRequest(
        key="r0/alpha/0",
        label="alpha",
        num_samples=2,
        messages=[{"role": "user", "content": "Write 2 examples of alpha."}],
        json_schema=samples_schema(["alpha"], 2),
        max_new_tokens=64,
    )
    with TeacherServer(ScriptedBackend.sequence([Fault(delay_s=2.0)])) as server:
        teacher = TGITeacher(server.url, timeout_s=0.3, max_attempts=1, max_total_tokens=1000)
        [response] = teacher.generate([request], progress=False)
    assert response.error is not None and response.faults == {"timeout": 1}
    # the server may have generated (and billed) the whole answer: prompt estimate + max_new_tokens, as an estimate
    assert response.completion_tokens == 64 and response.prompt_tokens > 0
    assert response.estimated_tokens == response.prompt_tokens + response.completion_tokens
    usage = teacher.usage
    assert usage["total_tokens"] == response.estimated_tokens and usage["estimated_tokens"] == usage["total_tokens"]
