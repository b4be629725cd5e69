"""Teacher verification (verify="teacher"): the teacher labels its accepted rows again, blind; rows it disowns are
dropped as `disagreement`, its tokens count in the budget, and each round records the agreement rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hf_activekd import (
    ActiveKDCallback,
    ActiveKDConfig,
    GeneratedSample,
    PoolTeacher,
    RoundRunner,
    Teacher,
    TeacherResponse,
    TGITeacher,
    build_report,
)
from hf_activekd.server import ScriptedBackend, TeacherServer
from hf_activekd.teachers import TeacherError
from testing_utils import LABELS, MARKER, make_texts

NAMES = ["alpha", "beta", "gamma"]


def _report():
    labels = np.repeat(np.arange(3), 4)
    logits = np.eye(3)[labels] * 2.0
    return build_report(logits, labels, NAMES)


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _config(**kwargs):
    kwargs = {"samples_per_round": 6, "samples_per_request": 2, "allocation": "uniform", "verify": "teacher", **kwargs}
    return ActiveKDConfig(confusion_requests=False, **kwargs)


def _verify_prompt_texts(request):
    """The numbered texts of a verification prompt, in order."""
    user = request.messages[-1]["content"]
    block = user.split("Texts:\n", 1)[1].split("\n\nAnswer with", 1)[0]
    return [line.split(". ", 1)[1] for line in block.splitlines()]


def _disowning_answer(request):
    """Samples as usual; on verification, every text that contains 'beta example' gets 'gamma' (the teacher
    disowns it), every other text its own class (read from the marker text)."""
    props = (request.schema or {}).get("properties", {})
    if "labels" not in props:
        return None
    labels = []
    for text in _verify_prompt_texts(request):
        said = next(n for n in NAMES if f" {n} example" in text)
        labels.append("gamma" if said == "beta" else said)
    return json.dumps({"labels": labels})


def _server(fn):
    from hf_activekd.server.backends import default_answer

    def answer(request):
        return fn(request) or default_answer(request)

    backend = ScriptedBackend(answer)
    return TeacherServer(backend).start(), backend


def test_scripted_teacher_disowns_rows_they_are_dropped_and_the_round_records_it(tmp_path):
    server, backend = _server(_disowning_answer)
    try:
        teacher = TGITeacher(server.url, max_attempts=1)
        runner = RoundRunner(teacher, _config(), NAMES, tmp_path, progress=False)
        record = runner.run(_report())
    finally:
        server.stop()
    verify_calls = [r for r in backend.requests if "labels" in (r.schema or {}).get("properties", {})]
    assert record["requests"] == 3 and record["verify_requests"] == 3 == len(verify_calls)
    # the verification request is constrained to the label names (one per text)
    labels_schema = verify_calls[0].schema["properties"]["labels"]
    assert labels_schema["items"]["enum"] == NAMES and labels_schema["minItems"] == labels_schema["maxItems"] == 2
    assert record["dropped"] == {"disagreement": 2}
    assert record["accepted"] == 4 and record["verify_checked"] == 6 and record["verify_agreed"] == 4
    assert record["verify_agreement"] == pytest.approx(4 / 6, abs=1e-4)
    rows = _rows(tmp_path / "round-0000.jsonl")
    assert sorted(r["label"] for r in rows) == ["alpha", "alpha", "gamma", "gamma"]
    # verification tokens are counted, in the round's tokens and in the teacher's budget
    assert record["verify_tokens_in"] > 0 and record["verify_tokens_out"] > 0
    assert record["tokens_in"] + record["tokens_out"] == teacher.usage["total_tokens"]
    assert teacher.usage["requests"] == 6


def test_a_budget_that_covers_generation_but_not_all_verification(tmp_path):
    """Generation requests are sent first; verification requests then reserve their worst case (prompt estimate plus
    a small max_new_tokens) like any request, and those the budget refuses leave their rows unverified, counted."""
    server, backend = _server(_disowning_answer)
    try:
        probe = TGITeacher(server.url, max_attempts=1)
        RoundRunner(probe, _config(verify="none", max_new_tokens=120), NAMES, tmp_path / "probe", progress=False).run(
            _report()
        )
        generation_tokens = probe.usage["total_tokens"]  # about 3 x 230; a verification costs about 130 (reserves 200)
        limit = generation_tokens + 250
        teacher = TGITeacher(server.url, max_attempts=1, max_total_tokens=limit, max_concurrency=1)
        config = _config(max_new_tokens=120)
        record = RoundRunner(teacher, config, NAMES, tmp_path / "run", progress=False).run(_report())
    finally:
        server.stop()
    assert record["failed_requests"] == 0 and record["requests"] == 3  # every generation request was paid
    assert record["verify_requests"] == 3 and 0 < record["verify_failed_requests"] < 3
    # rows whose verification could not be paid are kept, unverified, and counted; the limit is never passed
    assert record["verify_unverified"] == 2 * record["verify_failed_requests"]
    assert record["verify_checked"] + record["verify_unverified"] == 6
    assert record["accepted"] + record["dropped"].get("disagreement", 0) == 6
    assert record["verify_errors"] == {"budget exhausted": record["verify_failed_requests"]}
    assert teacher.usage["total_tokens"] <= limit
    assert record["tokens_in"] + record["tokens_out"] == teacher.usage["total_tokens"]


def test_pool_teacher_agrees_with_its_own_rows(tmp_path):
    texts = [f"a real {n} message number {i} from the pool" for n in NAMES for i in range(6)]
    labels = [n for n in NAMES for _ in range(6)]
    record = RoundRunner(PoolTeacher(texts, labels), _config(), NAMES, tmp_path, progress=False).run(_report())
    assert record["accepted"] == 6 and record["verify_agreement"] == 1.0 and "disagreement" not in record["dropped"]
    assert record["verify_checked"] == 6 and record["verify_unverified"] == 0


class FlippingPoolTeacher(PoolTeacher):
    """A noisy teacher: writes 'alpha' rows under the label 'beta'."""

    def generate(self, requests, progress=True, on_answer=None):
        responses = super().generate(requests, progress=progress)
        for response in responses:
            response.samples = [
                GeneratedSample(s.text, "beta" if s.label == "alpha" else s.label) for s in response.samples
            ]
        return responses


def test_rows_a_flipping_pool_teacher_mislabelled_are_dropped(tmp_path):
    texts = [f"a real {n} message number {i} from the pool" for n in NAMES for i in range(6)]
    labels = [n for n in NAMES for _ in range(6)]
    teacher = FlippingPoolTeacher(texts, labels)
    record = RoundRunner(teacher, _config(), NAMES, tmp_path, progress=False).run(_report())
    assert record["dropped"] == {"disagreement": 2} and record["accepted"] == 4
    assert record["verify_agreement"] == pytest.approx(4 / 6, abs=1e-4)
    assert all(n in r["text"] for r in _rows(tmp_path / "round-0000.jsonl") for n in [r["label"]])


class NoLabelTeacher(Teacher):
    name = "no-label"

    def __init__(self):
        self.calls = 0

    def generate(self, requests, progress=True):
        self.calls += 1
        return [TeacherResponse(key=r.key) for r in requests]


def test_verify_with_a_teacher_that_cannot_label_is_refused_before_any_round(tmp_path, make_trainer, preprocess):
    teacher = NoLabelTeacher()
    with pytest.raises(TeacherError, match=r"verify='teacher'.*label\(\)"):
        RoundRunner(teacher, _config(), NAMES, tmp_path, progress=False)
    with pytest.raises(TeacherError, match=r"verify='teacher'.*label\(\)"):
        ActiveKDCallback(make_trainer(), teacher, _config(), preprocess=preprocess)
    assert teacher.calls == 0
    RoundRunner(teacher, _config(verify="none"), NAMES, tmp_path, progress=False)  # fine without verification
    with pytest.raises(ValueError, match="verify must be"):
        ActiveKDConfig(verify="student")


def test_a_trained_run_with_a_mislabelling_teacher_keeps_only_rows_it_verifies_and_the_card_shows_agreement(
    make_trainer, preprocess
):
    texts, labels = make_texts(60, seed=7)
    flipped = {LABELS[0]: LABELS[1]}  # writes every LABELS[0] row under LABELS[1]

    class Mislabelling(PoolTeacher):
        def generate(self, requests, progress=True, on_answer=None):
            responses = super().generate(requests, progress=progress)
            for response in responses:
                response.samples = [GeneratedSample(s.text, flipped.get(s.label, s.label)) for s in response.samples]
            return responses

    teacher = Mislabelling([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS, seed=0)
    truth = {f"{MARKER} {t}": (LABELS[y] if not isinstance(y, str) else y) for t, y in zip(texts, labels)}
    trainer = make_trainer(max_steps=20)
    config = ActiveKDConfig(samples_per_round=8, samples_per_request=4, patience=0, verify="teacher")
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=preprocess, progress=False)
    trainer.add_callback(callback)
    trainer.train()

    generated = [r for r in callback.rounds if r.get("verify_requests")]
    assert generated and sum(r["dropped"].get("disagreement", 0) for r in generated) > 0
    assert min(r["verify_agreement"] for r in generated) < 1.0
    rows = callback.runner.pool.rows()
    assert rows and all(truth[r["text"]] == r["label"] for r in rows)  # no mislabelled row reached training
    card = (Path(trainer.args.output_dir) / "README.md").read_text(encoding="utf-8")
    assert "| Teacher agreement |" in card


def test_verification_over_the_text_generation_route_with_the_default_scripted_answer(tmp_path):
    """Without a chat route the verification request goes as a JSON grammar; the scripted server's default answer
    to it is the first label option for every text."""
    server = TeacherServer(ScriptedBackend()).start()
    try:
        teacher = TGITeacher(server.url, use_chat=False, max_attempts=1)
        record = RoundRunner(teacher, _config(), NAMES, tmp_path, progress=False).run(_report())
    finally:
        server.stop()
    assert record["verify_requests"] == 3 and record["verify_failed_requests"] == 0
    assert record["accepted_by_class"] == {"alpha": 2} and record["dropped"] == {"disagreement": 4}
    assert record["verify_agreement"] == pytest.approx(2 / 6, abs=1e-4)


def _pool(per_class):
    texts = [f"a real {n} message number {i} from the pool" for n in NAMES for i in range(per_class)]
    return texts, [n for n in NAMES for _ in range(per_class)]


def test_resume_after_a_crash_mid_verification_pays_no_verification_twice(tmp_path):
    """The process dies between two verification calls of a round; the resumed round replays the generation answers
    and the verification answers already logged, and asks the teacher to verify only the rest."""

    class Killed(BaseException):
        pass

    class Labelling(PoolTeacher):
        def __init__(self, *args, crash_at_call=0, **kwargs):
            super().__init__(*args, **kwargs)
            self.crash_at_call, self.calls, self.verified, self.generated = crash_at_call, 0, [], 0

        def generate(self, requests, progress=True, on_answer=None):
            self.generated += len(requests)
            return super().generate(requests, progress=progress, on_answer=on_answer)

        def label(self, queries, progress=False):
            self.calls += 1
            if self.calls == self.crash_at_call:
                raise Killed  # the process dies in the middle of the round's verification
            self.verified += [t for q in queries for t in q.texts]
            return super().label(queries, progress)

    texts, labels = _pool(7)
    config = _config(samples_per_round=20, samples_per_request=1)  # 20 rows, one verification request each
    first = Labelling(texts, labels, crash_at_call=2)
    runner = RoundRunner(first, config, NAMES, tmp_path, progress=False)
    with pytest.raises(Killed):
        runner.run(_report())
    assert first.generated == 20 and len(first.verified) == 8 and not (tmp_path / "round-0000.jsonl").exists()

    second = Labelling(texts, labels)
    resumed = RoundRunner(second, config, NAMES, tmp_path, run_id=runner.run_id, progress=False)
    record = resumed.run(_report())
    assert second.generated == 0  # the generation answers are replayed
    assert len(second.verified) == 12 and not set(second.verified) & set(first.verified)  # only the rest
    assert record["verify_replayed"] == 8 and record["verify_checked"] == 20 and record["accepted"] == 20
    assert {r["text"] for r in resumed.pool.rows()} == set(first.verified) | set(second.verified)


def test_a_resumed_runs_budget_includes_the_verification_paid_after_the_checkpoint(tmp_path):
    server, _ = _server(lambda request: None)
    try:
        teacher = TGITeacher(server.url, max_attempts=1, max_total_tokens=100_000)
        runner = RoundRunner(teacher, _config(patience=0), NAMES, tmp_path, progress=False)
        runner.run(_report())
        checkpoint = json.loads(json.dumps(runner.state_dict()))  # saved after round 0
        record = runner.run(_report())  # round 1 and its verification are paid, then the process dies
        assert record["verify_requests"] == 3
        spent = teacher.usage
        resumed_teacher = TGITeacher(server.url, max_attempts=1, max_total_tokens=100_000)
        RoundRunner(resumed_teacher, _config(patience=0), NAMES, tmp_path, progress=False).load_state_dict(checkpoint)
    finally:
        server.stop()
    usage = resumed_teacher.usage
    assert usage["requests"] == spent["requests"] == 12  # 2 rounds x (3 generation + 3 verification requests)
    assert usage["total_tokens"] == spent["total_tokens"]
