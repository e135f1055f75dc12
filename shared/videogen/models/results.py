"""What the functions answer, as pydantic models: the ``data`` of each success envelope and
the error envelope. ``openapi.yaml`` is generated from these (and the request models in
:mod:`videogen.models.requests`); the schemathesis suite checks real answers against them.

The shapes are the procedures' JSON (sql/schema: ``private.job_json``, ``job_events`` rows,
``credit_ledger`` rows…), and the db face (:mod:`videogen.db`) returns these models: the same
``Job`` travels from the SQL API through the services to the answer. The last section
holds what only the services see (assignments, cancellations, sweep counts). Models stay
open (``extra="allow"``): a procedure may add a field without breaking a client, and
clients must ignore fields they do not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, RootModel

from videogen.media.script import ScriptAnalysis
from videogen.models.requests import JobStatus

LedgerKind = Literal[
    "initial_grant",
    "grant",
    "purchase",
    "adjust",
    "reserve",
    "capture",
    "release",
    "clawback",
    "debt_settle",
    "merge_out",
    "merge_in",
]


class Fixed(BaseModel):
    """A shape that does not gain fields. Built on first use, as :class:`Open`."""

    model_config = ConfigDict(defer_build=True)


class Open(BaseModel):
    """A shape that may gain fields: unknown ones are kept, not refused. Built on first
    use (``defer_build``): a function pays only for the answers it gives, at cold start."""

    model_config = ConfigDict(extra="allow", defer_build=True)


T = TypeVar("T")


class Root(RootModel[T]):
    """A bare value (a list, or one shape of several), built on first use as :class:`Fixed`.
    Parametrizing ``RootModel`` itself would build the schema of what it holds at import."""

    model_config = ConfigDict(defer_build=True)


# Errors ---------------------------------------------------------------------------------


class ErrorDetail(Open):
    """One problem: a field path for validation errors, else a message."""

    field: str | None = None
    message: str | None = None
    type: str | None = None


class Error(Open):
    """What went wrong, with a stable code and what to do about it."""

    code: str = Field(description="Stable, machine-readable.")
    message: str
    details: list[ErrorDetail | dict[str, Any]] | None = Field(
        None, description="Field problems, or data such as a 402's {required, balance}."
    )
    hint: str | None = Field(None, description="What to do about it.")


class ErrorEnvelope(Fixed):
    """Every error, whatever the status."""

    success: Literal[False]
    error: Error


# Jobs -----------------------------------------------------------------------------------


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


class Page(Open):
    """Where a page of a list stands: its number, size, the total and whether more follow."""

    page: int = Field(ge=1)
    limit: int = Field(ge=1)
    total: int = Field(ge=0)
    has_next: bool

    @classmethod
    def of(cls, items: list[Any], total: int, page: int, limit: int) -> Self:
        """Page ``page`` (of ``limit``) of ``total`` items, holding ``items``."""
        return cls.model_validate(
            {
                "items": items,
                "page": page,
                "limit": limit,
                "total": total,
                "has_next": page * limit < total,
            }
        )


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


class Model(Open):
    """A model of the catalogue: what it makes, its limits and its price rule."""

    id: str
    name: str
    description: str
    provider: str
    job_type: str
    credits_base: int
    credits_per_second: int
    min_duration_s: int
    max_duration_s: int
    default_duration_s: int
    aspect_ratios: list[str]
    resolutions: list[str]
    requires_image: bool
    resolution_factors: dict[str, float] = Field(
        default_factory=dict, description="Price multiplier per resolution."
    )
    category: str = Field("video", description="How a frontend groups it.")
    featured: bool = False
    thumbnail_url: str | None = None
    typical_run_seconds: int = Field(
        60, description="A run's length before history says (estimates)."
    )


class ModelList(Root[list[Model]]):
    """The available models."""


class Voice(Open):
    """A narration voice: ``<engine>:<name>``; a job's ``voice`` param takes the name."""

    id: str
    engine: Literal["espeak", "google"]
    language: str
    name: str
    gender: Literal["female", "male", "neutral"] | None
    description: str


class VoiceList(Root[list[Voice]]):
    """The available voices."""


class QuoteItem(Open):
    """What one request would cost and when it would be done, had it been made now."""

    model: str
    job_type: str
    params: dict[str, Any] = Field(description="The params as a job would store them.")
    cost: int = Field(ge=0)
    queue_ahead: int = Field(ge=0, le=100, description="Jobs queued before it (exact to 100).")
    estimated_seconds_left: int = Field(ge=1)
    estimated_completion_at: datetime
    sync: bool | None = Field(
        None, description="Composed videos: generate-video would answer it at once (200)."
    )
    estimated_render_seconds: float | None = Field(None, description="Composed videos.")


class Quote(Open):
    """A quote: no job made, no credit moved."""

    items: list[QuoteItem]
    total: int = Field(ge=0)
    balance: int | None
    reserved: int | None
    affordable: bool | None = Field(description="The balance covers the total (signed in).")


