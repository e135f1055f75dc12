"""Workers: what a worker sends (registration, heartbeat, claim, its job reports and their
usage) and what it gets (its jobs), with what only the services see of a dispatch or cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from videogen.media.script import Script
from videogen.models.common import (
    INT4_MAX,
    INT8_MAX,
    Fixed,
    ModelId,
    NonBlank,
    Open,
    Root,
    StoragePath,
    Strict,
)
from videogen.models.jobs import Job
from videogen.models.ops import RenderSpeedFigure, SweepSummary

# Requests ---------------------------------------------------------------------------------


class CallbackError(Strict):
    """Why an attempt failed."""

    code: str = Field("WORKER_ERROR", max_length=64)
    message: str = Field("", max_length=2000)
    retryable: StrictBool = True


class WorkerOutput(Strict):
    """What a worker reports for a completed attempt: files it stored under the job owner's
    folder (``videos`` or ``images``, and ``thumbnails``) and their facts. Links are not accepted:
    the service signs them from the paths; the database checks the owner's folder."""

    video_path: StoragePath | None = Field(None, examples=["<user id>/<job id>.mp4"])
    image_path: StoragePath | None = Field(
        None,
        description="A picture job's result (`images` bucket).",
        examples=["<user id>/<job id>.png"],
    )
    thumbnail_path: StoragePath | None = Field(None, examples=["<user id>/<job id>.jpg"])
    duration_s: float | None = Field(None, ge=0, le=86_400)
    width: int | None = Field(None, ge=1, le=16_384)
    height: int | None = Field(None, ge=1, le=16_384)
    title: str | None = Field(None, max_length=200)
    script: Script | None = None
    # A composed video's other forms (rendering.outputs.EXTRA_KEYS), in the videos bucket.
    webm_path: StoragePath | None = None
    gif_path: StoragePath | None = None
    mp3_path: StoragePath | None = None
    poster_path: StoragePath | None = None
    vtt_path: StoragePath | None = None
    srt_path: StoragePath | None = None
    fake: StrictBool | None = Field(None, description="A `--no-render` worker's stand-in result.")


USAGE_COUNT_MAX = 1_000_000_000
USAGE_SECONDS_MAX = 100_000_000
UsageName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class RenderSpeed(Strict):
    """One sectioned render's speed: its kind and how long it took for what it made."""

    width: StrictInt = Field(ge=1, le=16384)
    height: StrictInt = Field(ge=1, le=16384)
    fps: StrictInt = Field(ge=1, le=240)
    sections: StrictInt = Field(ge=1, le=4096, description="Sections rendered at once.")
    wall_seconds: StrictFloat | StrictInt = Field(gt=0, le=USAGE_SECONDS_MAX)
    output_seconds: StrictFloat | StrictInt = Field(gt=0, le=USAGE_SECONDS_MAX)


class JobUsage(Strict):
    """What an attempt consumed, for the cost of the job (``ops_job_costs``). Every field
    optional; the database adds each report's usage to the job's (a retried attempt
    consumed too) and checks the same shape (``private.check_job_usage``)."""

    llm_model: UsageName | None = Field(None, examples=["gpt-4o-mini"])
    prompt_tokens: StrictInt | None = Field(None, ge=0, le=USAGE_COUNT_MAX)
    completion_tokens: StrictInt | None = Field(None, ge=0, le=USAGE_COUNT_MAX)
    tts_engine: UsageName | None = Field(None, examples=["espeak"])
    tts_characters: StrictInt | None = Field(None, ge=0, le=USAGE_COUNT_MAX)
    provider_calls: StrictInt | None = Field(
        None, ge=0, le=USAGE_COUNT_MAX, description="Calls to paid external APIs."
    )
    provider_seconds: StrictFloat | StrictInt | None = Field(
        None, ge=0, le=USAGE_SECONDS_MAX, description="Compute seconds a provider billed."
    )
    provider_cost_usd: StrictFloat | StrictInt | None = Field(
        None, ge=0, le=USAGE_SECONDS_MAX, description="The provider's own cost, when it says."
    )
    render_seconds: StrictFloat | StrictInt | None = Field(
        None, ge=0, le=USAGE_SECONDS_MAX, description="ffmpeg wall time."
    )
    render_output_seconds: StrictFloat | StrictInt | None = Field(
        None, ge=0, le=USAGE_SECONDS_MAX, description="Seconds of media those renders made."
    )
    renders: list[RenderSpeed] | None = Field(
        None,
        max_length=100,
        description="Each sectioned render's frame size, frame rate, sections at once and "
        "speed: the fleet's render speed per kind (service.render_speeds_read).",
    )


