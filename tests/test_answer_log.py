"""The answer log: every answer on disk the moment it arrives, so that a crash or Ctrl-C never pays twice."""

from __future__ import annotations

import _thread
import json
import threading
import time

import numpy as np

from hf_activekd import (
    ActiveKDConfig,
    GeneratedSample,
    RoundRunner,
    Teacher,
    TeacherResponse,
    TGITeacher,
    build_report,
)
from hf_activekd.server import ScriptedBackend, TeacherServer

NAMES = ["alpha", "beta", "gamma"]


def _report(weak=None):
    labels = np.repeat(np.arange(3), 4)
    logits = np.eye(3)[labels] * 2.0
    if weak is not None:  # the student gets every example of class `weak` wrong
        logits[labels == weak, (weak + 1) % 3] += 5.0
    return build_report(logits, labels, NAMES)


def _answer(request):
    return TeacherResponse(
        key=request.key,
        samples=[  # words around the key: a text of digits and slashes is dropped by the quality gate (not_words)
            GeneratedSample(f"example {i} written for the request {request.key} with seed {request.seed}", "")
            for i in range(request.num_samples)
        ],
        prompt_tokens=3,
        completion_tokens=2,
        attempts=1,
    )


class ScriptTeacher(Teacher):
    """Answers every request; ``interrupt_after`` answers, raises KeyboardInterrupt (a Ctrl-C mid-round)."""

    name = "script"

    def __init__(self, interrupt_after=None):
        self.interrupt_after = interrupt_after
        self.sent = []

    def generate(self, requests, progress=True, on_answer=None):
        responses = []
        for request in requests:
            if self.interrupt_after is not None and len(self.sent) >= self.interrupt_after:
                raise KeyboardInterrupt
            self.sent.append(request)
            responses.append(_answer(request))
            if on_answer is not None:
                on_answer(responses[-1])
        return responses


def _lines(path):
    return path.read_text().splitlines()


def test_interrupt_keeps_the_answers_that_arrived(tmp_path):
    # A Ctrl-C (SIGINT, as in Jupyter) while a round's answers arrive one by one from a slow server.
    config = ActiveKDConfig(samples_per_round=6, samples_per_request=1, allocation="uniform")
    with TeacherServer(ScriptedBackend(latency_s=0.3)) as server:
        runner = RoundRunner(TGITeacher(server.url, max_concurrency=1), config, NAMES, tmp_path, progress=False)
        checkpoint = json.loads(json.dumps(runner.state_dict()))
        log = tmp_path / "answers.jsonl"

        def interrupt_when_two_arrived():
            deadline = time.time() + 30
            while time.time() < deadline and not (log.exists() and len(_lines(log)) >= 2):
                time.sleep(0.02)
            _thread.interrupt_main()

        threading.Thread(target=interrupt_when_two_arrived, daemon=True).start()
        try:
            runner.run(_report())
            raise AssertionError("the interrupt did not arrive")
        except KeyboardInterrupt:
            pass
        arrived = [json.loads(line) for line in _lines(log)]  # every line whole
        assert 2 <= len(arrived) < 6
        sent_before = server.stats["generations"]

        resumed = RoundRunner(TGITeacher(server.url, max_concurrency=1), config, NAMES, tmp_path, progress=False)
        resumed.load_state_dict(checkpoint)
        record = resumed.run(_report())
    assert record["replayed"] == len(arrived) and record["accepted"] == 6
    # only the answers that never arrived were asked again (plus, at most, the one in flight at the interrupt)
    assert server.stats["generations"] - sent_before == 6 - len(arrived)


def test_a_partly_logged_round_is_completed_whatever_the_new_split(tmp_path):
    config = ActiveKDConfig(samples_per_round=6, samples_per_request=1, allocation="guided", allocation_floor=0.0)
    first = ScriptTeacher(interrupt_after=3)
    runner = RoundRunner(first, config, NAMES, tmp_path)
    checkpoint = json.loads(json.dumps(runner.state_dict()))
    try:
        runner.run(_report(weak=0))  # the plan: 6 requests for alpha; 3 are answered, then Ctrl-C
    except KeyboardInterrupt:
        pass
    assert len(_lines(tmp_path / "answers.jsonl")) == 3

    # after the restart the student evaluates differently: the new plan asks for beta only
    second = ScriptTeacher()
    resumed = RoundRunner(second, config, NAMES, tmp_path)
    resumed.load_state_dict(checkpoint)
    record = resumed.run(_report(weak=1))
    assert sum(r.num_samples for r in second.sent) == 3  # only the rest of the round's budget
    assert record["replayed"] == 3 and record["requested"] == 6 and record["accepted"] == 6
    assert record["accepted_by_class"] == {"alpha": 3, "beta": 3}


def test_a_torn_last_line_loses_nothing_else(tmp_path):
    config = ActiveKDConfig(samples_per_round=3, samples_per_request=1, allocation="uniform")
    runner = RoundRunner(ScriptTeacher(), config, NAMES, tmp_path)
    checkpoint = json.loads(json.dumps(runner.state_dict()))
    runner.run(_report())
    log = tmp_path / "answers.jsonl"
    text = log.read_text()
    log.write_text(text[: len(text) - 40])  # the process died while writing the last answer

    def resume():
        for path in tmp_path.glob("round-*.jsonl"):
            path.unlink()
        teacher = ScriptTeacher()
        resumed = RoundRunner(teacher, config, NAMES, tmp_path)
        resumed.load_state_dict(checkpoint)
        record = resumed.run(_report())
        return teacher, record

    teacher, record = resume()
    assert len(teacher.sent) == 1 and record["accepted"] == 3  # the torn answer is asked again, the others replayed
    teacher, record = resume()
    assert teacher.sent == [] and record["replayed"] == 3  # and the answer written after the torn line is readable
