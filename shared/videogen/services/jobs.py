"""Jobs as the functions use them: create, read, cancel, and apply worker and provider
reports.

Each write here is one database call (the modules of :mod:`videogen.db`), one transaction;
reads run in the caller's session, as the caller. Talking to workers and providers over
HTTP happens after the commit, in :mod:`videogen.services.routing`.
"""

from __future__ import annotations

import ipaddress
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from videogen.db import job_reports, job_routing, reads, write_requests, writes
from videogen.db.connection import Session
from videogen.db.outcomes import Outcome, WriteRequest
from videogen.errors import NotFound, ServiceUnavailable, ValidationFailed
from videogen.models.catalogue import ModelList
from videogen.models.jobs import (
    CancelResult,
    Job,
    JobChange,
    JobPage,
    JobQuery,
    JobWithEvents,
    ProviderJobRow,
)
from videogen.models.ops import DueOutput
from videogen.models.workers import JobCallback

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage
    from videogen.models.jobs import JobParams
    from videogen.principal import Principal
    from videogen.services.scope import Scope

log = logging.getLogger(__name__)


def create(
    db: Database,
    principal: Principal,
    write: WriteRequest,
    model: str,
    params: dict[str, Any],
    priority: int = 0,
    project_id: str | None = None,
    *,
    max_credits: int | None = None,
    delivery: dict[str, Any] | None = None,
) -> Outcome[Job]:
    """Reserve credits and queue a job for the user (filed in one of their projects when
    given, refused when it costs more than ``max_credits``; ``delivery``: its webhook and
    deadline), as one request (rate limit, key)."""
    return write_requests.create_job_request(
        db, principal, write, model, params, priority, project_id, max_credits, delivery
    )


def submit(
    scope: Scope,
    model: str,
    params: JobParams,
    priority: int = 0,
    project_id: str | None = None,
    *,
    max_credits: int | None = None,
    render_short: bool,
    delivery: dict[str, Any] | None = None,
) -> Outcome[Job]:
    """The whole "create a job" action both functions answer a POST with: check what the job
    names (before money moves) and its webhook's host, reserve and queue it in one request
    (:func:`create`), then run or route it (:func:`run_or_route`). A finished job becomes
    the key's answer and carries fresh links; a replay is the first answer, its links
    signed today. ``params``: the request's (its model's job type is known only in the
    database)."""
    from videogen.rendering import steps  # cold start: rendering.steps loads only on this path

    # cold start: services.links, services.uploads load only on this path
    from videogen.services import links, uploads

    steps.check_params(scope.settings, params)
    user_id = str(scope.principal.user_id)
    # Files named by URL are fetched once and stored as the user's uploads (before money).
    params = uploads.fetch_urls(scope.storage, scope.settings, user_id, params)
    # What the pictures hold counts in the render's estimate.
    pixels = uploads.check_uploads(scope.storage, user_id, params)
    with scope.writing() as write:
        if delivery and delivery.get("webhook"):
            # cold start: services.webhooks loads only on this path
            from videogen.services.webhooks import check_url

            check_url(scope.settings, delivery["webhook"])  # 422 for a private host
        created = create(
            scope.db,
            scope.principal,
            write,
            model,
            params.params(),
            priority,
            project_id,
            max_credits=max_credits,
            delivery=delivery,
        )
    expire_s = scope.settings.signed_url_expires_s
    if created.replayed:
        links.add_links(scope.storage, [created.data], expire_s)
        return created
    status, job = run_or_route(
        scope.db, scope.settings, created.data, render_short=render_short, input_pixels=pixels
    )
    if status == 200:  # finished here: a retry with the key replays the result
        writes.replace_answer(scope.db, scope.write, 200, job)
        links.add_links(scope.storage, [job], expire_s)
    return Outcome(status, job)


def run_or_route(
    db: Database, settings: Settings, job: Job, *, render_short: bool, input_pixels: int = 0
) -> tuple[int, Job]:
    """What happens right after a job is made: a wizard step (:mod:`videogen.rendering.steps`) —
    and, with ``render_short``, a composed video short enough to render at once — runs
    here and answers 200 finished; anything else is routed (202: pushed to a worker,
    handed to its provider, or left for a pull worker). ``input_pixels``: what its uploaded
    pictures hold, which the render must decode."""
    # cold start: rendering.composition, rendering.steps load only on this path
    from videogen.rendering import composition, steps
    from videogen.services import routing  # cold start: services.routing loads only on this path

    if job.job_type in steps.STEP_TYPES:
        return 200, steps.run(db, settings, job)
    if render_short and job.job_type == "compose" and not job.waiting_for:
        # (A compose job waiting for its section clips is rendered once they are done.)
        estimate = composition.estimated_render_seconds(job.params, input_pixels)
        if estimate <= settings.sync_render_max_seconds:
            job = composition.render_sync(db, settings, job)
            if job.status != "queued":
                return 200, job
            # It outgrew its estimate and was stopped at its deadline: a worker finishes it.
    return 202, routing.dispatch_job(db, settings, job)


