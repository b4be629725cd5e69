"""One distillation round, from the student's predictions to accepted rows on disk, with no Trainer in it.

:class:`RoundRunner` is what :class:`~hf_activekd.ActiveKDCallback` drives at each evaluation; custom training loops
and the CLI can drive it directly:

```python
runner = RoundRunner(
    teacher, config, label_names, "out/activekd", train_texts=train["text"], eval_texts=val["text"]
)
report = build_report(logits, labels, label_names)
record = runner.run(report, eval_texts=val["text"], global_step=step)
```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .annotation import Annotator, check_annotation_setup, unlabeled_texts
from .answer_log import ANSWERS_FILE, AnswerLog
from .config import ActiveKDConfig
from .distributed import MainProcessError, process_info, run_on_main_and_broadcast
from .harm import detect_harm, move_round_aside
from .metrics import EvalReport
from .overlap import SKIPPED_IN_FLIGHT, InFlightRound, settle, submit
from .pool import GeneratedPool, RowFilter
from .quality import QualityGate
from .round_records import ROUNDS_FILE, RoundRecords, _scalar_metrics
from .round_teacher import RoundTeacherWork
from .run_state import STATE_FILE, new_run_id
from .scoring import ScoreFn
from .teachers.base import Teacher
from .verification import check_teacher_can_verify

logger = logging.get_logger(__name__)

__all__ = ["ANSWERS_FILE", "ROUNDS_FILE", "STATE_FILE", "RoundRunner"]


class RoundRunner(RoundRecords, RoundTeacherWork):
    """Runs distillation rounds and keeps their records, the generated pool and the answer log on disk.

    Args:
        teacher (`Teacher`): Where samples come from.
        config (`ActiveKDConfig`): Policy, budget, validation and stopping settings.
        label_names (`Sequence[str]`): Class names by id.
        output_dir (`str` or `os.PathLike`): Folder of ``round-NNNN.jsonl``, ``rounds.json`` and ``answers.jsonl``.
        train_texts (`Sequence[str]`, *optional*): Training texts; generated duplicates of them are dropped.
        progress (`bool`, defaults to `True`): Show a progress bar over a round's requests.
        eval_texts (`Sequence[str]`, *optional*): Every validation text; generated copies and near copies of them are
            dropped (``eval_text``), whether or not a prompt quoted them. Texts passed to :meth:`run` are added.
        run_id (`str`, *optional*): The run this runner belongs to; defaults to a new one. Logged answers are replayed
            only for the same run (see :meth:`load_state_dict`).
        unlabeled (`Sequence[str]` or `datasets.Dataset`, *optional*): Your unlabeled texts (a dataset: its
            ``config.text_column``), needed by ``config.source="annotate"`` or ``"both"``: the teacher labels those
            the student is weak or unsure on (see :mod:`hf_activekd.annotation`); :meth:`run` then needs a
            ``score_fn``.
        step_fn (`Callable[[], int]`, *optional*): The current training step, read when an overlapped round's rows
            arrive (``arrived_at_step``; see :mod:`hf_activekd.overlap`). Without it, the step of the evaluation that
            settles the round is recorded.
    """

    def __init__(
        self,
        teacher: Teacher,
        config: ActiveKDConfig,
        label_names: Sequence[str],
        output_dir: str | os.PathLike,
        train_texts: Sequence[str] = (),
        progress: bool = True,
        eval_texts: Sequence[str] = (),
        run_id: str | None = None,
        unlabeled: Any = None,
        step_fn: Callable[[], int] | None = None,
    ):
        check_teacher_can_verify(teacher, config.verify)  # before any round is paid
        check_annotation_setup(config, teacher, unlabeled)
        self.teacher = teacher
        self.config = config
        self.label_names = list(label_names)
        self.output_dir = Path(output_dir)
        self.pool = GeneratedPool(self.output_dir)
        self.filter = RowFilter(
            self.label_names,
            config.min_chars,
            config.max_chars,
            train_texts,
            eval_texts=eval_texts,
            quality=QualityGate.from_config(config),
        )
        self._protected: Sequence[str] | None = None  # the last eval_texts given to run(), already protected
        self.progress = progress
        self.rounds: list[dict[str, Any]] = []
        self.best_metric: float | None = None
        self.best_round: int | None = None
        self.rounds_without_improvement = 0
        self.should_stop = False
        self.stop_reason: str | None = None
        self.run_id = run_id or new_run_id()
        self.log = AnswerLog(self.output_dir)
        self.rank, self.world_size = process_info()
        self.annotator: Annotator | None = None
        if config.source != "generate":
            texts = unlabeled_texts(unlabeled, config.text_column)
            self.annotator = Annotator(texts, config, self.label_names, self.filter, self.log)
        self.step_fn = step_fn
        self.in_flight: InFlightRound | None = None  # overlap=True: the round being answered (main process only)

    # ------------------------------------------------------------------ a round
    def run(
        self,
        report: EvalReport,
        eval_texts: Sequence[str] | None = None,
        metrics: dict[str, Any] | None = None,
        global_step: int = 0,
        epoch: float | None = None,
        skip: str | None = None,
        score_fn: ScoreFn | None = None,
    ) -> dict[str, Any]:
        """Judge the evaluation, and unless training should stop, ``max_rounds`` is reached or ``skip`` gives a reason
        not to generate (e.g. ``"last step: no training left"``), ask the teacher for new samples and store the
        accepted ones. Returns the round record (also appended to :attr:`rounds`; a round not generated has the reason
        in ``skipped``).

        Call it on every process: the teacher runs on the main process and the result is broadcast.

        With ``config.source`` ``"annotate"`` or ``"both"``, ``score_fn`` gives the student's class probabilities for
        a list of texts (an array of shape ``(len(texts), num_classes)``, e.g. a
        :class:`~hf_activekd.scoring.StudentScorer`); under several processes each one scores a shard.

        With ``config.overlap``, the round in flight (if any) is settled first (waited for or left in flight, as
        ``overlap_policy`` says), and this round's requests go out from a background thread: the record returned is
        ``in_flight`` until a later evaluation (or :meth:`finish`) records its answers (see
        :mod:`hf_activekd.overlap`).
        """
        if score_fn is None and self.config.needs_student_scores:
            raise ValueError(
                f"source={self.config.source!r}, candidate_factor={self.config.candidate_factor}: RoundRunner.run "
                "needs score_fn=... (the student's class probabilities for a list of texts, e.g. "
                "hf_activekd.scoring.StudentScorer) to pick the texts to label or keep."
            )
        pending = None
        if self.config.overlap:
            pending = settle(self, global_step, wait=self.config.overlap_policy == "wait")
        round_index = len(self.rounds)
        value = self.metric_value(report, metrics)
        is_best = self._judge(value, round_index)
        record: dict[str, Any] = {
            "round": round_index,
            "global_step": int(global_step),
            "epoch": epoch,
            "metric": self.config.metric_for_rounds,
            "metric_value": value,
            "is_best": is_best,
            "accuracy": report.accuracy,
            "macro_f1": report.macro_f1,
            "eval_metrics": _scalar_metrics(metrics),
            "per_class_f1": {n: float(f) for n, f in zip(report.label_names, report.f1)},
            "generated": False,
            "requested": 0,
            "accepted": 0,
            "dropped": {},
            "requests": 0,
            "failed_requests": 0,
            "faults": {},
            "tokens_in": 0,
            "tokens_out": 0,
            "cost": 0.0,
            "cache_hits": 0,
            "replayed": 0,
            "wall_time_s": 0.0,
            "teacher": self.teacher.name,
            "requested_at_step": None,
            "arrived_at_step": None,
        }
        harm = detect_harm(
            self.rounds,
            value,
            self.best_metric,
            self.best_round,
            round_index,
            self.config.resolve_greater_is_better(),
            self.config.harm_delta,
            global_step=int(global_step) if self.config.overlap else None,  # overlap: by the steps rows arrived at
        )
        if harm is not None:
            self._handle_harm(record, harm)
        if self.should_stop:
            record["skipped"] = f"stopping: {self.stop_reason}"
        elif skip:
            record["skipped"] = skip
        elif self.generated_rounds >= self.config.max_rounds:
            record["skipped"] = f"max_rounds={self.config.max_rounds} reached"
        elif pending is not None:
            record["skipped"] = SKIPPED_IN_FLIGHT.format(pending["round"])
        elif eval_texts is not None and eval_texts is not self._protected:
            self.filter.add_eval_texts(eval_texts)  # every text a prompt may quote
            self._protected = eval_texts
        if "skipped" in record:
            pass
        elif self.config.overlap:  # requests go out in the background; the record is in flight (see overlap.py)
            submit(self, record, lambda: self.plan(report, eval_texts, round_index))
        else:
            scored = self._score_unlabeled(round_index, score_fn) if self.annotator is not None else None
            select = self.config.candidate_factor > 1  # the student keeps the hard candidates (hard_selection.py)
            try:
                result = run_on_main_and_broadcast(
                    lambda: self._generate(report, eval_texts, round_index, scored, write=not select)
                )
            except MainProcessError as exc:
                if self.config.teacher_on_failure == "raise":
                    raise
                result = {"error": str(exc), "rows": [], "stats": {}}
            if select and result["rows"]:
                result = self._keep_hard(result, score_fn, round_index)
                if self.is_main:
                    self.pool.write_round(round_index, result["rows"])
            record.update(result["stats"])
            record["requested_at_step"] = record["arrived_at_step"] = int(global_step)
            if result.get("error"):
                record["error"] = result["error"]
            self.take_rows(round_index, result["rows"])
        record["pool_rows"] = len(self.pool.rows())
        self.rounds.append(record)
        if self.is_main:
            self.write_rounds()
        return record

    def take_rows(self, round_index: int, rows: list[dict[str, Any]]) -> None:
        """Take a round's accepted rows on this process: written where this process does not see the main process's
        round file (no shared file system between the processes), and marked as seen for deduplication."""
        if not self.is_main and rows and not self.pool.round_path(round_index).exists():
            self.pool.write_round(round_index, rows)
        self.filter.add_seen(r["text"] for r in rows)

    def finish(self, global_step: int) -> dict[str, Any] | None:
        """End of training (call on every process): await or cancel the round in flight (``overlap_at_end``) and
        record it. Returns its record, or None when no round was in flight."""
        from .overlap import finish

        return finish(self, global_step)

    def _handle_harm(self, record: dict[str, Any], harm: dict[str, Any]) -> None:
        """Record the harm; with ``on_harm="drop_round"``, set the rows of the rounds since the best aside (every
        process takes the same decision from the same records and moves the files it sees; see harm.py)."""
        record["harm"] = harm
        suspects = harm["rounds"]
        if self.config.on_harm == "drop_round" and suspects:
            record["set_aside_rounds"] = list(suspects)
            record["set_aside_rows"] = sum(int(r.get("accepted", 0)) for r in self.rounds if r["round"] in suspects)
            for index in suspects:
                move_round_aside(self.pool, index)
        logger.warning(
            "ActiveKD round %d: %s=%.4f is %.4f below the best (%.4f at round %d): the rows of round(s) %s %s.",
            record["round"],
            self.config.metric_for_rounds,
            harm["metric"],
            harm["drop"],
            harm["best"],
            harm["best_round"],
            suspects or "none",
            "are set aside for the rest of training"
            if "set_aside_rounds" in record
            else "are kept (on_harm='keep')"
            if suspects
            else "were already set aside",
        )
