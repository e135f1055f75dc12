"""generate-video — create and follow video jobs (text/image-to-video and composed videos).

POST   body GenerateVideoRequest, header Idempotency-Key (recommended)
       → 202 {job}: credits reserved, job queued and routed (pushed to a worker, handed to
       its provider, or waiting to be claimed) with its queue position;
       → 200 {job}: a composed video short enough to render at once, finished (or failed
       with its credits released) — output has video/thumbnail paths and signed URLs.
       Optional: webhook (https URL of your server), webhook_events, cancel_after (seconds
       or ISO 8601 duration; or a Cancel-After header) — README "Webhooks to your server";
       header Prefer: wait=N (N ≤ 60) → 200 with the finished job if it finishes within
       N seconds, else 202 (Preference-Applied: wait=N).
GET    ?id=<uuid> → 200 {job with events} (owner only, else 404)
GET    ?status=&project_id=&batch_id=&sort=created|updated|status|cost&order=asc|desc&page=
       &limit= → 200 {items, page, limit, total, total_pages, has_next, has_prev}
Auth: user (Supabase access token), or a personal API key (read scope for GET, jobs for
POST). Errors: 401, 402 INSUFFICIENT_CREDITS, 404
MODEL_NOT_FOUND, 422 VALIDATION_ERROR / INVALID_PARAMS, 429 RATE_LIMITED / CONCURRENCY_LIMIT.
"""

import functions_framework

from videogen.kit import waiting
from videogen.kit.context import Context
from videogen.kit.endpoint import Reply, endpoint
from videogen.kit.routes import JOBS, READS
from videogen.models.jobs import GenerateVideoRequest, JobQuery
from videogen.services import jobs, links


@functions_framework.http
@endpoint("generate-video", methods={"POST": JOBS, "GET": READS})
def generate_video(ctx: Context) -> Reply:
    """Create a video job (POST) or read jobs (GET)."""
    if ctx.request.method == "GET":
        query = ctx.query(JobQuery)
        with ctx.db.session(ctx.principal) as session:
            found = jobs.read(session, query)
        return Reply(200, links.add_to(found, ctx.storage, ctx.settings.signed_url_expires_s))
    body = ctx.body(GenerateVideoRequest)
    return waiting.created_job(
        ctx,
        jobs.submit(
            ctx.scope,
            body.model,
            body,
            body.priority,
            None if body.project_id is None else str(body.project_id),
            max_credits=body.max_credits,
            render_short=True,
            delivery=body.delivery(ctx.cancel_after()),
        ),
    )
