"""benchmarks/policy.py in a tiny configuration (tiny student, 4 classes, 2 rounds): the results JSON, the table in it,
the plot, the budget-to-reach computation, and the clear skip when the data is absent."""

from __future__ import annotations

import csv
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from testing_utils import LABELS, make_model, make_texts, make_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    # imported by name from benchmarks/ (as benchmarks/overlap.py does), so that --jobs' spawned workers find it too
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module("policy")


def _csv(path: Path, n_per_class: int, seed: int) -> str:
    texts, labels = make_texts(n_per_class, seed=seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        writer.writerows([t, LABELS[y]] for t, y in zip(texts, labels))
    return str(path)


def _tiny_argv(tmp_path: Path, samples_per_round: int = 8) -> list[str]:
    """The tiny configuration: a tiny student saved under ``tmp_path``, synthetic CSVs of 4 classes (25 training and
    6 test texts per class), 3 + 3 examples per class, 2 rounds of 2 steps."""
    student = tmp_path / "student"
    make_tokenizer(student)
    make_model().save_pretrained(student)
    argv = ["--train-file", _csv(tmp_path / "train.csv", 25, 1), "--test-file", _csv(tmp_path / "test.csv", 6, 2)]
    argv += ["--student", str(student), "--num-hidden-layers", "0", "--freeze-embeddings", "0", "--max-length", "16"]
    argv += ["--seed-per-class", "3", "--val-per-class", "3", "--test-per-class", "5", "--rounds", "2"]
    argv += ["--samples-per-round", str(samples_per_round), "--steps-per-round", "2", "--batch-size", "8"]
    return argv + ["--rows-per-batch", "4", "--learning-rate", "3e-3"]


def test_budget_to_reach(bench):
    rows = [
        {"budget": 0, "macro_f1_mean": 0.2},
        {"budget": 10, "macro_f1_mean": 0.4},
        {"budget": 20, "macro_f1_mean": 0.5},
    ]
    assert bench.budget_to_reach(rows, 0.3) == pytest.approx(5.0)
    assert bench.budget_to_reach(rows, 0.5) == pytest.approx(20.0)
    assert bench.budget_to_reach(rows, 0.1) == 0.0
    assert bench.budget_to_reach(rows, 0.6) is None


def test_skips_cleanly_without_data(bench, tmp_path, capsys):
    assert bench.main(["--train-file", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "r.json")]) == 0
    assert "Benchmark skipped" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_tiny_run(bench, tmp_path):
    output = tmp_path / "results" / "policy.json"
    argv = [*_tiny_argv(tmp_path), "--seeds", "0", "--ceiling-epochs", "1", "--output", str(output)]
    assert bench.main(argv) == 0
    result = json.loads(output.read_text())
    assert set(result["summary"]) == {"seed_only", "uniform", "guided"}
    for policy, data in result["summary"].items():
        assert [r["round"] for r in data["rounds"]] == [0, 1, 2]
        assert data["seeds"] == [0]
        budgets = [r["budget"] for r in data["rounds"]]
        assert budgets == ([0, 0, 0] if policy == "seed_only" else [0, 8, 16])
    assert len(result["runs"]) == 3
    assert result["data"]["classes"] == 4 and result["data"]["test_rows"] == 20
    assert result["ceiling"]["train_examples"] == 100
    assert result["machine"]["cpu_count"] >= 1
    assert "uniform" in result["budget_to_reach_uniform_final"]
    table = result["table_markdown"]
    guided = result["summary"]["guided"]["rounds"][-1]
    assert f"{100 * guided['macro_f1_mean']:.1f} ± {100 * guided['macro_f1_std']:.1f}" in table
    assert output.with_suffix(".png").is_file()
    assert not output.with_suffix(".partial.json").exists()


