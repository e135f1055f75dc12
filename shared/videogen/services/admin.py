"""The admin view: every job and worker, requeue or fail a stuck job, the prompt templates.

An admin is a user whose access token carries ``app_metadata.role = "admin"`` (set only
with the service role: ``videogen admin grant <email>`` locally, the Auth admin API on a
hosted project). The database decides: reads run as the admin (RLS policies of
sql/schema/17_prompts_admin.sql), writes are service-only procedures that check the claim.
:func:`require_admin` only answers a non-admin 403 before their request is validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videogen.db import prompts_admin, writes
from videogen.db.outcomes import Outcome
from videogen.errors import Forbidden
from videogen.models.admin import AdminJobPage, AdminJobResult, PromptTemplate, PromptTemplateList
from videogen.models.workers import WorkerList
from videogen.services import routing

if TYPE_CHECKING:
    from videogen.db.connection import Session
    from videogen.models.admin import (
        ActivateTemplate,
        AdminJobAction,
        AdminJobQuery,
        CreateTemplate,
        TemplateQuery,
    )
    from videogen.principal import Principal
    from videogen.services.scope import Scope


def is_admin(principal: Principal) -> bool:
    """The token's ``app_metadata.role`` is ``admin`` (user_metadata never counts)."""
    meta = principal.claims.get("app_metadata")
    return principal.is_user and isinstance(meta, dict) and meta.get("role") == "admin"


def require_admin(principal: Principal) -> None:
    """403 ``ADMIN_ONLY`` unless an admin is calling."""
    if not is_admin(principal):
        raise Forbidden(
            "Only admins may use this route.",
            code="ADMIN_ONLY",
            hint="An admin's access token carries app_metadata.role = admin "
            "(`videogen admin grant <email>` locally), then sign in again.",
        )


def list_jobs(session: Session, query: AdminJobQuery) -> AdminJobPage:
    """A page of everyone's jobs, sorted (newest first by default)."""
    result = prompts_admin.admin_list_jobs(
        session,
        query.status,
        None if query.user_id is None else str(query.user_id),
        query.model,
        query.limit,
        (query.page - 1) * query.limit,
        query.sort,
        query.order,
    )
    return AdminJobPage.of(result["items"], result["total"], query.page, query.limit)


def list_workers(session: Session) -> WorkerList:
    """Every registered worker."""
    return WorkerList(prompts_admin.admin_list_workers(session))


def job_action(scope: Scope, body: AdminJobAction) -> Outcome[AdminJobResult]:
    """Requeue or fail a job as one request; then, after the commit, tell whoever ran it to
    stop and (requeue) route it again. A retry with the key hears the final answer."""
    db, settings = scope.db, scope.settings
    with scope.writing() as write:
        outcome, running = prompts_admin.admin_job_request(
            db, scope.principal, write, body.action, str(body.id), body.reason
        )
    if outcome.replayed:
        return outcome
    answer = outcome.data
    changed: dict[str, Any] = {}
    if running is not None and (running.notify is not None or running.provider_job_id):
        changed["worker_notified"] = routing.notify_cancel(settings, running, db=db)
    if body.action == "requeue":
        changed["job"] = routing.dispatch_job(db, settings, answer.job)
    if changed:
        answer = answer.model_copy(update=changed)
        writes.replace_answer(db, write, outcome.status, answer)
    return Outcome(outcome.status, answer)


def templates(session: Session, query: TemplateQuery) -> PromptTemplateList:
    """Every version of the templates (of one job type)."""
    return PromptTemplateList(prompts_admin.prompt_templates_list(session, query.job_type))


def change_template(
    scope: Scope, body: CreateTemplate | ActivateTemplate
) -> Outcome[PromptTemplate]:
    """Save a new version (201) or activate one (200), as one request."""
    change = body.model_dump(mode="json", exclude_none=True)
    with scope.writing() as write:
        return prompts_admin.prompt_template_request(scope.db, scope.principal, write, change)
