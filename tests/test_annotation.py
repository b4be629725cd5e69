"""Annotation (source="annotate"/"both"): the teacher labels the user's own unlabeled texts, picked where the student
is weak or unsure; the labelled texts join training like generated rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher, RoundRunner, Teacher, TeacherError, build_report
from hf_activekd.annotation import NONE_OF_THESE
from hf_activekd.teachers.base import TeacherResponse
from testing_utils import LABELS, MARKER, make_texts
from torchrun_utils import torchrun

NAMES = ["alpha", "beta", "gamma"]


def _report():
    """alpha is weak (three of its four validation texts predicted beta: F1 0.4), beta less so (precision 4/7: F1
    0.73), gamma is perfect."""
    labels = np.repeat(np.arange(3), 4)
    logits = np.eye(3)[labels] * 2.0
    logits[:3, 1] += 5.0
    return build_report(logits, labels, NAMES)


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


class Scores:
    """The student's class probabilities, given per text (a stand-in for the student): unknown texts are sure of
    gamma."""

    def __init__(self, table=None):
        self.table = dict(table or {})
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([self.table.get(t, [0.01, 0.01, 0.98]) for t in texts])


class Annotating(PoolTeacher):
    """A pool teacher that records the texts it is asked to label, and can answer 'none of these' for some."""

    def __init__(self, texts, labels, none_for=(), **kwargs):
        super().__init__(texts, labels, **kwargs)
        self.asked: list[str] = []
        self.queries = []
        self.none_for = set(none_for)

    def label(self, queries, progress=False):
        self.queries += queries
        self.asked += [t for q in queries for t in q.texts]
        answers = super().label(queries, progress)
        for q, a in zip(queries, answers):
            a.labels = [NONE_OF_THESE if t in self.none_for else x for t, x in zip(q.texts, a.labels)]
            a.prompt_tokens, a.completion_tokens, a.cost = 10 * len(q.texts), 3 * len(q.texts), 0.5
        return answers


def _unlabeled(n=30):
    texts = [f"an unlabeled message number {i} about {NAMES[i % 3]} things" for i in range(n)]
    return texts, [NAMES[i % 3] for i in range(n)]


def _config(**kwargs):
    kwargs = {"source": "annotate", "samples_per_round": 4, "annotate_texts_per_request": 2, **kwargs}
    return ActiveKDConfig(**kwargs)


# ---------------------------------------------------------------------- set-up errors, before anything is paid
def test_annotate_without_unlabeled_texts_fails_at_construction(tmp_path, make_trainer, pool_teacher, preprocess):
    with pytest.raises(ValueError, match=r"pass unlabeled=\.\.\. \(a list of texts, or a datasets.Dataset"):
        ActiveKDCallback(make_trainer(), pool_teacher, _config(), preprocess=preprocess)
    with pytest.raises(ValueError, match="--unlabeled-file"):
        RoundRunner(pool_teacher, _config(source="both"), NAMES, tmp_path, unlabeled=[])

    class WriterOnly(Teacher):
        def generate(self, requests, progress=True):
            return [TeacherResponse(key=r.key) for r in requests]

    with pytest.raises(TeacherError, match="does not implement `label\\(\\)`"):
        RoundRunner(WriterOnly(), _config(), NAMES, tmp_path, unlabeled=["a text to label"])
    runner = RoundRunner(pool_teacher, _config(), NAMES, tmp_path, unlabeled=["a text to label"])
    with pytest.raises(ValueError, match="score_fn"):
        runner.run(_report())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "label"}, "source must be one of"),
        ({"annotate_share": 1.5}, "annotate_share"),
        ({"annotate_strategy": "entropy"}, "annotate_strategy"),
        ({"max_unlabeled_scored": 0}, "max_unlabeled_scored"),
        ({"annotate_texts_per_request": 0}, "annotate_texts_per_request"),
    ],
)
def test_bad_annotation_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActiveKDConfig(**kwargs)


def test_unlabeled_dataset_needs_the_text_column(tmp_path, pool_teacher):
    from datasets import Dataset

    data = Dataset.from_dict({"sentence": ["one text here", "another text"]})
    with pytest.raises(ValueError, match=r"no 'text' column \(it has \['sentence'\]\)"):
        RoundRunner(pool_teacher, _config(), NAMES, tmp_path, unlabeled=data)
    runner = RoundRunner(pool_teacher, _config(text_column="sentence"), NAMES, tmp_path, unlabeled=data)
    assert runner.annotator.texts == ["one text here", "another text"]


# ---------------------------------------------------------------------- selection
def test_guided_selection_picks_low_margin_texts_of_the_weak_class(tmp_path):
    texts, labels = _unlabeled(30)
    table = {}
    for i, t in enumerate(texts):
        if i < 6:  # alpha vs beta, the weak class and its confusion, margins 0.02 .. 0.12
            m = 0.02 * (i + 1)
            table[t] = [0.5 - m / 2, 0.5 + m / 2, 0.0] if i % 2 else [0.5 + m / 2, 0.5 - m / 2, 0.0]
        elif i < 12:  # beta vs gamma: even smaller margins, but beta and gamma are fine
            table[t] = [0.0, 0.5, 0.5]
        elif i < 18:  # alpha, sure
            table[t] = [0.9, 0.05, 0.05]
    teacher = Annotating(texts, labels)
    config = _config(allocation_floor=0.0, samples_per_round=4)
    runner = RoundRunner(teacher, config, NAMES, tmp_path, unlabeled=texts, progress=False)
    record = runner.run(_report(), score_fn=Scores(table))
    # alpha's share (3 of 4): the three smallest margins where alpha is in the student's top two (not the sure ones,
    # not the smaller beta/gamma margins); beta's share (1): a beta/gamma text, its smallest margin
    asked = set(teacher.asked)
    assert len(teacher.asked) == 4 and set(texts[:3]) < asked and len(asked & set(texts[6:12])) == 1
    assert record["annotated"] == 4 and record["accepted"] == 4 and record["annotate_requested"] == 4
    rows = _rows(tmp_path / "round-0000.jsonl")
    assert {r["origin"] for r in rows} == {"annotated"}
    assert {r["text"]: r["label"] for r in rows} == {t: labels[texts.index(t)] for t in asked}  # the teacher's labels
    assert sum("annotate for 'alpha'" in r["reason"] for r in rows) == 3
    # the labelling request is constrained to the label names, plus "none of these"
    query = teacher.queries[0]
    assert query.json_schema["properties"]["labels"]["items"]["enum"] == [*NAMES, NONE_OF_THESE]
    assert len(query.texts) == 2

    # margin: the smallest margins overall (beta vs gamma); random: neither ordering
    margin = Annotating(texts, labels)
    RoundRunner(margin, _config(annotate_strategy="margin"), NAMES, tmp_path / "m", unlabeled=texts).run(
        _report(), score_fn=Scores(table)
    )
    assert len(margin.asked) == 4 and set(margin.asked) < set(texts[6:12])


def test_train_eval_and_labelled_texts_are_never_picked(tmp_path):
    texts, labels = _unlabeled(24)
    train, evals = texts[:4], texts[4:8]
    near_eval = [f"  {texts[8].upper()}!"]  # a near copy of an eval text
    unlabeled = texts + near_eval
    everything_unsure = {t: [0.34, 0.33, 0.33] for t in unlabeled}
    teacher = Annotating(texts, labels)
    config = _config(samples_per_round=6, max_unlabeled_scored=100)
    runner = RoundRunner(
        teacher, config, NAMES, tmp_path, train_texts=train, eval_texts=evals + [texts[8]], unlabeled=unlabeled
    )
    scores = Scores(everything_unsure)
    first = runner.run(_report(), score_fn=scores)
    second = runner.run(_report(), score_fn=scores)
    assert first["annotated"] == 6 and second["annotated"] == 6
    forbidden = set(train) | set(evals) | {texts[8]} | set(near_eval)
    assert not forbidden & {t for call in scores.calls for t in call}  # not even scored
    assert not forbidden & set(teacher.asked)
    assert len(teacher.asked) == len(set(teacher.asked)) == 12  # nothing labelled twice across rounds
    assert {r["origin"] for r in runner.pool.rows()} == {"annotated"}


def test_max_unlabeled_scored_bounds_the_subset_and_changes_each_round(tmp_path):
    texts, labels = _unlabeled(30)
    scores = Scores()
    runner = RoundRunner(
        Annotating(texts, labels), _config(max_unlabeled_scored=5), NAMES, tmp_path, unlabeled=texts, progress=False
    )
    first = runner.run(_report(), score_fn=scores)
    runner.run(_report(), score_fn=scores)
    assert first["annotate_scored"] == 5 and [len(c) for c in scores.calls] == [5, 5]
    assert scores.calls[0] != scores.calls[1]


# ---------------------------------------------------------------------- labelling
def test_none_of_these_drops_the_text_and_tokens_are_counted(tmp_path):
    texts, labels = _unlabeled(12)
    teacher = Annotating(texts, labels, none_for=texts[:12:2])
    config = _config(samples_per_round=6, annotate_strategy="random")
    runner = RoundRunner(teacher, config, NAMES, tmp_path, unlabeled=texts, progress=False)
    record = runner.run(_report(), score_fn=Scores())
    nones = len(set(teacher.asked) & set(texts[:12:2]))
    assert nones > 0 and record["none_of_these"] == nones
    assert record["annotated"] == record["accepted"] == 6 - nones
    assert not {r["text"] for r in runner.pool.rows()} & set(texts[:12:2])
    assert record["annotate_requests"] == record["requests"] == 3
    assert record["tokens_in"] == record["annotate_tokens_in"] == 60 and record["tokens_out"] == 18
    assert record["cost"] == pytest.approx(1.5)
    # the answers are in the answer log, so that a resumed run knows what was paid
    assert runner.log.spend(runner.run_id)["prompt_tokens"] == 60


def test_annotation_over_tgi_teacher_counts_in_its_budget(tmp_path):
    """The real client and the project's TGI-protocol server: a constrained labelling request, counted in the
    teacher's budget like generation."""
    from hf_activekd import TGITeacher
    from hf_activekd.server import ScriptedBackend, TeacherServer

    texts, labels = _unlabeled(8)

    def answer(request):
        user = request.messages[-1]["content"]
        block = user.split("Texts:\n", 1)[1].split("\n\nAnswer with", 1)[0].splitlines()
        return json.dumps({"labels": [next(n for n in NAMES if f"about {n}" in line) for line in block]})

    server = TeacherServer(ScriptedBackend(answer)).start()
    try:
        teacher = TGITeacher(server.url, max_attempts=1)
        runner = RoundRunner(teacher, _config(), NAMES, tmp_path, unlabeled=texts, progress=False)
        record = runner.run(_report(), score_fn=Scores())
    finally:
        server.stop()
    rows = runner.pool.rows()
    assert record["annotated"] == 4 and all(r["label"] == labels[texts.index(r["text"])] for r in rows)
    assert record["tokens_in"] > 0 and record["tokens_out"] > 0
    assert record["tokens_in"] + record["tokens_out"] == teacher.usage["total_tokens"]
    assert teacher.usage["requests"] == 2