def test_noisy_teacher_run_and_resume(bench, tmp_path):
    """--label-noise/--junk/--verify: the teacher is named noisy, verification drops rows, the gate's drops and harm's
    set-aside rows are summed per
    policy, every teacher policy is compared with seed only of the same seed; --resume keeps the finished runs."""
    output = tmp_path / "results" / "policy_noisy.json"
    argv = [*_tiny_argv(tmp_path, samples_per_round=12), "--ceiling-epochs", "0", "--output", str(output)]
    argv += ["--label-noise", "0.2", "--junk", "0.4", "--verify", "teacher"]
    assert bench.main(argv + ["--seeds", "0", "--policies", "seed_only", "uniform"]) == 0
    partial = output.with_suffix(".partial.json")
    partial.write_text(output.read_text())  # as if the run had been interrupted after these two
    assert bench.main(argv + ["--seeds", "0", "--resume"]) == 0
    result = json.loads(output.read_text())
    assert result["teacher_noise"] == {"label_noise": 0.2, "junk": 0.4, "judge_noise": 0.2}
    assert result["verify"] == "teacher"
    assert [(r["policy"], r["seed"]) for r in result["runs"]] == [("seed_only", 0), ("uniform", 0), ("guided", 0)]
    versus = result["versus_seed_only"]
    for policy in ("uniform", "guided"):
        run = next(r for r in result["runs"] if r["policy"] == policy)
        assert run["teacher"] == "pool-simulation(noise=0.2,junk=0.4)"
        assert sum(run["dropped"].values()) > 0  # the junk met the gate
        assert set(run["dropped"]) & {"markup", "prompt_echo", "repetition"}
        assert run["dropped"]["disagreement"] > 0  # the wrong labels met verification
        assert run["verify_agreement"] and min(run["verify_agreement"]) < 1
        row = versus[policy]
        diff = run["rounds"][-1]["test_macro_f1"] - result["runs"][0]["rounds"][-1]["test_macro_f1"]
        assert row["minus_seed_only"] == {"0": pytest.approx(diff)}
        assert row["wins"] == int(diff > 0) and row["seeds_compared"] == 1
        assert row["dropped"] == run["dropped"] and row["set_aside_rows"] == run["set_aside_rows"]
        seed_only_won = result["runs"][0]["rounds"][-1]["val_macro_f1"] > run["rounds"][-1]["val_macro_f1"]
        assert row["keep_better"]["kept_seed_only"] == int(seed_only_won)
        assert row["keep_better"]["minus_seed_only_mean"] == pytest.approx(0.0 if seed_only_won else diff)
    assert "minus_seed_only" not in versus["seed_only"]
    assert "| guided |" in result["versus_seed_only_markdown"]
    assert not partial.exists()


def test_annotate_source_compares_selections_with_the_generate_path(bench, tmp_path):
    """--source annotate: random, margin and guided selection label pool texts (labels hidden), the generate path
    writes from the same pool; the same number of texts per round, paired comparisons in the results."""
    output = tmp_path / "results" / "policy_annotate.json"
    argv = [*_tiny_argv(tmp_path), "--seeds", "0", "1", "--ceiling-epochs", "0", "--output", str(output)]
    assert bench.main([*argv, "--source", "annotate", "--max-unlabeled-scored", "40"]) == 0
    result = json.loads(output.read_text())
    assert result["source"] == "annotate" and set(result["summary"]) == {"random", "margin", "guided", "generate"}
    for run in result["runs"]:
        assert run["requested"] == 16 and run["accepted"] == 16
        assert run["annotated"] == (0 if run["policy"] == "generate" else 16)
    comparisons = result["annotate_comparisons"]
    assert set(comparisons) == {
        "guided_minus_random",
        "guided_minus_generate",
        "guided_minus_margin",
        "margin_minus_random",
    }
    assert comparisons["guided_minus_random"]["seeds"] == [0, 1]
    assert "| guided - generate |" in result["annotate_comparisons_markdown"]


def test_parallel_jobs_hard_acceptance_and_paired_statistics(bench, tmp_path):
    """--jobs 2: runs in two worker processes; guided_hard asks the teacher for as many samples as uniform and keeps
    the student's hardest half; the paired guided_hard - uniform differences per round and at the end."""
    output = tmp_path / "results" / "policy.json"
    argv = [*_tiny_argv(tmp_path), "--seeds", "0", "1", "--ceiling-epochs", "0", "--output", str(output)]
    argv += ["--policies", "uniform", "guided_hard", "--jobs", "2", "--candidate-factor", "2"]
    assert bench.main(argv) == 0
    result = json.loads(output.read_text())
    runs = {(r["policy"], r["seed"]): r for r in result["runs"]}
    assert list(runs) == [("uniform", 0), ("guided_hard", 0), ("uniform", 1), ("guided_hard", 1)]
    for seed in (0, 1):
        hard, uniform = runs[("guided_hard", seed)], runs[("uniform", seed)]
        assert hard["requested"] == uniform["requested"] == 16  # the same teacher cost
        assert hard["dropped"]["easy_for_student"] > 0 and hard["accepted"] < uniform["accepted"]
        assert all(k <= d for k, d in zip(hard["student_p_true_kept"], hard["student_p_true_dropped"]))
    paired = result["paired_versus_uniform"]["guided_hard"]
    diffs = [
        runs[("guided_hard", s)]["rounds"][-1]["test_macro_f1"] - runs[("uniform", s)]["rounds"][-1]["test_macro_f1"]
        for s in (0, 1)
    ]
    assert paired["seeds"] == [0, 1] and len(paired["per_round"]) == 3
    assert paired["final"]["mean"] == pytest.approx(np.mean(diffs))
    assert paired["final"]["se"] == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(2))
    assert paired["final"]["wins"] == sum(d > 0 for d in diffs)
    assert "| guided_hard − uniform |" in result["paired_versus_uniform_markdown"]
