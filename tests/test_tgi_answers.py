"""Reading a teacher's answers (teachers/tgi/answers.py): JSON repair, unusable answers retried with another seed."""

from __future__ import annotations

import json

import pytest
from teacher_testing import fast_teacher, make_requests

from hf_activekd.server import BackendRequest, ScriptedBackend
from hf_activekd.teachers.tgi import extract_json


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
