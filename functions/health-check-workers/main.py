"""health-check-workers — the fleet's scheduler entry and the workers' front door.

GET  or POST {"action": "sweep"}  (secret key, or the CRON_SECRET as x-cron-secret /
     Bearer): probe every worker's health URL concurrently, mark them, requeue expired
     leases (failing jobs out of attempts, credits released), reconcile provider jobs,
     push waiting jobs, drop expired idempotency keys → 200 summary.
POST {"action": "register", name, url, health_url, models, capacity, mode}  (signed)
POST {"action": "heartbeat", worker_id, status}  (signed) → {worker, jobs it still owns}
POST {"action": "claim", worker_id, limit}  (signed, pull workers) → [leased jobs]
Signed = Standard Webhooks headers with the shared worker secret (docs/worker-protocol.md).
Every caller is authenticated before its body is read: 401 first, then 400/422.
"""

from typing import Annotated

import functions_framework
from pydantic import Field, TypeAdapter

from videogen import routing, workers
from videogen.http import Context, Reply, endpoint, parse
from videogen.schemas import ClaimJobs, Heartbeat, RegisterWorker, Sweep

Action = Annotated[RegisterWorker | Heartbeat | ClaimJobs | Sweep, Field(discriminator="action")]
_action = TypeAdapter(Action)


@functions_framework.http
@endpoint(
    "health-check-workers",
    methods={
        "GET": ("secret", "cron"),
        "POST": ("worker_signature", "secret", "cron"),
    },
    rate_limited=(),
)
def health_check_workers(ctx: Context) -> Reply:
    """Run the sweep, or handle a worker's register / heartbeat / claim."""
    if ctx.principal.kind != "worker":
        if ctx.request.method == "POST":
            parse(Sweep, ctx.json() if ctx.raw_body else {})
        return Reply(200, workers.sweep(ctx.db, ctx.settings))
    action = parse(_action, ctx.json())
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
            reply, worker = Reply(200, beat), beat.worker
            free = worker.capacity - len(beat.jobs)
    if worker.mode == "push" and worker.status == "online" and free > 0:
        routing.dispatch_pending(ctx.db, ctx.settings, limit=free)  # waiting jobs run now
    return reply
