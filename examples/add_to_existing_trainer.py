"""Add performance-guided distillation to an existing `transformers.Trainer`.

The training script below is an ordinary fine-tuning set-up; the lines marked ``# + activekd`` are all that is added.
At every evaluation the student's per-class validation results become targeted requests to the teacher, and the new
samples flow into the following training batches.

```bash
# real: a TGI server or an Inference Endpoint as teacher (here the embedded one: SmolLM2-135M on CPU)
hf-activekd serve-teacher --port 8080 &
python examples/add_to_existing_trainer.py --teacher-url http://127.0.0.1:8080
# fast (tiny student on synthetic topics, a local server speaking TGI's protocol that answers with held-back
# examples; a few seconds of training: validation macro-F1 goes from chance to about 0.9)
python examples/add_to_existing_trainer.py --fast
```
"""

from __future__ import annotations

import argparse
import tempfile

from _shared import is_fast, learning_summary, pool_teacher_server, setup
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher  # + activekd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-url", default=None, help="TGI / Inference Endpoint URL of the teacher.")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--fast", action="store_true", help="Tiny student and a local pool teacher server.")
    args = parser.parse_args()
    fast = args.fast or is_fast()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="activekd-example-")
    model, tokenizer, train, val, _ = setup(fast, output_dir)

    server = None
    teacher_url = args.teacher_url
    if fast:  # a local server speaking TGI's protocol, answering with held-back examples of the asked class
        server = pool_teacher_server()
        teacher_url = server.url
    if teacher_url is None:
        parser.error("--teacher-url is required (or --fast)")

    # ---- the existing fine-tuning script ----
    def tokenize(rows):
        return tokenizer(rows["text"], truncation=True, max_length=128)

    train, val = train.map(tokenize, batched=True), val.map(tokenize, batched=True)  # keep the "text" column
    training_args = TrainingArguments(
        output_dir=output_dir,
        eval_strategy="steps",  # every evaluation is a round
        eval_steps=8 if fast else 20,
        max_steps=40 if fast else 120,
        per_device_train_batch_size=8 if fast else 16,
        learning_rate=3e-3 if fast else 1e-4,
        seed=0,
        save_strategy="no",
        report_to=[],
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    # ---- the addition ----
    teacher = TGITeacher(teacher_url, max_concurrency=4)  # + activekd
    config = ActiveKDConfig(samples_per_round=16 if fast else 32, max_rounds=4, patience=3)  # + activekd
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=tokenize)  # + activekd
    trainer.add_callback(callback)  # + activekd
    try:
        trainer.train()
    finally:
        if server is not None:
            server.stop()
    summary = callback.summary()
    print(
        f"{learning_summary(callback.rounds)}; accepted {summary['accepted']} of {summary['requested']} requested "
        f"samples; records in {summary['output_dir']}"
    )


if __name__ == "__main__":
    main()
