"""Jobs and batches: the params bag, the requests that make, read and cancel jobs and
batches, and the jobs as answered (also what routing reads of a job)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StringConstraints,
    model_validator,
)

from videogen.media.captions import CaptionStyle
from videogen.media.forms import ExportFormat, Poster
from videogen.media.script import Script
from videogen.media.timeline import MAX_PIXELS_4K, Transition
from videogen.models.common import (
    INT4_MAX,
    INT8_MAX,
    Fixed,
    JobIdQuery,
    JobStatus,
    ListQuery,
    MediaSource,
    ModelId,
    NonBlank,
    Open,
    Page,
    Root,
    SortOrder,
    StoragePath,
    Strict,
    order_field,
)
from videogen.models.elements import MAX_ELEMENTS, Element, check_elements
from videogen.models.webhooks import Delivery, WebhookEvent

# Requests ---------------------------------------------------------------------------------

AspectRatio = Literal["16:9", "9:16", "1:1", "4:5"]
Resolution = Literal["480p", "720p", "1080p"]


Language = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=16)]


class SectionClipRequest(Strict):
    """A section's picture made by a text- or image-to-video job of its own (a compose
    job's ``section_clips``): its own price, reserved with the compose job's."""

    model: ModelId = Field(examples=["reference/text-to-video"])
    prompt: NonBlank = Field(max_length=2000, examples=["Waves rolling onto a beach"])
    image_path: StoragePath | None = Field(None, description="An image-to-video's still.")
    duration: int | None = Field(
        None, ge=1, le=30, description="Seconds (default 5): repeated to fill the section."
    )


class SectionTiming(Strict):
    """Where a section sits in the video (a narration step's ``sections``)."""

    model_config = ConfigDict(extra="ignore")  # a narration section carries more: take it whole
    start_s: float = Field(ge=0, le=86_400)
    duration_s: float = Field(gt=0, le=86_400)


class FrameSize(Strict):
    """A custom frame in pixels (even sides): up to 1080p's pixel count (1920 x 1080), up to
    4K's (3840 x 2160) on the premium tier (the database checks the tier)."""

    width: int = Field(ge=64, le=3840, multiple_of=2)
    height: int = Field(ge=64, le=3840, multiple_of=2)

    @model_validator(mode="after")
    def _pixels(self) -> FrameSize:
        if self.width * self.height > MAX_PIXELS_4K:
            raise ValueError(f"{self.width}x{self.height} is more pixels than 4K (3840x2160)")
        return self


class JobParams(Strict):
    """A job's params: every field any job type takes, typed and bounded; unknown keys are
    a 422. Which of them a model's job type accepts is checked by the database
    (``private.job_type_params``), where the model's type is known."""

    prompt: NonBlank | None = Field(None, max_length=2000, examples=["A paper boat on a river"])
    original_prompt: NonBlank | None = Field(
        None,
        max_length=2000,
        description="Your own words when `prompt` is an enhanced prompt you chose "
        "(`POST /queue-job/enhance`): the job keeps both. Needs `prompt`.",
    )
    negative_prompt: NonBlank | None = Field(None, max_length=2000)
    image_path: MediaSource | None = Field(
        None,
        description="An upload of yours in the `uploads` bucket: `<user id>/<file>` — or an "
        "https URL of a public picture, fetched once, checked like an upload and stored in "
        "your uploads before any credit moves (the job then names the stored path).",
    )
    strength: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Image-to-image: how much the picture may change (0 keeps it, 1 repaints "
        "it all).",
    )
    duration: int | None = Field(None, ge=1, le=600, description="Seconds.")
    aspect_ratio: AspectRatio | None = None
    resolution: Resolution | None = None
    seed: int | None = Field(None, ge=0, le=INT4_MAX)
    fps: int | None = Field(None, ge=8, le=60)
    # Composed videos (a model of job type `compose`): `prompt` is the topic.
    script: Script | None = Field(
        None, description="A script to narrate instead of writing one: {title, sections[]}."
    )
    sections: int | None = Field(None, ge=1, le=12, description="Sections of a written script.")
    voice: NonBlank | None = Field(None, max_length=100)
    language: Language | None = None
    speaking_rate: float | None = Field(None, ge=0.25, le=4.0)
    images: list[MediaSource | None] | None = Field(
        None,
        max_length=12,
        description="One upload (or https URL) per section: a picture, or a clip (mp4, mov, "
        "webm, mkv) repeated to the section's length and cropped to the frame; null → a title "
        "card.",
    )
    music_path: MediaSource | None = Field(None, description="An upload or an https URL.")
    captions: StrictBool | None = None
    caption_style: CaptionStyle | None = Field(
        None, description="Compose: how the word-timed captions look (docs/elements.md)."
    )
    formats: list[ExportFormat] | None = Field(
        None,
        max_length=3,
        description="Compose: files beside the mp4 — `webm` (VP9/Opus), `gif`, `mp3`.",
    )
    poster: Poster | None = Field(None, description="Compose: a still at `at` seconds.")
    size: FrameSize | None = Field(
        None, description="Compose: a custom frame instead of aspect_ratio x resolution."
    )
    transition: Transition | None = Field(
        None, description="Compose: the xfade transition between sections, by name."
    )
    # The wizard's steps (videogen.rendering.steps): what one step made, fed to the next.
    instruction: NonBlank | None = Field(
        None, max_length=500, description="Script step: improve `script` as this says."
    )
    narration_paths: list[StoragePath] | None = Field(
        None, max_length=12, description="Compose: a narration step's files, one per section."
    )
    source: Literal["card", "stock", "clip", "mixed"] | None = Field(
        None,
        description="Images step: title cards, stock photos (STOCK_PHOTOS), clips (stock "
        "videos with STOCK_VIDEOS, else a moving title card made offline), or mixed "
        "(stills and clips alternating, a still first).",
    )
    section_clips: list[SectionClipRequest | None] | None = Field(
        None,
        max_length=12,
        description="Compose: per section null or a clip generated for it by a text- or "
        "image-to-video job of its own (priced and reserved with this job, in one "
        "transaction). The compose job waits, queued, until each has finished; a clip that "
        "failed leaves its section a still, and its credits were released by its failure.",
    )
    timings: list[SectionTiming] | None = Field(
        None, max_length=12, description="Images step: the narration step's section timings."
    )
    elements: list[Element] | None = Field(
        None,
        min_length=1,
        max_length=MAX_ELEMENTS,
        description=(
            "Compose only: the timeline itself — video, image, audio and text elements placed "
            "in time, on the frame and by layer — rendered instead of a script, narration and "
            "images. Without `duration` the job is priced by its length."
        ),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _check_elements(cls, data: Any, handler: ModelWrapValidatorHandler[JobParams]) -> Any:
        """Every problem of a timeline at once: the shapes' and those across elements."""
        return check_elements(cls.__name__, data, handler)

    def params(self) -> dict[str, Any]:
        """The job params as stored on the job: only the fields that were given."""
        return self.model_dump(
            exclude={
                "model",
                "priority",
                "project_id",
                "max_credits",
                "webhook",
                "webhook_events",
                "cancel_after",
            },
            exclude_none=True,
            by_alias=True,
        )


class GenerateVideoRequest(JobParams, Delivery):
    """POST /generate-video: a text-to-video, image-to-video or composed-video job."""

    model: ModelId = Field(
        description="A model id from the catalogue.", examples=["reference/text-to-video"]
    )
    prompt: NonBlank = Field(max_length=2000, examples=["A paper boat on a river"])
    priority: int = Field(0, ge=-100, le=100)
    project_id: UUID | None = Field(None, description="File the job in one of your projects.")
    max_credits: int | None = Field(
        None,
        ge=0,
        le=INT8_MAX,
        description="Refuse (402 MAX_CREDITS_EXCEEDED) rather than spend more than this.",
    )


class QueueJobRequest(Delivery):
    """POST /queue-job: any job type of the catalogue, params as the model's type takes."""

    model: ModelId = Field(examples=["reference/text-to-video"])
    params: JobParams = Field(
        default_factory=JobParams, examples=[{"prompt": "A paper boat", "duration": 3}]
    )
    priority: int = Field(0, ge=-100, le=100)
    project_id: UUID | None = Field(None, description="File the job in one of your projects.")
    max_credits: int | None = Field(
        None,
        ge=0,
        le=INT8_MAX,
        description="Refuse (402 MAX_CREDITS_EXCEEDED) rather than spend more than this.",
    )


class JobQuery(Strict):
    """GET ?id=… for one job, or a page of the caller's jobs (of one status, project or
    batch)."""

    id: UUID | None = None
    status: JobStatus | None = None
    project_id: UUID | None = None
    batch_id: UUID | None = None
    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)
    sort: Literal["created", "updated", "status", "cost"] = Field(
        "created", description="The field to sort by (status: in lifecycle order)."
    )
    order: SortOrder = order_field()


class BatchItem(Strict):
    """One job of a batch or a quote: a model and its params."""

    model: ModelId = Field(examples=["reference/text-to-video"])
    params: JobParams = Field(default_factory=JobParams, examples=[{"prompt": "A paper boat"}])
    priority: int = Field(0, ge=-100, le=100)

    def as_item(self) -> dict[str, Any]:
        """The item as the database takes it."""
        return {"model": self.model, "params": self.params.params(), "priority": self.priority}


class BatchRequest(Delivery):
    """POST /queue-job/batches: 1 to 20 jobs made together, paid together or not at all."""

    items: list[BatchItem] = Field(min_length=1, max_length=20)
    project_id: UUID | None = Field(None, description="File every job in this project.")
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    max_credits: int | None = Field(
        None,
        ge=0,
        le=INT8_MAX,
        description="Refuse (402 MAX_CREDITS_EXCEEDED) rather than spend more than this in all.",
    )


class BatchQuery(ListQuery):
    """GET /queue-job/batches: one batch (?id=) or a page, optionally of one project."""

    project_id: UUID | None = None
    sort: Literal["created", "cost"] = Field("created", description="The field to sort by.")
    order: SortOrder = order_field()


class JobDeleteQuery(JobIdQuery):
    """DELETE ?id=<job id>[&action=remove]: cancel a running job (the default), or remove a
    finished one from your history."""

    action: Literal["cancel", "remove"] = "cancel"


# Answers ----------------------------------------------------------------------------------


class Job(Open):
    """A generation job as its owner sees it."""

    id: UUID
    user_id: UUID
    model_id: str
    job_type: str
    status: JobStatus
    params: dict[str, Any]
    priority: int
    cost: int = Field(description="Credits reserved for the job.")
    credits_used: int | None
    progress: int = Field(ge=0, le=100)
    progress_message: str | None
    attempt: int = Field(description="Current dispatch; 0 = never.")
    failures: int
    max_attempts: int
    worker_id: UUID | None
    provider: str | None
    lease_expires_at: datetime | None
    run_after: datetime
    output: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    queue_position: int | None = Field(
        None, ge=1, le=101, description="While queued: exact to 100; 101 means more ahead."
    )
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deleted_at: datetime | None = Field(None, description="Removed from its owner's history.")
    output_expired_at: datetime | None = Field(
        None, description="Its files were removed (retention or removal): no links."
    )
    project_id: UUID | None = Field(None, description="The project it is filed in.")
    batch_id: UUID | None = Field(None, description="The batch that made it.")
    parent_job_id: UUID | None = Field(None, description="A section clip: its compose job.")
    waiting_for: list[UUID] = Field(
        default_factory=list, description="A compose job: its section clips still running."
    )
    webhook: str | None = Field(None, description="Where its events are POSTed (your server).")
    webhook_events: list[WebhookEvent] | None = Field(
        None, description="The events sent to the webhook."
    )
    deadline_at: datetime | None = Field(
        None, description="Canceled (error_code DEADLINE) if not finished by then (cancel_after)."
    )
    estimated_seconds_left: int | None = Field(
        None,
        ge=1,
        description="Reads only: seconds until it should be done (queue ahead shared among "
        "the workers serving its model, then a run; while processing, its own pace); null "
        "once finished.",
    )
    estimated_completion_at: datetime | None = Field(
        None, description="Reads only: when it should be done."
    )


class JobEvent(Open):
    """One change of a job: a row of job_events, also the realtime broadcast's payload."""

    id: int
    job_id: UUID
    event: str
    status: JobStatus
    progress: int
    attempt: int
    data: dict[str, Any]
    created_at: datetime


class JobWithEvents(Job):
    """A job and its history, oldest first."""

    events: list[JobEvent]


class JobPage(Page):
    """A page of the caller's jobs, newest first."""

    items: list[Job]


class JobOrPage(Root[JobWithEvents | JobPage]):
    """GET ?id= → the job with its events; otherwise a page of jobs."""


class CancelResult(Open):
    """A canceled job (credits released) and whether its worker or provider was told."""

    job: Job
    worker_notified: bool = Field(description="The worker or provider running it was told.")


class CancelOrRemoved(Root[CancelResult | Job]):
    """DELETE answers the canceled job with whether it was told, or the removed job."""


class JobChange(Open):
    """What a report did to a job; late, repeated and reordered ones change nothing."""

    applied: bool
    reason: str | None = Field(
        None,
        description="Why nothing changed: duplicate_delivery, stale_attempt, duplicate, "
        "not_newer, unknown_provider_job, no_change.",
    )
    job: Job | None = None


class BatchProgress(Open):
    """A batch and where it stands (also the ``batch_progress`` broadcast's payload)."""

    id: UUID
    user_id: UUID
    project_id: UUID | None
    title: str | None
    jobs_total: int = Field(ge=1, le=20)
    cost: int = Field(ge=0, description="Credits reserved for all its jobs.")
    created_at: datetime
    canceled_at: datetime | None
    counts: dict[str, int] = Field(description="Its jobs per status.")
    finished: int = Field(ge=0)
    percent: int = Field(ge=0, le=100, description="A finished job counts 100.")
    credits_used: int = Field(ge=0)
    done: bool


class Batch(BatchProgress):
    """A batch with its jobs."""

    jobs: list[Job]


class BatchPage(Page):
    """A page of the caller's batches, newest first."""

    items: list[BatchProgress]


class BatchOrPage(Root[Batch | BatchPage]):
    """GET ?id= → the batch with its jobs; otherwise a page of batches."""


class BatchCanceled(Open):
    """A canceled batch (every unfinished job canceled, credits released)."""

    batch: BatchProgress
    workers_notified: int = Field(ge=0, description="Workers or providers told to stop.")


class ProviderJobRow(Open):
    """A job as a provider's webhook finds it: the row, without the computed fields."""

    id: UUID
    user_id: UUID
    job_type: str = "text_to_video"
    status: JobStatus
    attempt: int
    progress: int
    provider: str | None
    provider_job_id: str | None


class ExternalJob(Fixed):
    """A job running at an external provider (for reconcile polls)."""

    id: UUID
    attempt: int
    provider: str
    provider_job_id: str


class ModelRoute(Open):
    """A catalogue model with the provider's own id for it."""

    provider_model_id: str | None = None


class JobWithModel(Job):
    """A job with its catalogue row (routing to a provider)."""

    model: ModelRoute
