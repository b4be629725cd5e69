"""The embedded teacher: a small server speaking TGI's protocol, with scripted, pool and real-model backends."""

from .app import TeacherServer, serve_main
from .backends import (
    BackendRequest,
    Fault,
    PoolBackend,
    ScriptedBackend,
    TransformersBackend,
    default_answer,
)

__all__ = [
    "BackendRequest",
    "Fault",
    "PoolBackend",
    "ScriptedBackend",
    "TeacherServer",
    "TransformersBackend",
    "default_answer",
    "serve_main",
]
