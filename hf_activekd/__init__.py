"""hf-activekd: performance-guided active knowledge distillation from a teacher LLM into a small classifier."""

from .callback import ActiveKDCallback
from .collator import ActiveKDDataCollator
from .config import ActiveKDConfig
from .metrics import EvalReport, MetricsRecorder, build_report
from .policy import allocate, plan_requests
from .pool import GeneratedPool, RowFilter
from .rounds import RoundRunner
from .teachers import (
    GeneratedSample,
    PoolTeacher,
    Teacher,
    TeacherError,
    TeacherRequest,
    TeacherResponse,
    TeacherUnavailableError,
    TGITeacher,
)

__version__ = "0.1.0"

__all__ = [
    "ActiveKDCallback",
    "ActiveKDConfig",
    "ActiveKDDataCollator",
    "EvalReport",
    "GeneratedPool",
    "GeneratedSample",
    "MetricsRecorder",
    "PoolTeacher",
    "RoundRunner",
    "RowFilter",
    "TGITeacher",
    "Teacher",
    "TeacherError",
    "TeacherRequest",
    "TeacherResponse",
    "TeacherUnavailableError",
    "allocate",
    "build_report",
    "plan_requests",
]
