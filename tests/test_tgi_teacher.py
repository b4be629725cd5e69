"""TGITeacher against the project's own TGI-protocol server with a scripted backend: faults, retries, repair, EvoKD."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time

import pytest

from hf_activekd.server import BackendRequest, Fault, ScriptedBackend, TeacherServer, default_answer
from hf_activekd.teachers import TeacherRequest, TeacherUnavailableError, TGITeacher, samples_schema
from hf_activekd.teachers.tgi import extract_json, messages_to_prompt, strip_url

TOKEN = "hf_SECRETTOKEN123"


def make_requests(n: int, label: str = "billing", num_samples: int = 2, prefix: str = "r0") -> list[TeacherRequest]:
    return [
        TeacherRequest(
            key=f"{prefix}/{label}/{i}",
            label=label,
            num_samples=num_samples,
            messages=[
                {"role": "system", "content": "You write training data."},
                {"role": "user", "content": f"Write {num_samples} examples of {label} (request {i})."},
            ],
            json_schema=samples_schema([label], num_samples),
            seed=1000 + i,
            max_new_tokens=64,
        )
        for i in range(n)
    ]


def fast_teacher(url: str, **kwargs) -> TGITeacher:
    kwargs.setdefault("backoff_base_s", 0.01)
    kwargs.setdefault("backoff_max_s", 0.05)
    kwargs.setdefault("timeout_s", 10.0)
    return TGITeacher(url, **kwargs)


@pytest.fixture
def serve():
    servers = []

    def start(backend=None, **kwargs) -> TeacherServer:
        server = TeacherServer(backend or ScriptedBackend(), **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- happy paths
def test_chat_happy_path(serve):
    server = serve()
    teacher = fast_teacher(server.url, token=TOKEN)
    teacher.check()
    responses = teacher.generate(make_requests(4), progress=False)
    assert [r.key for r in responses] == [f"r0/billing/{i}" for i in range(4)]
    for i, response in enumerate(responses):
        assert response.error is None and response.attempts == 1 and not response.cached
        assert response.faults == {}
        assert [s.label for s in response.samples] == ["billing", "billing"]
        assert all("activekdmarker" in s.text and f"{1000 + i}-" in s.text for s in response.samples)
        assert response.prompt_tokens > 0 and response.completion_tokens > 0
    assert server.stats["routes"]["POST /v1/chat/completions"] == 4
    assert "POST /" not in server.stats["routes"]
    usage = teacher.usage
    assert usage["requests"] == 4
    assert usage["completion_tokens"] == sum(r.completion_tokens for r in responses)
    assert teacher.uses_chat


def test_request_parameters_reach_the_server(serve):
    backend = ScriptedBackend()
    server = serve(backend)
    request = make_requests(1)[0]
    fast_teacher(server.url).generate([request], progress=False)
    seen = backend.requests[0]
    assert seen.route == "/v1/chat/completions"
    assert seen.schema == request.json_schema
    assert seen.seed == request.seed and seen.max_new_tokens == 64
    assert seen.temperature == pytest.approx(request.temperature)
    assert seen.messages[-1]["content"] == request.messages[-1]["content"]


def test_text_generation_fallback_without_chat_route(serve):
    backend = ScriptedBackend()
    server = serve(backend, chat_route=False)
    teacher = fast_teacher(server.url, max_concurrency=4)
    responses = teacher.generate(make_requests(6), progress=False)
    assert all(r.error is None and len(r.samples) == 2 for r in responses)
    assert not teacher.uses_chat
    assert sum(r.faults.get("chat_fallback", 0) for r in responses) >= 1
    assert server.stats["routes"]["POST /"] == 6
    # The grammar and prompt went through the TGI route; details give the token counts.
    assert all(r.route == "/" and r.schema == responses_schema() for r in backend.requests)
    assert backend.requests[0].prompt.endswith("Assistant:")
    assert all(r.completion_tokens > 0 and r.prompt_tokens > 0 for r in responses)
    # Later rounds go straight to text_generation.
    chat_calls = server.stats["routes"]["POST /v1/chat/completions"]
    teacher.generate(make_requests(2, prefix="r1"), progress=False)
    assert server.stats["routes"]["POST /v1/chat/completions"] == chat_calls
    assert teacher.describe()["route"] == "text_generation"


def responses_schema():
    return samples_schema(["billing"], 2)


def test_use_chat_false_never_calls_chat(serve):
    server = serve()
    responses = fast_teacher(server.url, use_chat=False).generate(make_requests(2), progress=False)
    assert all(r.error is None for r in responses)
    assert server.stats["routes"] == {"POST /": 2}


# --------------------------------------------------------------------------- faults
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


def teacher_requests(server: TeacherServer) -> int:
    return server.stats["routes"].get("POST /v1/chat/completions", 0) + server.stats["routes"].get("POST /", 0)


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


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"examples": [{"text": "my card was charged twice", "label": "billing"}]}\n```',
        'Sure! Here you go: {"examples": [{"text": "my card was charged twice", "label": "billing"}]} Hope it helps.',
        '{"examples": [{"text": "my card was charged twice", "label": "billing"}, {"text": "why is my bi',
    ],
    ids=["code-fence", "chatter", "truncated"],
)
def test_malformed_json_is_repaired(serve, reply):
    server = serve(ScriptedBackend.sequence([reply]))
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert response.error is None
    assert [(s.text, s.label) for s in response.samples] == [("my card was charged twice", "billing")]
    assert response.faults == {"repaired_json": 1}
    assert response.attempts == 1


def test_unrepairable_json_is_retried_with_another_seed(serve):
    backend = ScriptedBackend.sequence(["I cannot answer in JSON, sorry.", '{"examples": [{"text": '])
    server = serve(backend)
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert response.error is None and len(response.samples) == 2
    assert response.faults == {"malformed_json": 2}
    assert response.attempts == 3
    assert len({r.seed for r in backend.requests}) == 3  # a deterministic server would repeat the same bad answer


def test_malformed_json_every_time_fails_with_error(serve):
    server = serve(ScriptedBackend(lambda req: "not json"))
    [response] = fast_teacher(server.url, max_attempts=3).generate(make_requests(1), progress=False)
    assert response.error is not None and "malformed_json" in response.error
    assert response.faults == {"malformed_json": 3} and response.attempts == 3 and not response.samples


def test_empty_reply_is_retried(serve):
    server = serve(ScriptedBackend.sequence(["", '{"examples": []}']))
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert response.error is None and len(response.samples) == 2
    assert response.faults == {"empty_reply": 2}
    assert response.attempts == 3


def test_unknown_labels_are_returned_as_is(serve):
    def answer(req: BackendRequest) -> str:
        return json.dumps(
            {"examples": [{"text": "the stars say you will pay", "label": "astrology"}, {"text": "plain text here"}]}
        )

    server = serve(ScriptedBackend(answer))
    [response] = fast_teacher(server.url).generate(make_requests(1), progress=False)
    assert response.error is None
    # The caller drops unknown labels (and counts them); the teacher keeps what it got, the label from the request
    # standing in where the answer has none.
    assert [(s.text, s.label) for s in response.samples] == [
        ("the stars say you will pay", "astrology"),
        ("plain text here", "billing"),
    ]


def test_server_down_at_start():
    url = f"http://127.0.0.1:{free_port()}"
    teacher = fast_teacher(url, token=TOKEN, max_attempts=2)
    with pytest.raises(TeacherUnavailableError) as info:
        teacher.check()
    assert url in str(info.value)
    assert TOKEN not in str(info.value)
    # generate() never raises: every response carries the error.
    responses = teacher.generate(make_requests(3), progress=False)
    assert all(r.error and "connection_error" in r.error and TOKEN not in r.error for r in responses)
    assert all(r.faults == {"connection_error": 2} and r.attempts == 2 for r in responses)


def test_check_reports_unhealthy_server(serve):
    server = serve()
    teacher = fast_teacher(server.url)
    teacher.check()
    server.healthy = False
    with pytest.raises(TeacherUnavailableError, match="not healthy") as info:
        teacher.check()
    assert server.url in str(info.value)
    # An OpenAI-style base URL (".../v1") is checked at the server root.
    server.healthy = True
    fast_teacher(f"{server.url}/v1").check()


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


# --------------------------------------------------------------------------- budgets
def test_max_requests_is_exact_under_concurrency(serve, caplog):
    server = serve(ScriptedBackend(latency_s=0.05))
    teacher = fast_teacher(server.url, max_requests=5, max_concurrency=8)
    with caplog.at_level(logging.WARNING, logger="hf_activekd.teachers.tgi"):
        responses = teacher.generate(make_requests(16), progress=False)
        assert server.stats["generations"] == 5
        assert sum(r.error is None for r in responses) == 5
        exhausted = [r for r in responses if r.error is not None]
        assert len(exhausted) == 11
        assert all(r.error == "budget exhausted" and r.faults == {"budget_exhausted": 1} for r in exhausted)
        assert all(r.attempts == 0 for r in exhausted)
        # Later rounds send nothing and do not warn again.
        later = teacher.generate(make_requests(3, prefix="r1"), progress=False)
    assert all(r.error == "budget exhausted" for r in later)
    assert server.stats["generations"] == 5
    assert teacher.usage["requests"] == 5
    warnings = [r for r in caplog.records if "budget exhausted" in r.getMessage()]
    assert len(warnings) == 1


def test_max_requests_counts_retries(serve):
    server = serve(ScriptedBackend.sequence([Fault(status=503), Fault(status=503)]))
    teacher = fast_teacher(server.url, max_requests=3, max_concurrency=1)
    responses = teacher.generate(make_requests(2), progress=False)
    assert responses[0].error is None and responses[0].attempts == 3
    assert responses[1].error == "budget exhausted"
    assert server.stats["generations"] == 3


def test_token_and_cost_budgets_are_never_exceeded(serve):
    server = serve(ScriptedBackend(latency_s=0.02))
    teacher = fast_teacher(
        server.url,
        max_total_tokens=600,
        price_per_million_input_tokens=1000.0,
        price_per_million_output_tokens=2000.0,
        max_concurrency=4,
    )
    responses = teacher.generate(make_requests(20), progress=False)
    usage = teacher.usage
    answered = [r for r in responses if r.error is None]
    assert 0 < len(answered) < 20
    assert usage["total_tokens"] <= 600
    assert usage["total_tokens"] == sum(r.prompt_tokens + r.completion_tokens for r in responses)
    for r in answered:
        assert r.cost == pytest.approx(r.prompt_tokens * 1e-3 + r.completion_tokens * 2e-3)
    assert usage["cost"] == pytest.approx(sum(r.cost for r in responses))

    cost_teacher = fast_teacher(
        server.url, max_cost=0.5, price_per_million_input_tokens=1000.0, price_per_million_output_tokens=2000.0
    )
    cost_teacher.generate(make_requests(20, prefix="r2"), progress=False)
    assert 0 < cost_teacher.usage["cost"] <= 0.5
    assert cost_teacher.usage["requests"] < 20


def test_budget_survives_resume(serve):
    server = serve()
    first = fast_teacher(server.url, max_requests=4)
    first.generate(make_requests(3), progress=False)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = fast_teacher(server.url, max_requests=4)
    resumed.load_state_dict(state)
    assert resumed.usage["requests"] == 3
    responses = resumed.generate(make_requests(3, prefix="r1"), progress=False)
    assert sum(r.error is None for r in responses) == 1
    assert server.stats["generations"] == 4


# --------------------------------------------------------------------------- cache and secrets
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


def test_token_never_leaks(serve, tmp_path, caplog):
    def echo(req: BackendRequest):
        # A misbehaving server that echoes the credentials in its error body.
        return Fault(status=400, body=json.dumps({"error": f"invalid token {TOKEN} (Bearer {TOKEN})"}))

    good = serve()
    bad = serve(ScriptedBackend(echo))
    cache = tmp_path / "cache"
    with caplog.at_level(logging.DEBUG):
        teacher = fast_teacher(good.url, token=TOKEN, cache_dir=str(cache))
        teacher.generate(make_requests(2), progress=False)
        failing = fast_teacher(bad.url, token=TOKEN)
        [response] = failing.generate(make_requests(1), progress=False)
    assert response.error and "invalid token" in response.error
    texts = [response.error, json.dumps(teacher.describe()), json.dumps(teacher.state_dict()), repr(teacher)]
    texts += [json.dumps(failing.describe()), caplog.text]
    texts += [p.read_text() for p in cache.rglob("*.json")]
    assert len(list(cache.rglob("*.json"))) == 2
    for text in texts:
        assert TOKEN not in text


def test_describe_strips_url_credentials():
    teacher = TGITeacher("https://user:pa55@abc.endpoints.huggingface.cloud:8443/v1/?api_key=xyz", token=TOKEN)
    described = json.dumps(teacher.describe())
    assert teacher.name == "abc.endpoints.huggingface.cloud:8443"
    assert "pa55" not in described and "xyz" not in described and TOKEN not in described
    assert teacher.describe()["simulation"] is False and teacher.describe()["type"] == "TGITeacher"
    hub = TGITeacher("meta-llama/Llama-3.1-8B-Instruct")
    assert hub.name == "meta-llama/Llama-3.1-8B-Instruct" and hub.describe()["endpoint"] is None


# --------------------------------------------------------------------------- concurrency
def test_concurrency_reaches_the_bound(serve):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def answer(req: BackendRequest) -> str:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return default_answer(req)

    server = serve(ScriptedBackend(answer))
    teacher = fast_teacher(server.url, max_concurrency=8)
    teacher.generate(make_requests(1, prefix="warmup"), progress=False)
    start = time.perf_counter()
    responses = teacher.generate(make_requests(16), progress=False)
    elapsed = time.perf_counter() - start
    assert all(r.error is None for r in responses)
    assert elapsed < 1.0, elapsed  # bound: ceil(16 / 8) * 0.2 s = 0.4 s
    assert state["peak"] == 8


def test_generate_inside_a_running_event_loop(serve):
    server = serve()
    teacher = fast_teacher(server.url)

    async def main():
        return teacher.generate(make_requests(2), progress=False)

    responses = asyncio.run(main())
    assert all(r.error is None for r in responses)


# --------------------------------------------------------------------------- EvoKD
def test_evokd_analysis_then_generation_with_memory(serve):
    def answer(req: BackendRequest) -> str:
        if req.schema is None:
            return "The student confuses billing with refunds when amounts are mentioned."
        return default_answer(req)

    backend = ScriptedBackend(answer)
    server = serve(backend)
    teacher = fast_teacher(server.url, evokd=True, max_concurrency=1)
    responses = teacher.generate(make_requests(2), progress=False)
    assert all(r.error is None for r in responses)
    # One analysis for the class, then one generation per request.
    assert [r.schema is None for r in backend.requests] == [True, False, False]
    assert "analyse" in backend.requests[0].messages[-1]["content"]
    assert "confuses billing with refunds" in backend.requests[1].messages[-1]["content"]
    assert responses[0].faults == {"evokd_analysis": 1}
    assert teacher.usage["requests"] == 3
    analysis_tokens = responses[0].prompt_tokens + responses[0].completion_tokens
    assert analysis_tokens > responses[1].prompt_tokens + responses[1].completion_tokens
    # The next round shows samples written earlier and asks for different ones.
    teacher.generate(make_requests(1, prefix="r1"), progress=False)
    prompt = backend.requests[-1].messages[-1]["content"]
    assert "do NOT repeat" in prompt
    assert responses[1].samples[-1].text in prompt
    assert "billing" in teacher.state_dict()["evokd_memory"]


def test_evokd_survives_a_failed_analysis(serve):
    server = serve(ScriptedBackend.sequence([Fault(status=400)]))
    teacher = fast_teacher(server.url, evokd=True)
    [response] = teacher.generate(make_requests(1), progress=False)
    assert response.error is None and response.samples
    assert response.faults == {"http_400": 1, "evokd_analysis_failed": 1}


# --------------------------------------------------------------------------- helpers
def test_extract_json():
    assert extract_json('{"a": 1}') == ({"a": 1}, False)
    assert extract_json('```\n[{"text": "x"}]\n```') == ([{"text": "x"}], True)
    assert extract_json('[{"text": "abc"}, {"text": "de') == ({"examples": [{"text": "abc"}]}, True)
    assert extract_json('prefix {"examples": [{"text": "a b"}]} suffix {"x": 1}') == (
        {"examples": [{"text": "a b"}]},
        True,
    )
    for bad in ["", "   ", "no json", '{"examples": [{"text": "unfinished']:
        with pytest.raises(ValueError):
            extract_json(bad)


def test_prompt_and_url_helpers():
    prompt = messages_to_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert prompt == "System: S\n\nUser: U\n\nAssistant:"
    assert strip_url("https://u:p@host:8080/path/?token=1#f") == "https://host:8080/path"


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


def test_use_chat_true_never_falls_back(serve):
    server = serve(chat_route=False)
    [response] = fast_teacher(server.url, use_chat=True).generate(make_requests(1), progress=False)
    assert response.error is not None and response.error.startswith("HTTP 404")
    assert response.faults == {"http_404": 1} and "POST /" not in server.stats["routes"]


def test_openai_style_base_url_and_progress_bar(serve, capsys):
    server = serve()
    teacher = fast_teacher(f"{server.url}/v1")
    teacher.check()
    responses = teacher.generate(make_requests(3), progress=True)
    assert all(r.error is None for r in responses)
    assert server.stats["routes"]["POST /v1/chat/completions"] == 3
    assert "3/3" in capsys.readouterr().err  # the tqdm bar of the round


def test_tgi_error_types_keep_their_status(serve):
    # On the TGI route, huggingface_hub turns {"error_type": "overloaded"} into OverloadedError: the status and
    # Retry-After are still found on the HTTP error it wraps.
    server = serve(ScriptedBackend.sequence([Fault(status=429, retry_after=0.5)]))
    start = time.perf_counter()
    [response] = fast_teacher(server.url, use_chat=False).generate(make_requests(1), progress=False)
    assert response.error is None and response.faults == {"http_429": 1}
    assert time.perf_counter() - start >= 0.5


# --------------------------------------------------------------------------- where the token goes
@pytest.fixture
def recorded_auth(monkeypatch):
    """The ``Authorization`` header of every request the project's teacher servers receive: ``[(path, value)]``."""
    from hf_activekd.server import app

    seen: list[tuple[str, str | None]] = []
    for name in ("do_GET", "do_POST"):
        original = getattr(app._Handler, name)

        def recording(self, _original=original):
            seen.append((self.path.split("?", 1)[0], self.headers.get("Authorization")))
            return _original(self)

        monkeypatch.setattr(app._Handler, name, recording)
    return seen


