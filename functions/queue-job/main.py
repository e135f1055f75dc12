"""queue-job — the generic job API for every job type of the catalogue, and the creator's
workspace around it (projects, batches, quotes, the catalogue).

POST   body QueueJobRequest {model, params, priority, project_id?}, header Idempotency-Key
       → 202 {job}: reserved, queued, routed (as generate-video does) — videos, and pictures
       (text_to_image, image_to_image: output image_path in the images bucket). Files the
       params name may be https URLs: fetched once from public hosts, checked and stored in
       your uploads before any credit moves (422 URL_NOT_ALLOWED / MEDIA_URL_FAILED /
       INVALID_UPLOAD).
GET    ?id=<uuid> → 200 {job with events};  ?status=&project_id=&batch_id=&page=&limit=
       → 200 page of jobs. Every read carries queue_position and estimated_seconds_left /
       estimated_completion_at while unfinished.
DELETE ?id=<uuid> → 200 {job, worker_notified}: canceled, credits released, the worker
       or provider running it told to stop. 409 INVALID_TRANSITION when already finished.
DELETE ?id=<uuid>&action=remove → 200 {job}: a finished job leaves your history (its files
       are removed; the job and its ledger entries stay). 409 while it still runs.

GET    /models[?category=] → the catalogue (category, featured, thumbnail, price rule,
       limits), featured first;
       /voices?engine=&language= → the narration voices. The publishable key is enough.
POST   /quote {items: [{model, params, priority}]} → 200 cost, queue ahead, estimate and
       (composed videos) whether it would render at once; nothing is created.
GET    /projects[?id=] · POST /projects {title, description} → 201 · PATCH /projects?id=
       {title?, description?} · DELETE /projects?id= → its jobs stay, ungrouped.
GET    /element-templates[?id=] · POST /element-templates {name, elements with {{field}}s,
       aspect_ratio?, resolution?, fps?, duration?} → 201 with its `fields` · PATCH ?id= ·
       DELETE ?id=. POST /element-templates/render {template_id, model, values | values_list,
       …} → one job (202) or a batch (202, all reserved or none); 422
       TEMPLATE_FIELDS_MISMATCH lists the missing and extra fields before money moves.
GET    /batches[?id=|?project_id=] · POST /batches {items[1..20], project_id?, title?} → 202
       all reserved together or nothing (402 with the total and the balance) · DELETE
       /batches?id= → every unfinished job canceled.
Creates (POST / and /batches) also take webhook, webhook_events and cancel_after (or a
       Cancel-After header), and the header Prefer: wait=N (N ≤ 60: 200 with the finished
       job or batch if it finishes in time, else 202; Preference-Applied: wait=N).
GET    /webhook-deliveries?job_id=&page=&limit= → 200 page of your webhook deliveries
       (newest first; id = the webhook-id header), each with its attempts.
POST   /enhance {model | job_type, prompt, language?} → 200 {original, enhanced,
       template_id, template_version, job_type, engine}: nothing charged or stored, rate
       limited like a write; create the job with params.prompt = enhanced and
       params.original_prompt = original to keep both.

Admins (app_metadata.role = admin in the token; anyone else 403 ADMIN_ONLY):
GET    /admin/jobs?status=&user_id=&model=&page=&limit= → everyone's jobs, newest first.
POST   /admin/jobs {action: requeue|fail, id, reason} → 200 {action, job, worker_notified}:
       requeue puts a stuck job back in the queue (then routes it), fail ends it and
       releases its credits; 409 INVALID_TRANSITION once it has finished.
GET    /admin/workers → every registered worker.
GET    /admin/templates?job_type= → every prompt template version · POST /admin/templates
       {action: create, job_type, instruction, hints?, note?, activate?} → 201 the new
       version, or {action: activate, id} → 200 (a rollback is activating an older one).
GET    /share-links → {links} · POST /share-links {job_id, expires_in_seconds?} → 201 a
       public link to a completed video (url) · DELETE /share-links?id= → 200 revoked.
GET    /shared?id=<link id>[&format=json] (no credentials) → 302 to a freshly signed URL
       of the video (json: its metadata and signed URLs), Cache-Control public, max-age at
       most 300 s and never past the link's expiry; 404 unknown, 410 revoked or expired.
Auth: user (the catalogue also public); a personal API key (kit.auth `api_key`) with the
read scope for GETs, quotes and previews, with the jobs scope for creating, canceling and
removing jobs, batches, projects and share links; never for /admin. Errors as
generate-video, plus 404 JOB_NOT_FOUND, PROJECT_NOT_FOUND, BATCH_NOT_FOUND,
TEMPLATE_NOT_FOUND, ELEMENT_TEMPLATE_NOT_FOUND, SHARE_LINK_NOT_FOUND; 503 PROMPT_ENGINE_FAILED.
"""

