"""Model card, dataset card, plot and latency of an active distillation run, and publishing them with the model.

The pieces work on the round records (``activekd/rounds.json``) and the generated rows (``activekd/round-NNNN.jsonl``)
alone, so that they can be rebuilt from an output folder; :class:`ActiveKDPublisher` binds them to a running
`transformers.Trainer` through :class:`~hf_activekd.ActiveKDCallback`:

- ``trainer.create_model_card`` (which ``Trainer.push_to_hub`` calls and which overwrites ``README.md``) is wrapped on
  the instance: the original runs, then the card is loaded with `huggingface_hub.ModelCard`, the distillation metadata
  and sections are added, and it is saved again, so that it ships in the same commit as the model;
- at every push (``on_push_begin``, also for ``hub_strategy="every_save"``), the card, the plot and the data are
  rewritten in ``output_dir`` and the generated rows are pushed to a dataset repo with their own card;
- at the end of training the same files are written into ``output_dir`` even when nothing is pushed.

Only the main process writes or pushes. No token, secret header or credentialed URL is written: the teacher is
described by :meth:`Teacher.describe` with secret-looking keys removed and URLs stripped of credentials and queries,
and every text is checked against the tokens this process knows before it is written.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData
from transformers.utils import logging

from .baseline import effect_text
from .harm import harm_note
from .privacy import check_existing_dataset, dataset_visibility
from .sharding import sharding_of
from .utils import forward_params, strip_url_credentials

logger = logging.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
MODEL_CARD_TEMPLATE = TEMPLATES / "modelcard_template.md"
DATASET_CARD_TEMPLATE = TEMPLATES / "datasetcard_template.md"
TAGS = ["hf-activekd", "knowledge-distillation", "synthetic-data"]
PLOT_FILE = "activekd_rounds.png"
GENERATED_FILE = "generated.jsonl"
DATASET_CARD_FILE = "dataset_card.md"
BLOCK_START = "<!-- hf-activekd:start -->"
BLOCK_END = "<!-- hf-activekd:end -->"
DATASET_COLUMNS = ("text", "label", "round", "reason", "teacher", "origin")
PGKD_REPORTED_SPEEDUP = 130

_SECRET_KEY = re.compile(
    r"(^|[_-])(token|secret|password|passwd|api[_-]?key|authorization|auth|headers?|cookies?|credentials?)$", re.I
)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s)\]>'\"`|]+")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{16,}\b")
_CONFIG_SKIP = {"label_names", "label_descriptions", "text_column", "label_column", "output_subdir", "check_teacher"}


# ---------------------------------------------------------------------------------------------------- text helpers
def escape_markdown_cell(text: Any, max_chars: int = 120) -> str:
    """Make ``text`` safe inside a Markdown table cell: one line, at most ``max_chars`` characters, HTML escaped,
    pipes, backslashes and backticks escaped."""
    text = " ".join(str(text).split())
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    text = html.escape(text, quote=False)
    for char in ("\\", "|", "`", "*", "_", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def code_span(text: Any, max_chars: int = 200) -> str:
    """``text`` as an inline code span: one line, shortened, without backticks or pipes (escapes do not work there)."""
    text = " ".join(str(text).split()).replace("`", "'").replace("|", "/")
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return f"`{text}`"


def _redact_url(url: str) -> str:
    try:
        return strip_url_credentials(url)
    except ValueError:
        return "<url>"


def known_secrets(extra: Sequence[str | None] = ()) -> list[str]:
    """The tokens this process knows (``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN``, the stored token, ``extra``)."""
    secrets = [os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN"), *extra]
    try:
        from huggingface_hub import get_token

        secrets.append(get_token())
    except Exception:  # noqa: BLE001 - no token is fine
        pass
    return sorted({s for s in secrets if isinstance(s, str) and len(s) >= 6}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove known secrets, Hub-token-looking strings and credentials in URLs from ``text``."""
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    text = _HF_TOKEN.sub("<redacted>", text)
    return _URL.sub(lambda m: _redact_url(m.group(0)) if "@" in m.group(0) else m.group(0), text)


