"""Getting queued jobs to whoever runs them — after the creating transaction commits.

* Our own workers (provider ``reference``): the database picks a healthy push worker with
  spare capacity (``job_assign``); we POST the job to it, signed (Standard Webhooks). A
  refused or failed push returns the job to the queue at once (``job_return``), counts
  against the worker's health, and the next worker is tried; with none left the job
  waits — for the next sweep, a pull worker's claim, or a worker that registers.
* External providers (fal, Replicate, Runway, RunPod serverless): ``job_dispatch_external``
  opens an attempt, the adapter submits, the provider's id is stored so its webhook (or a
  reconcile poll) finds the job. A provider that refuses for good fails the job and its
  credits are released in the same transaction: nobody is charged for nothing. The
  adapter maps our params to the provider's documented input; an upload goes as a signed
  URL valid for ``PROVIDER_INPUT_URL_EXPIRES_S``, never as its storage path.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from videogen.config import Settings
from videogen.db import fleet, job_reports, job_routing
from videogen.errors import AppError, ServiceUnavailable
from videogen.integrations import webhooks
from videogen.models.jobs import Job
from videogen.models.workers import Assignment, Cancellation, LeasedJob, WorkerJob

if TYPE_CHECKING:
    import httpx

    from videogen.db.connection import Database
    from videogen.integrations.providers import VideoRequest
    from videogen.integrations.storage import Storage

log = logging.getLogger(__name__)

PUSH_TRIES = 3
EXTERNAL = {"fal", "replicate", "runway", "runpod"}
# How long a provider may take to fetch a job's upload (queues can hold a job a while).
PROVIDER_INPUT_URL_EXPIRES_S = 3600
UPLOADS_BUCKET = "uploads"


def signed_post(
    client: httpx.Client,
    url: str,
    payload: BaseModel | dict[str, Any],
    settings: Settings,
    timeout: float,
) -> httpx.Response:
    """POST JSON signed with the first webhook secret (what workers verify)."""
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json().encode()
    else:
        body = json.dumps(payload, default=str).encode()
    headers = {"content-type": "application/json", **webhooks.sign(body, settings=settings)}
    return client.post(url, content=body, headers=headers, timeout=timeout)


@lru_cache(maxsize=1)
def shared_client() -> httpx.Client:
    """One pooled client per process: building one costs ~50 ms (TLS context)."""
    import httpx  # cold start: httpx loads on first use

    return httpx.Client(timeout=10.0)


def _http(client: httpx.Client | None) -> httpx.Client:
    return client or shared_client()


def worker_job(job: Job | LeasedJob, settings: Settings) -> WorkerJob:
    """What a worker receives for a dispatched job, pushed or claimed."""
    return WorkerJob.of(job, f"{settings.functions_url}/job-callback")


def push(db: Database, settings: Settings, assignment: Assignment, client: httpx.Client) -> bool:
    """Send one assigned job to its worker; on refusal put it back. True when accepted."""
    job, worker = assignment.job, assignment.worker
    try:
        resp = signed_post(
            client,
            f"{(worker.url or '').rstrip('/')}/jobs",
            worker_job(job, settings),
            settings,
            settings.dispatch_timeout_s,
        )
        if resp.status_code < 300:
            return True
        reason = f"worker answered {resp.status_code}"
        # A full (409) or draining (503) worker is healthy, just busy; other 5xx count.
        unhealthy = resp.status_code >= 500 and resp.status_code != 503
    except Exception as exc:  # any transport failure means "not delivered"
        reason = f"push failed: {type(exc).__name__}"
        unhealthy = True
    log.warning("push of %s to %s refused: %s", job.id, worker.name, reason)
    with db.admin() as admin:
        job_reports.job_return(admin, str(job.id), job.attempt, reason)
        if unhealthy:
            fleet.worker_record_health(
                admin, str(worker.id), ok=False, detail={"push_error": reason}
            )
    return False


def dispatch_job(
    db: Database, settings: Settings, job: Job, client: httpx.Client | None = None
) -> Job:
    """Route one just-created job; returns it as it stands afterwards."""
    if job.provider in EXTERNAL:
        return submit_external(db, settings, str(job.id), client)
    http = _http(client)
    for _ in range(PUSH_TRIES):
        assignment = job_routing.job_assign(db, str(job.id))
        if assignment is None:
            break  # no free worker: it waits in the queue (sweep, claim or a new worker)
        if push(db, settings, assignment, http):
            return assignment.job
    return job


def dispatch_pending(
    db: Database, settings: Settings, client: httpx.Client | None = None, limit: int = 20
) -> int:
    """Push queued jobs to free push workers; returns how many were accepted."""
    http = _http(client)
    accepted = 0
    with db.admin() as admin:
        assignments = job_routing.jobs_assign_pending(admin, limit)
    for assignment in assignments:
        accepted += push(db, settings, assignment, http)
    return accepted


def provider_request(settings: Settings, job: Job, storage: Storage | None = None) -> VideoRequest:
    """The job's params for an adapter, its upload (``image_path``) as a signed URL."""
    # cold start: integrations.providers loads only on this path
    from videogen.integrations.providers import VideoRequest

    # cold start: models.params loads only on this path
    from videogen.models.params import ImageToImageParams, ImageToVideoParams, params_for

    params = params_for(job.job_type, job.params)
    image_url = None
    if isinstance(params, ImageToVideoParams | ImageToImageParams) and params.image_path:
        if storage is None:
            # cold start: integrations.storage loads only on this path
            from videogen.integrations.storage import get_storage

            storage = get_storage(settings)
        image_url = storage.signed_url(
            UPLOADS_BUCKET, params.image_path, expires_in=PROVIDER_INPUT_URL_EXPIRES_S
        )
    return VideoRequest.of(params, image_url)


