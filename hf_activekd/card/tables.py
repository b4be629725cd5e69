"""The model card's tables: rounds (with their notes), per-class F1, generated examples and key settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..harm import harm_note
from .inputs import CardInputs
from .markdown import _fmt, _table, code_span, escape_markdown_cell

_CONFIG_SKIP = {"label_names", "label_descriptions", "text_column", "label_column", "output_subdir", "check_teacher"}


def eval_loss_of(record: Mapping[str, Any]) -> float | None:
    """The evaluation loss of a round record (``eval_loss``, or ``eval_<name>_loss`` for a dict of eval sets)."""
    metrics = record.get("eval_metrics") or {}
    if "eval_loss" in metrics:
        return float(metrics["eval_loss"])
    for key, value in metrics.items():
        if key.endswith("_loss"):
            return float(value)
    return None


def _cost_shown(inputs: CardInputs) -> bool:
    if any(float(r.get("cost") or 0.0) > 0 for r in inputs.rounds):
        return True
    return any("price" in str(k) and v for k, v in inputs.teacher.items())


def _dropped_text(dropped: Mapping[str, int] | None) -> str:
    dropped = {k: v for k, v in (dropped or {}).items() if v}
    if not dropped:
        return "0"
    return f"{sum(dropped.values())} (" + ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) + ")"


def _agreement_text(record: Mapping[str, Any]) -> str:
    """``0.83 (10/12)``: the share of checked rows the teacher labelled as written (``+ 2 unverified`` if any)."""
    if record.get("verify_agreement") is None:
        return "–" if not record.get("verify_unverified") else f"– ({record['verify_unverified']} unverified)"
    text = f"{record['verify_agreement']:.2f} ({record.get('verify_agreed', 0)}/{record.get('verify_checked', 0)})"
    return text + (f" + {record['verify_unverified']} unverified" if record.get("verify_unverified") else "")


def rounds_table(inputs: CardInputs) -> tuple[str, str]:
    """The per-round Markdown table and notes on skipped or failed rounds."""
    show_cost = _cost_shown(inputs)
    header = ["Round", "Step", "Eval loss", "Accuracy", "Macro-F1", "Requested", "Accepted", "Dropped (by reason)"]
    show_arrival = bool(inputs.config.get("overlap"))  # overlap=True: the step at which each round's rows arrived
    header[2:2] = ["Rows arrived at step"] if show_arrival else []
    show_verify = any(r.get("verify_requests") for r in inputs.rounds)  # verify="teacher": the teacher's agreement
    header += ["Teacher agreement"] if show_verify else []
    header += ["Tokens in", "Tokens out"] + (["Cost"] if show_cost else []) + ["Wall time (s)"]
    rows, notes = [], []
    for r in inputs.rounds:
        best = " ★" if r["round"] == inputs.best_round else ""
        generated = r.get("generated")
        row = [
            f"{r['round']}{best}",
            r.get("global_step", "–"),
            *([r.get("arrived_at_step") if r.get("arrived_at_step") is not None else "–"] if show_arrival else []),
            _fmt(eval_loss_of(r)),
            _fmt(r.get("accuracy")),
            _fmt(r.get("macro_f1")),
            r.get("requested", 0) if generated else "–",
            r.get("accepted", 0) if generated else "–",
            escape_markdown_cell(_dropped_text(r.get("dropped")), 200) if generated else "–",
            *([_agreement_text(r)] if show_verify else []),
            r.get("tokens_in", 0) if generated else "–",
            r.get("tokens_out", 0) if generated else "–",
        ]
        if show_cost:
            row.append(_fmt(float(r.get("cost") or 0.0)) if generated else "–")
        row.append(_fmt(float(r.get("wall_time_s") or 0.0), 2) if generated else "–")
        rows.append(row)
        if r.get("cancelled") or r.get("in_flight"):
            notes.append(
                f"- Round {r['round']}: {escape_markdown_cell(r.get('cancelled') or 'still in flight', 300)}."
            )
        if r.get("skipped"):
            notes.append(f"- Round {r['round']}: no request ({escape_markdown_cell(r['skipped'], 300)}).")
        if r.get("error"):
            notes.append(f"- Round {r['round']}: teacher error: {escape_markdown_cell(r['error'], 300)}.")
        if r.get("harm"):
            notes.append(harm_note(r, inputs.config.get("metric_for_rounds", "macro_f1")))
        if r.get("failed_requests"):
            notes.append(f"- Round {r['round']}: {r['failed_requests']} of {r.get('requests', 0)} requests failed.")
        if r.get("verify_failed_requests"):
            notes.append(
                f"- Round {r['round']}: {r['verify_failed_requests']} of {r['verify_requests']} verification requests "
                f"failed ({escape_markdown_cell(', '.join(r.get('verify_errors') or {}), 200)}): their rows were kept "
                "unverified."
            )
    text = _table(header, rows) if rows else "_No evaluation happened during training: no round was run._"
    legend = (
        "★ marks the best round by `{}`. Rounds are judged at each evaluation; a round's samples join the "
        "training batches after it.".format(inputs.config.get("metric_for_rounds", "macro_f1"))
    )
    if show_arrival:
        legend += " Teacher rounds overlapped training: a round's rows joined the batches from the step they arrived."
    if show_verify:
        legend += (
            " Teacher agreement: the share of the rows checked by teacher verification that the teacher, asked blind, "
            "labelled as they were written (the others are dropped as `disagreement`); its tokens are in the token "
            "columns."
        )
    return text, "\n".join([legend, *notes])


def per_class_table(inputs: CardInputs) -> str:
    """F1 per class at the first and last round, for the classes whose F1 moved most."""
    if not inputs.rounds:
        return "_No rounds._"
    first, last = inputs.rounds[0], inputs.rounds[-1]
    f_first, f_last = first.get("per_class_f1") or {}, last.get("per_class_f1") or {}
    names = [n for n in inputs.label_names if n in f_first or n in f_last]
    moved = sorted(names, key=lambda n: (-abs(f_last.get(n, 0.0) - f_first.get(n, 0.0)), names.index(n)))
    shown = moved[: inputs.top_classes]
    accepted: Counter = Counter(row["label"] for row in inputs.rows)
    rows = [
        [
            escape_markdown_cell(n, 60),
            _fmt(f_first.get(n)),
            _fmt(f_last.get(n)),
            f"{f_last.get(n, 0.0) - f_first.get(n, 0.0):+.4f}",
            accepted.get(n, 0),
        ]
        for n in shown
    ]
    header = ["Class", f"F1, round {first['round']}", f"F1, round {last['round']}", "Change", "Generated rows"]
    text = _table(header, rows)
    if len(names) > len(shown):
        text += f"\n\nThe {len(shown)} of {len(names)} classes whose F1 moved most; all are in `activekd/rounds.json`."
    return text


def examples_section(inputs: CardInputs) -> str:
    """A few generated examples per round (short, escaped)."""
    by_round: dict[int, list[dict[str, Any]]] = {}
    for row in inputs.rows:
        by_round.setdefault(int(row.get("round", 0)), []).append(row)
    if not by_round:
        return "_The teacher produced no accepted example._"
    rows = []
    for round_index in sorted(by_round):
        for row in by_round[round_index][: inputs.examples_per_round]:
            rows.append(
                [
                    round_index,
                    escape_markdown_cell(row.get("label", ""), 60),
                    escape_markdown_cell(row.get("text", ""), 120),
                    escape_markdown_cell(row.get("reason", ""), 80),
                ]
            )
    return f"Up to {inputs.examples_per_round} per round (shortened):\n\n" + _table(
        ["Round", "Label", "Text", "Requested because"], rows
    )


def card_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a card shows: scalar values, without the labels, columns and paths of the run."""
    scalar = (str, int, float, bool)
    return {k: v for k, v in config.items() if k not in _CONFIG_SKIP and (v is None or isinstance(v, scalar))}


def config_table(inputs: CardInputs) -> str:
    rows = [[code_span(k, 60), escape_markdown_cell(v, 100)] for k, v in card_settings(inputs.config).items()]
    return _table(["Setting", "Value"], rows) if rows else "_Defaults._"
