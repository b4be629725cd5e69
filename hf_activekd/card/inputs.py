"""What a card is built from: :class:`CardInputs` (no Trainer in it, so cards can be rebuilt from an output folder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..redaction import public_description
from .constants import PLOT_FILE
from .markdown import code_span, escape_markdown_cell


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
