"""``hf-activekd distill --baseline``: the same student, seed, steps and schedule without generated rows, and the
teacher's effect on the test split in the summary, the printed output and the card."""

from __future__ import annotations

import json

import pytest
from test_cli import FAST, data_csv, student  # noqa: F401 - fixtures

from hf_activekd import cli


def test_distill_baseline_reports_the_teachers_effect(tmp_path, capsys, data_csv, student):  # noqa: F811
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
