"""Who gets how many samples, and what the requests look like."""

from __future__ import annotations

import numpy as np
import pytest

from hf_activekd import ActiveKDConfig, allocate, build_report, plan_requests

NAMES = ["a", "b", "c", "d"]


def _report(f1_targets: dict[int, float] | None = None, n: int = 40, seed: int = 0):
    """A report from synthetic logits where class 3 is often predicted as class 2."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n // 4)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), labels] += 4.0
    wrong = np.flatnonzero(labels == 3)[:6]
    logits[wrong, 2] += 10.0  # class d confused with c, confidently
    wrong_b = np.flatnonzero(labels == 1)[:2]
    logits[wrong_b, 0] += 10.0
    return build_report(logits, labels, NAMES)


def test_report_per_class_and_confusions():
    report = _report()
    assert report.confusion[3, 2] == 6 and report.confusion[1, 0] == 2
    assert report.confusions()[0] == (3, 2, 6)
    assert report.f1[3] < report.f1[0]
    hard = report.hard_negatives(3, true=3, predicted=2)
    assert len(hard) == 3 and all(report.labels[i] == 3 and report.predictions[i] == 2 for i in hard)
    assert 0 < report.macro_f1 < 1 and 0 < report.accuracy < 1


def test_guided_gives_more_to_lower_f1_classes():
    report = _report()
    counts = allocate(report, ActiveKDConfig(samples_per_round=64, allocation="guided"))
    assert counts.sum() == 64
    order = np.argsort(report.f1)
    assert counts[order[0]] == counts.max()  # weakest class gets the most
    assert counts[3] > counts[0]
    # monotone: a lower F1 never gets fewer samples
    for i in range(4):
        for j in range(4):
            if report.f1[i] < report.f1[j] - 1e-9:
                assert counts[i] >= counts[j]


def test_uniform_splits_evenly():
    report = _report()
    counts = allocate(report, ActiveKDConfig(samples_per_round=64, allocation="uniform"))
    assert counts.tolist() == [16, 16, 16, 16]
    counts = allocate(report, ActiveKDConfig(samples_per_round=10, allocation="uniform"))
    assert counts.sum() == 10 and counts.max() - counts.min() <= 1


@pytest.mark.parametrize("floor", [0.25, 0.5, 1.0])
def test_floor_holds(floor):
    report = _report()
    config = ActiveKDConfig(samples_per_round=80, allocation="guided", allocation_floor=floor, allocation_power=4.0)
    counts = allocate(report, config)
    assert counts.sum() == 80
    assert counts.min() >= int(floor * 80 / 4)
    if floor == 1.0:
        assert counts.tolist() == [20, 20, 20, 20]


def test_perfect_student_falls_back_to_uniform():
    labels = np.arange(4).repeat(5)
    logits = np.eye(4)[labels] * 10
    counts = allocate(build_report(logits, labels, NAMES), ActiveKDConfig(samples_per_round=8))
    assert counts.tolist() == [2, 2, 2, 2]


def test_requests_are_targeted_and_small():
    report = _report()
    texts = [f"text number {i}" for i in range(len(report.labels))]
    config = ActiveKDConfig(samples_per_round=32, samples_per_request=4, num_hard_negatives=2)
    requests = plan_requests(report, config, round_index=3, texts=texts)
    assert sum(r.num_samples for r in requests) == 32
    assert all(r.num_samples <= 4 for r in requests)
    assert len({r.key for r in requests}) == len(requests) and all(r.key.startswith("r0003/") for r in requests)
    assert len({r.seed for r in requests}) == len(requests)  # distinct seeds: caching never collapses diversity
    d_requests = [r for r in requests if r.label == "d"]
    first = d_requests[0]
    assert first.confused_with == "c" and "confused with 'c'" in first.reason
    prompt = first.messages[-1]["content"]
    assert "Hard negatives" in prompt and "predicted: c" in prompt and "macro-F1" in prompt
    assert first.json_schema["properties"]["examples"]["items"]["properties"]["label"]["enum"] == ["d"]
    assert all(r.confused_with is None for r in d_requests[1:])
    # deterministic
    again = plan_requests(report, config, round_index=3, texts=texts)
    assert [(r.key, r.seed, r.messages) for r in again] == [(r.key, r.seed, r.messages) for r in requests]


def test_full_report_in_prompt():
    report = _report()
    config = ActiveKDConfig(samples_per_round=4, report_classes="full")
    requests = plan_requests(report, config, round_index=0)
    content = requests[0].messages[-1]["content"]
    assert all(f"\n{name} |" in content for name in NAMES)
