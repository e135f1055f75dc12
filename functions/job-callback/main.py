"""job-callback — reports from GPU workers and external video providers.

POST (worker)    body JobCallback {type: started|progress|completed|failed, job_id, attempt,
                 …}, signed per Standard Webhooks (webhook-id / webhook-timestamp /
                 webhook-signature; 5-minute tolerance; each webhook-id applied once).
POST ?provider=fal|replicate|runpod  the provider's own webhook, verified by its scheme.
The signature is checked over the raw body before the body is read.
→ 200 {applied, reason?, job}: duplicate, reordered and late callbacks (an attempt that
is no longer current) answer 200 with applied=false and change nothing.
Errors: 401 INVALID_SIGNATURE / STALE_WEBHOOK, 404 JOB_NOT_FOUND, 422 VALIDATION_ERROR /
INVALID_OUTPUT (outputs name storage paths in the job owner's folder; nothing else).
"""

import functions_framework

from videogen.kit.context import Context
from videogen.kit.endpoint import Reply, endpoint, parse
from videogen.models.workers import JobCallback
from videogen.services import jobs, routing


@functions_framework.http
@endpoint(
    "job-callback", methods={"POST": ("provider_signature", "worker_signature")}, rate_limited=()
)
def job_callback(ctx: Context) -> Reply:
    """Apply one verified worker or provider report."""
    if ctx.principal.kind == "provider":
        from videogen.integrations.providers import read_webhook

        provider, adapter = str(ctx.principal.key_name), ctx.principal.evidence
        query = dict(ctx.request.args.items())
        event = read_webhook(adapter, ctx.headers, ctx.raw_body, query)
        return Reply(
            200, jobs.apply_provider_event(ctx.db, ctx.settings, provider, event, event.event_id)
        )
    callback = parse(JobCallback, ctx.json())
    result = jobs.apply_callback(ctx.db, callback, str(ctx.principal.delivery_id))
    if result.applied and callback.type in ("completed", "failed"):
        routing.dispatch_pending(ctx.db, ctx.settings, limit=4)  # the worker has room again
    return Reply(200, result)
