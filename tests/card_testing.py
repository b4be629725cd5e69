"""Helpers shared by the card and publishing tests: a tiny training run with the callback, a pool teacher whose rows
carry the marker, the files of a folder, and hand-made card inputs (two rounds, two classes)."""

from __future__ import annotations

from pathlib import Path

from hf_activekd import ActiveKDCallback, ActiveKDConfig
from hf_activekd.card import CardInputs

SECRET = "hf_dummySECRETdoNotLeak0123456789"


def train_tiny(make_trainer, pool_teacher, preprocess, *, callback_kwargs=None, config=None, **overrides):
    """A tiny Trainer run with the callback and a PoolTeacher (lr 1e-2 makes the student learn)."""
    overrides.setdefault("max_steps", 20)
    trainer = make_trainer(**overrides)
    settings = {"samples_per_round": 8, "samples_per_request": 4, "patience": 0, **(config or {})}
    callback = ActiveKDCallback(
        trainer,
        teacher=pool_teacher,
        config=ActiveKDConfig(**settings),
        preprocess=preprocess,
        progress=False,
        **(callback_kwargs or {}),
    )
    trainer.add_callback(callback)
    trainer.train()
    return trainer, callback


def all_files_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def card_inputs(**kwargs) -> CardInputs:
    """Card inputs of a two-round run over classes ``a`` and ``b``; ``kwargs`` replace fields."""
    rounds = [
        {
            "round": i,
            "global_step": 5 * (i + 1),
            "metric": "macro_f1",
            "metric_value": 0.5 + i / 10,
            "accuracy": 0.6 + i / 10,
            "macro_f1": 0.5 + i / 10,
            "eval_metrics": {"eval_loss": 1.0 - i / 10},
            "per_class_f1": {"a": 0.1 * i, "b": 0.5},
            "generated": True,
            "requested": 4,
            "accepted": 2,
            "dropped": {"duplicate": 1, "too_short": 1},
            "requests": 2,
            "failed_requests": 0,
            "tokens_in": 100,
            "tokens_out": 50,
            "cost": 0.25,
            "wall_time_s": 3.0,
            "reasons": {f"r{i:04d}/a/0": "weak class", f"r{i:04d}/b/0": "confused with 'a'"},
        }
        for i in range(2)
    ]
    defaults = dict(
        model_name="m",
        model_repo_id="ns/m",
        dataset_repo_id="ns/m-activekd-data",
        label_names=["a", "b"],
        rounds=rounds,
        rows=[{"text": "x" * 20, "label": "a", "round": 0, "reason": "weak class", "teacher": "t"}],
        best_round=1,
        teacher={"name": "t", "type": "TGITeacher"},
    )
    defaults.update(kwargs)
    return CardInputs(**defaults)
