"""Training throughput with `ActiveKDCallback` attached (and an instant teacher) against the same Trainer without it.

Both runs train the same student on the same data with the same evaluation schedule, alternating, several times;
the ratio of their median training throughputs is the callback's overhead (goal: >= 0.97). The callback mixes
generated rows in ``replace`` mode, so that batch shapes -- and the model's work per step -- are the same in both
runs and the ratio measures the callback (rounds, the pool on disk, the collator), not extra rows.

    python benchmarks/overhead.py                       # ~1 minute on 2 idle CPU cores
    python benchmarks/overhead.py --steps 800 --repeats 7

Writes ``benchmarks/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

import hf_activekd  # noqa: E402
from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher  # noqa: E402

LABELS = [f"topic_{i}" for i in range(8)]
WORDS = [f"w{i}" for i in range(400)]


def make_tokenizer(folder: Path) -> BertTokenizerFast:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=64)


def make_texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(len(LABELS))
        own = WORDS[label * 50 : label * 50 + 50]
        words = rng.sample(own, 6) + rng.sample(WORDS, 10)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def make_model(hidden: int, layers: int) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 4,
        max_position_embeddings=128,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    return BertForSequenceClassification(config)


def run_once(with_callback: bool, args: argparse.Namespace, tokenizer, train, val, pool, workdir: Path) -> dict:
    out = workdir / ("with" if with_callback else "without")
    shutil.rmtree(out, ignore_errors=True)
    training_args = TrainingArguments(
        output_dir=str(out),
        max_steps=args.steps,
        eval_strategy="steps",
        eval_steps=args.eval_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=5e-4,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=args.eval_steps,
        seed=0,
    )
    trainer = Trainer(
        model=make_model(args.hidden, args.layers),
        args=training_args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    callback = None
    if with_callback:
        teacher = PoolTeacher(pool[0], pool[1], label_names=LABELS)
        config = ActiveKDConfig(
            samples_per_round=args.samples_per_round,
            mix_mode="replace",
            rows_per_batch=args.rows_per_batch,
            patience=0,
        )
        callback = ActiveKDCallback(
            trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True), progress=False
        )
        trainer.add_callback(callback)
    start = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - start
    samples = args.steps * args.batch_size
    return {
        "with_callback": with_callback,
        "wall_s": wall,
        "train_runtime_s": result.metrics["train_runtime"],
        "samples_per_s": samples / result.metrics["train_runtime"],
        "rounds": len(callback.rounds) if callback else 0,
        "generated_rows": sum(r["accepted"] for r in callback.rounds) if callback else 0,
        "round_wall_s": sum(r["wall_time_s"] for r in callback.rounds) if callback else 0.0,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-steps", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--samples-per-round", type=int, default=64)
    parser.add_argument("--rows-per-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "overhead.json"))
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="activekd-overhead-"))
    tokenizer = make_tokenizer(workdir)
    texts, labels = make_texts(2000, seed=1)
    train = Dataset.from_dict({"text": texts, "label": labels}).map(
        lambda r: tokenizer(r["text"], truncation=True), batched=True
    )
    vtexts, vlabels = make_texts(400, seed=2)
    val = Dataset.from_dict({"text": vtexts, "label": vlabels}).map(
        lambda r: tokenizer(r["text"], truncation=True), batched=True
    )
    pool = make_texts(4000, seed=3)

    runs = []
    run_once(
        False, argparse.Namespace(**{**vars(args), "steps": 10, "eval_steps": 5}), tokenizer, train, val, pool, workdir
    )  # warm-up
    for repeat in range(args.repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        for with_callback in order:
            run = run_once(with_callback, args, tokenizer, train, val, pool, workdir)
            run["repeat"] = repeat
            runs.append(run)
            print(
                f"repeat {repeat} {'with   ' if with_callback else 'without'} callback: "
                f"{run['samples_per_s']:8.1f} samples/s, {run['rounds']} rounds, {run['generated_rows']} rows"
            )
    shutil.rmtree(workdir, ignore_errors=True)
    median_with = statistics.median(r["samples_per_s"] for r in runs if r["with_callback"])
    median_without = statistics.median(r["samples_per_s"] for r in runs if not r["with_callback"])
    ratio = median_with / median_without
    result = {
        "benchmark": "overhead",
        "description": "training throughput with ActiveKDCallback (PoolTeacher, instant) / without, same Trainer",
        "ratio": ratio,
        "goal": 0.97,
        "median_samples_per_s_with": median_with,
        "median_samples_per_s_without": median_without,
        "settings": vars(args),
        "runs": runs,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "hf_activekd": hf_activekd.__version__,
        },
    }
    print(f"\nthroughput ratio with/without callback: {ratio:.3f} (goal >= 0.97)")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
