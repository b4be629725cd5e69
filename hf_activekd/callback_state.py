"""The run behind an :class:`~hf_activekd.ActiveKDCallback`: a fresh run or one restored from the checkpoint being
resumed, the state written into each checkpoint, and the numbers of the rounds (logged per round, totalled at the end).
Mixed into the callback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.utils import logging

from .distributed import barrier, run_on_main_and_broadcast
from .overlap import resume as resume_in_flight
from .rounds import RoundRunner
from .run_state import STATE_FILE, move_aside, new_run_id, saved_runner_state

logger = logging.get_logger(__name__)


class CallbackRunState:
    """Starts, restores, saves and sums up the :class:`~hf_activekd.rounds.RoundRunner` of an
    :class:`~hf_activekd.ActiveKDCallback` (its ``runner``)."""

    @staticmethod
    def _log_payload(record: dict[str, Any]) -> dict[str, float]:
        payload = {
            "activekd/round": record["round"],
            "activekd/macro_f1": record["macro_f1"],
            "activekd/accuracy": record["accuracy"],
            "activekd/requested": record["requested"],
            "activekd/accepted": record["accepted"],
            "activekd/dropped": sum(record["dropped"].values()),
            "activekd/failed_requests": record["failed_requests"],
            "activekd/tokens_in": record["tokens_in"],
            "activekd/tokens_out": record["tokens_out"],
            "activekd/pool_rows": record["pool_rows"],
            "activekd/wall_time_s": record["wall_time_s"],
        }
        if record.get("cost"):
            payload["activekd/cost"] = record["cost"]
        if "annotated" in record:
            payload["activekd/annotated"] = record["annotated"]
        if record.get("set_aside_rows"):
            payload["activekd/set_aside_rows"] = record["set_aside_rows"]
        return payload

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        # The state also travels in the checkpoint's trainer_state.json (ActiveKDRoundState); this copy is for people
        # and older versions. Written wherever the Trainer saves (each node with save_on_each_node).
        if self.runner is None or not args.should_save:
            return control
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            with open(checkpoint / STATE_FILE, "w", encoding="utf-8") as f:
                json.dump(self.runner.state_dict(), f, indent=2)
        return control

    def _new_runner(self, run_id: str | None) -> RoundRunner:
        return RoundRunner(
            self.teacher,
            self.config,
            self.label_names,
            self.output_dir,
            self.train_texts,
            self.progress,
            eval_texts=self._every_eval_text(),
            run_id=run_id,
            unlabeled=self.unlabeled or None,
            step_fn=lambda: self.trainer.state.global_step,  # when an overlapped round's rows arrive
        )

    def _start_fresh(self, args: TrainingArguments) -> None:
        """A new run: a new run id (the same on every process); an ``activekd/`` folder left by an earlier run in this
        ``output_dir`` is moved aside, never deleted, so that its rows and answers cannot leak into this run."""
        run_id = run_on_main_and_broadcast(new_run_id)
        if args.local_process_index == 0:  # each node's first process: nodes may not share a file system
            moved = move_aside(self.output_dir)
            if moved is not None:
                logger.warning(
                    "ActiveKD starts a new run, but %s holds an earlier run's rounds: moved it to %s (nothing is "
                    "deleted). To continue that run, pass resume_from_checkpoint to trainer.train().",
                    self.output_dir,
                    moved,
                )
        barrier()  # nobody reads the folder before it is clean
        self.runner = self._new_runner(run_id)

    def _restore(self, args: TrainingArguments, state: TrainerState) -> None:
        """Take the round state of the checkpoint being resumed, the main process's on every process (every rank must
        take the same round decisions, or one would skip a broadcast and training would hang)."""

        def read() -> tuple[dict[str, Any] | None, str, str]:
            saved, source = saved_runner_state(args, state)
            return saved, source, new_run_id()

        saved, source, run_id = run_on_main_and_broadcast(read)  # the same answer on every process
        if saved is None:
            logger.warning(
                "Resuming at step %d, but the checkpoint holds no ActiveKD state: rounds start afresh, as a new run.",
                state.global_step,
            )
            self._start_fresh(args)
            return
        self.runner = self._new_runner(run_id)
        self.runner.load_state_dict(saved, manage_files=args.local_process_index == 0)
        logger.info("ActiveKD restored %d round records from %s.", len(self.runner.rounds), source)
        barrier()
        resume_in_flight(self.runner)  # a round in flight at the checkpoint: its plan is sent again (see overlap.py)

    def summary(self) -> dict[str, Any]:
        """Totals over the run: rounds, rows, tokens, best round."""
        rounds = self.rounds
        return {
            "rounds": len(rounds),
            "generated_rounds": self.runner.generated_rounds
            if self.runner
            else 0,  # rounds with rows asked for and answered
            "accepted": sum(r["accepted"] for r in rounds),
            "requested": sum(r["requested"] for r in rounds),
            "tokens_in": sum(r["tokens_in"] for r in rounds),
            "tokens_out": sum(r["tokens_out"] for r in rounds),
            "best_round": self.runner.best_round if self.runner else None,
            "best_metric": self.runner.best_metric if self.runner else None,
            "stop_reason": self.runner.stop_reason if self.runner else None,
            "output_dir": os.fspath(self.output_dir),
        }
