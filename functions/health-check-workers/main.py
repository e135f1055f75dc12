"""health-check-workers — the fleet's scheduler entry, the workers' front door, and the
probes and metrics of the deployment.

GET  /live   (no credentials) → 200 {"status": "ok"}: the process answers; nothing else is
     touched (a liveness probe).
GET  /ready  (no credentials) → 200 {"status": "ready", checks} or 503 NOT_READY with the
     same per-check booleans in `details`: the database answers one cheap query within 1 s,
     the storage backend is reachable (Supabase: a list of one object with the service key;
     local: its folder is writable), and a healthy worker or a configured provider with
     available models can serve jobs. No hostnames, DSNs or error text.
GET  /metrics  (Authorization: Bearer <METRICS_TOKEN>; 503 METRICS_NOT_CONFIGURED while it
     is unset) → the Prometheus text exposition: this process's request counts and
     latencies, and the database's numbers read at scrape time (videogen.metrics).
GET  or POST {"action": "sweep"}  (secret key, or the CRON_SECRET as x-cron-secret /
     Bearer): probe every worker's health URL concurrently, mark them, requeue expired
     leases (failing jobs out of attempts, credits released), reconcile provider jobs,
     push waiting jobs, drop expired idempotency keys, run the money audit → 200 summary.
POST {"action": "register", name, url, health_url, models, capacity, mode}  (signed)
POST {"action": "heartbeat", worker_id, status}  (signed) → {worker, jobs it still owns}
POST {"action": "claim", worker_id, limit}  (signed, pull workers) → [leased jobs]
Signed = Standard Webhooks headers with the shared worker secret (docs/worker-protocol.md).
Every caller is authenticated before its body is read: 401 first, then 400/422.
"""

from typing import Annotated

import functions_framework
from pydantic import ConfigDict, Field, TypeAdapter

from videogen import metrics
from videogen.errors import ServiceUnavailable
from videogen.kit.context import Context
from videogen.kit.endpoint import Reply, Route, parse, serve
from videogen.models.ops import Liveness, ReadinessAnswer, Sweep
from videogen.models.workers import ClaimJobs, Heartbeat, RegisterWorker
from videogen.services import ops, routing, workers

Action = Annotated[RegisterWorker | Heartbeat | ClaimJobs | Sweep, Field(discriminator="action")]
# Built on first use, as the models are (cold start).
_action = TypeAdapter(Action, config=ConfigDict(defer_build=True))


def _probe(ctx: Context) -> Reply:
    """/live, /ready and /metrics."""
    if ctx.route == "/live":
        return Reply(200, Liveness(status="ok"))
    if ctx.route == "/metrics":
        body = ops.metrics_exposition(ctx.db)
        return Reply(200, None, raw=body, content_type=metrics.CONTENT_TYPE)
    checks = ops.readiness(ctx.db, ctx.storage, ctx.settings)
    if not all(checks.model_dump().values()):
        failing = [name for name, ok in checks.model_dump().items() if not ok]
        raise ServiceUnavailable(
            "Not ready: " + ", ".join(failing) + ".",
            code="NOT_READY",
            details=[{"check": name, "ok": ok} for name, ok in checks.model_dump().items()],
        )
    return Reply(200, ReadinessAnswer(status="ready", checks=checks))


def fleet_route(ctx: Context) -> Reply:
    """/ : the sweep (secret or cron); or a worker's register / heartbeat / claim."""
    if ctx.principal.kind != "worker":
        if ctx.request.method == "POST":
            parse(Sweep, ctx.json() if ctx.raw_body else {})
        return Reply(200, workers.sweep(ctx.db, ctx.settings))
    action = parse(_action, ctx.json())
    ctx.log_fields["action"] = action.action  # `videogen logs` sums up heartbeats and claims
    if not isinstance(action, (Sweep, RegisterWorker)):
        ctx.log_fields["worker_id"] = str(action.worker_id)
    if isinstance(action, Sweep):
        return Reply(200, workers.sweep(ctx.db, ctx.settings))
    if isinstance(action, ClaimJobs):
        with ctx.db.admin() as admin:
            return Reply(200, workers.claim(admin, ctx.settings, action))
    with ctx.db.admin() as admin:
        if isinstance(action, RegisterWorker):
            worker = workers.register(admin, action)
            reply, free = Reply(201, worker), worker.capacity
        else:
            beat = workers.heartbeat(admin, action)
            worker, free = beat.worker, beat.worker.capacity - len(beat.jobs)
        ctx.log_fields["worker"] = worker.name
    if not isinstance(action, RegisterWorker):
        # The fleet's render speeds ride along, read after the heartbeat's transaction.
        reply = Reply(200, workers.with_render_speeds(ctx.db, beat))
    if worker.mode == "push" and worker.status == "online" and free > 0:
        routing.dispatch_pending(ctx.db, ctx.settings, limit=free)  # waiting jobs run now
    return reply


SERVICE = ("secret", "cron")

# The route table: the kit, its 404/405 answers and openapi.yaml all read it.
health_check_workers = functions_framework.http(
    serve(
        "health-check-workers",
        [
            Route(None, {"GET": SERVICE, "POST": ("worker_signature", *SERVICE)}, fleet_route),
            Route("/live", {"GET": ("always",)}, _probe),
            Route("/ready", {"GET": ("always",)}, _probe),
            Route("/metrics", {"GET": ("metrics",)}, _probe),
        ],
        rate_limited=(),
    )
)
