"""Helpers of the tests of TGITeacher and the teacher server: requests, a teacher with short backoffs, a free port,
a GET.

The ``serve`` fixture (start any number of teacher servers, stopped after the test) is in ``conftest.py``.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from hf_activekd.server import TeacherServer
from hf_activekd.teachers import TeacherRequest, TGITeacher, samples_schema

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def responses_schema():
    return samples_schema(["billing"], 2)


def teacher_requests(server: TeacherServer) -> int:
    return server.stats["routes"].get("POST /v1/chat/completions", 0) + server.stats["routes"].get("POST /", 0)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
