"""What workers and providers report about a job: start, progress, completion, failure, return
(sql/schema/06_job_reports.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON, service_call
from videogen.models.jobs import JobChange

if TYPE_CHECKING:
    from videogen.db.calls import Runs


def job_report(on: Runs, webhook_id: str | None, source: str, report: JSON) -> JobChange:
    """A worker's or provider's report with its delivery's receipt, one transaction."""
    result = service_call(
        on, "service.job_report", webhook_id=webhook_id, source=source, report=report
    )
    return JobChange.model_validate(result)


def job_start(on: Runs, job_id: str, attempt: int) -> JobChange:
    """dispatched → processing for the current attempt."""
    return JobChange.model_validate(
        service_call(on, "service.job_start", job_id=job_id, attempt=attempt)
    )


def job_progress(
    on: Runs, job_id: str, attempt: int, progress: int, message: str | None
) -> JobChange:
    """Progress of the current attempt (never backwards)."""
    result = service_call(
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
    result = service_call(
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
    result = service_call(
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
    result = service_call(on, "service.job_return", job_id=job_id, attempt=attempt, reason=reason)
    return JobChange.model_validate(result)
