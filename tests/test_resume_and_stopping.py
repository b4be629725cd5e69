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
        assert all(r["cache_hits"] == r["requests"] for r in callback.rounds[2:])
        assert [r["accepted"] for r in callback.rounds] == [8, 8, 8, 0]
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
