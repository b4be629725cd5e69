"""What ``distill`` prints: a line per round while training, then the rounds table, the totals and the test metrics."""

from __future__ import annotations

from typing import Any

from ..baseline import effect_text


def _round_line(record: dict[str, Any]) -> str:
    best = " (best)" if record.get("is_best") else ""
    line = (
        f"round {record['round']:>2} | step {record['global_step']:>5} | "
        f"val macro-F1 {record['macro_f1']:.4f}{best} | acc {record['accuracy']:.4f}"
    )
    if record.get("generated"):
        dropped = sum(record.get("dropped", {}).values())
        line += (
            f" | requested {record['requested']}, accepted {record['accepted']}, dropped {dropped}, "
            f"failed requests {record['failed_requests']} | tokens {record['tokens_in']}+{record['tokens_out']} | "
            f"{record['wall_time_s']:.1f}s"
        )
    elif record.get("skipped"):
        line += f" | no generation ({record['skipped']})"
    return line


def _make_round_printer(callback):
    from transformers import TrainerCallback

    class RoundPrinter(TrainerCallback):
        seen = 0

        def on_evaluate(self, args, state, control, **kwargs):
            rounds = callback.rounds
            if len(rounds) > self.seen and state.is_world_process_zero:
                self.seen = len(rounds)
                _write(_round_line(rounds[-1]))
            return control

    return RoundPrinter()


def _quiet_progress(trainer) -> None:
    """Keep the Trainer's progress bars but not its raw metric dictionaries (the round lines say it better)."""
    from transformers.trainer_callback import ProgressCallback

    class QuietProgressCallback(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            return control

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgressCallback())


def _write(line: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(line)
    except ImportError:  # pragma: no cover
        print(line, flush=True)


def summary_table(rounds: list[dict[str, Any]]) -> str:
    """A fixed-width table of the rounds (one line each)."""
    header = (
        f"{'round':>5} {'step':>6} {'val macro-F1':>12} {'val acc':>8} {'requested':>9} {'accepted':>8} "
        f"{'dropped':>7} {'tokens in':>9} {'tokens out':>10} {'time s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rounds:
        mark = "*" if r.get("is_best") else " "
        lines.append(
            f"{r['round']:>5} {r['global_step']:>6} {r['macro_f1']:>11.4f}{mark} {r['accuracy']:>8.4f} "
            f"{r['requested']:>9} {r['accepted']:>8} {sum(r.get('dropped', {}).values()):>7} {r['tokens_in']:>9} "
            f"{r['tokens_out']:>10} {r['wall_time_s']:>7.1f}"
        )
    lines.append("(* best so far; the best checkpoint is the one kept)")
    return "\n".join(lines)


def print_results(
    summary: dict[str, Any], rounds: list[dict[str, Any]], metric: str, test_metrics: dict[str, Any] | None
) -> None:
    """After training: the rounds table, the totals and best round, the test metrics, and the teacher's effect (with
    ``--baseline``)."""
    print("\n" + summary_table(rounds))
    best = summary["best_metric"]
    print(
        f"\n{summary['rounds']} rounds, {summary['accepted']} generated samples accepted of {summary['requested']} "
        f"requested, teacher tokens {summary['tokens_in']} in + {summary['tokens_out']} out; best val "
        f"{metric} {best if best is None else f'{best:.4f}'} at round {summary['best_round']}."
    )
    if test_metrics:
        print(
            f"Test: macro-F1 {test_metrics.get('test_macro_f1', float('nan')):.4f}, accuracy "
            f"{test_metrics.get('test_accuracy', float('nan')):.4f}"
        )
    if summary.get("baseline"):
        print(effect_text(summary["baseline"]))
