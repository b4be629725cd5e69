"""Helpers shared by the command-line tests: a CSV of labelled texts, a free port, and the flags of a fast run (the
``student`` and ``data_csv`` fixtures are in conftest.py)."""

from __future__ import annotations

import csv
import socket

from testing_utils import LABELS, make_texts


def _write_csv(path, n_per_class, seed, text="sentence", label="topic"):
    texts, labels = make_texts(n_per_class, seed=seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([text, label])
        for t, y in zip(texts, labels):
            writer.writerow([t, LABELS[y]])
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAST = ["--eval-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8", "--max-rounds", "2"]
