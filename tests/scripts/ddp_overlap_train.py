"""Run by tests/test_overlap.py under `torchrun --nproc_per_node 2` (CPU, gloo), with ``overlap=True``.

Usage: ``ddp_overlap_train.py OUT MODE``. The main process's teacher answers a round only once training has gone 2
steps further (so the rows arrive between evaluations). MODE ``continue``: the second round raises in the background
and is recorded; ``raise`` (``teacher_on_failure="raise"``): the first round raises, and every rank must stop with the
error at the next evaluation, not hang. Each process writes what it saw to ``<out>/rank-<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import DataCollatorWithPadding, Trainer, TrainingArguments  # noqa: E402

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher  # noqa: E402
from testing_utils import LABELS, MARKER, ForwardRecorder, make_dataset, make_model, make_texts, make_tokenizer  # noqa: E402


class LaggingFlakyTeacher(PoolTeacher):
    """Answers once training is 2 steps further (at most 5 s); call number ``fail_call`` raises instead."""

    trainer = None
    calls = 0
    fail_call = 2

    def generate(self, requests, progress=True, on_answer=None):
        self.calls += 1
        asked, deadline = self.trainer.state.global_step, time.monotonic() + 5
        while self.trainer.state.global_step < asked + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.calls == self.fail_call:
            raise ConnectionError("teacher connection reset")
        return super().generate(requests, progress, on_answer)


def main(out: str, mode: str) -> None:
    out_dir = Path(out)
    rank = int(os.environ["RANK"])
    tokenizer = make_tokenizer(out_dir / f"tok-{rank}")
    train, val = make_dataset(tokenizer, 8, seed=1), make_dataset(tokenizer, 10, seed=2)
    texts, labels = make_texts(40, seed=7)
    teacher = LaggingFlakyTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS)
    teacher.fail_call = 2 if mode == "continue" else 1
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
    teacher.trainer = trainer
    config = ActiveKDConfig(
        samples_per_round=8,
        samples_per_request=4,
        rows_per_batch=2,
        patience=0,
        overlap=True,
        teacher_on_failure=mode,
    )
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True))
    trainer.add_callback(callback)
    recorder = ForwardRecorder(model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    result = {
        "rank": rank,
        "global_step": trainer.state.global_step,
        "rounds": callback.rounds,
        "train_marker_rows": recorder.train_marker_rows,
        "eval_marker_rows": recorder.eval_marker_rows,
    }
    (out_dir / f"rank-{rank}.json").write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
