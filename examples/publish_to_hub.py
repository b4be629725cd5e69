"""Distil, then publish the student to the Hub with a model card that records every round, and the generated data as
a dataset beside it.

```bash
huggingface-cli login            # or HF_TOKEN=...
python examples/publish_to_hub.py --repo-id you/bbc-minilm-activekd --teacher-url http://127.0.0.1:8080
# fast (tiny student, pool teacher); point HF_ENDPOINT at a Hub (the tests use a local one)
python examples/publish_to_hub.py --fast --repo-id you/tiny-activekd
```

``trainer.push_to_hub()`` saves the model, writes the card (``ActiveKDCallback`` wraps ``trainer.create_model_card``
so that the per-round table, the plot and the teacher's description ship in the same commit) and uploads the folder;
the generated rows go to ``<repo-id>-activekd-data`` (``dataset_repo_id=`` to change it, ``push_dataset=False`` to
keep them local). Tokens are never written to the card.
"""

from __future__ import annotations

import argparse
import tempfile

from _shared import is_fast, learning_summary, setup
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo-id", required=True, help="Model repository to create or update (user/name).")
    parser.add_argument("--teacher-url", default=None, help="TGI / Endpoint URL (default: pool simulation).")
    parser.add_argument("--private", action="store_true", help="Create private repositories.")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--fast", action="store_true", help="Tiny student and a pool teacher.")
    args = parser.parse_args()
    fast = args.fast or is_fast()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="activekd-publish-")
    model, tokenizer, train, val, teacher = setup(fast, output_dir + "-setup")
    if args.teacher_url:
        teacher = TGITeacher(args.teacher_url)

    def tokenize(rows):
        return tokenizer(rows["text"], truncation=True, max_length=128)

    train, val = train.map(tokenize, batched=True), val.map(tokenize, batched=True)
    training_args = TrainingArguments(
        output_dir=output_dir,
        eval_strategy="steps",
        eval_steps=8 if fast else 20,
        max_steps=40 if fast else 120,
        per_device_train_batch_size=8 if fast else 16,
        learning_rate=3e-3 if fast else 1e-4,
        seed=0,
        save_strategy="no",
        report_to=[],
        hub_model_id=args.repo_id,
        hub_private_repo=args.private,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    callback = ActiveKDCallback(
        trainer, teacher, ActiveKDConfig(samples_per_round=16, max_rounds=2, patience=0), preprocess=tokenize
    )
    trainer.add_callback(callback)
    trainer.train()
    print(learning_summary(callback.rounds))
    commit = trainer.push_to_hub(commit_message="Distilled with hf-activekd")
    print(f"model: {getattr(commit, 'commit_url', commit)}")
    if callback.publisher.pushed_dataset_repo:
        print(f"generated data: {callback.publisher.pushed_dataset_repo}")


if __name__ == "__main__":
    main()