# Projects and batches -----------------------------------------------------------------------


class ProjectRow(Open):
    """A user's folder of generations."""

    id: UUID
    user_id: UUID
    title: str
    description: str
    created_at: datetime
    updated_at: datetime


class Project(ProjectRow):
    """A project with how many of its jobs are in each status."""

    jobs: dict[str, int] = Field(description="Jobs per status.")


class ProjectPage(Page):
    """A page of the caller's projects, newest first."""

    items: list[Project]


class ProjectOrPage(Root[Project | ProjectPage]):
    """GET ?id= → the project; otherwise a page of projects."""


class ProjectDeleted(Open):
    """A deleted project: its jobs stay, ungrouped, with their ledger."""

    project: ProjectRow
    jobs_ungrouped: int = Field(ge=0)


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


class Profile(Open):
    """The caller's own profile: preferences (theirs to change), tier and credits."""

    id: UUID
    display_name: str | None
    language: str
    theme: Literal["light", "dark", "system"]
    tier: str
    balance: int = Field(ge=0)
    reserved: int = Field(ge=0)
    debt: int = Field(0, ge=0, description="Credits owed after a refund.")
    concurrent_job_limit: int
    initial_grant_claimed: bool
    created_at: datetime
    updated_at: datetime


# Credits --------------------------------------------------------------------------------


class LedgerEntry(Open):
    """One append-only row of the ledger."""

    id: int
    kind: LedgerKind
    amount: int = Field(description="Change of the balance.")
    hold: int = Field(description="Change of the reserved credits.")
    debt: int = Field(0, description="Change of the debt (clawback, debt_settle).")
    balance_after: int
    reserved_after: int
    job_id: UUID | None
    external_id: str | None
    description: str
    created_at: datetime


class LedgerPage(Page):
    """A page of the ledger, newest first."""

    items: list[LedgerEntry]


class CreditsOverview(Open):
    """The caller's balance, reserved credits and one page of the ledger."""

    balance: int = Field(ge=0)
    reserved: int = Field(ge=0)
    debt: int = Field(
        0, ge=0, description="Credits owed after a refund; no new jobs while positive."
    )
    initial_grant_claimed: bool
    ledger: LedgerPage


class Purchase(Open):
    """A credited store purchase, as refunds are matched against it."""

    id: int
    store: Literal["stripe", "app_store"]
    transaction_id: str
    payment_ref: str | None
    product_id: str | None
    credits: int
    amount_minor: int | None = Field(description="What was paid, in minor units.")
    currency: str | None
    clawed_back: int = Field(description="Credits taken back by refunds and disputes so far.")
    created_at: datetime


class Reversal(Open):
    """A refund or dispute of a purchase, applied once per the store's id for it."""

    id: int
    kind: Literal["refund", "dispute"]
    reversal_id: str
    amount_minor: int | None
    share_per_100000: int | None
    credits: int = Field(description="Credits clawed back for it.")
    from_balance: int
    to_debt: int
    created_at: datetime


class Merge(Open):
    """An anonymous user's credits moved to a permanent account."""

    anonymous_id: UUID
    account_id: UUID
    credits: int
    merged_at: datetime


class CreditResult(Open):
    """A repeated grant, transaction, Stripe session, refund or merge answers applied=false.

    Purchases, refunds and merges also answer the account's credits after them (`balance`,
    `reserved`, `debt`) and, where a debt was paid off first, `debt_settled`. A merge moves
    what the guest bought; `free_credits_kept` is what stayed with the guest.
    """

    applied: bool
    entry: LedgerEntry | None = None
    reason: str | None = None
    purchase: Purchase | None = None
    reversal: Reversal | None = None
    merge: Merge | None = None
    balance: int | None = None
    reserved: int | None = None
    debt: int | None = None
    debt_settled: int | None = None
    # A merge: the guest's free credits that stayed with the guest (free credits never move).
    free_credits_kept: int | None = None


# Workers --------------------------------------------------------------------------------


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


class MoneyAuditSummary(Fixed):
    """What the sweep's money audit found (details: `videogen audit`, or the server log)."""

    differences: int = Field(ge=0, description="Rows of public.audit_money(); 0 = healthy.")


class SweepSummary(Open):
    """What one health sweep did."""

    workers: dict[str, Any]
    leases: LeaseSweep
    reconciled: int
    runpod_endpoints: list[dict[str, Any]] = Field(
        description="GET /health of each RunPod endpoint (RUNPOD_API_KEY set)."
    )
    dispatched: int
    retention: RetentionSweep
    cleanup: Cleanup
    money_audit: MoneyAuditSummary


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


# Prompts and the admin view (sql/schema/17_prompts_admin.sql) ------------------------------