def public_description(description: Mapping[str, Any]) -> dict[str, Any]:
    """A teacher description without secret-looking keys, and with URLs stripped of credentials and queries."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return _URL.sub(lambda m: _redact_url(m.group(0)), value)
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return clean(dict(description))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def eval_loss_of(record: Mapping[str, Any]) -> float | None:
    """The evaluation loss of a round record (``eval_loss``, or ``eval_<name>_loss`` for a dict of eval sets)."""
    metrics = record.get("eval_metrics") or {}
    if "eval_loss" in metrics:
        return float(metrics["eval_loss"])
    for key, value in metrics.items():
        if key.endswith("_loss"):
            return float(value)
    return None


# ---------------------------------------------------------------------------------------------------- measurements
def teacher_latency(rounds: Sequence[Mapping[str, Any]], answers: Mapping[str, Mapping[str, Any]] | None = None):
    """The teacher's measured latency per accepted sample.

    The latency of a round is, by preference, its record's ``latency_s``, else the sum of the ``latency_s`` of its
    answers (request keys are the keys of ``record["reasons"]``, answers come from ``answers.jsonl``), else its
    ``wall_time_s``.

    Returns:
        `dict` with ``total_s``, ``accepted``, ``ms_per_sample`` (None without accepted samples) and ``source``.
    """
    answers = answers or {}
    total, accepted, sources = 0.0, 0, set()
    for record in rounds:
        if not record.get("generated"):
            continue
        accepted += int(record.get("accepted", 0))
        if record.get("latency_s") is not None:
            total += float(record["latency_s"])
            sources.add("round records")
            continue
        latencies = [
            float(answers[key].get("latency_s", 0.0)) for key in (record.get("reasons") or {}) if key in answers
        ]
        if latencies:
            total += sum(latencies)
            sources.add("request latencies")
        else:
            total += float(record.get("wall_time_s", 0.0))
            sources.add("round wall time")
    return {
        "total_s": total,
        "accepted": accepted,
        "ms_per_sample": 1000.0 * total / accepted if accepted else None,
        "source": ", ".join(sorted(sources)) or "none",
    }


def measure_student_latency(
    model, dataset, collate_fn: Callable | None, batch_size: int = 32, max_samples: int = 512
) -> dict[str, Any] | None:
    """Measure the student's inference time per sample on ``dataset`` (batched, on the model's device, no grad).

    One batch warms up first and is not counted. Columns the model's ``forward`` does not take are removed, and so are
    labels. Returns ``{"ms_per_sample", "samples", "batch_size", "device"}``, or None when it cannot be measured.
    """
    import torch
    from torch.utils.data import DataLoader

    if dataset is None:
        return None
    columns = forward_params(model)
    if columns is not None and hasattr(dataset, "column_names"):
        drop = [c for c in dataset.column_names if c not in columns or c in ("labels", "label", "label_ids")]
        dataset = dataset.remove_columns(drop)
    if hasattr(dataset, "select") and len(dataset) > max_samples + batch_size:
        dataset = dataset.select(range(max_samples + batch_size))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    timed, samples = 0.0, 0
    try:
        with torch.inference_mode():
            for i, batch in enumerate(loader):
                batch = {
                    k: v.to(device)
                    for k, v in dict(batch).items()
                    if isinstance(v, torch.Tensor) and k not in ("labels", "label", "label_ids")
                }
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(**batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i > 0 or len(loader) == 1:
                    timed += time.perf_counter() - start
                    samples += len(next(iter(batch.values())))
    finally:
        model.train(was_training)
    if not samples:
        return None
    return {
        "ms_per_sample": 1000.0 * timed / samples,
        "samples": samples,
        "batch_size": batch_size,
        "device": str(device),
    }


# ---------------------------------------------------------------------------------------------------- plot
def plot_rounds(rounds: Sequence[Mapping[str, Any]], path: str | os.PathLike, best_round: int | None = None) -> Path:
    """Save a PNG of accuracy and macro-F1 by round (top) and samples requested / accepted per round (bottom)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = [r["round"] for r in rounds]
    fig = Figure(figsize=(7, 5.5), dpi=100)  # no pyplot: the user's backend and figures are left alone
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, [r["accuracy"] for r in rounds], marker="o", label="accuracy")
    top.plot(x, [r["macro_f1"] for r in rounds], marker="s", label="macro-F1")
    if best_round is not None and any(r["round"] == best_round for r in rounds):
        top.axvline(best_round, color="goldenrod", linestyle="--", label=f"best round ({best_round})")
    top.set_ylabel("validation")
    top.set_title("Active distillation rounds")
    top.grid(alpha=0.3)
    top.legend(loc="lower right")
    width = 0.4
    bottom.bar([i - width / 2 for i in x], [r.get("requested", 0) for r in rounds], width, label="requested")
    bottom.bar([i + width / 2 for i in x], [r.get("accepted", 0) for r in rounds], width, label="accepted")
    bottom.set_xlabel("round (evaluation)")
    bottom.set_ylabel("samples")
    bottom.grid(alpha=0.3, axis="y")
    bottom.legend(loc="upper right")
    bottom.set_xticks(x)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------------------------------------- card content