def get(session: Session, job_id: str) -> JobWithEvents:
    """One of the caller's jobs with its events, or 404 (RLS hides other people's)."""
    job = reads.get_job(session, job_id)
    if job is None:
        raise NotFound("Job not found.", code="JOB_NOT_FOUND")
    return job


def list_page(session: Session, query: JobQuery) -> JobPage:
    """A page of the caller's jobs, sorted, of one status, project or batch."""
    result = reads.list_jobs(
        session,
        query.status,
        query.limit,
        (query.page - 1) * query.limit,
        project_id=None if query.project_id is None else str(query.project_id),
        batch_id=None if query.batch_id is None else str(query.batch_id),
        sort=query.sort,
        order=query.order,
    )
    return JobPage.of(result["items"], result["total"], query.page, query.limit)


def read(session: Session, query: JobQuery) -> JobWithEvents | JobPage:
    """``GET ?id=`` → one job with its events; otherwise a filtered page of jobs (links to
    their files are added after the session, :func:`videogen.services.links.add_to`)."""
    if query.id is not None:
        return get(session, str(query.id))
    return list_page(session, query)


def models(session: Session, category: str | None = None) -> ModelList:
    """The models anyone may use — ids, job types, limits and price rules — featured first,
    optionally of one category."""
    return ModelList(reads.list_models(session, category))


def cancel(scope: Scope, job_id: str) -> Outcome[CancelResult]:
    """Cancel the user's job and release its credits; whoever was running it is told after
    the commit (``worker_notified``, which a retry with the key then hears too)."""
    from videogen.services import routing  # cold start: services.routing loads only on this path

    with scope.writing() as write:
        canceled, running = write_requests.cancel_job_request(
            scope.db, scope.principal, write, job_id
        )
    if running is not None and routing.notify_cancel(scope.settings, running, db=scope.db):
        answer = canceled.data.model_copy(update={"worker_notified": True})
        writes.replace_answer(scope.db, write, 200, answer)
        return Outcome(200, answer)
    return canceled


def remove(scope: Scope, job_id: str) -> Outcome[Job]:
    """Remove the user's finished job from their history (its row and ledger stay); its
    files go right after the commit (or at the next sweep, if Storage is down)."""
    # cold start: services.retention loads only on this path
    from videogen.services.retention import remove_outputs

    db = scope.db
    with scope.writing() as write:
        outcome = write_requests.delete_job_request(db, scope.principal, write, job_id)
    job = outcome.data
    if not outcome.replayed and job.output and job.output_expired_at is None:
        due = DueOutput(
            id=job.id,
            video_path=job.output.get("video_path"),
            image_path=job.output.get("image_path"),
            thumbnail_path=job.output.get("thumbnail_path"),
            files=[
                v
                for k, v in sorted(job.output.items())
                if k.endswith("_path")
                and k not in ("video_path", "thumbnail_path")
                and isinstance(v, str)
            ],
        )
        if (due.video_path or due.image_path or due.thumbnail_path) and remove_outputs(
            db, scope.storage, [due]
        ):
            job.output_expired_at = datetime.now(UTC)
    return outcome


def apply_callback(db: Database, callback: JobCallback, delivery_id: str) -> JobChange:
    """Apply one signed worker report with its delivery's receipt, as one call: a repeated
    delivery or a stale attempt changes nothing.

    A completed output names storage paths (links are signed when the job is read); the
    database refuses paths outside the job owner's folder (422, nothing applied, no
    receipt kept).
    """
    # cold start: integrations.storage loads only on this path
    from videogen.integrations.storage import clean_path

    report = callback.model_dump(mode="json", exclude_none=True)
    for field in ("video_path", "image_path", "thumbnail_path"):
        if isinstance(path := (report.get("output") or {}).get(field), str):
            clean_path(path)  # a path that climbs or is malformed: 422 INVALID_OBJECT_PATH
    return job_reports.job_report(db, delivery_id, "worker", report)


def copy_source(url: str) -> str:
    """A provider's result URL, if we may fetch it: https to a public host, else 422.

    It is only ever a source to copy from, never stored as the user's result.
    """

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    private = address is not None and not address.is_global
    if parts.scheme != "https" or not host or host == "localhost" or private:
        raise ValidationFailed(
            "A provider's output must be an https URL on a public host.",
            code="INVALID_OUTPUT",
            details=[{"field": "output", "message": url[:200]}],
        )
    return url


