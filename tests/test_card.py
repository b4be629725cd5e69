"""The model card, dataset card, plot and latency of a run, written into output_dir without any push."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher
from hf_activekd.card import (
    BLOCK_START,
    CardInputs,
    build_model_card,
    escape_markdown_cell,
    latency_section,
    merge_model_card,
    public_description,
    teacher_latency,
)
from testing_utils import LABELS, MARKER, build_trainer, make_texts, torch_device

SECRET = "hf_dummySECRETdoNotLeak0123456789"

# setfit style: the whole card, metadata and sections, in order.
CARD_PATTERN = re.compile(
    r"""---
datasets:
- (?P<dataset_repo>\S+-activekd-data)
library_name: transformers
pipeline_tag: text-classification
tags:
- hf-activekd
- knowledge-distillation
- synthetic-data
model-index:
- name: (?P<name>\S+)
  results:
  - task:
      type: text-classification
      name: Text Classification
    dataset:
      name: validation set
      type: custom
      split: validation
    metrics:
    - type: accuracy
      value: [\d.]+
      name: Accuracy \(final\)
    - type: f1
      value: [\d.]+
      name: Macro-F1 \(final\)
      config: macro
    - type: accuracy
      value: [\d.]+
      name: Accuracy \(best, round \d+\)
    - type: f1
      value: [\d.]+
      name: Macro-F1 \(best, round \d+\)
      config: macro
---

# (?P=name)

A text classifier over 4 classes, trained with active knowledge distillation from """
    r"""`pool-simulation` \(PoolTeacher\), a \*\*simulation\*\* \(real held-back examples, no LLM\)\.

<!-- hf-activekd:start -->
## Active knowledge distillation

.*
- \*\*Rounds:\*\* (?P<rounds>\d+) evaluations, \d+ with teacher requests\.
- \*\*Generated rows accepted:\*\* (?P<accepted>\d+) of \d+ requested\.
- \*\*Teacher tokens:\*\* 0 in, 0 out\.
- \*\*Validation:\*\* accuracy [\d.]+ → [\d.]+, macro-F1 [\d.]+ → [\d.]+ \(round 0 → \d+\)\.
- \*\*Best round:\*\* \d+ \(step \d+\), macro_f1 = [\d.]+\.
.*- \*\*Weights in this repository:\*\* the weights at the end of training \(step \d+\).*

### Teacher

- \*\*Teacher:\*\* `pool-simulation` \(PoolTeacher\), a \*\*simulation\*\*.*

### Key configuration

\| Setting \| Value \|
\| --- \| --- \|
.*\| `samples_per_round` \| 8 \|
.*\| `allocation` \| guided \|
.*\| `patience` \| 0 \|
.*\| `mix_mode` \| append \|
.*
### Rounds

\| Round \| Step \| Eval loss \| Accuracy \| Macro-F1 \| Requested \| Accepted \| Dropped \(by reason\) """
    r"""\| Tokens in \| Tokens out \| Wall time \(s\) \|
\|( --- \|){11}
(?P<table>(\| \d+( ★)? \| \d+ \| \d\.\d{4} \| \d\.\d{4} \| \d\.\d{4} \| [^\n]+ \|\n)+)
★ marks the best round by `macro_f1`\..*

!\[Metrics and samples per round\]\(activekd_rounds\.png\)

### Per-class F1, first and last round

\| Class \| F1, round 0 \| F1, round \d+ \| Change \| Generated rows \|
\| --- \| --- \| --- \| --- \| --- \|
(\| (sports|politics|science|cooking) \| [\d.]+ \| [\d.]+ \| [+-][\d.]+ \| \d+ \|\n){4}
### Generated examples

Up to 3 per round \(shortened\):

\| Round \| Label \| Text \| Requested because \|
\| --- \| --- \| --- \| --- \|
(\| \d+ \| \w+ \| [^\n]+ \| [^\n]+ \|\n)+
### Inference latency: student and teacher

