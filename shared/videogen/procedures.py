"""The Python face of the SQL API: one typed function per procedure of sql/schema, and the
only place in Python where a procedure's name is spelled. Services call these; nothing
else sends SQL.

Each function says how it runs by what it takes:

* a :class:`~videogen.db.Session` — inside that caller's transaction, as that caller (reads
  run as the user, so RLS applies; an admin session runs service procedures);
* ``Database`` and a user's :class:`~videogen.auth.Principal` — a user's write, one call as
  ``service_role`` with the user's claims;
* ``Runs`` (a session or a database) — a service procedure, inside the session's
  transaction when given one, else as its own one-call transaction.

Results are the procedures' JSON as Python values (the shapes are listed in
docs/architecture.md and sql/schema); pydantic result models are the next step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from videogen.auth import Principal
    from videogen.db import Database, Session
    from videogen.writes import WriteRequest

    Runs = Session | Database

JSON = dict[str, Any]


def _service(on: Runs, name: str, /, **args: Any) -> Any:
    """A service procedure in ``on``'s transaction (a session) or on its own (a database)."""
    if hasattr(on, "admin_call"):
        return on.admin_call(name, **args)
    return on.rpc(name, **args)


# Reads, as the caller (RLS applies) ---------------------------------------------------------


def get_job(session: Session, job_id: str) -> JSON | None:
    """One of the caller's jobs with its events, or None."""
    result: JSON | None = session.rpc("get_job", job_id=job_id)
    return result


def list_jobs(session: Session, status: str | None, limit: int, offset: int) -> JSON:
    """{items, total}: the caller's jobs, newest first."""
    result: JSON = session.rpc("list_jobs", status=status, limit=limit, offset=offset)
    return result


def get_credits(session: Session, limit: int, offset: int) -> JSON | None:
    """The caller's balance, reserved credits and a ledger page, or None without a profile."""
    result: JSON | None = session.rpc("get_credits", limit=limit, offset=offset)
    return result


def list_models(session: Session) -> list[JSON]:
    """The available models of the catalogue."""
    result: list[JSON] = session.rpc("list_models")
    return result


# Writes as one request (sql/schema/04_requests.sql) --------------------------------------


def create_job_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    model_id: str,
    params: JSON,
    priority: int,
) -> JSON:
    """Rate limit, key, reserve-and-queue and its stored answer, for the user."""
    result: JSON = db.user_call(
        principal,
        "create_job_request",
        request=request.as_json(),
        model_id=model_id,
        params=params,
        priority=priority,
    )
    return result


def cancel_job_request(
    db: Database, principal: Principal, request: WriteRequest, job_id: str
) -> JSON:
    """Cancel the user's job (credits released) as one request."""
    result: JSON = db.user_call(
        principal, "cancel_job_request", request=request.as_json(), job_id=job_id
    )
    return result


def claim_initial_grant_request(db: Database, principal: Principal, request: WriteRequest) -> JSON:
    """The user's one-time starting credits as one request."""
    result: JSON = db.user_call(principal, "claim_initial_grant_request", request=request.as_json())
    return result


def grant_credits_request(
    db: Database,
    request: WriteRequest,
    *,
    user_id: str,
    amount: int,
    grant_id: str,
    kind: str,
    description: str,
) -> JSON:
    """Service: grant or adjust credits, once per grant id, as one request."""
    result: JSON = db.admin_call(
        "grant_credits_request",
        request=request.as_json(),
        user_id=user_id,
        amount=amount,
        grant_id=grant_id,
        kind=kind,
        description=description,
    )
    return result


def purchase_credits_request(
    db: Database,
    request: WriteRequest,
    *,
    user_id: str,
    transaction_id: str,
    credits: int,
    description: str,
) -> JSON:
    """Service: credit a verified purchase, once per transaction id, as one request."""
    result: JSON = db.admin_call(
        "purchase_credits_request",
        request=request.as_json(),
        user_id=user_id,
        transaction_id=transaction_id,
        credits=credits,
        description=description,
    )
    return result


def request_refused(
    db: Database, request: WriteRequest, status: int, body: JSON, *, store: bool
) -> None:
    """Count a refused write against the rate limit; keep a definite refusal for its key."""
    db.admin_call(
        "request_refused", request=request.as_json(), status=status, body=body, store=store
    )


def request_replace_answer(db: Database, request: WriteRequest, status: int, data: Any) -> None:
    """Give the request's key a later, final answer."""
    db.admin_call("request_replace_answer", request=request.as_json(), status=status, data=data)


# Jobs: reports, routing, providers (sql/schema/03_jobs.sql) --------------------------------


def job_report(on: Runs, webhook_id: str | None, source: str, report: JSON) -> JSON:
    """A worker's or provider's report with its delivery's receipt, one transaction."""
    result: JSON = _service(on, "job_report", webhook_id=webhook_id, source=source, report=report)
    return result


def job_start(on: Runs, job_id: str, attempt: int) -> JSON:
    """dispatched → processing for the current attempt."""
    result: JSON = _service(on, "job_start", job_id=job_id, attempt=attempt)
    return result


