"""The Python face of the SQL API: one typed function per procedure of sql/schema, and the
only place in Python where a procedure's name is spelled. Services call these; nothing
else sends SQL.

Each function says how it runs by what it takes:

* a :class:`~videogen.db.connection.Session` — inside that caller's transaction, as that
  caller (reads
  run as the user, so RLS applies; an admin session runs service procedures);
* ``Database`` and a user's :class:`~videogen.principal.Principal` — a user's write, one call as
  ``service_role`` with the user's claims;
* ``Runs`` (a session or a database) — a service procedure, inside the session's
  transaction when given one, else as its own one-call transaction.

Results are pydantic models of :mod:`videogen.models.results` (reads, changes, assignments),
and a write request's :class:`~videogen.db.outcomes.Outcome` of one; a procedure that may
find nothing answers None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videogen.db.outcomes import Outcome, outcome_of
from videogen.errors import from_sqlstate
from videogen.models.results import (
    AdminJobResult,
    Assignment,
    Batch,
    BatchCanceled,
    Cancellation,
    CancelResult,
    Cleanup,
    CreditResult,
    DueOutput,
    ExternalJob,
    HeartbeatResult,
    Job,
    JobChange,
    JobWithEvents,
    JobWithModel,
    LeasedJob,
    LeaseSweep,
    Model,
    MoneyDifference,
    Profile,
    Project,
    ProjectDeleted,
    PromptTemplate,
    ProviderJobRow,
    ProviderKey,
    ProviderKeyDeleted,
    ProviderModel,
    Quote,
    Readiness,
    Voice,
    Worker,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal

    Runs = Session | Database

JSON = dict[str, Any]


def _service(on: Runs, name: str, /, **args: Any) -> Any:
    """A service procedure in ``on``'s transaction (a session) or on its own (a database)."""
    if hasattr(on, "admin_call"):
        return on.admin_call(name, **args)
    return on.rpc(name, **args)


# Reads, as the caller (RLS applies) ---------------------------------------------------------


def get_job(session: Session, job_id: str) -> JobWithEvents | None:
    """One of the caller's jobs with its events, or None."""
    result = session.rpc("get_job", job_id=job_id)
    return None if result is None else JobWithEvents.model_validate(result)


def list_jobs(
    session: Session,
    status: str | None,
    limit: int,
    offset: int,
    *,
    project_id: str | None = None,
    batch_id: str | None = None,
) -> JSON:
    """{items, total}: the caller's jobs, newest first, optionally of one status, project or
    batch (items become a ``JobPage``)."""
    result: JSON = session.rpc(
        "list_jobs",
        status=status,
        limit=limit,
        offset=offset,
        project_id=project_id,
        batch_id=batch_id,
    )
    return result


def list_projects(session: Session, limit: int, offset: int) -> JSON:
    """{items, total}: the caller's projects, newest first (items become a ``ProjectPage``)."""
    result: JSON = session.rpc("list_projects", limit=limit, offset=offset)
    return result


def get_project(session: Session, project_id: str) -> Project | None:
    """One of the caller's projects, or None."""
    result = session.rpc("get_project", project_id=project_id)
    return None if result is None else Project.model_validate(result)


def get_batch(session: Session, batch_id: str) -> Batch | None:
    """One of the caller's batches with its progress and jobs, or None."""
    result = session.rpc("get_batch", batch_id=batch_id)
    return None if result is None else Batch.model_validate(result)


def list_batches(session: Session, project_id: str | None, limit: int, offset: int) -> JSON:
    """{items, total}: the caller's batches with their progress (items become a
    ``BatchPage``)."""
    result: JSON = session.rpc("list_batches", project_id=project_id, limit=limit, offset=offset)
    return result


def list_voices(session: Session, engine: str | None, language: str | None) -> list[Voice]:
    """The available narration voices."""
    result = session.rpc("list_voices", engine=engine, language=language)
    return [Voice.model_validate(v) for v in result]


def quote_jobs(session: Session, items: list[JSON]) -> Quote:
    """What these requests would cost and when they would be done; nothing is created."""
    return Quote.model_validate(session.rpc("quote_jobs", items=items))


def get_profile(session: Session) -> Profile | None:
    """The caller's own profile, or None without one."""
    result = session.rpc("get_profile")
    return None if result is None else Profile.model_validate(result)


def update_profile(
    session: Session, *, display_name: str | None, language: str | None, theme: str | None
) -> Profile:
    """Change the caller's preferences, as the caller (RLS and column grants decide)."""
    result = session.rpc(
        "update_profile", display_name=display_name, language=language, theme=theme
    )
    return Profile.model_validate(result)


