"""Early stopping across rounds, resuming from a checkpoint, and a failing teacher inside a running Trainer."""

from __future__ import annotations

import json

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher
from hf_activekd.server import Fault, ScriptedBackend, TeacherServer
from testing_utils import MARKER, ForwardRecorder


def test_training_stops_after_patience(make_trainer, preprocess, pool_teacher):
    trainer = make_trainer(max_steps=100, eval_steps=5, learning_rate=0.0)  # a student that never improves
    callback = ActiveKDCallback(
        trainer, pool_teacher, ActiveKDConfig(samples_per_round=4, patience=2), preprocess=preprocess
    )
    trainer.add_callback(callback)
    trainer.train()
    assert trainer.state.global_step == 15  # evaluations at 5 (best), 10, 15 (2nd without improvement): stop
    rounds = callback.rounds
    assert [r["generated"] for r in rounds] == [True, True, False]
    assert callback.runner.best_round == 0 and "no improvement" in rounds[-1]["skipped"]
    assert callback.summary()["stop_reason"].startswith("no improvement")


def test_min_delta_counts_small_gains_as_no_improvement(make_trainer, preprocess, pool_teacher):
    trainer = make_trainer(max_steps=100, eval_steps=5)
    config = ActiveKDConfig(samples_per_round=4, patience=1, min_delta=1.0)  # nothing can improve by 1.0
    callback = ActiveKDCallback(trainer, pool_teacher, config, preprocess=preprocess)
    trainer.add_callback(callback)
    trainer.train()
    assert trainer.state.global_step == 10 and len(callback.rounds) == 2


def _resume_config():
    # uniform allocation: the same request keys in every run, whatever the student predicts
    return ActiveKDConfig(samples_per_round=8, samples_per_request=2, allocation="uniform", patience=0)


def test_resume_restores_pool_and_rounds_without_new_requests(make_trainer, preprocess, tmp_path):
    server = TeacherServer(ScriptedBackend()).start()
    try:
        out = tmp_path / "run"
        common = dict(output_dir=out, max_steps=20, eval_steps=5, save_strategy="steps", save_steps=10)
        trainer = make_trainer(**common)
        callback = ActiveKDCallback(trainer, TGITeacher(server.url), _resume_config(), preprocess=preprocess)
        trainer.add_callback(callback)
        trainer.train()
        first_rounds = json.loads(json.dumps(callback.rounds))
        sent = server.stats["generations"]
        assert len(first_rounds) == 4 and sent == 12  # no round paid for at the last step
        state = json.loads((out / "checkpoint-10" / "activekd_state.json").read_text())
        assert [r["round"] for r in state["rounds"]] == [0, 1] and state["pool_rows"] == 16
        pool_rows_at_end = sorted((out / "activekd").glob("round-*.jsonl"))
        assert len(pool_rows_at_end) == 3

        # a new job resumes from the step-10 checkpoint
        trainer = make_trainer(**common)
        callback = ActiveKDCallback(trainer, TGITeacher(server.url), _resume_config(), preprocess=preprocess)
        trainer.add_callback(callback)
        seen = {}

        def spy(args, state, control, **kwargs):  # the restored state, before any new round
            seen.setdefault("rounds", json.loads(json.dumps(callback.rounds)))
            seen.setdefault("files", sorted(p.name for p in (out / "activekd").glob("round-*.jsonl")))

        callback.on_step_begin = spy
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-10"))
        assert seen["rounds"] == first_rounds[:2]
        assert seen["files"] == ["round-0000.jsonl", "round-0001.jsonl"]
        assert server.stats["generations"] == sent  # no request already answered is sent again
        assert [r["round"] for r in callback.rounds] == [0, 1, 2, 3]
        # the answers logged after the checkpoint are this run's: replayed (and their tokens counted), not "cache hits"
        assert all(r["replayed"] == r["requests"] and r["cache_hits"] == 0 for r in callback.rounds[2:3])
        assert all(r["tokens_in"] > 0 for r in callback.rounds[2:3])  # round 3 (the last step) is not generated
        assert [r["accepted"] for r in callback.rounds] == [8, 8, 8, 0]  # none at the last step
        assert len(list((out / "activekd").glob("round-*.jsonl.discarded"))) == 1
        on_disk = json.loads((out / "activekd" / "rounds.json").read_text())
        assert [r["round"] for r in on_disk] == [0, 1, 2, 3]
    finally:
        server.stop()


