"""The model card's prose sections: summary, teacher, latency, generated data and how to reproduce."""

from __future__ import annotations

from ..baseline import effect_text
from ..redaction import public_description
from .constants import GENERATED_FILE
from .inputs import CardInputs
from .latency import teacher_latency
from .markdown import code_span, escape_markdown_cell
from .tables import _cost_shown, card_settings

PGKD_REPORTED_SPEEDUP = 130


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
        from ..config import ActiveKDConfig

        defaults = ActiveKDConfig().to_dict()
    except Exception:  # noqa: BLE001 - the snippet then lists every setting
        pass
    always = ("samples_per_round", "allocation", "patience", "max_rounds", "mix_mode", "metric_for_rounds")
    settings = [
        f"    {k}={v!r},"
        for k, v in card_settings(inputs.config).items()
        if k in always or defaults.get(k, object()) != v
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
