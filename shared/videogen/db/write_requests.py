"""Writes as one request: rate limit, Idempotency-Key, action and stored answer in one call
(sql/schema/07_requests.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON
from videogen.db.outcomes import Outcome, outcome_of
from videogen.models.credits import CreditResult
from videogen.models.jobs import Batch, BatchCanceled, CancelResult, Job
from videogen.models.projects import Project, ProjectDeleted
from videogen.models.workers import Cancellation

if TYPE_CHECKING:
    from datetime import datetime

    from videogen.db.connection import Database
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal


def create_job_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    model_id: str,
    params: JSON,
    priority: int,
    project_id: str | None = None,
    max_credits: int | None = None,
    delivery: JSON | None = None,
) -> Outcome[Job]:
    """Rate limit, key, reserve-and-queue (within the spend caps) and its stored answer;
    ``delivery``: its webhook and deadline (``private.job_delivery``)."""
    result = db.user_call(
        principal,
        "service.job_create_request",
        request=request.as_json(),
        model_id=model_id,
        params=params,
        priority=priority,
        project_id=project_id,
        max_credits=max_credits,
        delivery=delivery,
    )
    return outcome_of(result, Job)


def create_project_request(
    db: Database, principal: Principal, request: WriteRequest, title: str, description: str
) -> Outcome[Project]:
    """A new project of the user's, as one request."""
    result = db.user_call(
        principal,
        "service.project_create_request",
        request=request.as_json(),
        title=title,
        description=description,
    )
    return outcome_of(result, Project)


def update_project_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    project_id: str,
    *,
    title: str | None,
    description: str | None,
) -> Outcome[Project]:
    """Rename or redescribe one of the user's projects, as one request."""
    result = db.user_call(
        principal,
        "service.project_update_request",
        request=request.as_json(),
        project_id=project_id,
        title=title,
        description=description,
    )
    return outcome_of(result, Project)


def delete_project_request(
    db: Database, principal: Principal, request: WriteRequest, project_id: str
) -> Outcome[ProjectDeleted]:
    """Delete one of the user's projects (its jobs stay, ungrouped), as one request."""
    result = db.user_call(
        principal,
        "service.project_delete_request",
        request=request.as_json(),
        project_id=project_id,
    )
    return outcome_of(result, ProjectDeleted)


def create_batch_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    items: list[JSON],
    *,
    project_id: str | None,
    title: str | None,
    max_credits: int | None = None,
    delivery: JSON | None = None,
) -> Outcome[Batch]:
    """Make 1 to 20 jobs for the user, all paid for in one transaction or none (each with
    ``delivery``: webhook and deadline)."""
    result = db.user_call(
        principal,
        "service.batch_create_request",
        request=request.as_json(),
        items=items,
        project_id=project_id,
        title=title,
        max_credits=max_credits,
        delivery=delivery,
    )
    return outcome_of(result, Batch)


def cancel_batch_request(
    db: Database, principal: Principal, request: WriteRequest, batch_id: str
) -> tuple[Outcome[BatchCanceled], list[Cancellation]]:
    """Cancel every unfinished job of the user's batch as one request: the answer, and who
    was running which job (empty on a replay: they were told the first time)."""
    result = db.user_call(
        principal, "service.batch_cancel_request", request=request.as_json(), batch_id=batch_id
    )
    running = [Cancellation.model_validate(c) for c in result.get("running") or []]
    return outcome_of(result, BatchCanceled), running


def cancel_job_request(
    db: Database, principal: Principal, request: WriteRequest, job_id: str
) -> tuple[Outcome[CancelResult], Cancellation | None]:
    """Cancel the user's job (credits released) as one request: the answer (stored for the
    key), and who was running it (None on a replay: they were told the first time)."""
    result = db.user_call(
        principal, "service.job_cancel_request", request=request.as_json(), job_id=job_id
    )
    running = result.get("running")
    return outcome_of(result, CancelResult), (
        None if running is None else Cancellation.model_validate(running)
    )


def delete_job_request(
    db: Database, principal: Principal, request: WriteRequest, job_id: str
) -> Outcome[Job]:
    """Remove the user's finished job from their history, as one request."""
    result = db.user_call(
        principal, "service.job_delete_request", request=request.as_json(), job_id=job_id
    )
    return outcome_of(result, Job)


def claim_initial_grant_request(
    db: Database, principal: Principal, request: WriteRequest, client: JSON
) -> Outcome[CreditResult]:
    """The user's one-time free credits as one request; ``client`` is what the function saw
    of the caller: ``{"address", "device_checked"}``."""
    result = db.user_call(
        principal, "service.initial_grant_claim_request", request=request.as_json(), client=client
    )
    return outcome_of(result, CreditResult)


def rate_limit_take(db: Database, principal_key: str, bucket: str, limit: int) -> int:
    """Count one call of ``principal_key`` in ``bucket`` this minute: the calls left, or
    429 RATE_LIMITED with Retry-After past ``limit``."""
    return int(
        db.admin_call(
            "service.rate_limit_take",
            principal=principal_key,
            bucket=bucket,
            limit=limit,
            window_seconds=60,
        )
    )


