"""The answer cache of TGITeacher (teachers/tgi/answer_cache.py): a resumed run pays nothing twice."""

from __future__ import annotations

from teacher_testing import fast_teacher, make_requests

from hf_activekd.server import Fault, ScriptedBackend


def test_cache_second_run_sends_nothing(serve, tmp_path):
    server = serve()
    requests = make_requests(5)
    first = fast_teacher(server.url, cache_dir=str(tmp_path / "cache"))
    answers = first.generate(requests, progress=False)
    assert server.stats["generations"] == 5
    resumed = fast_teacher(server.url, cache_dir=str(tmp_path / "cache"))
    replay = resumed.generate(requests, progress=False)
    assert server.stats["generations"] == 5  # zero requests sent
    assert all(r.cached and r.attempts == 0 and r.faults == {"cache_hit": 1} for r in replay)
    assert [r.samples for r in replay] == [r.samples for r in answers]
    assert resumed.usage["cache_hits"] == 5 and resumed.usage["requests"] == 0
    # A different seed is a different request: answered, not served from the cache.
    other = make_requests(1)[0]
    other.seed = 99
    [fresh] = resumed.generate([other], progress=False)
    assert not fresh.cached and server.stats["generations"] == 6


def test_failed_answers_are_not_cached(serve, tmp_path):
    server = serve(ScriptedBackend.sequence([Fault(status=400)]))
    teacher = fast_teacher(server.url, cache_dir=str(tmp_path))
    [failed] = teacher.generate(make_requests(1), progress=False)
    assert failed.error is not None
    [ok] = teacher.generate(make_requests(1), progress=False)
    assert ok.error is None and not ok.cached


def test_cache_follows_the_teacher_name_across_ports(serve, tmp_path):
    first, second = serve(), serve()
    requests = make_requests(2)
    fast_teacher(first.url, cache_dir=str(tmp_path), name="smollm2 (embedded)").generate(requests, progress=False)
    replay = fast_teacher(second.url, cache_dir=str(tmp_path), name="smollm2 (embedded)").generate(
        requests, progress=False
    )
    assert all(r.cached for r in replay) and second.stats["generations"] == 0
    # Without a name, another endpoint is another teacher.
    fast_teacher(first.url, cache_dir=str(tmp_path / "b")).generate(requests, progress=False)
    fresh = fast_teacher(second.url, cache_dir=str(tmp_path / "b")).generate(requests, progress=False)
    assert not any(r.cached for r in fresh) and second.stats["generations"] == 2