def get_credits(session: Session, limit: int, offset: int) -> JSON | None:
    """The caller's balance, reserved credits and a ledger page (items become a
    ``LedgerPage``), or None without a profile."""
    result: JSON | None = session.rpc("get_credits", limit=limit, offset=offset)
    return result


def list_models(session: Session) -> list[Model]:
    """The available models of the catalogue."""
    return [Model.model_validate(m) for m in session.rpc("list_models")]


# Prompts and the admin view (sql/schema/17_prompts_admin.sql) ----------------------------


def prompt_template_for(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    model_id: str | None,
    job_type: str | None,
) -> PromptTemplate:
    """The active template of a model's (or a) job type, taking the user's rate-limit slot."""
    result = db.user_call(
        principal,
        "service.prompt_template_get",
        request=request.as_json(),
        model_id=model_id,
        job_type=job_type,
    )
    return PromptTemplate.model_validate(result)


# Users' own provider keys (sql/schema/18_provider_keys.sql) ---------------------------------


def provider_key_save(
    db: Database, principal: Principal, request: WriteRequest, provider: str, key: str
) -> Outcome[ProviderKey]:
    """Store or rotate the user's key (201 stored, 200 rotated). The procedure answers its
    own failures instead of raising them (its statement carries the key); raised here."""
    result = db.user_call(
        principal,
        "service.provider_key_save",
        request=request.as_json(),
        provider=provider,
        key=key,
    )
    if "error" in result:
        error = result["error"]
        raise from_sqlstate(
            error.get("sqlstate"),
            error.get("message") or "",
            error.get("detail"),
            error.get("hint"),
        )
    return outcome_of(result, ProviderKey)


def provider_key_delete(
    db: Database, principal: Principal, request: WriteRequest, provider: str
) -> Outcome[ProviderKeyDeleted]:
    """Forget the user's key for a provider (VGK04 when there is none)."""
    result = db.user_call(
        principal, "service.provider_key_delete", request=request.as_json(), provider=provider
    )
    return outcome_of(result, ProviderKeyDeleted)


def provider_keys_list(session: Session) -> list[ProviderKey]:
    """The caller's keys as they may be shown (RLS: their own)."""
    return [ProviderKey.model_validate(k) for k in session.rpc("provider_keys_list")]


def provider_key_for_job(on: Runs, job_id: str, provider: str) -> str | None:
    """The job owner's own key for a provider, decrypted, or None."""
    result = _service(on, "service.provider_key_get_for_job", job_id=job_id, provider=provider)
    return None if result is None else str(result)


def provider_key_mine(db: Database, principal: Principal, provider: str) -> str | None:
    """The signed-in user's own key for a provider, decrypted, or None."""
    result = db.user_call(principal, "service.provider_key_get_mine", provider=provider)
    return None if result is None else str(result)


def admin_list_jobs(
    session: Session,
    status: str | None,
    user_id: str | None,
    model_id: str | None,
    limit: int,
    offset: int,
) -> JSON:
    """{items, total}: everyone's jobs, for an admin (RLS decides; VG403 for others)."""
    result: JSON = session.rpc(
        "admin_list_jobs",
        status=status,
        user_id=user_id,
        model_id=model_id,
        limit=limit,
        offset=offset,
    )
    return result


def admin_list_workers(session: Session) -> list[Worker]:
    """Every registered worker, for an admin (RLS decides; VG403 for others)."""
    return [Worker.model_validate(w) for w in session.rpc("admin_list_workers")]


def prompt_templates_list(session: Session, job_type: str | None) -> list[PromptTemplate]:
    """Every template version, for an admin (RLS decides; VG403 for others)."""
    result = session.rpc("prompt_templates_list", job_type=job_type)
    return [PromptTemplate.model_validate(t) for t in result]


def admin_job_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    action: str,
    job_id: str,
    reason: str,
) -> tuple[Outcome[AdminJobResult], Cancellation | None]:
    """Requeue or fail a job as the admin in the claims, as one request: the answer, and
    who was running it (None on a replay)."""
    result = db.user_call(
        principal,
        "service.admin_job_request",
        request=request.as_json(),
        action=action,
        job_id=job_id,
        reason=reason,
    )
    running = result.get("running")
    return outcome_of(result, AdminJobResult), (
        None if running is None else Cancellation.model_validate(running)
    )


def prompt_template_request(
    db: Database, principal: Principal, request: WriteRequest, change: JSON
) -> Outcome[PromptTemplate]:
    """Save or activate a template version as the admin in the claims, as one request."""
    result = db.user_call(
        principal,
        "service.prompt_template_change_request",
        request=request.as_json(),
        change=change,
    )
    return outcome_of(result, PromptTemplate)


