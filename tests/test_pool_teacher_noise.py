"""A noisy PoolTeacher: ``label_noise`` hands out real texts of other classes under the requested class, ``junk``
hands out junk texts; rates, determinism per seed, the name in records, and which of them the quality gate drops."""

from __future__ import annotations

from collections import Counter

import pytest

from hf_activekd import PoolTeacher, TeacherRequest
from hf_activekd.quality import QualityGate

CLASSES = [f"class_{i}" for i in range(10)]


def _pool(n_per_class: int = 400):
    texts = [f"real text number {j} of {name.replace('_', ' ')}" for name in CLASSES for j in range(n_per_class)]
    labels = [name for name in CLASSES for _ in range(n_per_class)]
    return texts, labels, dict(zip(texts, labels))


def _ask(teacher, n_requests: int = 100, per_request: int = 20):
    requests = [
        TeacherRequest(
            key=f"r0/{CLASSES[i % len(CLASSES)]}/{i}", label=CLASSES[i % len(CLASSES)], num_samples=per_request
        )
        for i in range(n_requests)
    ]
    return [s for r in teacher.generate(requests, progress=False) for s in r.samples]


def _kinds(samples, truth):
    """Each sample as 'right' (a real text of its class), 'wrong' (a real text of another class) or 'junk'."""
    return Counter(
        "junk" if s.text not in truth else "right" if truth[s.text] == s.label else "wrong" for s in samples
    )


def test_noise_rates_and_name():
    texts, labels, truth = _pool()
    teacher = PoolTeacher(texts, labels, seed=1, label_noise=0.2, junk=0.2)
    assert teacher.name == "pool-simulation(noise=0.2,junk=0.2)"
    assert teacher.is_simulation
    samples = _ask(teacher)
    kinds = _kinds(samples, truth)
    assert len(samples) == 2000
    assert kinds["wrong"] / 2000 == pytest.approx(0.2, abs=0.03)
    assert kinds["junk"] / 2000 == pytest.approx(0.2, abs=0.03)
    assert len({s.text for s in samples if s.text in truth}) == kinds["right"] + kinds["wrong"]  # no text twice
    junk = [s.text for s in samples if s.text not in truth]
    assert len(set(junk)) > 50  # varied, not one string


def test_clean_teacher_is_unchanged():
    texts, labels, truth = _pool(50)
    teacher = PoolTeacher(texts, labels, seed=1)
    assert teacher.name == "pool-simulation"
    assert _kinds(_ask(teacher, 10, 5), truth) == Counter(right=50)


def test_noise_is_deterministic_per_seed():
    texts, labels, _ = _pool()
    first = _ask(PoolTeacher(texts, labels, seed=3, label_noise=0.2, junk=0.2))
    again = _ask(PoolTeacher(texts, labels, seed=3, label_noise=0.2, junk=0.2))
    other = _ask(PoolTeacher(texts, labels, seed=4, label_noise=0.2, junk=0.2))
    assert [s.text for s in first] == [s.text for s in again]
    assert [s.text for s in first] != [s.text for s in other]


def test_gate_drops_the_junk_but_not_the_wrong_labels():
    """The junk mix is what the gate is built for: it drops nearly all of it. A real text under the wrong class
    passes by design (harm detection is what limits that damage)."""
    texts, labels, truth = _pool()
    gate = QualityGate(checks=["markup", "prompt_echo", "not_words", "repetition"])
    samples = _ask(PoolTeacher(texts, labels, seed=5, label_noise=0.2, junk=0.2))
    junk = [s for s in samples if s.text not in truth]
    reasons = Counter(gate.check(s.text, s.label) for s in junk)
    caught = 1 - reasons[None] / len(junk)
    assert caught >= 0.95, reasons
    assert {"markup", "prompt_echo", "repetition"} <= set(reasons)
    wrong = [s for s in samples if s.text in truth and truth[s.text] != s.label]
    assert wrong and all(gate.check(s.text, s.label) is None for s in wrong)


def test_bad_rates_are_refused():
    texts, labels, _ = _pool(2)
    with pytest.raises(ValueError, match="label_noise"):
        PoolTeacher(texts, labels, label_noise=0.7, junk=0.5)


def _verify(teacher, texts, truth, options=CLASSES):
    from hf_activekd.teachers.base import LabelQuery

    queries = [
        LabelQuery(key=f"r1/q{i}", texts=texts[i : i + 10], label_options=list(options))
        for i in range(0, len(texts), 10)
    ]
    answers = [label for answer in teacher.label(queries) for label in answer.labels]
    return Counter("right" if answer == truth[text] else "wrong" for text, answer in zip(texts, answers))


def test_verification_is_as_unreliable_as_the_writer_by_default():
    texts, labels, truth = _pool(100)
    noisy = PoolTeacher(texts, labels, seed=1, label_noise=0.2, junk=0.2)
    counts = _verify(noisy, texts, truth)
    assert counts["wrong"] / len(texts) == pytest.approx(0.2, abs=0.03)
    assert _verify(noisy, texts, truth) == counts  # the same answers to the same queries
    oracle = PoolTeacher(texts, labels, seed=1, label_noise=0.2, junk=0.2, judge_noise=0.0)
    assert oracle.name == "pool-simulation(noise=0.2,junk=0.2,judge=0)"
    assert _verify(oracle, texts, truth) == Counter(right=len(texts))


def test_a_noisy_judge_answers_among_the_offered_labels():
    texts, labels, truth = _pool(50)
    teacher = PoolTeacher(texts, labels, seed=2, judge_noise=0.5)
    assert teacher.name == "pool-simulation(judge=0.5)"
    pair = texts[:50] + texts[50:100]  # class_0 and class_1 texts, asked as a confusion pair
    from hf_activekd.teachers.base import LabelQuery

    answers = teacher.label([LabelQuery(key="pair", texts=pair, label_options=["class_0", "class_1"])])[0].labels
    assert set(answers) == {"class_0", "class_1"}
    assert 30 < sum(a != truth[t] for t, a in zip(pair, answers)) < 70
