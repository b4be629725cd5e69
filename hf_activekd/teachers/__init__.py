from .base import (
    GeneratedSample,
    Teacher,
    TeacherError,
    TeacherRequest,
    TeacherResponse,
    TeacherUnavailableError,
    parse_samples,
    samples_schema,
)
from .pool import PoolTeacher
from .tgi import TGITeacher

__all__ = [
    "GeneratedSample",
    "PoolTeacher",
    "TGITeacher",
    "Teacher",
    "TeacherError",
    "TeacherRequest",
    "TeacherResponse",
    "TeacherUnavailableError",
    "parse_samples",
    "samples_schema",
]
