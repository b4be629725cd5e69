"""Hardness-aware acceptance (candidate_factor > 1): the teacher writes more candidates than a class keeps, the student
keeps those it finds hardest; every candidate counts as cost."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_activekd import ActiveKDConfig, PoolTeacher, RoundRunner, build_report
from hf_activekd.hard_selection import EASY_FOR_STUDENT, choose_hard, keep_counts
from testing_utils import LABELS, MARKER, attach_callback, make_texts
from torchrun_utils import torchrun

NAMES = ["alpha", "beta", "gamma"]


def _report():
    labels = np.repeat(np.arange(3), 4)
    logits = np.eye(3)[labels] * 2.0
    logits[:3, 1] += 5.0  # alpha is weak
    return build_report(logits, labels, NAMES)


def _pool():
    """20 texts per class; the stand-in student's probability of the true class is spread from 0.05 to 0.95."""
    texts, labels, p_true = [], [], {}
    for c, name in enumerate(NAMES):
        for i in range(20):
            text = f"{name} example number {i} for the pool"
            texts.append(text)
            labels.append(c)
            p_true[text] = (c, 0.05 + 0.9 * i / 19)
    return texts, labels, p_true


class Scores:
    """The student's probabilities per text (the rest of the mass on the next class)."""

    def __init__(self, p_true):
        self.p_true = p_true
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), len(NAMES)))
        for row, text in zip(out, texts):
            c, p = self.p_true[text]
            row[c] = p
            row[(c + 1) % len(NAMES)] = 1.0 - p
        return out


def _runner(tmp_path, **config):
    texts, labels, p_true = _pool()
    teacher = PoolTeacher(texts, labels, label_names=NAMES, seed=0)
    config = ActiveKDConfig(label_names=NAMES, samples_per_round=24, allocation="uniform", **config)
    return RoundRunner(teacher, config, NAMES, tmp_path, progress=False), Scores(p_true), teacher


def test_keep_counts_and_choice_take_the_hardest_then_random_ones():
    assert keep_counts({"alpha": 8, "beta": 3, "gamma": 0}, 2.0) == {"alpha": 4, "beta": 2}
    rows = [{"label": "alpha", "text": str(i)} for i in range(8)] + [{"label": "beta", "text": "b"}]
    probs = np.zeros((9, 3))
    probs[:8, 0] = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4]
    probs[8, 1] = 0.99
    kept, p_true = choose_hard(rows, probs, NAMES, {"alpha": 4, "beta": 1}, hard_share=1.0, seed=0)
    assert kept == [1, 3, 5, 7, 8]  # the four lowest p(alpha); beta has no more rows than its quota
    assert p_true[1] == pytest.approx(0.1)
    kept, _ = choose_hard(rows, probs, NAMES, {"alpha": 4}, hard_share=0.5, seed=0)
    assert {1, 3} <= set(kept) and len(kept) == 5  # two hardest, two at random from the rest, beta kept
    again, _ = choose_hard(rows, probs, NAMES, {"alpha": 4}, hard_share=0.5, seed=0)
    assert again == kept  # the same choice on every process


def test_the_student_keeps_its_hardest_candidates_at_the_same_cost(tmp_path):
    runner, scores, _ = _runner(tmp_path / "hard", candidate_factor=2.0, hard_share=1.0)
    record = runner.run(_report(), score_fn=scores)
    assert record["requested"] == 24  # the cost: every candidate the teacher wrote
    assert record["candidates"] == 24 and record["accepted"] == 12
    assert record["dropped"][EASY_FOR_STUDENT] == 12
    assert record["student_p_true_kept"] < record["student_p_true_dropped"]
    saved = [json.loads(x) for x in (tmp_path / "hard" / "round-0000.jsonl").read_text().splitlines()]
    assert len(saved) == 12 and {r["label"] for r in saved} == set(NAMES)
    candidates = scores.calls[0]
    for name in NAMES:  # in each class, every kept candidate is at least as hard as every dropped one
        kept = {r["text"] for r in saved if r["label"] == name}
        dropped = [t for t in candidates if t.startswith(name) and t not in kept]
        assert max(scores.p_true[t][1] for t in kept) <= min(scores.p_true[t][1] for t in dropped)

    plain, _, _ = _runner(tmp_path / "plain")
    record = plain.run(_report())  # candidate_factor=1: every accepted candidate is kept, nothing is scored
    assert record["accepted"] == 24 and EASY_FOR_STUDENT not in record["dropped"] and "candidates" not in record


def test_hard_selection_needs_the_students_scores_and_blocking_rounds(tmp_path):
    runner, _, _ = _runner(tmp_path, candidate_factor=2.0)
    with pytest.raises(ValueError, match="score_fn"):
        runner.run(_report())
    with pytest.raises(ValueError, match="candidate_factor"):
        ActiveKDConfig(candidate_factor=2.0, overlap=True)
    with pytest.raises(ValueError, match="candidate_factor must be >= 1"):
        ActiveKDConfig(candidate_factor=0.5)


def test_a_student_that_cannot_score_keeps_every_candidate(tmp_path):
    runner, _, _ = _runner(tmp_path, candidate_factor=2.0)

    def broken(texts):
        raise RuntimeError("CUDA out of memory")

    record = runner.run(_report(), score_fn=broken)
    assert record["accepted"] == 24 and "CUDA out of memory" in record["selection_error"]
    assert len((tmp_path / "round-0000.jsonl").read_text().splitlines()) == 24  # paid rows are not lost


def test_callback_scores_candidates_with_the_training_student(make_trainer, preprocess):
    trainer = make_trainer()
    texts, labels = make_texts(60, seed=7)
    teacher = PoolTeacher([f"{MARKER} {t}" for t in texts], labels, label_names=LABELS, seed=0)
    callback = attach_callback(
        trainer, teacher, preprocess, samples_per_round=16, candidate_factor=2.0, allocation="uniform"
    )
    trainer.train()
    generated = [r for r in callback.rounds if r["generated"]]
    assert generated
    for record in generated:
        assert record["requested"] == 16 and record["candidates"] == 16 and record["accepted"] == 8
        assert record["student_p_true_kept"] <= record["student_p_true_dropped"]


def test_two_processes_score_candidate_shards_and_keep_the_same_rows(tmp_path):
    """torchrun, 2 processes: each rank scores half of a round's 8 candidates, and both keep the same 4."""
    proc = torchrun("ddp_annotate.py", str(tmp_path), "hard")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert results[0]["scored"] == results[1]["scored"] == [4, 4]  # two rounds, half of the 8 candidates each
    rounds = [
        [{k: v for k, v in r.items() if k not in ("eval_metrics", "wall_time_s")} for r in x["rounds"]]
        for x in results
    ]
    assert rounds[0] == rounds[1]
    assert [(r["requested"], r["accepted"], r["dropped"].get(EASY_FOR_STUDENT)) for r in rounds[0][:2]] == [
        (8, 4, 4)
    ] * 2
    assert results[0]["rows"] == results[1]["rows"] and len(results[0]["rows"]) == 8
    assert all(r["train_marker_rows"] > 0 for r in results)
