"""The one interface every external video provider sits behind, and the values it trades in.

A provider takes a :class:`ProviderJob`, answers with a :class:`Submission`, reports a
:class:`ProviderStatus` when polled and a :class:`WebhookEvent` when it calls back. States
are ours (``queued → processing → completed / failed / canceled``), progress is 0-100.

``provider_job_id`` is opaque to callers: store it as returned by :meth:`submit` and hand
it back to :meth:`status` / :meth:`cancel`; :meth:`parse_webhook` yields the same string.
Providers whose status URL needs more than the provider's own id (fal's app id, RunPod's
endpoint id) fold that into the id and into query parameters of the webhook URL, which is
why the webhook methods take the callback request's ``query`` too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from videogen.models.params import (
    ImageToImageParams,
    ImageToVideoParams,
    TextToImageParams,
    TextToVideoParams,
    params_for,
)

if TYPE_CHECKING:
    from videogen.models.params import TypedParams

ProviderState = Literal["queued", "processing", "completed", "failed", "canceled"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "canceled"})
VIDEO_JOB_TYPES: frozenset[str] = frozenset({"text_to_video", "image_to_video"})
PICTURE_JOB_TYPES: frozenset[str] = frozenset({"text_to_image", "image_to_image"})
# The job types whose input is an upload (``image_path``), handed over as ``image_url``.
IMAGE_INPUT_JOB_TYPES: frozenset[str] = frozenset({"image_to_video", "image_to_image"})


@dataclass(frozen=True)
class VideoRequest:
    """Our params for one video or picture job, typed: what an adapter's input mapping reads.

    ``image_url`` is a short-lived signed URL of the job's upload (``image_path``), made
    by the router; the object path itself is never handed to a provider.
    """

    job_type: str
    prompt: str | None = None
    negative_prompt: str | None = None
    duration: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None
    fps: int | None = None
    image_url: str | None = None
    strength: float | None = None  # image-to-image: how much the picture may change

    @classmethod
    def of(cls, params: TypedParams, image_url: str | None = None) -> VideoRequest:
        """A job's typed params (:func:`videogen.models.params.params_for`). A job that is
        neither a video nor a picture keeps only its type, for the adapters to refuse."""
        if isinstance(params, TextToImageParams | ImageToImageParams):
            return cls(
                job_type=params.job_type,
                prompt=params.prompt,
                negative_prompt=params.negative_prompt,
                aspect_ratio=params.aspect_ratio,
                resolution=params.resolution,
                seed=params.seed,
                image_url=image_url,
                strength=params.strength if isinstance(params, ImageToImageParams) else None,
            )
        if not isinstance(params, TextToVideoParams | ImageToVideoParams):
            return cls(job_type=params.job_type, image_url=image_url)
        return cls(
            job_type=params.job_type,
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            duration=params.duration,
            aspect_ratio=params.aspect_ratio,
            resolution=params.resolution,
            seed=params.seed,
            fps=params.fps,
            image_url=image_url,
        )

    @classmethod
    def from_params(
        cls, job_type: str, params: Mapping[str, Any], image_url: str | None = None
    ) -> VideoRequest:
        """Read a job's stored params (as ``private.normalize_params`` left them) as its
        type's (a 422 ``INVALID_PARAMS`` when they do not fit)."""
        return cls.of(params_for(job_type, params), image_url)

    @property
    def is_image_to_video(self) -> bool:
        """True for an image-to-video job."""
        return self.job_type == "image_to_video"

    @property
    def is_picture(self) -> bool:
        """True for a text- or image-to-image job (its result is a still picture)."""
        return self.job_type in PICTURE_JOB_TYPES

    @property
    def takes_image(self) -> bool:
        """True when the job starts from an upload (image-to-video, image-to-image)."""
        return self.job_type in IMAGE_INPUT_JOB_TYPES


