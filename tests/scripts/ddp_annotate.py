"""Run by tests/test_annotation.py under `torchrun --nproc_per_node 2` (CPU, gloo).

Each process trains the tiny student with ``source="annotate"``: every rank scores its shard of the unlabeled texts,
the scores are gathered, the main process picks and has them labelled, and every rank trains on its share of the
labelled rows. With ``hard`` as second argument, the teacher writes instead (``candidate_factor=2``): every rank
scores its shard of the round's candidates, and every rank keeps the same hardest half. Each process writes what it
saw to ``<out>/rank-<r>.json``.
"""

from __future__ import annotations

import sys

# ddp_common: this folder, on sys.path when run as a file
from ddp_common import ddp_trainer, end_process_group, start, train, write_result

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher
from hf_activekd.scoring import StudentScorer
from testing_utils import LABELS, MARKER, make_texts

SCORED: list[int] = []
_score = StudentScorer.__call__


def _counting_score(self, texts):
    SCORED.append(len(texts))
    return _score(self, texts)


StudentScorer.__call__ = _counting_score


class CountingPoolTeacher(PoolTeacher):
    label_calls = 0

    def label(self, queries, progress=False):
        self.label_calls += 1
        return super().label(queries, progress)


def main(out: str, mode: str = "annotate") -> None:
    out_dir, tokenizer = start(out)
    texts, labels = make_texts(10, seed=7)
    unlabeled = [f"{MARKER} {t}" for t in texts]  # 40 texts, labels hidden from the student
    teacher = CountingPoolTeacher(unlabeled, labels, label_names=LABELS)
    trainer = ddp_trainer(tokenizer, out_dir)
    if mode == "hard":
        config = ActiveKDConfig(
            samples_per_round=8, allocation="uniform", candidate_factor=2.0, rows_per_batch=2, patience=0
        )
    else:
        config = ActiveKDConfig(
            source="annotate", samples_per_round=8, rows_per_batch=2, patience=0, max_unlabeled_scored=25
        )
    callback = ActiveKDCallback(
        trainer, teacher, config, preprocess=lambda r: tokenizer(r["text"], truncation=True), unlabeled=unlabeled
    )
    result = train(trainer, callback, tokenizer)
    rows = callback.runner.pool.rows()
    write_result(out_dir, {**result, "rows": rows, "scored": SCORED, "label_calls": teacher.label_calls})


if __name__ == "__main__":
    main(*sys.argv[1:])
    end_process_group()
