"""The generated pool on disk: nothing is ever deleted."""

from __future__ import annotations

from hf_activekd.pool import GeneratedPool


def test_every_discarded_round_file_is_kept(tmp_path):
    pool = GeneratedPool(tmp_path)
    for attempt in range(3):  # three resumes from the same checkpoint, each after round 1 was generated again
        pool.write_round(0, [{"text": "kept", "label": "a"}])
        pool.write_round(1, [{"text": f"attempt {attempt}", "label": "a"}])
        pool.remove_rounds_after(0)
    discarded = sorted(p.name for p in tmp_path.glob("round-0001.jsonl.discarded*"))
    assert discarded == ["round-0001.jsonl.discarded", "round-0001.jsonl.discarded.1", "round-0001.jsonl.discarded.2"]
    texts = sorted((tmp_path / name).read_text() for name in discarded)
    assert texts == [f'{{"text": "attempt {i}", "label": "a"}}\n' for i in range(3)]
    assert [r["text"] for r in pool.rows()] == ["kept"]
