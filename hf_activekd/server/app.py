"""The embedded teacher server's old single module, kept so that ``hf_activekd.server.app`` imports still work.

The server now lives in small modules: :mod:`~hf_activekd.server.teacher_server` (:class:`TeacherServer`),
:mod:`~hf_activekd.server.handler` (which route answers), :mod:`~hf_activekd.server.tgi_routes` and
:mod:`~hf_activekd.server.openai_routes` (the two protocols), :mod:`~hf_activekd.server.streaming` (server-sent
events), :mod:`~hf_activekd.server.json_grammar` (the schema a request carries),
:mod:`~hf_activekd.server.http_plumbing` (JSON in and out) and :mod:`~hf_activekd.server.serve_teacher` (the command
line). ``python -m hf_activekd.server.app`` still runs :func:`serve_main`.
"""

# ruff: noqa: F401 - private names too are re-exported for the old import path (tests patch `_Handler`)
from .backends import BackendRequest, Fault, PoolBackend, TransformersBackend
from .handler import _Handler
from .http_plumbing import MAX_BODY_BYTES, _HTTPError, _Server
from .json_grammar import _response_format_schema, _schema_from
from .serve_teacher import build_parser, serve_main
from .streaming import _tokens_of
from .teacher_server import TeacherServer, _estimate_tokens

__all__ = [
    "MAX_BODY_BYTES",
    "BackendRequest",
    "Fault",
    "PoolBackend",
    "TeacherServer",
    "TransformersBackend",
    "build_parser",
    "serve_main",
]

if __name__ == "__main__":
    raise SystemExit(serve_main())
