"""Reads as the caller, RLS applied: jobs, projects, batches, voices, quotes, credits, models
(sql/schema/11_reads.sql, 14_projects_batches.sql, 15_catalogue_quotes.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON
from videogen.models.catalogue import Model, Quote, Voice
from videogen.models.jobs import Batch, JobWithEvents
from videogen.models.projects import Project

if TYPE_CHECKING:
    from videogen.db.connection import Session


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
    sort: str = "created",
    order: str = "desc",
) -> JSON:
    """{items, total}: the caller's jobs, optionally of one status, project or batch, sorted
    by ``sort`` in ``order`` (items become a ``JobPage``)."""
    result: JSON = session.rpc(
        "list_jobs",
        status=status,
        limit=limit,
        offset=offset,
        project_id=project_id,
        batch_id=batch_id,
        sort=sort,
        order=order,
    )
    return result


def list_projects(
    session: Session, limit: int, offset: int, sort: str = "created", order: str = "desc"
) -> JSON:
    """{items, total}: the caller's projects, sorted (items become a ``ProjectPage``)."""
    result: JSON = session.rpc("list_projects", limit=limit, offset=offset, sort=sort, order=order)
    return result


def get_project(session: Session, project_id: str) -> Project | None:
    """One of the caller's projects, or None."""
    result = session.rpc("get_project", project_id=project_id)
    return None if result is None else Project.model_validate(result)


def get_batch(session: Session, batch_id: str) -> Batch | None:
    """One of the caller's batches with its progress and jobs, or None."""
    result = session.rpc("get_batch", batch_id=batch_id)
    return None if result is None else Batch.model_validate(result)


def list_batches(
    session: Session,
    project_id: str | None,
    limit: int,
    offset: int,
    sort: str = "created",
    order: str = "desc",
) -> JSON:
    """{items, total}: the caller's batches with their progress, sorted (items become a
    ``BatchPage``)."""
    result: JSON = session.rpc(
        "list_batches",
        project_id=project_id,
        limit=limit,
        offset=offset,
        sort=sort,
        order=order,
    )
    return result


def list_voices(session: Session, engine: str | None, language: str | None) -> list[Voice]:
    """The available narration voices."""
    result = session.rpc("list_voices", engine=engine, language=language)
    return [Voice.model_validate(v) for v in result]


def quote_jobs(session: Session, items: list[JSON]) -> Quote:
    """What these requests would cost and when they would be done; nothing is created."""
    return Quote.model_validate(session.rpc("quote_jobs", items=items))


def get_credits(
    session: Session, limit: int, offset: int, sort: str = "created", order: str = "desc"
) -> JSON | None:
    """The caller's balance, reserved credits and a ledger page (items become a
    ``LedgerPage``), or None without a profile."""
    result: JSON | None = session.rpc(
        "get_credits", limit=limit, offset=offset, sort=sort, order=order
    )
    return result


def list_models(session: Session, category: str | None = None) -> list[Model]:
    """The available models of the catalogue (featured first), optionally of one category."""
    return [Model.model_validate(m) for m in session.rpc("list_models", category=category)]
