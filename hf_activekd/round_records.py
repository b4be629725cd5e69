"""The records of a run's rounds: ``rounds.json``, the state a checkpoint keeps and restores, and the judging of each
evaluation against the best so far (early stopping). Mixed into :class:`~hf_activekd.rounds.RoundRunner`."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from transformers.utils import logging

from .answer_log import ANSWERS_FILE, LEGACY_RUN_ID, is_generation
from .harm import move_round_aside, set_aside_rounds, set_aside_texts
from .metrics import EvalReport
from .utils import atomic_write_text

logger = logging.get_logger(__name__)

ROUNDS_FILE = "rounds.json"


def _scalar_metrics(metrics: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


class RoundRecords:
    """The round records, best metric and stopping state of a :class:`~hf_activekd.rounds.RoundRunner`, kept on disk
    (``rounds.json``) and in checkpoints (:meth:`state_dict`, :meth:`load_state_dict`)."""

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
            if e["response"].get("error") is None and is_generation(e)
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
