"""fal.ai through its queue API, with Ed25519-signed webhooks.

- submit: ``POST https://queue.fal.run/{model_id}?fal_webhook=<url>`` → ``request_id``
- status: ``GET …/{app_id}/requests/{id}/status`` (``IN_QUEUE`` / ``IN_PROGRESS`` /
  ``COMPLETED``), then ``GET …/{app_id}/requests/{id}`` for the result once completed
- cancel: ``PUT …/{app_id}/requests/{id}/cancel``
- auth: ``Authorization: Key <FAL_KEY>``

The status and result paths take the *app* id (``owner/name``), not the model path with
its sub-path (``fal-ai/flux/dev`` → ``fal-ai/flux``), so ``provider_job_id`` is
``"{app_id}/{request_id}"`` and the webhook URL carries ``fal_app=<app_id>``.

Webhooks are signed with Ed25519: the message is
``request_id \\n user_id \\n timestamp \\n sha256_hex(body)``, the signature is hex in
``X-Fal-Webhook-Signature``, and the public keys come from fal's JWKS (cached 24 h,
refetched once when no cached key verifies so a key rotation is picked up).

Inputs (:func:`provider_input`) are per model family, from the models' schemas (each
model's page at https://fal.ai/models/<model id>/api):

- Kling (``fal-ai/kling-video/…``): ``{prompt, duration: "5" | "10", aspect_ratio,
  negative_prompt?}`` for text, ``{prompt, image_url, duration, negative_prompt?}`` for an
  image (whose own shape sets the output's). Kling takes no seed.
- Veo 3 / 3.1 (``fal-ai/veo3``, ``fal-ai/veo3.1``, ``…/image-to-video``): ``{prompt,
  aspect_ratio: "16:9" | "9:16", duration: "4s" | "6s" | "8s", resolution: "720p" |
  "1080p", negative_prompt?, seed?, generate_audio}``, plus ``image_url`` from an image.
- Sora 2 (``fal-ai/sora-2/text-to-video``, ``…/image-to-video``): ``{prompt, resolution:
  "720p", aspect_ratio: "16:9" | "9:16", duration: 4 | 8 | 12}`` (a number), plus
  ``image_url``; no seed, no negative prompt.
- FLUX.1 (``fal-ai/flux/dev``, ``fal-ai/flux/schnell``): ``{prompt, image_size: {width,
  height}, num_images: 1, output_format: "png", seed?}``; ``fal-ai/flux/dev/image-to-image``
  ``{prompt, image_url, strength: 0.01-1, num_images, output_format, seed?}`` (the size
  follows the image). FLUX takes no negative prompt.
- SDXL (``fal-ai/fast-sdxl``): ``{prompt, negative_prompt?, image_size: {width, height},
  num_images: 1, format: "png", seed?}``.

A video model's result is ``{"video": {"url", …}}``, a picture model's ``{"images": [{"url",
"width", "height", "content_type"}], "seed", …}``: :func:`result_urls` reads them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from videogen.integrations.providers._http import (
    HttpVideoProvider,
    collect_urls,
    error_for_response,
    lower_headers,
    parse_json_body,
    provider_message,
    with_query,
)
from videogen.integrations.providers._inputs import (
    check_job_type,
    need_image,
    need_prompt,
    pick_duration,
    pick_ratio,
    picture_size,
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
from videogen.integrations.providers.errors import InvalidWebhook, ProviderRejected

QUEUE_URL = "https://queue.fal.run"
JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
JWKS_TTL_S = 24 * 3600
JWKS_MIN_REFRESH_S = 60
TIMESTAMP_TOLERANCE_S = 300
APP_QUERY_PARAM = "fal_app"
# Namespaces whose app id is three segments long (namespace/owner/name), as fal's clients do.
_NAMESPACES = frozenset({"workflows", "comfy"})

_STATES: dict[str, ProviderState] = {
    "IN_QUEUE": "queued",
    "IN_PROGRESS": "processing",
    "COMPLETED": "completed",
    "CANCELED": "canceled",
    "CANCELLED": "canceled",
    "FAILED": "failed",
    "ERROR": "failed",
}


@dataclass(frozen=True)
class FalModel:
    """What one fal model family takes (``model_prefix`` matches the model path; the first
    entry that matches wins, so longer prefixes come first)."""

    model_prefix: str
    durations: tuple[int, ...] = ()
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    default_duration: int = 5
    family: str = "kling"  # kling | veo | sora | flux | flux-i2i | sdxl
    job_types: tuple[str, ...] = ("text_to_video", "image_to_video")
    resolutions: tuple[str, ...] = ()


def _veo(prefix: str, job_type: str) -> FalModel:
    return FalModel(prefix, (4, 6, 8), ("16:9", "9:16"), 8, "veo", (job_type,), ("720p", "1080p"))


def _sora(prefix: str, job_type: str) -> FalModel:
    return FalModel(prefix, (4, 8, 12), ("16:9", "9:16"), 4, "sora", (job_type,), ("720p",))


def _picture(prefix: str, family: str, job_type: str) -> FalModel:
    return FalModel(prefix, family=family, job_types=(job_type,))


MODELS: tuple[FalModel, ...] = (
    FalModel("fal-ai/kling-video/", (5, 10), ("16:9", "9:16", "1:1")),
    _veo("fal-ai/veo3.1/image-to-video/", "image_to_video"),
    _veo("fal-ai/veo3.1/", "text_to_video"),
    _veo("fal-ai/veo3/image-to-video/", "image_to_video"),
    _veo("fal-ai/veo3/", "text_to_video"),
    _sora("fal-ai/sora-2/image-to-video/", "image_to_video"),
    _sora("fal-ai/sora-2/text-to-video/", "text_to_video"),
    _picture("fal-ai/flux/dev/image-to-image/", "flux-i2i", "image_to_image"),
    _picture("fal-ai/flux/", "flux", "text_to_image"),
    _picture("fal-ai/fast-sdxl/", "sdxl", "text_to_image"),
)


def model_spec(model: str) -> FalModel:
    """The input rules for a fal model path, or a refusal when we have none."""
    path = model.strip("/") + "/"
    for spec in MODELS:
        if path.startswith(spec.model_prefix):
            return spec
    raise ProviderRejected(
        f"There is no fal input mapping for model {model!r}.",
        provider="fal",
        hint="Known fal model families: " + ", ".join(m.model_prefix for m in MODELS) + ".",
    )


def provider_input(model: str, request: VideoRequest) -> dict[str, Any]:
    """The model's input for ``request`` (fal's queue takes it as the whole body)."""
    spec = model_spec(model)
    check_job_type("fal", model, request, spec.job_types)
    body: dict[str, Any] = {"prompt": need_prompt("fal", model, request)}
    if spec.family in ("flux", "flux-i2i", "sdxl"):
        return body | _picture_input(spec, model, request)
    if request.takes_image:
        body["image_url"] = need_image("fal", model, request)
    ratios = {r: r for r in spec.aspect_ratios}
    if spec.family == "kling":
        if not request.takes_image:  # Kling's image sets the shape
            body["aspect_ratio"] = pick_ratio("fal", model, request.aspect_ratio, ratios, "16:9")
    else:
        body["aspect_ratio"] = pick_ratio("fal", model, request.aspect_ratio, ratios, "16:9")
        body["resolution"] = _pick_resolution(spec, model, request.resolution)
    seconds = pick_duration("fal", model, request.duration, spec.durations, spec.default_duration)
    if spec.family == "veo":
        body["duration"] = f"{seconds}s"
        body["generate_audio"] = True
        if request.seed is not None:
            body["seed"] = request.seed
    elif spec.family == "sora":
        body["duration"] = seconds
    else:
        body["duration"] = str(seconds)
    if request.negative_prompt and spec.family in ("kling", "veo"):
        body["negative_prompt"] = request.negative_prompt
    return body


def _pick_resolution(spec: FalModel, model: str, resolution: str | None) -> str:
    asked = resolution or spec.resolutions[0]
    if asked not in spec.resolutions:
        raise ProviderRejected(
            f"fal model {model} makes {' or '.join(spec.resolutions)} videos, not {asked}.",
            provider="fal",
        )
    return asked


def _picture_input(spec: FalModel, model: str, request: VideoRequest) -> dict[str, Any]:
    """FLUX's and SDXL's input: one picture of the job's size (image-to-image: the size
    of the image), as PNG."""
    ratios = {r: r for r in spec.aspect_ratios}
    pick_ratio("fal", model, request.aspect_ratio, ratios, "1:1")
    body: dict[str, Any] = {"num_images": 1}
    if spec.family == "flux-i2i":
        body["image_url"] = need_image("fal", model, request)
        strength = 0.95 if request.strength is None else request.strength
        body["strength"] = min(1.0, max(0.01, strength))
    else:
        width, height = picture_size(request)
        body["image_size"] = {"width": width, "height": height}
    if spec.family == "sdxl":
        body["format"] = "png"
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
    else:
        body["output_format"] = "png"
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def result_urls(result: Any) -> tuple[str, ...]:
    """The files of a model's result: the video (``video.url``), else the pictures
    (``images[].url``), else every URL in it."""
    if isinstance(result, Mapping):
        video = result.get("video")
        if isinstance(video, Mapping) and isinstance(video.get("url"), str):
            return (video["url"],)
        images = result.get("images")
        if isinstance(images, list):
            urls = tuple(
                i["url"] for i in images if isinstance(i, Mapping) and isinstance(i.get("url"), str)
            )
            if urls:
                return urls
    return collect_urls(result)


def app_id_of(model_id: str) -> str:
    """The app part of a fal model path, which the status/result/cancel paths use."""
    parts = [p for p in model_id.strip("/").split("/") if p]
    size = 3 if parts and parts[0] in _NAMESPACES else 2
    if len(parts) < size:
        raise ProviderRejected(
            f"fal model id {model_id!r} is not of the form owner/name[/path].", provider="fal"
        )
    return "/".join(parts[:size])


def split_job_id(provider_job_id: str) -> tuple[str, str]:
    """``(app_id, request_id)`` from our fal ``provider_job_id``."""
    app_id, _, request_id = provider_job_id.rpartition("/")
    if not app_id or not request_id:
        raise ProviderRejected(
            f"{provider_job_id!r} is not a fal job id (app_id/request_id).", provider="fal"
        )
    return app_id, request_id


class FalProvider(HttpVideoProvider):
    """fal.ai's queue API."""

    name = "fal"

    def __init__(
        self,
        api_key: str,
        http_client: httpx.Client | None = None,
        *,
        queue_url: str = QUEUE_URL,
        jwks_url: str = JWKS_URL,
        expected_user_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(http_client)
        self._api_key = api_key
        self.queue_url = queue_url.rstrip("/")
        self.jwks_url = jwks_url
        self.expected_user_id = expected_user_id
        self._clock = clock
        self._jwks: list[bytes] = []
        self._jwks_fetched_at = float("-inf")

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._api_key}"}

    # Jobs -----------------------------------------------------------------------------
    def provider_input(self, model: str, request: VideoRequest) -> dict[str, Any]:
        """The fal model's documented input for the job (see :func:`provider_input`)."""
        return provider_input(model, request)

    def submit(self, job: ProviderJob) -> Submission:
        """Queue a request; the webhook URL gets ``fal_app`` so callbacks map back."""
        app_id = app_id_of(job.model)
        params: dict[str, str] = {}
        if job.webhook_url:
            params["fal_webhook"] = with_query(job.webhook_url, {APP_QUERY_PARAM: app_id})
        url = f"{self.queue_url}/{job.model.strip('/')}"
        response = self._request("POST", url, json_body=dict(job.input), params=params)
        data = self._json(response)
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not request_id:
            raise ProviderRejected("fal answered without a request_id.", provider="fal")
        return Submission(provider_job_id=f"{app_id}/{request_id}", status="queued")

    def status(self, provider_job_id: str) -> ProviderStatus:
        """Poll the queue; a completed request is read through to its result."""
        app_id, request_id = split_job_id(provider_job_id)
        base = f"{self.queue_url}/{app_id}/requests/{request_id}"
        data = self._json(self._request("GET", f"{base}/status"))
        raw_state = str(data.get("status", "")).upper()
        state = _STATES.get(raw_state)
        if state is None:
            raise ProviderRejected(f"fal reported an unknown status {raw_state!r}.", provider="fal")
        if data.get("error"):
            return ProviderStatus(
                state="failed",
                error=str(data["error"]),
                error_code=data.get("error_type"),
            )
        if state == "queued":
            return ProviderStatus(
                state="queued", progress=0, queue_position=data.get("queue_position")
            )
        if state != "completed":
            return ProviderStatus(state=state)
        # The queue's status says how long the model ran: metrics.inference_time (s).
        metrics = data.get("metrics")
        seconds = (
            reported_seconds(metrics.get("inference_time")) if isinstance(metrics, dict) else None
        )
        return dataclasses.replace(self._result(base), seconds=seconds)

    def _result(self, base: str) -> ProviderStatus:
        # A failed request is COMPLETED in the queue; its result answers with the model's
        # error status. Only gateway-style 502/503/504 mean "ask again later".
        response = self._send("GET", base)
        if response.is_success:
            return ProviderStatus(
                state="completed", progress=100, output_urls=result_urls(self._json(response))
            )
        if response.status_code in (401, 403, 404, 408, 429, 502, 503, 504):
            raise error_for_response(self.name, response)
        return ProviderStatus(
            state="failed",
            error=provider_message(response) or f"fal request failed ({response.status_code})",
            error_code=str(response.status_code),
        )

    def cancel(self, provider_job_id: str) -> None:
        """Ask fal to cancel; a request that already finished is left alone."""
        app_id, request_id = split_job_id(provider_job_id)
        url = f"{self.queue_url}/{app_id}/requests/{request_id}/cancel"
        response = self._send("PUT", url)
        if response.is_success:
            return
        if response.status_code == 400 and "ALREADY_COMPLETED" in response.text:
            return
        raise error_for_response(self.name, response)

    # Webhooks -------------------------------------------------------------------------
    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> None:
        """Check the Ed25519 signature, the timestamp window and (if set) the user id."""
        h = lower_headers(headers)
        request_id = h.get("x-fal-webhook-request-id", "")
        user_id = h.get("x-fal-webhook-user-id", "")
        timestamp = h.get("x-fal-webhook-timestamp", "")
        signature_hex = h.get("x-fal-webhook-signature", "")
        if not (request_id and user_id and timestamp and signature_hex):
            raise InvalidWebhook("The fal webhook is missing its signature headers.")
        try:
            sent_at = int(timestamp)
        except ValueError as exc:
            raise InvalidWebhook("The fal webhook timestamp is not a number.") from exc
        if abs(self._clock() - sent_at) > TIMESTAMP_TOLERANCE_S:
            raise InvalidWebhook("The fal webhook timestamp is outside the 5-minute window.")
        if self.expected_user_id is not None and user_id != self.expected_user_id:
            raise InvalidWebhook("The fal webhook was sent for another fal account.")
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError as exc:
            raise InvalidWebhook("The fal webhook signature is not hex.") from exc
        message = "\n".join(
            [request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]
        ).encode()
        if self._verify_with_keys(signature, message, refresh=False):
            return
        if self._clock() - self._jwks_fetched_at >= JWKS_MIN_REFRESH_S and self._verify_with_keys(
            signature, message, refresh=True
        ):
            return
        raise InvalidWebhook("The fal webhook signature does not verify.")

    def _verify_with_keys(self, signature: bytes, message: bytes, *, refresh: bool) -> bool:
        # cold start: cryptography loads on first use
        from cryptography.exceptions import InvalidSignature

        # cold start: cryptography loads on first use
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        for raw in self._public_keys(refresh=refresh):
            try:
                Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
            except (InvalidSignature, ValueError):
                continue
            return True
        return False

    def _public_keys(self, *, refresh: bool) -> list[bytes]:
        """fal's Ed25519 public keys, from the cache unless stale or ``refresh``."""
        if refresh or self._clock() - self._jwks_fetched_at > JWKS_TTL_S:
            data = self._json(self._request("GET", self.jwks_url, auth=False))
            keys = data.get("keys", []) if isinstance(data, dict) else []
            self._jwks = [
                _b64url(k["x"])
                for k in keys
                if isinstance(k, dict)
                and k.get("kty") == "OKP"
                and k.get("crv") == "Ed25519"
                and isinstance(k.get("x"), str)
            ]
            self._jwks_fetched_at = self._clock()
        return self._jwks

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> WebhookEvent:
        """Read fal's completion callback (``status`` ``OK`` or ``ERROR``)."""
        data = parse_json_body("fal", body)
        request_id = data.get("request_id") or lower_headers(headers).get(
            "x-fal-webhook-request-id"
        )
        app_id = (query or {}).get(APP_QUERY_PARAM)
        if not request_id or not app_id:
            raise InvalidWebhook(
                "The fal webhook lacks request_id or the fal_app query parameter.",
                hint="Pass the callback request's query parameters to parse_webhook.",
            )
        event_id = f"fal:{request_id}"
        if str(data.get("status", "")).upper() == "OK":
            return WebhookEvent(
                provider_job_id=f"{app_id}/{request_id}",
                state="completed",
                progress=100,
                output_urls=result_urls(data.get("payload")),
                event_id=event_id,
            )
        error = data.get("error") or _detail(data.get("payload")) or data.get("payload_error")
        return WebhookEvent(
            provider_job_id=f"{app_id}/{request_id}",
            state="failed",
            error=str(error or "fal reported an error"),
            event_id=event_id,
        )


def _detail(payload: Any) -> str | None:
    if isinstance(payload, dict) and payload.get("detail"):
        detail = payload["detail"]
        if isinstance(detail, list):
            return "; ".join(
                str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail
            )
        return str(detail)
    return None


def _b64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return b""
