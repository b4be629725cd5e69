"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2` (CPU, gloo).

Each process trains the tiny student with the callback and a pool teacher that raises in its second round (it only
runs on the main process: the failure must reach every rank as an error marker, not as a hang). Each process writes
what it saw to ``<out>/rank-<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import DataCollatorWithPadding, Trainer, TrainingArguments  # noqa: E402

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher  # noqa: E402
from testing_utils import LABELS, MARKER, ForwardRecorder, make_dataset, make_model, make_texts, make_tokenizer  # noqa: E402


class FlakyPoolTeacher(PoolTeacher):
    """Fails its second round with an exception (as a crashed client would)."""

    calls = 0

    def generate(self, requests, progress=True):
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("teacher connection reset")
        return super().generate(requests, progress)


def main(out: str) -> None:
    out_dir = Path(out)
    rank = int(os.environ["RANK"])
    tokenizer = make_tokenizer(out_dir / f"tok-{rank}")
    train, val = make_dataset(tokenizer, 8, seed=1), make_dataset(tokenizer, 10, seed=2)
    texts, labels = make_texts(40, seed=7)
    teacher = FlakyPoolTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS)
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
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    config = ActiveKDConfig(samples_per_round=8, samples_per_request=4, rows_per_batch=2, patience=0)
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True))
    trainer.add_callback(callback)
    recorder = ForwardRecorder(model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    result = {
        "rank": rank,
        "world_size": args.world_size,
        "global_step": trainer.state.global_step,
        "rounds": callback.rounds,
        "train_marker_rows": recorder.train_marker_rows,
        "eval_marker_rows": recorder.eval_marker_rows,
        "teacher_calls": teacher.calls,
    }
    (out_dir / f"rank-{rank}.json").write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
