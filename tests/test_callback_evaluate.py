"""What `ActiveKDCallback.on_evaluate` makes of an evaluation in a real (tiny) Trainer: which eval dataset of a dict it
follows, which validation texts its prompts show (in the order the predictions came), and which rounds it pays for."""

from __future__ import annotations

import random
import re

from datasets import Dataset
from transformers import TrainerCallback

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher
from hf_activekd.eval_alignment import align_texts, evaluated_key
from testing_utils import FILLER, LABELS, MARKER, TOPIC_WORDS, make_dataset, make_texts


class RecordingTeacher(PoolTeacher):
    """A PoolTeacher that keeps every request it receives (the prompts the teacher would read)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received = []

    def generate(self, requests, progress=True):
        self.received.extend(requests)
        return super().generate(requests, progress=progress)


def _teacher() -> RecordingTeacher:
    texts, labels = make_texts(60, seed=7)
    return RecordingTeacher([f"{t} {MARKER}" for t in texts], labels, label_names=LABELS, seed=0)


def _attach(trainer, teacher, preprocess, **config):
    config.setdefault("samples_per_round", 8)
    config.setdefault("samples_per_request", 2)
    config.setdefault("patience", 0)
    callback = ActiveKDCallback(
        trainer, teacher=teacher, config=ActiveKDConfig(**config), preprocess=preprocess, progress=False
    )
    trainer.add_callback(callback)
    return callback


def _varied_lengths(tokenizer, n_per_class: int, seed: int) -> Dataset:
    """Texts of 3 to 40 words, so that a length-grouped sampler reorders them; each ends with a unique number."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label_id, label in enumerate(LABELS):
        for _ in range(n_per_class):
            words = rng.sample(TOPIC_WORDS[label], 2) + [rng.choice(FILLER) for _ in range(rng.randrange(1, 38))]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(label_id)
    order = list(range(len(texts)))
    rng.shuffle(order)
    texts = [f"{texts[i]} {n}" for n, i in enumerate(order)]
    labels = [labels[i] for i in order]
    ds = Dataset.from_dict({"text": texts, "label": labels})
    return ds.map(lambda rows: tokenizer(rows["text"], truncation=True), batched=True)


_QUOTED = re.compile(r'^- "(?P<text>.*)"(?P<rest>.*)$')


def _shown_texts(request):
    """(text, class the prompt says it belongs to) for every validation text a prompt shows."""
    claims = []
    section = None
    for line in request.messages[-1]["content"].splitlines():
        header = re.match(r"Examples of '(.+)' the student gets (right|wrong):", line)
        if header:
            section = header.group(1)
            continue
        if line.startswith("Hard negatives"):
            section = "hard"
            continue
        if line.startswith("Examples generated earlier"):
            section = None
            continue
        match = _QUOTED.match(line)
        if match is None or section is None:
            if not line.strip():
                section = None
            continue
        if section == "hard":
            claimed = re.match(r" true: (.+?), predicted:", match.group("rest")).group(1)
        else:
            claimed = section
        claims.append((match.group("text"), claimed))
    return claims


def test_prompts_show_texts_of_the_class_they_claim_with_a_length_grouped_eval_sampler(
    make_trainer, tokenizer, preprocess
):
    train = _varied_lengths(tokenizer, 8, seed=1)
    val = _varied_lengths(tokenizer, 10, seed=2)
    trainer = make_trainer(
        train=train,
        eval_dataset=val,
        train_sampling_strategy="group_by_length",
        per_device_eval_batch_size=8,
        max_steps=10,
        eval_steps=5,
    )
    teacher = _teacher()
    callback = _attach(trainer, teacher, preprocess, samples_per_round=16, num_hard_negatives=4)
    trainer.train()

    truth = dict(zip(val["text"], (LABELS[i] for i in val["label"])))
    shown = [claim for request in teacher.received for claim in _shown_texts(request)]
    assert callback.rounds[0]["generated"] and len(shown) >= 10
    wrong = [(text, claimed, truth[text]) for text, claimed in shown if truth[text] != claimed]
    assert wrong == []


def test_align_texts_never_returns_misaligned_texts():
    texts, labels = ["a", "b", "c", "d"], [0, 1, 0, 1]
    assert align_texts(texts, labels, [1, 1, 0, 0], [1, 3, 0, 2]) == (["b", "d", "a", "c"], None)
    assert align_texts(texts, labels, [0, 1, 0, 1], None) == (texts, None)
    aligned, why = align_texts(texts, labels, [1, 1, 0, 0], None)  # not dataset order, order unknown
    assert aligned is None and "labels" in why
    aligned, why = align_texts(texts, labels, [1, 1, 0, 0], [0, 1, 2, 3])  # a recorded order that does not fit
    assert aligned is None


def test_dict_of_eval_datasets_one_round_per_evaluation(make_trainer, tokenizer, datasets_small, preprocess):
    _, val = datasets_small
    ood = make_dataset(tokenizer, 6, seed=5)
    trainer = make_trainer(eval_dataset={"val": val, "val_ood": ood}, max_steps=10, eval_steps=5)
    teacher = _teacher()
    callback = _attach(trainer, teacher, preprocess)
    trainer.train()
    rounds = callback.rounds
    assert [r["global_step"] for r in rounds] == [5, 10]  # one round per evaluation, not one per dataset
    for record in rounds:
        assert record["eval_metrics"] and all(
            k.startswith("eval_val_") and not k.startswith("eval_val_ood_")
            for k in record["eval_metrics"]
            if k != "epoch"
        )
    assert len(teacher.received) == rounds[0]["requests"]


def test_evaluated_key_is_exact():
    keys = ["val", "val_ood"]
    assert evaluated_key({"eval_val_loss": 1.0, "eval_val_runtime": 0.1, "epoch": 1.0}, keys) == "val"
    assert evaluated_key({"eval_val_ood_loss": 1.0, "eval_val_ood_runtime": 0.1}, keys) == "val_ood"
    assert evaluated_key({"eval_loss": 1.0}, keys) is None


def test_no_round_is_paid_for_when_no_training_is_left(make_trainer, preprocess):
    trainer = make_trainer(max_steps=10, eval_steps=5)  # the last step is an evaluation step
    teacher = _teacher()
    callback = _attach(trainer, teacher, preprocess)
    trainer.train()
    first, last = callback.rounds
    assert first["generated"] and len(teacher.received) == first["requests"] > 0
    assert not last["generated"] and last["requested"] == 0 and last["skipped"].startswith("last step")
    assert last["metric_value"] is not None  # judged all the same


class StopAtStep(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def test_no_round_when_another_callback_stops_training(make_trainer, preprocess):
    trainer = make_trainer(max_steps=20, eval_steps=5)
    trainer.add_callback(StopAtStep(5))
    teacher = _teacher()
    callback = _attach(trainer, teacher, preprocess)
    trainer.train()
    assert trainer.state.global_step == 5
    assert [r["generated"] for r in callback.rounds] == [False] and teacher.received == []
    assert "no training left" in callback.rounds[0]["skipped"]