def test_a_noisy_pool_teacher_mislabels_annotations_but_never_says_none_of_these():
    texts, labels = make_texts(30, seed=3)
    teacher = PoolTeacher(texts, labels, label_names=LABELS, label_noise=0.5, seed=1)
    from hf_activekd.annotation import build_label_query

    query = build_label_query("k", texts, LABELS, ActiveKDConfig())
    said = teacher.label([query])[0].labels
    wrong = sum(s != LABELS[y] for s, y in zip(said, labels))
    assert 0.35 * len(texts) < wrong < 0.65 * len(texts) and NONE_OF_THESE not in said
    assert teacher.label([query])[0].labels == said  # the same answers every time


def test_resume_after_a_crash_mid_round_pays_nothing_twice(tmp_path):
    texts, labels = _unlabeled(40)

    class Killed(BaseException):
        pass

    class Crashing(Annotating):
        calls = 0

        def label(self, queries, progress=False):
            self.calls += 1
            if self.calls == 2:
                raise Killed  # the process dies in the middle of the round
            return super().label(queries, progress)

    config = _config(samples_per_round=20, annotate_texts_per_request=1)  # 20 requests: 8 per call
    first = Crashing(texts, labels)
    runner = RoundRunner(first, config, NAMES, tmp_path, unlabeled=texts, progress=False)
    with pytest.raises(Killed):
        runner.run(_report(), score_fn=Scores())
    assert len(first.asked) == 8 and not (tmp_path / "round-0000.jsonl").exists()

    second = Annotating(texts, labels)
    resumed = RoundRunner(second, config, NAMES, tmp_path, unlabeled=texts, run_id=runner.run_id, progress=False)
    record = resumed.run(_report(), score_fn=Scores())
    assert len(second.asked) == 12 and not set(second.asked) & set(first.asked)  # only the rest of the budget
    assert record["annotate_replayed"] == 8 and record["annotated"] == 20
    assert {r["text"] for r in resumed.pool.rows()} == set(first.asked) | set(second.asked)
    assert record["tokens_in"] == 200  # the replayed answers were paid by this run: they count, once