from typing import Annotated

import functions_framework
from pydantic import ConfigDict, Field, TypeAdapter

from videogen.kit import waiting
from videogen.kit.context import Context
from videogen.kit.endpoint import Reply, Route, serve
from videogen.kit.routes import JOBS, READS, SESSION
from videogen.models.accounts import SharedQuery, ShareLinkQuery, ShareLinkRequest
from videogen.models.admin import (
    ActivateTemplate,
    AdminJobAction,
    AdminJobQuery,
    CreateTemplate,
    EnhanceRequest,
    TemplateQuery,
)
from videogen.models.catalogue import (
    ModelQuery,
    QuoteRequest,
    ScriptAnalysisRequest,
    VoicePreviewRequest,
    VoiceQuery,
)
from videogen.models.common import JobIdQuery, ListQuery, parse
from videogen.models.element_templates import (
    ElementTemplateChange,
    ElementTemplateRequest,
    TemplateRenderRequest,
)
from videogen.models.jobs import BatchQuery, BatchRequest, JobDeleteQuery, JobQuery, QueueJobRequest
from videogen.models.projects import ProjectChange, ProjectQuery, ProjectRequest
from videogen.models.webhooks import DeliveryQuery
from videogen.rendering import steps
from videogen.services import (
    admin,
    catalogue,
    element_templates,
    jobs,
    links,
    projects,
    prompts,
    sharing,
    webhooks,
)

TemplateChange = Annotated[CreateTemplate | ActivateTemplate, Field(discriminator="action")]
# Built on first use, as the models are (cold start).
_template_change: TypeAdapter[CreateTemplate | ActivateTemplate] = TypeAdapter(
    TemplateChange, config=ConfigDict(defer_build=True)
)


def jobs_route(ctx: Context) -> Reply:
    """/ : create, read, cancel or remove jobs."""
    if ctx.request.method == "GET":
        query = ctx.query(JobQuery)
        with ctx.db.session(ctx.principal) as session:
            found = jobs.read(session, query)
        return Reply(200, links.add_to(found, ctx.storage, ctx.settings.signed_url_expires_s))
    if ctx.request.method == "DELETE":
        target = ctx.query(JobDeleteQuery)
        job_id = str(target.id)
        if target.action == "remove":
            return Reply.of(jobs.remove(ctx.scope, job_id))
        return Reply.of(jobs.cancel(ctx.scope, job_id))
    body = ctx.body(QueueJobRequest)
    return waiting.created_job(
        ctx,
        jobs.submit(
            ctx.scope,
            body.model,
            body.params,
            body.priority,
            None if body.project_id is None else str(body.project_id),
            max_credits=body.max_credits,
            render_short=False,
            delivery=body.delivery(ctx.cancel_after()),
        ),
    )


def models_route(ctx: Context) -> Reply:
    """/models: the catalogue."""
    ctx.take_free_call()
    query = ctx.query(ModelQuery)
    with ctx.db.session(ctx.principal) as session:
        return Reply(200, jobs.models(session, query.category))