def test_stored_token_never_reaches_a_non_hf_server(serve, recorded_auth, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the user's saved token, as `hf auth login` or HF_TOKEN would give it
    monkeypatch.delenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", raising=False)
    server = serve()
    with caplog.at_level(logging.DEBUG):
        teacher = fast_teacher(server.url)  # token=None: the implicit token stays at home
        teacher.check()
        responses = teacher.generate(make_requests(2), progress=False)
        fallback = fast_teacher(serve(chat_route=False).url)  # the text_generation route too
        fallback.generate(make_requests(1), progress=False)
    assert all(r.error is None for r in responses)
    paths = [path for path, _ in recorded_auth]
    assert "/health" in paths and "/v1/chat/completions" in paths and "/" in paths
    assert [auth for _, auth in recorded_auth] == [None] * len(recorded_auth)
    assert TOKEN not in caplog.text


def test_explicit_token_goes_where_the_user_says(serve, recorded_auth, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", "hf_storedTokenNotThisOne")
    server = serve()
    with caplog.at_level(logging.DEBUG):
        teacher = fast_teacher(server.url, token=TOKEN)
        teacher.check()
        teacher.generate(make_requests(1), progress=False)
    assert {path for path, _ in recorded_auth} >= {"/health", "/v1/chat/completions"}
    assert {auth for _, auth in recorded_auth} == {f"Bearer {TOKEN}"}
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    "target, allowed",
    [
        ("meta-llama/Llama-3.1-8B-Instruct", True),  # a model id: huggingface_hub routes it to Inference Providers
        ("https://router.huggingface.co/v1", True),
        ("https://api-inference.huggingface.co/models/gpt2", True),
        ("https://huggingface.co/api", True),
        ("https://hf.co", True),
        ("https://abc123.us-east-1.aws.endpoints.huggingface.cloud/v1/", True),
        ("https://ABC.ENDPOINTS.HUGGINGFACE.CLOUD:443", True),
        ("http://abc.endpoints.huggingface.cloud", False),  # plain http: never implicitly
        ("http://127.0.0.1:8080", False),
        ("http://localhost:8080/v1", False),
        ("https://my-tgi.example.com", False),
        ("https://huggingface.co.evil.example", False),
        ("https://evilhuggingface.co", False),
        ("https://endpoints.huggingface.cloud.evil.example", False),
        ("https://huggingface.co@evil.example", False),
        ("https://user:pw@huggingface.co", True),
    ],
)
def test_which_hosts_get_the_implicit_token(target, allowed, monkeypatch):
    from hf_activekd.auth import implicit_token_allowed

    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert implicit_token_allowed(target) is allowed


def test_hf_endpoint_host_gets_the_implicit_token_over_https_only(monkeypatch):
    from hf_activekd.auth import implicit_token_allowed

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.internal.example")
    assert implicit_token_allowed("https://hub.internal.example/models/x")
    assert not implicit_token_allowed("https://other.internal.example")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9999")
    assert not implicit_token_allowed("http://127.0.0.1:9999")