def submit_external(
    db: Database,
    settings: Settings,
    job_id: str,
    client: httpx.Client | None = None,
    *,
    storage: Storage | None = None,
) -> Job:
    """Open an attempt and submit the job to its provider, in the provider's own input.

    A job whose owner stored their own key for the provider (:mod:`videogen.services.keys`) runs on
    it instead of the deployment's; when the provider refuses that key, only this job
    fails (its credits released) and nobody else's is touched.
    """
    # cold start: integrations.providers loads only on this path
    from videogen.integrations.providers import (
        ProviderAuthFailed,
        ProviderError,
        ProviderJob,
        ProviderQuotaExceeded,
        get_provider,
    )
    from videogen.services import keys  # cold start: services.keys loads only on this path

    with db.admin() as admin:
        job = job_routing.job_dispatch_external(admin, job_id)
        full = job_routing.job_get_any(admin, job_id)
    if job is None:
        return full
    name = str(full.provider)
    own_key: str | None = None
    try:
        own_key = keys.for_job(db, job_id, name)
        provider = get_provider(name, settings, client, api_key=own_key)
        model = str(full.model.provider_model_id)
        callback = f"{settings.functions_url}/job-callback?provider={name}"
        # Replicate signs webhooks with its account's own secret, which we do not hold for
        # a user's account: their jobs are followed by the sweep's polls instead.
        webhooks = provider.supports_webhooks and not (own_key and name == "replicate")
        submission = provider.submit(
            ProviderJob(
                model=model,
                input=provider.provider_input(model, provider_request(settings, job, storage)),
                webhook_url=callback if webhooks else None,
                job_id=job_id,
            )
        )
    except (ProviderError, AppError) as exc:
        # Storage being down is worth another try; a path or input refused is not.
        retryable = bool(getattr(exc, "retryable", isinstance(exc, ServiceUnavailable)))
        code = getattr(exc, "code", "PROVIDER_ERROR")
        message = keys.redact(str(exc), own_key)
        if own_key and isinstance(exc, ProviderAuthFailed | ProviderQuotaExceeded):
            code, retryable = "PROVIDER_KEY_REJECTED", False
            message = (
                f"{name} refused your own {name} key ({exc.code}); store a working one "
                "(PUT update-credits/keys) or delete it to use the service's."
            )
        log.warning("submit of %s to %s failed: %s", job_id, name, message)
        with db.admin() as admin:
            result = job_reports.job_fail(
                admin, job_id, job.attempt, code, message, retryable=retryable
            )
        return result.job or full
    with db.admin() as admin:
        result = job_routing.job_set_provider_id(
            admin, job_id, job.attempt, submission.provider_job_id
        )
    return result.job or job


def notify_cancel(
    settings: Settings,
    canceled: Cancellation,
    client: httpx.Client | None = None,
    db: Database | None = None,
) -> bool:
    """Tell the worker (or provider) that had a canceled job to stop, and those of the
    section clips canceled with it; best effort. With ``db``, a job that ran on its owner's
    own key is canceled with that key. True when the job's own worker or provider was told."""
    for clip in canceled.clips:
        notify_cancel(settings, clip, client, db)
    http = _http(client)
    try:
        notify, job = canceled.notify, canceled.job
        if notify is not None and notify.url:
            resp = signed_post(
                http,
                f"{notify.url.rstrip('/')}/jobs/{job.id}/cancel",
                {"job_id": str(job.id), "attempt": job.attempt},
                settings,
                settings.dispatch_timeout_s,
            )
            return resp.status_code < 300
        if canceled.provider in EXTERNAL and canceled.provider_job_id:
            # cold start: integrations.providers loads only on this path
            from videogen.integrations.providers import get_provider
            from videogen.services import keys  # cold start: services.keys loads only on this path

            own = None if db is None else keys.for_job(db, str(job.id), canceled.provider)
            provider = get_provider(canceled.provider, settings, client, api_key=own)
            provider.cancel(canceled.provider_job_id)
            return True
    except Exception as exc:  # the job is canceled either way; the worker's lease lapses
        log.warning("cancel notice failed: %s", type(exc).__name__)
    return False
