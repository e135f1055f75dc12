"""The worker's way to the backend: signed JSON posts (Standard Webhooks), retried.

A post is retried on transport errors, 429 and 5xx with exponential backoff (tenacity),
always under the same ``webhook-id`` — so a retry of a delivery that did arrive is
de-duplicated by the backend — and re-signed each time, so the timestamp stays inside the
tolerance window. Any other answer is final.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tenacity

from videogen.config import Settings
from videogen.integrations import webhooks

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 5.0


class BackendError(Exception):
    """The backend answered with an error (or not at all)."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"{status} {code}: {message}".strip())
        self.status, self.code = status, code

    @property
    def retryable(self) -> bool:
        """Unreachable, rate limited or a server error: sending it again may work."""
        return self.status == 0 or self.status == 429 or self.status >= 500


def _post_once(
    client: httpx.Client, url: str, raw: bytes, msg_id: str, settings: Settings, timeout: float
) -> Any:
    import httpx

    headers = {
        "content-type": "application/json",
        **webhooks.sign(raw, msg_id=msg_id, settings=settings),
    }
    try:
        resp = client.post(url, content=raw, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        raise BackendError(0, "UNREACHABLE", type(exc).__name__) from exc
    try:
        envelope = resp.json()
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict):  # a proxy's page, not our envelope
        envelope = {}
    if resp.status_code < 300:
        return envelope.get("data")
    err = envelope.get("error")
    err = err if isinstance(err, dict) else {}
    raise BackendError(
        resp.status_code, str(err.get("code", "HTTP_ERROR")), str(err.get("message", ""))
    )


def send_signed(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    settings: Settings,
    *,
    tries: int = 1,
    sleep: Callable[[float], Any] = time.sleep,
    timeout: float = 10.0,
) -> Any:
    """POST ``body`` signed, up to ``tries`` times; the envelope's ``data``, or raise
    :class:`BackendError`."""
    raw = json.dumps(body, default=str).encode()
    msg_id = webhooks.new_message_id()
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda exc: isinstance(exc, BackendError) and exc.retryable
        ),
        stop=tenacity.stop_after_attempt(max(1, tries)),
        wait=tenacity.wait_exponential(multiplier=BACKOFF_BASE_S, max=BACKOFF_MAX_S),
        sleep=sleep,
        before_sleep=lambda state: log.info(
            "POST %s failed (%s); retry %d",
            url,
            state.outcome.exception() if state.outcome else None,
            state.attempt_number,
        ),
        reraise=True,
    )
    return retrying(_post_once, client, url, raw, msg_id, settings, timeout)