@dataclass
class CardInputs:
    """Everything a card is built from (no Trainer in it, so cards can be rebuilt from an output folder).

    Args:
        model_name (`str`): Name of the model (last part of the repo id).
        model_repo_id (`str`): The model repository (``namespace/name`` where known).
        dataset_repo_id (`str`): The dataset repository of the generated data.
        label_names (`list[str]`): Class names by id.
        rounds (`list[dict]`): Round records.
        rows (`list[dict]`): Accepted generated rows.
        config (`dict`): ``ActiveKDConfig.to_dict()``.
        teacher (`dict`): ``Teacher.describe()`` (secret-looking keys are removed before use).
        is_simulation (`bool`): Whether the teacher is a simulation (no LLM).
        best_round (`int`, *optional*), stop_reason (`str`, *optional*): From the round runner.
        answers (`dict`): Teacher answers by request key (``answers.jsonl``), for latencies.
        student_latency (`dict`, *optional*): From :func:`measure_student_latency`, or ``{"skipped": reason}``.
        base_model (`str`, *optional*), source_datasets (`list[str]`): Metadata.
        training (`dict`): A few training arguments for the reproduction snippet.
        weights_note (`str`): Which weights were published (final or best checkpoint).
        endpoint (`str`): Hub URL used in links.
        plot_path (`str`): Path of the plot relative to the card.
        examples_per_round (`int`): Generated examples shown per round.
        top_classes (`int`): Classes shown in the per-class table.
        dataset_published (`bool`): Whether the generated rows go to ``dataset_repo_id`` (else they stay local).
    """

    model_name: str
    model_repo_id: str
    dataset_repo_id: str
    label_names: list[str]
    rounds: list[dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    teacher: dict[str, Any] = field(default_factory=dict)
    is_simulation: bool = False
    best_round: int | None = None
    stop_reason: str | None = None
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    student_latency: dict[str, Any] | None = None
    base_model: str | None = None
    source_datasets: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    weights_note: str = ""
    endpoint: str = "https://huggingface.co"
    plot_path: str = PLOT_FILE
    examples_per_round: int = 3
    top_classes: int = 10
    dataset_published: bool = True
    baseline: dict[str, Any] | None = None  # the teacher's effect against a same-run baseline (baseline.py)

    @property
    def model_url(self) -> str:
        return f"{self.endpoint}/{self.model_repo_id}"

    @property
    def dataset_url(self) -> str:
        return f"{self.endpoint}/datasets/{self.dataset_repo_id}"

    @property
    def teacher_text(self) -> str:
        info = public_description(self.teacher)
        name = info.get("model") or info.get("model_id") or info.get("name") or "teacher"
        where = info.get("host") or info.get("endpoint") or info.get("base_url") or info.get("url")
        text = f"{code_span(name)} ({escape_markdown_cell(info.get('type', 'Teacher'), 60)}"
        if where and where != name:
            text += f", served at {code_span(where)}"
        text += ")"
        if self.is_simulation:
            text += ", a **simulation** (real held-back examples, no LLM)"
        return text


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
        if r.get("skipped"):
            notes.append(f"- Round {r['round']}: no request ({escape_markdown_cell(r['skipped'], 300)}).")
        if r.get("cancelled") or r.get("in_flight"):
            notes.append(
                f"- Round {r['round']}: {escape_markdown_cell(r.get('cancelled') or 'still in flight', 300)}."
            )
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


def latency_section(inputs: CardInputs) -> str:
    """Student latency beside the teacher's measured latency per sample, and their ratio."""
    teacher = teacher_latency(inputs.rounds, inputs.answers)
    student = inputs.student_latency
    lines = []
    if student and student.get("skipped"):
        lines.append(
            f"- **Student:** not measured: {student['skipped']}. Time it after loading the saved model on one device."
        )
        student = None
    elif student:
        lines.append(
            f"- **Student:** {student['ms_per_sample']:.3f} ms per sample, measured on {student['samples']} "
            f"evaluation samples in batches of {student['batch_size']} on `{student['device']}`."
        )
    else:
        lines.append("- **Student:** not measured.")
    if teacher["ms_per_sample"] is not None:
        lines.append(
            f"- **Teacher:** {teacher['ms_per_sample']:.3f} ms per accepted sample ({teacher['total_s']:.2f} s over "
            f"{teacher['accepted']} accepted samples; from {teacher['source']})."
        )
    else:
        lines.append("- **Teacher:** no accepted sample, no latency.")
    if student and teacher["ms_per_sample"] is not None and student["ms_per_sample"] > 0:
        ratio = teacher["ms_per_sample"] / student["ms_per_sample"]
        lines.append(
            f"- **Ratio (teacher / student time per sample):** **{ratio:,.3g}x** (PGKD reports "
            f"{PGKD_REPORTED_SPEEDUP}x for a BERT-base student against a Claude 3 Sonnet teacher)."
        )
        if inputs.is_simulation:
            lines.append(
                "- The teacher here is a **simulation** that hands out held-back real examples instead of generating "
                "them: its latency, and therefore this ratio, is **not meaningful**."
            )
    return "\n".join(lines)


def summary_section(inputs: CardInputs) -> str:
    rounds = inputs.rounds
    generated = [r for r in rounds if r.get("generated")]
    lines = [
        f"- **Rounds:** {len(rounds)} evaluations, {len(generated)} with teacher requests.",
        f"- **Generated rows accepted:** {sum(int(r.get('accepted', 0)) for r in generated)} of "
        f"{sum(int(r.get('requested', 0)) for r in generated)} requested.",
        f"- **Teacher tokens:** {sum(int(r.get('tokens_in', 0)) for r in rounds)} in, "
        f"{sum(int(r.get('tokens_out', 0)) for r in rounds)} out.",
    ]
    if _cost_shown(inputs):
        lines.append(f"- **Cost:** {sum(float(r.get('cost') or 0.0) for r in rounds):.4f}")
    if rounds:
        first, last = rounds[0], rounds[-1]
        lines.append(
            f"- **Validation:** accuracy {first['accuracy']:.4f} → {last['accuracy']:.4f}, macro-F1 "
            f"{first['macro_f1']:.4f} → {last['macro_f1']:.4f} (round {first['round']} → {last['round']})."
        )
    if inputs.best_round is not None:
        best = next((r for r in rounds if r["round"] == inputs.best_round), None)
        if best is not None:
            lines.append(
                f"- **Best round:** {best['round']} (step {best.get('global_step')}), "
                f"{best.get('metric', 'macro_f1')} = {best.get('metric_value', 0.0):.4f}."
            )
    if inputs.stop_reason:
        lines.append(f"- **Stopped early:** {escape_markdown_cell(inputs.stop_reason, 300)}.")
    if inputs.weights_note:
        lines.append(f"- **Weights in this repository:** {inputs.weights_note}")
    if inputs.baseline:
        lines.append(f"- **{effect_text(inputs.baseline)}**")
    return "\n".join(lines)


def teacher_section(inputs: CardInputs) -> str:
    info = public_description(inputs.teacher)
    lines = [f"- **Teacher:** {inputs.teacher_text}"]
    for key, value in info.items():
        if key in ("name", "type", "simulation") or value is None or isinstance(value, (dict, list)):
            continue
        lines.append(f"- {code_span(key, 60)}: {escape_markdown_cell(value, 200)}")
    if inputs.is_simulation:
        lines.append(
            "- This run used a **simulation** teacher: it answers requests with real, held-back examples of the "
            "requested class. It shows what the request policy does, not what an LLM would write."
        )
    return "\n".join(lines)


def config_table(inputs: CardInputs) -> str:
    rows = [
        [code_span(k, 60), escape_markdown_cell(v, 100)]
        for k, v in inputs.config.items()
        if k not in _CONFIG_SKIP and (v is None or isinstance(v, (str, int, float, bool)))
    ]
    return _table(["Setting", "Value"], rows) if rows else "_Defaults._"


def dataset_section(inputs: CardInputs) -> str:
    n = len(inputs.rows)
    if not n:
        return "No generated row was accepted, so no dataset was published."
    if not inputs.dataset_published:
        return (
            f"The {n} accepted generated rows (text, label, round, reason, teacher) are in this repository under "
            f"`activekd/` (`{GENERATED_FILE}`, `round-NNNN.jsonl`, and `rounds.json` with every round record).\n\n"
            f'```python\nfrom datasets import load_dataset\n\ngenerated = load_dataset("json", '
            f'data_files="activekd/{GENERATED_FILE}", split="train")\n```'
        )
    return (
        f"The {n} accepted generated rows (text, label, round, reason, teacher) are published as "
        f"[{inputs.dataset_repo_id}]({inputs.dataset_url}) and are in this repository under `activekd/` "
        f"(`round-NNNN.jsonl`, `{GENERATED_FILE}`, and `rounds.json` with every round record).\n\n"
        f'```python\nfrom datasets import load_dataset\n\ngenerated = load_dataset("{inputs.dataset_repo_id}", '
        f'split="train")\n```'
    )


def reproduce_section(inputs: CardInputs) -> str:
    defaults = {}
    try:
        from .config import ActiveKDConfig

        defaults = ActiveKDConfig().to_dict()
    except Exception:  # noqa: BLE001 - the snippet then lists every setting
        pass
    always = ("samples_per_round", "allocation", "patience", "max_rounds", "mix_mode", "metric_for_rounds")
    settings = [
        f"    {k}={v!r},"
        for k, v in inputs.config.items()
        if k not in _CONFIG_SKIP
        and (v is None or isinstance(v, (str, int, float, bool)))
        and (k in always or defaults.get(k, object()) != v)
    ]
    teacher_type = str(public_description(inputs.teacher).get("type") or "PoolTeacher")
    training = ", ".join(f"{k}={v!r}" for k, v in inputs.training.items())
    return (
        "```python\n"
        "from transformers import Trainer, TrainingArguments\n"
        f"from hf_activekd import ActiveKDCallback, ActiveKDConfig, {teacher_type}\n\n"
        f"teacher = {teacher_type}(...)  # {inputs.teacher_text.split(' (')[0].strip('`')}\n"
        "config = ActiveKDConfig(\n" + "\n".join(settings) + "\n)\n"
        f'args = TrainingArguments("{inputs.model_name}", {training})\n'
        "trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=validation)\n"
        "trainer.add_callback(ActiveKDCallback(trainer, teacher=teacher, config=config))\n"
        "trainer.train()\n"
        "trainer.push_to_hub()  # this card, the plot, and the generated dataset\n"
        "```\n\n"
        "Every round's requests, accepted rows and reasons are in `activekd/` of this repository; with the same "
        "teacher answers (`activekd/answers.jsonl` is replayed on resume) the rounds are reproducible."
    )


def eval_results(inputs: CardInputs) -> list[EvalResult]:
    """``model-index`` entries: accuracy and macro-F1 at the final evaluation and at the best round."""
    if not inputs.rounds:
        return []
    final = inputs.rounds[-1]
    best = next((r for r in inputs.rounds if r["round"] == inputs.best_round), None)
    dataset_type = inputs.source_datasets[0] if inputs.source_datasets else "custom"
    common = {
        "task_type": "text-classification",
        "task_name": "Text Classification",
        "dataset_type": dataset_type,
        "dataset_name": f"{dataset_type} (validation)" if inputs.source_datasets else "validation set",
        "dataset_split": "validation",
    }
    results = []
    for label, record in (("final", final), (f"best, round {best['round']}" if best else None, best)):
        if record is None or label is None:
            continue
        results.append(
            EvalResult(
                metric_type="accuracy",
                metric_value=float(record["accuracy"]),
                metric_name=f"Accuracy ({label})",
                **common,
            )
        )
        results.append(
            EvalResult(
                metric_type="f1",
                metric_value=float(record["macro_f1"]),
                metric_name=f"Macro-F1 ({label})",
                metric_config="macro",
                **common,
            )
        )
    return results


def model_card_data(inputs: CardInputs, existing: ModelCardData | None = None) -> ModelCardData:
    """Card metadata: library, base model, tags, datasets, and the model-index (merged into ``existing``)."""
    data = existing if existing is not None else ModelCardData()
    data.library_name = data.library_name or "transformers"
    if inputs.base_model:
        data.base_model = inputs.base_model
    tags = list(data.tags or [])
    data.tags = tags + [t for t in TAGS if t not in tags]
    datasets = data.datasets if isinstance(data.datasets, list) else ([data.datasets] if data.datasets else [])
    published = inputs.rows and inputs.dataset_published
    wanted = list(inputs.source_datasets) + ([inputs.dataset_repo_id] if published else [])
    data.datasets = list(dict.fromkeys([*datasets, *wanted])) or None
    results = eval_results(inputs)
    if results:
        data.eval_results = results
        data.model_name = inputs.model_name
    if getattr(data, "pipeline_tag", None) is None:
        data.pipeline_tag = "text-classification"
    return data


def build_model_card(inputs: CardInputs, secrets: Sequence[str] = ()) -> ModelCard:
    """The standalone model card, rendered from the package template."""
    rounds_text, notes = rounds_table(inputs)
    intro = (
        f"A text classifier over {len(inputs.label_names)} classes, trained with active knowledge distillation from "
        f"{inputs.teacher_text}."
    )
    if inputs.base_model:
        intro += f" Fine-tuned from [{inputs.base_model}]({inputs.endpoint}/{inputs.base_model})."
    card = ModelCard.from_template(
        model_card_data(inputs),
        template_path=str(MODEL_CARD_TEMPLATE),
        model_name=inputs.model_name,
        intro=intro,
        summary=summary_section(inputs),
        teacher_section=teacher_section(inputs),
        config_table=config_table(inputs),
        rounds_table=rounds_text,
        rounds_notes=notes,
        plot_path=inputs.plot_path,
        per_class_table=per_class_table(inputs),
        examples_section=examples_section(inputs),
        latency_section=latency_section(inputs),
        dataset_section=dataset_section(inputs),
        reproduce_section=reproduce_section(inputs),
    )
    return ModelCard(redact(str(card), secrets))


def _block(text: str) -> str | None:
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(BLOCK_END)]


