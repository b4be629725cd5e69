"""EvoKD's two steps in TGITeacher (teachers/tgi/evokd.py): weakness analysis, then generation with memory."""

from __future__ import annotations

from teacher_testing import fast_teacher, make_requests

from hf_activekd.server import BackendRequest, Fault, ScriptedBackend, default_answer


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
