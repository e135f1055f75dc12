"""Projects and batches as the functions use them (sql/schema/14_projects_batches.sql).

A project files jobs; a batch makes up to 20 of them in one transaction, paid for together
or not at all, then routes each (after the commit, as a single create does). Writes are
one database call each (the modules of :mod:`videogen.db`); reads run in the caller's session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db import reads, write_requests
from videogen.db.connection import Session
from videogen.db.outcomes import Outcome
from videogen.db.writes import replace_answer
from videogen.errors import NotFound
from videogen.models.jobs import Batch, BatchCanceled, BatchPage, BatchQuery, BatchRequest
from videogen.models.projects import (
    Project,
    ProjectChange,
    ProjectDeleted,
    ProjectPage,
    ProjectQuery,
    ProjectRequest,
)
from videogen.services.routing import dispatch_job, notify_cancel

if TYPE_CHECKING:
    from datetime import timedelta

    from videogen.services.scope import Scope


def create(scope: Scope, body: ProjectRequest) -> Outcome[Project]:
    """A new project of the user's."""
    with scope.writing() as write:
        return write_requests.create_project_request(
            scope.db, scope.principal, write, body.title, body.description
        )


def change(scope: Scope, project_id: str, body: ProjectChange) -> Outcome[Project]:
    """Rename or redescribe one of the user's projects (404 when it is not theirs)."""
    with scope.writing() as write:
        return write_requests.update_project_request(
            scope.db,
            scope.principal,
            write,
            project_id,
            title=body.title,
            description=body.description,
        )


def delete(scope: Scope, project_id: str) -> Outcome[ProjectDeleted]:
    """Delete one of the user's projects; its jobs stay, ungrouped, with their ledger."""
    with scope.writing() as write:
        return write_requests.delete_project_request(scope.db, scope.principal, write, project_id)


def read(session: Session, query: ProjectQuery) -> Project | ProjectPage:
    """``?id=`` → one project (404 when not the caller's); otherwise a page, newest first."""
    if query.id is not None:
        project = reads.get_project(session, str(query.id))
        if project is None:
            raise NotFound("Project not found.", code="PROJECT_NOT_FOUND")
        return project
    offset = (query.page - 1) * query.limit
    result = reads.list_projects(session, query.limit, offset, query.sort, query.order)
    return ProjectPage.of(result["items"], result["total"], query.page, query.limit)


def create_batch(
    scope: Scope, body: BatchRequest, cancel_after: timedelta | None = None
) -> Outcome[Batch]:
    """Make the batch's jobs (all reserved together or none; each with the batch's webhook
    and deadline — ``cancel_after``: the header's, when the body gives none), then route
    each one."""
    # cold start: services.uploads loads only on this path
    from videogen.services.uploads import check_uploads, fetch_urls

    user_id = str(scope.principal.user_id)
    for item in body.items:  # before money moves: files named by URL fetched, then checked
        item.params = fetch_urls(scope.storage, scope.settings, user_id, item.params)
        check_uploads(scope.storage, user_id, item.params)
    delivery = body.delivery(cancel_after)
    with scope.writing() as write:
        if body.webhook is not None:
            # cold start: services.webhooks loads only on this path
            from videogen.services.webhooks import check_url

            check_url(scope.settings, body.webhook)  # 422 for a private host
        outcome = write_requests.create_batch_request(
            scope.db,
            scope.principal,
            write,
            [item.as_item() for item in body.items],
            project_id=None if body.project_id is None else str(body.project_id),
            title=body.title,
            max_credits=body.max_credits,
            delivery=delivery,
        )
    if not outcome.replayed:
        jobs = outcome.data.jobs
        outcome.data.jobs = [dispatch_job(scope.db, scope.settings, job) for job in jobs]
    return outcome


def cancel_batch(scope: Scope, batch_id: str) -> Outcome[BatchCanceled]:
    """Cancel every unfinished job of the user's batch (credits released); the workers and
    providers running them are told after the commit."""
    db = scope.db
    with scope.writing() as write:
        outcome, running = write_requests.cancel_batch_request(db, scope.principal, write, batch_id)
    told = sum(1 for canceled in running if notify_cancel(scope.settings, canceled, db=db))
    if told:
        outcome.data.workers_notified = told
        replace_answer(db, write, 200, outcome.data)  # a retry hears the same
    return outcome


def read_batches(session: Session, query: BatchQuery) -> Batch | BatchPage:
    """``?id=`` → one batch with its jobs (404 when not the caller's); otherwise a page."""
    if query.id is not None:
        batch = reads.get_batch(session, str(query.id))
        if batch is None:
            raise NotFound("Batch not found.", code="BATCH_NOT_FOUND")
        return batch
    project = None if query.project_id is None else str(query.project_id)
    offset = (query.page - 1) * query.limit
    result = reads.list_batches(session, project, query.limit, offset, query.sort, query.order)
    return BatchPage.of(result["items"], result["total"], query.page, query.limit)
