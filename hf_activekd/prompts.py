"""Prompts for the teacher in the PGKD spirit: taxonomy, report, examples, hard negatives, and one clear ask."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .metrics import EvalReport

SYSTEM_PROMPT = (
    "You are an expert annotator who writes training data for a small text classifier. "
    "You write realistic, diverse examples that a real user could have written, each clearly belonging to the "
    "requested class. You answer with JSON only."
)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# An example line of build_messages: `- "text"`, `- "text" (predicted: x)` or `- "text" true: x, predicted: y (...)`.
_EXAMPLE_LINE = re.compile(r'^- "(.*)"(?: \(predicted: [^\n]*\)| true: [^\n]*, predicted: [^\n]*)?$', re.MULTILINE)


def prompt_examples(messages: Sequence[dict[str, str]]) -> list[str]:
    """The example texts shown in the user messages of a request built by :func:`build_messages` (long ones are
    clipped and end with ``…``), so that generated copies of them can be dropped."""
    texts = []
    for message in messages:
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            texts += _EXAMPLE_LINE.findall(message["content"])
    return texts


def format_taxonomy(label_names: Sequence[str], descriptions: dict[str, str] | None) -> str:
    descriptions = descriptions or {}
    lines = []
    for name in label_names:
        desc = descriptions.get(name)
        lines.append(f"- {name}: {desc}" if desc else f"- {name}")
    return "\n".join(lines)


def format_report(report: EvalReport, classes: Sequence[int] | None = None) -> str:
    """A compact validation report: overall scores, then one line per class (all, or those in ``classes``)."""
    lines = [f"Overall: accuracy={report.accuracy:.3f}, macro-F1={report.macro_f1:.3f}, n={len(report.labels)}"]
    ids = range(len(report.label_names)) if classes is None else classes
    lines.append("class | precision | recall | F1 | support")
    for i in ids:
        lines.append(
            f"{report.label_names[i]} | {report.precision[i]:.2f} | {report.recall[i]:.2f} | {report.f1[i]:.2f} | "
            f"{int(report.support[i])}"
        )
    return "\n".join(lines)


def build_messages(
    *,
    task_description: str,
    label_names: Sequence[str],
    label_descriptions: dict[str, str] | None,
    report: EvalReport,
    texts: Sequence[str] | None,
    target: int,
    num_samples: int,
    confused_with: int | None,
    num_correct: int,
    num_misclassified: int,
    num_hard_negatives: int,
    report_classes: str = "targeted",
    earlier_samples: Sequence[str] = (),
) -> list[dict[str, str]]:
    """Build the chat messages of one targeted request.

    The request asks for ``num_samples`` examples of class ``target``; when ``confused_with`` is given, the examples
    must be unmistakably ``target`` and not ``confused_with``, and the hard negatives of that pair are shown.
    """
    name = label_names[target]
    parts = [f"Task: {task_description}.", "Classes:", format_taxonomy(label_names, label_descriptions)]

    if report_classes == "full":
        report_ids = None
    else:
        related = [target] + [j for i, j, _ in report.confusions() if i == target][:3]
        related += [i for i, j, _ in report.confusions() if j == target and i not in related][:2]
        report_ids = list(dict.fromkeys(related))
    parts += ["", "The student's validation report:", format_report(report, report_ids)]

    if texts is not None:
        correct = report.correct(target, num_correct)
        if correct:
            parts += ["", f"Examples of '{name}' the student gets right:"]
            parts += [f'- "{_clip(texts[i])}"' for i in correct]
        missed = report.hard_negatives(num_misclassified, true=target)
        if missed:
            parts += ["", f"Examples of '{name}' the student gets wrong:"]
            parts += [f'- "{_clip(texts[i])}" (predicted: {label_names[report.predictions[i]]})' for i in missed]
        if confused_with is not None:
            hard = report.hard_negatives(num_hard_negatives, true=target, predicted=confused_with)
            hard += report.hard_negatives(num_hard_negatives, true=confused_with, predicted=target)
            rank = (lambda i: -report.confidences[i]) if report.has_confidences else (lambda i: i)
            hard = sorted(set(hard), key=rank)[:num_hard_negatives]
        else:
            hard = [
                i
                for i in report.hard_negatives(num_hard_negatives * 3)
                if target in (report.labels[i], report.predictions[i])
            ][:num_hard_negatives]
        if hard and report.has_confidences:
            parts += ["", "Hard negatives (the student was confident and wrong):"]
            parts += [
                f'- "{_clip(texts[i])}" true: {label_names[report.labels[i]]}, predicted: '
                f"{label_names[report.predictions[i]]} (confidence {report.confidences[i]:.2f})"
                for i in hard
            ]
        elif hard:  # a report from class ids: no confidence to show or rank by
            parts += ["", "Hard negatives (the student got them wrong):"]
            parts += [
                f'- "{_clip(texts[i])}" true: {label_names[report.labels[i]]}, predicted: '
                f"{label_names[report.predictions[i]]}"
                for i in hard
            ]
    if earlier_samples:
        parts += ["", "Examples generated earlier for this class (write different ones):"]
        parts += [f'- "{_clip(t, 150)}"' for t in earlier_samples]

    ask = f"Write {num_samples} new, diverse examples of the class '{name}'"
    if confused_with is not None:
        ask += (
            f" that the student would otherwise confuse with '{label_names[confused_with]}': each must clearly "
            f"belong to '{name}' and not to '{label_names[confused_with]}'"
        )
    ask += (
        ". Vary length, wording and situation; do not copy the examples above; do not mention the class name. "
        'Answer with JSON: {"examples": [{"text": "...", "label": "' + name + '"}, ...]}.'
    )
    parts += ["", ask]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(parts)}]
