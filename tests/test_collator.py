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
    enc = tokenizer([f"goal match the team league score {i}" for i in range(n)])  # as long as the rows of _rows
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


def _long_rows(n, words=40, label="science"):
    return [
        {"text": f"{MARKER} " + " ".join(["atom energy"] * (words // 2)) + f" {i}", "label": label} for i in range(n)
    ]


def test_a_small_share_never_repeats_a_row_in_a_batch(tokenizer, tmp_path):
    GeneratedPool(tmp_path).write_round(0, _rows(2))
    collator = _collator(tokenizer, tmp_path, rows_per_batch=4)
    for _ in range(3):
        extra = [tuple(f["input_ids"]) for f in collator.mix(_features(tokenizer, 4))[4:]]
        assert len(extra) == 2 and len(set(extra)) == 2  # fewer rows when there are fewer, each once
    collator = _collator(tokenizer, tmp_path, rows_per_batch=4, mode="replace")
    batch = collator.mix(_features(tokenizer, 4))
    assert len(batch) == 4 and len({tuple(f["input_ids"]) for f in batch}) == 4
    # the end of one pass and the start of the next never put the same row twice in a batch
    GeneratedPool(tmp_path).write_round(0, _rows(3))
    collator = _collator(tokenizer, tmp_path, rows_per_batch=2)
    for _ in range(12):
        extra = [tuple(f["input_ids"]) for f in collator.mix(_features(tokenizer, 1))[1:]]
        assert len(set(extra)) == 2


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on a 2-core machine: on purpose
@pytest.mark.parametrize("num_workers", [2, 3])  # 3 workers for 2 rows: one worker has none
def test_workers_take_disjoint_shares(tokenizer, tmp_path, num_workers):
    import torch.utils.data

    GeneratedPool(tmp_path).write_round(0, _rows(2))
    collator = _collator(tokenizer, tmp_path, rows_per_batch=4)
    marker = tokenizer.convert_tokens_to_ids(MARKER)
    loader = torch.utils.data.DataLoader(
        _features(tokenizer, 4 * num_workers * 3), batch_size=4, collate_fn=collator, num_workers=num_workers
    )
    by_worker: dict[int, set] = {}
    for n, batch in enumerate(loader):  # batches come from the workers in turn
        rows = [tuple(ids.tolist()) for ids in batch["input_ids"] if (ids == marker).any()]
        assert len(rows) == len(set(rows))
        by_worker.setdefault(n % num_workers, set()).update(rows)
    shares = list(by_worker.values())
    assert sum(len(s) for s in shares) == len(set().union(*shares)) == 2  # each row in one worker's share only


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_generated_rows_never_make_a_batch_longer(tokenizer, tmp_path, mode):
    GeneratedPool(tmp_path).write_round(0, _long_rows(4))
    features = _features(tokenizer, 8)
    plain = DataCollatorWithPadding(tokenizer)(features)
    batch = _collator(tokenizer, tmp_path, rows_per_batch=2, mode=mode)(features)
    rows = 8 if mode == "replace" else 10
    assert tuple(batch["input_ids"].shape) == (rows, plain["input_ids"].shape[1])
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    assert (batch["input_ids"][-2:, -1] == tokenizer.sep_token_id).all()  # cut rows keep their last token
    marker = tokenizer.convert_tokens_to_ids(MARKER)
    assert (batch["input_ids"][-2:] == marker).any(-1).all()


def test_append_keeps_whole_rows_when_asked(tokenizer, tmp_path):
    GeneratedPool(tmp_path).write_round(0, _long_rows(2))
    features = _features(tokenizer, 4)
    batch = _collator(tokenizer, tmp_path, rows_per_batch=2, truncate=False)(features)
    assert batch["input_ids"].shape[1] > DataCollatorWithPadding(tokenizer)(features)["input_ids"].shape[1]
    with pytest.raises(ValueError, match="replace"):
        _collator(tokenizer, tmp_path, mode="replace", truncate=False)
