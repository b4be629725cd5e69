"""A same-run baseline: the same student, seed, steps and schedule, trained without generated rows.

``hf-activekd distill --baseline`` trains a second :class:`transformers.Trainer` from the student's initial weights
(copied before the distilled run), with the same arguments and data but without :class:`~hf_activekd.ActiveKDCallback`,
evaluates both students on the same split and reports the teacher's effect. With a Trainer of your own:

```python
baseline = Trainer(model=make_student(), args=args, train_dataset=train, eval_dataset=val, data_collator=collator,
                   compute_metrics=compute_metrics)  # the same, without ActiveKDCallback
baseline.train(); without = baseline.evaluate(test, metric_key_prefix="test")
```

The CLI also keeps the better of the two students: when the baseline scores higher on the validation split (the split
the run chose its weights on; the test split only reports), its weights are the ones saved and published, and the
summary and the card say so. A weak teacher then costs time, never accuracy on validation.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

KEYS = ("macro_f1", "accuracy")


def snapshot_weights(model) -> dict[str, Any]:
    """A copy of ``model``'s weights (on the CPU), to start the baseline from the same initial weights."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


class BaselineRun(NamedTuple):
    """What :func:`train_baseline` measured: ``metrics`` on the given split, the training ``steps``, and
    ``validation``, the metrics on the Trainer's own evaluation split with the weights it kept."""

    metrics: dict[str, float]
    steps: int
    validation: dict[str, float]


def train_baseline(
    trainer,
    model,
    initial: Mapping[str, Any],
    output_dir: Path,
    eval_dataset,
    prefix: str,
    prepare: Callable[[Any], None] | None = None,
) -> BaselineRun:
    """Train ``model`` (loaded with ``initial``) as ``trainer`` was trained, without its ActiveKD callback, and return
    its metrics on ``eval_dataset`` and on the Trainer's evaluation split (see :class:`BaselineRun`). ``model`` keeps
    the weights the run kept (the best checkpoint's with ``load_best_model_at_end``). Checkpoints go to
    ``output_dir`` and are removed afterwards. ``prepare`` is called with the new Trainer before training (e.g. to
    quiet its progress output)."""
    from transformers import Trainer

    model.load_state_dict(dict(initial))
    args = dataclasses.replace(trainer.args, output_dir=str(output_dir), push_to_hub=False, hub_model_id=None)
    compute_metrics = trainer.compute_metrics
    user_fn = getattr(compute_metrics, "user_fn", None)  # ActiveKD's recorder, given back after training
    baseline = Trainer(
        model=model,
        args=args,
        train_dataset=trainer.train_dataset,
        eval_dataset=trainer.eval_dataset,
        data_collator=trainer.data_collator,
        processing_class=trainer.processing_class,
        compute_metrics=compute_metrics if user_fn is None else user_fn,
    )
    if prepare is not None:
        prepare(baseline)
    try:
        baseline.train()
        metrics = baseline.evaluate(eval_dataset, metric_key_prefix=prefix)
        validation = baseline.evaluate(metric_key_prefix="eval")
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    return BaselineRun(metrics, baseline.state.global_step, validation)


def teacher_effect(with_teacher: Mapping[str, Any], without: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Macro-F1 and accuracy with and without the teacher, and the difference (with minus without)."""
    pick = {key: float(with_teacher[f"{prefix}_{key}"]) for key in KEYS if f"{prefix}_{key}" in with_teacher}
    base = {key: float(without[f"{prefix}_{key}"]) for key in KEYS if f"{prefix}_{key}" in without}
    return {
        "split": prefix,
        "with_teacher": pick,
        "without_teacher": base,
        "difference": {key: pick[key] - base[key] for key in pick if key in base},
    }


def effect_text(effect: Mapping[str, Any]) -> str:
    """One line on the teacher's effect, for the printed summary and the model card."""
    parts = []
    for key, name in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
        if key in effect["difference"]:
            parts.append(
                f"{name} {effect['with_teacher'][key]:.4f} with the teacher, {effect['without_teacher'][key]:.4f} "
                f"without ({effect['difference'][key]:+.4f})"
            )
    text = (
        f"Teacher's effect on the {effect['split']} split (same student, seed, steps and schedule without generated "
        f"rows): " + "; ".join(parts) + "."
    )
    validation = effect.get("validation") or {}
    if effect.get("kept") == "baseline":
        text += (
            f" The weights kept are the baseline's (trained without generated rows): it scored higher on validation "
            f"({validation['without_teacher']:.4f} against {validation['with_teacher']:.4f})."
        )
    return text


def compare_with_baseline(
    trainer, callback, model, initial, output_dir: Path, splits, test_metrics, prepare=None, keep_better: bool = True
):
    """The CLI's ``--baseline``: train the baseline, evaluate both students on the test split (the validation split
    without one), put the teacher's effect in ``callback.publisher.baseline`` and rewrite the card. Returns it.

    With ``keep_better``, when the baseline scores higher than the distilled student on the validation split (by the
    run's ``metric_for_best_model``, macro-F1 by default), its weights replace the distilled ones in ``trainer.model``
    and in ``output_dir`` (``effect["kept"] == "baseline"``), so a teacher that did not help costs no accuracy."""
    split = "test" if "test" in splits else "validation"
    print(f"Baseline: the same student without generated rows, evaluated on the {split} split...", flush=True)
    run = train_baseline(trainer, model, initial, output_dir / "baseline", splits[split], split, prepare)
    with_teacher = test_metrics if split == "test" else trainer.evaluate(splits[split], metric_key_prefix=split)
    effect = teacher_effect(with_teacher or {}, run.metrics, split)
    effect.update(steps=run.steps, distilled_steps=trainer.state.global_step)
    key = f"eval_{(trainer.args.metric_for_best_model or 'macro_f1').removeprefix('eval_')}"
    distilled = trainer.evaluate(metric_key_prefix="eval")
    if key in distilled and key in run.validation:
        effect["validation"] = {"with_teacher": float(distilled[key]), "without_teacher": float(run.validation[key])}
        better = (
            run.validation[key] > distilled[key]
            if trainer.args.greater_is_better is not False
            else (run.validation[key] < distilled[key])
        )
        effect["kept"] = "baseline" if keep_better and better else "distilled"
        if effect["kept"] == "baseline":
            trainer.model.load_state_dict(model.state_dict())
            trainer.save_model(str(output_dir))
    callback.publisher.baseline = effect
    if callback.publisher.is_main:
        callback.publisher.write_card()
    return effect