@dataclass(frozen=True)
class ProviderJob:
    """What we ask a provider to run.

    ``model`` is the provider's own model id: a fal app path (``fal-ai/kling-video/…``), a
    Replicate ``owner/name`` or ``owner/name:version``, a Runway model (``gen4_turbo``) or
    a RunPod endpoint id. ``input`` is the provider's own input, as
    :meth:`VideoProvider.provider_input` builds it from a :class:`VideoRequest`.
    ``options`` are provider-specific top-level request fields (RunPod ``policy``,
    Replicate ``webhook_events_filter``…).
    """

    model: str
    input: Mapping[str, Any]
    webhook_url: str | None = None
    job_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """The provider accepted a job."""

    provider_job_id: str
    status: ProviderState


@dataclass(frozen=True)
class ProviderStatus:
    """A job's state as the provider reports it when polled."""

    state: ProviderState
    progress: int | None = None
    output_urls: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | None = None
    queue_position: int | None = None
    # What the run consumed, as the provider reports it (None: not said).
    seconds: float | None = None
    cost_usd: float | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the provider will not change this job any more."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class WebhookEvent:
    """A job's state as a provider callback (or a reconcile poll) reports it.

    ``event_id`` identifies the delivery for de-duplication when the provider gives one;
    ``verified`` is False when the body came from an unsigned webhook and has not been
    confirmed by polling (see :func:`videogen.integrations.providers.reconcile.receive_webhook`).
    """

    provider_job_id: str
    state: ProviderState
    progress: int | None = None
    output_urls: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | None = None
    event_id: str | None = None
    verified: bool = True
    # What the run consumed, as the provider reports it (None: not said).
    seconds: float | None = None
    cost_usd: float | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the provider will not change this job any more."""
        return self.state in TERMINAL_STATES


def reported_seconds(value: Any, *, scale: float = 1.0) -> float | None:
    """A provider's reported duration as seconds (``scale`` 0.001 for milliseconds);
    None for anything that is not a non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return round(float(value) * scale, 3)


class VideoProvider(ABC):
    """An external video generation API behind one interface."""

    name: str = "provider"
    # Whether the provider calls back at all, and whether those callbacks are signed.
    # Unsigned callbacks are only a hint: confirm them with a status poll.
    supports_webhooks: bool = True
    webhooks_signed: bool = True

    def provider_input(self, model: str, request: VideoRequest) -> dict[str, Any]:
        """The provider's documented input for ``request`` on ``model``.

        Raises :class:`~videogen.integrations.providers.errors.ProviderRejected` (never
        retried) for a job the provider cannot do (a duration, ratio or job type it does not
        offer).
        """
        return generic_input(request)

    @abstractmethod
    def submit(self, job: ProviderJob) -> Submission:
        """Start a job at the provider."""

    @abstractmethod
    def status(self, provider_job_id: str) -> ProviderStatus:
        """Poll a job's current state."""

    @abstractmethod
    def cancel(self, provider_job_id: str) -> None:
        """Ask the provider to stop a job; a job that already finished is left alone."""

    @abstractmethod
    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> None:
        """Raise :class:`~videogen.integrations.providers.errors.InvalidWebhook` unless the
        callback is ours."""

    @abstractmethod
    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> WebhookEvent:
        """Read a verified callback into a :class:`WebhookEvent`."""

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release the HTTP client if this provider created it."""

    def __enter__(self) -> VideoProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_GENERIC_KEYS = (
    "prompt",
    "negative_prompt",
    "duration",
    "aspect_ratio",
    "resolution",
    "seed",
    "fps",
    "strength",
)


def generic_input(request: VideoRequest) -> dict[str, Any]:
    """Our params as they are, the upload as ``image_url``: for our own workers' inputs."""
    body: dict[str, Any] = {"job_type": request.job_type}
    for key in _GENERIC_KEYS:
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.image_url is not None:
        body["image_url"] = request.image_url
    return body
