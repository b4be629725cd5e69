"""Run by tests/test_overlap.py under `torchrun --nproc_per_node 2` (CPU, gloo), with ``overlap=True``.

Usage: ``ddp_overlap_train.py OUT MODE``. The main process's teacher answers a round only once training has gone 2
steps further (so the rows arrive between evaluations). MODE ``continue``: the second round raises in the background
and is recorded; ``raise`` (``teacher_on_failure="raise"``): the first round raises, and every rank must stop with the
error at the next evaluation, not hang. Each process writes what it saw to ``<out>/rank-<r>.json``.
"""

from __future__ import annotations

import sys
import time

# ddp_common: this folder, on sys.path when run as a file
from ddp_common import ddp_trainer, end_process_group, start, train, write_result

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher
from testing_utils import LABELS, MARKER, make_texts


class LaggingFlakyTeacher(PoolTeacher):
    """Answers once training is 2 steps further (at most 5 s); call number ``fail_call`` raises instead."""

    trainer = None
    calls = 0
    fail_call = 2

    def generate(self, requests, progress=True, on_answer=None):
        self.calls += 1
        asked, deadline = self.trainer.state.global_step, time.monotonic() + 5
        while self.trainer.state.global_step < asked + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.calls == self.fail_call:
            raise ConnectionError("teacher connection reset")
        return super().generate(requests, progress, on_answer)


def main(out: str, mode: str) -> None:
    out_dir, tokenizer = start(out)
    texts, labels = make_texts(40, seed=7)
    teacher = LaggingFlakyTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS)
    teacher.fail_call = 2 if mode == "continue" else 1
    trainer = ddp_trainer(tokenizer, out_dir)
    teacher.trainer = trainer
    config = ActiveKDConfig(
        samples_per_round=8,
        samples_per_request=4,
        rows_per_batch=2,
        patience=0,
        overlap=True,
        teacher_on_failure=mode,
    )
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True))
    write_result(out_dir, train(trainer, callback, tokenizer))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    end_process_group()
