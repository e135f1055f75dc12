"""The worker fleet and the sweep: registration, heartbeats, claims, expired leases, old requests
(sql/schema/05_job_routing.sql, 07_requests.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON, service_call
from videogen.models.ops import Cleanup, LeaseSweep
from videogen.models.workers import HeartbeatResult, LeasedJob, Worker

if TYPE_CHECKING:
    from collections.abc import Sequence

    from videogen.db.calls import Runs


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
    result = service_call(
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
    result = service_call(on, "service.worker_heartbeat", worker_id=worker_id, status=status)
    return HeartbeatResult.model_validate(result)


def worker_record_health(on: Runs, worker_id: str, *, ok: bool, detail: JSON) -> Worker:
    """A health probe's (or a push's) verdict on a worker."""
    result = service_call(
        on, "service.worker_health_record", worker_id=worker_id, ok=ok, detail=detail
    )
    return Worker.model_validate(result)


def job_claim(on: Runs, worker_id: str, limit: int) -> list[LeasedJob]:
    """A pull worker leases up to ``limit`` queued jobs of its models."""
    result = service_call(on, "service.worker_claim", worker_id=worker_id, limit=limit)
    return [LeasedJob.model_validate(j) for j in result]


def workers_list(on: Runs) -> list[Worker]:
    """Every registered worker."""
    return [Worker.model_validate(w) for w in service_call(on, "service.workers_list")]


def jobs_requeue_expired(on: Runs, limit: int) -> LeaseSweep:
    """Expired leases back to the queue, or failed out of attempts."""
    return LeaseSweep.model_validate(service_call(on, "service.jobs_requeue_expired", limit=limit))


def requests_cleanup(on: Runs) -> Cleanup:
    """Drop expired idempotency keys, old rate windows and webhook receipts."""
    return Cleanup.model_validate(service_call(on, "service.requests_clean_up"))
