"""The admin view (everyone's jobs) and prompts: templates and enhancements
(sql/schema/17_prompts_admin.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StrictBool, StringConstraints, model_validator

from videogen.models.common import (
    JobStatus,
    JobType,
    LanguageTag,
    ModelId,
    NonBlank,
    Open,
    Page,
    Root,
    SortOrder,
    Strict,
    order_field,
)
from videogen.models.jobs import Job

# Requests ---------------------------------------------------------------------------------


class EnhanceRequest(Strict):
    """POST /queue-job/enhance: an improved prompt for a model's job type (or a job type),
    for you to use or not. Nothing is charged or created."""

    model: ModelId | None = Field(None, examples=["reference/text-to-video"])
    job_type: JobType | None = Field(None, description="Instead of (or checked against) a model.")
    prompt: NonBlank = Field(max_length=2000, examples=["a paper boat on a river"])
    language: LanguageTag | None = Field(None, description="The answer's language (openai).")

    @model_validator(mode="after")
    def _model_or_type(self) -> EnhanceRequest:
        if self.model is None and self.job_type is None:
            raise ValueError("give a model or a job_type")
        return self


class AdminJobQuery(Strict):
    """GET /queue-job/admin/jobs: a page of everyone's jobs (admins)."""

    status: JobStatus | None = None
    user_id: UUID | None = None
    model: ModelId | None = None
    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)
    sort: Literal["created", "updated", "status", "cost"] = Field(
        "created", description="The field to sort by (status: in lifecycle order)."
    )
    order: SortOrder = order_field()


class AdminJobAction(Strict):
    """POST /queue-job/admin/jobs: requeue a stuck job, or fail it (credits released)."""

    action: Literal["requeue", "fail"]
    id: UUID
    reason: NonBlank = Field(max_length=500, examples=["worker hung at 40 %"])


class TemplateQuery(Strict):
    """GET /queue-job/admin/templates: every version, optionally of one job type."""

    job_type: JobType | None = None


class PromptCue(Strict):
    """One cue the offline engine adds unless the prompt has one of its `skip_if` words."""

    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_-]{0,29}$")]
    text: NonBlank = Field(max_length=300)
    skip_if: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=30
    )


class PromptHints(Strict):
    """The offline engine's rules for a job type."""

    cues: list[PromptCue] = Field(default_factory=list, max_length=12)
    max_chars: int | None = Field(None, ge=100, le=2000, description="Bound of the result.")


class CreateTemplate(Strict):
    """Save a new version of a job type's template (active at once unless `activate` is
    false)."""

    action: Literal["create"]
    job_type: JobType
    instruction: NonBlank = Field(max_length=4000, description="The LLM's system prompt.")
    hints: PromptHints = Field(default_factory=PromptHints)
    note: str = Field("", max_length=500)
    activate: StrictBool = True


class ActivateTemplate(Strict):
    """Make a version its job type's active template (an older one: a rollback)."""

    action: Literal["activate"]
    id: UUID


# Answers ----------------------------------------------------------------------------------


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


class AdminJobPage(Page):
    """A page of everyone's jobs, newest first (removed ones too: see `deleted_at`)."""

    items: list[Job]


class AdminJobResult(Open):
    """A job an admin requeued or failed, and whether whoever ran it was told to stop."""

    action: Literal["requeue", "fail"]
    job: Job
    worker_notified: bool
