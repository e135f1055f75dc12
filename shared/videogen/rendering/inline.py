"""Jobs run inside the request that made them — the wizard's steps
(:mod:`~videogen.rendering.steps`) and short composed videos
(:mod:`~videogen.rendering.composition`): the function is its own worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from videogen.db import job_reports, job_routing
from videogen.errors import AppError
from videogen.usage import metering

if TYPE_CHECKING:
    from videogen.db.connection import Database
    from videogen.models.jobs import Job

Work = Callable[["Job"], tuple[dict[str, Any], float | None]]  # → (output, seconds made)


def run_inline(db: Database, job: Job, work: Work) -> Job:
    """Run a just-created job inside the request: open an attempt, start it, do the work,
    then complete it (capturing what it used) or fail it (releasing everything).

    The work is metered (:mod:`videogen.usage`: tokens, characters, calls, render time)
    and its usage goes with the completion or the failure, in the same transaction."""
    job_id = str(job.id)
    with db.admin() as admin:
        opened = job_routing.job_dispatch_external(admin, job_id)
        if opened is None:  # canceled (or taken) in between
            return job_routing.job_get_any(admin, job_id)
        job_reports.job_start(admin, job_id, opened.attempt)
    base: dict[str, Any] = {"job_id": job_id, "attempt": opened.attempt}
    with metering() as meter:
        try:
            output, rendered_s = work(opened)
        except AppError as exc:
            # A retryable failure (an in-request render past its deadline) goes back to the
            # queue for a worker, as a worker's retryable failure does.
            retryable = bool(getattr(exc, "retryable", False))
            report = {
                **base,
                "type": "failed",
                "error": {"code": exc.code, "message": exc.message, "retryable": retryable},
            }
        else:
            report = {**base, "type": "completed", "output": output}
            if rendered_s is not None:  # the database captures pro rata of it
                report["rendered_seconds"] = rendered_s
    report["usage"] = meter.as_usage()
    change = job_reports.job_report(db, None, "inline", report)
    return change.job or opened
