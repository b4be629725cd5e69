"""``distill`` data preparation: a ClassLabel column keeps its class names."""

from __future__ import annotations

from hf_activekd import cli
from hf_activekd.cli import parse_distill_args
from testing_utils import LABELS, make_texts


def test_classlabel_column_keeps_its_names(tmp_path):
    from datasets import ClassLabel, Dataset

    texts, labels = make_texts(20, seed=3)
    names = [LABELS[i] for i in (2, 0, 3, 1)]  # a ClassLabel in an order of its own
    table = Dataset.from_dict({"sentence": texts, "topic": [names.index(LABELS[y]) for y in labels]})
    table = table.cast_column("topic", ClassLabel(names=names))
    table.save_to_disk(str(tmp_path / "saved"))
    args, config = parse_distill_args(
        ["--data-file", str(tmp_path / "saved"), "--text-column", "sentence", "--label-column", "topic"]
    )
    data = cli._prepare_data(args, config)
    assert sorted(data["label_names"]) == sorted(LABELS)
    train = data["splits"]["train"]
    truth = dict(zip(texts, (LABELS[y] for y in labels)))
    assert all(truth[t] == data["label_names"][i] for t, i in zip(train["text"], train["label"]))
