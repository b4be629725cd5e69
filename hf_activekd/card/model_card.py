"""The model card: metadata (tags, datasets, model-index), rendering from the template, and merging into an existing
card (the Trainer's) between the block markers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..redaction import redact
from .constants import BLOCK_END, BLOCK_START, MODEL_CARD_TEMPLATE, with_tags
from .inputs import CardInputs
from .sections import dataset_section, latency_section, reproduce_section, summary_section, teacher_section
from .tables import config_table, examples_section, per_class_table, rounds_table


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
    data.tags = with_tags(data.tags)
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
