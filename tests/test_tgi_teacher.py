"""TGITeacher against the project's own TGI-protocol server with a scripted backend: the happy path, budgets, secrets,
concurrency and where the token goes (teachers/tgi/teacher.py). Retries, answers, routes, EvoKD, the cache and the
health check have test modules of their own (test_tgi_<module>.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
from teacher_testing import TOKEN, fast_teacher, make_requests

from hf_activekd.server import BackendRequest, Fault, ScriptedBackend, default_answer
from hf_activekd.teachers import TGITeacher


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


# --------------------------------------------------------------------------- OpenAI-style base URL
def test_openai_style_base_url_and_progress_bar(serve, capsys):
    server = serve()
    teacher = fast_teacher(f"{server.url}/v1")
    teacher.check()
    responses = teacher.generate(make_requests(3), progress=True)
    assert all(r.error is None for r in responses)
    assert server.stats["routes"]["POST /v1/chat/completions"] == 3
    assert "3/3" in capsys.readouterr().err  # the tqdm bar of the round


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
