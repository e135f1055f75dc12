"""Replicate predictions, with Standard Webhooks-signed callbacks.

- submit: ``POST /v1/models/{owner}/{name}/predictions`` for an official model, or
  ``POST /v1/predictions`` with ``version`` for ``owner/name:version`` or a bare version
  id; body ``{"input", "webhook", "webhook_events_filter"}`` (``Prefer: wait`` is not
  used: we never hold a request open for a video)
- status: ``GET /v1/predictions/{id}`` (``starting`` / ``processing`` / ``succeeded`` /
  ``failed`` / ``canceled`` / ``aborted``)
- cancel: ``POST /v1/predictions/{id}/cancel``
- auth: ``Authorization: Bearer <REPLICATE_API_TOKEN>``

Callbacks carry the prediction object and ``webhook-id`` / ``webhook-timestamp`` /
``webhook-signature`` headers, verified with the account's ``whsec_…`` signing secret
(``GET /v1/webhooks/default/secret``) through the ``standardwebhooks`` package.

Inputs (:func:`provider_input`) follow each model's input schema on its API page
(https://replicate.com/{owner}/{name}/api): the image's field differs per model
(``first_frame_image`` for MiniMax, ``start_image`` for Kling), so :data:`MODELS` names it
with the durations and ratios each model takes. A pinned ``owner/name:version`` uses its
model's entry; a bare version id has none.

Pictures: ``black-forest-labs/flux-schnell``
(https://replicate.com/black-forest-labs/flux-schnell/api) takes ``{prompt, aspect_ratio,
num_outputs, output_format: webp | jpg | png, megapixels: "1" | "0.25", seed?}`` and answers
an array of image URLs; about one megapixel in the ratio asked, whatever the resolution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from videogen.integrations.providers._http import (
    HttpVideoProvider,
    collect_urls,
    lower_headers,
    parse_json_body,
    percent,
)
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
    reported_seconds,
)
from videogen.integrations.providers.errors import (
    InvalidWebhook,
    ProviderNotConfigured,
    ProviderRejected,
)

API_URL = "https://api.replicate.com/v1"
DEFAULT_EVENTS: tuple[str, ...] = ("start", "completed")

_STATES: dict[str, ProviderState] = {
    "starting": "queued",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "canceled",
    "aborted": "canceled",
}
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
# tqdm-style progress lines in a prediction's logs: " 45%|████▌     | 9/20 [...]".
_LOG_PROGRESS = re.compile(r"(\d{1,3})%\|")


@dataclass(frozen=True)
class ReplicateModel:
    """One model's input schema, as much of it as our params fill.

    ``duration_key`` None: the model makes ``durations[0]`` seconds and takes no length;
    ``aspect_ratios`` None: it takes no ratio (MiniMax: 16:9, or the image's shape).
    """

    job_types: tuple[str, ...]
    image_key: str
    durations: tuple[int, ...]
    duration_key: str | None = "duration"
    aspect_ratios: tuple[str, ...] | None = None
    negative_prompt: bool = False


_KLING_RATIOS = ("16:9", "9:16", "1:1")
MODELS: dict[str, ReplicateModel] = {
    # https://replicate.com/minimax/video-01/api: prompt, first_frame_image (6 s, 720p).
    "minimax/video-01": ReplicateModel(
        ("text_to_video", "image_to_video"), "first_frame_image", (6,), None
    ),
    # https://replicate.com/minimax/video-01-live/api: prompt, first_frame_image.
    "minimax/video-01-live": ReplicateModel(("image_to_video",), "first_frame_image", (6,), None),
    # https://replicate.com/kwaivgi/kling-v1.6-standard/api: prompt, negative_prompt,
    # start_image, aspect_ratio (ignored with an image), duration 5 | 10.
    "kwaivgi/kling-v1.6-standard": ReplicateModel(
        ("text_to_video", "image_to_video"),
        "start_image",
        (5, 10),
        aspect_ratios=_KLING_RATIOS,
        negative_prompt=True,
    ),
    # https://replicate.com/kwaivgi/kling-v2.1/api: start_image required, duration 5 | 10.
    "kwaivgi/kling-v2.1": ReplicateModel(
        ("image_to_video",), "start_image", (5, 10), negative_prompt=True
    ),
}


@dataclass(frozen=True)
class ReplicatePictureModel:
    """A text-to-image model's input schema: the ratios it makes (``aspect_ratio``)."""

    aspect_ratios: tuple[str, ...] = ("1:1", "16:9", "9:16")


PICTURE_MODELS: dict[str, ReplicatePictureModel] = {
    # https://replicate.com/black-forest-labs/flux-schnell/api: prompt, aspect_ratio,
    # num_outputs 1-4, output_format, megapixels "1" | "0.25", seed; no negative prompt.
    "black-forest-labs/flux-schnell": ReplicatePictureModel(),
}


def _picture_input(name: str, spec: ReplicatePictureModel, request: VideoRequest) -> dict[str, Any]:
    check_job_type("replicate", name, request, ("text_to_image",))
    ratios = {r: r for r in spec.aspect_ratios}
    body: dict[str, Any] = {
        "prompt": need_prompt("replicate", name, request),
        "aspect_ratio": pick_ratio("replicate", name, request.aspect_ratio, ratios, "1:1"),
        "num_outputs": 1,
        "output_format": "png",
        "megapixels": "1",
    }
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def provider_input(model: str, request: VideoRequest) -> dict[str, Any]:
    """The model's ``input`` object for ``request``."""
    name = model.partition(":")[0]
    if (picture := PICTURE_MODELS.get(name)) is not None:
        return _picture_input(name, picture, request)
    spec = MODELS.get(name)
    if spec is None:
        raise ProviderRejected(
            f"There is no Replicate input mapping for model {model!r}.",
            provider="replicate",
            hint="Known Replicate models: " + ", ".join([*MODELS, *PICTURE_MODELS]) + ".",
        )
    check_job_type("replicate", name, request, spec.job_types)
    body: dict[str, Any] = {"prompt": need_prompt("replicate", name, request)}
    if request.is_image_to_video:
        body[spec.image_key] = need_image("replicate", name, request)
    elif spec.aspect_ratios is not None:
        ratios = {r: r for r in spec.aspect_ratios}
        body["aspect_ratio"] = pick_ratio("replicate", name, request.aspect_ratio, ratios, "16:9")
    else:  # a model without a ratio field makes 16:9 from text: refuse any other
        pick_ratio("replicate", name, request.aspect_ratio, {"16:9": "16:9"}, "16:9")
    seconds = pick_duration("replicate", name, request.duration, spec.durations, spec.durations[0])
    if spec.duration_key is not None:
        body[spec.duration_key] = seconds
    if spec.negative_prompt and request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    return body


class ReplicateProvider(HttpVideoProvider):
    """Replicate's predictions API."""

    name = "replicate"

    def __init__(
        self,
        api_token: str,
        http_client: httpx.Client | None = None,
        *,
        webhook_secret: str | None = None,
        api_url: str = API_URL,
        events: Sequence[str] = DEFAULT_EVENTS,
    ) -> None:
        super().__init__(http_client)
        self._api_token = api_token
        self._webhook_secret = webhook_secret
        self.api_url = api_url.rstrip("/")
        self.events = tuple(events)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_token}"}

    # Jobs -----------------------------------------------------------------------------
    def provider_input(self, model: str, request: VideoRequest) -> dict[str, Any]:
        """The model's documented ``input`` for the job (see :func:`provider_input`)."""
        return provider_input(model, request)

    def submit(self, job: ProviderJob) -> Submission:
        """Create a prediction for an official model or a pinned version."""
        body: dict[str, Any] = {"input": dict(job.input)}
        model, _, version = job.model.partition(":")
        if _VERSION_ID.match(model):
            url, body["version"] = f"{self.api_url}/predictions", model
        elif version:
            url, body["version"] = f"{self.api_url}/predictions", version
        elif model.count("/") == 1:
            url = f"{self.api_url}/models/{model}/predictions"
        else:
            raise ProviderRejected(
                f"Replicate model {job.model!r} is not owner/name[:version].", provider=self.name
            )
        if job.webhook_url:
            body["webhook"] = job.webhook_url
            body["webhook_events_filter"] = list(self.events)
        body.update(job.options)
        data = self._json(self._request("POST", url, json_body=body))
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderRejected(
                "Replicate answered without a prediction id.", provider=self.name
            )
        return Submission(provider_job_id=str(data["id"]), status=_state(data))

    def status(self, provider_job_id: str) -> ProviderStatus:
        """Read the prediction."""
        data = self._json(self._request("GET", f"{self.api_url}/predictions/{provider_job_id}"))
        return _status_from_prediction(data)

    def cancel(self, provider_job_id: str) -> None:
        """Cancel the prediction (a finished one stays as it is)."""
        self._request("POST", f"{self.api_url}/predictions/{provider_job_id}/cancel")

    # Webhooks -------------------------------------------------------------------------
    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> None:
        """Verify the Standard Webhooks signature (HMAC-SHA256, 5-minute window)."""
        if not self._webhook_secret:
            raise ProviderNotConfigured(
                "REPLICATE_WEBHOOK_SECRET is not set, so Replicate webhooks cannot be verified.",
                provider=self.name,
                hint="Fetch it with GET /v1/webhooks/default/secret.",
            )
        # cold start: standardwebhooks loads on first use
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(self._webhook_secret).verify(body, lower_headers(headers), json_parse=False)
        except (WebhookVerificationError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidWebhook(f"The Replicate webhook does not verify: {exc}.") from exc

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> WebhookEvent:
        """The callback body is the prediction object itself."""
        data = parse_json_body(self.name, body)
        if not data.get("id"):
            raise InvalidWebhook("The Replicate webhook body has no prediction id.")
        status = _status_from_prediction(data)
        return WebhookEvent(
            provider_job_id=str(data["id"]),
            state=status.state,
            progress=status.progress,
            output_urls=status.output_urls,
            error=status.error,
            event_id=lower_headers(headers).get("webhook-id"),
            seconds=status.seconds,
        )


def _state(data: Mapping[str, Any]) -> ProviderState:
    raw = str(data.get("status", ""))
    state = _STATES.get(raw)
    if state is None:
        raise ProviderRejected(
            f"Replicate reported an unknown status {raw!r}.", provider="replicate"
        )
    return state


def _status_from_prediction(data: Any) -> ProviderStatus:
    if not isinstance(data, dict):
        raise ProviderRejected("Replicate answered with no prediction.", provider="replicate")
    state = _state(data)
    # Billed time: metrics.predict_time (seconds), set once the prediction has run.
    metrics = data.get("metrics")
    seconds = reported_seconds(metrics.get("predict_time")) if isinstance(metrics, dict) else None
    if state == "completed":
        return ProviderStatus(
            state=state,
            progress=100,
            output_urls=collect_urls(data.get("output")),
            seconds=seconds,
        )
    if state == "failed":
        return ProviderStatus(
            state=state, error=str(data.get("error") or "Replicate failed"), seconds=seconds
        )
    if state == "canceled":
        return ProviderStatus(state=state, error_code=str(data.get("status")), seconds=seconds)
    progress = 0 if state == "queued" else _progress_from_logs(data.get("logs"))
    return ProviderStatus(state=state, progress=progress)


def _progress_from_logs(logs: Any) -> int | None:
    if not isinstance(logs, str):
        return None
    found = _LOG_PROGRESS.findall(logs)
    return percent(int(found[-1]), scale=100) if found else None
