"""Overlapped rounds (``ActiveKDConfig(overlap=True)``): the teacher answers in the background while training goes on.

At an evaluation the round is planned as in blocking mode (the report, the plan and the prompts all come from that
evaluation), then its requests are sent from a background thread on the main process and training continues at
once. When the answers are in, the worker checks the rows (quality gate, :class:`~hf_activekd.pool.RowFilter`,
verification) and writes the round's file atomically: every process's
:class:`~hf_activekd.ActiveKDDataCollator` (and every dataloader worker) polls the folder once per batch and picks the
rows up from disk, with no collective. Answers go to the answer log as they arrive, as in blocking mode.

Every decision that every process must share is taken at an evaluation, through one broadcast that every process
reaches (:func:`settle`): whether the round in flight has arrived, its record (``accepted``, tokens, ...,
``arrived_at_step``), its rows (written on processes that do not see the main process's files: several machines
without a shared file system get the rows at that evaluation, never in between), and a failure of the worker (raised
on every process, or recorded, as ``teacher_on_failure`` says). At most one round is in flight: when the next
evaluation comes first it waits for it (``overlap_policy="wait"``) or skips its own round (``"skip"``, recorded). At
the end of training a round still in flight is awaited or cancelled (``overlap_at_end``) and recorded either way.

Resume: the plan of the round in flight is kept in ``activekd/in-flight.json`` (on the main process's file system)
until the round settles; a run resumed from a checkpoint taken while the round was in flight sends that plan again,
and the answers logged before the crash are replayed from ``answers.jsonl`` instead of being bought again.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transformers.utils import logging

from .distributed import MainProcessError, run_on_main_and_broadcast
from .teachers.base import TeacherRequest, TeacherResponse
from .utils import atomic_write_text

if TYPE_CHECKING:
    from .rounds import RoundRunner

logger = logging.get_logger(__name__)

PLAN_FILE = "in-flight.json"
SKIPPED_IN_FLIGHT = "round {} is still in flight (overlap_policy='skip')"


class RoundCancelled(Exception):
    """Raised inside the worker once its round was cancelled (``overlap_at_end="cancel"``): nothing more is kept."""


class InFlightRound:
    """One round being answered by a background thread on the main process.

    ``fetch(job)`` does the work (sending, checking, writing the round file) and returns the round's result
    (``{"rows", "stats", "error"}``); it records the answers that arrived in :attr:`arrived` and makes its writes
    through :meth:`commit`, so that a cancellation and the round file can never both happen.
    """

    def __init__(self, round_index: int, requests: list[TeacherRequest], step_fn: Callable[[], int] | None):
        self.round_index = round_index
        self.requests = requests
        self.step_fn = step_fn
        self.lock = threading.Lock()
        self.arrived: dict[str, TeacherResponse] = {}
        self.cancelled = False
        self.committed = False
        self.done = threading.Event()
        self.result: dict[str, Any] | None = None
        self.exception: BaseException | None = None
        self.arrived_at_step: int | None = None
        self.thread: threading.Thread | None = None

    def start(self, fetch: Callable[[InFlightRound], dict[str, Any]]) -> InFlightRound:
        def main() -> None:
            try:
                self.result = fetch(self)
                self.arrived_at_step = int(self.step_fn()) if self.step_fn is not None else None
            except BaseException as exc:  # noqa: BLE001 - surfaced on the main thread at the next evaluation
                self.exception = exc
                if not isinstance(exc, RoundCancelled):
                    logger.error(
                        "ActiveKD round %d failed in the background: %s\n%s",
                        self.round_index,
                        exc,
                        traceback.format_exc(),
                    )
            finally:
                self.done.set()

        self.thread = threading.Thread(target=main, name=f"activekd-round-{self.round_index}", daemon=True)
        self.thread.start()
        return self

    def answered(self, response: TeacherResponse) -> None:
        """Note an arrived answer (called by the worker as each answer arrives); stop once cancelled."""
        with self.lock:
            self.arrived[response.key] = response
            if self.cancelled:
                raise RoundCancelled(f"round {self.round_index} was cancelled")

    def commit(self, write: Callable[[], None]) -> None:
        """Run ``write`` (the round file) unless the round was cancelled first."""
        with self.lock:
            if self.cancelled:
                raise RoundCancelled(f"round {self.round_index} was cancelled")
            write()
            self.committed = True

    def cancel(self) -> bool:
        """Cancel the round; returns False when it was already committed (its rows are on disk: await it instead)."""
        with self.lock:
            if self.committed:
                return False
            self.cancelled = True
            return True


def in_flight_record(runner: RoundRunner) -> dict[str, Any] | None:
    """The record of the round in flight (the same on every process), or None."""
    return next((r for r in reversed(runner.rounds) if r.get("in_flight")), None)


def submit(runner: RoundRunner, record: dict[str, Any], requests_fn: Callable[[], list[TeacherRequest]]) -> None:
    """Start a round in the background (call on every process): the main process plans it with ``requests_fn``
    (from this evaluation's state), writes the plan, starts the worker, and every process records it as in flight."""
    round_index = record["round"]

    def start() -> dict[str, Any]:
        begin = time.perf_counter()
        requests = requests_fn()
        _start(runner, round_index, requests, begin)
        return {"requests": len(requests), "requested": sum(r.num_samples for r in requests)}

    try:
        planned = run_on_main_and_broadcast(start)
    except Exception as exc:  # noqa: BLE001 - as a failing teacher in blocking mode
        if runner.config.teacher_on_failure == "raise":
            raise
        record.update({"generated": True, "error": f"{type(exc).__name__}: {exc}"})
        record["requested_at_step"] = record["arrived_at_step"] = record["global_step"]
        return
    record.update(planned)
    record.update({"generated": True, "in_flight": True, "requested_at_step": record["global_step"]})


def _start(runner: RoundRunner, round_index: int, requests: list[TeacherRequest], begin: float) -> None:
    plan = {"run_id": runner.run_id, "round": round_index, "requests": [dataclasses.asdict(r) for r in requests]}
    atomic_write_text(runner.output_dir / PLAN_FILE, json.dumps(plan, ensure_ascii=False))
    job = InFlightRound(round_index, requests, runner.step_fn)
    runner.in_flight = job.start(lambda j: runner.fetch(requests, round_index, begin, job=j))


def _drop_plan(runner: RoundRunner) -> None:
    try:
        (runner.output_dir / PLAN_FILE).unlink()
    except FileNotFoundError:
        pass


def _outcome(runner: RoundRunner, wait: bool, cancel: bool = False) -> dict[str, Any]:
    """On the main process: where the round in flight stands (waiting for it with ``wait``, cancelling it with
    ``cancel``). Raises the worker's exception once it has ended with one."""
    job = runner.in_flight
    if job is None:
        return {"state": "none"}
    waited = 0.0
    if cancel and job.cancel():
        runner.in_flight = None
        _drop_plan(runner)
        with job.lock:
            answers = list(job.arrived.values())
        return {"state": "cancelled", "answers": [a.to_dict() for a in answers]}
    if (wait or cancel) and not job.done.is_set():
        logger.info("ActiveKD: waiting for round %d's teacher answers.", job.round_index)
        begin = time.perf_counter()
        job.done.wait()
        waited = time.perf_counter() - begin
    if not job.done.is_set():
        return {"state": "pending"}
    runner.in_flight = None
    _drop_plan(runner)
    if job.exception is not None:
        raise job.exception
    return {"state": "done", **job.result, "arrived_at_step": job.arrived_at_step, "waited_s": round(waited, 4)}


def settle(runner: RoundRunner, global_step: int, wait: bool, cancel: bool = False) -> dict[str, Any] | None:
    """Bring every process up to date with the round in flight (a collective: call it on every process).

    Returns the record of a round still in flight (None when none is), after recording an arrived, failed or
    cancelled one. Raises a worker's failure on every process when ``teacher_on_failure="raise"``.
    """
    record = in_flight_record(runner)
    try:
        outcome = run_on_main_and_broadcast(lambda: _outcome(runner, wait, cancel))
    except Exception as exc:  # noqa: BLE001 - the worker failed: every process learns it here
        if runner.config.teacher_on_failure == "raise" or record is None:
            raise
        logger.error("ActiveKD round %d failed in the background: %s", record["round"], exc)
        record.pop("in_flight", None)
        error = str(exc) if isinstance(exc, MainProcessError) else f"{type(exc).__name__}: {exc}"
        record.update({"error": error, "arrived_at_step": int(global_step)})
        _write(runner)
        return None
    state = outcome["state"]
    if state == "pending" or record is None:
        return record if state == "pending" else None
    record.pop("in_flight", None)
    if state == "cancelled":
        _record_cancelled(record, outcome["answers"], global_step)
    elif state == "done":
        record.update(outcome["stats"])
        arrived = outcome["arrived_at_step"]
        record["arrived_at_step"] = arrived if arrived is not None else int(global_step)
        record["waited_s"] = outcome["waited_s"]
        if outcome.get("error"):
            record["error"] = outcome["error"]
        runner.take_rows(record["round"], outcome["rows"])
    _write(runner)
    return None


def _write(runner: RoundRunner) -> None:
    if runner.is_main:
        runner.write_rounds()


def _record_cancelled(record: dict[str, Any], answers: list[dict[str, Any]], global_step: int) -> None:
    paid = [a for a in answers if not a.get("cached")]
    record.update(
        {
            "cancelled": (
                f"cancelled at the end of training, step {global_step} (overlap_at_end='cancel'): "
                f"{len(answers)} of {record.get('requests', 0)} answers had arrived; no row was kept"
            ),
            "arrived_at_step": None,
            "accepted": 0,
            "tokens_in": sum(int(a.get("prompt_tokens") or 0) for a in paid),
            "tokens_out": sum(int(a.get("completion_tokens") or 0) for a in paid),
            "cost": sum(float(a.get("cost") or 0.0) for a in paid),
            "failed_requests": sum(1 for a in answers if a.get("error") is not None),
        }
    )


def finish(runner: RoundRunner, global_step: int) -> dict[str, Any] | None:
    """End of training (every process): await or cancel the round in flight, as ``overlap_at_end`` says. Returns its
    record, or None when no round was in flight."""
    record = in_flight_record(runner)
    if record is None and runner.in_flight is None:
        return None
    settle(runner, global_step, wait=True, cancel=runner.config.overlap_at_end == "cancel")
    return record


def resume(runner: RoundRunner) -> None:
    """After a restore (every process): send again the plan of the round that was in flight at the checkpoint; its
    answers already in the answer log are replayed, not bought again. When its plan is gone (``in-flight.json`` holds
    a later round, or the checkpoint was copied elsewhere), the round is made of the answers logged for it alone. In
    blocking mode the round is finished now."""
    record = in_flight_record(runner)
    if record is None:
        return
    round_index = record["round"]

    def restart() -> bool:
        try:
            plan = json.loads((runner.output_dir / PLAN_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            plan = {}
        found = plan.get("run_id") == runner.run_id and plan.get("round") == round_index
        requests = [TeacherRequest(**r) for r in plan["requests"]] if found else []
        logger.warning(
            "ActiveKD: round %d was in flight at the checkpoint: %s",
            round_index,
            "its requests are sent again (answers already logged are replayed)"
            if found
            else f"its plan ({PLAN_FILE}) is gone, so it is made of the answers logged for it",
        )
        _start(runner, round_index, requests, time.perf_counter())
        return found

    if not run_on_main_and_broadcast(restart):
        record["resumed_without_plan"] = True
    if not runner.config.overlap:  # resumed in blocking mode: finish it now
        settle(runner, record["global_step"], wait=True)
