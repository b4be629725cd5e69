"""Set-up checks of :class:`~hf_activekd.ActiveKDCallback`, run in its constructor, before any teacher call is paid.

- Label names: the names rows are generated for must be the names of the ids the student is trained on. They are
  compared wherever two sources are known (``ActiveKDConfig.label_names``, ``model.config.id2label``, a `ClassLabel`
  feature of the train or eval dataset), and the default ``LABEL_0..N`` names of transformers are refused: a teacher
  cannot write examples for them.
- Label column: integer class ids (the Trainer needs them in batches).
- Generated rows must be encodable into the columns of the training batches (any dataset type: a `datasets.Dataset`,
  a `datasets.IterableDataset` or a torch dataset).
- ``preprocess`` travels to dataloader worker processes inside the collator: with a ``spawn`` or ``forkserver`` start
  method it must pickle. :class:`TokenizePreprocess`, the default, does.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LABEL_COLUMNS = ("label", "labels", "label_ids")


class TokenizePreprocess:
    """The default ``preprocess``: the trainer's tokenizer on the text column, with truncation. A top-level class (not
    a closure), so that it pickles into dataloader worker processes started with ``spawn`` or ``forkserver``."""

    def __init__(self, tokenizer, text_column: str = "text"):
        self.tokenizer = tokenizer
        self.text_column = text_column

    def __call__(self, rows: Mapping[str, list]) -> Mapping[str, Sequence]:
        return self.tokenizer(rows[self.text_column], truncation=True)


def _is_default_names(names: Sequence[str]) -> bool:
    return list(names) == [f"LABEL_{i}" for i in range(len(names))]


def _differ(a: Sequence[str], b: Sequence[str]) -> str:
    return "the same names in another order" if sorted(a) == sorted(b) and list(a) != list(b) else "other names"


def resolve_label_names(label_names: Sequence[str] | None, model_config) -> list[str]:
    """The class names by id: ``label_names`` when given, else ``model_config.id2label``; they must agree when both are
    known, and must not be transformers' default ``LABEL_N`` names."""
    num_labels = getattr(model_config, "num_labels", None)
    id2label = getattr(model_config, "id2label", None) or {}
    model_names = [str(id2label[k]) for k in sorted(id2label, key=int)] if id2label else None
    if label_names is not None:
        names = [str(n) for n in label_names]
        if num_labels is not None and num_labels != len(names):
            raise ValueError(f"{len(names)} label names are given but the model has num_labels={num_labels}.")
        if model_names is not None and not _is_default_names(model_names) and model_names != names:
            raise ValueError(
                f"ActiveKDConfig.label_names {names[:10]} and the model's config.id2label {model_names[:10]} hold "
                f"{_differ(names, model_names)}: generated rows would get ids the student reads as other classes. "
                "Make them agree: drop label_names (the model's id2label is used), or load the model with "
                "id2label=dict(enumerate(names)) and label2id={name: i for i, name in enumerate(names)}."
            )
    elif model_names is not None:
        names = model_names
        if _is_default_names(names):
            raise ValueError(
                f"The model's config.id2label holds transformers' default names {names[:4]}...: the teacher cannot "
                "write examples for them. Set ActiveKDConfig(label_names=[...]) to the class names by id, or load the "
                "model with id2label=dict(enumerate(names)) and label2id (e.g. from your dataset's ClassLabel names: "
                "dataset.features['label'].names)."
            )
    else:
        raise ValueError("Cannot tell the label names: set ActiveKDConfig.label_names or model.config.id2label.")
    if num_labels is not None and num_labels != len(names):
        raise ValueError(f"{len(names)} label names are given but the model has num_labels={num_labels}.")
    if len(names) < 2:
        raise ValueError(f"Distillation needs at least two classes, got {names}.")
    return names


def is_indexable(dataset) -> bool:
    """Whether ``dataset[i]`` and ``len(dataset)`` work (a `datasets.Dataset` or a map-style torch dataset)."""
    import torch.utils.data

    if isinstance(dataset, torch.utils.data.IterableDataset):
        return False
    return hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")


def first_rows(dataset, n: int) -> list[Any]:
    """Up to ``n`` first rows of any dataset (indexed, or from a fresh iterator); ``[]`` when they cannot be read."""
    try:
        if is_indexable(dataset):
            if hasattr(dataset, "select") and hasattr(dataset, "column_names"):  # a datasets.Dataset: one slice
                return list(dataset.select(range(min(n, len(dataset)))))
            return [dataset[i] for i in range(min(n, len(dataset)))]
        if isinstance(dataset, Iterable):
            return list(itertools.islice(iter(dataset), n))
    except Exception:  # noqa: BLE001 - a dataset that cannot be read here is read by the Trainer, with its own error
        return []
    return []


def column_names(dataset) -> list[str]:
    names = getattr(dataset, "column_names", None)
    if names:
        return list(names)
    rows = first_rows(dataset, 1)
    return list(rows[0].keys()) if rows and isinstance(rows[0], Mapping) else []


def label_column_of(dataset, label_column: str) -> str | None:
    names = column_names(dataset)
    for name in (label_column, *LABEL_COLUMNS):
        if name in names:
            return name
    return None