# Writes as one request (sql/schema/07_requests.sql) --------------------------------------


def create_job_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    model_id: str,
    params: JSON,
    priority: int,
    project_id: str | None = None,
    max_credits: int | None = None,
) -> Outcome[Job]:
    """Rate limit, key, reserve-and-queue (within the spend caps) and its stored answer."""
    result = db.user_call(
        principal,
        "service.job_create_request",
        request=request.as_json(),
        model_id=model_id,
        params=params,
        priority=priority,
        project_id=project_id,
        max_credits=max_credits,
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
) -> Outcome[Batch]:
    """Make 1 to 20 jobs for the user, all paid for in one transaction or none."""
    result = db.user_call(
        principal,
        "service.batch_create_request",
        request=request.as_json(),
        items=items,
        project_id=project_id,
        title=title,
        max_credits=max_credits,
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


# Jobs: reports, routing, providers (sql/schema/05_job_routing.sql, 06_job_reports.sql) ------


def job_report(on: Runs, webhook_id: str | None, source: str, report: JSON) -> JobChange:
    """A worker's or provider's report with its delivery's receipt, one transaction."""
    result = _service(on, "service.job_report", webhook_id=webhook_id, source=source, report=report)
    return JobChange.model_validate(result)


def job_start(on: Runs, job_id: str, attempt: int) -> JobChange:
    """dispatched → processing for the current attempt."""
    return JobChange.model_validate(
        _service(on, "service.job_start", job_id=job_id, attempt=attempt)
    )


def job_progress(
    on: Runs, job_id: str, attempt: int, progress: int, message: str | None
) -> JobChange:
    """Progress of the current attempt (never backwards)."""
    result = _service(
        on,
        "service.job_progress",
        job_id=job_id,
        attempt=attempt,
        progress=progress,
        message=message,
    )
    return JobChange.model_validate(result)


def job_complete(
    on: Runs, job_id: str, attempt: int, output: JSON, credits_used: int | None
) -> JobChange:
    """The current attempt finished: capture what it used, release the rest."""
    result = _service(
        on,
        "service.job_complete",
        job_id=job_id,
        attempt=attempt,
        output=output,
        credits_used=credits_used,
    )
    return JobChange.model_validate(result)


def job_fail(
    on: Runs,
    job_id: str,
    attempt: int,
    error_code: str,
    error_message: str,
    *,
    retryable: bool,
) -> JobChange:
    """The current attempt failed: retry with backoff, or fail and release."""
    result = _service(
        on,
        "service.job_fail",
        job_id=job_id,
        attempt=attempt,
        error_code=error_code,
        error_message=error_message,
        retryable=retryable,
    )
    return JobChange.model_validate(result)


def job_return(on: Runs, job_id: str, attempt: int, reason: str) -> JobChange:
    """A push that was not delivered: back to the queue, not a failure."""
    result = _service(on, "service.job_return", job_id=job_id, attempt=attempt, reason=reason)
    return JobChange.model_validate(result)


def job_assign(on: Runs, job_id: str) -> Assignment | None:
    """A healthy push worker with room takes the job, or None."""
    result = _service(on, "service.job_assign", job_id=job_id)
    return None if result is None else Assignment.model_validate(result)


def jobs_assign_pending(on: Runs, limit: int) -> list[Assignment]:
    """Assignments of waiting jobs to push workers with room."""
    return [
        Assignment.model_validate(a)
        for a in _service(on, "service.jobs_assign_pending", limit=limit)
    ]


def job_dispatch_external(on: Runs, job_id: str) -> Job | None:
    """Open an attempt at the job's external provider, or None when it is no longer queued."""
    result = _service(on, "service.job_dispatch_external", job_id=job_id)
    return None if result is None else Job.model_validate(result)


def job_set_provider_id(on: Runs, job_id: str, attempt: int, provider_job_id: str) -> JobChange:
    """Remember the provider's id for the attempt (its webhooks find the job by it)."""
    result = _service(
        on,
        "service.job_set_provider_id",
        job_id=job_id,
        attempt=attempt,
        provider_job_id=provider_job_id,
    )
    return JobChange.model_validate(result)


def job_by_provider_id(on: Runs, provider: str, provider_job_id: str) -> ProviderJobRow | None:
    """The job a provider's id belongs to, or None."""
    result = _service(
        on, "service.job_get_by_provider_id", provider=provider, provider_job_id=provider_job_id
    )
    return None if result is None else ProviderJobRow.model_validate(result)


def job_get_any(on: Runs, job_id: str) -> JobWithModel:
    """A job whatever its owner, with its model."""
    return JobWithModel.model_validate(_service(on, "service.job_get_any", job_id=job_id))


def jobs_active_external(on: Runs) -> list[ExternalJob]:
    """Jobs running at external providers (for reconcile polls)."""
    return [
        ExternalJob.model_validate(j) for j in _service(on, "service.jobs_list_active_external")
    ]


def models_by_provider(on: Runs, provider: str) -> list[ProviderModel]:
    """The provider's models with their provider-side ids."""
    result = _service(on, "service.models_list_by_provider", provider=provider)
    return [ProviderModel.model_validate(m) for m in result]


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
) -> Worker:
    """Register (or re-register by name) a worker."""
    result = _service(
        on,
        "service.worker_register",
        name=name,
        url=url,
        health_url=health_url,
        models=list(models),
        capacity=capacity,
        mode=mode,
        metadata=metadata,
    )
    return Worker.model_validate(result)


