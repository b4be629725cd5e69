"""What the cards write and where: the card templates, the Hub tags, the file names and the block markers."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).parent.parent / "templates"
MODEL_CARD_TEMPLATE = TEMPLATES / "modelcard_template.md"
DATASET_CARD_TEMPLATE = TEMPLATES / "datasetcard_template.md"
TAGS = ["hf-activekd", "knowledge-distillation", "synthetic-data"]
PLOT_FILE = "activekd_rounds.png"
GENERATED_FILE = "generated.jsonl"
DATASET_CARD_FILE = "dataset_card.md"
BLOCK_START = "<!-- hf-activekd:start -->"
BLOCK_END = "<!-- hf-activekd:end -->"
DATASET_COLUMNS = ("text", "label", "round", "reason", "teacher", "origin")


def with_tags(tags: list[str] | None) -> list[str]:
    """``tags`` (kept first, in order) followed by the package's :data:`TAGS` they lack."""
    tags = list(tags or [])
    return tags + [t for t in TAGS if t not in tags]
