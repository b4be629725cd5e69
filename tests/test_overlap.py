"""Overlapped rounds (``overlap=True``): the teacher answers in a background thread while training goes on."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from transformers import TrainerCallback

from hf_activekd import ActiveKDConfig, GeneratedSample, PoolTeacher, Teacher, TeacherResponse
from hf_activekd.server import ScriptedBackend, TeacherServer
from testing_utils import LABELS, MARKER, ForwardRecorder, attach_callback, make_texts
from torchrun_utils import torchrun, untimed

SCRIPTS = Path(__file__).parent / "scripts"


class LaggingTeacher(PoolTeacher):
    """A pool teacher that answers a round only once training has gone ``lag_steps`` steps past the step at which the
    round was asked for (or after ``timeout_s``, whichever comes first): with a blocking round, training cannot move,
    so it answers at the timeout. ``fail_round``: that round raises instead, as a crashed client would. ``release``:
    an event that also lets it answer (``release_delay_s`` later), e.g. set when training ends."""

    def __init__(
        self,
        trainer=None,
        lag_steps: int = 3,
        timeout_s: float = 60.0,
        fail_round=None,
        release: threading.Event | None = None,
        release_delay_s: float = 0.0,
        **kwargs,
    ):
        texts, labels = make_texts(60, seed=7)
        super().__init__([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS, seed=0, **kwargs)
        self.trainer = trainer
        self.lag_steps = lag_steps
        self.timeout_s = timeout_s
        self.fail_round = fail_round
        self.release = release or threading.Event()
        self.release_delay_s = release_delay_s
        self.calls: list[dict] = []  # per generate call: the step asked at, the step answered at, the thread

    def generate(self, requests, progress=True, on_answer=None):
        asked = self.trainer.state.global_step
        deadline = time.monotonic() + self.timeout_s
        while self.trainer.state.global_step < asked + self.lag_steps and time.monotonic() < deadline:
            if self.release.is_set():
                time.sleep(self.release_delay_s)
                break
            time.sleep(0.005)
        round_index = int(requests[0].key.split("/")[0][1:])
        self.calls.append(
            {
                "round": round_index,
                "asked": asked,
                "answered": self.trainer.state.global_step,
                "thread": threading.current_thread().name,
            }
        )
        if round_index == self.fail_round:
            raise ConnectionError("teacher connection reset")
        return super().generate(requests, progress, on_answer)


class ReleaseAtEnd(TrainerCallback):
    """Sets ``event`` when training ends, or at the first evaluation at or after ``step`` (added before
    ActiveKDCallback, so it runs first: the teacher answers while ActiveKDCallback waits for it, whatever the load)."""

    def __init__(self, event: threading.Event, step: int | None = None):
        self.event = event
        self.step = step

    def on_evaluate(self, args, state, control, **kwargs):
        if self.step is not None and state.global_step >= self.step:
            self.event.set()

    def on_train_end(self, args, state, control, **kwargs):
        self.event.set()


class AwaitInFlightAt(TrainerCallback):
    """At the evaluation at ``step`` (added before ActiveKDCallback, so it runs first), waits until the round in
    flight has answered: with ``overlap_policy="skip"``, whether that round counts as arrived at this evaluation then
    no longer depends on how fast the machine runs the background thread."""

    def __init__(self, step: int):
        self.step = step
        self.callback = None  # set once ActiveKDCallback exists

    def on_evaluate(self, args, state, control, **kwargs):
        runner = self.callback.runner if self.callback is not None else None
        job = runner.in_flight if runner is not None else None
        if state.global_step == self.step and job is not None:
            assert job.done.wait(timeout=60), f"round {job.round_index} did not answer by step {self.step}"


def _train(
    make_trainer,
    preprocess,
    teacher_kwargs=None,
    trainer_kwargs=None,
    release_at_end=False,
    release_at=None,
    await_at=None,
    **config,
):
    trainer = make_trainer(**(trainer_kwargs or {}))
    teacher = LaggingTeacher(trainer, **(teacher_kwargs or {}))
    if release_at_end or release_at is not None:
        trainer.add_callback(ReleaseAtEnd(teacher.release, release_at))
    waiter = AwaitInFlightAt(await_at) if await_at is not None else None
    if waiter is not None:
        trainer.add_callback(waiter)
    config.setdefault("overlap", True)
    callback = attach_callback(trainer, teacher, preprocess, **config)
    if waiter is not None:
        waiter.callback = callback
    return trainer, teacher, callback


@pytest.mark.parametrize("workers", [0, 2])
def test_overlapped_rows_reach_training_while_it_goes_on_and_never_evaluation(
    make_trainer, preprocess, tokenizer, workers
):
    trainer, teacher, callback = _train(
        make_trainer,
        preprocess,
        teacher_kwargs={"lag_steps": 2},
        trainer_kwargs={"dataloader_num_workers": workers, "eval_steps": 10, "max_steps": 30},
        rows_per_batch=4,
    )
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    steps_with_rows = []
    model = trainer.model
    model.register_forward_pre_hook(
        lambda m, a, kw: (
            steps_with_rows.append(trainer.state.global_step + 1)
            if m.training and (kw["input_ids"] == recorder.marker_id).any()
            else None
        ),
        with_kwargs=True,
    )
    trainer.train()
    rounds = callback.rounds
    assert [r["round"] for r in rounds] == [0, 1, 2]
    generated = [r for r in rounds if r["generated"]]
    assert len(generated) == 2 and rounds[2]["skipped"].startswith("last step")
    for record in generated:
        # training went on while the teacher wrote: the rows arrived steps after they were asked for
        assert record["requested_at_step"] == record["global_step"]
        assert record["arrived_at_step"] >= record["requested_at_step"] + 2
        assert record["accepted"] == 8 and "in_flight" not in record
    assert all(c["thread"].startswith("activekd-round-") for c in teacher.calls)  # not on the training thread
    # round 0 (asked at step 10) reached training batches before the next evaluation (step 20), without a collective
    assert any(rounds[0]["arrived_at_step"] < step <= 20 for step in steps_with_rows)
    assert recorder.train_marker_rows > 0 and recorder.eval_marker_rows == 0
    saved = json.loads((Path(trainer.args.output_dir) / "activekd" / "rounds.json").read_text())
    assert [r["arrived_at_step"] for r in saved] == [r["arrived_at_step"] for r in rounds]
    assert not (Path(trainer.args.output_dir) / "activekd" / "in-flight.json").exists()


def test_blocking_records_both_steps_as_the_evaluation_step(make_trainer, preprocess, pool_teacher):
    trainer = make_trainer()
    callback = attach_callback(trainer, pool_teacher, preprocess)
    trainer.train()
    for record in callback.rounds:
        if record["generated"]:
            assert record["requested_at_step"] == record["arrived_at_step"] == record["global_step"]
        else:
            assert record["requested_at_step"] is None and record["arrived_at_step"] is None


def test_wait_policy_waits_for_the_round_in_flight(make_trainer, preprocess):
    # the teacher needs 7 steps: the next evaluation (5 steps later) comes first and waits for it (the teacher answers
    # 1 s after that evaluation began)
    trainer, teacher, callback = _train(
        make_trainer,
        preprocess,
        teacher_kwargs={"lag_steps": 7, "timeout_s": 60.0, "release_delay_s": 1.0},
        release_at=10,
        overlap_policy="wait",
        max_rounds=2,
    )
    trainer.train()
    rounds = callback.rounds
    assert rounds[0]["arrived_at_step"] == 10 and rounds[0]["waited_s"] > 0.5  # settled by the evaluation at 10
    assert rounds[1]["generated"] and "skipped" not in rounds[1]  # which then ran its own round
    assert 10 <= rounds[1]["arrived_at_step"] <= 15 and rounds[1]["accepted"] == 8
    assert rounds[2]["skipped"] == "max_rounds=2 reached"  # overlapped rounds count as blocking ones do
    assert [c["asked"] for c in teacher.calls] == [5, 10]


def test_skip_policy_skips_the_evaluations_round_and_records_it(make_trainer, preprocess):
    # round 0 (asked at 5) answers at step 12: the evaluation at 10 skips its round, the one at 15 (which waits until
    # round 0 has answered, whatever the machine's load) asks for round 2
    trainer, teacher, callback = _train(
        make_trainer, preprocess, teacher_kwargs={"lag_steps": 7}, await_at=15, overlap_policy="skip"
    )
    trainer.train()
    rounds = callback.rounds
    assert rounds[0]["arrived_at_step"] >= 12 and rounds[0]["accepted"] == 8  # training went on past evaluation 10
    assert rounds[1]["skipped"] == "round 0 is still in flight (overlap_policy='skip')"
    assert not rounds[1]["generated"]
    assert rounds[2]["generated"] and rounds[2]["requested_at_step"] == 15
    assert [c["asked"] for c in teacher.calls] == [5, 15]


def test_round_in_flight_at_the_end_is_awaited_and_recorded(make_trainer, preprocess):
    # evaluations at steps 5, 10 and 12 (the last step: no round), training ends at 12: round 0 (asked at 5) answers at
    # step 10 and is awaited there; round 1 (asked at 10) cannot get 5 more steps, so it answers only when training
    # ends; "skip" leaves it in flight at the last evaluation
    trainer, _, callback = _train(
        make_trainer,
        preprocess,
        teacher_kwargs={"lag_steps": 5, "timeout_s": 60.0},
        trainer_kwargs={"max_steps": 12},
        release_at_end=True,
        await_at=10,
        overlap_policy="skip",
    )
    trainer.train()
    assert callback.rounds[-1]["skipped"].startswith("last step")
    last = callback.rounds[1]
    assert last["accepted"] == 8 and "in_flight" not in last
    assert last["requested_at_step"] == 10 and last["arrived_at_step"] == 12
    folder = Path(trainer.args.output_dir) / "activekd"
    assert (folder / "round-0001.jsonl").exists()
    assert json.loads((folder / "rounds.json").read_text())[1]["arrived_at_step"] == 12
    card = (Path(trainer.args.output_dir) / "README.md").read_text()
    assert re.search(r"\| 1( ★)? \| 10 \| 12 \|", card)  # the card shows when the round's rows arrived


def test_round_in_flight_at_the_end_is_cancelled_when_asked(make_trainer, preprocess):
    trainer, _, callback = _train(
        make_trainer,
        preprocess,
        teacher_kwargs={"lag_steps": 5, "timeout_s": 60.0, "release_delay_s": 0.5},
        trainer_kwargs={"max_steps": 12},
        release_at_end=True,
        await_at=10,
        overlap_policy="skip",
        overlap_at_end="cancel",
    )
    trainer.train()
    last = callback.rounds[1]
    assert last["accepted"] == 0 and last["arrived_at_step"] is None and "in_flight" not in last
    assert last["cancelled"].startswith("cancelled at the end of training, step 12")
    for thread in threading.enumerate():  # the worker ends at its next answer and keeps nothing
        if thread.name == "activekd-round-1":
            thread.join(timeout=10)
    folder = Path(trainer.args.output_dir) / "activekd"
    assert not (folder / "round-0001.jsonl").exists()
    assert json.loads((folder / "rounds.json").read_text())[1]["cancelled"] == last["cancelled"]


def test_teacher_failure_mid_round_is_recorded_and_training_goes_on(make_trainer, preprocess):
    trainer, teacher, callback = _train(make_trainer, preprocess, teacher_kwargs={"fail_round": 0})
    trainer.train()
    rounds = callback.rounds
    assert "ConnectionError: teacher connection reset" in rounds[0]["error"] and rounds[0]["accepted"] == 0
    assert rounds[1]["accepted"] == 8 and trainer.state.global_step == 20


def test_teacher_failure_mid_round_raises_at_the_next_evaluation(make_trainer, preprocess):
    trainer, teacher, callback = _train(
        make_trainer, preprocess, teacher_kwargs={"fail_round": 0}, teacher_on_failure="raise"
    )
    with pytest.raises(ConnectionError, match="teacher connection reset"):
        trainer.train()
    assert trainer.state.global_step == 10  # surfaced at the next evaluation, on the training thread


def test_overlap_config_is_validated():
    with pytest.raises(ValueError, match="overlap_policy"):
        ActiveKDConfig(overlap=True, overlap_policy="queue")
    with pytest.raises(ValueError, match="overlap_at_end"):
        ActiveKDConfig(overlap=True, overlap_at_end="drop")


def test_two_processes_agree_on_overlapped_rounds_and_a_failure(tmp_path):
    proc = torchrun("ddp_overlap_train.py", str(tmp_path), "continue")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert all(r["global_step"] == 12 for r in results)
    assert untimed(results[0]["rounds"]) == untimed(results[1]["rounds"])
    rounds = results[0]["rounds"]
    assert rounds[0]["accepted"] == 8 and rounds[0]["arrived_at_step"] > rounds[0]["requested_at_step"]
    assert "teacher connection reset" in rounds[1]["error"] and rounds[1]["accepted"] == 0
    assert rounds[2]["skipped"].startswith("last step")
    assert all(r["train_marker_rows"] > 0 for r in results) and all(r["eval_marker_rows"] == 0 for r in results)


def test_two_processes_stop_together_when_a_background_round_raises(tmp_path):
    start = time.monotonic()
    proc = torchrun("ddp_overlap_train.py", str(tmp_path), "raise", timeout=240)
    assert proc.returncode != 0
    assert time.monotonic() - start < 200  # no rank waited for ddp_timeout
    assert proc.stderr.count("teacher connection reset") >= 2  # every rank learned of it at the next evaluation
    assert not (tmp_path / "rank-0.json").exists() and not (tmp_path / "rank-1.json").exists()


def test_resume_with_a_round_in_flight_replays_what_arrived(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true")
    with TeacherServer(ScriptedBackend(latency_s=0.5)) as server:  # one request at a time: a round takes 2 s
        cmd = [sys.executable, str(SCRIPTS / "crash_train.py"), str(tmp_path), server.url]
        proc = subprocess.Popen(
            cmd + ["overlap"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        checkpoint = tmp_path / "run" / "checkpoint-5" / "trainer_state.json"
        try:
            # round 0 (step 5) goes out in the background; checkpoint-5 is saved with it in flight; kill once its
            # 2nd request reached the server (one answer arrived, one in flight), while the evaluation at 10 waits
            deadline = time.time() + 120
            while (server.stats["generations"] < 2 or not checkpoint.exists()) and proc.poll() is None:
                assert time.time() < deadline
                time.sleep(0.01)
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        sent_before = server.stats["generations"]
        state = json.loads(checkpoint.read_text())["stateful_callbacks"]["ActiveKDRoundState"]
        assert state["attributes"]["runner_state"]["rounds"][0]["in_flight"]

        resumed = subprocess.run(cmd + ["resume", "overlap"], env=env, capture_output=True, text=True, timeout=180)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        rounds = json.loads((tmp_path / "result.json").read_text())["rounds"]
        sent = server.stats["generations"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3] and all(r["accepted"] == 8 for r in rounds[:3])
    assert rounds[0]["replayed"] >= 1 and rounds[0]["requested_at_step"] == 5  # answers that arrived are not rebought
    assert sent - sent_before == sum(r["requests"] for r in rounds) - rounds[0]["replayed"]
    assert not any(r.get("in_flight") for r in rounds)


class StallingTeacher(Teacher):
    """Answers its first request, then stalls until ``release`` is set (a process killed mid-round never returns)."""

    name = "stalling"

    def __init__(self):
        self.release = threading.Event()
        self.sent: list[str] = []

    def generate(self, requests, progress=True, on_answer=None):
        out = []
        for n, request in enumerate(requests):
            if n == 1:
                self.release.wait(30)
                raise ConnectionError("the process died")
            self.sent.append(request.key)
            text = f"{MARKER} a fresh {request.label} example about {request.key}"
            out.append(TeacherResponse(key=request.key, samples=[GeneratedSample(text, request.label)], attempts=1))
            on_answer(out[-1])
        return out


def test_resume_without_the_plan_replays_the_answers_logged_for_the_round(tmp_path):
    # a round in flight at a checkpoint that was copied elsewhere (no in-flight.json): its logged answers are used
    from hf_activekd import RoundRunner, build_report

    labels = np.repeat(np.arange(4), 3)
    report = build_report(
        np.eye(4)[labels] + np.eye(4)[(labels + 1) % 4] * 2.0 * (np.arange(12) % 2)[:, None], labels, LABELS
    )
    config = ActiveKDConfig(samples_per_round=4, samples_per_request=1, allocation="uniform", overlap=True)
    teacher = StallingTeacher()
    runner = RoundRunner(teacher, config, LABELS, tmp_path / "a", progress=False)
    record = runner.run(report, global_step=5)
    assert record["in_flight"] and record["requests"] == 4
    deadline = time.monotonic() + 30
    while not (tmp_path / "a" / "answers.jsonl").exists():  # the first answer is on disk
        assert time.monotonic() < deadline
        time.sleep(0.01)
    saved = runner.state_dict()  # a checkpoint taken now
    (tmp_path / "a").rename(tmp_path / "b")  # ... copied elsewhere, without the plan
    (tmp_path / "b" / "in-flight.json").unlink()
    teacher.release.set()

    fresh = StallingTeacher()
    resumed = RoundRunner(fresh, config, LABELS, tmp_path / "b", progress=False)
    resumed.load_state_dict(saved)
    from hf_activekd.overlap import resume

    resume(resumed)
    settled = resumed.finish(global_step=5)
    assert settled["round"] == 0 and "in_flight" not in settled and settled["resumed_without_plan"]
    assert settled["replayed"] == 1 and settled["accepted"] == 1 and fresh.sent == []  # nothing bought again
    assert [r["request"] for r in resumed.pool.rows()] == teacher.sent


def test_overlap_refuses_annotation():
    with pytest.raises(ValueError, match="overlap=True works with source='generate' only"):
        ActiveKDConfig(overlap=True, source="annotate")
