"""Run by tests/test_annotation.py under `torchrun --nproc_per_node 2` (CPU, gloo).

Each process trains the tiny student with ``source="annotate"``: every rank scores its shard of the unlabeled texts,
the scores are gathered, the main process picks and has them labelled, and every rank trains on its share of the
labelled rows. Each process writes what it saw to ``<out>/rank-<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import DataCollatorWithPadding, Trainer, TrainingArguments  # noqa: E402

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher  # noqa: E402
from hf_activekd.scoring import StudentScorer  # noqa: E402
from testing_utils import LABELS, MARKER, ForwardRecorder, make_dataset, make_model, make_texts, make_tokenizer  # noqa: E402

SCORED: list[int] = []
_score = StudentScorer.__call__


def _counting_score(self, texts):
    SCORED.append(len(texts))
    return _score(self, texts)


StudentScorer.__call__ = _counting_score


class CountingPoolTeacher(PoolTeacher):
    label_calls = 0

    def label(self, queries, progress=False):
        self.label_calls += 1
        return super().label(queries, progress)


def main(out: str) -> None:
    out_dir = Path(out)
    rank = int(os.environ["RANK"])
    tokenizer = make_tokenizer(out_dir / f"tok-{rank}")
    train, val = make_dataset(tokenizer, 8, seed=1), make_dataset(tokenizer, 10, seed=2)
    texts, labels = make_texts(10, seed=7)
    unlabeled = [f"{MARKER} {t}" for t in texts]  # 40 texts, labels hidden from the student
    teacher = CountingPoolTeacher(unlabeled, labels, label_names=LABELS)
    args = TrainingArguments(
        output_dir=str(out_dir / "run"),
        eval_strategy="steps",
        eval_steps=4,
        max_steps=12,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=1e-2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        ddp_backend="gloo",
        disable_tqdm=True,
        seed=0,
    )
    model = make_model()
    trainer = Trainer(
        model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=DataCollatorWithPadding(tokenizer)
    )
    config = ActiveKDConfig(
        source="annotate", samples_per_round=8, rows_per_batch=2, patience=0, max_unlabeled_scored=25
    )
    callback = ActiveKDCallback(
        trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True), unlabeled=unlabeled
    )
    trainer.add_callback(callback)
    recorder = ForwardRecorder(model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    result = {
        "rank": rank,
        "world_size": args.world_size,
        "global_step": trainer.state.global_step,
        "rounds": callback.rounds,
        "rows": callback.runner.pool.rows(),
        "train_marker_rows": recorder.train_marker_rows,
        "scored": SCORED,
        "label_calls": teacher.label_calls,
    }
    (out_dir / f"rank-{rank}.json").write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
