"""Active distillation with several processes (DDP): one teacher call per round, on the main process, broadcast.

On GPUs (one process per GPU):

```bash
accelerate launch --multi_gpu --num_processes 2 examples/multi_gpu.py --teacher-url http://127.0.0.1:8080
torchrun --nproc_per_node 2 examples/multi_gpu.py --teacher-url http://127.0.0.1:8080
```

On CPU (two processes, gloo; ``accelerate launch --cpu --num_processes 2`` starts only one process, use torchrun):

```bash
OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 examples/multi_gpu.py --fast
```

The teacher runs on rank 0 only; the accepted rows are broadcast, written to every rank's round files, and each rank
mixes its own share (``rows[rank::world_size]``) into its batches. Per-class metrics come from the gathered
predictions, so every rank takes the same decisions (stopping included).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch
from _shared import is_fast, learning_summary, setup
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-url", default=None, help="TGI / Endpoint URL (default: pool simulation).")
    parser.add_argument("--output-dir", default=None, help="Shared output folder (default: a temp folder).")
    parser.add_argument("--fast", action="store_true", help="Tiny student and a pool teacher.")
    args = parser.parse_args()
    fast = args.fast or is_fast()
    output_dir = args.output_dir or os.path.join(tempfile.gettempdir(), "activekd-multi-gpu-example")
    model, tokenizer, train, val, teacher = setup(fast, os.path.join(output_dir, "setup"))
    if args.teacher_url:
        teacher = TGITeacher(args.teacher_url)

    def tokenize(rows):
        return tokenizer(rows["text"], truncation=True, max_length=128)

    train, val = train.map(tokenize, batched=True), val.map(tokenize, batched=True)
    on_cpu = not torch.cuda.is_available()
    training_args = TrainingArguments(
        output_dir=output_dir,
        eval_strategy="steps",
        eval_steps=8 if fast else 20,
        max_steps=40 if fast else 120,
        per_device_train_batch_size=4 if fast else 16,
        learning_rate=3e-3 if fast else 1e-4,
        seed=0,
        save_strategy="no",
        report_to=[],
        use_cpu=on_cpu,
        ddp_backend="gloo" if on_cpu else None,
        ddp_timeout=1800,  # a round's teacher calls count against it
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    config = ActiveKDConfig(samples_per_round=16 if fast else 64, max_rounds=3, patience=0)
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=tokenize, progress=False)
    trainer.add_callback(callback)
    trainer.train()
    summary = callback.summary()
    mixed = callback.collator.rows_mixed if callback.collator is not None else 0
    print(
        "RANK_SUMMARY "
        + json.dumps(
            {
                "rank": training_args.process_index,
                "world_size": training_args.world_size,
                "rounds": summary["rounds"],
                "accepted": summary["accepted"],
                "rows_mixed": mixed,
                "macro_f1": [r["macro_f1"] for r in callback.rounds],
            }
        ),
        flush=True,
    )
    if training_args.process_index == 0:
        print(learning_summary(callback.rounds), flush=True)
    # End the process group before the interpreter exits: left to interpreter teardown, gloo's threads can abort a
    # run that succeeded ("terminate called without an active exception").
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
