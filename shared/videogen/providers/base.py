"""The one interface every external video provider sits behind, and the values it trades in.

A provider takes a :class:`ProviderJob`, answers with a :class:`Submission`, reports a
:class:`ProviderStatus` when polled and a :class:`WebhookEvent` when it calls back. States
are ours (``queued → processing → completed / failed / canceled``), progress is 0-100.

``provider_job_id`` is opaque to callers: store it as returned by :meth:`submit` and hand
it back to :meth:`status` / :meth:`cancel`; :meth:`parse_webhook` yields the same string.
Providers whose status URL needs more than the provider's own id (fal's app id, RunPod's
endpoint id) fold that into the id and into query parameters of the webhook URL, which is
why the webhook methods take the callback request's ``query`` too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ProviderState = Literal["queued", "processing", "completed", "failed", "canceled"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "canceled"})


@dataclass(frozen=True)
class ProviderJob:
    """What we ask a provider to run.

    ``model`` is the provider's own model id: a fal app path (``fal-ai/kling-video/…``), a
    Replicate ``owner/name`` or ``owner/name:version``, a Runway model (``gen4_turbo``) or
    a RunPod endpoint id. ``options`` are provider-specific top-level request fields
    (RunPod ``policy``, Replicate ``webhook_events_filter``…).
    """

    model: str
    input: Mapping[str, Any]
    webhook_url: str | None = None
    job_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """The provider accepted a job."""

    provider_job_id: str
    status: ProviderState


@dataclass(frozen=True)
class ProviderStatus:
    """A job's state as the provider reports it when polled."""

    state: ProviderState
    progress: int | None = None
    output_urls: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | None = None
    queue_position: int | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the provider will not change this job any more."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class WebhookEvent:
    """A job's state as a provider callback (or a reconcile poll) reports it.

    ``event_id`` identifies the delivery for de-duplication when the provider gives one;
    ``verified`` is False when the body came from an unsigned webhook and has not been
    confirmed by polling (see :func:`videogen.providers.reconcile.receive_webhook`).
    """

    provider_job_id: str
    state: ProviderState
    progress: int | None = None
    output_urls: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | None = None
    event_id: str | None = None
    verified: bool = True

    @property
    def is_terminal(self) -> bool:
        """True once the provider will not change this job any more."""
        return self.state in TERMINAL_STATES


class VideoProvider(ABC):
    """An external video generation API behind one interface."""

    name: str = "provider"
    # Whether the provider calls back at all, and whether those callbacks are signed.
    # Unsigned callbacks are only a hint: confirm them with a status poll.
    supports_webhooks: bool = True
    webhooks_signed: bool = True

    @abstractmethod
    def submit(self, job: ProviderJob) -> Submission:
        """Start a job at the provider."""

    @abstractmethod
    def status(self, provider_job_id: str) -> ProviderStatus:
        """Poll a job's current state."""

    @abstractmethod
    def cancel(self, provider_job_id: str) -> None:
        """Ask the provider to stop a job; a job that already finished is left alone."""

    @abstractmethod
    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> None:
        """Raise :class:`~videogen.providers.errors.InvalidWebhook` unless the callback is ours."""

    @abstractmethod
    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> WebhookEvent:
        """Read a verified callback into a :class:`WebhookEvent`."""

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release the HTTP client if this provider created it."""

    def __enter__(self) -> VideoProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
