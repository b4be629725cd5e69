"""The callback inside a real (tiny) Trainer: rounds over HTTP, rows in training batches only, records on disk."""

from __future__ import annotations

import json

import pytest

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher
from testing_utils import LABELS, MARKER, ForwardRecorder


def _attach(trainer, teacher, preprocess, **config):
    config.setdefault("samples_per_round", 8)
    config.setdefault("samples_per_request", 2)
    config.setdefault("patience", 0)
    callback = ActiveKDCallback(trainer, teacher=teacher, config=ActiveKDConfig(**config), preprocess=preprocess)
    trainer.add_callback(callback)
    return callback


@pytest.mark.parametrize("num_workers", [0, 2])
def test_rounds_over_http_reach_training_batches_only(
    make_trainer, preprocess, tokenizer, teacher_server, num_workers
):
    trainer = make_trainer(dataloader_num_workers=num_workers, max_steps=20, eval_steps=5)
    callback = _attach(trainer, TGITeacher(teacher_server.url), preprocess, mix_mode="append", rows_per_batch=2)
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    trainer.evaluate()  # an evaluation after training: no round, and no generated rows either

    rounds = callback.rounds
    assert len(rounds) == 4 and [r["global_step"] for r in rounds] == [5, 10, 15, 20]
    assert all(r["generated"] for r in rounds[:3])
    assert all(r["accepted"] == 8 and r["requested"] == 8 and r["requests"] >= 4 for r in rounds[:3])
    # the evaluation at the last step is judged, but no round is paid for: no batch would see its rows
    assert not rounds[3]["generated"] and rounds[3]["skipped"].startswith("last step") and rounds[3]["requests"] == 0
    assert teacher_server.stats["generations"] >= 12

    # generated rows were in training forward passes, never in evaluation ones
    assert recorder.train_marker_rows > 0
    assert recorder.eval_batches > 0 and recorder.eval_marker_rows == 0
    # append mode: each training batch after the first round grew by rows_per_batch
    assert recorder.train_rows > 20 * 8

    out = callback.output_dir
    on_disk = json.loads((out / "rounds.json").read_text())
    assert on_disk == json.loads(json.dumps(rounds))
    for key in (
        "round",
        "global_step",
        "eval_metrics",
        "per_class_f1",
        "requested",
        "accepted",
        "dropped",
        "tokens_in",
        "tokens_out",
        "wall_time_s",
    ):
        assert key in on_disk[0], key
    assert "eval_loss" in on_disk[0]["eval_metrics"] and set(on_disk[0]["per_class_f1"]) == set(LABELS)
    assert on_disk[0]["tokens_in"] > 0 and on_disk[0]["tokens_out"] > 0
    files = sorted(p.name for p in out.glob("round-*.jsonl"))
    assert files == ["round-0000.jsonl", "round-0001.jsonl", "round-0002.jsonl"]
    rows = [json.loads(line) for line in (out / "round-0001.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    for row in rows:
        assert MARKER in row["text"] and row["label"] in LABELS and row["round"] == 1
        assert row["reason"] and row["teacher"] and row["request"].startswith("r0001/")

    # round metrics went through trainer.log (so W&B / TensorBoard see them)
    logged = [h for h in trainer.state.log_history if "activekd/round" in h]
    assert [h["activekd/round"] for h in logged] == [0, 1, 2, 3]
    assert logged[0]["activekd/accepted"] == 8


def test_replace_mode_keeps_batch_shapes(make_trainer, preprocess, tokenizer, pool_teacher):
    trainer = make_trainer(max_steps=12, eval_steps=4)
    _attach(trainer, pool_teacher, preprocess, mix_mode="replace", rows_per_batch=3)
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    assert recorder.train_rows == 12 * 8  # same number of rows per batch as without the callback
    assert recorder.train_marker_rows == 8 * 3  # after the first round (step 4), 3 rows per batch for 8 steps
    assert recorder.eval_marker_rows == 0


def test_user_metrics_unchanged_and_report_recorded(make_trainer, preprocess, pool_teacher):
    def compute_metrics(eval_pred):
        return {"my_metric": 0.5}

    trainer = make_trainer(max_steps=5, eval_steps=5)
    trainer.compute_metrics = compute_metrics
    callback = _attach(trainer, pool_teacher, preprocess, metric_for_rounds="macro_f1")
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_my_metric"] == 0.5 and "eval_macro_f1" not in metrics
    record = callback.rounds[0]
    assert 0.0 <= record["macro_f1"] <= 1.0 and len(record["per_class_f1"]) == 4
    assert record["eval_metrics"]["eval_my_metric"] == 0.5


def test_batch_eval_metrics(make_trainer, preprocess, pool_teacher):
    seen = []

    def compute_metrics(eval_pred, compute_result=False):
        seen.append(compute_result)
        return {"batches": float(len(seen))} if compute_result else {}

    trainer = make_trainer(max_steps=5, eval_steps=5, batch_eval_metrics=True, per_device_eval_batch_size=8)
    trainer.compute_metrics = compute_metrics
    callback = _attach(trainer, pool_teacher, preprocess)
    trainer.train()
    assert seen.count(True) == 1 and len(seen) == 5  # 40 eval rows in batches of 8
    assert sum(callback.rounds[0]["per_class_f1"].values()) >= 0 and callback.rounds[0]["skipped"]  # last step
    assert len(callback.runner.rounds) == 1


def test_load_best_model_at_end_compatible(make_trainer, preprocess, pool_teacher, tmp_path):
    trainer = make_trainer(
        max_steps=15,
        eval_steps=5,
        save_strategy="steps",
        save_steps=5,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
    )
    callback = _attach(trainer, pool_teacher, preprocess)
    trainer.train()
    assert trainer.state.best_model_checkpoint is not None
    best = max(callback.rounds, key=lambda r: r["macro_f1"])
    assert callback.runner.best_round == best["round"]
    assert trainer.state.best_metric == pytest.approx(best["macro_f1"])


# --------------------------------------------------------------------------- no side effects outside training
def test_construction_alone_changes_nothing_on_the_trainer(make_trainer, preprocess, pool_teacher, tmp_path):
    def compute_metrics(eval_pred):
        return {"my_metric": 0.5}

    trainer = make_trainer(max_steps=5, eval_steps=5)
    trainer.compute_metrics = compute_metrics
    ActiveKDCallback(trainer, pool_teacher, ActiveKDConfig(samples_per_round=4), preprocess=preprocess)  # never added
    assert trainer.compute_metrics is compute_metrics
    assert "create_model_card" not in vars(trainer)  # the class's method, not a wrapper
    trainer.train()
    trainer.create_model_card(model_name="plain")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "hf-activekd" not in readme and "Active knowledge distillation" not in readme
    assert not (tmp_path / "out" / "activekd").exists()


def test_hooks_live_only_while_training_and_registered(make_trainer, preprocess, pool_teacher, tmp_path):
    def compute_metrics(eval_pred):
        return {"my_metric": 0.5}

    trainer = make_trainer(max_steps=5, eval_steps=5)
    trainer.compute_metrics = compute_metrics
    callback = _attach(trainer, pool_teacher, preprocess)
    assert trainer.compute_metrics is compute_metrics  # added, but training has not begun
    before = trainer.evaluate()  # an evaluation outside training: no round, the user's metrics
    assert before["eval_my_metric"] == 0.5 and callback.rounds == []
    trainer.train()
    assert len(callback.rounds) == 1 and callback.rounds[0]["eval_metrics"]["eval_my_metric"] == 0.5
    assert trainer.compute_metrics is compute_metrics  # given back at the end of training
    # the card hook stays for the README flow (train, then push_to_hub -> create_model_card)
    readme = tmp_path / "out" / "README.md"
    readme.unlink()
    trainer.create_model_card(model_name="student")
    assert "### Rounds" in readme.read_text()
    # ... and goes quiet once the callback is removed
    trainer.remove_callback(callback)
    readme.unlink()
    trainer.create_model_card(model_name="student")
    assert "Active knowledge distillation" not in readme.read_text()