def worker_heartbeat(on: Runs, worker_id: str, status: str) -> HeartbeatResult:
    """The worker is alive; its leases are extended; the jobs still its own."""
    result = _service(on, "service.worker_heartbeat", worker_id=worker_id, status=status)
    return HeartbeatResult.model_validate(result)


def worker_record_health(on: Runs, worker_id: str, *, ok: bool, detail: JSON) -> Worker:
    """A health probe's (or a push's) verdict on a worker."""
    result = _service(on, "service.worker_health_record", worker_id=worker_id, ok=ok, detail=detail)
    return Worker.model_validate(result)


def job_claim(on: Runs, worker_id: str, limit: int) -> list[LeasedJob]:
    """A pull worker leases up to ``limit`` queued jobs of its models."""
    result = _service(on, "service.worker_claim", worker_id=worker_id, limit=limit)
    return [LeasedJob.model_validate(j) for j in result]


def workers_list(on: Runs) -> list[Worker]:
    """Every registered worker."""
    return [Worker.model_validate(w) for w in _service(on, "service.workers_list")]


def jobs_requeue_expired(on: Runs, limit: int) -> LeaseSweep:
    """Expired leases back to the queue, or failed out of attempts."""
    return LeaseSweep.model_validate(_service(on, "service.jobs_requeue_expired", limit=limit))


def requests_cleanup(on: Runs) -> Cleanup:
    """Drop expired idempotency keys, old rate windows and webhook receipts."""
    return Cleanup.model_validate(_service(on, "service.requests_clean_up"))


# The media lifecycle (sql/schema/13_media_lifecycle.sql) -------------------------------------


def jobs_outputs_due(on: Runs, retention_days: int, limit: int) -> list[DueOutput]:
    """Outputs whose files should go: removed jobs, and outputs past their retention."""
    result = _service(
        on, "service.jobs_list_outputs_due", retention_days=retention_days, limit=limit
    )
    return [DueOutput.model_validate(d) for d in result]


def jobs_mark_outputs_expired(on: Runs, job_ids: Sequence[str]) -> int:
    """Record that these jobs' files were removed; how many were marked."""
    return int(_service(on, "service.jobs_mark_outputs_expired", job_ids=list(job_ids)))


def uploads_due(on: Runs, retention_days: int, limit: int) -> list[str]:
    """Upload paths past their retention that no unfinished job names."""
    return list(
        _service(on, "service.uploads_list_due", retention_days=retention_days, limit=limit)
    )


# Operations (sql/schema/20_operations.sql) ---------------------------------------------------


def ops_set_unit_prices(on: Runs, prices: JSON) -> JSON:
    """Write the unit prices the cost views use (sql/schema/19_usage.sql); the prices now."""
    result: JSON = _service(on, "service.ops_unit_prices_set", prices=prices)
    return result


def audit_money_report(on: Runs, grace_seconds: int) -> list[MoneyDifference]:
    """Every difference the money audit finds (none: the books are right)."""
    result = _service(on, "service.money_audit_report", grace_seconds=grace_seconds)
    return [MoneyDifference.model_validate(r) for r in result]


def ops_metrics(on: Runs) -> JSON:
    """The numbers /metrics exposes from the database (one call at scrape time)."""
    result: JSON = _service(on, "service.ops_metrics_read")
    return result


def ops_readiness(db: Database, timeout_ms: int) -> Readiness:
    """Healthy workers and catalogue providers, as a cheap call the server cancels after
    ``timeout_ms``."""
    return Readiness.model_validate(db.probe_call("service.ops_readiness_check", timeout_ms))
