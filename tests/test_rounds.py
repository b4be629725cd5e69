"""RoundRunner without a Trainer: validation, drops by reason, failures, budgets of rounds, and the answer log."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

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


WORDS = (
    "card payment refund transfer account balance cash machine pin code travel abroad fee charge limit phone "
    "app login address salary deposit cheque loan rate exchange currency wallet top up declined pending blocked"
).split()


def _scripted_run(tmp_path, on_harm, values=(0.5, 0.8, 0.79, 0.7)):
    def answer(request):  # a distinct, wordy text per request (the quality gate drops templated near-duplicates)
        words = random.Random(f"{request.key}/{request.seed}").sample(WORDS, 9)
        return TeacherResponse(key=request.key, samples=[GeneratedSample(" ".join(words), "")])

    config = ActiveKDConfig(samples_per_round=3, patience=0, harm_delta=0.02, on_harm=on_harm)
    runner = RoundRunner(ScriptTeacher(answer), config, NAMES, tmp_path)
    for value in values:
        runner.run(_report(), metrics={"eval_macro_f1": value})
    return runner


def test_harm_sets_aside_the_rounds_since_the_best(tmp_path):
    # Round 1 is the best (0.8); its rows and round 2's are trained on before evaluation 3, which falls to 0.7.
    runner = _scripted_run(tmp_path, "drop_round")
    first, last = runner.rounds[2], runner.rounds[3]
    assert "harm" not in first  # 0.79 is within harm_delta of 0.8
    assert last["harm"] == {"metric": 0.7, "best": 0.8, "best_round": 1, "drop": pytest.approx(0.1), "rounds": [1, 2]}
    assert (
        last["set_aside_rounds"] == [1, 2]
        and last["set_aside_rows"] == sum(runner.rounds[i]["accepted"] for i in (1, 2)) > 0
    )
    left = {r["round"] for r in runner.pool.rows()}
    assert left == {0, 3}  # round 3's rows, generated after the decision, are new
    assert sorted(p.name for p in tmp_path.glob("*.set-aside")) == [
        "round-0001.jsonl.set-aside",
        "round-0002.jsonl.set-aside",
    ]
    assert json.loads((tmp_path / "rounds.json").read_text())[3]["set_aside_rounds"] == [1, 2]

    # A resumed runner keeps them aside even if the files came back, and still refuses their texts.
    saved = runner.state_dict()
    (tmp_path / "round-0001.jsonl.set-aside").rename(tmp_path / "round-0001.jsonl")
    again = RoundRunner(ScriptTeacher(lambda r: None), runner.config, NAMES, tmp_path)
    again.load_state_dict(saved)
    assert {r["round"] for r in again.pool.rows()} == {0, 3}
    text = json.loads((tmp_path / "round-0001.jsonl.set-aside").read_text().splitlines()[0])["text"]
    assert again.filter.check(GeneratedSample(text, "alpha")) == "duplicate"

    # A later fall only sets aside what is not aside yet.
    again.teacher = runner.teacher
    record = again.run(_report(), metrics={"eval_macro_f1": 0.6})
    assert record["set_aside_rounds"] == [3]


def test_harm_with_on_harm_keep_is_recorded_only(tmp_path):
    runner = _scripted_run(tmp_path, "keep")
    last = runner.rounds[3]
    assert last["harm"]["rounds"] == [1, 2] and "set_aside_rounds" not in last
    assert {r["round"] for r in runner.pool.rows()} == {0, 1, 2, 3}
    assert not list(tmp_path.glob("*.set-aside*"))


def test_harm_settings_are_validated():
    with pytest.raises(ValueError, match="on_harm"):
        ActiveKDConfig(on_harm="drop")
    with pytest.raises(ValueError, match="harm_delta"):
        ActiveKDConfig(harm_delta=-0.1)
