"""``hf-activekd distill --baseline``: the same student, seed, steps and schedule without generated rows, and the
teacher's effect on the test split in the summary, the printed output and the card."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from cli_testing import FAST
from sklearn.metrics import f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_activekd import cli
from testing_utils import LABELS


def _validation_macro_f1_of_saved_student(argv, folder) -> float:
    """Macro-F1 of the student saved in ``folder`` on the validation split the CLI drew for ``argv``."""
    args, config = cli.parse_distill_args(argv)
    validation = cli._prepare_data(args, config)["splits"]["validation"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**tokenizer(list(validation["text"]), padding=True, return_tensors="pt")).logits
    return f1_score(list(validation["label"]), logits.argmax(-1).numpy(), average="macro")


def test_distill_baseline_reports_the_teachers_effect(tmp_path, capsys, data_csv, student):
    out = tmp_path / "out"
    argv = ["distill", "--data-file", str(data_csv), "--text-column", "sentence", "--label-column", "topic"]
    argv += ["--student", student, "--seed-per-class", "4", "--val-per-class", "5", "--test-per-class", "5"]
    argv += ["--simulate-from", "rest", "--samples-per-round", "8", "--output-dir", str(out), "--baseline", *FAST]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out

    summary = json.loads((out / "distill_summary.json").read_text())
    effect = summary["baseline"]
    assert effect["split"] == "test"
    with_teacher, without = effect["with_teacher"], effect["without_teacher"]
    assert with_teacher["macro_f1"] == pytest.approx(summary["test_metrics"]["test_macro_f1"])
    for key in ("macro_f1", "accuracy"):
        assert 0.0 <= without[key] <= 1.0
        assert effect["difference"][key] == pytest.approx(with_teacher[key] - without[key])
    assert effect["steps"] == effect["distilled_steps"] > 0  # as many steps as the distilled run

    assert "Teacher's effect on the test split" in stdout
    card = (out / "README.md").read_text()
    assert "Teacher's effect" in card and f"{without['macro_f1']:.4f}" in card
    assert not (out / "baseline").exists()  # the baseline's checkpoints are not left behind


def test_distill_keeps_the_baseline_when_a_harmful_teacher_lowers_validation(tmp_path, capsys, data_csv, student):
    """A teacher whose every row carries the wrong class (the simulated pool's labels are rotated) makes the distilled
    student worse; with --baseline the saved student is the baseline, and the summary and the card say so."""
    from cli_testing import _write_csv

    wrong = tmp_path / "wrong.csv"
    rows = list(csv.DictReader(open(_write_csv(tmp_path / "pool.csv", 40, seed=7))))
    with open(wrong, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence", "topic"])
        for row in rows:
            writer.writerow([row["sentence"], LABELS[(LABELS.index(row["topic"]) + 1) % len(LABELS)]])
    out = tmp_path / "out"
    argv = ["distill", "--data-file", str(data_csv), "--text-column", "sentence", "--label-column", "topic"]
    argv += ["--student", student, "--seed-per-class", "6", "--val-per-class", "6", "--test-per-class", "6"]
    argv += ["--simulate-from", str(wrong), "--samples-per-round", "40", "--rows-per-batch", "6"]
    argv += ["--eval-steps", "8", "--learning-rate", "1e-2", "--per-device-train-batch-size", "8", "--max-rounds", "2"]
    argv += ["--output-dir", str(out), "--baseline"]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    effect = json.loads((out / "distill_summary.json").read_text())["baseline"]
    assert effect["validation"]["without_teacher"] > effect["validation"]["with_teacher"]
    assert effect["kept"] == "baseline"
    summary = json.loads((out / "distill_summary.json").read_text())
    assert summary["test_metrics"]["test_macro_f1"] == pytest.approx(effect["without_teacher"]["macro_f1"])
    assert "The weights kept are the baseline's" in stdout
    assert "The weights kept are the baseline's" in (out / "README.md").read_text()
    # the saved student is the baseline: its validation score is the baseline's, not the distilled one's
    saved = _validation_macro_f1_of_saved_student(argv[1:], out)
    assert saved == pytest.approx(effect["validation"]["without_teacher"], abs=1e-6)