class JobCallback(Strict):
    """POST /job-callback from a worker (Standard Webhooks signed)."""

    type: Literal["started", "progress", "completed", "failed"]
    job_id: UUID
    attempt: int = Field(ge=1, le=INT4_MAX)
    progress: int | None = Field(None, ge=0, le=100)
    message: str | None = Field(None, max_length=500)
    output: WorkerOutput | None = None
    credits_used: int | None = Field(None, ge=0, le=INT8_MAX)
    rendered_seconds: StrictFloat | StrictInt | None = Field(
        None,
        ge=0,
        le=USAGE_SECONDS_MAX,
        description="With `completed`, instead of `credits_used`: the seconds of media made; "
        "the backend captures the cost pro rata of them against the length reserved.",
    )
    error: CallbackError | None = None
    usage: JobUsage | None = Field(
        None, description="With `completed` or `failed`: what the attempt consumed."
    )

    @model_validator(mode="after")
    def _usage_when_finished(self) -> JobCallback:
        if self.usage is not None and self.type not in ("completed", "failed"):
            raise ValueError("usage goes with a completed or failed report")
        return self


class ProviderQuery(BaseModel):
    """?provider=… on job-callback: whose webhook this is (other query keys are the
    provider's own, e.g. a RunPod token)."""

    model_config = ConfigDict(defer_build=True)

    provider: Literal["fal", "replicate", "runway", "runpod"] | None = Field(
        None, description="Set in the callback URL given to an external provider."
    )


class RegisterWorker(Strict):
    """A worker announces itself (signed)."""

    action: Literal["register"]
    name: NonBlank = Field(max_length=100)
    url: str | None = Field(None, pattern=r"^https?://", max_length=500)
    health_url: str | None = Field(None, pattern=r"^https?://", max_length=500)
    models: list[ModelId] = Field(min_length=1, max_length=50)
    capacity: int = Field(1, ge=1, le=1000)
    mode: Literal["push", "pull"] = "push"
    metadata: dict[str, Any] = Field(default_factory=dict)


class Heartbeat(Strict):
    """A worker is alive (signed); extends its leases."""

    action: Literal["heartbeat"]
    worker_id: UUID
    status: Literal["online", "draining"] = "online"


class ClaimJobs(Strict):
    """A pull worker claims jobs with a lease (signed)."""

    action: Literal["claim"]
    worker_id: UUID
    limit: int = Field(1, ge=1, le=50)


# Answers ----------------------------------------------------------------------------------


class Worker(Open):
    """A registered worker."""

    id: UUID
    name: str
    url: str | None
    health_url: str | None
    models: list[str]
    capacity: int
    mode: Literal["push", "pull"]
    status: Literal["online", "unhealthy", "offline", "draining"]
    metadata: dict[str, Any]


class HeldJob(Fixed):
    """A job attempt a worker still owns."""

    job_id: UUID
    attempt: int


class HeartbeatResult(Open):
    """The worker, and the jobs that are still its own (leases extended)."""

    worker: Worker
    jobs: list[HeldJob]
    render_speeds: list[RenderSpeedFigure] = Field(
        default_factory=list,
        description="The fleet's render speed of the last 24 h per frame size, frame rate "
        "and sections at once: the worker starts its progress estimate of a kind it has "
        "not rendered yet from it.",
    )


class LeasedJob(Fixed):
    """A job a claim just dispatched: what its worker runs the attempt with."""

    id: UUID
    attempt: int = Field(ge=1)
    user_id: UUID
    model_id: str
    job_type: str
    params: dict[str, Any]
    cost: int = Field(ge=0)
    lease_expires_at: datetime | None


class WorkerJob(Fixed):
    """One attempt of one job as a worker receives it, pushed or claimed (one model for the
    backend and the reference worker; docs/worker-protocol.md)."""

    job_id: UUID
    attempt: int = Field(ge=1)
    user_id: UUID
    model: str
    job_type: str
    params: dict[str, Any]
    cost: int = Field(ge=0)
    lease_expires_at: datetime | None
    callback_url: str

    @classmethod
    def of(cls, job: Job | LeasedJob, callback_url: str) -> WorkerJob:
        """The payload for a job (dispatched: its attempt is at least 1)."""
        return cls(
            job_id=job.id,
            attempt=job.attempt,
            user_id=job.user_id,
            model=job.model_id,
            job_type=job.job_type,
            params=job.params,
            cost=job.cost,
            lease_expires_at=job.lease_expires_at,
            callback_url=callback_url,
        )


class WorkerJobList(Root[list[WorkerJob]]):
    """The jobs a pull worker's claim leased, each as a push would have sent it."""


class WorkerAnswer(Root[SweepSummary | HeartbeatResult | WorkerJobList]):
    """The sweep's summary, a heartbeat's answer, or the jobs a claim leased."""


class WorkerList(Root[list[Worker]]):
    """Every registered worker, by name."""


class Assignment(Fixed):
    """A job dispatched to a push worker: what to send, and where."""

    job: Job
    worker: Worker


class WorkerRef(Fixed):
    """The worker that was running a canceled job, to be told."""

    worker_id: UUID
    url: str | None


class Cancellation(Fixed):
    """A canceled job and who was running it (told after the commit); ``clips``: the same
    for its section clips that ended with it (private.job_cancellation)."""

    job: Job
    notify: WorkerRef | None = None
    provider: str | None = None
    provider_job_id: str | None = None
    clips: list[Cancellation] = []
