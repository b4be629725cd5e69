"""ActiveKDDataCollator on its own, as a custom training loop would use it."""

from __future__ import annotations

import pytest
from transformers import DataCollatorWithPadding

from hf_activekd import ActiveKDDataCollator, GeneratedPool
from testing_utils import LABELS, MARKER


def _rows(n, round_index=0, label="science"):
    return [
        {"text": f"{MARKER} atom energy {round_index} {i}", "label": label, "round": round_index} for i in range(n)
    ]


def _features(tokenizer, n):
    enc = tokenizer([f"goal match {i}" for i in range(n)])
    return [
        {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "label": 0} for i in range(n)
    ]


def _collator(tokenizer, pool_dir, **kwargs):
    return ActiveKDDataCollator(
        DataCollatorWithPadding(tokenizer),
        pool_dir,
        lambda rows: tokenizer(rows["text"], truncation=True),
        LABELS,
        **kwargs,
    )


def test_no_pool_means_batches_unchanged(tokenizer, tmp_path):
    collator = _collator(tokenizer, tmp_path / "missing")
    batch = collator(_features(tokenizer, 4))
    assert batch["input_ids"].shape[0] == 4


def test_append_and_replace(tokenizer, tmp_path):
    GeneratedPool(tmp_path).write_round(0, _rows(5))
    marker = tokenizer.convert_tokens_to_ids(MARKER)
    batch = _collator(tokenizer, tmp_path, rows_per_batch=3)(_features(tokenizer, 4))
    assert batch["input_ids"].shape[0] == 7
    assert (batch["input_ids"] == marker).any(-1).sum() == 3
    assert batch["labels"][-3:].tolist() == [LABELS.index("science")] * 3
    assert set(batch.keys()) == {"input_ids", "attention_mask", "labels"}  # the batch's columns only

    batch = _collator(tokenizer, tmp_path, rows_per_batch=3, mode="replace")(_features(tokenizer, 4))
    assert batch["input_ids"].shape[0] == 4
    assert (batch["input_ids"] == marker).any(-1).sum() == 3


def test_every_row_used_and_new_rows_join_the_pass(tokenizer, tmp_path):
    pool = GeneratedPool(tmp_path)
    pool.write_round(0, _rows(6))
    collator = _collator(tokenizer, tmp_path, rows_per_batch=2)
    seen = []
    for _ in range(2):
        seen += [tuple(f["input_ids"]) for f in collator.mix(_features(tokenizer, 2))[2:]]
    assert len(set(seen)) == 4
    pool.write_round(1, _rows(2, round_index=1, label="cooking"))
    # the 2 unused rows of round 0 and the 2 new rows of round 1 come next, in a random order, before any repeat
    rest = [f for _ in range(2) for f in collator.mix(_features(tokenizer, 2))[2:]]
    assert len({tuple(f["input_ids"]) for f in rest} | set(seen)) == 8
    assert [f["label"] for f in rest].count(LABELS.index("cooking")) == 2


def test_ranks_take_disjoint_shares(tokenizer, tmp_path):
    GeneratedPool(tmp_path).write_round(0, _rows(8))
    shares = []
    for rank in range(2):
        collator = _collator(tokenizer, tmp_path, rows_per_batch=4, rank=rank, world_size=2)
        shares.append({tuple(f["input_ids"]) for f in collator.mix(_features(tokenizer, 1))[1:]})
    assert len(shares[0]) == 4 and len(shares[1]) == 4 and not shares[0] & shares[1]


def test_bad_preprocess_and_labels(tokenizer, tmp_path):
    GeneratedPool(tmp_path).write_round(0, _rows(2))
    collator = ActiveKDDataCollator(
        DataCollatorWithPadding(tokenizer), tmp_path, lambda rows: {"attention_mask": [[1]] * 2}, LABELS
    )
    with pytest.raises(ValueError, match="input_ids"):
        collator(_features(tokenizer, 2))
    GeneratedPool(tmp_path).write_round(1, _rows(2, label="gardening"))
    collator = _collator(tokenizer, tmp_path, rows_per_batch=4)
    with pytest.raises(ValueError, match="gardening"):
        collator(_features(tokenizer, 2))
    with pytest.raises(ValueError, match="mode"):
        _collator(tokenizer, tmp_path, mode="insert")


def test_torn_line_is_skipped(tokenizer, tmp_path):
    (tmp_path / "round-0000.jsonl").write_text(
        '{"text": "activekdmarker atom one", "label": "science"}\n{"text": "tor'
    )
    assert len(GeneratedPool(tmp_path).rows()) == 1
