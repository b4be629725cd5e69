"""Publishing a run with the model: :class:`ActiveKDPublisher` binds the cards, the plot and the generated data to a
running `transformers.Trainer` through :class:`~hf_activekd.ActiveKDCallback` (the ``create_model_card`` hook, the
files written into ``output_dir``, the dataset push at every model push)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard
from transformers.utils import logging

from ..redaction import redact
from .constants import DATASET_CARD_FILE, DATASET_COLUMNS, GENERATED_FILE, PLOT_FILE, TAGS
from .dataset_card import build_dataset_card
from .dataset_push import _DatasetPushMixin
from .inputs import CardInputs
from .model_card import build_model_card, merge_model_card
from .plot import plot_rounds
from .trainer_inputs import _TrainerInputsMixin

logger = logging.get_logger(__name__)


class ActiveKDPublisher(_TrainerInputsMixin, _DatasetPushMixin):
    """Writes and publishes the model card, plot and generated dataset of an :class:`~hf_activekd.ActiveKDCallback`.

    Created by the callback; see the module docstring for when each part runs.

    Args:
        callback (`ActiveKDCallback`): The callback (gives the trainer, teacher, config, label names and rounds).
        dataset_repo_id (`str`, *optional*): Dataset repo of the generated data; defaults to
            ``<model repo>-activekd-data``.
        push_dataset (`bool`, defaults to `True`): Push the generated data when the model is pushed.
        source_datasets (`list[str]`, *optional*): Hub ids of the user's datasets for the card metadata; inferred from
            the train and eval datasets where they carry a name.
        measure_latency (`bool`, defaults to `True`): Measure the student's inference latency for the card.
    """

    def __init__(
        self,
        callback,
        dataset_repo_id: str | None = None,
        push_dataset: bool = True,
        source_datasets: Sequence[str] | None = None,
        measure_latency: bool = True,
    ):
        self.callback = callback
        self.dataset_repo_id = dataset_repo_id
        self.push_dataset_enabled = push_dataset
        self.source_datasets = list(source_datasets) if source_datasets is not None else None
        self.measure_latency = measure_latency
        self.student_latency: dict[str, Any] | None = None
        self.last_push_error: str | None = None
        self.pushed_dataset_repo: str | None = None
        self._pushed_signature: tuple | None = None
        self._push_pending = False
        self.baseline: dict[str, Any] | None = None  # set by `hf-activekd distill --baseline` (see baseline.py)

    @property
    def trainer(self):
        return self.callback.trainer

    # ------------------------------------------------------------------ hooks
    def install(self) -> None:
        """Wrap ``trainer.create_model_card`` on the instance and tag the model (idempotent).

        Called when training begins. The wrapper adds the rounds to the card only while the callback is registered
        with the trainer (``trainer.callback_handler.callbacks``); once it is removed, it passes through.
        """
        trainer = self.trainer
        model = trainer.model
        if hasattr(model, "add_model_tags"):
            try:
                model.add_model_tags(list(TAGS))
            except Exception as exc:  # noqa: BLE001 - tags are a nicety
                logger.debug("add_model_tags failed: %s", exc)
        if getattr(trainer.create_model_card, "_activekd_publisher", None) is self:
            return
        original = trainer.create_model_card

        @functools.wraps(original)
        def create_model_card(*args, **kwargs):
            result = original(*args, **kwargs)
            if self.is_main and self.registered:
                self.write_card(model_name=kwargs.get("model_name"))
                if self._push_pending:
                    self._push_pending = False
                    self.push_dataset()
            return result

        create_model_card._activekd_publisher = self
        trainer.create_model_card = create_model_card

    @property
    def registered(self) -> bool:
        """Whether the callback is (still) one of the trainer's callbacks."""
        handler = getattr(self.trainer, "callback_handler", None)
        return any(cb is self.callback for cb in getattr(handler, "callbacks", ()))

    @property
    def is_main(self) -> bool:
        trainer = self.trainer
        return bool(trainer.is_world_process_zero() and trainer.args.should_save)

    def on_push_begin(self) -> None:
        """Before every push (``push_to_hub`` and checkpoint pushes): write the files, push the data."""
        if not self.is_main:
            return
        self._write_all_or_report()  # a checkpoint push must not end training
        if getattr(self.trainer, "hub_model_id", None):
            self.push_dataset()
        else:  # push_to_hub creates the repo after this hook: push from create_model_card
            self._push_pending = True

    def on_train_end(self) -> None:
        """Write the card, plot and data into ``output_dir`` (whether or not anything is pushed)."""
        if self.is_main:
            self.student_latency = None  # measure the final weights
            self._write_all_or_report()  # training is over: report, do not lose the run

    # ------------------------------------------------------------------ writing
    @property
    def output_dir(self) -> Path:
        return Path(self.trainer.args.output_dir)

    def write_card(self, model_name: str | None = None, inputs: CardInputs | None = None) -> Path:
        """Write ``README.md`` (merged into the existing card, if any) and the plot into ``output_dir``."""
        inputs = inputs or self.inputs(model_name)
        out = self.output_dir
        out.mkdir(parents=True, exist_ok=True)
        if inputs.rounds:
            plot_rounds(inputs.rounds, out / PLOT_FILE, inputs.best_round)
        secrets = self._secrets()
        ours = build_model_card(inputs, secrets)
        path = out / "README.md"
        existing = ModelCard.load(path) if path.exists() else None
        card = merge_model_card(existing, ours, inputs)
        path.write_text(redact(str(card), secrets), encoding="utf-8")
        return path

    def write_data(self, inputs: CardInputs | None = None) -> tuple[Path, Path]:
        """Write ``activekd/generated.jsonl`` (every accepted row) and ``activekd/dataset_card.md``."""
        inputs = inputs or self.inputs()
        folder = self.output_dir / self.callback.config.output_subdir
        folder.mkdir(parents=True, exist_ok=True)
        secrets = self._secrets()
        data_path = folder / GENERATED_FILE
        lines = [json.dumps({c: row.get(c) for c in DATASET_COLUMNS}, ensure_ascii=False) for row in inputs.rows]
        data_path.write_text(redact("\n".join(lines) + ("\n" if lines else ""), secrets), encoding="utf-8")
        card_path = folder / DATASET_CARD_FILE
        card = build_dataset_card(inputs, secrets=secrets, data_files=GENERATED_FILE)
        card_path.write_text(str(card), encoding="utf-8")
        return data_path, card_path

    def _write_all_or_report(self) -> None:
        try:
            self.write_all()
        except Exception:  # noqa: BLE001 - writing the card must never end training or lose the run
            logger.exception("ActiveKD could not write the model card and data into %s.", self.output_dir)

    def write_all(self, model_name: str | None = None) -> CardInputs:
        inputs = self.inputs(model_name)
        self.write_card(inputs=inputs)
        self.write_data(inputs)
        return inputs