class WritesAndLabels(PoolTeacher):
    """Writes from one pool, labels from another (the true labels of the unlabeled texts)."""

    def __init__(self, texts, labels, labeller, **kwargs):
        super().__init__(texts, labels, **kwargs)
        self.labeller = labeller

    def label(self, queries, progress=False):
        return self.labeller.label(queries, progress)


def test_both_splits_the_budget(tmp_path):
    texts, labels = make_texts(20, seed=5)
    unlabeled, hidden = make_texts(20, seed=6)
    teacher = WritesAndLabels(
        [f"{MARKER} {t}" for t in texts],
        labels,
        PoolTeacher(unlabeled, hidden, label_names=LABELS),
        label_names=LABELS,
    )
    report = build_report(np.eye(4)[np.repeat(np.arange(4), 3)], np.repeat(np.arange(4), 3), LABELS)
    config = ActiveKDConfig(source="both", annotate_share=0.25, samples_per_round=8, samples_per_request=2)
    runner = RoundRunner(teacher, config, LABELS, tmp_path, unlabeled=unlabeled, progress=False)
    record = runner.run(report, score_fn=lambda ts: np.full((len(ts), 4), 0.25))
    origins = [r["origin"] for r in _rows(tmp_path / "round-0000.jsonl")]
    assert origins.count("generated") == 6 and origins.count("annotated") == 2
    assert record["requested"] == 8 and record["accepted"] == 8 and record["annotated"] == 2
    assert record["annotate_requests"] == 1 and record["requests"] == len(record["reasons"]) + 1


