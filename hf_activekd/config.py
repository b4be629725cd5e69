"""Configuration of active distillation rounds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .config_checks import ANNOTATE_STRATEGIES, SOURCES, config_errors
from .quality import QUALITY_CHECKS

__all__ = ["ANNOTATE_STRATEGIES", "SOURCES", "ActiveKDConfig"]


@dataclass
class ActiveKDConfig:
    r"""
    Configuration of :class:`~hf_activekd.ActiveKDCallback` and :class:`~hf_activekd.ActiveKDDataCollator`.

    Parsable by `transformers.HfArgumentParser` (every field has a ``help``), so it can come from command-line flags,
    a JSON or a YAML file.

    Parameters:
        text_column (`str`, *optional*, defaults to `"text"`):
            Column of the raw text in the train and eval datasets (kept beside the tokenized columns; the Trainer drops
            it from batches by itself).
        label_column (`str`, *optional*, defaults to `"label"`):
            Column of the class in the datasets: integer class ids (the Trainer needs ids in batches), in the order of
            the label names. Map names to ids first (``dataset.class_encode_column`` or ``dataset.map`` with the
            model's ``label2id``); a `datasets.ClassLabel` column must have the label names in the same order. (The
            ``hf-activekd distill`` command reads names, ids or a ClassLabel from its files and encodes them itself.)
        label_names (`list[str]`, *optional*):
            Class names by id, shown to the teacher. Defaults to ``model.config.id2label``; when both are set they must
            agree. Required when the model has transformers' default names (``LABEL_0``, ``LABEL_1``, ...).
        label_descriptions (`dict[str, str]`, *optional*):
            Optional one-line description per class name, shown to the teacher in the taxonomy.
        task_description (`str`, *optional*, defaults to `"text classification"`):
            One sentence about the task, shown to the teacher.
        samples_per_round (`int`, *optional*, defaults to `64`):
            How many new samples are requested from the teacher per round (summed over classes).
        samples_per_request (`int`, *optional*, defaults to `8`):
            Largest number of samples asked for in one request. Small, targeted requests suit weak teachers.
        allocation (`str`, *optional*, defaults to `"guided"`):
            How the round's budget is split over classes: ``"guided"`` gives more to classes with low validation F1
            (with a floor, see ``allocation_floor``); ``"uniform"`` splits evenly.
        allocation_floor (`float`, *optional*, defaults to `0.25`):
            Share of the budget split evenly over all classes before the guided split, so that no class starves.
        allocation_power (`float`, *optional*, defaults to `1.0`):
            Exponent applied to ``1 - F1`` in the guided split: higher concentrates the budget on the weakest classes.
            1.0 did best on the development seeds of the policy benchmark (per-class F1 from a few validation
            examples is noisy: sharper splits chase the noise).
        candidate_factor (`float`, *optional*, defaults to `1.0`):
            Hardness-aware acceptance: above 1, each class's share of the budget is what the teacher writes, and the
            student keeps about ``share / candidate_factor`` of those candidates, the ones it finds hardest (lowest
            probability of their label), with a share ``1 - hard_share`` at random; the rest are dropped as
            ``easy_for_student`` and still count as cost. Needs the student's scores: the callback passes them; a
            :class:`~hf_activekd.RoundRunner` needs ``score_fn``. Not with ``overlap=True``. See
            :mod:`hf_activekd.hard_selection`.
        hard_share (`float`, *optional*, defaults to `0.75`):
            With ``candidate_factor > 1``: share of each class's kept rows taken hardest first; the rest are drawn at
            random from the other candidates (easy ones keep the class anchored).
        confusion_requests (`bool`, *optional*, defaults to `True`):
            Target a class's first request at its most frequent confusion (ask for samples of the class that are
            clearly not the class it is mistaken for), with that pair's hard negatives in the prompt.
        num_hard_negatives (`int`, *optional*, defaults to `4`):
            Misclassified validation examples with the highest confidence shown per request (with their confusion).
        num_correct_examples (`int`, *optional*, defaults to `3`):
            Correctly classified examples of the requested class shown per request.
        num_misclassified_examples (`int`, *optional*, defaults to `3`):
            Misclassified examples of the requested class shown per request.
        report_classes (`str`, *optional*, defaults to `"targeted"`):
            Which lines of the per-class report go into each prompt: ``"targeted"`` (the requested class, its
            confusions, and the overall scores) or ``"full"`` (every class, as in the PGKD paper).
        max_rounds (`int`, *optional*, defaults to `10`):
            Largest number of teacher rounds. After it, training goes on without new requests.
        patience (`int`, *optional*, defaults to `5`):
            Stop training after this many evaluations in a row without an improvement of at least ``min_delta`` of
            ``metric_for_rounds``. ``0`` disables stopping.
        min_delta (`float`, *optional*, defaults to `0.0`):
            Smallest change of the metric that counts as an improvement.
        metric_for_rounds (`str`, *optional*, defaults to `"macro_f1"`):
            Metric rounds are judged on: ``"macro_f1"``, ``"accuracy"``, or any key of the Trainer's eval metrics
            (with or without the ``eval_`` prefix).
        greater_is_better (`bool`, *optional*):
            Whether a larger ``metric_for_rounds`` is better. When `None` (default), it is inferred as transformers
            does for ``metric_for_best_model``: the Trainer's ``TrainingArguments.greater_is_better`` when its
            ``metric_for_best_model`` names the same metric, else `False` for a name ending in ``"loss"`` and `True`
            otherwise.
        mix_mode (`str`, *optional*, defaults to `"append"`):
            How generated rows enter training batches: ``"append"`` adds ``rows_per_batch`` rows to each batch (the
            batch gets more rows); ``"replace"`` replaces that many rows, keeping batch shapes and memory fixed.
        rows_per_batch (`int`, *optional*, defaults to `4`):
            Generated rows mixed into each training batch (per process) once the pool is not empty; fewer when a
            process's (or dataloader worker's) share of the pool is smaller: a row never appears twice in a batch.
        truncate_generated_rows (`bool`, *optional*, defaults to `True`):
            Cut generated rows to the longest original row of their batch (keeping their last token, e.g. ``[SEP]``),
            so that they never make batches longer. Always on with ``mix_mode="replace"``; set it to `False` with
            ``"append"`` to train on whole generated rows (batches may then be longer than without them).
        min_chars (`int`, *optional*, defaults to `8`):
            Shortest accepted generated text.
        max_chars (`int`, *optional*, defaults to `1000`):
            Longest accepted generated text.
        max_new_tokens (`int`, *optional*, defaults to `512`):
            Generation budget of one teacher answer.
        temperature (`float`, *optional*, defaults to `0.9`):
            Sampling temperature of the teacher.
        seed (`int`, *optional*, defaults to `42`):
            Seed of the policy, the request seeds and the mixing of rows into batches.
        teacher_on_failure (`str`, *optional*, defaults to `"continue"`):
            What a round does when the teacher fails as a whole: ``"continue"`` (log, count, train on) or
            ``"raise"``.
        check_teacher (`bool`, *optional*, defaults to `True`):
            Check that the teacher is reachable before training starts (a clear error instead of a silent run).
        harm_delta (`float`, *optional*, defaults to `0.02`):
            Fall of ``metric_for_rounds`` below the best evaluation so far that counts as harm: the rows trained on
            since the best evaluation (the rounds generated at and after it) are then handled as ``on_harm`` says.
        on_harm (`str`, *optional*, defaults to `"drop_round"`):
            What harm does: ``"drop_round"`` sets those rounds' rows aside for the rest of training (their files are
            renamed ``round-NNNN.jsonl.set-aside``, nothing is deleted) and records them; ``"keep"`` only records it.
        verify (`str`, *optional*, defaults to `"none"`):
            Teacher verification: ``"teacher"`` sends the rows accepted from each request back to the teacher in one
            small constrained request that asks which label each text belongs to (the class names, or the confused
            pair for a pair request), without saying which label it was written for; rows whose answer differs are
            dropped (``disagreement``). Its tokens count in the teacher's budget and in the round's tokens; each round
            records the agreement rate (``verify_agreement``). Needs a teacher that implements ``label()``
            (TGITeacher, PoolTeacher). ``"none"``: no verification.
        output_subdir (`str`, *optional*, defaults to `"activekd"`):
            Folder under ``args.output_dir`` holding the round files, ``rounds.json`` and the answer log.

        > Annotating your unlabeled texts (see :mod:`hf_activekd.annotation`)

        source (`str`, *optional*, defaults to `"generate"`):
            Where a round's rows come from: ``"generate"`` (the teacher writes new examples), ``"annotate"`` (the
            teacher labels texts picked from the ``unlabeled`` texts you pass to the callback or runner, where the
            student is weak or unsure) or ``"both"`` (``annotate_share`` of the round's budget is annotated, the rest
            generated).
        annotate_share (`float`, *optional*, defaults to `0.5`):
            With ``source="both"``: share of ``samples_per_round`` that is annotated.
        annotate_strategy (`str`, *optional*, defaults to `"guided"`):
            Which unlabeled texts are picked: ``"guided"`` (each class gets its share of the budget from the
            per-class report, as for generation; its texts are those the student puts the class in its top two for,
            smallest margin between the top two first, its main confusion first, at most half of a class's share per
            predicted pair, no near-duplicates), ``"margin"`` (the smallest margins overall) or ``"random"``.
        max_unlabeled_scored (`int`, *optional*, defaults to `2048`):
            Unlabeled texts the student scores per round: a random subset, new each round, of the texts not labelled
            yet (nor training or validation texts).
        annotate_texts_per_request (`int`, *optional*, defaults to `8`):
            Texts in one labelling request to the teacher.
        annotate_none_option (`bool`, *optional*, defaults to `True`):
            Let the teacher answer ``"none of these"`` for a text that fits no label; the text is dropped (counted as
            ``none_of_these``).

        > Overlapping teacher rounds with training

        overlap (`bool`, *optional*, defaults to `False`):
            Send a round's requests from a background thread on the main process and keep training meanwhile,
            instead of every process waiting for the teacher at the evaluation. The round is planned from the
            evaluation as in blocking mode; its rows join the training batches on every process as soon as its file
            is written (one machine, or a shared file system; several machines without one get them at the next
            evaluation). Records gain ``requested_at_step`` and ``arrived_at_step``. Early stopping counts
            evaluations as in blocking mode, so the evaluation that stops training may not have seen the last round's
            rows yet (one round at most); harm detection only blames rows that arrived before the evaluation. Works
            with ``source="generate"`` only (annotation scores texts on every process at the evaluation). See
            :mod:`hf_activekd.overlap`.
        overlap_policy (`str`, *optional*, defaults to `"wait"`):
            At most one round is in flight. When the next evaluation comes before its answers: ``"wait"`` waits for
            them, then runs its own round; ``"skip"`` trains on and skips its own round (recorded as skipped).
        overlap_at_end (`str`, *optional*, defaults to `"wait"`):
            A round still in flight when training ends: ``"wait"`` awaits its answers and writes its rows (recorded;
            they are not trained on, but published with the generated data); ``"cancel"`` stops it (answers already
            paid are logged and counted; no row is kept; recorded as cancelled).

        > Quality gate of generated rows

        quality_checks (`list[str]`, *optional*, defaults to all checks):
            Checks every generated text must pass before it is accepted, each drop counted under its own reason:
            ``"markup"`` (HTML, template braces, JSON fragments, code fences), ``"prompt_echo"`` (the request's own
            instructions), ``"not_words"`` (too few letters), ``"repetition"`` (a word or phrase looping),
            ``"prompt_copy"`` (a near-copy of a text shown in the prompt) and ``"near_duplicate"`` (close to a row
            accepted earlier in the run). An empty list turns the gate off. See
            :class:`~hf_activekd.quality.QualityGate`.
        near_duplicate_threshold (`float`, *optional*, defaults to `0.9`):
            Character 5-gram Jaccard similarity from which a text counts as a copy of a prompt text or a
            near-duplicate of an accepted row.
        min_letter_ratio (`float`, *optional*, defaults to `0.6`):
            Smallest share of letters among the letters, symbols and half the digits of a text (``not_words``).
    """

    text_column: str = field(default="text", metadata={"help": "Column of the raw text in the datasets."})
    label_column: str = field(default="label", metadata={"help": "Column of the class: integer class ids."})
    label_names: list[str] | None = field(
        default=None,
        metadata={"help": "Class names by id (default: model.config.id2label; needed for LABEL_N defaults)."},
    )
    label_descriptions: dict[str, str] | None = field(
        default=None, metadata={"help": "Optional description per class name, shown to the teacher."}
    )
    task_description: str = field(
        default="text classification", metadata={"help": "One sentence about the task, shown to the teacher."}
    )
    samples_per_round: int = field(default=64, metadata={"help": "New samples requested per round."})
    samples_per_request: int = field(default=8, metadata={"help": "Largest number of samples in one request."})
    allocation: str = field(
        default="guided", metadata={"help": "Budget split over classes.", "choices": ["guided", "uniform"]}
    )
    allocation_floor: float = field(
        default=0.25, metadata={"help": "Share of the budget split evenly before the guided split (no starving)."}
    )
    allocation_power: float = field(
        default=1.0, metadata={"help": "Exponent on (1 - F1) in the guided split; higher is more concentrated."}
    )
    candidate_factor: float = field(
        default=1.0,
        metadata={"help": "Candidates written per kept sample; the student keeps its hardest (1: keep all)."},
    )
    hard_share: float = field(
        default=0.75, metadata={"help": "With candidate_factor > 1: share of kept rows taken hardest first."}
    )
    confusion_requests: bool = field(
        default=True, metadata={"help": "Aim a class's first request at its most frequent confusion."}
    )
    num_hard_negatives: int = field(default=4, metadata={"help": "Confidently wrong examples shown per request."})
    num_correct_examples: int = field(default=3, metadata={"help": "Correct examples shown per request."})
    num_misclassified_examples: int = field(default=3, metadata={"help": "Misclassified examples per request."})
    report_classes: str = field(
        default="targeted",
        metadata={"help": "Report lines in prompts: 'targeted' or 'full'.", "choices": ["targeted", "full"]},
    )
    max_rounds: int = field(default=10, metadata={"help": "Largest number of teacher rounds."})
    patience: int = field(
        default=5, metadata={"help": "Stop after this many evaluations without improvement (0 disables)."}
    )
    min_delta: float = field(default=0.0, metadata={"help": "Smallest improvement of the metric that counts."})
    metric_for_rounds: str = field(
        default="macro_f1", metadata={"help": "Metric rounds are judged on (macro_f1, accuracy, or an eval key)."}
    )
    greater_is_better: bool | None = field(
        default=None,
        metadata={
            "help": "Whether a larger metric is better (default: False for a name ending in 'loss', else True)."
        },
    )
    mix_mode: str = field(
        default="append",
        metadata={"help": "How generated rows enter batches.", "choices": ["append", "replace"]},
    )
    rows_per_batch: int = field(default=4, metadata={"help": "Generated rows mixed into each training batch."})
    truncate_generated_rows: bool = field(
        default=True,
        metadata={"help": "Cut generated rows to their batch's longest row (always on with mix_mode='replace')."},
    )
    min_chars: int = field(default=8, metadata={"help": "Shortest accepted generated text."})
    max_chars: int = field(default=1000, metadata={"help": "Longest accepted generated text."})
    max_new_tokens: int = field(default=512, metadata={"help": "Generation budget of one teacher answer."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature of the teacher."})
    seed: int = field(default=42, metadata={"help": "Seed of the policy, request seeds and row mixing."})
    teacher_on_failure: str = field(
        default="continue",
        metadata={"help": "When the teacher fails as a whole: continue or raise.", "choices": ["continue", "raise"]},
    )
    check_teacher: bool = field(default=True, metadata={"help": "Check the teacher is reachable before training."})
    harm_delta: float = field(
        default=0.02, metadata={"help": "Fall of the metric below the best so far that counts as harm."}
    )
    on_harm: str = field(
        default="drop_round",
        metadata={
            "help": "On harm: set the rounds since the best aside (drop_round) or only record it (keep).",
            "choices": ["drop_round", "keep"],
        },
    )
    verify: str = field(
        default="none",
        metadata={
            "help": "teacher: the teacher labels each accepted batch again, blind; rows it disowns are dropped.",
            "choices": ["none", "teacher"],
        },
    )
    output_subdir: str = field(default="activekd", metadata={"help": "Folder under output_dir for round files."})

    # Annotating your unlabeled texts
    source: str = field(
        default="generate",
        metadata={
            "help": "Where rows come from: the teacher writes them (generate), labels your unlabeled texts "
            "(annotate), or both.",
            "choices": ["generate", "annotate", "both"],
        },
    )
    annotate_share: float = field(
        default=0.5, metadata={"help": "With source='both': share of samples_per_round that is annotated."}
    )
    annotate_strategy: str = field(
        default="guided",
        metadata={
            "help": "Which unlabeled texts are labelled: guided (weak classes, small margin, spread out), margin, "
            "or random.",
            "choices": ["guided", "margin", "random"],
        },
    )
    max_unlabeled_scored: int = field(
        default=2048, metadata={"help": "Unlabeled texts the student scores per round (a random subset)."}
    )
    annotate_texts_per_request: int = field(default=8, metadata={"help": "Texts in one labelling request."})
    annotate_none_option: bool = field(
        default=True, metadata={"help": "Let the teacher answer 'none of these' (the text is dropped)."}
    )

    # Overlapping teacher rounds with training
    overlap: bool = field(
        default=False,
        metadata={"help": "Ask the teacher in a background thread and train on meanwhile (rows join on arrival)."},
    )
    overlap_policy: str = field(
        default="wait",
        metadata={
            "help": "When the next evaluation comes while a round is in flight: wait for it, or skip its own round.",
            "choices": ["wait", "skip"],
        },
    )
    overlap_at_end: str = field(
        default="wait",
        metadata={
            "help": "A round in flight when training ends: wait for it (recorded) or cancel it (recorded).",
            "choices": ["wait", "cancel"],
        },
    )

    # Quality gate of generated rows
    quality_checks: list[str] = field(
        default_factory=lambda: list(QUALITY_CHECKS),
        metadata={"help": f"Checks a generated text must pass (empty: none). Any of {', '.join(QUALITY_CHECKS)}."},
    )
    near_duplicate_threshold: float = field(
        default=0.9, metadata={"help": "Char 5-gram Jaccard similarity from which a text is a (near-)copy."}
    )
    min_letter_ratio: float = field(
        default=0.6, metadata={"help": "Smallest share of letters among letters, symbols and half the digits."}
    )

    def __post_init__(self):
        errors = config_errors(self)
        if errors:
            raise ValueError("Invalid ActiveKDConfig: " + "; ".join(errors))

    @property
    def needs_student_scores(self) -> bool:
        """Whether a round needs the student's class probabilities: to pick texts to label (``source`` other than
        ``"generate"``) or to keep the hardest candidates (``candidate_factor > 1``)."""
        return self.source != "generate" or self.candidate_factor > 1

    def split_budget(self) -> tuple[int, int]:
        """``(generated, annotated)`` samples per round: all of ``samples_per_round`` to one source, or split by
        ``annotate_share`` with ``source="both"``."""
        if self.source == "generate":
            return self.samples_per_round, 0
        if self.source == "annotate":
            return 0, self.samples_per_round
        annotated = int(round(self.samples_per_round * self.annotate_share))
        return self.samples_per_round - annotated, annotated

    def resolve_greater_is_better(self, args: Any = None) -> bool:
        """Whether a larger ``metric_for_rounds`` is better (see ``greater_is_better``).

        Args:
            args (`transformers.TrainingArguments`, *optional*): The Trainer's arguments; their ``greater_is_better``
                is followed when their ``metric_for_best_model`` is the same metric (``eval_`` prefix or not).
        """
        if self.greater_is_better is not None:
            return bool(self.greater_is_better)
        name = _bare_metric(self.metric_for_rounds)
        trainer_metric = getattr(args, "metric_for_best_model", None)
        trainer_greater = getattr(args, "greater_is_better", None)
        if trainer_metric and trainer_greater is not None and _bare_metric(trainer_metric) == name:
            return bool(trainer_greater)
        return not name.endswith("loss")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bare_metric(name: str) -> str:
    """A metric name without the Trainer's ``eval_`` prefix."""
    return name[len("eval_") :] if name.startswith("eval_") else name