def grant_credits_request(
    db: Database,
    request: WriteRequest,
    *,
    user_id: str,
    amount: int,
    grant_id: str,
    kind: str,
    description: str,
) -> Outcome[CreditResult]:
    """Service: grant or adjust credits, once per grant id, as one request."""
    result = db.admin_call(
        "service.credits_grant_request",
        request=request.as_json(),
        user_id=user_id,
        amount=amount,
        grant_id=grant_id,
        kind=kind,
        description=description,
    )
    return outcome_of(result, CreditResult)


def purchase_credits_request(
    db: Database,
    request: WriteRequest,
    *,
    user_id: str,
    transaction_id: str,
    credits: int,
    description: str,
) -> Outcome[CreditResult]:
    """Service: credit a verified purchase, once per transaction id, as one request."""
    result = db.admin_call(
        "service.credits_purchase_request",
        request=request.as_json(),
        user_id=user_id,
        transaction_id=transaction_id,
        credits=credits,
        description=description,
    )
    return outcome_of(result, CreditResult)


def record_purchase_request(
    db: Database,
    request: WriteRequest,
    *,
    user_id: str,
    store: str,
    transaction_id: str,
    credits: int,
    payment_ref: str | None,
    amount_minor: int | None,
    currency: str | None,
    product_id: str | None,
    description: str,
) -> Outcome[CreditResult]:
    """Service: credit a verified store purchase once and remember it for refunds."""
    result = db.admin_call(
        "service.purchase_record_request",
        request=request.as_json(),
        user_id=user_id,
        store=store,
        transaction_id=transaction_id,
        credits=credits,
        payment_ref=payment_ref,
        amount_minor=amount_minor,
        currency=currency,
        product_id=product_id,
        description=description,
    )
    return outcome_of(result, CreditResult)


def record_subscription_request(
    db: Database,
    request: WriteRequest,
    *,
    store: str,
    subscription_id: str,
    product_id: str,
    status: str,
    event_at: datetime,
    user_id: str | None = None,
    current_period_end: datetime | None = None,
    period_id: str | None = None,
    payment_ref: str | None = None,
    amount_minor: int | None = None,
    currency: str | None = None,
    reversal_id: str | None = None,
    share_per_100000: int | None = None,
) -> Outcome[CreditResult]:
    """Service: a store's word on a subscription — its state, a paid period's credits (once
    per period_id) or their refund (once per reversal_id) — and the profile's tier after it."""
    result = db.admin_call(
        "service.subscription_record_request",
        request=request.as_json(),
        store=store,
        subscription_id=subscription_id,
        product_id=product_id,
        status=status,
        event_at=event_at.isoformat(),
        user_id=user_id,
        current_period_end=current_period_end and current_period_end.isoformat(),
        period_id=period_id,
        payment_ref=payment_ref,
        amount_minor=amount_minor,
        currency=currency,
        reversal_id=reversal_id,
        share_per_100000=share_per_100000,
    )
    return outcome_of(result, CreditResult)


def reverse_purchase_request(
    db: Database,
    request: WriteRequest,
    *,
    store: str,
    reversal_id: str,
    kind: str,
    transaction_id: str | None = None,
    payment_ref: str | None = None,
    amount_minor: int | None = None,
    share_per_100000: int | None = None,
    description: str = "",
) -> Outcome[CreditResult]:
    """Service: claw back a refunded or disputed purchase's credits, once per reversal id."""
    result = db.admin_call(
        "service.purchase_reverse_request",
        request=request.as_json(),
        store=store,
        reversal_id=reversal_id,
        kind=kind,
        transaction_id=transaction_id,
        payment_ref=payment_ref,
        amount_minor=amount_minor,
        share_per_100000=share_per_100000,
        description=description,
    )
    return outcome_of(result, CreditResult)


def merge_anonymous_request(
    db: Database, principal: Principal, request: WriteRequest, anonymous_id: str
) -> Outcome[CreditResult]:
    """The user takes over an anonymous user's credits, once, as one request."""
    result = db.user_call(
        principal,
        "service.anonymous_merge_request",
        request=request.as_json(),
        anonymous_id=anonymous_id,
    )
    return outcome_of(result, CreditResult)


def request_refused(
    db: Database, request: WriteRequest, status: int, body: JSON, *, store: bool
) -> None:
    """Count a refused write against the rate limit; keep a definite refusal for its key."""
    db.admin_call(
        "service.request_refuse", request=request.as_json(), status=status, body=body, store=store
    )


def request_replace_answer(db: Database, request: WriteRequest, status: int, data: JSON) -> None:
    """Give the request's key a later, final answer."""
    db.admin_call(
        "service.request_answer_replace", request=request.as_json(), status=status, data=data
    )