class PromptTemplate(Open):
    """One version of a job type's prompt template."""

    id: UUID
    job_type: str
    version: int = Field(ge=1)
    instruction: str = Field(description="What an OpenAI-compatible engine is told.")
    hints: dict[str, Any] = Field(
        description="The offline engine's rules: `{cues: [{kind, text, skip_if}], max_chars}`."
    )
    note: str
    active: bool
    updated_by: UUID | None
    created_at: datetime
    updated_at: datetime


class PromptTemplateList(Root[list[PromptTemplate]]):
    """Every version, by job type, newest first."""


class Enhancement(Open):
    """An improved prompt, for you to use or not: create the job with `params.prompt` =
    `enhanced` and `params.original_prompt` = `original` to keep both."""

    original: str
    enhanced: str
    template_id: UUID
    template_version: int
    job_type: str
    engine: Literal["offline", "openai"]


class ProviderKey(Open):
    """One of your provider keys as it may be shown: never the key, only its last four
    characters and when it was stored and last rotated."""

    provider: Literal["openai", "fal", "replicate", "runway"]
    last4: str
    created_at: datetime
    rotated_at: datetime | None = None


class ProviderKeyList(Fixed):
    """Which providers you have a key for."""

    keys: list[ProviderKey]


class ProviderKeyDeleted(Open):
    """A key forgotten: its encrypted value is gone too."""

    provider: str
    deleted: bool


class AdminJobPage(Page):
    """A page of everyone's jobs, newest first (removed ones too: see `deleted_at`)."""

    items: list[Job]


class WorkerList(Root[list[Worker]]):
    """Every registered worker, by name."""


class AdminJobResult(Open):
    """A job an admin requeued or failed, and whether whoever ran it was told to stop."""

    action: Literal["requeue", "fail"]
    job: Job
    worker_notified: bool


# What only the services see -------------------------------------------------------------


class Assignment(Fixed):
    """A job dispatched to a push worker: what to send, and where."""

    job: Job
    worker: Worker


class WorkerRef(Fixed):
    """The worker that was running a canceled job, to be told."""

    worker_id: UUID
    url: str | None


class Cancellation(Fixed):
    """A canceled job and who was running it (told after the commit)."""

    job: Job
    notify: WorkerRef | None = None
    provider: str | None = None
    provider_job_id: str | None = None


class ProviderJobRow(Open):
    """A job as a provider's webhook finds it: the row, without the computed fields."""

    id: UUID
    user_id: UUID
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


class ProviderModel(Fixed):
    """A provider's model: our id, the provider's id, whether it is offered."""

    id: str
    provider_model_id: str | None
    is_available: bool


class DueOutput(Fixed):
    """A job whose files are due for removal."""

    id: UUID
    video_path: str | None
    thumbnail_path: str | None


class RetentionSweep(Fixed):
    """Files the sweep removed: outputs (their jobs marked) and old uploads."""

    outputs_expired: int
    uploads_removed: int


class LeaseSweep(Fixed):
    """Expired leases: jobs back in the queue, and jobs failed out of attempts."""

    requeued: int
    failed: int


class Cleanup(Fixed):
    """Expired idempotency keys and old webhook receipts dropped."""

    idempotency_keys: int
    webhook_receipts: int


# Health and operations -------------------------------------------------------------------


class Liveness(Fixed):
    """The process answers (nothing else is checked)."""

    status: Literal["ok"] = "ok"


class ReadinessChecks(Fixed):
    """One boolean per dependency."""

    database: bool = Field(description="One cheap query answered within its timeout.")
    storage: bool = Field(description="The configured storage backend is reachable/writable.")
    workers: bool = Field(
        description="A healthy worker, or a configured provider with models, can serve jobs."
    )


class ReadinessAnswer(Fixed):
    """Ready: every check passed (a 503 NOT_READY carries the same checks in `details`)."""

    status: Literal["ready"] = "ready"
    checks: ReadinessChecks


class Readiness(Fixed):
    """What can serve jobs, as the database sees it (public.ops_readiness)."""

    healthy_workers: int = Field(ge=0)
    providers: list[str]


class MoneyDifference(Fixed):
    """One row of the money audit: where the books disagree with themselves."""

    check_name: str
    user_id: UUID | None
    job_id: UUID | None
    expected: int | None
    actual: int | None
    detail: str


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ErrorEnvelope,
    JobOrPage,
    Job,
    CancelResult,
    CancelOrRemoved,
    JobChange,
    ModelList,
    VoiceList,
    Quote,
    ScriptAnalysis,
    ProjectOrPage,
    Project,
    ProjectDeleted,
    BatchOrPage,
    Batch,
    BatchCanceled,
    Profile,
    CreditsOverview,
    CreditResult,
    Worker,
    WorkerAnswer,
    Liveness,
    ReadinessAnswer,
    Enhancement,
    ProviderKey,
    ProviderKeyList,
    ProviderKeyDeleted,
    PromptTemplate,
    PromptTemplateList,
    AdminJobPage,
    WorkerList,
    AdminJobResult,
)
