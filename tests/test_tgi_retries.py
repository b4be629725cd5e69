"""Retries of TGITeacher (teachers/tgi/retries.py, transport.py): which failures are retried, how long it waits,
how a failure is reported."""

from __future__ import annotations

import time

from teacher_testing import fast_teacher, make_requests, teacher_requests

from hf_activekd.server import BackendRequest, Fault, ScriptedBackend, default_answer


def test_429_with_retry_after_waits_at_least_that(serve):
    server = serve(ScriptedBackend.sequence([Fault(status=429, retry_after=1.0)]))
    teacher = fast_teacher(server.url, max_concurrency=1)
    start = time.perf_counter()
    [response] = teacher.generate(make_requests(1), progress=False)
    elapsed = time.perf_counter() - start
    assert response.error is None and len(response.samples) == 2
    assert response.faults == {"http_429": 1}
    assert response.attempts == 2
    assert elapsed >= 1.0
    assert server.stats["faults"] == {"http_429": 1}


def test_503_then_success(serve):
    server = serve(ScriptedBackend.sequence([Fault(status=503), Fault(status=502)]))
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert response.error is None and response.samples
    assert response.faults == {"http_503": 1, "http_502": 1}
    assert response.attempts == 3
    assert teacher_requests(server) == 3


def test_timeout_is_retried(serve):
    server = serve(ScriptedBackend.sequence([Fault(delay_s=3.0)]))
    teacher = fast_teacher(server.url, timeout_s=0.5)
    start = time.perf_counter()
    [response] = teacher.generate(make_requests(1), progress=False)
    assert response.error is None and response.samples
    assert response.faults == {"timeout": 1}
    assert response.attempts == 2
    assert time.perf_counter() - start < 2.5


def test_non_retryable_status_fails_at_once(serve):
    server = serve(ScriptedBackend.sequence([Fault(status=400, body='{"error": "bad request"}')]))
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert response.error == "HTTP 400: bad request"
    assert response.attempts == 1 and response.faults == {"http_400": 1}


def test_request_failing_all_attempts_does_not_stop_the_round(serve):
    def answer(req: BackendRequest):
        if "request 2)" in req.text:
            return Fault(status=503, body='{"error": "shard down"}')
        return default_answer(req)

    server = serve(ScriptedBackend(answer))
    teacher = fast_teacher(server.url, max_attempts=3, max_concurrency=4)
    responses = teacher.generate(make_requests(5), progress=False)
    failed = responses[2]
    assert failed.error == "HTTP 503: shard down (after 3 attempts)"
    assert failed.attempts == 3 and failed.faults == {"http_503": 3} and not failed.samples
    assert all(r.error is None and len(r.samples) == 2 for i, r in enumerate(responses) if i != 2)
    assert teacher.usage["requests"] == 4 + 3


def test_retry_after_parsing_and_limits(serve):
    from email.utils import formatdate

    from hf_activekd.teachers.tgi import _retry_after

    class Reply:
        def __init__(self, value):
            self.headers = {"retry-after": value} if value is not None else {}

    assert _retry_after(Reply("3")) == 3.0
    assert _retry_after(Reply("0.5")) == 0.5
    assert _retry_after(Reply(None)) is None
    assert _retry_after(Reply("soon")) is None
    in_two_seconds = _retry_after(Reply(formatdate(time.time() + 2, usegmt=True)))
    assert in_two_seconds is not None and 0.0 <= in_two_seconds <= 2.5
    # A server asking to come back much later than the backoff allows: the request fails now, with the reason.
    server = serve(ScriptedBackend.sequence([Fault(status=429, retry_after=3600)]))
    start = time.perf_counter()
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert time.perf_counter() - start < 2.0
    assert response.error is not None and "retry after 3600s" in response.error
    assert response.faults == {"http_429": 1}


def test_tgi_error_types_keep_their_status(serve):
    # On the TGI route, huggingface_hub turns {"error_type": "overloaded"} into OverloadedError: the status and
    # Retry-After are still found on the HTTP error it wraps.
    server = serve(ScriptedBackend.sequence([Fault(status=429, retry_after=0.5)]))
    start = time.perf_counter()
    [response] = fast_teacher(server.url, use_chat=False).generate(make_requests(1), progress=False)
    assert response.error is None and response.faults == {"http_429": 1}
    assert time.perf_counter() - start >= 0.5