# ---------------------------------------------------------------------- in a Trainer
def test_student_scorer_batches_without_gradients_and_restores_the_mode(tokenizer, preprocess):
    from transformers import DataCollatorWithPadding

    from hf_activekd.scoring import StudentScorer
    from testing_utils import make_model

    model = make_model()
    texts, _ = make_texts(5, seed=2)
    scorer = StudentScorer(model, preprocess, DataCollatorWithPadding(tokenizer), batch_size=3)
    for training in (True, False):
        model.train(training)
        probs = scorer(texts)
        assert model.training is training
    assert probs.shape == (20, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    model.eval()
    import torch

    with torch.no_grad():
        expected = torch.softmax(model(**tokenizer(texts[:2], padding=True, return_tensors="pt")).logits, -1)
    assert np.allclose(probs[:2], expected.numpy(), atol=1e-5)


def test_annotated_rows_reach_training_batches_with_the_teachers_labels(make_trainer, preprocess, tokenizer):
    """Every unlabeled text carries the marker and the teacher calls every one 'cooking': marker rows in training
    batches carry the cooking label id, and none reaches evaluation."""
    texts, _ = make_texts(30, seed=11)
    unlabeled = [f"{MARKER} {t}" for t in texts]
    teacher = PoolTeacher(unlabeled, ["cooking"] * len(unlabeled))
    trainer = make_trainer()
    callback = ActiveKDCallback(
        trainer,
        teacher,
        ActiveKDConfig(source="annotate", samples_per_round=8, patience=0, rows_per_batch=4),
        preprocess=preprocess,
        progress=False,
        unlabeled=unlabeled,
    )
    trainer.add_callback(callback)
    marker = tokenizer.convert_tokens_to_ids(MARKER)
    marker_labels, evaluating, eval_marker_rows = [], [], []
    loop = trainer.evaluation_loop

    def evaluation_loop(*args, **kwargs):  # the student also scores the marker texts in eval mode: not evaluation
        evaluating.append(True)
        try:
            return loop(*args, **kwargs)
        finally:
            evaluating.pop()

    trainer.evaluation_loop = evaluation_loop

    def hook(module, args, kwargs):
        ids, labels = kwargs.get("input_ids"), kwargs.get("labels")
        if ids is None:
            return
        rows = (ids == marker).any(dim=-1)
        if evaluating:
            eval_marker_rows.append(int(rows.sum()))
        elif module.training and labels is not None:
            marker_labels.extend(labels[rows].tolist())

    trainer.model.register_forward_pre_hook(hook, with_kwargs=True)
    trainer.train()
    rounds = callback.rounds
    assert rounds[0]["annotated"] == 8 and rounds[0]["annotate_scored"] == 120
    assert eval_marker_rows and sum(eval_marker_rows) == 0  # evaluations ran, without annotated rows
    assert len(marker_labels) > 8 and set(marker_labels) == {LABELS.index("cooking")}
    rows = callback.runner.pool.rows()
    assert {r["origin"] for r in rows} == {"annotated"} and {r["label"] for r in rows} == {"cooking"}
    assert len({r["text"] for r in rows}) == len(rows) == sum(r.get("annotated", 0) for r in rounds)


def test_two_processes_score_shards_agree_and_train_on_annotated_rows(tmp_path):
    """torchrun, 2 CPU processes (gloo): each rank scores half of the subset, the scores are gathered, the main
    process alone asks the teacher, the records and rows agree, and both ranks train on annotated rows."""
    proc = torchrun("ddp_annotate.py", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in results] == [2, 2] and all(r["global_step"] == 12 for r in results)
    # 25 texts scored per round, 13 + 12 (padded to 13 so that both ranks run the same batches)
    assert results[0]["scored"] == results[1]["scored"] == [13, 13]
    assert results[0]["label_calls"] == 2 and results[1]["label_calls"] == 0
    rounds = [
        [{k: v for k, v in r.items() if k not in ("eval_metrics", "wall_time_s")} for r in x["rounds"]]
        for x in results
    ]
    assert rounds[0] == rounds[1] and [r.get("annotated") for r in rounds[0][:2]] == [8, 8]
    assert results[0]["rows"] == results[1]["rows"] and {r["origin"] for r in results[0]["rows"]} == {"annotated"}
    assert all(r["train_marker_rows"] > 0 for r in results)
