"""The health check of :class:`~hf_activekd.teachers.tgi.TGITeacher`: is the teacher there, before any paid request?"""

from __future__ import annotations

import urllib.error
import urllib.request

from ..base import TeacherUnavailableError
from .retries import _describe_error


class _HealthCheckMixin:
    """``check()`` for :class:`~hf_activekd.teachers.tgi.TGITeacher`, which sets these attributes (and provides
    ``scrub``, ``_run`` and ``_client``)."""

    is_url: bool
    endpoint: str | None
    model_id: str | None
    timeout_s: float
    _target: str
    _token: str | None
    _implicit_token: bool

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers

        token = self._token if self._token is not None else (None if self._implicit_token else False)
        try:
            return build_hf_headers(token=token)
        except Exception:  # noqa: BLE001 - no token at all is fine for a local server
            return {}

    def check(self) -> None:
        """Raise :class:`TeacherUnavailableError` (naming the URL, never the token) when the teacher is unreachable.

        For a URL: ``GET /health`` (then ``/info``); any answer below 500 other than 401/403 means reachable. For a
        model id: a one-token request (not counted in the budget). A 5xx on ``/health`` means unhealthy; a server
        without either route (404) is reachable.
        """
        if not self.is_url:
            try:
                self._run(self._tiny_request())
            except Exception as err:  # noqa: BLE001
                raise TeacherUnavailableError(
                    f"Teacher model {self.model_id} is unavailable: {self.scrub(_describe_error(err))}"
                ) from None
            return
        base = self._target.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        for route in ("/health", "/info"):
            request = urllib.request.Request(base + route, headers=self._headers(), method="GET")
            try:
                with urllib.request.urlopen(request, timeout=min(self.timeout_s, 10.0)) as reply:
                    status = reply.status
            except urllib.error.HTTPError as err:
                status = err.code
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise TeacherUnavailableError(
                    f"Teacher server at {self.endpoint} is unreachable: {self.scrub(str(reason))}. "
                    "Start it (e.g. `hf-activekd serve-teacher`) or fix the URL."
                ) from None
            if status in (401, 403):
                raise TeacherUnavailableError(
                    f"Teacher server at {self.endpoint} refused the credentials (HTTP {status}): check the token."
                )
            if status >= 500:
                raise TeacherUnavailableError(
                    f"Teacher server at {self.endpoint} is not healthy (HTTP {status} on {route})."
                )
            if status not in (404, 405):
                return
        # Neither route exists (e.g. a bare OpenAI-compatible server): it answered, so it is reachable.

    async def _tiny_request(self) -> None:
        client = self._client()
        try:
            await client.chat_completion([{"role": "user", "content": "Say OK."}], max_tokens=1)
        finally:
            await client.close()
