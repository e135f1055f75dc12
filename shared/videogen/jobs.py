"""Jobs as the functions use them: create, read, cancel, and apply worker callbacks.

Each function here is one business action on a :class:`~videogen.db.Session` (one
transaction on Postgres); talking to workers and providers over HTTP happens after the
commit, in :mod:`videogen.routing`.
"""

from __future__ import annotations

from typing import Any

from videogen.db import Session
from videogen.errors import NotFound
from videogen.http import paginated
from videogen.schemas import JobCallback


def create(
    session: Session, model: str, params: dict[str, Any], priority: int = 0
) -> dict[str, Any]:
    """Reserve credits and queue a job for the session's user; returns the job."""
    job: dict[str, Any] = session.rpc(
        "create_job", model_id=model, params=params, priority=priority
    )
    return job


def get(session: Session, job_id: str) -> dict[str, Any]:
    """One of the caller's jobs with its events, or 404 (RLS hides other people's)."""
    job = session.rpc("get_job", job_id=job_id)
    if job is None:
        raise NotFound("Job not found.", code="JOB_NOT_FOUND")
    return dict(job)


def list_page(session: Session, status: str | None, page: int, limit: int) -> dict[str, Any]:
    """A page of the caller's jobs, newest first."""
    result = session.rpc("list_jobs", status=status, limit=limit, offset=(page - 1) * limit)
    return paginated(result["items"], result["total"], page, limit)


def cancel(session: Session, job_id: str) -> dict[str, Any]:
    """Cancel the caller's job and release its credits; returns {job, notify, provider…}."""
    result: dict[str, Any] = session.rpc("cancel_job", job_id=job_id)
    return result


def apply_callback(admin: Session, callback: JobCallback, delivery_id: str) -> dict[str, Any]:
    """Apply one signed worker report; a repeated delivery or a stale attempt changes nothing."""
    if not admin.rpc("webhook_receipt", webhook_id=delivery_id, source="worker"):
        return {"applied": False, "reason": "duplicate_delivery"}
    job_id, attempt = str(callback.job_id), callback.attempt
    result: dict[str, Any]
    if callback.type == "started":
        result = admin.rpc("job_start", job_id=job_id, attempt=attempt)
    elif callback.type == "progress":
        result = admin.rpc(
            "job_progress",
            job_id=job_id,
            attempt=attempt,
            progress=callback.progress or 0,
            message=callback.message,
        )
    elif callback.type == "completed":
        result = admin.rpc(
            "job_complete",
            job_id=job_id,
            attempt=attempt,
            output=callback.output or {},
            credits_used=callback.credits_used,
        )
    else:
        error = callback.error
        result = admin.rpc(
            "job_fail",
            job_id=job_id,
            attempt=attempt,
            error_code=error.code if error else "WORKER_ERROR",
            error_message=error.message if error else "",
            retryable=error.retryable if error else True,
        )
    return result


def apply_provider_event(
    admin: Session, provider: str, event: Any, delivery_id: str | None
) -> dict[str, Any]:
    """Apply a provider's (verified or reconciled) report to the job it belongs to."""
    if delivery_id and not admin.rpc(
        "webhook_receipt", webhook_id=f"{provider}:{delivery_id}", source=provider
    ):
        return {"applied": False, "reason": "duplicate_delivery"}
    job = admin.rpc("job_by_provider_id", provider=provider, provider_job_id=event.provider_job_id)
    if job is None:
        return {"applied": False, "reason": "unknown_provider_job"}
    job_id, attempt = job["id"], job["attempt"]
    if event.state == "processing":
        return dict(
            admin.rpc(
                "job_progress",
                job_id=job_id,
                attempt=attempt,
                progress=event.progress or max(job["progress"], 1),
                message=None,
            )
        )
    if event.state == "completed":
        output = {
            "video_url": event.output_urls[0] if event.output_urls else None,
            "urls": list(event.output_urls),
            "provider": provider,
        }
        return dict(
            admin.rpc(
                "job_complete", job_id=job_id, attempt=attempt, output=output, credits_used=None
            )
        )
    if event.state in ("failed", "canceled"):
        return dict(
            admin.rpc(
                "job_fail",
                job_id=job_id,
                attempt=attempt,
                error_code=event.error_code or "PROVIDER_FAILED",
                error_message=event.error or f"{provider} reported {event.state}",
                retryable=False,
            )
        )
    return {"applied": False, "reason": "no_change"}
