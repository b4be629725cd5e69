"""The checks of an :class:`~hf_activekd.ActiveKDConfig`'s values, run when it is built: every problem at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .quality import QUALITY_CHECKS

if TYPE_CHECKING:
    from .config import ActiveKDConfig

SOURCES = ("generate", "annotate", "both")
ANNOTATE_STRATEGIES = ("guided", "margin", "random")


def config_errors(config: ActiveKDConfig) -> list[str]:
    """What is wrong with ``config``, one message per problem (empty: nothing)."""
    errors = []
    if config.samples_per_round < 1:
        errors.append(f"samples_per_round must be >= 1, got {config.samples_per_round}")
    if config.samples_per_request < 1:
        errors.append(f"samples_per_request must be >= 1, got {config.samples_per_request}")
    if config.allocation not in ("guided", "uniform"):
        errors.append(f"allocation must be 'guided' or 'uniform', got {config.allocation!r}")
    if not 0.0 <= config.allocation_floor <= 1.0:
        errors.append(f"allocation_floor must be in [0, 1], got {config.allocation_floor}")
    if config.mix_mode not in ("append", "replace"):
        errors.append(f"mix_mode must be 'append' or 'replace', got {config.mix_mode!r}")
    if config.mix_mode == "replace" and not config.truncate_generated_rows:
        errors.append(
            "mix_mode='replace' keeps batch shapes fixed and always cuts generated rows: "
            "truncate_generated_rows=False needs mix_mode='append'"
        )
    if config.report_classes not in ("targeted", "full"):
        errors.append(f"report_classes must be 'targeted' or 'full', got {config.report_classes!r}")
    if config.teacher_on_failure not in ("continue", "raise"):
        errors.append(f"teacher_on_failure must be 'continue' or 'raise', got {config.teacher_on_failure!r}")
    if not config.harm_delta >= 0:
        errors.append(f"harm_delta must be >= 0, got {config.harm_delta}")
    if config.on_harm not in ("drop_round", "keep"):
        errors.append(f"on_harm must be 'drop_round' or 'keep', got {config.on_harm!r}")
    if config.verify not in ("none", "teacher"):
        errors.append(f"verify must be 'none' or 'teacher', got {config.verify!r}")
    if config.overlap_policy not in ("wait", "skip"):
        errors.append(f"overlap_policy must be 'wait' or 'skip', got {config.overlap_policy!r}")
    if config.overlap_at_end not in ("wait", "cancel"):
        errors.append(f"overlap_at_end must be 'wait' or 'cancel', got {config.overlap_at_end!r}")
    if config.rows_per_batch < 0:
        errors.append(f"rows_per_batch must be >= 0, got {config.rows_per_batch}")
    if config.max_rounds < 0 or config.patience < 0:
        errors.append("max_rounds and patience must be >= 0")
    if config.min_chars < 1 or config.max_chars < config.min_chars:
        errors.append(f"need 1 <= min_chars <= max_chars, got {config.min_chars} and {config.max_chars}")
    for name in ("num_hard_negatives", "num_correct_examples", "num_misclassified_examples"):
        if getattr(config, name) < 0:
            errors.append(f"{name} must be >= 0")
    if config.label_names is not None and len(set(config.label_names)) != len(config.label_names):
        errors.append("label_names contains duplicates")
    unknown = [c for c in config.quality_checks if c not in QUALITY_CHECKS]
    if unknown:
        errors.append(f"unknown quality_checks {unknown}, valid ones are {list(QUALITY_CHECKS)}")
    if not 0.0 < config.near_duplicate_threshold <= 1.0:
        errors.append(f"near_duplicate_threshold must be in (0, 1], got {config.near_duplicate_threshold}")
    if not 0.0 <= config.min_letter_ratio <= 1.0:
        errors.append(f"min_letter_ratio must be in [0, 1], got {config.min_letter_ratio}")
    if config.source not in SOURCES:
        errors.append(f"source must be one of {list(SOURCES)}, got {config.source!r}")
    if not 0.0 <= config.annotate_share <= 1.0:
        errors.append(f"annotate_share must be in [0, 1], got {config.annotate_share}")
    if config.annotate_strategy not in ANNOTATE_STRATEGIES:
        errors.append(
            f"annotate_strategy must be one of {list(ANNOTATE_STRATEGIES)}, got {config.annotate_strategy!r}"
        )
    if config.max_unlabeled_scored < 1:
        errors.append(f"max_unlabeled_scored must be >= 1, got {config.max_unlabeled_scored}")
    if config.annotate_texts_per_request < 1:
        errors.append(f"annotate_texts_per_request must be >= 1, got {config.annotate_texts_per_request}")
    if config.candidate_factor < 1.0:
        errors.append(f"candidate_factor must be >= 1 (1: keep every candidate), got {config.candidate_factor}")
    if not 0.0 <= config.hard_share <= 1.0:
        errors.append(f"hard_share must be in [0, 1], got {config.hard_share}")
    if config.overlap and config.candidate_factor > 1.0:
        errors.append(
            f"overlap=True does not work with candidate_factor={config.candidate_factor}: the student scores the "
            "candidates at the evaluation, which a background round cannot wait for; use overlap=False or "
            "candidate_factor=1"
        )
    if config.overlap and config.source != "generate":
        errors.append(
            f"overlap=True works with source='generate' only, got source={config.source!r}: annotation has every "
            "process score the unlabeled texts at the evaluation, which a background round cannot do; use "
            "overlap=False to annotate"
        )
    return errors
