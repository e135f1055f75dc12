"""Runway's developer API: tasks polled to completion (Runway sends no webhooks).

- submit: ``POST /v1/image_to_video`` when the input has ``promptImage``,
  ``POST /v1/video_to_video`` when it has ``videoUri``, else ``POST /v1/text_to_video``;
  body ``{"model", …input}`` → ``{"id"}``
- status: ``GET /v1/tasks/{id}`` (``PENDING`` / ``THROTTLED`` / ``RUNNING`` with
  ``progress`` 0-1 / ``SUCCEEDED`` with ``output`` URLs / ``FAILED`` with ``failure`` and
  ``failureCode`` / ``CANCELLED``)
- cancel: ``DELETE /v1/tasks/{id}`` (cancels a running task, deletes a finished one)
- auth: ``Authorization: Bearer <RUNWAY_API_KEY>`` and ``X-Runway-Version: 2024-11-06``

Output URLs expire within 24-48 hours: copy them into storage on completion.

Inputs (:func:`provider_input`; API reference
https://docs.dev.runwayml.com/api/#tag/Start-generating, version 2024-11-06):
``image_to_video`` takes ``{model, promptImage: https URL, promptText?, ratio, duration,
seed?}``, ``text_to_video`` ``{model, promptText, ratio, duration, seed?}``. ``ratio`` is
an output size (``"1280:720"``), not ``"16:9"``; gen4_turbo makes images-to-video only,
5 or 10 s (1280:720, 720:1280, 960:960…); gen4.5 text or image to video, 2 to 10 s;
veo3.1 text or image to video, 4, 6 or 8 s (1280:720, 720:1280, 1920:1080, 1080:1920).
Runway takes no negative prompt; the resolution follows from the ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from videogen.integrations.providers._http import HttpVideoProvider, percent
from videogen.integrations.providers._inputs import (
    check_job_type,
    need_image,
    need_prompt,
    pick_duration,
    pick_ratio,
)
from videogen.integrations.providers.base import (
    ProviderJob,
    ProviderState,
    ProviderStatus,
    Submission,
    VideoRequest,
    WebhookEvent,
)
from videogen.integrations.providers.errors import InvalidWebhook, ProviderRejected

API_URL = "https://api.dev.runwayml.com/v1"
API_VERSION = "2024-11-06"

_STATES: dict[str, ProviderState] = {
    "PENDING": "queued",
    "THROTTLED": "queued",
    "RUNNING": "processing",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "canceled",
}


@dataclass(frozen=True)
class RunwayModel:
    """What one Runway model takes: job types, output sizes per aspect ratio, lengths."""

    job_types: tuple[str, ...]
    ratios: Mapping[str, str]
    durations: tuple[int, ...]
    default_duration: int = 5


_GEN4_RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "1:1": "960:960"}
MODELS: dict[str, RunwayModel] = {
    "gen4_turbo": RunwayModel(("image_to_video",), _GEN4_RATIOS, (5, 10)),
    "gen4.5": RunwayModel(
        ("text_to_video", "image_to_video"),
        {"16:9": "1280:720", "9:16": "720:1280"},
        tuple(range(2, 11)),
    ),
    "veo3.1": RunwayModel(
        ("text_to_video", "image_to_video"),
        {"16:9": "1280:720", "9:16": "720:1280"},
        (4, 6, 8),
        default_duration=8,
    ),
}


def provider_input(model: str, request: VideoRequest) -> dict[str, Any]:
    """Runway's body for ``request`` on ``model`` (``model`` included, as Runway wants it)."""
    spec = MODELS.get(model)
    if spec is None:
        raise ProviderRejected(
            f"There is no Runway input mapping for model {model!r}.",
            provider="runway",
            hint="Known Runway models: " + ", ".join(MODELS) + ".",
        )
    check_job_type("runway", model, request, spec.job_types)
    body: dict[str, Any] = {"model": model}
    if request.is_image_to_video:
        body["promptImage"] = need_image("runway", model, request, https=True)
        if request.prompt:
            body["promptText"] = request.prompt
    else:
        body["promptText"] = need_prompt("runway", model, request)
    body["ratio"] = pick_ratio("runway", model, request.aspect_ratio, spec.ratios, "16:9")
    body["duration"] = pick_duration(
        "runway", model, request.duration, spec.durations, spec.default_duration
    )
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def task_endpoint(job_input: Mapping[str, Any]) -> str:
    """Which generation endpoint a job's input belongs to."""
    if "promptImage" in job_input:
        return "image_to_video"
    if "videoUri" in job_input:
        return "video_to_video"
    return "text_to_video"


class RunwayProvider(HttpVideoProvider):
    """Runway's task API, poll-only."""

    name = "runway"
    supports_webhooks = False
    webhooks_signed = False

    def __init__(
        self,
        api_key: str,
        http_client: httpx.Client | None = None,
        *,
        api_url: str = API_URL,
        api_version: str = API_VERSION,
    ) -> None:
        super().__init__(http_client)
        self._api_key = api_key
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "X-Runway-Version": self.api_version}

    def provider_input(self, model: str, request: VideoRequest) -> dict[str, Any]:
        """Runway's documented body for the job (see :func:`provider_input`)."""
        return provider_input(model, request)

    def submit(self, job: ProviderJob) -> Submission:
        """Start a generation task; ``job.webhook_url`` is ignored (poll with reconcile)."""
        body = {"model": job.model, **dict(job.input), **dict(job.options)}
        url = f"{self.api_url}/{task_endpoint(job.input)}"
        data = self._json(self._request("POST", url, json_body=body))
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderRejected("Runway answered without a task id.", provider=self.name)
        return Submission(provider_job_id=str(data["id"]), status="queued")

    def status(self, provider_job_id: str) -> ProviderStatus:
        """Read the task."""
        data = self._json(self._request("GET", f"{self.api_url}/tasks/{provider_job_id}"))
        raw = str(data.get("status", "")) if isinstance(data, dict) else ""
        state = _STATES.get(raw)
        if state is None:
            raise ProviderRejected(
                f"Runway reported an unknown status {raw!r}.", provider=self.name
            )
        if state == "completed":
            output = data.get("output") or []
            return ProviderStatus(
                state=state, progress=100, output_urls=tuple(str(u) for u in output)
            )
        if state == "failed":
            return ProviderStatus(
                state=state,
                error=str(data.get("failure") or "Runway task failed"),
                error_code=data.get("failureCode"),
            )
        if state == "processing":
            return ProviderStatus(state=state, progress=percent(data.get("progress")))
        return ProviderStatus(state=state, progress=0 if state == "queued" else None)

    def cancel(self, provider_job_id: str) -> None:
        """Cancel the task (Runway answers 204)."""
        self._request("DELETE", f"{self.api_url}/tasks/{provider_job_id}")

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> None:
        """Runway sends no webhooks, so any callback claiming to be one is refused."""
        raise InvalidWebhook("Runway sends no webhooks; poll its tasks with reconcile().")

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> WebhookEvent:
        """Runway sends no webhooks."""
        raise InvalidWebhook("Runway sends no webhooks; poll its tasks with reconcile().")
