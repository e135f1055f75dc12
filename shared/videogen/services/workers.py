"""Worker fleet upkeep: registration, heartbeats, claims, and the health sweep.

The sweep (``health-check-workers``, called by a scheduler) probes every worker's health
URL concurrently with a short timeout, records the results, requeues jobs whose lease ran
out (or fails them when out of attempts, releasing credits), polls external providers for
jobs whose webhooks may have been lost, pushes waiting jobs to free workers, removes
files past their retention (:mod:`videogen.services.retention`), drops expired idempotency keys and
runs the money audit (its count in the answer, its rows in the log). Each step is its own
short transaction.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from videogen.config import Settings
from videogen.db import fleet, job_routing, operations, profiles
from videogen.errors import AppError
from videogen.integrations.storage import storage_for
from videogen.models.ops import MoneyAuditSummary, SweepSummary
from videogen.models.workers import (
    ClaimJobs,
    Heartbeat,
    HeartbeatResult,
    RegisterWorker,
    Worker,
    WorkerJobList,
)
from videogen.rendering import speeds
from videogen.services.retention import sweep as retention_sweep
from videogen.services.routing import dispatch_pending, shared_client, worker_job

if TYPE_CHECKING:
    import httpx

    from videogen.db.connection import Database, Session

log = logging.getLogger(__name__)


def register(admin: Session, body: RegisterWorker) -> Worker:
    """Register or re-register a worker by name."""
    return fleet.worker_register(
        admin,
        name=body.name,
        url=body.url,
        health_url=body.health_url,
        models=body.models,
        capacity=body.capacity,
        mode=body.mode,
        metadata=body.metadata,
    )


def heartbeat(admin: Session, body: Heartbeat) -> HeartbeatResult:
    """Mark a worker alive, extend its leases, list the jobs that are still its own."""
    return fleet.worker_heartbeat(admin, str(body.worker_id), body.status)


def with_render_speeds(db: Database, beat: HeartbeatResult) -> HeartbeatResult:
    """The heartbeat's answer with the fleet's recent render speeds (cached, read on the
    database's own connection: a failed read leaves them out, never the heartbeat)."""
    return beat.model_copy(update={"render_speeds": speeds.fleet_speeds(db)})


def claim(admin: Session, settings: Settings, body: ClaimJobs) -> WorkerJobList:
    """Lease up to ``limit`` queued jobs of the worker's models, each as a push sends it."""
    leased = fleet.job_claim(admin, str(body.worker_id), body.limit)
    return WorkerJobList([worker_job(job, settings) for job in leased])


def probe(client: httpx.Client, worker: Worker, timeout: float) -> dict[str, Any]:
    """GET a worker's health URL; ok when it answers 2xx within the timeout."""
    url, worker_id = worker.health_url, str(worker.id)
    if not url:
        return {"worker_id": worker_id, "ok": None, "detail": {"skipped": "no health_url"}}
    started = time.perf_counter()
    try:
        resp = client.get(url, timeout=timeout)
        ok = resp.status_code < 300
        detail: dict[str, Any] = {"status_code": resp.status_code}
        if ok and resp.headers.get("content-type", "").startswith("application/json"):
            body = resp.json()
            if isinstance(body, dict):
                detail.update(
                    {k: body[k] for k in ("in_flight", "capacity", "version") if k in body}
                )
    except Exception as exc:  # timeouts, refused connections, bad JSON: all mean unhealthy
        ok, detail = False, {"error": type(exc).__name__}
    detail["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return {"worker_id": worker_id, "ok": ok, "detail": detail}


def reconcile_external(db: Database, settings: Settings, client: httpx.Client | None) -> int:
    """Poll providers for dispatched jobs (lost or unsigned webhooks); returns changes."""
    # cold start: integrations.providers.reconcile loads only on this path
    from videogen.integrations.providers import ProviderError, get_provider, reconcile

    # cold start: services.jobs loads only on this path
    from videogen.services.jobs import apply_provider_event

    with db.admin() as admin:
        active = job_routing.jobs_active_external(admin)
    changed = 0
    from videogen.services import keys  # cold start: services.keys loads only on this path

    for job in active:
        try:
            # A job that runs on its owner's own key is polled with that key.
            own = keys.for_job(db, str(job.id), job.provider)
            provider = get_provider(job.provider, settings, client, api_key=own)
            event = reconcile(provider, job.provider_job_id)
        except ProviderError as exc:
            log.warning("reconcile of %s failed: %s", job.id, exc)
            continue
        try:
            result = apply_provider_event(db, settings, job.provider, event, None, client=client)
        except AppError as exc:  # e.g. its video could not be copied yet: next sweep
            log.warning("reconcile of %s not applied: %s", job.id, exc.code)
            continue
        changed += result.applied
    return changed


def runpod_health(
    db: Database, settings: Settings, client: httpx.Client | None
) -> list[dict[str, Any]]:
    """``GET /health`` of every RunPod serverless endpoint in the catalogue (when configured)."""
    if settings.runpod_api_key is None:
        return []
    # cold start: integrations.providers loads only on this path
    from videogen.integrations.providers import ProviderError, get_provider

    provider: Any = get_provider("runpod", settings, client)
    report = []
    for model in job_routing.models_by_provider(db, "runpod"):
        endpoint = model.provider_model_id
        if endpoint is None:
            continue  # not deployed as an endpoint yet
        try:
            health = provider.health(endpoint)
        except ProviderError as exc:
            report.append(
                {"model": model.id, "endpoint": endpoint, "healthy": False, "error": exc.code}
            )
            continue
        report.append(
            {
                "model": model.id,
                "endpoint": endpoint,
                "healthy": health.is_healthy,
                "has_capacity": health.has_capacity,
                "jobs_in_queue": health.jobs_in_queue,
                "workers_running": health.workers_running,
                "workers_idle": health.workers_idle,
            }
        )
    return report


def sweep(db: Database, settings: Settings, client: httpx.Client | None = None) -> SweepSummary:
    """One pass of fleet upkeep; returns a summary for the scheduler's log."""
    http = client or shared_client()
    with db.admin() as admin:
        workers = fleet.workers_list(admin)
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(workers)))) as pool:
        results = list(pool.map(lambda w: probe(http, w, settings.health_timeout_s), workers))
    with db.admin() as admin:
        for r in results:
            if r["ok"] is not None:
                fleet.worker_record_health(admin, r["worker_id"], ok=r["ok"], detail=r["detail"])
    with db.admin() as admin:
        leases = fleet.jobs_requeue_expired(admin, 500)
    # cold start: services.webhooks loads only on this path
    from videogen.services import webhooks

    deadlines = webhooks.cancel_overdue(db, settings)  # before anything is dispatched
    reconciled = reconcile_external(db, settings, client)
    endpoints = runpod_health(db, settings, client)
    dispatched = dispatch_pending(db, settings, http)
    retention = retention_sweep(db, storage_for(settings), settings)
    with db.admin() as admin:
        cleaned = fleet.requests_cleanup(admin)
        tiers_expired = profiles.subscriptions_expire(admin)
        # The environment's unit prices, for the cost views (a row changes only when its
        # value does).
        operations.ops_set_unit_prices(admin, settings.unit_prices())
    delivered = webhooks.drain(db, settings)  # what the drainers left (retries, crashes)
    differences = operations.audit_money_report(db, settings.audit_grace_s)
    for row in differences[:20]:
        log.error(
            "money audit: %s",
            row.check_name,
            extra={"fields": row.model_dump(mode="json")},
        )
    return SweepSummary(
        workers={
            "probed": sum(r["ok"] is not None for r in results),
            "healthy": sum(r["ok"] is True for r in results),
            "unhealthy": sum(r["ok"] is False for r in results),
            "results": results,
        },
        leases=leases,
        deadlines=deadlines,
        webhooks=delivered,
        reconciled=reconciled,
        runpod_endpoints=endpoints,
        dispatched=dispatched,
        retention=retention,
        tiers_expired=tiers_expired,
        cleanup=cleaned,
        money_audit=MoneyAuditSummary(differences=len(differences)),
    )
