"""Tiny, offline building blocks for tests: a word-level tokenizer from a local vocabulary, a tiny BERT student,
a synthetic topic-classification data set, and a recorder of the tokens seen in forward passes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)
from transformers.testing_utils import torch_device  # "cuda" where a GPU is, else "cpu" (TRANSFORMERS_TEST_DEVICE)

# Tests run on the accelerator where there is one: the same suite checks the GPU path and passes on CPU-only CI.
require_torch_accelerator = pytest.mark.skipif(torch_device == "cpu", reason="test requires an accelerator")

MARKER = "activekdmarker"
LABELS = ["sports", "politics", "science", "cooking"]
TOPIC_WORDS = {
    "sports": ["match", "goal", "team", "coach", "league", "score", "season", "player"],
    "politics": ["vote", "election", "senate", "policy", "minister", "law", "party", "campaign"],
    "science": ["atom", "energy", "cell", "experiment", "theory", "galaxy", "molecule", "lab"],
    "cooking": ["recipe", "oven", "flour", "sauce", "garlic", "bake", "pan", "butter"],
}
FILLER = ["the", "a", "today", "new", "big", "about", "with", "and", "of", "in", "is", "was", "this", "that"]
EXTRA = [MARKER, "example", "text", "short", "probe", "another", "one"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def vocabulary() -> list[str]:
    words = [w for ws in TOPIC_WORDS.values() for w in ws] + FILLER + EXTRA + LABELS
    words += [str(i) for i in range(200)] + ["-", ".", ",", "'", "<", ">"]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + sorted(set(words))


def make_tokenizer(folder: str | os.PathLike) -> BertTokenizerFast:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = vocabulary()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True, model_max_length=64)
    tokenizer.save_pretrained(folder)
    return tokenizer


def make_model(num_labels: int = len(LABELS), labels: list[str] | None = None, seed: int = 0, vocab_size=None):
    torch.manual_seed(seed)
    labels = labels or LABELS[:num_labels]
    config = BertConfig(
        vocab_size=vocab_size or len(vocabulary()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    return BertForSequenceClassification(config)


def make_texts(n_per_class: int, seed: int = 0, noise: float = 0.3) -> tuple[list[str], list[int]]:
    """Short texts whose topic words give the class away, with some words of other topics as noise."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label_id, label in enumerate(LABELS):
        for _ in range(n_per_class):
            words = rng.sample(TOPIC_WORDS[label], 2) + rng.sample(FILLER, 3)
            if rng.random() < noise:
                other = rng.choice([x for x in LABELS if x != label])
                words.append(rng.choice(TOPIC_WORDS[other]))
            rng.shuffle(words)
            texts.append(" ".join(words) + f" {rng.randrange(200)}")
            labels.append(label_id)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def make_pool_teacher():
    """A PoolTeacher over 60 texts per class, each carrying :data:`MARKER` (so generated rows can be told apart)."""
    from hf_activekd import PoolTeacher

    texts, labels = make_texts(60, seed=7)
    return PoolTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS, seed=0)


def make_dataset(tokenizer, n_per_class: int, seed: int = 0) -> Dataset:
    texts, labels = make_texts(n_per_class, seed)
    ds = Dataset.from_dict({"text": texts, "label": labels})
    return ds.map(lambda rows: tokenizer(rows["text"], truncation=True), batched=True)


class ForwardRecorder:
    """Counts marker tokens in training and evaluation forward passes of a model (a forward pre-hook)."""

    def __init__(self, model, marker_id: int):
        self.marker_id = marker_id
        self.train_batches = 0
        self.eval_batches = 0
        self.train_marker_rows = 0
        self.eval_marker_rows = 0
        self.train_rows = 0
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            return
        rows = int((input_ids == self.marker_id).any(dim=-1).sum())
        if module.training:
            self.train_batches += 1
            self.train_marker_rows += rows
            self.train_rows += int(input_ids.shape[0])
        else:
            self.eval_batches += 1
            self.eval_marker_rows += rows


def require_shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (benchmark data lives in ../shared/data)")
    return path


def build_trainer(tokenizer, output_dir, model=None, train=None, eval_dataset="default", **overrides) -> Trainer:
    """The tiny Trainer of the tests: 4 classes, 8 training and 10 validation examples per class, an evaluation every
    5 steps, 20 steps, a learning rate the tiny student learns with, on ``torch_device``. ``overrides`` go to
    `TrainingArguments`."""
    kwargs = dict(
        output_dir=str(output_dir),
        eval_strategy="steps",
        eval_steps=5,
        max_steps=20,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=1e-2,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        use_cpu=torch_device == "cpu",
        seed=0,
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return Trainer(
        model=model if model is not None else make_model(),
        args=TrainingArguments(**kwargs),
        train_dataset=train if train is not None else make_dataset(tokenizer, 8, seed=1),
        eval_dataset=make_dataset(tokenizer, 10, seed=2) if eval_dataset == "default" else eval_dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
    )


def attach_callback(trainer, teacher, preprocess=None, **config):
    """An :class:`~hf_activekd.ActiveKDCallback` added to ``trainer``: small rounds (8 samples, 2 per request), no
    early stopping and no progress bar unless ``config`` says otherwise."""
    from hf_activekd import ActiveKDCallback, ActiveKDConfig

    config.setdefault("samples_per_round", 8)
    config.setdefault("samples_per_request", 2)
    config.setdefault("patience", 0)
    callback = ActiveKDCallback(
        trainer, teacher=teacher, config=ActiveKDConfig(**config), preprocess=preprocess, progress=False
    )
    trainer.add_callback(callback)
    return callback
