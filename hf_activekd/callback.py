"""`ActiveKDCallback`: a thin adapter from Trainer events to distillation rounds, the collator and the records."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.utils import logging

from .annotation import check_annotation_setup, unlabeled_texts
from .callback_state import CallbackRunState
from .card import ActiveKDPublisher
from .checks import (
    TokenizePreprocess,
    batch_columns,
    check_label_column,
    check_picklable,
    check_rows_fit,
    column_names,
    column_values,
    is_indexable,
    label_column_of,
    resolve_label_names,
)
from .collator import ActiveKDDataCollator
from .config import ActiveKDConfig
from .distributed import MainProcessError, data_parallel_info, run_on_main_and_broadcast
from .eval_alignment import EvalOrderTracker, align_texts, evaluated_key
from .metrics import MetricsRecorder
from .rounds import RoundRunner
from .run_state import install_round_state
from .scoring import StudentScorer
from .teachers.base import Teacher, TeacherUnavailableError
from .utils import forward_params
from .verification import check_teacher_can_verify

logger = logging.get_logger(__name__)


def _model_config(model):
    config = getattr(model, "config", None)
    if config is None and hasattr(model, "get_base_model"):
        config = getattr(model.get_base_model(), "config", None)
    return config


class ActiveKDCallback(CallbackRunState, TrainerCallback):
    """Performance-guided active distillation inside a running `transformers.Trainer`.

    At every evaluation during training, the student's per-class validation results (computed from the predictions
    the Trainer already gathered) become targeted requests to the ``teacher``; the accepted samples are written to
    ``<output_dir>/activekd/round-NNNN.jsonl`` and mixed into the following *training* batches on every process by an
    :class:`~hf_activekd.ActiveKDDataCollator` installed on the training dataloader only. Rounds stop after
    ``config.patience`` evaluations without improvement. Records: :attr:`rounds` and ``activekd/rounds.json``.

    ```python
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, ...)
    callback = ActiveKDCallback(trainer, teacher=TGITeacher("http://127.0.0.1:8080"),
                                config=ActiveKDConfig(samples_per_round=64),
                                preprocess=lambda rows: tokenizer(rows["text"], truncation=True))
    trainer.add_callback(callback)
    trainer.train()
    ```

    Args:
        trainer (`transformers.Trainer`): The trainer to attach to (callbacks do not receive it otherwise).
        teacher (`Teacher`): :class:`~hf_activekd.TGITeacher`, :class:`~hf_activekd.PoolTeacher` or your own.
        config (`ActiveKDConfig`, *optional*): Settings; defaults to `ActiveKDConfig()`.
        preprocess (`Callable`, *optional*): Turns ``{text_column: [...], label_column: [...]}`` into model inputs.
            Defaults to the trainer's tokenizer (``processing_class``) with ``truncation=True``.
        eval_texts (`Sequence[str]`, *optional*): Validation texts in eval-dataset order, for the prompts. Defaults to
            ``eval_dataset[config.text_column]``.
        train_texts (`Sequence[str]`, *optional*): Training texts for deduplication. Defaults to
            ``train_dataset[config.text_column]`` where present.
        progress (`bool`, defaults to `True`): Progress bar over a round's teacher requests.
        dataset_repo_id (`str`, *optional*): Dataset repo for the generated data when the model is pushed. Defaults to
            ``<model repo>-activekd-data`` (never more public than the model repo: see :mod:`hf_activekd.privacy`).
        push_dataset (`bool`, defaults to `True`): Push the generated data (and its card) with the model.
        source_datasets (`Sequence[str]`, *optional*): Hub ids of your datasets, for the model card's metadata.
        unlabeled (`Sequence[str]` or `datasets.Dataset`, *optional*): Your unlabeled in-domain texts (a dataset: its
            ``config.text_column``). With ``config.source="annotate"`` (or ``"both"``) the teacher labels those the
            student is weak or unsure on, each round (see :mod:`hf_activekd.annotation`).

    Raises:
        `ValueError`: on a setup that cannot work (no evaluation strategy or eval dataset, unknown labels, a label
            column of the wrong type, a ``preprocess`` that does not produce the model's inputs).
    """

    def __init__(
        self,
        trainer,
        teacher: Teacher,
        config: ActiveKDConfig | None = None,
        preprocess: Callable[[dict[str, list]], Mapping[str, Sequence]] | None = None,
        eval_texts: Sequence[str] | None = None,
        train_texts: Sequence[str] | None = None,
        progress: bool = True,
        dataset_repo_id: str | None = None,
        push_dataset: bool = True,
        source_datasets: Sequence[str] | None = None,
        unlabeled: Any = None,
    ):
        if not isinstance(teacher, Teacher):
            raise TypeError(f"teacher must be a hf_activekd Teacher (TGITeacher, PoolTeacher, ...), got {teacher!r}")
        self.trainer = trainer
        self.teacher = teacher
        self.config = config or ActiveKDConfig()
        check_teacher_can_verify(teacher, self.config.verify)  # verify="teacher" needs Teacher.label()
        check_annotation_setup(self.config, teacher, unlabeled)  # source="annotate" needs texts and Teacher.label()
        annotates = self.config.source != "generate"
        self.unlabeled = unlabeled_texts(unlabeled, self.config.text_column) if annotates else []
        self.progress = progress
        args = trainer.args
        if str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "no":
            raise ValueError(
                "ActiveKDCallback runs a round at every evaluation, but TrainingArguments.eval_strategy is 'no'. "
                "Set eval_strategy='steps' (with eval_steps) or 'epoch'."
            )
        if trainer.eval_dataset is None:
            raise ValueError("ActiveKDCallback needs an eval_dataset on the Trainer: rounds are guided by it.")
        self.eval_key = None
        eval_dataset = trainer.eval_dataset
        eval_what = "eval_dataset"
        if isinstance(eval_dataset, dict):
            self.eval_key = next(iter(eval_dataset))
            eval_dataset = eval_dataset[self.eval_key]
            eval_what = f"eval_dataset[{self.eval_key!r}]"
            logger.info("ActiveKD rounds follow the eval dataset %r.", self.eval_key)
        self.label_names = self._resolve_label_names()
        self._check_labels(trainer.train_dataset, "train_dataset")
        self._check_labels(eval_dataset, eval_what)
        self.preprocess = preprocess or self._default_preprocess()
        self._check_preprocess()
        check_picklable(self.preprocess, args)
        self.eval_texts = list(eval_texts) if eval_texts is not None else self._column(eval_dataset)
        if self.eval_texts is None:
            logger.warning(
                "The eval dataset has no %r column and no eval_texts were given: prompts will carry the report and "
                "the confusions but no example texts.",
                self.config.text_column,
            )
        # Predictions may come in another order than the eval dataset (e.g. group_by_length): the sampler's order is
        # recorded and checked against the dataset's labels before a text goes into a prompt (see eval_alignment.py).
        label_column = label_column_of(eval_dataset, self.config.label_column)
        self._eval_labels = column_values(eval_dataset, label_column) if label_column is not None else None
        self._eval_order = EvalOrderTracker()  # installed while training (see _install_hooks)
        if train_texts is not None:
            self.train_texts = list(train_texts)
        elif is_indexable(trainer.train_dataset):
            self.train_texts = self._column(trainer.train_dataset) or []
        else:
            logger.info(
                "The train dataset is iterable: generated rows are deduplicated against earlier rounds only. Pass "
                "train_texts=... to deduplicate them against the training texts too."
            )
            self.train_texts = []
        if self.config.greater_is_better is None:  # follow the Trainer's direction for the same metric, or the name
            self.config = dataclasses.replace(
                self.config, greater_is_better=self.config.resolve_greater_is_better(args)
            )
        # Installed on the trainer only while it trains (on_train_begin .. on_train_end): see _install_hooks.
        self.recorder = MetricsRecorder(trainer.compute_metrics, self.label_names)
        self._user_compute_metrics = trainer.compute_metrics
        self.runner: RoundRunner | None = None
        self.collator: ActiveKDDataCollator | None = None
        self._training = False
        self._checked = False
        self.publisher = ActiveKDPublisher(self, dataset_repo_id, push_dataset, source_datasets)

    # ------------------------------------------------------------------ set-up checks
    @property
    def rounds(self) -> list[dict[str, Any]]:
        """One record per evaluation during training (see ``rounds.json``)."""
        return self.runner.rounds if self.runner is not None else []

    @property
    def output_dir(self) -> Path:
        return Path(self.trainer.args.output_dir) / self.config.output_subdir

    def _resolve_label_names(self) -> list[str]:
        return resolve_label_names(self.config.label_names, _model_config(self.trainer.model))

    def _column(self, dataset) -> list[str] | None:
        if self.config.text_column not in column_names(dataset):
            return None
        return [str(t) for t in column_values(dataset, self.config.text_column)]

    def _every_eval_text(self) -> list[str]:
        """The texts generated rows must never copy: ``eval_texts`` and the texts of every eval dataset."""
        datasets = self.trainer.eval_dataset
        datasets = datasets.values() if isinstance(datasets, dict) else [datasets]
        return list(self.eval_texts or []) + [t for d in datasets for t in (self._column(d) or [])]

    def _check_labels(self, dataset, what: str) -> None:
        check_label_column(dataset, self.config.label_column, self.label_names, what)

    def _default_preprocess(self):
        tokenizer = getattr(self.trainer, "processing_class", None)
        if tokenizer is None or not callable(tokenizer):
            raise ValueError(
                "Pass preprocess=... (e.g. lambda rows: tokenizer(rows['text'], truncation=True)): the Trainer has no "
                "tokenizer to build model inputs from generated texts."
            )
        return TokenizePreprocess(tokenizer, self.config.text_column)  # a class, not a closure: it pickles

    def _check_preprocess(self) -> None:
        columns = batch_columns(self.trainer, forward_params(self.trainer.model))
        check_rows_fit(self.preprocess, columns, self.config.text_column, self.config.label_column)

    # ------------------------------------------------------------------ events
    def _install_hooks(self) -> None:
        """Wrap ``trainer.compute_metrics`` (given back in on_train_end) and ``trainer.create_model_card``.

        The card wrapper stays after training, so that ``trainer.push_to_hub()`` after ``train()`` publishes the
        rounds; it passes through once the callback is removed from the trainer (see card/publisher.py).
        """
        trainer = self.trainer
        if trainer.compute_metrics is not self.recorder:  # idempotent: on_train_begin can run twice
            self._user_compute_metrics = trainer.compute_metrics
            self.recorder.user_fn = trainer.compute_metrics
            trainer.compute_metrics = self.recorder
        self.publisher.install()  # the card records every round (see card/publisher.py)
        self._eval_order.install(trainer)  # records the eval sampler's order (see eval_alignment.py)

    def _remove_hooks(self) -> None:
        if self.trainer.compute_metrics is self.recorder:
            self.trainer.compute_metrics = self._user_compute_metrics
        self._eval_order.uninstall(self.trainer)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._install_hooks()
        if state.global_step > 0:
            self._restore(args, state)
        elif self.runner is None or self.runner.rounds:  # a fresh run (not on_train_begin again before any round)
            self._start_fresh(args)
        install_round_state(self.trainer, state, self.runner.state_dict)  # the rounds travel in trainer_state.json
        if self.config.check_teacher and not self._checked:
            try:
                run_on_main_and_broadcast(self.teacher.check)
            except MainProcessError as exc:
                raise TeacherUnavailableError(f"The teacher is not usable: {exc}") from None
            self._checked = True
        self._install_collator(args, kwargs.get("train_dataloader"))
        self._training = True
        return control

    def _install_collator(self, args: TrainingArguments, train_dataloader) -> None:
        if train_dataloader is None:
            logger.warning("No train dataloader reached ActiveKDCallback.on_train_begin: generated rows stay unused.")
            return
        loader = getattr(train_dataloader, "base_dataloader", train_dataloader)
        inner = loader.collate_fn
        if isinstance(inner, ActiveKDDataCollator):  # on_train_begin twice (auto_find_batch_size): stay idempotent
            inner = inner.collate_fn
        mode = self.config.mix_mode
        accelerator = getattr(self.trainer, "accelerator", None)
        # under tensor/context parallelism the processes of one data-parallel group share a batch: shard by that rank
        rank, world = data_parallel_info(args.process_index, args.world_size, accelerator)
        dispatch = getattr(accelerator, "dispatch_batches", None) if accelerator is not None else None
        if dispatch is None:
            import torch.utils.data

            dispatch = isinstance(self.trainer.train_dataset, torch.utils.data.IterableDataset)
        if dispatch and world > 1:
            # The main process collates the whole global batch and splits it: take every row, keep shapes fixed.
            rank, world = 0, 1
            if mode == "append":
                logger.warning("dispatch_batches=True: generated rows replace batch rows (mix_mode='replace').")
                mode = "replace"
        self.collator = ActiveKDDataCollator(
            inner,
            self.output_dir,
            self.preprocess,
            self.label_names,
            text_column=self.config.text_column,
            label_column=self.config.label_column,
            mode=mode,
            rows_per_batch=self.config.rows_per_batch,
            rank=rank,
            world_size=world,
            seed=self.config.seed,
            truncate=self.config.truncate_generated_rows or mode == "replace",
        )
        loader.collate_fn = self.collator

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kw):
        order = self._eval_order.take()  # the eval sampler's order in this evaluation (None: dataset order)
        if not self._training or self.runner is None:
            return control  # an evaluation outside training: no round
        if self.eval_key is not None and evaluated_key(metrics, list(self.trainer.eval_dataset)) != self.eval_key:
            return control  # another dataset of the dict (metrics named eval_<key>_...): not the one rounds follow
        report = self.recorder.last_report
        self.recorder.last_report = None
        if report is None:
            logger.warning("ActiveKD: no predictions were recorded in this evaluation; no round.")
            return control
        texts = None
        if self.eval_texts is not None:
            texts, why = align_texts(self.eval_texts, self._eval_labels, report.labels, order)
            if texts is None:
                logger.warning(
                    "ActiveKD: the order of the %d predictions is not known (%s); prompts carry no example texts.",
                    len(report.labels),
                    why,
                )
        skip = None
        if state.max_steps and state.global_step >= state.max_steps:
            skip = "last step: no training left"
        elif control.should_training_stop:
            skip = "training stops: no training left"
        score_fn = self._student_scorer(args) if self.config.needs_student_scores else None
        record = self.runner.run(report, texts, metrics, state.global_step, state.epoch, skip=skip, score_fn=score_fn)
        self.trainer.log(self._log_payload(record))
        if self.runner.should_stop:
            logger.warning("ActiveKD stops training: %s", self.runner.stop_reason)
            control.should_training_stop = True
        return control

    def _student_scorer(self, args: TrainingArguments) -> StudentScorer:
        """Scores unlabeled texts with the student as it is now (see annotation.py)."""
        return StudentScorer(
            self.trainer.model,
            self.preprocess,
            self.trainer.data_collator,
            self.config.text_column,
            self.config.label_column,
            args.per_device_eval_batch_size,
            forward_params(self.trainer.model),
        )

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._training = False
        self._remove_hooks()  # trainer.evaluate() after training gets the user's compute_metrics again
        if self.runner is not None:  # overlap: the round still in flight is awaited or cancelled (overlap_at_end)
            record = self.runner.finish(state.global_step)
            if record is not None:
                logger.info("ActiveKD round %d settled at the end of training: %s", record["round"], record)
        if self.runner is not None and self.runner.rounds and state.is_world_process_zero:
            best = self.runner.best_round
            logger.info(
                "ActiveKD: %d rounds, %d generated rows, best %s=%.4f at round %s.",
                len(self.runner.rounds),
                len(self.runner.pool.rows()),
                self.config.metric_for_rounds,
                self.runner.best_metric or 0.0,
                best,
            )
        if self.runner is not None:
            self.publisher.on_train_end()  # README.md, plot and generated data in output_dir, pushed or not
        return control

    def on_push_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.runner is not None:
            self.publisher.on_push_begin()  # card files up to date for checkpoint pushes; pushes the generated data
        return control
