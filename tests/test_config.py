"""Configuration parsing and the clear errors a wrong setup gets before training starts."""

from __future__ import annotations

import pytest
from datasets import Dataset
from transformers import HfArgumentParser

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TeacherUnavailableError, TGITeacher


def test_config_parses_with_hf_argument_parser(tmp_path):
    parser = HfArgumentParser(ActiveKDConfig)
    (config,) = parser.parse_args_into_dataclasses(
        ["--samples_per_round", "32", "--allocation", "uniform", "--label_names", "x", "y", "--mix_mode", "replace"]
    )
    assert config.samples_per_round == 32 and config.allocation == "uniform" and config.label_names == ["x", "y"]
    path = tmp_path / "c.json"
    path.write_text('{"patience": 2, "metric_for_rounds": "accuracy"}')
    (config,) = parser.parse_json_file(str(path))
    assert config.patience == 2 and config.metric_for_rounds == "accuracy"
    from dataclasses import fields

    assert all(f.metadata.get("help") for f in fields(ActiveKDConfig))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples_per_round": 0}, "samples_per_round"),
        ({"allocation": "greedy"}, "allocation"),
        ({"mix_mode": "insert"}, "mix_mode"),
        ({"allocation_floor": 1.5}, "allocation_floor"),
        ({"min_chars": 10, "max_chars": 5}, "min_chars"),
        ({"label_names": ["a", "a"]}, "duplicates"),
        ({"mix_mode": "replace", "truncate_generated_rows": False}, "needs mix_mode='append'"),
    ],
)
def test_bad_config_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActiveKDConfig(**kwargs)


def test_no_evaluation_strategy(make_trainer, pool_teacher, preprocess):
    trainer = make_trainer(eval_strategy="no")
    with pytest.raises(ValueError, match="eval_strategy"):
        ActiveKDCallback(trainer, pool_teacher, preprocess=preprocess)


def test_no_eval_dataset(make_trainer, pool_teacher, preprocess):
    trainer = make_trainer(eval_dataset=None, eval_strategy="no")
    trainer.args.eval_strategy = "steps"
    with pytest.raises(ValueError, match="eval_dataset"):
        ActiveKDCallback(trainer, pool_teacher, preprocess=preprocess)


def test_label_names_do_not_match_model(make_trainer, pool_teacher, preprocess):
    trainer = make_trainer()
    with pytest.raises(ValueError, match="num_labels=4"):
        ActiveKDCallback(trainer, pool_teacher, ActiveKDConfig(label_names=["x", "y"]), preprocess=preprocess)


def test_labels_outside_known_ids(make_trainer, pool_teacher, preprocess, tokenizer):
    bad = Dataset.from_dict({"text": ["goal match", "vote law"], "label": [0, 7]}).map(
        lambda r: tokenizer(r["text"]), batched=True
    )
    trainer = make_trainer(train=bad)
    with pytest.raises(ValueError, match=r"class ids \[7\]"):
        ActiveKDCallback(trainer, pool_teacher, preprocess=preprocess)


def test_label_column_of_wrong_type(make_trainer, pool_teacher, preprocess, tokenizer):
    bad = Dataset.from_dict({"text": ["goal match", "vote law"], "label": ["sports", "politics"]}).map(
        lambda r: tokenizer(r["text"]), batched=True
    )
    trainer = make_trainer(train=bad)
    with pytest.raises(ValueError, match="integer class ids"):
        ActiveKDCallback(trainer, pool_teacher, preprocess=preprocess)


def test_preprocess_that_drops_model_columns(make_trainer, pool_teacher, tokenizer):
    trainer = make_trainer()
    with pytest.raises(ValueError, match="input_ids"):
        ActiveKDCallback(
            trainer,
            pool_teacher,
            preprocess=lambda rows: {"attention_mask": tokenizer(rows["text"])["attention_mask"]},
        )
    with pytest.raises(ValueError, match="failed on a probe batch"):
        ActiveKDCallback(trainer, pool_teacher, preprocess=lambda rows: rows["no_such_column"])


def test_teacher_must_be_a_teacher(make_trainer, preprocess):
    with pytest.raises(TypeError, match="Teacher"):
        ActiveKDCallback(make_trainer(), teacher="http://127.0.0.1:1", preprocess=preprocess)


def test_unreachable_teacher_fails_before_training(make_trainer, preprocess):
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    trainer = make_trainer()
    callback = ActiveKDCallback(trainer, TGITeacher(f"http://127.0.0.1:{port}"), preprocess=preprocess)
    trainer.add_callback(callback)
    with pytest.raises(TeacherUnavailableError, match=f"127.0.0.1:{port}"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_readme_documents_every_config_field():
    """The README's configuration table lists every field with its current default (docs and code agree)."""
    import dataclasses
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| field | default | what it does |") :].split("\n\n", 1)[0]
    for f in dataclasses.fields(ActiveKDConfig):
        assert f"| `{f.name}` |" in table, f"README's ActiveKDConfig table misses {f.name}"
        if f.default is not dataclasses.MISSING:
            assert f"| `{f.name}` | `{f.default!r}` |" in table, f"README's default of {f.name} is not {f.default!r}"
