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

import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .annotation import Annotator, check_annotation_setup, unlabeled_texts
from .answer_log import ANSWERS_FILE, LEGACY_RUN_ID, AnswerLog, replay_plan, request_fingerprint
from .config import ActiveKDConfig
from .distributed import MainProcessError, process_info, run_on_main_and_broadcast
from .harm import detect_harm, move_round_aside, set_aside_rounds, set_aside_texts
from .metrics import EvalReport
from .overlap import SKIPPED_IN_FLIGHT, InFlightRound, RoundCancelled, settle, submit
from .policy import plan_requests
from .pool import GeneratedPool, RowFilter
from .quality import QualityGate
from .run_state import STATE_FILE, new_run_id
from .scoring import ScoreFn, score_sharded
from .teachers.base import Teacher, TeacherRequest, TeacherResponse, generate_with_answers
from .utils import atomic_write_text
from .verification import DISAGREEMENT, check_teacher_can_verify, verify_batches

logger = logging.get_logger(__name__)

ROUNDS_FILE = "rounds.json"
__all__ = ["ANSWERS_FILE", "ROUNDS_FILE", "STATE_FILE", "RoundRunner"]


def _no_generation() -> dict[str, Any]:
    """The generation stats of a round that generated nothing (``source="annotate"``)."""
    return {
        "tokens_in": 0,
        "tokens_out": 0,
        "cost": 0.0,
        "cache_hits": 0,
        "replayed": 0,
        "failed_requests": 0,
        "generated": True,
        "requested": 0,
        "requests": 0,
        "accepted": 0,
        "dropped": {},
        "faults": {},
        "requested_by_class": {},
        "accepted_by_class": {},
        "reasons": {},
    }