def provider_output(
    storage: Storage,
    job: ProviderJobRow,
    provider: str,
    urls: tuple[str, ...],
    client: httpx.Client,
) -> dict[str, Any]:
    """Copy a provider's result — a video, or a picture job's first picture — into the
    owner's storage folder (its URLs expire) with a thumbnail; the job's output (paths:
    links are signed when the job is read).

    A copy that fails is a 503 (the provider redelivers, the sweep's reconcile polls again):
    the job stays running until its video is safely ours, and nothing is charged before.
    """
    # cold start: media.picture loads only on this path
    from videogen.media import picture

    # cold start: media.render loads only on this path
    from videogen.media.render import make_thumbnail

    # cold start: rendering.outputs loads only on this path
    from videogen.rendering.outputs import store_outputs, store_picture

    is_picture = job.job_type in ("text_to_image", "image_to_image")
    if not urls:
        raise ValidationFailed(
            "The provider reported completion without "
            + ("a picture." if is_picture else "a video."),
            code="INVALID_OUTPUT",
        )
    source = copy_source(urls[0])
    try:
        with tempfile.TemporaryDirectory(prefix="videogen-provider-") as tmp:
            result = Path(tmp) / ("result" if is_picture else "video.mp4")
            with client.stream("GET", source, timeout=120, follow_redirects=False) as resp:
                resp.raise_for_status()
                with result.open("wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
            user_id, job_id = str(job.user_id), str(job.id)
            if is_picture:  # checked like an upload (format, size, decodes) before it is ours
                thumb = picture.thumbnail(result, Path(tmp) / "thumbnail.jpg")
                output = store_picture(storage, user_id, job_id, result, thumb)
            else:
                thumb = make_thumbnail(result, Path(tmp) / "thumbnail.jpg", 0.5, 640)
                output = store_outputs(storage, user_id, job_id, result, thumb)
    except Exception as exc:
        log.warning("could not copy %s output of %s: %s", provider, job.id, exc)
        raise ServiceUnavailable(
            "Could not copy the provider's video yet; deliver again later.",
            code="OUTPUT_COPY_FAILED",
            headers={"Retry-After": "30"},
        ) from exc
    return {**output, "provider": provider, "persisted": True}


def apply_provider_event(
    db: Database,
    settings: Settings,
    provider: str,
    event: Any,
    delivery_id: str | None,
    *,
    client: httpx.Client | None = None,
) -> JobChange:
    """Apply a provider's (verified or reconciled) report to the job it belongs to.

    A completed video is copied into storage first, outside any transaction (422 for a
    source we may not fetch, 503 when the copy fails); the status change and the
    webhook-id receipt then commit together.
    """
    job = job_routing.job_by_provider_id(db, provider, event.provider_job_id)
    if job is None:
        return JobChange(applied=False, reason="unknown_provider_job")
    output = None
    if event.state == "completed" and job.status in ("dispatched", "processing"):
        # cold start: integrations.storage loads only on this path
        from videogen.integrations.storage import get_storage

        # cold start: services.routing loads only on this path
        from videogen.services.routing import shared_client

        output = provider_output(
            get_storage(settings), job, provider, event.output_urls, client or shared_client()
        )
    report = _provider_report(provider, event, job, output)
    if report is None:
        return JobChange(applied=False, reason="no_change")
    webhook_id = f"{provider}:{delivery_id}" if delivery_id else None
    return job_reports.job_report(db, webhook_id, provider, report)


def _provider_report(
    provider: str, event: Any, job: ProviderJobRow, output: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A provider's news as a job report for the job's current attempt (None: no change)."""
    base = {"job_id": str(job.id), "attempt": job.attempt}
    if event.state == "processing":
        return {**base, "type": "progress", "progress": event.progress or max(job.progress, 1)}
    # A finished run is one call at the provider, with the time (and cost) it reports.
    usage: dict[str, Any] = {"provider_calls": 1}
    if getattr(event, "seconds", None) is not None:
        usage["provider_seconds"] = event.seconds
    if getattr(event, "cost_usd", None) is not None:
        usage["provider_cost_usd"] = event.cost_usd
    if event.state == "completed":
        output = output or {"provider": provider}
        return {**base, "type": "completed", "output": output, "usage": usage}
    if event.state in ("failed", "canceled"):
        return {
            **base,
            "type": "failed",
            "usage": usage,
            "error": {
                "code": event.error_code or "PROVIDER_FAILED",
                "message": event.error or f"{provider} reported {event.state}",
                "retryable": False,
            },
        }
    return None
