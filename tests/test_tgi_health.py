"""TGITeacher.check (teachers/tgi/health.py): an unreachable or sick teacher is reported before any paid request."""

from __future__ import annotations

import pytest
from teacher_testing import TOKEN, fast_teacher, free_port, make_requests

from hf_activekd.teachers import TeacherUnavailableError


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
