"""The model card, dataset card, plot and latency of a run, written into output_dir without any push."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from card_testing import SECRET, all_files_bytes, train_tiny
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from model_card_pattern import CARD_PATTERN

from hf_activekd import ActiveKDCallback, ActiveKDConfig
from hf_activekd.card import BLOCK_START
from testing_utils import build_trainer, make_pool_teacher, torch_device


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory):
    """One tiny run shared by the tests of this module (the Hub token is set while it runs)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", SECRET)
        out = tmp_path_factory.mktemp("card") / "tiny-student"
        build = functools.partial(build_trainer, tokenizer, out)
        preprocess = lambda rows: tokenizer(rows["text"], truncation=True)  # noqa: E731
        yield train_tiny(build, make_pool_teacher(), preprocess, hub_model_id="tester/tiny-student")


def test_card_and_data_in_output_dir_without_push(trained):
    trainer, callback = trained
    out = Path(trainer.args.output_dir)
    rounds = callback.rounds
    rows = callback.runner.pool.rows()
    assert len(rounds) == 4 and rows

    text = (out / "README.md").read_text(encoding="utf-8")
    match = CARD_PATTERN.fullmatch(text)
    assert match, text
    assert match["name"] == "tiny-student" and match["dataset_repo"] == "tester/tiny-student-activekd-data"
    assert match["device"].split(":")[0] == torch_device  # "cuda:0" on a GPU
    assert int(match["rounds"]) == len(rounds) and int(match["accepted"]) == len(rows)
    table = match["table"].strip().splitlines()
    assert [int(line.split("|")[2]) for line in table] == [r["global_step"] for r in rounds]
    # eval loss, accuracy and macro-F1 in the table are the round records'
    for line, record in zip(table, rounds):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == f"{record['eval_metrics']['eval_loss']:.4f}"
        assert cells[3] == f"{record['accuracy']:.4f}" and cells[4] == f"{record['macro_f1']:.4f}"
        assert cells[6] == (str(record["accepted"]) if record["generated"] else "–")  # last step: not generated

    assert (out / "activekd_rounds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    generated = [json.loads(line) for line in (out / "activekd" / "generated.jsonl").read_text().splitlines()]
    assert len(generated) == len(rows)
    assert set(generated[0]) == {"text", "label", "round", "reason", "teacher", "origin"}
    assert {g["origin"] for g in generated} == {"generated"}  # annotated rows say "annotated" (test_annotation.py)
    dataset_card = (out / "activekd" / "dataset_card.md").read_text()
    assert "annotations_creators:\n- machine-generated" in dataset_card
    assert "[tester/tiny-student](" in dataset_card

    for name, content in all_files_bytes(out).items():
        assert SECRET.encode() not in content, name


def test_card_renders_and_model_index_parses(trained):
    trainer, callback = trained
    path = Path(trainer.args.output_dir) / "README.md"
    card = ModelCard.load(path)
    assert ModelCard(str(card)).content == card.content  # round trip
    assert card.data.library_name == "transformers"
    assert {"hf-activekd", "knowledge-distillation", "synthetic-data"} <= set(card.data.tags)
    assert card.data.base_model is None  # a model built from a config has no base model

    metadata = metadata_load(path)
    name, results = model_index_to_eval_results(metadata["model-index"])
    assert name == "tiny-student"
    final, best = callback.rounds[-1], callback.rounds[callback.runner.best_round]
    values = {r.metric_name: r.metric_value for r in results}
    assert values["Accuracy (final)"] == pytest.approx(final["accuracy"])
    assert values["Macro-F1 (final)"] == pytest.approx(final["macro_f1"])
    assert values[f"Macro-F1 (best, round {best['round']})"] == pytest.approx(best["macro_f1"])
    assert all(r.task_type == "text-classification" for r in results)
    assert best["macro_f1"] > callback.rounds[0]["macro_f1"] - 1e-9


def test_model_card_wrapper_keeps_trainer_card_and_is_idempotent(trained, tmp_path, monkeypatch):
    trainer, callback = trained
    monkeypatch.setattr(trainer.args, "output_dir", str(tmp_path))  # leave the shared run's README alone
    path = tmp_path / "README.md"
    trainer.create_model_card(model_name="tiny-student")
    trainer.create_model_card(model_name="tiny-student")
    text = path.read_text()
    assert text.count(BLOCK_START) == 1
    assert "## Training hyperparameters" in text or "### Training hyperparameters" in text  # the Trainer's card
    assert text.index(BLOCK_START) < text.index("## Model description")
    card = ModelCard.load(path)
    assert "generated_from_trainer" in card.data.tags and "hf-activekd" in card.data.tags
    assert len(card.data.eval_results) == 4


def test_only_the_main_process_writes(trained, monkeypatch, tmp_path):
    trainer, callback = trained
    monkeypatch.setattr(trainer.args, "output_dir", str(tmp_path))
    monkeypatch.setattr(trainer, "is_world_process_zero", lambda: False)
    pushed = []
    monkeypatch.setattr(callback.publisher, "_pushed_signature", None)
    monkeypatch.setattr("datasets.Dataset.push_to_hub", lambda *a, **k: pushed.append(a))
    callback.on_train_end(trainer.args, trainer.state, trainer.control)
    callback.on_push_begin(trainer.args, trainer.state, trainer.control)
    trainer.create_model_card()
    assert list(tmp_path.iterdir()) == [] and pushed == []


def test_latency_is_measured_on_the_eval_data(trained):
    trainer, callback = trained
    latency = callback.publisher._measure()
    assert latency is not None and latency["ms_per_sample"] > 0
    assert latency["batch_size"] == trainer.args.per_device_eval_batch_size
    assert latency["device"].split(":")[0] == torch_device
    assert latency["samples"] == len(trainer.eval_dataset) - trainer.args.per_device_eval_batch_size


def test_card_of_an_http_teacher_names_its_host_and_never_its_token(make_trainer, teacher_server, preprocess):
    from hf_activekd import TGITeacher

    teacher = TGITeacher(teacher_server.url, token=SECRET)
    trainer = make_trainer(max_steps=10)
    callback = ActiveKDCallback(
        trainer, teacher, ActiveKDConfig(samples_per_round=4, samples_per_request=2, patience=0), preprocess=preprocess
    )
    trainer.add_callback(callback)
    trainer.train()
    out = Path(trainer.args.output_dir)
    text = (out / "README.md").read_text()
    host = teacher_server.url.split("://", 1)[1].rstrip("/")
    assert "(TGITeacher, served at" in text and host in text
    assert "simulation" not in text
    assert re.search(r"\*\*Ratio \(teacher / student time per sample\):\*\* \*\*[\d.,e+]+x\*\*", text)
    assert callback.rounds[0]["tokens_in"] > 0 and f"| {callback.rounds[0]['tokens_in']} |" in text
    for name, content in all_files_bytes(out).items():
        assert SECRET.encode() not in content, name