def voices_route(ctx: Context) -> Reply:
    """/voices: the narration voices."""
    ctx.take_free_call()
    query = ctx.query(VoiceQuery)
    with ctx.db.session(ctx.principal) as session:
        return Reply(200, catalogue.voices(session, ctx.settings, query))


def quote_route(ctx: Context) -> Reply:
    """/quote: what requests would cost and when they would be done."""
    ctx.take_free_call()
    body = ctx.body(QuoteRequest)
    with ctx.db.session(ctx.principal) as session:
        return Reply(200, catalogue.quote(session, ctx.settings, body))


def analyze_route(ctx: Context) -> Reply:
    """/script/analyze: a script's words and reading time, per section (free)."""
    ctx.take_free_call()
    body = ctx.body(ScriptAnalysisRequest)
    return Reply(200, steps.analysis(body.script, body.speaking_rate))


def preview_route(ctx: Context) -> Reply:
    """/voices/preview: a few seconds of a voice, as WAV."""
    ctx.take_free_call()
    body = ctx.body(VoicePreviewRequest)
    audio = steps.preview_voice(body.voice, body.language, body.text)
    # The same voice and words always sound the same: a browser may keep it a day.
    cache = {"Cache-Control": "private, max-age=86400"}
    return Reply(200, None, headers=cache, raw=audio, content_type="audio/wav")


def projects_route(ctx: Context) -> Reply:
    """/projects: the user's projects."""
    method = ctx.request.method
    if method == "GET":
        query = ctx.query(ProjectQuery)
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, projects.read(session, query))
    if method == "POST":
        new = ctx.body(ProjectRequest)
        return Reply.of(projects.create(ctx.scope, new))
    project_id = str(ctx.query(JobIdQuery).id)
    if method == "PATCH":
        change = ctx.body(ProjectChange)
        return Reply.of(projects.change(ctx.scope, project_id, change))
    return Reply.of(projects.delete(ctx.scope, project_id))


def batches_route(ctx: Context) -> Reply:
    """/batches: many jobs in one request."""
    method = ctx.request.method
    if method == "GET":
        query = ctx.query(BatchQuery)
        with ctx.db.session(ctx.principal) as session:
            found = projects.read_batches(session, query)
        return Reply(200, links.add_to(found, ctx.storage, ctx.settings.signed_url_expires_s))
    if method == "POST":
        body = ctx.body(BatchRequest)
        return waiting.created_batch(
            ctx, projects.create_batch(ctx.scope, body, ctx.cancel_after())
        )
    return Reply.of(projects.cancel_batch(ctx.scope, str(ctx.query(JobIdQuery).id)))


def element_templates_route(ctx: Context) -> Reply:
    """/element-templates: the user's saved timelines with merge fields."""
    method = ctx.request.method
    if method == "GET":
        query = ctx.query(ListQuery)
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, element_templates.read(session, query))
    if method == "POST":
        return Reply.of(element_templates.create(ctx.scope, ctx.body(ElementTemplateRequest)))
    template_id = str(ctx.query(JobIdQuery).id)
    if method == "PATCH":
        change = ctx.body(ElementTemplateChange)
        return Reply.of(element_templates.change(ctx.scope, template_id, change))
    return Reply.of(element_templates.delete(ctx.scope, template_id))


def template_render_route(ctx: Context) -> Reply:
    """/element-templates/render: a template filled in, as a job or a batch."""
    return Reply.of(element_templates.render(ctx.scope, ctx.body(TemplateRenderRequest)))


def deliveries_route(ctx: Context) -> Reply:
    """/webhook-deliveries: your webhook deliveries and their attempts."""
    query = ctx.query(DeliveryQuery)
    with ctx.db.session(ctx.principal) as session:
        return Reply(200, webhooks.deliveries(session, query))


def enhance_route(ctx: Context) -> Reply:
    """/enhance: an improved prompt, for the user to use or not."""
    ctx.take_free_call()
    body = ctx.body(EnhanceRequest)
    return Reply(200, prompts.enhance(ctx.db, ctx.principal, ctx.write, body))