def column_values(dataset, column: str, limit: int | None = None) -> list[Any]:
    """Values of ``column``: the whole column of an indexable dataset (or its first ``limit``), the first ``limit``
    rows of an iterable one (all of them when ``limit`` is None: only for finite, small data such as an eval set)."""
    if is_indexable(dataset) and hasattr(dataset, "column_names"):
        values = dataset[column]
        return list(values[:limit] if limit is not None else values)
    rows = first_rows(dataset, limit) if limit is not None else list(iter(dataset))
    return [row[column] for row in rows if isinstance(row, Mapping) and column in row]


def check_label_column(dataset, label_column: str, label_names: Sequence[str], what: str) -> None:
    """Raise `ValueError` unless the dataset's label column holds integer ids of ``label_names`` and, when it is a
    `datasets.ClassLabel`, its names are ``label_names`` in the same order."""
    column = label_column_of(dataset, label_column)
    if column is None:
        return
    feature = (getattr(dataset, "features", None) or {}).get(column)
    feature_names = getattr(feature, "names", None)
    if feature_names is not None and list(feature_names) != list(label_names):
        raise ValueError(
            f"{what}[{column!r}] is a ClassLabel with names {list(feature_names)[:10]}, but the label names used "
            f"are {list(label_names)[:10]} ({_differ(feature_names, label_names)}; from ActiveKDConfig.label_names "
            "or the model's config.id2label): generated rows would get ids the student reads as other classes. "
            "Load the model with id2label=dict(enumerate(names)) and label2id={name: i for i, name in "
            f"enumerate(names)}} where names = {what}.features[{column!r}].names, or set "
            "ActiveKDConfig.label_names to those names."
        )
    values = column_values(dataset, column, 2000 if is_indexable(dataset) else 100)  # a stream: its first rows
    bad_type = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
    if bad_type:
        raise ValueError(
            f"{what}[{column!r}] must hold integer class ids (0..{len(label_names) - 1}), found "
            f"{type(bad_type[0]).__name__} values such as {bad_type[0]!r}. Map label names to ids first, in the order "
            f"of the label names {list(label_names)[:10]} (e.g. dataset.class_encode_column({column!r}), then check "
            "that dataset.features[...].names is in that order, or dataset.map with label2id)."
        )
    unknown = sorted({v for v in values if not 0 <= v < len(label_names)})
    if unknown:
        raise ValueError(
            f"{what}[{column!r}] holds class ids {unknown[:10]} outside the {len(label_names)} known labels "
            f"{list(label_names)[:10]}."
        )


def batch_columns(trainer, forward_params: set[str] | None) -> list[str] | None:
    """The keys of the training rows that reach the collator (after the Trainer removed unused columns from a
    `datasets.Dataset`); None when no row can be read."""
    import datasets

    dataset = trainer.train_dataset
    names = column_names(dataset)
    if not names:
        return None
    if isinstance(dataset, datasets.Dataset) and trainer.args.remove_unused_columns and forward_params:
        keep = set(forward_params) | {"label", "label_ids", *(getattr(trainer, "label_names", None) or [])}
        return [n for n in names if n in keep]
    return names


def check_rows_fit(
    preprocess, columns: Sequence[str] | None, text_column: str, label_column: str
) -> Mapping[str, Sequence]:
    """Run ``preprocess`` on a probe batch and raise `ValueError` when generated rows could not fill every column of
    the training rows (``columns``); returns the probe's output."""
    try:
        out = preprocess({text_column: ["a short probe text", "another one"], label_column: [0, 1]})
    except Exception as exc:
        raise ValueError(f"`preprocess` failed on a probe batch: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, Mapping):
        raise ValueError(f"`preprocess` must return a mapping of columns, got {type(out).__name__}.")
    if columns is None:
        return out
    needed = set(columns) - set(LABEL_COLUMNS) - {label_column, text_column}
    missing = sorted(needed - set(out.keys()))
    if missing:
        raise ValueError(
            f"The training rows have the columns {missing} that `preprocess` does not produce (it produced "
            f"{sorted(out.keys())}): generated rows could not join the batches. Pass a preprocess that also returns "
            f"them, or remove them from the train dataset (or let the Trainer drop them: remove_unused_columns=True "
            f"with a datasets.Dataset)."
        )
    return out


def worker_start_method(args) -> str | None:
    """How dataloader workers start (``fork``, ``spawn``, ``forkserver``), or None without workers."""
    if not getattr(args, "dataloader_num_workers", 0):
        return None
    context = getattr(args, "dataloader_multiprocessing_context", None)
    if context:
        return str(context)
    # The process-wide method when one was set, else the platform default (spawn on macOS and Windows, forkserver on
    # Linux from Python 3.14, fork before): the first of get_all_start_methods(). Nothing here fixes the method.
    return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]


def check_picklable(preprocess, args) -> None:
    """Raise `ValueError` when dataloader workers start by pickling (``spawn``, ``forkserver``) and ``preprocess``
    does not pickle."""
    method = worker_start_method(args)
    if method not in ("spawn", "forkserver"):
        return
    try:
        pickle.dumps(preprocess)
    except Exception as exc:  # noqa: BLE001 - PicklingError, AttributeError, TypeError
        raise ValueError(
            f"`preprocess` cannot be pickled ({type(exc).__name__}: {exc}), but the {args.dataloader_num_workers} "
            f"dataloader worker(s) start with {method!r}, which pickles the collator and its preprocess. Pass a "
            "function defined at module level or an instance of a top-level class instead of a lambda or closure "
            "(or leave preprocess unset: the trainer's tokenizer is used), or set dataloader_num_workers=0."
        ) from None
