from .base import (
    GeneratedSample,
    LabelAnswer,
    LabelQuery,
    Teacher,
    TeacherError,
    TeacherRequest,
    TeacherResponse,
    TeacherUnavailableError,
    labels_schema,
    parse_labels,
    parse_samples,
    samples_schema,
)
from .pool import PoolTeacher
from .tgi import TGITeacher

__all__ = [
    "GeneratedSample",
    "LabelAnswer",
    "LabelQuery",
    "PoolTeacher",
    "TGITeacher",
    "Teacher",
    "TeacherError",
    "TeacherRequest",
    "TeacherResponse",
    "TeacherUnavailableError",
    "labels_schema",
    "parse_labels",
    "parse_samples",
    "samples_schema",
]
