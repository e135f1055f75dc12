"""Prompt templates and the admin view (sql/schema/17_prompts_admin.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON
from videogen.db.outcomes import Outcome, outcome_of
from videogen.models.admin import AdminJobResult, PromptTemplate
from videogen.models.workers import Cancellation, Worker

if TYPE_CHECKING:
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal


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


def admin_list_jobs(
    session: Session,
    status: str | None,
    user_id: str | None,
    model_id: str | None,
    limit: int,
    offset: int,
    sort: str = "created",
    order: str = "desc",
) -> JSON:
    """{items, total}: everyone's jobs, sorted, for an admin (RLS decides; VG403 for
    others)."""
    result: JSON = session.rpc(
        "admin_list_jobs",
        status=status,
        user_id=user_id,
        model_id=model_id,
        limit=limit,
        offset=offset,
        sort=sort,
        order=order,
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