def share_links_route(ctx: Context) -> Reply:
    """/share-links: your public links to finished videos — list, make, revoke."""
    method = ctx.request.method
    if method == "GET":
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, sharing.listing(session, ctx.settings))
    if method == "POST":
        return Reply.of(sharing.create(ctx.scope, ctx.body(ShareLinkRequest)))
    return Reply.of(sharing.revoke(ctx.scope, ctx.query(ShareLinkQuery).id))


def shared_route(ctx: Context) -> Reply:
    """/shared?id=: a shared video, for anyone holding the link (no credentials)."""
    query = ctx.query(SharedQuery)
    video, cache_s = sharing.open_link(ctx.db, ctx.storage, ctx.settings, query.id)
    headers = {"Cache-Control": f"public, max-age={cache_s}" if cache_s > 0 else "no-store"}
    if query.format == "json":
        return Reply(200, video, headers)
    headers["Location"] = video.video_url
    return Reply(302, None, headers, raw=b"", content_type="text/plain; charset=utf-8")


def admin_jobs_route(ctx: Context) -> Reply:
    """/admin/jobs: everyone's jobs; requeue or fail one."""
    admin.require_admin(ctx.principal)  # before anything is validated
    if ctx.request.method == "GET":
        query = ctx.query(AdminJobQuery)
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, admin.list_jobs(session, query))
    body = ctx.body(AdminJobAction)
    return Reply.of(admin.job_action(ctx.scope, body))


def admin_workers_route(ctx: Context) -> Reply:
    """/admin/workers: every registered worker."""
    admin.require_admin(ctx.principal)
    with ctx.db.session(ctx.principal) as session:
        return Reply(200, admin.list_workers(session))


def admin_templates_route(ctx: Context) -> Reply:
    """/admin/templates: the prompt templates' versions; save or activate one."""
    admin.require_admin(ctx.principal)
    if ctx.request.method == "GET":
        query = ctx.query(TemplateQuery)
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, admin.templates(session, query))
    change = parse(_template_change, ctx.json())
    return Reply.of(admin.change_template(ctx.scope, change))


CATALOGUE = ("user", "api_key:read", "public")

# The route table: the kit, its 404/405 answers and openapi.yaml all read it.
queue_job = functions_framework.http(
    serve(
        "queue-job",
        [
            Route(None, {"POST": JOBS, "GET": READS, "DELETE": JOBS}, jobs_route),
            Route("/models", {"GET": CATALOGUE}, models_route),
            Route("/voices", {"GET": CATALOGUE}, voices_route),
            Route("/quote", {"POST": READS}, quote_route),
            Route("/script/analyze", {"POST": READS}, analyze_route),
            Route("/voices/preview", {"POST": READS}, preview_route),
            Route(
                "/projects",
                {"GET": READS, "POST": JOBS, "PATCH": JOBS, "DELETE": JOBS},
                projects_route,
            ),
            Route("/batches", {"GET": READS, "POST": JOBS, "DELETE": JOBS}, batches_route),
            Route(
                "/element-templates",
                {"GET": READS, "POST": JOBS, "PATCH": JOBS, "DELETE": JOBS},
                element_templates_route,
            ),
            Route("/element-templates/render", {"POST": JOBS}, template_render_route),
            Route("/enhance", {"POST": JOBS}, enhance_route),
            Route("/webhook-deliveries", {"GET": READS}, deliveries_route),
            Route("/share-links", {"GET": READS, "POST": JOBS, "DELETE": JOBS}, share_links_route),
            Route("/shared", {"GET": ("always",)}, shared_route),
            # A personal API key never acts as an admin.
            Route("/admin/jobs", {"GET": SESSION, "POST": SESSION}, admin_jobs_route),
            Route("/admin/workers", {"GET": SESSION}, admin_workers_route),
            Route("/admin/templates", {"GET": SESSION, "POST": SESSION}, admin_templates_route),
        ],
    )
)
