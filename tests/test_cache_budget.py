"""The disk cache of teacher answers and the lifetime budget, on their own."""

from __future__ import annotations

import json
import threading

import pytest

from hf_activekd.teachers import GeneratedSample, TeacherRequest, TeacherResponse
from hf_activekd.teachers.budget import TeacherBudget, Usage
from hf_activekd.teachers.cache import ResponseCache


def test_cache_roundtrip_and_layout(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    request = TeacherRequest(key="r0/a/0", label="a", num_samples=1, messages=[{"role": "user", "content": "x"}])
    key = request.fingerprint("model")
    assert cache.get(key) is None and key not in cache
    response = TeacherResponse(key="r0/a/0", samples=[GeneratedSample("some text", "a")], completion_tokens=5)
    cache.put(key, {"response": response.to_dict()})
    assert key in cache and len(cache) == 1
    assert (tmp_path / "c" / key[:2] / f"{key}.json").is_file()
    restored = TeacherResponse.from_dict(cache.get(key)["response"])
    assert restored == response
    assert cache.hits == 1 and cache.misses == 1
    # No temporary files are left behind.
    assert [p.name for p in (tmp_path / "c").rglob("*") if p.is_file()] == [f"{key}.json"]


def test_cache_keys_separate_seeds_models_and_messages():
    base = TeacherRequest(key="k", label="a", num_samples=2, messages=[{"role": "user", "content": "x"}], seed=1)
    other_seed = TeacherRequest(key="k", label="a", num_samples=2, messages=base.messages, seed=2)
    other_messages = TeacherRequest(key="k", label="a", num_samples=2, messages=[{"role": "user", "content": "y"}])
    keys = {
        base.fingerprint("m"),
        other_seed.fingerprint("m"),
        other_messages.fingerprint("m"),
        base.fingerprint("other-model"),
    }
    assert len(keys) == 4
    # The request key (its place in the run) is not part of the fingerprint: same content, same answer.
    same = TeacherRequest(key="other", label="a", num_samples=2, messages=base.messages, seed=1)
    assert same.fingerprint("m") == base.fingerprint("m")


def test_cache_ignores_corrupt_entries_and_bad_keys(tmp_path):
    cache = ResponseCache(tmp_path)
    key = "ab" + "0" * 62
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None
    with pytest.raises(ValueError):
        cache.get("../../etc/passwd")


def test_cache_concurrent_writers(tmp_path):
    cache = ResponseCache(tmp_path)
    key = "cd" + "1" * 62

    def write(i):
        for _ in range(20):
            cache.put(key, {"writer": i, "payload": "x" * 1000})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entry = json.loads((tmp_path / "cd" / f"{key}.json").read_text())
    assert entry["payload"] == "x" * 1000


def test_budget_request_limit_is_exact_across_threads():
    budget = TeacherBudget(max_requests=37)
    granted = []

    def take():
        for _ in range(50):
            if budget.reserve(10, 10) is not None:
                granted.append(1)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 37 and budget.usage.requests == 37
    assert budget.exhausted and "max_requests=37" in budget.exhausted_reason


def test_budget_tokens_reserve_worst_case_then_settle():
    budget = TeacherBudget(max_total_tokens=100)
    first = budget.reserve(20, 30)  # worst case 50
    second = budget.reserve(20, 30)  # worst case 100 in flight: still fits
    assert first is not None and second is not None
    assert budget.reserve(1, 0) is None  # nothing fits while the worst case is reserved
    budget.settle(first, 20, 10)  # really used 30
    budget.settle(second, 20, 10)
    assert budget.usage.total_tokens == 60
    assert budget.reserve(20, 20) is not None  # 60 + 40 = 100
    assert budget.reserve(1, 0) is None
    assert "max_total_tokens=100" in budget.exhausted_reason


def test_budget_cost_and_prices():
    budget = TeacherBudget(max_cost=1.0, price_per_million_input_tokens=2.0, price_per_million_output_tokens=10.0)
    assert budget.cost_of(1_000_000, 0) == pytest.approx(2.0)
    assert budget.cost_of(100_000, 10_000) == pytest.approx(0.3)
    reservation = budget.reserve(100_000, 10_000)
    assert budget.settle(reservation, 100_000, 10_000) == pytest.approx(0.3)
    assert budget.reserve(100_000, 60_000) is None  # 0.3 + 0.8 > 1.0
    assert budget.reserve(100_000, 40_000) is not None  # 0.3 + 0.6
    assert TeacherBudget().cost_of(10**6, 10**6) == 0.0


def test_budget_state_roundtrip():
    budget = TeacherBudget(max_requests=3)
    budget.settle(budget.reserve(5, 5), 4, 3)
    budget.count_cache_hit()
    state = json.loads(json.dumps(budget.state_dict()))
    assert state == {
        "requests": 1,
        "prompt_tokens": 4,
        "completion_tokens": 3,
        "total_tokens": 7,
        "cost": 0.0,
        "cache_hits": 1,
        "estimated_tokens": 0,
    }
    restored = TeacherBudget(max_requests=3)
    restored.load_state_dict(state)
    assert restored.usage == Usage(requests=1, prompt_tokens=4, completion_tokens=3, cost=0.0, cache_hits=1)
    assert restored.reserve(1, 1) and restored.reserve(1, 1) and restored.reserve(1, 1) is None
