"""The generated pool: rows never carry validation text (exact and near copies of eval texts are dropped as
``eval_text``), a request never yields more rows than it asked for, and nothing on disk is ever deleted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from datasets import Dataset

from hf_activekd import (
    ActiveKDCallback,
    ActiveKDConfig,
    GeneratedSample,
    RoundRunner,
    RowFilter,
    Teacher,
    TeacherResponse,
    build_report,
)
from hf_activekd.pool import GeneratedPool
from testing_utils import LABELS, MARKER, make_texts

QUOTED = re.compile(r'^- "(.+?)"(?: true: (\w+)| \(predicted: \w+\))?', re.MULTILINE)


def _long_texts(n_per_class, seed):
    """Validation texts of about 130 characters (four short topic texts of one class, joined)."""
    texts, labels = make_texts(4 * n_per_class, seed=seed)
    by_class = {i: [t for t, y in zip(texts, labels) if y == i] for i in range(len(LABELS))}
    out = [(", ".join(ts[j : j + 4]) + ".", y) for y, ts in by_class.items() for j in range(0, len(ts), 4)]
    return [t for t, _ in out], [y for _, y in out]


def _near_copies(text):
    """What an echoing teacher writes: the text itself, in capitals with other punctuation, with one word changed,
    and wrapped in words of its own."""
    words = text.split()
    changed = " ".join(words[:3] + ["senate"] + words[4:])
    return [text, text.upper().replace(",", ";").rstrip(".") + "!", changed, f"Here is one: {text} Thanks"]


class EchoTeacher(Teacher):
    """Writes back every validation text quoted in the prompt, and near copies of it, under the requested class
    (earlier generated samples, also quoted, start with the marker word)."""

    name = "echo"

    def __init__(self):
        self.quoted = []

    def generate(self, requests, progress=True):
        responses = []
        for request in requests:
            content = request.messages[-1]["content"]
            quoted = [m.group(1) for m in QUOTED.finditer(content) if not m.group(1).startswith(MARKER)]
            self.quoted += quoted
            samples = [GeneratedSample(c, request.label) for q in quoted for c in _near_copies(q)]
            samples.append(GeneratedSample(f"{MARKER} a fresh example for {request.key}", request.label))
            responses.append(TeacherResponse(key=request.key, samples=samples))
        return responses


def _key(text):
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def test_echoed_validation_texts_never_reach_the_round_files(make_trainer, preprocess, tokenizer):
    texts, labels = _long_texts(4, seed=2)
    val = Dataset.from_dict({"text": texts, "label": labels})
    val = val.map(lambda rows: tokenizer(rows["text"], truncation=True), batched=True)
    trainer = make_trainer(eval_dataset=val, max_steps=10, eval_steps=5)
    teacher = EchoTeacher()
    config = ActiveKDConfig(samples_per_round=8, samples_per_request=2, patience=0, num_hard_negatives=4)
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=preprocess)
    trainer.add_callback(callback)
    trainer.train()

    assert teacher.quoted  # prompts did quote validation texts (hard negatives, correct and missed examples)
    rows = [json.loads(line) for p in Path(callback.output_dir).glob("round-*.jsonl") for line in p.open()]
    assert rows and all(r["text"].startswith(MARKER) for r in rows)  # only the fresh texts
    leaked = {_key(t) for t in texts} & {_key(r["text"]) for r in rows}
    assert not leaked
    dropped = sum(r["dropped"].get("eval_text", 0) for r in callback.rounds)
    assert dropped == 4 * len(teacher.quoted)


def _report():
    labels = np.repeat(np.arange(4), 2)
    return build_report(np.eye(4)[labels] * 2.0, labels, LABELS)


class Fixed(Teacher):
    name = "fixed"

    def __init__(self, texts):
        self.texts = texts

    def generate(self, requests, progress=True):
        return [
            TeacherResponse(key=r.key, samples=[GeneratedSample(t, r.label) for t in self.texts]) for r in requests
        ]


def test_eval_texts_are_known_from_the_start(tmp_path):
    texts, _ = _long_texts(2, seed=3)
    other, _ = _long_texts(1, seed=4)
    echoed = [c for t in texts[:2] + other[:1] for c in _near_copies(t)]
    fresh = f"{MARKER} a text nobody has seen before today"
    config = ActiveKDConfig(samples_per_round=1, samples_per_request=1, allocation="uniform")
    runner = RoundRunner(Fixed([*echoed, fresh]), config, LABELS, tmp_path, eval_texts=texts)
    # no texts in this round's prompts (e.g. misaligned predictions): the eval set is still known
    record = runner.run(_report(), eval_texts=None)
    # the 4 copies of `other` and the fresh text are not eval texts; one of them is accepted (1 sample was asked for),
    # the copy of it in capitals is a near-duplicate of it (quality gate), the others are over the request
    assert record["dropped"] == {"eval_text": 8, "near_duplicate": 1, "over_request": 3} and record["accepted"] == 1
    # texts the user passes for the prompts (not the eval dataset's) are protected as well
    runner = RoundRunner(Fixed([*echoed, fresh]), config, LABELS, tmp_path / "b", eval_texts=texts)
    record = runner.run(_report(), eval_texts=other * 2)
    assert record["dropped"] == {"eval_text": 12} and record["accepted"] == 1


def test_row_filter_near_copies_and_unrelated_texts():
    texts, _ = _long_texts(25, seed=5)  # 100 texts
    rows = RowFilter(LABELS, eval_texts=texts)
    for text in texts[:10]:
        for copy in _near_copies(text):
            assert rows.check(GeneratedSample(copy, "sports")) == "eval_text", copy
        fragment = text[: len(text) // 2]  # a copied part of a validation text
        assert rows.check(GeneratedSample(fragment, "sports")) == "eval_text", fragment
    fresh, _ = _long_texts(25, seed=6)
    assert sum(rows.check(GeneratedSample(t, "sports")) is None for t in fresh) == len(fresh)
    assert rows.check(GeneratedSample("the match today", "sports")) is None  # a short common phrase is not a copy


def test_texts_of_every_eval_dataset_are_protected(make_trainer, preprocess, tokenizer):
    texts, labels = _long_texts(2, seed=8)
    ood = Dataset.from_dict({"text": texts, "label": labels})
    ood = ood.map(lambda rows: tokenizer(rows["text"], truncation=True), batched=True)
    trainer = make_trainer(max_steps=6, eval_steps=5)  # a round at step 5; none at the last step
    trainer.eval_dataset = {"val": trainer.eval_dataset, "ood": ood}
    fresh = f"{MARKER} a text nobody has seen before today"
    config = ActiveKDConfig(samples_per_round=1, samples_per_request=1, patience=0)
    callback = ActiveKDCallback(trainer, Fixed([texts[0].upper(), fresh]), config, preprocess=preprocess)
    trainer.add_callback(callback)
    trainer.train()
    assert callback.rounds[0]["accepted"] == 1 and callback.rounds[0]["dropped"] == {"eval_text": 1}


def test_a_teacher_writing_more_than_asked_gets_the_extra_rows_dropped():
    """The teacher answers 5 samples to a request for 2: only 2 rows are accepted (a round never trains on more rows
    than ``samples_per_round``), the other 3 are counted as ``over_request``."""
    from hf_activekd import TeacherRequest

    request = TeacherRequest(key="r0/sports/0", label="sports", num_samples=2)
    samples = [
        GeneratedSample(text=f"a fresh sports story number {i} about the match", label="sports") for i in range(5)
    ]
    rows, drops = RowFilter(LABELS).accept(request, samples, round_index=0, teacher="t")
    assert [r["text"] for r in rows] == [s.text for s in samples[:2]]
    assert drops == {"over_request": 3}


def test_every_discarded_round_file_is_kept(tmp_path):
    pool = GeneratedPool(tmp_path)
    for attempt in range(3):  # three resumes from the same checkpoint, each after round 1 was generated again
        pool.write_round(0, [{"text": "kept", "label": "a"}])
        pool.write_round(1, [{"text": f"attempt {attempt}", "label": "a"}])
        pool.remove_rounds_after(0)
    discarded = sorted(p.name for p in tmp_path.glob("round-0001.jsonl.discarded*"))
    assert discarded == ["round-0001.jsonl.discarded", "round-0001.jsonl.discarded.1", "round-0001.jsonl.discarded.2"]
    texts = sorted((tmp_path / name).read_text() for name in discarded)
    assert texts == [f'{{"text": "attempt {i}", "label": "a"}}\n' for i in range(3)]
    assert [r["text"] for r in pool.rows()] == ["kept"]
