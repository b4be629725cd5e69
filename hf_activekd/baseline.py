"""A same-run baseline: the same student, seed, steps and schedule, trained without generated rows.

``hf-activekd distill --baseline`` trains a second :class:`transformers.Trainer` from the student's initial weights
(copied before the distilled run), with the same arguments and data but without :class:`~hf_activekd.ActiveKDCallback`,
evaluates both students on the same split and reports the teacher's effect. With a Trainer of your own:

```python
baseline = Trainer(model=make_student(), args=args, train_dataset=train, eval_dataset=val, data_collator=collator,
                   compute_metrics=compute_metrics)  # the same, without ActiveKDCallback
baseline.train(); without = baseline.evaluate(test, metric_key_prefix="test")
```
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

KEYS = ("macro_f1", "accuracy")


def snapshot_weights(model) -> dict[str, Any]:
    """A copy of ``model``'s weights (on the CPU), to start the baseline from the same initial weights."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def train_baseline(
    trainer,
    model,
    initial: Mapping[str, Any],
    output_dir: Path,
    eval_dataset,
    prefix: str,
    prepare: Callable[[Any], None] | None = None,
) -> tuple[dict[str, float], int]:
    """Train ``model`` (loaded with ``initial``) as ``trainer`` was trained, without its ActiveKD callback, and return
    ``(metrics on eval_dataset, steps)``. Checkpoints go to ``output_dir`` and are removed afterwards. ``prepare`` is
    called with the new Trainer before training (e.g. to quiet its progress output)."""
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
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    return metrics, baseline.state.global_step


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
    return (
        f"Teacher's effect on the {effect['split']} split (same student, seed, steps and schedule without generated "
        f"rows): " + "; ".join(parts) + "."
    )


def compare_with_baseline(trainer, callback, model, initial, output_dir: Path, splits, test_metrics, prepare=None):
    """The CLI's ``--baseline``: train the baseline, evaluate both students on the test split (the validation split
    without one), put the teacher's effect in ``callback.publisher.baseline`` and rewrite the card. Returns it."""
    split = "test" if "test" in splits else "validation"
    print(f"Baseline: the same student without generated rows, evaluated on the {split} split...", flush=True)
    without, steps = train_baseline(trainer, model, initial, output_dir / "baseline", splits[split], split, prepare)
    with_teacher = test_metrics if split == "test" else trainer.evaluate(splits[split], metric_key_prefix=split)
    effect = teacher_effect(with_teacher or {}, without, split)
    effect.update(steps=steps, distilled_steps=trainer.state.global_step)
    callback.publisher.baseline = effect
    if callback.publisher.is_main:
        callback.publisher.write_card()
    return effect
