"""RunPod serverless endpoints: our own GPU workers on RunPod's queue.

- submit: ``POST https://api.runpod.ai/v2/{endpoint_id}/run`` with
  ``{"input": …, "webhook": url}`` → ``{"id", "status": "IN_QUEUE"}``
- status: ``GET /v2/{endpoint_id}/status/{id}`` (``IN_QUEUE`` / ``IN_PROGRESS`` /
  ``COMPLETED`` / ``FAILED`` / ``CANCELLED`` / ``TIMED_OUT``)
- cancel: ``POST /v2/{endpoint_id}/cancel/{id}``
- health: ``GET /v2/{endpoint_id}/health`` → job counts and idle/running workers
- auth: ``Authorization: Bearer <RUNPOD_API_KEY>``

``provider_job_id`` is ``"{endpoint_id}/{job_id}"``. RunPod posts the status object to
the webhook once, when the job ends, and does not sign it: the webhook URL carries
``runpod_endpoint`` and a ``token`` (HMAC of the endpoint id under our secret) that is
checked in constant time, and the body is only a hint: confirm it by polling
(:func:`videogen.integrations.providers.reconcile.receive_webhook` does so for unsigned providers).

Inputs: the endpoints run our own worker, so ``input`` is our params as they are plus
``job_type``, with the upload as a signed ``image_url`` (never its storage path); see
https://docs.runpod.io/serverless/endpoints/send-requests (``{"input": {…}, "webhook"}``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from videogen.integrations.providers._http import (
    HttpVideoProvider,
    collect_urls,
    parse_json_body,
    percent,
    with_query,
)
from videogen.integrations.providers.base import (
    ProviderJob,
    ProviderState,
    ProviderStatus,
    Submission,
    VideoRequest,
    WebhookEvent,
    generic_input,
    reported_seconds,
)
from videogen.integrations.providers.errors import InvalidWebhook, ProviderRejected

API_URL = "https://api.runpod.ai/v2"
ENDPOINT_QUERY_PARAM = "runpod_endpoint"
TOKEN_QUERY_PARAM = "token"  # noqa: S105 - a query parameter name

_STATES: dict[str, ProviderState] = {
    "IN_QUEUE": "queued",
    "IN_PROGRESS": "processing",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "canceled",
    "TIMED_OUT": "failed",
}


@dataclass(frozen=True)
class EndpointHealth:
    """What ``GET /health`` says about one serverless endpoint."""

    endpoint_id: str
    workers_idle: int
    workers_running: int
    workers_initializing: int
    workers_throttled: int
    jobs_in_queue: int
    jobs_in_progress: int
    jobs_completed: int
    jobs_failed: int

    @property
    def has_capacity(self) -> bool:
        """True when an idle worker could take a job now."""
        return self.workers_idle > 0

    @property
    def is_healthy(self) -> bool:
        """True when the endpoint has workers up or can still scale to serve its queue."""
        return self.workers_idle + self.workers_running + self.workers_initializing > 0 or (
            self.jobs_in_queue == 0
        )


def split_job_id(provider_job_id: str) -> tuple[str, str]:
    """``(endpoint_id, job_id)`` from our RunPod ``provider_job_id``."""
    endpoint_id, _, job_id = provider_job_id.rpartition("/")
    if not endpoint_id or not job_id:
        raise ProviderRejected(
            f"{provider_job_id!r} is not a RunPod job id (endpoint_id/job_id).", provider="runpod"
        )
    return endpoint_id, job_id


class RunPodProvider(HttpVideoProvider):
    """RunPod serverless queue endpoints."""

    name = "runpod"
    webhooks_signed = False

    def __init__(
        self,
        api_key: str,
        webhook_token_secret: str | bytes,
        http_client: httpx.Client | None = None,
        *,
        api_url: str = API_URL,
    ) -> None:
        super().__init__(http_client)
        self._api_key = api_key
        secret = webhook_token_secret
        self._token_key = secret.encode() if isinstance(secret, str) else secret
        if not self._token_key:
            raise ValueError("RunPod webhook token secret must not be empty")
        self.api_url = api_url.rstrip("/")

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def webhook_token(self, endpoint_id: str) -> str:
        """The secret a RunPod webhook URL for ``endpoint_id`` must carry."""
        message = f"videogen/runpod-webhook/{endpoint_id}".encode()
        return hmac.new(self._token_key, message, hashlib.sha256).hexdigest()

    # Jobs -----------------------------------------------------------------------------
    def provider_input(self, model: str, request: VideoRequest) -> dict[str, Any]:
        """Our params for our worker behind the endpoint (``submit`` wraps them in
        ``{"input": …}``); an image job without its signed URL is refused."""
        if request.is_image_to_video and not request.image_url:
            raise ProviderRejected(
                f"RunPod endpoint {model} needs an input image (image_path).", provider=self.name
            )
        return generic_input(request)

    def submit(self, job: ProviderJob) -> Submission:
        """Queue a job on the endpoint named by ``job.model``."""
        endpoint_id = job.model.strip("/")
        if not endpoint_id or "/" in endpoint_id:
            raise ProviderRejected(
                f"{job.model!r} is not a RunPod endpoint id.", provider=self.name
            )
        body: dict[str, Any] = {"input": dict(job.input), **dict(job.options)}
        if job.webhook_url:
            body["webhook"] = with_query(
                job.webhook_url,
                {
                    ENDPOINT_QUERY_PARAM: endpoint_id,
                    TOKEN_QUERY_PARAM: self.webhook_token(endpoint_id),
                },
            )
        data = self._json(
            self._request("POST", f"{self.api_url}/{endpoint_id}/run", json_body=body)
        )
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderRejected("RunPod answered without a job id.", provider=self.name)
        state = _STATES.get(str(data.get("status", "IN_QUEUE")), "queued")
        return Submission(provider_job_id=f"{endpoint_id}/{data['id']}", status=state)

    def status(self, provider_job_id: str) -> ProviderStatus:
        """Read the job's status object."""
        endpoint_id, job_id = split_job_id(provider_job_id)
        data = self._json(self._request("GET", f"{self.api_url}/{endpoint_id}/status/{job_id}"))
        return _status_from_object(data)

    def cancel(self, provider_job_id: str) -> None:
        """Cancel a queued or running job."""
        endpoint_id, job_id = split_job_id(provider_job_id)
        self._request("POST", f"{self.api_url}/{endpoint_id}/cancel/{job_id}")

    def health(self, endpoint_id: str) -> EndpointHealth:
        """Worker and queue counts for one endpoint, for the health sweep and routing."""
        data = self._json(self._request("GET", f"{self.api_url}/{endpoint_id}/health"))
        jobs = data.get("jobs", {}) if isinstance(data, dict) else {}
        workers = data.get("workers", {}) if isinstance(data, dict) else {}
        return EndpointHealth(
            endpoint_id=endpoint_id,
            workers_idle=int(workers.get("idle", 0)),
            workers_running=int(workers.get("running", 0)),
            workers_initializing=int(workers.get("initializing", 0)),
            workers_throttled=int(workers.get("throttled", 0)),
            jobs_in_queue=int(jobs.get("inQueue", 0)),
            jobs_in_progress=int(jobs.get("inProgress", 0)),
            jobs_completed=int(jobs.get("completed", 0)),
            jobs_failed=int(jobs.get("failed", 0)),
        )

    # Webhooks -------------------------------------------------------------------------
    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> None:
        """Check the URL token in constant time (RunPod does not sign its webhooks)."""
        query = query or {}
        endpoint_id = query.get(ENDPOINT_QUERY_PARAM, "")
        token = query.get(TOKEN_QUERY_PARAM, "")
        if not endpoint_id or not token:
            raise InvalidWebhook(
                "The RunPod webhook URL lacks its runpod_endpoint and token parameters.",
                hint="Pass the callback request's query parameters to verify_webhook.",
            )
        expected = self.webhook_token(endpoint_id)
        if not hmac.compare_digest(expected.encode(), token.encode()):
            raise InvalidWebhook("The RunPod webhook token is wrong.")

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> WebhookEvent:
        """Read the status object RunPod posts when a job ends; confirm it by polling."""
        data = parse_json_body(self.name, body)
        endpoint_id = (query or {}).get(ENDPOINT_QUERY_PARAM)
        if not data.get("id") or not endpoint_id:
            raise InvalidWebhook("The RunPod webhook lacks a job id or its runpod_endpoint.")
        status = _status_from_object(data)
        return WebhookEvent(
            provider_job_id=f"{endpoint_id}/{data['id']}",
            state=status.state,
            progress=status.progress,
            output_urls=status.output_urls,
            error=status.error,
            error_code=status.error_code,
            event_id=f"runpod:{data['id']}:{data.get('status')}",
            verified=False,
            seconds=status.seconds,
        )


def _status_from_object(data: Any) -> ProviderStatus:
    raw = str(data.get("status", "")) if isinstance(data, dict) else ""
    state = _STATES.get(raw)
    if state is None:
        raise ProviderRejected(f"RunPod reported an unknown status {raw!r}.", provider="runpod")
    output = data.get("output")
    # Billed time: executionTime (ms on a worker; delayTime, the wait in the queue, is not).
    seconds = reported_seconds(data.get("executionTime"), scale=0.001)
    if state == "completed":
        return ProviderStatus(
            state=state, progress=100, output_urls=collect_urls(output), seconds=seconds
        )
    if state == "failed":
        error = data.get("error") or ("timed out" if raw == "TIMED_OUT" else "RunPod job failed")
        return ProviderStatus(state=state, error=str(error), error_code=raw, seconds=seconds)
    if state == "canceled":
        return ProviderStatus(state=state, seconds=seconds)
    if state == "queued":
        return ProviderStatus(state=state, progress=0)
    # A worker's progress_update() shows up as the output of a running job.
    progress = percent(output.get("progress"), scale=100) if isinstance(output, dict) else None
    return ProviderStatus(state=state, progress=progress)
