"""RoundRunner without a Trainer: validation, drops by reason, failures, budgets of rounds, and the answer log."""

from __future__ import annotations

import json

import numpy as np

from hf_activekd import ActiveKDConfig, GeneratedSample, RoundRunner, Teacher, TeacherResponse, build_report

NAMES = ["alpha", "beta", "gamma"]


def _report(acc_shift=0.0):
    labels = np.repeat(np.arange(3), 4)
    logits = np.eye(3)[labels] * 2.0
    logits[0, 1] += 5.0  # one error: alpha predicted as beta
    return build_report(logits, labels, NAMES)


class ScriptTeacher(Teacher):
    name = "script"

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0
        self.sent = []

    def generate(self, requests, progress=True):
        self.calls += 1
        self.sent += [r.key for r in requests]
        return [self.answer(r) for r in requests]


def test_rows_are_validated_and_drops_counted(tmp_path):
    def answer(request):
        samples = [
            GeneratedSample(f"a fresh example of {request.label} number one", request.label),
            GeneratedSample(f"a fresh example of {request.label} number one!", request.label),  # duplicate
            GeneratedSample("", request.label),
            GeneratedSample("short", request.label),
            GeneratedSample("x" * 2000, request.label),
            GeneratedSample(f"an example with a made-up label {request.key}", "delta"),
            GeneratedSample(request.label, request.label),
            GeneratedSample("this text is already in the training data", request.label),
        ]
        return TeacherResponse(key=request.key, samples=samples, prompt_tokens=10, completion_tokens=5)

    config = ActiveKDConfig(
        samples_per_round=3, samples_per_request=1, min_chars=8, max_chars=500, allocation="uniform"
    )
    runner = RoundRunner(
        ScriptTeacher(answer), config, NAMES, tmp_path, ["This text is already in the training data."]
    )
    record = runner.run(_report(), global_step=7)
    assert record["requests"] == 3 and record["accepted"] == 3
    assert record["dropped"] == {
        "duplicate": 6,
        "empty": 3,
        "label_echo": 3,
        "too_long": 3,
        "too_short": 3,
        "unknown_label": 3,
    }
    assert record["tokens_in"] == 30 and record["tokens_out"] == 15 and record["global_step"] == 7
    rows = [json.loads(x) for x in (tmp_path / "round-0000.jsonl").read_text().splitlines()]
    assert {r["label"] for r in rows} == set(NAMES)
    # dedup across rounds too
    record = runner.run(_report())
    assert record["accepted"] == 0 and record["dropped"]["duplicate"] == 9


def test_teacher_exception_is_recorded_and_training_goes_on(tmp_path):
    def answer(request):
        raise RuntimeError("teacher exploded")

    runner = RoundRunner(ScriptTeacher(answer), ActiveKDConfig(samples_per_round=3), NAMES, tmp_path)
    record = runner.run(_report())
    assert record["accepted"] == 0 and record["failed_requests"] == record["requests"] > 0
    assert "teacher exploded" in record["error"]
    assert json.loads((tmp_path / "rounds.json").read_text())[0]["error"]


def test_failed_requests_counted_others_kept(tmp_path):
    def answer(request):
        if request.label == "beta":
            return TeacherResponse(key=request.key, error="HTTP 503", faults={"http_503": 4})
        return TeacherResponse(key=request.key, samples=[GeneratedSample(f"good text for {request.label}", "")])

    config = ActiveKDConfig(samples_per_round=3, samples_per_request=1, allocation="uniform")
    record = RoundRunner(ScriptTeacher(answer), config, NAMES, tmp_path).run(_report())
    assert record["failed_requests"] == 1 and record["accepted"] == 2 and record["faults"] == {"http_503": 4}
    assert "error" not in record
    assert record["accepted_by_class"] == {"alpha": 1, "gamma": 1}  # label from the request when none returned


def test_patience_and_max_rounds(tmp_path):
    def answer(request):
        return TeacherResponse(key=request.key, samples=[GeneratedSample(f"text {request.key} {request.seed}", "")])

    teacher = ScriptTeacher(answer)
    config = ActiveKDConfig(samples_per_round=3, patience=2, max_rounds=10)
    runner = RoundRunner(teacher, config, NAMES, tmp_path)
    for _ in range(3):
        runner.run(_report())
    assert runner.should_stop and runner.best_round == 0 and "2 evaluations" in runner.stop_reason
    assert runner.rounds[-1]["generated"] is False and teacher.calls == 2

    config = ActiveKDConfig(samples_per_round=3, patience=0, max_rounds=1)
    teacher = ScriptTeacher(answer)
    runner = RoundRunner(teacher, config, NAMES, tmp_path / "b")
    runner.run(_report())
    runner.run(_report())
    assert teacher.calls == 1 and "max_rounds" in runner.rounds[1]["skipped"]


def test_answers_are_replayed_not_resent(tmp_path):
    def answer(request):
        return TeacherResponse(
            key=request.key, samples=[GeneratedSample(f"text for {request.key}", "")], prompt_tokens=3
        )

    config = ActiveKDConfig(samples_per_round=3, samples_per_request=1, allocation="uniform")
    first = ScriptTeacher(answer)
    runner = RoundRunner(first, config, NAMES, tmp_path)
    before = runner.state_dict()  # the checkpoint a restarted job resumes from
    runner.run(_report())
    assert len(first.sent) == 3
    # a new runner of the same run over the same folder (a restarted job) whose round files were lost
    for path in tmp_path.glob("round-*.jsonl"):
        path.unlink()
    second = ScriptTeacher(answer)
    resumed = RoundRunner(second, config, NAMES, tmp_path)
    resumed.load_state_dict(before)
    record = resumed.run(_report())
    assert second.sent == [] and record["replayed"] == 3 and record["accepted"] == 3 and record["tokens_in"] == 9
    # another run in the same folder never takes them: answers are replayed only for the run that paid for them
    third = ScriptTeacher(answer)
    RoundRunner(third, config, NAMES, tmp_path).run(_report())
    assert len(third.sent) == 3
