"""Poll-based truth for providers whose webhooks can be lost, late or unsigned.

:func:`reconcile` asks the provider for a job's state in the shape a webhook would have
brought it; the health sweep calls it for jobs that have been dispatched too long without
news (every Runway job, RunPod jobs whose callback never came). :func:`receive_webhook` is
what a callback endpoint calls: verify, parse, and confirm unsigned bodies by polling.
"""

from __future__ import annotations

from collections.abc import Mapping

from videogen.integrations.providers.base import VideoProvider, WebhookEvent


def reconcile(provider: VideoProvider, provider_job_id: str) -> WebhookEvent:
    """The job's current state at the provider, as a verified :class:`WebhookEvent`."""
    status = provider.status(provider_job_id)
    return WebhookEvent(
        provider_job_id=provider_job_id,
        state=status.state,
        progress=status.progress,
        output_urls=status.output_urls,
        error=status.error,
        error_code=status.error_code,
        event_id=None,
        verified=True,
        seconds=status.seconds,
        cost_usd=status.cost_usd,
    )


def receive_webhook(
    provider: VideoProvider,
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> WebhookEvent:
    """Verify and read a provider callback; unsigned ones are replaced by a status poll."""
    provider.verify_webhook(headers, body, query)
    return read_webhook(provider, headers, body, query)


def read_webhook(
    provider: VideoProvider,
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> WebhookEvent:
    """Read a callback whose signature was already verified (the ``provider_signature``
    auth mode); unsigned providers' news is confirmed by a status poll."""
    event = provider.parse_webhook(headers, body, query)
    if provider.webhooks_signed:
        return event
    confirmed = reconcile(provider, event.provider_job_id)
    # Keep the delivery id so duplicates of the same callback are still recognised.
    return WebhookEvent(
        provider_job_id=confirmed.provider_job_id,
        state=confirmed.state,
        progress=confirmed.progress,
        output_urls=confirmed.output_urls,
        error=confirmed.error,
        error_code=confirmed.error_code,
        event_id=event.event_id,
        verified=True,
        seconds=confirmed.seconds,
        cost_usd=confirmed.cost_usd,
    )