def job_progress(on: Runs, job_id: str, attempt: int, progress: int, message: str | None) -> JSON:
    """Progress of the current attempt (never backwards)."""
    result: JSON = _service(
        on, "job_progress", job_id=job_id, attempt=attempt, progress=progress, message=message
    )
    return result


def job_complete(
    on: Runs, job_id: str, attempt: int, output: JSON, credits_used: int | None
) -> JSON:
    """The current attempt finished: capture what it used, release the rest."""
    result: JSON = _service(
        on,
        "job_complete",
        job_id=job_id,
        attempt=attempt,
        output=output,
        credits_used=credits_used,
    )
    return result


def job_fail(
    on: Runs,
    job_id: str,
    attempt: int,
    error_code: str,
    error_message: str,
    *,
    retryable: bool,
) -> JSON:
    """The current attempt failed: retry with backoff, or fail and release."""
    result: JSON = _service(
        on,
        "job_fail",
        job_id=job_id,
        attempt=attempt,
        error_code=error_code,
        error_message=error_message,
        retryable=retryable,
    )
    return result


def job_return(on: Runs, job_id: str, attempt: int, reason: str) -> JSON:
    """A push that was not delivered: back to the queue, not a failure."""
    result: JSON = _service(on, "job_return", job_id=job_id, attempt=attempt, reason=reason)
    return result


def job_assign(on: Runs, job_id: str) -> JSON | None:
    """{job, worker}: a healthy push worker with room takes the job, or None."""
    result: JSON | None = _service(on, "job_assign", job_id=job_id)
    return result


def jobs_assign_pending(on: Runs, limit: int) -> list[JSON]:
    """Assignments of waiting jobs to push workers with room."""
    result: list[JSON] = _service(on, "jobs_assign_pending", limit=limit)
    return result


def job_dispatch_external(on: Runs, job_id: str) -> JSON | None:
    """Open an attempt at the job's external provider, or None when it is no longer queued."""
    result: JSON | None = _service(on, "job_dispatch_external", job_id=job_id)
    return result


def job_set_provider_id(on: Runs, job_id: str, attempt: int, provider_job_id: str) -> JSON:
    """Remember the provider's id for the attempt (its webhooks find the job by it)."""
    result: JSON = _service(
        on, "job_set_provider_id", job_id=job_id, attempt=attempt, provider_job_id=provider_job_id
    )
    return result


def job_by_provider_id(on: Runs, provider: str, provider_job_id: str) -> JSON | None:
    """The job a provider's id belongs to, or None."""
    result: JSON | None = _service(
        on, "job_by_provider_id", provider=provider, provider_job_id=provider_job_id
    )
    return result


def job_get_any(on: Runs, job_id: str) -> JSON:
    """A job whatever its owner, with its model."""
    result: JSON = _service(on, "job_get_any", job_id=job_id)
    return result


def jobs_active_external(on: Runs) -> list[JSON]:
    """Jobs running at external providers (for reconcile polls)."""
    result: list[JSON] = _service(on, "jobs_active_external")
    return result


def models_by_provider(on: Runs, provider: str) -> list[JSON]:
    """The provider's models with their provider-side ids."""
    result: list[JSON] = _service(on, "models_by_provider", provider=provider)
    return result


# Workers and the sweep ----------------------------------------------------------------------


def worker_register(
    on: Runs,
    *,
    name: str,
    url: str | None,
    health_url: str | None,
    models: Sequence[str],
    capacity: int,
    mode: str,
    metadata: JSON,
) -> JSON:
    """Register (or re-register by name) a worker."""
    result: JSON = _service(
        on,
        "worker_register",
        name=name,
        url=url,
        health_url=health_url,
        models=list(models),
        capacity=capacity,
        mode=mode,
        metadata=metadata,
    )
    return result


def worker_heartbeat(on: Runs, worker_id: str, status: str) -> JSON:
    """{worker, jobs}: the worker is alive; its leases are extended."""
    result: JSON = _service(on, "worker_heartbeat", worker_id=worker_id, status=status)
    return result


def worker_record_health(on: Runs, worker_id: str, *, ok: bool, detail: JSON) -> JSON:
    """A health probe's (or a push's) verdict on a worker."""
    result: JSON = _service(on, "worker_record_health", worker_id=worker_id, ok=ok, detail=detail)
    return result


def job_claim(on: Runs, worker_id: str, limit: int) -> list[JSON]:
    """A pull worker leases up to ``limit`` queued jobs of its models."""
    result: list[JSON] = _service(on, "job_claim", worker_id=worker_id, limit=limit)
    return result


def workers_list(on: Runs) -> list[JSON]:
    """Every registered worker."""
    result: list[JSON] = _service(on, "workers_list")
    return result


def jobs_requeue_expired(on: Runs, limit: int) -> JSON:
    """{requeued, failed}: expired leases back to the queue, or failed out of attempts."""
    result: JSON = _service(on, "jobs_requeue_expired", limit=limit)
    return result


def requests_cleanup(on: Runs) -> JSON:
    """Drop expired idempotency keys, old rate windows and webhook receipts."""
    result: JSON = _service(on, "requests_cleanup")
    return result
