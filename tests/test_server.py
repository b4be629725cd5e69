"""The embedded TGI-protocol server: routes, protocol shapes (as huggingface_hub parses them), streaming, faults.

The backends are tested in test_server_backends.py, the command line in test_serve_teacher.py."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import jsonschema
import pytest
from huggingface_hub import InferenceClient
from teacher_testing import get

from hf_activekd.server import Fault, ScriptedBackend, TeacherServer
from hf_activekd.teachers import samples_schema


@pytest.fixture
def server():
    with TeacherServer(ScriptedBackend(model_id="scripted-test")) as server:
        yield server


def post(url: str, payload: dict) -> tuple[int, dict | list | str, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read().decode()
            return reply.status, json.loads(body) if body else "", dict(reply.headers)
    except urllib.error.HTTPError as err:
        body = err.read().decode()
        try:
            return err.code, json.loads(body), dict(err.headers)
        except ValueError:
            return err.code, body, dict(err.headers)


def test_chat_route_with_huggingface_hub_client(server):
    schema = samples_schema(["billing"], 3)
    client = InferenceClient(server.url)
    out = client.chat_completion(
        [{"role": "user", "content": "write"}],
        response_format={"type": "json_object", "value": schema},
        max_tokens=300,
        seed=5,
    )
    content = json.loads(out.choices[0].message.content)
    jsonschema.validate(content, schema)
    assert "5-2" in content["examples"][2]["text"]
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    assert out.model == "scripted-test"
    # OpenAI-style json_schema formats are accepted too (sent as is by other clients).
    status, body, _ = post(
        f"{server.url}/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "write"}]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
            "seed": 1,
        },
    )
    assert status == 200
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), schema)
    assert body["choices"][0]["finish_reason"] in ("stop", "length")


def test_tgi_routes_with_huggingface_hub_client(server):
    schema = samples_schema(["refund"], 2)
    client = InferenceClient(server.url)
    out = client.text_generation(
        "prompt", grammar={"type": "json", "value": schema}, details=True, decoder_input_details=True, seed=3
    )
    jsonschema.validate(json.loads(out.generated_text), schema)
    assert out.details.generated_tokens > 0 and len(out.details.prefill) > 0
    assert json.loads(client.text_generation("prompt", grammar={"type": "json", "value": schema}))["examples"]
    # POST / answers a one-element list (like TGI), POST /generate an object.
    status, body, headers = post(
        server.url + "/", {"inputs": "x", "parameters": {"grammar": {"type": "json", "value": schema}}}
    )
    assert status == 200 and isinstance(body, list) and "generated_text" in body[0]
    status, body, _ = post(
        server.url + "/generate",
        {"inputs": "x", "parameters": {"grammar": {"type": "json", "value": json.dumps(schema)}, "details": True}},
    )
    assert status == 200 and isinstance(body, dict) and body["details"]["generated_tokens"] > 0
    assert server.stats["routes"]["POST /"] == 3 and server.stats["routes"]["POST /generate"] == 1


def test_streaming(server):
    schema = samples_schema(["refund"], 2)
    client = InferenceClient(server.url)
    chunks = list(client.text_generation("p", grammar={"type": "json", "value": schema}, stream=True, details=True))
    text = "".join(c.token.text for c in chunks)
    jsonschema.validate(json.loads(text), schema)
    assert chunks[-1].generated_text == text and chunks[-1].details.generated_tokens > 0
    deltas = list(
        client.chat_completion(
            [{"role": "user", "content": "x"}], response_format={"type": "json_object", "value": schema}, stream=True
        )
    )
    jsonschema.validate(json.loads("".join(d.choices[0].delta.content for d in deltas)), schema)


def test_info_health_and_unknown_routes(server):
    status, body = get(server.url + "/info")
    assert status == 200
    info = json.loads(body)
    assert info["model_id"] == "scripted-test" and info["backend"] == "ScriptedBackend"
    assert InferenceClient(server.url, provider="hf-inference").get_endpoint_info()["model_id"] == "scripted-test"
    assert get(server.url + "/health")[0] == 200
    assert get(server.url + "/nope")[0] == 404
    assert post(server.url + "/nope", {})[0] == 404
    assert json.loads(get(server.url + "/v1/models")[1])["data"][0]["id"] == "scripted-test"
    server.healthy = False
    assert get(server.url + "/health")[0] == 503
    stats = server.stats
    assert stats["routes"]["GET /health"] == 2 and stats["routes"]["GET /info"] == 2
    assert stats["errors"] == {"404": 2, "503": 1}


def test_bad_requests_are_422(server):
    assert post(server.url + "/generate", {"parameters": {}})[0] == 422
    assert post(server.url + "/v1/chat/completions", {"messages": "hi"})[0] == 422
    status, body, _ = post(
        server.url + "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "regex", "value": "a+"}},
    )
    assert status == 422 and "response_format" in body["error"]
    assert server.stats["generations"] == 0


def test_faults_are_injected_and_counted():
    backend = ScriptedBackend.sequence(
        [
            Fault(status=429, retry_after=2),
            Fault(status=503, body="upstream down"),
            Fault(delay_s=0.3),
            Fault(delay_s=0.1, then="{broken"),
            "",
            lambda req: f"seed={req.seed}",
        ]
    )
    with TeacherServer(backend) as server:
        url = server.url + "/generate"
        status, body, headers = post(url, {"inputs": "x"})
        assert status == 429 and headers["Retry-After"] == "2" and body["error_type"] == "overloaded"
        status, body, _ = post(url, {"inputs": "x"})
        assert status == 503 and body == "upstream down"
        start = time.perf_counter()
        status, body, _ = post(url, {"inputs": "x", "parameters": {"seed": 4}})
        assert status == 200 and time.perf_counter() - start >= 0.3
        assert "activekdmarker billing" not in body["generated_text"] and "4-0" in body["generated_text"]
        assert post(url, {"inputs": "x"})[1]["generated_text"] == "{broken"
        assert post(url, {"inputs": "x"})[1]["generated_text"] == ""
        assert post(url, {"inputs": "x", "parameters": {"seed": 9}})[1]["generated_text"] == "seed=9"
        assert post(url, {"inputs": "x"})[0] == 200  # script played out: default answers
        stats = server.stats
    assert stats["faults"] == {"http_429": 1, "http_503": 1, "delay": 2}
    assert stats["faults_total"] == 4 and stats["generations"] == 7
    assert backend.calls == 7 and [r.index for r in backend.requests] == list(range(7))


def test_backend_exception_is_a_500():
    def boom(req):
        raise RuntimeError("model exploded")

    with TeacherServer(ScriptedBackend(boom)) as server:
        status, body, _ = post(server.url + "/generate", {"inputs": "x"})
        assert status == 500 and "model exploded" in body["error"]
        assert get(server.url + "/health")[0] == 200  # still serving
