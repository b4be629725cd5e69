"""The teacher interface: what a round asks for and what comes back.

A round turns the student's validation results into a list of :class:`TeacherRequest` (one class, or one confused
pair, per request, so that even weak teachers cope), hands them to a :class:`Teacher`, and receives one
:class:`TeacherResponse` per request. Teachers never raise for a single failed request: the failure is recorded on
the response (``error``) and counted in ``faults``, and the round goes on with what it has.
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


class TeacherError(RuntimeError):
    """Raised when a teacher cannot be used at all (e.g. unreachable at start, wrong configuration)."""


class TeacherUnavailableError(TeacherError):
    """Raised by :meth:`Teacher.check` when the teacher cannot be reached."""


@dataclass
class TeacherRequest:
    """One targeted request to the teacher.

    Args:
        key (`str`):
            Stable identity of the request inside a run (``"r0003/billing/0"``): used to replay answers on resume so
            that no request already answered is sent again.
        label (`str`):
            The class the new samples must belong to. The label of an accepted sample comes from the request when the
            teacher does not return one.
        num_samples (`int`):
            How many samples are asked for.
        messages (`list[dict]`):
            Chat messages (``{"role": ..., "content": ...}``) sent to an LLM teacher.
        json_schema (`dict`):
            The JSON schema the answer must validate against (see :func:`samples_schema`).
        reason (`str`):
            Why this request was made (``"weak class: F1=0.31"``, ``"confused with 'refund' (7 errors)"``). Stored with
            every accepted row and in the round record.
        confused_with (`str`, *optional*):
            The class the student confuses ``label`` with, for confusion-pair requests.
        seed (`int`, defaults to 0):
            Sampling seed. Distinct requests use distinct seeds so that caching never collapses diversity.
        max_new_tokens (`int`, defaults to 512):
            Generation budget of the answer.
        temperature (`float`, defaults to 0.9):
            Sampling temperature.
    """

    key: str
    label: str
    num_samples: int
    messages: list[dict[str, str]] = field(default_factory=list)
    json_schema: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    confused_with: str | None = None
    seed: int = 0
    max_new_tokens: int = 512
    temperature: float = 0.9

    def fingerprint(self, model: str = "") -> str:
        """A hash of everything that determines the answer (model, messages, schema, parameters, seed)."""
        payload = {
            "model": model,
            "messages": self.messages,
            "schema": self.json_schema,
            "n": self.num_samples,
            "seed": self.seed,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class GeneratedSample:
    """One labelled example written by the teacher, before validation."""

    text: str
    label: str


@dataclass
class TeacherResponse:
    """The answer to one :class:`TeacherRequest`.

    Args:
        key (`str`): The request's key.
        samples (`list[GeneratedSample]`): The parsed samples (not yet validated against labels or deduplicated).
        prompt_tokens (`int`): Tokens sent (from the server's ``usage`` where available).
        completion_tokens (`int`): Tokens generated.
        latency_s (`float`): Wall time of the request, retries included.
        attempts (`int`): HTTP attempts made (1 when the first one succeeded, 0 for a cache hit).
        cached (`bool`): Whether the answer came from the cache or a replay of an earlier answer.
        error (`str`, *optional*): Why the request finally failed; ``samples`` is then empty.
        faults (`dict[str, int]`): Recovered or final faults by kind (``"http_429"``, ``"timeout"``,
            ``"malformed_json"``, ...).
        cost (`float`): Cost of this request, where a price per token was configured.
        estimated_tokens (`int`): Part of ``prompt_tokens + completion_tokens`` that is an estimate, not a count
            reported by the server (a timed-out attempt counts at its estimated prompt plus ``max_new_tokens``: the
            server may have generated, and billed, them).
    """

    key: str
    samples: list[GeneratedSample] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 0
    cached: bool = False
    error: str | None = None
    faults: dict[str, int] = field(default_factory=dict)
    cost: float = 0.0
    estimated_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TeacherResponse:
        data = dict(data)
        data["samples"] = [GeneratedSample(**s) for s in data.get("samples", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def samples_schema(labels: list[str], num_samples: int, min_chars: int = 8, max_chars: int = 1000) -> dict[str, Any]:
    """The JSON schema of an answer: ``{"examples": [{"text": str, "label": <one of labels>}, ...]}``.

    Small on purpose (no optional properties): TGI compiles large optional schemas slowly.
    """
    return {
        "type": "object",
        "properties": {
            "examples": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "minLength": min_chars, "maxLength": max_chars},
                        "label": {"type": "string", "enum": list(labels)},
                    },
                    "required": ["text", "label"],
                    "additionalProperties": False,
                },
                "minItems": 1,
                "maxItems": max(1, num_samples),
            }
        },
        "required": ["examples"],
        "additionalProperties": False,
    }


def labels_schema(label_options: list[str], num_texts: int) -> dict[str, Any]:
    """The JSON schema of a verification answer: ``{"labels": [<one of label_options>, ...]}``, one per text."""
    return {
        "type": "object",
        "properties": {
            "labels": {
                "type": "array",
                "items": {"type": "string", "enum": list(label_options)},
                "minItems": num_texts,
                "maxItems": num_texts,
            }
        },
        "required": ["labels"],
        "additionalProperties": False,
    }


def parse_labels(payload: Any, label_options: list[str], num_texts: int) -> list[str]:
    """The labels of a decoded verification answer (``{"labels": [...]}`` or a bare list), one per text, in order.

    Raises `ValueError` when the answer does not hold exactly ``num_texts`` labels, all among ``label_options``.
    """
    if isinstance(payload, dict):
        payload = payload.get("labels", payload.get("answers"))
    if not isinstance(payload, list) or len(payload) != num_texts:
        raise ValueError(f"expected a list of {num_texts} labels, got {str(payload)[:100]}")
    labels = [str(item) for item in payload]
    unknown = sorted(set(labels) - set(label_options))
    if unknown:
        raise ValueError(f"labels {unknown} are not among {label_options}")
    return labels


@dataclass
class LabelQuery:
    """One verification request: which of ``label_options`` does each of ``texts`` belong to?

    Args:
        key (`str`): Identity of the query (the key of the generation request whose rows it verifies).
        texts (`list[str]`): The texts to label.
        label_options (`list[str]`): The labels the answer may use (every class, or the confused pair).
        messages (`list[dict]`): Chat messages for an LLM teacher (see :mod:`hf_activekd.verification`).
        json_schema (`dict`): The schema of the answer (see :func:`labels_schema`).
        seed (`int`, defaults to 0): Sampling seed.
        max_new_tokens (`int`, defaults to 64): Generation budget of the answer.
    """

    key: str
    texts: list[str]
    label_options: list[str]
    messages: list[dict[str, str]] = field(default_factory=list)
    json_schema: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    max_new_tokens: int = 64


@dataclass
class LabelAnswer:
    """The teacher's labels for a :class:`LabelQuery`.

    Args:
        key (`str`): The query's key.
        labels (`list[str | None]`): One label per text; `None` where the teacher gave none (a text it does not know,
            or a failed request: ``labels`` is then empty and ``error`` set).
        prompt_tokens (`int`), completion_tokens (`int`), cost (`float`), attempts (`int`): What the query cost.
        error (`str`, *optional*): Why the query failed (e.g. ``"budget exhausted"``).
        faults (`dict[str, int]`): Recovered or final faults by kind.
    """

    key: str
    labels: list[str | None] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    attempts: int = 0
    error: str | None = None
    faults: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelAnswer:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_samples(payload: Any, default_label: str) -> list[GeneratedSample]:
    """Turn a decoded JSON answer into samples.

    Accepts ``{"examples": [...]}``, a bare list, items that are objects with ``text`` (and optionally ``label``)
    or bare strings (the label then comes from the request). Raises `ValueError` when nothing usable is there.
    """
    if isinstance(payload, dict):
        for key in ("examples", "samples", "data", "items"):
            if key in payload:
                payload = payload[key]
                break
        else:
            if "text" in payload:
                payload = [payload]
    if not isinstance(payload, list):
        raise ValueError(f"expected a list of examples, got {type(payload).__name__}")
    samples = []
    for item in payload:
        if isinstance(item, str):
            samples.append(GeneratedSample(text=item, label=default_label))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            label = item.get("label", default_label)
            samples.append(GeneratedSample(text=item["text"], label=str(label) if label is not None else ""))
    return samples


class Teacher(abc.ABC):
    """A source of labelled examples.

    Subclasses implement :meth:`generate`. ``name`` identifies the teacher in records and cards and never contains a
    secret (token, credentials in a URL).
    """

    name: str = "teacher"
    is_simulation: bool = False

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`TeacherUnavailableError` when the teacher cannot be reached. Called before training."""

    @abc.abstractmethod
    def generate(self, requests: list[TeacherRequest], progress: bool = True) -> list[TeacherResponse]:
        """Answer every request, in order. Must not raise for a failure of a single request.

        A teacher may also accept a keyword ``on_answer``: a function called with each :class:`TeacherResponse` as
        soon as it is complete (before the others), so that answers are on disk even if the process dies mid-round.
        """

    def label(self, queries: list[LabelQuery], progress: bool = False) -> list[LabelAnswer]:
        """Say which label each text of each query belongs to (teacher verification, ``verify="teacher"``).

        Must not raise for a failure of a single query (set ``error`` on its answer). Teachers that cannot label texts
        keep this default, and a run with ``verify="teacher"`` refuses them before any round is paid.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot label texts, so it cannot verify rows: implement `label()` "
            "(see hf_activekd.teachers.base.Teacher.label) or use verify='none'."
        )

    @property
    def can_label(self) -> bool:
        """Whether this teacher implements :meth:`label` (needed by ``verify="teacher"``)."""
        return type(self).label is not Teacher.label

    def state_dict(self) -> dict[str, Any]:
        """State to store in checkpoints (e.g. which pool examples were already handed out)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned."""

    def describe(self) -> dict[str, Any]:
        """Public description for records and model cards (no secrets)."""
        return {"name": self.name, "type": type(self).__name__, "simulation": self.is_simulation}


AnswerHook = Callable[[TeacherResponse], None]


def accepts_on_answer(teacher: Teacher) -> bool:
    """Whether ``teacher.generate`` takes the ``on_answer`` keyword (teachers written for 0.1.0 do not)."""
    try:
        return "on_answer" in inspect.signature(teacher.generate).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False


def generate_with_answers(
    teacher: Teacher, requests: list[TeacherRequest], progress: bool, on_answer: AnswerHook
) -> list[TeacherResponse]:
    """``teacher.generate(requests)``, calling ``on_answer`` with each response as it arrives where the teacher
    supports it, else with every response once the teacher returns."""
    if accepts_on_answer(teacher):
        return teacher.generate(requests, progress=progress, on_answer=on_answer)
    responses = teacher.generate(requests, progress=progress)
    for response in responses:
        on_answer(response)
    return responses
