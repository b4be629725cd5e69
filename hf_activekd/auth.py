"""Where the Hugging Face token may go without being asked for.

A token given explicitly (``TGITeacher(url, token=...)``) goes where the user says. The *implicit* token (``HF_TOKEN``,
the saved login of ``hf auth login``) is only sent to Hugging Face itself, over https:

- the Hub: ``huggingface.co``, ``hf.co``;
- Inference Providers: ``router.huggingface.co``, ``api-inference.huggingface.co``;
- dedicated Inference Endpoints: ``*.endpoints.huggingface.cloud``;
- the host of ``HF_ENDPOINT`` when it is set to an https URL (a private Hub mirror);
- a model id (no URL), which ``huggingface_hub`` routes to the Hub's Inference Providers itself.

Any other URL (a TGI server on the local network, ``http://127.0.0.1:8080``, a vLLM server, a third-party provider)
gets no ``Authorization`` header unless a token is passed explicitly.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

HF_HOSTS = frozenset({"huggingface.co", "hf.co", "router.huggingface.co", "api-inference.huggingface.co"})
HF_HOST_SUFFIXES = (".endpoints.huggingface.cloud",)


def _https_host(url: str) -> str | None:
    """The lower-cased host of an https URL, or None (another scheme, no host, or not parseable)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not host:
        return None
    return host.lower().rstrip(".")


def is_hf_url(url: str) -> bool:
    """Whether ``url`` is an https URL of a Hugging Face service (see the module docstring)."""
    host = _https_host(url)
    if host is None:
        return False
    if host in HF_HOSTS or any(host.endswith(suffix) for suffix in HF_HOST_SUFFIXES):
        return True
    endpoint = os.environ.get("HF_ENDPOINT")
    return bool(endpoint) and _https_host(endpoint) == host


def implicit_token_allowed(model_or_url: str) -> bool:
    """Whether the stored Hugging Face token may be sent to ``model_or_url`` when the user gave none."""
    if not model_or_url.startswith(("http://", "https://")):
        return True  # a model id: huggingface_hub sends it to the Hub's own routing
    return is_hf_url(model_or_url)
