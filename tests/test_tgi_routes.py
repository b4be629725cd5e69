"""The two routes of TGITeacher (teachers/tgi/routes.py): chat_completion, or text_generation with a grammar."""

from __future__ import annotations

from teacher_testing import fast_teacher, make_requests, responses_schema

from hf_activekd.server import ScriptedBackend
from hf_activekd.teachers.tgi import messages_to_prompt, strip_url


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


def test_use_chat_false_never_calls_chat(serve):
    server = serve()
    responses = fast_teacher(server.url, use_chat=False).generate(make_requests(2), progress=False)
    assert all(r.error is None for r in responses)
    assert server.stats["routes"] == {"POST /": 2}


def test_use_chat_true_never_falls_back(serve):
    server = serve(chat_route=False)
    [response] = fast_teacher(server.url, use_chat=True).generate(make_requests(1), progress=False)
    assert response.error is not None and response.error.startswith("HTTP 404")
    assert response.faults == {"http_404": 1} and "POST /" not in server.stats["routes"]


def test_prompt_and_url_helpers():
    prompt = messages_to_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert prompt == "System: S\n\nUser: U\n\nAssistant:"
    assert strip_url("https://u:p@host:8080/path/?token=1#f") == "https://host:8080/path"