def merge_model_card(existing: ModelCard | None, ours: ModelCard, inputs: CardInputs) -> ModelCard:
    """Put the distillation block and metadata of ``ours`` into ``existing`` (e.g. the Trainer's card).

    An earlier block is replaced in place; otherwise the block goes before ``## Model description`` (the Trainer's
    boilerplate) or at the end.
    """
    if existing is None:
        return ours
    block = _block(ours.text) or ""
    text = existing.text
    old = _block(text)
    if old is not None:
        text = text.replace(old, block)
    elif "## Model description" in text:
        text = text.replace("## Model description", block + "\n\n## Model description", 1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    if not inputs.base_model:  # the Trainer's wording for a model with an empty name_or_path
        text = re.sub(
            r"This model is a fine-tuned version of \[\]\([^)]*\)", "This model was trained from scratch", text
        )
    text = text.replace(" on the None dataset.", " on an unknown dataset.")
    existing.data = model_card_data(inputs, existing.data)
    existing.text = text
    return existing


# ---------------------------------------------------------------------------------------------------- dataset
def generated_dataset(rows: Sequence[Mapping[str, Any]], label_names: Sequence[str]):
    """A `datasets.Dataset` of the accepted rows: ``text``, ``label`` (a ClassLabel), ``round``, ``reason``,
    ``teacher``, ``origin`` (``generated`` or ``annotated``)."""
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features(
        {
            "text": Value("string"),
            "label": ClassLabel(names=list(label_names)),
            "round": Value("int32"),
            "reason": Value("string"),
            "teacher": Value("string"),
            "origin": Value("string"),  # generated by the teacher, or a text of yours it annotated
        }
    )
    index = {n: i for i, n in enumerate(label_names)}
    columns: dict[str, list] = {c: [] for c in DATASET_COLUMNS}
    for row in rows:
        if row.get("label") not in index:
            continue
        columns["text"].append(str(row["text"]))
        columns["label"].append(index[row["label"]])
        columns["round"].append(int(row.get("round", 0)))
        columns["reason"].append(str(row.get("reason", "")))
        columns["teacher"].append(str(row.get("teacher", "")))
        columns["origin"].append(str(row.get("origin", "generated")))
    return Dataset.from_dict(columns, features=features)


def build_dataset_card(
    inputs: CardInputs,
    existing: DatasetCardData | None = None,
    secrets: Sequence[str] = (),
    data_files: str = "data/train-*",
) -> DatasetCard:
    """The dataset card of the generated data (``annotations_creators: machine-generated``, counts, model link).

    ``existing`` is the card ``Dataset.push_to_hub`` wrote (its ``configs`` and ``dataset_info`` are kept); without
    it, ``configs`` points at ``data_files``.
    """
    data = existing if existing is not None else DatasetCardData()
    if not getattr(data, "configs", None):
        data.configs = [{"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}]
    data.annotations_creators = ["machine-generated"]
    data.language_creators = ["machine-generated"]
    data.source_datasets = list(inputs.source_datasets) or None
    data.task_categories = ["text-classification"]
    data.size_categories = [_size_category(len(inputs.rows))]
    data.pretty_name = f"{inputs.model_name} active distillation data"
    tags = list(getattr(data, "tags", None) or [])
    data.tags = tags + [t for t in TAGS if t not in tags]
    by_class = Counter(row["label"] for row in inputs.rows)
    by_round = Counter(int(row.get("round", 0)) for row in inputs.rows)
    reasons_by_round: dict[int, Counter] = {}
    for row in inputs.rows:
        kind = "confusion" if str(row.get("reason", "")).startswith("confused") else "weak class"
        reasons_by_round.setdefault(int(row.get("round", 0)), Counter())[kind] += 1
    class_rows = [[escape_markdown_cell(n, 60), by_class.get(n, 0)] for n in inputs.label_names]
    round_rows = []
    for record in inputs.rounds:
        if not record.get("generated"):
            continue
        kinds = reasons_by_round.get(record["round"], Counter())
        round_rows.append(
            [
                record["round"],
                record.get("global_step", "–"),
                record.get("requested", 0),
                by_round.get(record["round"], 0),
                escape_markdown_cell(_dropped_text(record.get("dropped")), 200),
                ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "–",
            ]
        )
    note = ""
    if inputs.is_simulation:
        note = (
            "\n> The teacher of this run was a **simulation**: rows are real held-back examples handed out by the "
            "request policy, not text written by an LLM.\n"
        )
    card = DatasetCard.from_template(
        data,
        template_path=str(DATASET_CARD_TEMPLATE),
        pretty_name=data.pretty_name,
        model_link=f"[{inputs.model_repo_id}]({inputs.model_url})",
        teacher_text=inputs.teacher_text,
        num_rows=len(inputs.rows),
        num_rounds=len(by_round),
        label_names_text=", ".join(f"{i}: {escape_markdown_cell(n, 40)}" for i, n in enumerate(inputs.label_names)),
        class_table=_table(["Class", "Rows"], class_rows),
        round_table=_table(["Round", "Step", "Requested", "Accepted", "Dropped", "Requested because"], round_rows)
        if round_rows
        else "_No round._",
        load_snippet=f'load_dataset("{inputs.dataset_repo_id}", split="train")'
        if inputs.dataset_published
        else f'load_dataset("json", data_files="{GENERATED_FILE}", split="train")',
        simulation_note=note,
    )
    return DatasetCard(redact(str(card), secrets))


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


# ---------------------------------------------------------------------------------------------------- publisher
def _base_model_of(model) -> str | None:
    """The Hub id the model was loaded from, when it is one (not empty, not a local folder)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None) or ""
    name = str(name).strip()
    if not name or os.path.exists(name):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _source_datasets_of(*datasets) -> list[str]:
    generic = {None, "", "generator", "arrow", "json", "csv", "pandas", "parquet", "text", "dict", "default"}
    out = []
    for dataset in datasets:
        info = getattr(dataset, "info", None)
        name = getattr(info, "dataset_name", None)
        if name not in generic and name not in out:
            out.append(str(name))
    return out


class ActiveKDPublisher:
    """Writes and publishes the model card, plot and generated dataset of an :class:`~hf_activekd.ActiveKDCallback`.

    Created by the callback; see the module docstring for when each part runs.

    Args:
        callback (`ActiveKDCallback`): The callback (gives the trainer, teacher, config, label names and rounds).
        dataset_repo_id (`str`, *optional*): Dataset repo of the generated data; defaults to
            ``<model repo>-activekd-data``.
        push_dataset (`bool`, defaults to `True`): Push the generated data when the model is pushed.
        source_datasets (`list[str]`, *optional*): Hub ids of the user's datasets for the card metadata; inferred from
            the train and eval datasets where they carry a name.
        measure_latency (`bool`, defaults to `True`): Measure the student's inference latency for the card.
    """

    def __init__(
        self,
        callback,
        dataset_repo_id: str | None = None,
        push_dataset: bool = True,
        source_datasets: Sequence[str] | None = None,
        measure_latency: bool = True,
    ):
        self.callback = callback
        self.dataset_repo_id = dataset_repo_id
        self.push_dataset_enabled = push_dataset
        self.source_datasets = list(source_datasets) if source_datasets is not None else None
        self.measure_latency = measure_latency
        self.student_latency: dict[str, Any] | None = None
        self.last_push_error: str | None = None
        self.pushed_dataset_repo: str | None = None
        self._pushed_signature: tuple | None = None
        self._push_pending = False
        self.baseline: dict[str, Any] | None = None  # set by `hf-activekd distill --baseline` (see baseline.py)

    @property
    def trainer(self):
        return self.callback.trainer

    # ------------------------------------------------------------------ hooks
    def install(self) -> None:
        """Wrap ``trainer.create_model_card`` on the instance and tag the model (idempotent).

        Called when training begins. The wrapper adds the rounds to the card only while the callback is registered
        with the trainer (``trainer.callback_handler.callbacks``); once it is removed, it passes through.
        """
        trainer = self.trainer
        model = trainer.model
        if hasattr(model, "add_model_tags"):
            try:
                model.add_model_tags(list(TAGS))
            except Exception as exc:  # noqa: BLE001 - tags are a nicety
                logger.debug("add_model_tags failed: %s", exc)
        if getattr(trainer.create_model_card, "_activekd_publisher", None) is self:
            return
        original = trainer.create_model_card

        @functools.wraps(original)
        def create_model_card(*args, **kwargs):
            result = original(*args, **kwargs)
            if self.is_main and self.registered:
                self.write_card(model_name=kwargs.get("model_name"))
                if self._push_pending:
                    self._push_pending = False
                    self.push_dataset()
            return result

        create_model_card._activekd_publisher = self
        trainer.create_model_card = create_model_card

    @property
    def registered(self) -> bool:
        """Whether the callback is (still) one of the trainer's callbacks."""
        handler = getattr(self.trainer, "callback_handler", None)
        return any(cb is self.callback for cb in getattr(handler, "callbacks", ()))

    @property
    def is_main(self) -> bool:
        trainer = self.trainer
        return bool(trainer.is_world_process_zero() and trainer.args.should_save)

    def on_push_begin(self) -> None:
        """Before every push (``push_to_hub`` and checkpoint pushes): write the files, push the data."""
        if not self.is_main:
            return
        try:
            self.write_all()
        except Exception:  # noqa: BLE001 - a checkpoint push must not end training
            logger.exception("ActiveKD could not write the model card and data into %s.", self.output_dir)
        if getattr(self.trainer, "hub_model_id", None):
            self.push_dataset()
        else:  # push_to_hub creates the repo after this hook: push from create_model_card
            self._push_pending = True

    def on_train_end(self) -> None:
        """Write the card, plot and data into ``output_dir`` (whether or not anything is pushed)."""
        if self.is_main:
            self.student_latency = None  # measure the final weights
            try:
                self.write_all()
            except Exception:  # noqa: BLE001 - training is over: report, do not lose the run
                logger.exception("ActiveKD could not write the model card and data into %s.", self.output_dir)

    # ------------------------------------------------------------------ inputs
    def model_repo_id(self) -> str:
        trainer = self.trainer
        repo = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id
        return repo or Path(trainer.args.output_dir).absolute().name

    def resolved_dataset_repo_id(self) -> str:
        return self.dataset_repo_id or f"{self.model_repo_id()}-activekd-data"

    def _secrets(self) -> list[str]:
        return known_secrets([getattr(self.trainer.args, "hub_token", None)])

    def _measure(self) -> dict[str, Any] | None:
        if not self.measure_latency:
            return None
        if self.student_latency is None:
            trainer, callback = self.trainer, self.callback
            sharding = sharding_of(trainer)
            if sharding is not None:  # a forward pass here, on the main process alone, would hang the others
                self.student_latency = {"skipped": f"the model is sharded across processes ({sharding})"}
                return self.student_latency
            dataset = trainer.eval_dataset
            if isinstance(dataset, dict):
                dataset = dataset[callback.eval_key or next(iter(dataset))]
            try:
                self.student_latency = measure_student_latency(
                    trainer.model, dataset, trainer.data_collator, trainer.args.per_device_eval_batch_size
                )
            except Exception as exc:  # noqa: BLE001 - a card without a latency is still a card
                logger.warning("ActiveKD could not measure the student's latency: %s", exc)
        return self.student_latency

    def inputs(self, model_name: str | None = None) -> CardInputs:
        """Collect everything the cards are built from."""
        from huggingface_hub import constants

        trainer, callback = self.trainer, self.callback
        runner = callback.runner
        args = trainer.args
        repo_id = self.model_repo_id()
        rounds = list(runner.rounds) if runner is not None else []
        rows = list(runner.pool.rows()) if runner is not None else []
        answers = runner.answers() if runner is not None else {}
        best_round = runner.best_round if runner is not None else None
        if args.load_best_model_at_end and getattr(trainer.state, "best_model_checkpoint", None):
            checkpoint = Path(trainer.state.best_model_checkpoint).name
            weights = f"the Trainer's best checkpoint by `{args.metric_for_best_model}` ({checkpoint}"
            at = [r["round"] for r in rounds if f"checkpoint-{r.get('global_step')}" == checkpoint]
            weights += f", the evaluation of round {at[0]}" if at else ""
            weights += "), loaded at the end of training."
        else:
            weights = f"the weights at the end of training (step {trainer.state.global_step})"
            if best_round is not None and rounds and best_round != rounds[-1]["round"]:
                weights += (
                    f"; the best round ({best_round}) came earlier, set `load_best_model_at_end=True` to publish "
                    "its checkpoint instead"
                )
            weights += "."
        training = {
            "eval_strategy": str(getattr(args.eval_strategy, "value", args.eval_strategy)),
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "seed": args.seed,
        }
        if training["eval_strategy"] == "steps":
            training["eval_steps"] = args.eval_steps
        if args.max_steps and args.max_steps > 0:
            training["max_steps"] = args.max_steps
        else:
            training["num_train_epochs"] = args.num_train_epochs
        try:
            describe = dict(callback.teacher.describe())
        except Exception:  # noqa: BLE001
            describe = {"name": getattr(callback.teacher, "name", "teacher"), "type": type(callback.teacher).__name__}
        sources = self.source_datasets
        if sources is None:
            sources = _source_datasets_of(trainer.train_dataset, trainer.eval_dataset)
        return CardInputs(
            model_name=model_name or repo_id.split("/")[-1],
            model_repo_id=repo_id,
            dataset_repo_id=self.resolved_dataset_repo_id(),
            label_names=list(callback.label_names),
            rounds=rounds,
            rows=rows,
            config=callback.config.to_dict(),
            teacher=describe,
            is_simulation=bool(getattr(callback.teacher, "is_simulation", False)),
            best_round=best_round,
            stop_reason=runner.stop_reason if runner is not None else None,
            answers=answers,
            student_latency=self._measure(),
            base_model=_base_model_of(trainer.model),
            source_datasets=list(sources),
            training=training,
            weights_note=weights,
            endpoint=_redact_url(constants.ENDPOINT).rstrip("/"),
            dataset_published=self.push_dataset_enabled,
            baseline=self.baseline,
        )

    # ------------------------------------------------------------------ writing
    @property
    def output_dir(self) -> Path:
        return Path(self.trainer.args.output_dir)

    def write_card(self, model_name: str | None = None, inputs: CardInputs | None = None) -> Path:
        """Write ``README.md`` (merged into the existing card, if any) and the plot into ``output_dir``."""
        inputs = inputs or self.inputs(model_name)
        out = self.output_dir
        out.mkdir(parents=True, exist_ok=True)
        if inputs.rounds:
            plot_rounds(inputs.rounds, out / PLOT_FILE, inputs.best_round)
        secrets = self._secrets()
        ours = build_model_card(inputs, secrets)
        path = out / "README.md"
        existing = ModelCard.load(path) if path.exists() else None
        card = merge_model_card(existing, ours, inputs)
        path.write_text(redact(str(card), secrets), encoding="utf-8")
        return path

    def write_data(self, inputs: CardInputs | None = None) -> tuple[Path, Path]:
        """Write ``activekd/generated.jsonl`` (every accepted row) and ``activekd/dataset_card.md``."""
        inputs = inputs or self.inputs()
        folder = self.output_dir / self.callback.config.output_subdir
        folder.mkdir(parents=True, exist_ok=True)
        secrets = self._secrets()
        data_path = folder / GENERATED_FILE
        lines = [json.dumps({c: row.get(c) for c in DATASET_COLUMNS}, ensure_ascii=False) for row in inputs.rows]
        data_path.write_text(redact("\n".join(lines) + ("\n" if lines else ""), secrets), encoding="utf-8")
        card_path = folder / DATASET_CARD_FILE
        card = build_dataset_card(inputs, secrets=secrets, data_files=GENERATED_FILE)
        card_path.write_text(str(card), encoding="utf-8")
        return data_path, card_path

    def write_all(self, model_name: str | None = None) -> CardInputs:
        inputs = self.inputs(model_name)
        self.write_card(inputs=inputs)
        self.write_data(inputs)
        return inputs

    # ------------------------------------------------------------------ pushing
    def push_dataset(self, inputs: CardInputs | None = None) -> str | None:
        """Push the accepted rows and their card to the dataset repo (private when the model repo is private, see
        :mod:`hf_activekd.privacy`).

        Skipped when disabled, when there is no row, or when nothing changed since the last push. Failures are logged
        (and kept in :attr:`last_push_error`), never raised, so that a checkpoint push does not end training.
        """
        if not self.push_dataset_enabled or not self.is_main:
            return None
        inputs = inputs or self.inputs()
        if not inputs.rows:
            logger.info("ActiveKD: no generated row yet; no dataset pushed.")
            return None
        signature = (len(inputs.rows), len(inputs.rounds), inputs.model_repo_id)
        if signature == self._pushed_signature:
            return self.pushed_dataset_repo
        args = self.trainer.args
        repo_id = inputs.dataset_repo_id
        try:
            # never more public than the model: ask the Hub how visible the model repo really is (see privacy.py)
            visibility = dataset_visibility(inputs.model_repo_id, args.hub_token, args.hub_private_repo)
            check_existing_dataset(repo_id, args.hub_token, visibility)
            dataset = generated_dataset(inputs.rows, inputs.label_names)
            dataset.push_to_hub(
                repo_id,
                private=visibility.private,
                token=args.hub_token,
                commit_message=f"ActiveKD data: {len(inputs.rows)} rows after round {inputs.rounds[-1]['round']}",
            )
            self._push_dataset_card(inputs, repo_id)
        except Exception as exc:  # noqa: BLE001 - see docstring
            self.last_push_error = redact(f"{type(exc).__name__}: {exc}", self._secrets())
            logger.error("ActiveKD could not push the generated data to %s: %s", repo_id, self.last_push_error)
            return None
        self.last_push_error = None
        self._pushed_signature = signature
        self.pushed_dataset_repo = repo_id
        logger.info("ActiveKD pushed %d generated rows to the dataset %s.", len(inputs.rows), repo_id)
        return repo_id

    def _push_dataset_card(self, inputs: CardInputs, repo_id: str) -> None:
        """Replace the README that ``Dataset.push_to_hub`` wrote, keeping its ``configs`` and ``dataset_info``."""
        from huggingface_hub import HfApi

        args = self.trainer.args
        api = HfApi(token=args.hub_token)
        existing = None
        with tempfile.TemporaryDirectory() as cache:
            try:
                path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", cache_dir=cache)
                existing = DatasetCard.load(path).data
            except Exception as exc:  # noqa: BLE001 - write a card without the loader metadata then
                logger.warning("ActiveKD could not read the dataset card written by datasets: %s", exc)
        card = build_dataset_card(inputs, existing, secrets=self._secrets())
        api.upload_file(
            path_or_fileobj=str(card).encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="ActiveKD dataset card",
        )
