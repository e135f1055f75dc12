"""Webhooks to your server and deadlines: what a create may carry (``webhook``,
``webhook_events``, ``cancel_after``), the deliveries as their owner reads them, the
signing secret, and what the drainers and the sweep report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, WithJsonSchema, field_validator

from videogen.models.common import Fixed, Open, Page, Strict

# Requests ---------------------------------------------------------------------------------

WebhookEvent = Literal["started", "progress", "completed", "failed", "canceled"]
DEFAULT_WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("completed", "failed", "canceled")
WebhookUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://[^/?#\s]")
]
MAX_CANCEL_AFTER = timedelta(days=7)
# Seconds or an ISO 8601 duration, as pydantic reads a timedelta (its schema says only the
# string form).
CancelAfter = Annotated[
    timedelta,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 1, "maximum": 604800},
                {"type": "string", "format": "duration"},
            ]
        }
    ),
]
MAX_PREFER_WAIT_S = 60


def check_cancel_after(value: timedelta | None) -> timedelta | None:
    """1 second to 7 days."""
    if value is not None and not timedelta(seconds=1) <= value <= MAX_CANCEL_AFTER:
        raise ValueError("cancel_after is 1 second to 7 days")
    return value


class Delivery(Strict):
    """What any create (a job or a batch) may carry: the owner's webhook and a deadline."""

    webhook: WebhookUrl | None = Field(
        None,
        description="An https URL of your server: each subscribed event of the job is POSTed "
        "there, signed (Standard Webhooks) with your webhook secret; the body is the job as "
        "GET ?id= answers it when the delivery is sent.",
        examples=["https://example.com/hooks/videogen"],
    )
    webhook_events: list[WebhookEvent] | None = Field(
        None,
        min_length=1,
        max_length=5,
        description="Which events to send (default completed, failed, canceled): started "
        "(the job began processing), progress (at most one per 500 ms), completed, failed, "
        "canceled.",
    )
    cancel_after: CancelAfter | None = Field(
        None,
        description="Cancel the job (credits released, reason DEADLINE) if it has not "
        "finished this long after it is made: seconds, or an ISO 8601 duration (PT30S). "
        "Also as a Cancel-After header.",
        examples=[600, "PT10M"],
    )

    _cancel_after = field_validator("cancel_after")(check_cancel_after)

    def delivery(self, cancel_after: timedelta | None = None) -> dict[str, Any] | None:
        """The options as the database takes them (``p_delivery``), None when there are none;
        ``cancel_after`` (the header's) when the body gives none."""
        out: dict[str, Any] = {}
        if self.webhook is not None:
            out["webhook"] = self.webhook
            out["webhook_events"] = list(self.webhook_events or DEFAULT_WEBHOOK_EVENTS)
        elif self.webhook_events is not None:
            out["webhook_events"] = list(self.webhook_events)  # the database says 422
        after = self.cancel_after or cancel_after
        if after is not None:
            out["cancel_after_seconds"] = after.total_seconds()
        return out or None


class CancelAfterHeader(Strict):
    """The Cancel-After header: seconds, or an ISO 8601 duration."""

    cancel_after: CancelAfter

    _cancel_after = field_validator("cancel_after")(check_cancel_after)


class PreferWait(Strict):
    """``Prefer: wait=N`` (RFC 7240): the seconds a create may wait for the job to finish."""

    wait: int = Field(ge=0)


class DeliveryQuery(Strict):
    """GET /queue-job/webhook-deliveries: a page of your deliveries, newest first,
    optionally of one job."""

    job_id: UUID | None = None
    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)


class RotateSecret(Strict):
    """POST /update-credits/webhook-secret: a new signing secret."""

    action: Literal["rotate"] = "rotate"


# Answers ----------------------------------------------------------------------------------


class WebhookSecret(Open):
    """Your Standard Webhooks signing secret: verify each delivery's webhook-signature with
    it (e.g. ``standardwebhooks.Webhook(secret).verify(body, headers)``)."""

    secret: str = Field(description="whsec_ + base64 of 32 bytes.")
    created_at: datetime
    rotated_at: datetime | None


class DeliveryAttempt(Open):
    """One try of a delivery."""

    id: int
    attempt: int
    status_code: int | None = Field(description="What your server answered; null: no answer.")
    error: str | None
    duration_ms: int | None
    next_attempt_at: datetime | None = Field(description="When the next try is due; null: none.")
    created_at: datetime


class WebhookDelivery(Open):
    """One event of one job for your webhook; its id is the webhook-id header (the same on
    every retry: deduplicate on it)."""

    id: UUID
    job_id: UUID
    event: WebhookEvent
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts_log: list[DeliveryAttempt]


class WebhookDeliveryPage(Page):
    """A page of deliveries."""

    items: list[WebhookDelivery]


class ClaimedDelivery(Fixed):
    """A delivery a drainer leased: where it goes, the secret that signs it, the job."""

    id: UUID
    user_id: UUID
    job_id: UUID
    event: WebhookEvent
    url: str
    attempt: int
    created_at: datetime
    secret: str = Field(repr=False)
    job: dict[str, Any] | None


class DrainSummary(Fixed):
    """What one drain of the outbox did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


class DeadlineSweep(Fixed):
    """Jobs the sweep canceled at their deadline, and how many runners were told."""

    canceled: int
    notified: int
