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

The modules: :mod:`.constants` (templates, tags, file names), :mod:`.markdown` (cells, code spans, tables),
:mod:`.inputs` (:class:`CardInputs`), :mod:`.tables` and :mod:`.sections` (the model card's content),
:mod:`.model_card`, :mod:`.dataset_card`, :mod:`.plot`, :mod:`.latency`, and the publishing side:
:mod:`.trainer_inputs` (what the Trainer gives the cards), :mod:`.dataset_push` and :mod:`.publisher`
(:class:`ActiveKDPublisher`). Redaction lives in :mod:`hf_activekd.redaction`.
"""

# ruff: noqa: F401 - private names too are re-exported for the old ``hf_activekd.card`` import path
from ..redaction import _HF_TOKEN, _SECRET_KEY, _URL, _redact_url, known_secrets, public_description, redact
from .constants import (
    BLOCK_END,
    BLOCK_START,
    DATASET_CARD_FILE,
    DATASET_CARD_TEMPLATE,
    DATASET_COLUMNS,
    GENERATED_FILE,
    MODEL_CARD_TEMPLATE,
    PLOT_FILE,
    TAGS,
    TEMPLATES,
    with_tags,
)
from .dataset_card import _size_category, build_dataset_card, generated_dataset
from .inputs import CardInputs
from .latency import measure_student_latency, teacher_latency
from .markdown import _fmt, _table, code_span, escape_markdown_cell
from .model_card import _block, build_model_card, eval_results, merge_model_card, model_card_data
from .plot import plot_rounds
from .publisher import ActiveKDPublisher
from .sections import (
    PGKD_REPORTED_SPEEDUP,
    dataset_section,
    latency_section,
    reproduce_section,
    summary_section,
    teacher_section,
)
from .tables import (
    _CONFIG_SKIP,
    _agreement_text,
    _cost_shown,
    _dropped_text,
    card_settings,
    config_table,
    eval_loss_of,
    examples_section,
    per_class_table,
    rounds_table,
)
from .trainer_inputs import _base_model_of, _source_datasets_of

__all__ = [
    "ActiveKDPublisher",
    "CardInputs",
    "build_dataset_card",
    "build_model_card",
    "code_span",
    "escape_markdown_cell",
    "generated_dataset",
    "known_secrets",
    "measure_student_latency",
    "merge_model_card",
    "model_card_data",
    "plot_rounds",
    "public_description",
    "redact",
    "teacher_latency",
]
