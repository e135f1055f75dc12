"""queue-job — the generic job API for every job type of the catalogue.

POST   body QueueJobRequest {model, params, priority}, header Idempotency-Key
       → 202 {job}: reserved, queued, routed (as generate-video does).
GET    ?id=<uuid> → 200 {job with events};  ?status=&page=&limit= → 200 page of jobs
GET    /models → 200 [models]: the catalogue (ids, job types, limits, prices); the
       publishable key is enough.
DELETE ?id=<uuid> → 200 {job, worker_notified}: canceled, credits released, the worker
       or provider running it told to stop. 409 INVALID_TRANSITION when already finished.
DELETE ?id=<uuid>&action=remove → 200 {job}: a finished job leaves your history (its files
       are removed; the job and its ledger entries stay). 409 while it still runs.
Auth: user. Errors as generate-video, plus 404 JOB_NOT_FOUND.
"""

import functions_framework

from videogen import jobs, links, routing, uploads, writes
from videogen.http import Context, Reply, endpoint
from videogen.schemas import JobDeleteQuery, JobQuery, QueueJobRequest


@functions_framework.http
@endpoint(
    "queue-job",
    methods={"POST": ("user",), "GET": ("user", "public"), "DELETE": ("user",)},
)
def queue_job(ctx: Context) -> Reply:
    """Queue (POST), read (GET) or cancel (DELETE) jobs; GET /models is the catalogue."""
    if ctx.request.method == "GET":
        if ctx.request.path.rstrip("/").endswith("/models"):
            with ctx.db.session(ctx.principal) as session:
                return Reply(200, jobs.models(session))
        ctx.require_user()
        query = ctx.query(JobQuery)
        with ctx.db.session(ctx.principal) as session:
            found = jobs.read(session, query)
        return Reply(200, links.add_to(found, ctx.storage, ctx.settings.signed_url_expires_s))
    if ctx.request.method == "DELETE":
        target = ctx.query(JobDeleteQuery)
        job_id = str(target.id)
        if target.action == "remove":
            return Reply.of(
                ctx.perform(
                    lambda write: jobs.remove(ctx.db, ctx.storage, ctx.principal, write, job_id)
                )
            )
        canceled, running = ctx.perform(
            lambda write: jobs.cancel(ctx.db, ctx.principal, write, job_id)
        )
        if running is not None and routing.notify_cancel(ctx.settings, running):
            answer = canceled.data.model_copy(update={"worker_notified": True})
            writes.replace_answer(ctx.db, ctx.write, 200, answer)  # a retry hears the same
            return Reply(200, answer)
        return Reply.of(canceled)
    body = ctx.body(QueueJobRequest)
    params = body.params.params()
    uploads.check_uploads(ctx.storage, str(ctx.principal.user_id), params)  # before money moves
    created = ctx.perform(
        lambda write: jobs.create(ctx.db, ctx.principal, write, body.model, params, body.priority)
    )
    if created.replayed:
        return Reply.of(created)
    return Reply(202, routing.dispatch_job(ctx.db, ctx.settings, created.data))
