"""The scripted backend: valid JSON for the request's schema, or a script of faults and answers. For tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable

from .request import BackendRequest, Fault
from .samples_schema import _text_limits, schema_labels, schema_max_items

MARKER = "activekdmarker"


def default_answer(request: BackendRequest) -> str:
    """The scripted default: valid JSON for a :func:`~hf_activekd.teachers.samples_schema` schema.

    The label is the first value of the schema's label enum, the number of examples its ``maxItems``. Every text
    contains the word ``activekdmarker`` and is unique per (label, seed, item index), so that tests can spot generated
    rows in training batches and distinct seeds give distinct samples. A verification request
    (:func:`~hf_activekd.teachers.labels_schema`) gets the first label option for every text.
    """
    verify = (request.schema or {}).get("properties", {}).get("labels")
    if isinstance(verify, dict):  # a verification request (labels_schema): the first option for every text
        return json.dumps({"labels": [verify["items"]["enum"][0]] * int(verify.get("minItems", 1))})
    labels = schema_labels(request.schema)
    label = labels[0] if labels else "unknown"
    n = schema_max_items(request.schema)
    min_len, max_len = _text_limits(request.schema)
    seed = request.seed if request.seed is not None else 0
    examples = []
    for i in range(n):
        text = f"{MARKER} {label} example {seed}-{i}: a synthetic message written for class {label}"
        if len(text) < min_len:
            text = text + " " + "x" * (min_len - len(text))
        if max_len is not None and len(text) > int(max_len):
            text = text[: int(max_len)]
        examples.append({"text": text, "label": label})
    return json.dumps({"examples": examples})


ScriptItem = str | Fault | Callable[[BackendRequest], "str | Fault"] | None


class ScriptedBackend:
    """A backend that answers from a function: the tool for tests and fault injection.

    Args:
        fn (`Callable[[BackendRequest], str | Fault]`, *optional*):
            Writes the answer (a string is sent as the generated text as is, so malformed JSON and empty replies are
            plain strings) or returns a :class:`Fault`. Defaults to :func:`default_answer`.
        model_id (`str`, defaults to `"scripted-teacher"`):
            Reported by ``GET /info`` and in chat replies.
        latency_s (`float`, defaults to 0.0):
            Sleep this long in every request (the server handles requests in parallel threads, so this simulates
            the per-request latency of a real server with enough capacity).

    Attributes:
        calls (`int`): How many requests the backend received.
        requests (`list[BackendRequest]`): Every request received, in arrival order.

    Example:

    ```python
    >>> backend = ScriptedBackend.sequence([Fault(status=503), None, '{"examples": ['])
    >>> # 1st request: HTTP 503; 2nd: the default answer; 3rd: truncated JSON; later ones: the default answer.
    ```
    """

    def __init__(
        self,
        fn: Callable[[BackendRequest], str | Fault] | None = None,
        model_id: str = "scripted-teacher",
        latency_s: float = 0.0,
    ):
        self.fn = fn
        self.model_id = model_id
        self.latency_s = latency_s
        self.calls = 0
        self.requests: list[BackendRequest] = []
        self._lock = threading.Lock()

    @classmethod
    def sequence(
        cls,
        items: Iterable[ScriptItem],
        *,
        default: Callable[[BackendRequest], str | Fault] | None = None,
        model_id: str = "scripted-teacher",
        latency_s: float = 0.0,
    ) -> ScriptedBackend:
        """A backend that plays a script, one item per request in the order requests arrive at the server.

        Each item is a :class:`Fault`, a string (sent as the generated text as is), `None` (the default answer) or a
        function of the request. When the script is played out, every further request gets the default answer.

        Args:
            items (`Iterable`): The script.
            default (`Callable`, *optional*): The default answer; defaults to :func:`default_answer`.
            model_id (`str`, defaults to `"scripted-teacher"`): Reported by ``GET /info``.
            latency_s (`float`, defaults to 0.0): Latency of every request.
        """
        script = list(items)
        fallback = default or default_answer
        lock = threading.Lock()
        position = [0]

        def play(request: BackendRequest) -> str | Fault:
            with lock:
                i = position[0]
                position[0] += 1
            item = script[i] if i < len(script) else None
            if item is None:
                return fallback(request)
            if callable(item) and not isinstance(item, Fault):
                return item(request)
            return item

        backend = cls(play, model_id=model_id, latency_s=latency_s)
        backend.default = fallback  # type: ignore[method-assign]
        return backend

    def default(self, request: BackendRequest) -> str:
        """The answer used for a :class:`Fault` whose ``then`` is `None`."""
        return default_answer(request)

    def generate(self, request: BackendRequest) -> str | Fault:
        with self._lock:
            self.calls += 1
            self.requests.append(request)
        if self.latency_s:
            time.sleep(self.latency_s)
        return (self.fn or default_answer)(request)
