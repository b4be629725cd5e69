"""A LoRA student (peft): only the adapter and the classification head train; rounds work the same way.

```bash
python examples/lora_student.py --teacher-url http://127.0.0.1:8080   # MiniLM + LoRA on BBC News
python examples/lora_student.py --fast                                # tiny student, pool teacher, seconds
```

The same from the command line: ``hf-activekd distill ... --lora --lora-r 8 --learning-rate 5e-4``.
"""

from __future__ import annotations

import argparse
import tempfile

from _shared import is_fast, learning_summary, setup
from peft import LoraConfig, TaskType, get_peft_model
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-url", default=None, help="TGI / Endpoint URL (default: pool simulation).")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--fast", action="store_true", help="Tiny student and a pool teacher.")
    args = parser.parse_args()
    fast = args.fast or is_fast()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="activekd-lora-")
    model, tokenizer, train, val, teacher = setup(fast, output_dir + "-setup")
    if args.teacher_url:
        teacher = TGITeacher(args.teacher_url)
    # the fast student's base is random, not pretrained: its word embeddings get an adapter too, or nothing could learn
    # which words mean which topic (a pretrained base knows that already)
    targets = ["query", "value", "word_embeddings"] if fast else ["query", "value"]
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=targets)
    model = get_peft_model(model, lora)  # the classifier head is trained and saved too (modules_to_save)
    model.print_trainable_parameters()

    def tokenize(rows):
        return tokenizer(rows["text"], truncation=True, max_length=128)

    train, val = train.map(tokenize, batched=True), val.map(tokenize, batched=True)
    training_args = TrainingArguments(
        output_dir=output_dir,
        eval_strategy="steps",
        eval_steps=8 if fast else 20,
        max_steps=40 if fast else 120,
        per_device_train_batch_size=8 if fast else 16,
        learning_rate=1e-2 if fast else 5e-4,
        seed=0,
        save_strategy="no",
        report_to=[],
        label_names=["labels"],  # peft models hide the forward signature from the Trainer
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
    trainer.save_model(output_dir)  # the adapter (adapter_model.safetensors) and the card
    summary = callback.summary()
    print(
        f"LoRA student saved to {output_dir}: {learning_summary(callback.rounds)}, "
        f"{summary['accepted']} generated rows"
    )


if __name__ == "__main__":
    main()