- \*\*Student:\*\* [\d.]+ ms per sample, measured on \d+ evaluation samples in batches of 16 on `(?P<device>[\w:]+)`\.
- \*\*Teacher:\*\* [\d.]+ ms per accepted sample .*
- \*\*Ratio \(teacher / student time per sample\):\*\* \*\*[\d.,e+-]+x\*\* \(PGKD reports 130x.*
- The teacher here is a \*\*simulation\*\* .*\*\*not meaningful\*\*\.

### Generated data

The (?P=accepted) accepted generated rows .* \[(?P=dataset_repo)\]\(.*/datasets/(?P=dataset_repo)\).*

### How to reproduce

```python
.*ActiveKDConfig\(
    samples_per_round=8,
.*trainer\.push_to_hub\(\).*
```
.*<!-- hf-activekd:end -->\n?""",
    re.DOTALL,
)


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


def make_pool_teacher():
    texts, labels = make_texts(60, seed=7)
    return PoolTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS, seed=0)


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


def _inputs(**kwargs) -> CardInputs:
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


def test_escape_markdown_cell_makes_hostile_text_one_safe_cell():
    text = "a | b\nnext line <script>alert(1)</script> `code` " + "long " * 50
    cell = escape_markdown_cell(text, max_chars=80)
    assert "\n" not in cell and "<script>" not in cell and "&lt;script&gt;" in cell
    assert re.search(r"(?<!\\)\|", cell) is None  # every pipe escaped
    assert cell.endswith("…") and len(cell) < 120

    inputs = _inputs(rows=[{"text": text, "label": "a", "round": 0, "reason": "x|y", "teacher": "t"}])
    card = str(build_model_card(inputs))
    example_rows = [line for line in card.splitlines() if line.startswith("| 0 | a |")]
    assert len(example_rows) == 1 and example_rows[0].count(" | ") == 3  # still four cells


def test_no_secret_from_the_teacher_description_reaches_the_card():
    teacher = {
        "name": "llama",
        "type": "TGITeacher",
        "endpoint": f"https://user:{SECRET}@tgi.example.com:8080/v1?api_key=sk-abcdef",
        "token": SECRET,
        "api_key": "sk-abcdef",
        "headers": {"Authorization": f"Bearer {SECRET}"},
        "max_total_tokens": 1000,
    }
    assert "max_total_tokens" in public_description(teacher) and "token" not in public_description(teacher)
    card = str(build_model_card(_inputs(teacher=teacher), secrets=[SECRET]))
    assert SECRET not in card and "sk-abcdef" not in card and "user:" not in card
    assert "tgi.example.com:8080" in card and "- `max_total_tokens`: 1000" in card


def test_cost_column_and_latency_ratio_for_a_real_teacher():
    inputs = _inputs(
        answers={"r0000/a/0": {"latency_s": 1.0}, "r0000/b/0": {"latency_s": 1.0}, "r0001/a/0": {"latency_s": 2.0}},
        student_latency={"ms_per_sample": 2.0, "samples": 64, "batch_size": 16, "device": "cpu"},
    )
    measured = teacher_latency(inputs.rounds, inputs.answers)
    # round 0: 2 s from its answers; round 1: one answer (2 s); 4 accepted samples -> 1000 ms per sample
    assert measured["ms_per_sample"] == pytest.approx(1000.0) and measured["accepted"] == 4
    section = latency_section(inputs)
    assert "**500x**" in section and "not meaningful" not in section
    # without answers the round wall time is used
    assert teacher_latency(inputs.rounds)["ms_per_sample"] == pytest.approx(1500.0)
    card = str(build_model_card(inputs))
    assert "| Cost |" in card and "| 0.2500 |" in card
    assert "2 (duplicate: 1, too\\_short: 1)" in card
    simulated = latency_section(_inputs(is_simulation=True, student_latency=inputs.student_latency))
    assert "not meaningful" in simulated


def test_merge_into_a_foreign_card_keeps_its_text():
    ours = build_model_card(_inputs())
    foreign = ModelCard("---\nlicense: mit\ntags:\n- mine\n---\n\n# Mine\n\nMy own words.\n")
    merged = merge_model_card(foreign, ours, _inputs())
    again = merge_model_card(ModelCard(str(merged)), build_model_card(_inputs()), _inputs())
    text = str(again)
    assert "My own words." in text and text.count(BLOCK_START) == 1
    assert again.data.license == "mit" and again.data.tags[:1] == ["mine"] and "hf-activekd" in again.data.tags


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


# --------------------------------------------------------------------------- a sharded student is not timed alone
def _zero(stage):
    from types import SimpleNamespace

    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=stage)))


def _parallel(**sizes):
    from types import SimpleNamespace

    flags = {"tp_enabled": False, "dp_shard_enabled": False, "cp_enabled": False, "sp_enabled": False, **sizes}
    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=None), parallelism_config=SimpleNamespace(**flags))


@pytest.mark.parametrize(
    "simulate, shown",
    [
        ({"is_fsdp_enabled": True}, "FSDP"),
        ({"is_deepspeed_enabled": True, "accelerator": _zero(3)}, "DeepSpeed ZeRO-3"),
        ({"accelerator": _parallel(tp_enabled=True)}, "tensor parallel"),
        ({"accelerator": _parallel(dp_shard_enabled=True)}, "FSDP"),
        ({"model.tp_size": 2}, "tensor parallel"),
        ({"is_deepspeed_enabled": True, "accelerator": _zero(2)}, None),  # ZeRO-2 keeps whole weights: timed
    ],
)
def test_sharded_student_is_not_timed_alone(make_trainer, pool_teacher, preprocess, monkeypatch, simulate, shown):
    # The card is written on the main process only: a forward pass there alone would hang a sharded model.
    trainer, callback = train_tiny(make_trainer, pool_teacher, preprocess, max_steps=5)
    for name, value in simulate.items():
        target, attr = (trainer.model, "_tp_size") if name == "model.tp_size" else (trainer, name)
        monkeypatch.setattr(target, attr, value, raising=False)
    forwards = []
    handle = trainer.model.register_forward_pre_hook(lambda module, args: forwards.append(1))
    try:
        callback.publisher.on_train_end()
    finally:
        handle.remove()
    readme = (Path(trainer.args.output_dir) / "README.md").read_text()
    if shown is None:
        assert forwards and "ms per sample, measured on" in readme
    else:
        assert forwards == []
        assert f"- **Student:** not measured: the model is sharded across processes ({shown})" in readme


def test_teacher_agreement_column_only_when_a_round_verified():
    plain = str(build_model_card(_inputs()))
    assert "Teacher agreement" not in plain
    inputs = _inputs()
    inputs.rounds[1].update(
        verify_requests=2, verify_checked=4, verify_agreed=3, verify_agreement=0.75, verify_unverified=1
    )
    inputs.rounds[1].update(verify_failed_requests=1, verify_errors={"budget exhausted": 1})
    inputs.rounds[1]["dropped"] = {"disagreement": 1}
    card = str(build_model_card(inputs))
    header = next(line for line in card.splitlines() if line.startswith("| Round |"))
    assert "| Dropped (by reason) | Teacher agreement | Tokens in |" in header
    assert "| 0.75 (3/4) + 1 unverified |" in card and "1 (disagreement: 1)" in card
    assert "labelled as they were written" in card
    assert "1 of 2 verification requests failed (budget exhausted): their rows were kept unverified" in card
