"""What a running `transformers.Trainer` and its :class:`~hf_activekd.ActiveKDCallback` give the cards: the repo ids,
the base model and source datasets, the weights published, the training settings and the student's latency."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ..redaction import _redact_url, known_secrets
from ..sharding import sharding_of
from .inputs import CardInputs
from .latency import measure_student_latency

logger = logging.get_logger(__name__)


def _base_model_of(model) -> str | None:
    """The Hub id the model was loaded from, when it is one (not empty, not a local folder)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None) or ""
    name = str(name).strip()
    if not name or os.path.exists(name):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _source_datasets_of(*datasets) -> list[str]:
    generic = {None, "", "generator", "arrow", "json", "csv", "pandas", "parquet", "text", "dict", "default"}
    out = []
    for dataset in datasets:
        info = getattr(dataset, "info", None)
        name = getattr(info, "dataset_name", None)
        if name not in generic and name not in out:
            out.append(str(name))
    return out


class _TrainerInputsMixin:
    """The card inputs of :class:`~hf_activekd.card.ActiveKDPublisher`, which sets these attributes (and provides
    ``trainer``)."""

    callback: Any
    dataset_repo_id: str | None
    push_dataset_enabled: bool
    source_datasets: list[str] | None
    measure_latency: bool
    student_latency: dict[str, Any] | None
    baseline: dict[str, Any] | None

    def model_repo_id(self) -> str:
        trainer = self.trainer
        repo = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id
        return repo or Path(trainer.args.output_dir).absolute().name

    def resolved_dataset_repo_id(self) -> str:
        return self.dataset_repo_id or f"{self.model_repo_id()}-activekd-data"

    def _secrets(self) -> list[str]:
        return known_secrets([getattr(self.trainer.args, "hub_token", None)])

    def _measure(self) -> dict[str, Any] | None:
        if not self.measure_latency:
            return None
        if self.student_latency is None:
            trainer, callback = self.trainer, self.callback
            sharding = sharding_of(trainer)
            if sharding is not None:  # a forward pass here, on the main process alone, would hang the others
                self.student_latency = {"skipped": f"the model is sharded across processes ({sharding})"}
                return self.student_latency
            dataset = trainer.eval_dataset
            if isinstance(dataset, dict):
                dataset = dataset[callback.eval_key or next(iter(dataset))]
            try:
                self.student_latency = measure_student_latency(
                    trainer.model, dataset, trainer.data_collator, trainer.args.per_device_eval_batch_size
                )
            except Exception as exc:  # noqa: BLE001 - a card without a latency is still a card
                logger.warning("ActiveKD could not measure the student's latency: %s", exc)
        return self.student_latency

    def inputs(self, model_name: str | None = None) -> CardInputs:
        """Collect everything the cards are built from."""
        from huggingface_hub import constants

        trainer, callback = self.trainer, self.callback
        runner = callback.runner
        args = trainer.args
        repo_id = self.model_repo_id()
        rounds = list(runner.rounds) if runner is not None else []
        rows = list(runner.pool.rows()) if runner is not None else []
        answers = runner.answers() if runner is not None else {}
        best_round = runner.best_round if runner is not None else None
        if args.load_best_model_at_end and getattr(trainer.state, "best_model_checkpoint", None):
            checkpoint = Path(trainer.state.best_model_checkpoint).name
            weights = f"the Trainer's best checkpoint by `{args.metric_for_best_model}` ({checkpoint}"
            at = [r["round"] for r in rounds if f"checkpoint-{r.get('global_step')}" == checkpoint]
            weights += f", the evaluation of round {at[0]}" if at else ""
            weights += "), loaded at the end of training."
        else:
            weights = f"the weights at the end of training (step {trainer.state.global_step})"
            if best_round is not None and rounds and best_round != rounds[-1]["round"]:
                weights += (
                    f"; the best round ({best_round}) came earlier, set `load_best_model_at_end=True` to publish "
                    "its checkpoint instead"
                )
            weights += "."
        training = {
            "eval_strategy": str(getattr(args.eval_strategy, "value", args.eval_strategy)),
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "seed": args.seed,
        }
        if training["eval_strategy"] == "steps":
            training["eval_steps"] = args.eval_steps
        if args.max_steps and args.max_steps > 0:
            training["max_steps"] = args.max_steps
        else:
            training["num_train_epochs"] = args.num_train_epochs
        try:
            describe = dict(callback.teacher.describe())
        except Exception:  # noqa: BLE001
            describe = {"name": getattr(callback.teacher, "name", "teacher"), "type": type(callback.teacher).__name__}
        sources = self.source_datasets
        if sources is None:
            sources = _source_datasets_of(trainer.train_dataset, trainer.eval_dataset)
        return CardInputs(
            model_name=model_name or repo_id.split("/")[-1],
            model_repo_id=repo_id,
            dataset_repo_id=self.resolved_dataset_repo_id(),
            label_names=list(callback.label_names),
            rounds=rounds,
            rows=rows,
            config=callback.config.to_dict(),
            teacher=describe,
            is_simulation=bool(getattr(callback.teacher, "is_simulation", False)),
            best_round=best_round,
            stop_reason=runner.stop_reason if runner is not None else None,
            answers=answers,
            student_latency=self._measure(),
            base_model=_base_model_of(trainer.model),
            source_datasets=list(sources),
            training=training,
            weights_note=weights,
            endpoint=_redact_url(constants.ENDPOINT).rstrip("/"),
            dataset_published=self.push_dataset_enabled,
            baseline=self.baseline,
        )
