"""The pool backend: unseen real examples of the requested class from a labelled CSV file, served over HTTP."""

from __future__ import annotations

import csv
import json
import os
import random
import threading
from collections import defaultdict
from collections.abc import Sequence

from .request import BackendRequest, Fault
from .samples_schema import schema_labels, schema_max_items


class PoolBackend:
    """Answers with unseen real examples of the requested class, like :class:`~hf_activekd.teachers.PoolTeacher`.

    The class is the first value of the label enum of the request's schema, the number of examples its
    ``maxItems``. A class that is unknown or exhausted gets an HTTP 422 (not retried by the client).

    Args:
        csv_path (`str`, *optional*):
            A CSV file with a text and a label column.
        texts (`Sequence[str]`, *optional*):
            The pool's texts (instead of ``csv_path``).
        labels (`Sequence[str]`, *optional*):
            Their labels.
        text_column (`str`, defaults to `"text"`):
            Text column of the CSV file.
        label_column (`str`, defaults to `"label"`):
            Label column of the CSV file.
        seed (`int`, defaults to 0):
            Seed of the draw order.
        model_id (`str`, defaults to `"pool-simulation"`):
            Reported by ``GET /info``.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike | None = None,
        texts: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        text_column: str = "text",
        label_column: str = "label",
        seed: int = 0,
        model_id: str = "pool-simulation",
    ):
        if csv_path is not None:
            texts, labels = [], []
            with open(csv_path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                missing = {text_column, label_column} - set(reader.fieldnames or [])
                if missing:
                    raise ValueError(f"{csv_path} has no column(s) {sorted(missing)}; columns: {reader.fieldnames}")
                for row in reader:
                    texts.append(row[text_column])
                    labels.append(row[label_column])
        if texts is None or labels is None or len(texts) != len(labels):
            raise ValueError("PoolBackend needs `csv_path`, or `texts` and `labels` of the same length.")
        by_label: dict[str, list[str]] = defaultdict(list)
        for text, label in zip(texts, labels):
            by_label[str(label)].append(str(text))
        rng = random.Random(seed)
        for items in by_label.values():
            rng.shuffle(items)
        self._order = dict(by_label)
        self._cursor: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.model_id = model_id

    @property
    def labels(self) -> list[str]:
        return sorted(self._order)

    def generate(self, request: BackendRequest) -> str | Fault:
        labels = schema_labels(request.schema)
        if not labels:
            return Fault(status=422, body=json.dumps({"error": "the pool backend needs a samples schema"}))
        label = labels[0]
        n = schema_max_items(request.schema)
        with self._lock:
            items = self._order.get(label)
            if items is None:
                return Fault(status=422, body=json.dumps({"error": f"label {label!r} not in the pool"}))
            begin = self._cursor[label]
            taken = items[begin : begin + n]
            self._cursor[label] = begin + len(taken)
        if not taken:
            return Fault(status=422, body=json.dumps({"error": f"pool exhausted for {label!r}"}))
        return json.dumps({"examples": [{"text": t, "label": label} for t in taken]})