def _scalar_metrics(metrics: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


class RoundRunner:
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

    # ------------------------------------------------------------------ state
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def generated_rounds(self) -> int:
        """Rounds that count against ``max_rounds``: those in which at least one teacher request was answered."""
        return sum(1 for r in self.rounds if r.get("generated") and r.get("requests", 0) > r.get("failed_requests", 0))

    def answers(self) -> dict[str, dict[str, Any]]:
        """The successful teacher answers of this run so far, by request key (the latest one per key)."""
        return {
            e["key"]: e["response"]
            for e in self.log.of_run(self.run_id)
            if e["response"].get("error") is None and e.get("kind") != "annotate"
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "rounds": list(self.rounds),
            "best_metric": self.best_metric,
            "best_round": self.best_round,
            "rounds_without_improvement": self.rounds_without_improvement,
            "should_stop": self.should_stop,
            "stop_reason": self.stop_reason,
            "teacher": self.teacher.state_dict(),
            "pool_rows": len(self.pool.rows()),
            "run_id": self.run_id,
            "rows": list(self.pool.rows()),
        }

    def load_state_dict(self, state: dict[str, Any], manage_files: bool | None = None) -> None:
        """Restore the records of a checkpoint and continue its run.

        With ``manage_files`` (default: on the main process; the callback asks each node's first process, since nodes
        may not share a file system), round files written after the checkpoint are moved aside (numbered
        ``*.discarded`` files, nothing is deleted) and round files the checkpoint holds but the folder lacks (a
        checkpoint copied elsewhere, another node) are written from the checkpoint's rows. The teacher's spending is
        restored from the answer log when it records more than the checkpoint (answers after the checkpoint).
        """
        self.rounds = list(state.get("rounds", []))
        self.best_metric = state.get("best_metric")
        self.best_round = state.get("best_round")
        self.rounds_without_improvement = int(state.get("rounds_without_improvement", 0))
        self.should_stop = bool(state.get("should_stop", False))
        self.stop_reason = state.get("stop_reason")
        self.run_id = state.get("run_id") or LEGACY_RUN_ID
        self.teacher.load_state_dict(state.get("teacher", {}))
        budget = getattr(self.teacher, "budget", None)
        if budget is not None and hasattr(budget, "restore_spend"):
            budget.restore_spend(self.log.spend(self.run_id))
        # a round in flight at the checkpoint has no rows yet: its file, if the answers arrived later, is moved aside
        # and its answers are replayed when its plan is sent again (see overlap.resume)
        done = [r["round"] for r in self.rounds if r.get("generated") and not r.get("in_flight")]
        last_round = max(done, default=-1)
        if self.is_main if manage_files is None else manage_files:
            moved = self.pool.remove_rounds_after(last_round)
            if moved:
                logger.warning(
                    "Resuming: %d round file(s) written after the checkpoint were moved aside (%s). Their answers "
                    "are replayed from %s for the same rounds of this run.",
                    len(moved),
                    ", ".join(p.name for p in moved),
                    ANSWERS_FILE,
                )
            by_round: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for row in state.get("rows") or []:
                if isinstance(row, dict) and isinstance(row.get("round"), int) and row["round"] <= last_round:
                    by_round[row["round"]].append(row)
            for index, rows in sorted(by_round.items()):
                if not self.pool.round_path(index).exists():
                    self.pool.write_round(index, rows)
            for index in sorted(set_aside_rounds(self.rounds)):  # set aside before the checkpoint: stays aside
                move_round_aside(self.pool, index)
            self.write_rounds()
        self.pool.refresh()
        self.filter.add_seen(r["text"] for r in self.pool.rows())
        self.filter.add_seen(set_aside_texts(self.output_dir))  # the same junk is not accepted again

    def write_rounds(self) -> None:
        atomic_write_text(self.output_dir / ROUNDS_FILE, json.dumps(self.rounds, indent=2, ensure_ascii=False))

    # ------------------------------------------------------------------ judging
    def metric_value(self, report: EvalReport, metrics: dict[str, Any] | None) -> float:
        name = self.config.metric_for_rounds
        if name in ("macro_f1", "accuracy") and not (metrics and (f"eval_{name}" in metrics or name in metrics)):
            return report.macro_f1 if name == "macro_f1" else report.accuracy
        metrics = metrics or {}
        for key in (name, f"eval_{name}"):
            if key in metrics:
                return float(metrics[key])
        raise KeyError(
            f"metric_for_rounds={name!r} is neither 'macro_f1', 'accuracy' nor a key of the eval metrics "
            f"({sorted(metrics)})."
        )

    def _judge(self, value: float, round_index: int) -> bool:
        """Update the early-stopping state with this evaluation; return whether it is the best so far."""
        better = self.best_metric is None or (
            value > self.best_metric + self.config.min_delta
            if self.config.resolve_greater_is_better()
            else value < self.best_metric - self.config.min_delta
        )
        if better:
            self.best_metric, self.best_round = value, round_index
            self.rounds_without_improvement = 0
        else:
            self.rounds_without_improvement += 1
            if self.config.patience and self.rounds_without_improvement >= self.config.patience:
                self.should_stop = True
                self.stop_reason = (
                    f"no improvement of {self.config.metric_for_rounds} by more than {self.config.min_delta} in "
                    f"{self.rounds_without_improvement} evaluations (best {self.best_metric:.4f} at round "
                    f"{self.best_round})"
                )
        return better

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
        if self.annotator is not None and score_fn is None:
            raise ValueError(
                f"source={self.config.source!r}: RoundRunner.run needs score_fn=... (the student's class "
                "probabilities for a list of texts, e.g. hf_activekd.scoring.StudentScorer) to pick the texts to "
                "label."
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
            try:
                result = run_on_main_and_broadcast(lambda: self._generate(report, eval_texts, round_index, scored))
            except MainProcessError as exc:
                if self.config.teacher_on_failure == "raise":
                    raise
                result = {"error": str(exc), "rows": [], "stats": {}}
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

    def _score_unlabeled(self, round_index: int, score_fn: ScoreFn) -> tuple[list[int], Any]:
        """This round's candidate unlabeled texts (chosen on the main process) and the student's scores for them
        (computed in shards on every process, gathered)."""
        positions = run_on_main_and_broadcast(lambda: self.annotator.candidates(round_index, self.run_id))
        return positions, score_sharded(score_fn, [self.annotator.texts[i] for i in positions])

    def _generate(
        self,
        report: EvalReport,
        eval_texts: Sequence[str] | None,
        round_index: int,
        scored: tuple[list[int], Any] | None = None,
    ) -> dict[str, Any]:
        """One round's teacher work on the main process: generated rows, annotated rows, or both (``config.source``),
        written to the round's file."""
        start = time.perf_counter()
        generate, annotate = self.config.split_budget()
        if generate:
            config = replace(self.config, samples_per_round=generate) if annotate else self.config
            result = self._generate_rows(report, eval_texts, round_index, config)
        else:
            result = {"rows": [], "stats": _no_generation(), "error": None}
        rows, stats = result["rows"], result["stats"]
        if self.annotator is not None and annotate:
            annotated, more = self.annotator.annotate(
                self.teacher, report, scored, annotate, round_index, self.run_id, self.progress
            )
            rows = rows + annotated
            stats.update(more)
            stats["requests"] += more["annotate_requests"]
            stats["failed_requests"] += more["annotate_failed_requests"]
            stats["requested"] += more["annotate_requested"]
            stats["accepted"] += len(annotated)
            stats["replayed"] += more["annotate_replayed"]
            stats["tokens_in"] += more["annotate_tokens_in"]
            stats["tokens_out"] += more["annotate_tokens_out"]
            stats["cost"] += more["annotate_cost"]
            drops = Counter(stats["dropped"]) + Counter(more["annotate_dropped"])
            stats["dropped"] = {k: drops[k] for k in sorted(drops)}
            accepted = Counter(stats["accepted_by_class"]) + Counter(r["label"] for r in annotated)
            stats["accepted_by_class"] = dict(accepted)
            if stats["requests"] and stats["failed_requests"] == stats["requests"]:
                result["error"] = result["error"] or "every teacher request failed"
            elif result["error"] == "every teacher request failed":
                result["error"] = None  # the labelling requests were answered
        if rows:
            self.pool.write_round(round_index, rows)
        stats["source"] = self.config.source
        stats["wall_time_s"] = round(time.perf_counter() - start, 4)
        return {"rows": rows, "stats": stats, "error": result["error"]}

    def _generate_rows(
        self, report: EvalReport, eval_texts: Sequence[str] | None, round_index: int, config: ActiveKDConfig
    ) -> dict[str, Any]:
        """The generated part of a blocking round (``config``: its share of the budget); the caller writes the file."""
        start = time.perf_counter()
        return self.fetch(self.plan(report, eval_texts, round_index, config), round_index, start, write=False)

    def plan(
        self,
        report: EvalReport,
        eval_texts: Sequence[str] | None,
        round_index: int,
        config: ActiveKDConfig | None = None,
    ) -> list[TeacherRequest]:
        """The requests of round ``round_index``, from this evaluation's report and the rows generated so far."""
        earlier: dict[str, list[str]] = defaultdict(list)
        for row in self.pool.rows():
            earlier[row["label"]].append(row["text"])
        return plan_requests(report, config or self.config, round_index, eval_texts, earlier)

    def fetch(
        self,
        requests: list[TeacherRequest],
        round_index: int,
        start: float,
        job: InFlightRound | None = None,
        write: bool = True,
    ) -> dict[str, Any]:
        """Send the planned ``requests`` (less the answers of this run and round already logged), check the answers
        and write the accepted rows as the round's file (unless ``write=False``). Returns ``{"rows", "stats",
        "error"}``. ``job``: the background round this runs for (overlap), told of each answer and able to cancel
        the round."""
        fingerprints = {r.key: request_fingerprint(r, self.teacher.name) for r in requests}
        logged = [e for e in self.log.of_run(self.run_id) if e["round"] == round_index and e.get("kind") != "annotate"]
        replayed, to_send, extra = replay_plan(requests, logged, fingerprints)
        if replayed or extra:
            logger.warning(
                "ActiveKD round %d: %d answer(s) of this run were already logged before a restart; they are used, "
                "and %d request(s) are sent.",
                round_index,
                len(replayed) + len(extra),
                len(to_send),
            )
        pending = {r.key: r for r in to_send}
        arrived: dict[str, TeacherResponse] = {}

        def on_answer(response: TeacherResponse) -> None:  # on disk the moment it arrives (crash, kill, Ctrl-C)
            request = pending.get(response.key)
            if request is None or response.key in arrived:
                return
            arrived[response.key] = response
            self.log.append(self.run_id, round_index, request, response, fingerprints[request.key])
            if job is not None:
                job.answered(response)  # raises RoundCancelled once the round was cancelled

        error = None
        try:
            fresh = generate_with_answers(self.teacher, to_send, self.progress, on_answer) if to_send else []
        except RoundCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing teacher must not end training
            if self.config.teacher_on_failure == "raise":
                raise
            logger.error("Teacher %s failed in round %d: %s", self.teacher.name, round_index, exc)
            error = f"{type(exc).__name__}: {exc}"
            fresh = [arrived.get(r.key) or TeacherResponse(key=r.key, error=error) for r in to_send]
        for response in fresh:
            on_answer(response)
        by_key = {r.key: r for r in fresh}
        for key, entry in replayed.items():
            by_key[key] = TeacherResponse.from_dict(entry["response"])
        requests = [r for r in requests if r.key in replayed or r.key in pending]  # the plan less the room made
        for entry in extra:  # answers of this round for classes the new plan does not ask for: used all the same
            requests.append(
                TeacherRequest(
                    key=entry["key"],
                    label=entry["label"],
                    num_samples=int(entry["num_samples"]),
                    reason=entry["reason"],
                )
            )
            by_key[entry["key"]] = TeacherResponse.from_dict(entry["response"])
        replayed_keys = set(replayed) | {e["key"] for e in extra}

        rows: list[dict[str, Any]] = []
        drops: Counter = Counter()
        faults: Counter = Counter()
        accepted_by_class: Counter = Counter()
        requested_by_class: Counter = Counter()
        batches: list[tuple[TeacherRequest, list[dict[str, Any]]]] = []
        stats = {
            "tokens_in": 0,
            "tokens_out": 0,
            "cost": 0.0,
            "cache_hits": 0,
            "replayed": len(replayed_keys),
            "failed_requests": 0,
        }
        for request in requests:
            response = by_key.get(request.key) or TeacherResponse(key=request.key, error="no response")
            requested_by_class[request.label] += request.num_samples
            faults.update(response.faults)
            if response.cached:
                stats["cache_hits"] += 1
            else:  # replayed answers were paid by this run: they count
                stats["tokens_in"] += response.prompt_tokens
                stats["tokens_out"] += response.completion_tokens
                stats["cost"] += response.cost
            if response.error is not None:
                stats["failed_requests"] += 1
                continue
            accepted, dropped = self.filter.accept(request, response.samples, round_index, self.teacher.name)
            batches.append((request, accepted))
            drops.update(dropped)
        if self.config.verify == "teacher":  # the teacher labels each request's accepted rows again, blind
            kept, verified = verify_batches(
                self.teacher, batches, self.label_names, self.config, round_index, self.progress
            )
            drops[DISAGREEMENT] += sum(len(b[1]) for b in batches) - sum(len(k) for k in kept)
            drops = +drops  # no zero counts
            batches = [(request, rows_kept) for (request, _), rows_kept in zip(batches, kept)]
            stats.update(verified)
            stats["tokens_in"] += verified["verify_tokens_in"]
            stats["tokens_out"] += verified["verify_tokens_out"]
            stats["cost"] += verified["verify_cost"]
        for _, accepted in batches:
            rows.extend(accepted)
            accepted_by_class.update(r["label"] for r in accepted)
        if job is not None:
            job.commit(lambda: self.pool.write_round(round_index, rows) if rows else None)
        elif rows and write:
            self.pool.write_round(round_index, rows)
        if error is None and requests and stats["failed_requests"] == len(requests):
            error = "every teacher request failed"
        wall = time.perf_counter() - start
        stats.update(
            {
                "generated": True,
                "requested": sum(r.num_samples for r in requests),
                "requests": len(requests),
                "accepted": len(rows),
                "dropped": {k: drops[k] for k in sorted(drops)},
                "faults": {k: faults[k] for k in sorted(faults)},
                "requested_by_class": dict(requested_by_class),
                "accepted_by_class": dict(accepted_by_class),
                "reasons": {r.key: r.reason for r in requests},
                "wall_time_s": round(wall, 4),
            }
        )
        logger.info(
            "ActiveKD round %d: requested %d samples in %d requests, accepted %d, dropped %s, %d failed, %.1fs",
            round_index,
            stats["requested"],
            len(requests),
            len(rows),
            dict(drops) or "none",
            stats["failed_requests"],
            wall,
        )
        return {"rows": rows, "stats": stats, "error": error}
