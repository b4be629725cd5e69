"""Runs and checkpoints: a fresh run never replays an earlier one, a resume restores from any checkpoint path, and
every process takes its round decisions from the main process's state."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import torch
from transformers import TrainerControl, TrainerState

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher
from hf_activekd.server import ScriptedBackend, TeacherServer


def _config(**kw):
    # uniform allocation: the same request keys in every run, whatever the student predicts
    return ActiveKDConfig(samples_per_round=8, samples_per_request=2, allocation="uniform", patience=0, **kw)


def _train(make_trainer, preprocess, server, spy=False, resume=None, **args):
    trainer = make_trainer(**args)
    callback = ActiveKDCallback(trainer, TGITeacher(server.url), _config(), preprocess=preprocess, progress=False)
    trainer.add_callback(callback)
    seen = {}
    if spy:

        def first_step(args, state, control, **kwargs):  # what the run holds before its first batch
            seen.setdefault("rounds", json.loads(json.dumps(callback.rounds)))
            seen.setdefault("rows", len(callback.runner.pool.rows()))

        callback.on_step_begin = first_step
    trainer.train(resume_from_checkpoint=resume)
    return callback, seen


def test_a_fresh_run_in_a_used_output_dir_starts_clean(make_trainer, preprocess, tmp_path):
    out = tmp_path / "run"
    with TeacherServer(ScriptedBackend()) as server:
        _train(make_trainer, preprocess, server, output_dir=out, max_steps=10)
        assert server.stats["generations"] == 4  # round 0; none at the last step (10)
        old_files = sorted(p.name for p in (out / "activekd").iterdir())

        callback, seen = _train(make_trainer, preprocess, server, spy=True, output_dir=out, max_steps=10)
        assert server.stats["generations"] == 8  # the new run asked its teacher: nothing credited from the old run
    assert seen == {"rounds": [], "rows": 0}  # the first batches saw none of the old rows
    assert all(r["cache_hits"] == 0 and r["replayed"] == 0 for r in callback.rounds)
    moved = sorted(tmp_path.glob("run/activekd.old-*"))
    assert len(moved) == 1 and sorted(p.name for p in moved[0].iterdir()) == old_files  # moved aside, not deleted
    assert [r["round"] for r in json.loads((out / "activekd" / "rounds.json").read_text())] == [0, 1]


def test_resume_from_a_checkpoint_outside_output_dir(make_trainer, preprocess, tmp_path):
    common = dict(max_steps=20, save_strategy="steps", save_steps=10)
    with TeacherServer(ScriptedBackend()) as server:
        first, _ = _train(make_trainer, preprocess, server, output_dir=tmp_path / "a", **common)
        copy = shutil.copytree(tmp_path / "a" / "checkpoint-10", tmp_path / "elsewhere" / "checkpoint-10")
        shutil.rmtree(tmp_path / "a")  # only the copied checkpoint is left

        callback, seen = _train(
            make_trainer, preprocess, server, spy=True, resume=str(copy), output_dir=tmp_path / "b", **common
        )
    assert seen["rounds"] == json.loads(json.dumps(first.rounds[:2]))
    assert seen["rows"] == 16  # the rows of rounds 0 and 1 came with the checkpoint
    assert [r["round"] for r in callback.rounds] == [0, 1, 2, 3]
    assert len(list((tmp_path / "b" / "activekd").glob("round-*.jsonl"))) == 3  # none at the last step


def test_every_rank_takes_the_main_process_state_on_resume(make_trainer, preprocess, tmp_path, monkeypatch):
    # The main process's checkpoint: two generated rounds, max_rounds=2 reached.
    with TeacherServer(ScriptedBackend()) as server:
        main, _ = _train(make_trainer, preprocess, server, output_dir=tmp_path / "node0", max_steps=11)
    main_state = json.loads(json.dumps(main.runner.state_dict()))

    # Rank 2 of 4, on another node without a shared file system: nothing of the run on its disk. The collectives
    # are simulated: each broadcast delivers what the main process sends.
    import accelerate.utils

    import hf_activekd.distributed as distributed

    sent_by_main = [("ok", (main_state, "trainer_state.json", "unused-run-id"))]
    monkeypatch.setattr(distributed, "_distributed_world", lambda: (2, 4, True))
    monkeypatch.setattr(
        accelerate.utils,
        "broadcast_object_list",
        lambda payload, from_process=0: payload.__setitem__(0, sent_by_main.pop(0) if sent_by_main else ("ok", None)),
    )
    trainer = make_trainer(output_dir=tmp_path / "node1", max_steps=20)
    callback = ActiveKDCallback(
        trainer, TGITeacher("http://127.0.0.1:9"), _config(max_rounds=2, check_teacher=False), preprocess=preprocess
    )
    state = TrainerState(global_step=10, stateful_callbacks={})  # this node's checkpoint lacks the state
    callback.on_train_begin(trainer.args, state, TrainerControl(), train_dataloader=None)
    assert callback.rounds == main_state["rounds"] and callback.runner.run_id == main_state["run_id"]
    assert len(callback.runner.pool.rows()) == 16  # this node's round files were written from the main's state
    # so the next evaluation takes the main process's decision (max_rounds reached: no broadcast, no teacher call)
    record = callback.runner.run(_any_report(main))
    assert "max_rounds=2 reached" in record["skipped"]


def _any_report(callback):
    from hf_activekd import build_report

    labels = torch.arange(4).repeat(3)
    logits = torch.nn.functional.one_hot(labels, 4).float().numpy()
    return build_report(logits, labels.numpy(), callback.label_names)


def test_rows_are_sharded_by_data_parallel_rank(make_trainer, preprocess, pool_teacher):
    # 4 processes, tensor parallelism of 2: processes 0-1 share one batch, 2-3 another (accelerate's mesh layout)
    trainer = make_trainer()
    callback = ActiveKDCallback(trainer, pool_teacher, _config(), preprocess=preprocess)
    trainer.accelerator = SimpleNamespace(
        dispatch_batches=False, parallelism_config=SimpleNamespace(tp_size=2, cp_size=1, sp_size=1)
    )
    shards = []
    for process_index in range(4):
        loader = torch.utils.data.DataLoader([0, 1], collate_fn=lambda rows: rows)
        callback._install_collator(SimpleNamespace(process_index=process_index, world_size=4), loader)
        shards.append((loader.collate_fn.rank, loader.collate_fn.world_size))
    assert shards == [(0, 2), (0, 2), (1, 2), (1, 2)]
