"""The ``distill`` run: data, student, teacher, a Trainer with the callback, the saved student and its summary."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..config import ActiveKDConfig
from .arguments import DistillArguments, parse_distill_args
from .build_teacher import _build_teacher
from .console import _make_round_printer, _quiet_progress, print_results
from .errors import EXIT_USAGE, CLIError
from .load_student import _load_student
from .prepare_data import _load_unlabeled, _prepare_data


def distill(args: DistillArguments, config: ActiveKDConfig) -> dict[str, Any]:
    """Run ``hf-activekd distill``: data, student, teacher, Trainer with the callback, outputs. Returns a summary."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from ..baseline import compare_with_baseline, snapshot_weights
    from ..callback import ActiveKDCallback
    from ..metrics import MetricsRecorder
    from ..teachers import TeacherUnavailableError

    output_dir = Path(args.output_dir)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not args.overwrite_output_dir:
        raise CLIError(f"{output_dir} is not empty: pass --overwrite-output-dir or choose another --output-dir.")
    start = time.perf_counter()
    set_seed(config.seed)
    data = _prepare_data(args, config)
    label_names = data["label_names"]
    splits = data["splits"]
    config.text_column, config.label_column = "text", "label"
    if config.label_names is None:
        config.label_names = label_names
    print(
        f"Data: {len(label_names)} classes, {len(splits['train'])} training, {len(splits['validation'])} validation"
        + (f", {len(splits['test'])} test" if "test" in splits else "")
        + " examples.",
        flush=True,
    )
    model, tokenizer, student_path = _load_student(args, label_names)
    initial = snapshot_weights(model) if args.baseline else None  # the baseline starts from the same weights
    print(f"Student: {student_path} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)", flush=True)

    def tokenize(rows):
        return tokenizer(rows["text"], truncation=True, max_length=args.max_length)

    tokenized = {k: v.map(tokenize, batched=True) for k, v in splits.items()}
    teacher, embedded = _build_teacher(args, data, config)
    print(f"Teacher: {teacher.name}{' (simulation)' if teacher.is_simulation else ''}", flush=True)
    try:
        if args.num_train_epochs is not None and args.max_steps <= 0:
            steps = {"num_train_epochs": args.num_train_epochs}
        else:
            steps = {"max_steps": args.max_steps or args.eval_steps * (config.max_rounds + 1)}
        training_args = TrainingArguments(
            output_dir=str(output_dir),
            eval_strategy="steps",
            eval_steps=args.eval_steps,
            save_strategy="steps",
            save_steps=args.eval_steps,
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="macro_f1",
            greater_is_better=True,
            logging_steps=args.eval_steps,
            learning_rate=args.learning_rate,
            max_grad_norm=args.max_grad_norm,
            per_device_train_batch_size=args.per_device_train_batch_size,
            per_device_eval_batch_size=args.per_device_eval_batch_size,
            dataloader_num_workers=args.dataloader_num_workers,
            report_to=[] if args.report_to in ("none", "") else args.report_to.split(","),
            seed=config.seed,
            hub_model_id=args.push_to_hub,
            hub_private_repo=args.hub_private_repo,
            **steps,
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=tokenized["train"],
            eval_dataset=tokenized["validation"],
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            compute_metrics=MetricsRecorder(None, label_names),  # accuracy and macro-F1, for the test split too
        )
        try:
            callback = ActiveKDCallback(
                trainer,
                teacher,
                config,
                preprocess=tokenize,
                unlabeled=_load_unlabeled(args, config, splits["test"]["text"] if "test" in splits else ()),
            )
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        trainer.add_callback(callback)
        trainer.add_callback(_make_round_printer(callback))
        _quiet_progress(trainer)
        try:
            trainer.train()
        except TeacherUnavailableError as exc:
            raise CLIError(str(exc)) from None
    finally:
        if embedded is not None:
            embedded.stop()
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    for checkpoint in output_dir.glob("checkpoint-*"):  # the best one is loaded and saved above
        shutil.rmtree(checkpoint, ignore_errors=True)
    test_metrics = None
    if "test" in tokenized:
        test_metrics = trainer.evaluate(tokenized["test"], metric_key_prefix="test")
    from ..card import GENERATED_FILE, PLOT_FILE

    generated = callback.output_dir / GENERATED_FILE
    generated = generated if generated.exists() else None
    plot_path = output_dir / PLOT_FILE
    plot_path = plot_path if plot_path.exists() else None
    if initial is not None:
        model = _load_student(args, label_names)[0]
        effect = compare_with_baseline(
            trainer, callback, model, initial, output_dir, tokenized, test_metrics, _quiet_progress, args.keep_better
        )
        if effect.get("kept") == "baseline" and test_metrics:  # the summary describes the student that was saved
            test_metrics = {f"test_{k}": v for k, v in effect["without_teacher"].items()}
    summary = callback.summary()
    summary.update(
        {
            "student": student_path,
            "teacher": teacher.name,
            "labels": label_names,
            "test_metrics": {k: v for k, v in (test_metrics or {}).items() if isinstance(v, (int, float))},
            "generated_data": str(generated) if generated else None,
            "plot": str(plot_path) if plot_path else None,
            "wall_time_s": round(time.perf_counter() - start, 1),
        }
    )
    if callback.publisher.baseline:
        summary["baseline"] = callback.publisher.baseline
    with open(output_dir / "distill_summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print_results(summary, callback.rounds, config.metric_for_rounds, test_metrics)
    if args.push_to_hub:
        url = trainer.push_to_hub(commit_message="hf-activekd distill")
        summary["hub_url"] = str(url)
        print(f"Published to {url}")
    card = output_dir / "README.md"
    print(
        f"Student saved to {output_dir}"
        + (f" (model card {card})" if card.exists() else "")
        + f"; generated data {generated}; plot {plot_path}; round files {callback.output_dir}. "
        f"Total {summary['wall_time_s']:.0f}s."
    )
    return summary


def distill_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    try:
        args, config = parse_distill_args(argv)
        distill(args, config)
    except CLIError as exc:
        print(f"hf-activekd distill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hf-activekd distill: interrupted", file=sys.stderr)
        return 130
    return 0
