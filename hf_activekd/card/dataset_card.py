"""The generated rows as a `datasets.Dataset`, and their dataset card."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from ..redaction import redact
from .constants import DATASET_CARD_TEMPLATE, DATASET_COLUMNS, GENERATED_FILE, with_tags
from .inputs import CardInputs
from .markdown import _table, escape_markdown_cell
from .tables import _dropped_text


def generated_dataset(rows: Sequence[Mapping[str, Any]], label_names: Sequence[str]):
    """A `datasets.Dataset` of the accepted rows: ``text``, ``label`` (a ClassLabel), ``round``, ``reason``,
    ``teacher``."""
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features(
        {
            "text": Value("string"),
            "label": ClassLabel(names=list(label_names)),
            "round": Value("int32"),
            "reason": Value("string"),
            "teacher": Value("string"),
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
    data.tags = with_tags(getattr(data, "tags", None))
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
