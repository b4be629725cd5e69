"""The production teacher: a TGI server, an Inference Endpoint, a Hub model id or any OpenAI-compatible server.

:class:`TGITeacher` talks to the server through one ``huggingface_hub.AsyncInferenceClient`` and is built to be fast,
frugal and unbreakable:

- **fast**: all requests of a round run concurrently, at most ``max_concurrency`` at a time, so a round of ``n``
  requests of latency ``L`` takes about ``ceil(n / max_concurrency) * L``;
- **structured**: answers are requested as JSON that follows the request's schema, through ``chat_completion`` with
  ``response_format={"type": "json_object", "value": schema}``; a server without the chat route (404/405) is switched
  to ``text_generation`` with a JSON ``grammar`` for the rest of the teacher's life;
- **robust**: invalid JSON is repaired where that is safe (code fences, chatter around the object, a truncated list:
  the complete items are kept) or retried with another seed; HTTP 408/429/5xx, timeouts and connection errors are
  retried with exponential backoff and full jitter, honouring ``Retry-After``, at most ``max_attempts`` times; a
  request that still fails gets ``error`` set on its response and the round goes on. Every fault is counted by kind;
- **frugal**: token usage comes from the server's ``usage`` (or TGI's details); optional prices turn it into a cost;
  lifetime budgets on requests, tokens and cost stop the sending exactly at the limit (see
  :class:`~hf_activekd.teachers.budget.TeacherBudget`), with one warning, while training goes on; a disk cache keyed by
  the request's fingerprint (model, messages, parameters, seed) means a resumed run pays nothing for what was answered;
- **safe**: the token never appears in logs, errors, records, cache files or :meth:`describe`; the stored token is
  sent only to Hugging Face hosts (an explicit ``token=`` goes wherever the URL points).

The EvoKD option (``evokd=True``) first asks the teacher for a short analysis of the student's weaknesses for the
class, then asks for samples with that analysis and with a few of the texts already written for the class (asking for
different ones) in the prompt.

The modules: :mod:`.teacher` (:class:`TGITeacher`), :mod:`.transport` (client, concurrency, retries, budget tally),
:mod:`.retries` (what is retried, and how long to wait), :mod:`.routes` (chat or ``text_generation``),
:mod:`.answers` (JSON repair and parsing), :mod:`.evokd` (the two-step prompts), :mod:`.answer_cache` and
:mod:`.health`.
"""

# ruff: noqa: F401 - private names too are re-exported for the old ``hf_activekd.teachers.tgi`` import path
from .answers import _complete_items, _ContentError, extract_json
from .evokd import EVOKD_ANALYSIS_PROMPT, EVOKD_GENERATION_SUFFIX, EVOKD_MEMORY_SUFFIX
from .retries import (
    RETRYABLE_STATUS,
    _classify,
    _describe_error,
    _error_chain,
    _httpx,
    _retry_after,
    _status_of,
    backoff_delay,
)
from .routes import _estimate_tokens, messages_to_prompt
from .teacher import _BEARER_PATTERN, _TOKEN_PATTERN, TGITeacher, strip_url
from .transport import _Tally

__all__ = ["TGITeacher", "extract_json", "messages_to_prompt", "strip_url"]
