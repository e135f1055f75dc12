"""Webhooks to users' servers and deadlines: the outbox (claim, record), the signing
secret, the deliveries as their owner reads them, and overdue jobs
(sql/schema/22_webhooks.sql, 06_job_reports.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON, service_call
from videogen.db.outcomes import Outcome, outcome_of
from videogen.models.webhooks import ClaimedDelivery, WebhookSecret
from videogen.models.workers import Cancellation

if TYPE_CHECKING:
    from videogen.db.calls import Runs
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal


def deliveries_claim(on: Runs, limit: int, lease_seconds: int) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries (SKIP LOCKED), each attempt counted."""
    result = service_call(
        on, "service.webhook_deliveries_claim", limit=limit, lease_seconds=lease_seconds
    )
    return [ClaimedDelivery.model_validate(row) for row in result]


def delivery_record(
    on: Runs,
    delivery_id: str,
    attempt: int,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> JSON:
    """One attempt's outcome: delivered, retried later, or given up ({applied, delivery})."""
    result: JSON = service_call(
        on,
        "service.webhook_delivery_record",
        id=delivery_id,
        attempt=attempt,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
    )
    return result


def deliveries_backlog(on: Runs) -> JSON:
    """{pending, due}: deliveries still to send."""
    result: JSON = service_call(on, "service.webhook_deliveries_backlog")
    return result


def secret_get(db: Database, principal: Principal) -> WebhookSecret:
    """The user's signing secret (made on first use)."""
    return WebhookSecret.model_validate(db.user_call(principal, "service.webhook_secret_get"))


def secret_rotate_request(
    db: Database, principal: Principal, request: WriteRequest
) -> Outcome[WebhookSecret]:
    """A new signing secret for the user, as one request (rate limit)."""
    result = db.user_call(
        principal, "service.webhook_secret_rotate_request", request=request.as_json()
    )
    return outcome_of(result, WebhookSecret)


def list_deliveries(session: Session, job_id: str | None, limit: int, offset: int) -> JSON:
    """{items, total}: the caller's deliveries with their attempts, newest first."""
    result: JSON = session.rpc("list_webhook_deliveries", job_id=job_id, limit=limit, offset=offset)
    return result


def jobs_cancel_overdue(on: Runs, limit: int) -> tuple[int, list[Cancellation]]:
    """Cancel unfinished jobs past their deadline: how many, and who was running which."""
    result = service_call(on, "service.jobs_cancel_overdue", limit=limit)
    return int(result["canceled"]), [Cancellation.model_validate(r) for r in result["running"]]
