"""The embedded teacher: a small server speaking TGI's protocol, with scripted, pool and real-model backends."""

from .backends import (
    BackendRequest,
    Fault,
    PoolBackend,
    ScriptedBackend,
    TransformersBackend,
    default_answer,
)
from .serve_teacher import serve_main
from .teacher_server import TeacherServer

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
