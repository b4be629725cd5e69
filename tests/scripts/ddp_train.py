"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2` (CPU, gloo).

Each process trains the tiny student with the callback and a pool teacher that raises in its second round (it only
runs on the main process: the failure must reach every rank as an error marker, not as a hang). Each process writes
what it saw to ``<out>/rank-<r>.json``.
"""

from __future__ import annotations

import sys

# ddp_common: this folder, on sys.path when run as a file
from ddp_common import ddp_trainer, end_process_group, start, train, write_result

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher
from testing_utils import LABELS, MARKER, make_texts


class FlakyPoolTeacher(PoolTeacher):
    """Fails its second round with an exception (as a crashed client would)."""

    calls = 0

    def generate(self, requests, progress=True):
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("teacher connection reset")
        return super().generate(requests, progress)


def main(out: str) -> None:
    out_dir, tokenizer = start(out)
    texts, labels = make_texts(40, seed=7)
    teacher = FlakyPoolTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS)
    trainer = ddp_trainer(tokenizer, out_dir)
    config = ActiveKDConfig(samples_per_round=8, samples_per_request=4, rows_per_batch=2, patience=0)
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True))
    result = train(trainer, callback, tokenizer)
    write_result(out_dir, {**result, "teacher_calls": teacher.calls})


if __name__ == "__main__":
    main(sys.argv[1])
    end_process_group()