def test_failing_teacher_does_not_stop_training(make_trainer, preprocess, tokenizer):
    # every request of the first round fails (4 requests x 2 attempts, all HTTP 500), then the teacher recovers
    backend = ScriptedBackend.sequence([Fault(status=500)] * 8)
    with TeacherServer(backend) as server:
        trainer = make_trainer(max_steps=15, eval_steps=5)  # rounds at 5 and 10; none at the last step
        teacher = TGITeacher(server.url, max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02)
        config = ActiveKDConfig(samples_per_round=4, samples_per_request=2, allocation="uniform", patience=0)
        callback = ActiveKDCallback(trainer, teacher, config, preprocess=preprocess)
        trainer.add_callback(callback)
        recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
        trainer.train()
    first = callback.rounds[0]
    assert trainer.state.global_step == 15
    assert first["accepted"] == 0 and first["failed_requests"] == first["requests"] == 4
    assert first["faults"]["http_500"] == 8 and first["error"] == "every teacher request failed"
    assert recorder.train_marker_rows > 0  # nothing generated in round 0; round 1's rows trained after step 10
    assert callback.rounds[1]["accepted"] == 4 and callback.rounds[1]["failed_requests"] == 0


# --------------------------------------------------------------------------- direction of the metric, max_rounds
def _runner(tmp_path, config, answer=None):
    import numpy as np

    from hf_activekd import GeneratedSample, RoundRunner, Teacher, TeacherResponse, build_report

    class Script(Teacher):
        name = "script"
        calls = 0

        def generate(self, requests, progress=True):
            self.calls += 1
            return [
                (answer or (lambda r, n: None))(r, self.calls)
                or TeacherResponse(key=r.key, samples=[GeneratedSample(f"text {r.key} call {self.calls}", "")])
                for r in requests
            ]

    labels = np.repeat(np.arange(3), 4)
    report = build_report(np.eye(3)[labels], labels, ["alpha", "beta", "gamma"])
    teacher = Script()
    return RoundRunner(teacher, config, ["alpha", "beta", "gamma"], tmp_path), report, teacher


def test_a_falling_loss_is_an_improvement(tmp_path):
    config = ActiveKDConfig(samples_per_round=3, metric_for_rounds="eval_loss", patience=1)
    runner, report, _ = _runner(tmp_path, config)
    for loss in (0.9, 0.7, 0.5):
        runner.run(report, metrics={"eval_loss": loss})
    assert not runner.should_stop and runner.best_round == 2 and runner.best_metric == 0.5
    runner.run(report, metrics={"eval_loss": 0.6})  # worse: the patience of 1 is used up
    assert runner.should_stop and runner.best_round == 2
    # a score keeps larger-is-better
    runner, report, _ = _runner(tmp_path / "b", ActiveKDConfig(samples_per_round=3, metric_for_rounds="eval_f1"))
    for f1 in (0.5, 0.7):
        runner.run(report, metrics={"eval_f1": f1})
    assert runner.best_round == 1


def test_direction_follows_training_arguments_for_the_same_metric(make_trainer, preprocess, pool_teacher):
    # the user's own metric, lower is better, told to the Trainer but not to ActiveKDConfig
    trainer = make_trainer(max_steps=10, eval_steps=5, metric_for_best_model="eval_error", greater_is_better=False)
    callback = ActiveKDCallback(
        trainer, pool_teacher, ActiveKDConfig(samples_per_round=4, metric_for_rounds="error"), preprocess=preprocess
    )
    assert callback.config.greater_is_better is False
    # an explicit setting wins; a different metric is not affected by the Trainer's
    config = ActiveKDConfig(samples_per_round=4, metric_for_rounds="error", greater_is_better=True)
    assert ActiveKDCallback(trainer, pool_teacher, config, preprocess=preprocess).config.greater_is_better is True
    config = ActiveKDConfig(samples_per_round=4, metric_for_rounds="macro_f1")
    assert ActiveKDCallback(trainer, pool_teacher, config, preprocess=preprocess).config.greater_is_better is True


def test_a_round_where_every_request_failed_does_not_use_up_max_rounds(tmp_path):
    from hf_activekd import TeacherResponse

    def answer(request, call):
        return TeacherResponse(key=request.key, error="HTTP 503") if call == 1 else None

    config = ActiveKDConfig(samples_per_round=3, max_rounds=1, patience=0)
    runner, report, teacher = _runner(tmp_path, config, answer)
    first = runner.run(report)
    second = runner.run(report)
    third = runner.run(report)
    assert first["failed_requests"] == first["requests"] > 0 and first["error"] == "every teacher request failed"
    assert second["accepted"] > 0 and "skipped" not in second  # the failed round did not count
    assert "max_rounds=1" in third["skipped"] and teacher.calls == 2
    assert json.loads((tmp_path / "rounds.json").read_text())[0]["error"]  # the failure stays on record
