"""The catalogue and the caller: models, voices, quotes, script analysis and the profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from videogen.media.script import Script
from videogen.models.common import Fixed, LanguageTag, NonBlank, Open, Root, Strict
from videogen.models.jobs import BatchItem

# Requests ---------------------------------------------------------------------------------


class QuoteRequest(Strict):
    """POST /queue-job/quote: what 1 to 20 requests would cost and when they would be done."""

    items: list[BatchItem] = Field(min_length=1, max_length=20)


class ModelQuery(Strict):
    """GET /queue-job/models: optionally of one category (`text-to-image`, `image-to-video`…)."""

    category: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")] | None = None


class VoiceQuery(Strict):
    """GET /queue-job/voices: optionally of one engine and language (a prefix: `en`)."""

    engine: Literal["espeak", "google"] | None = None
    language: LanguageTag | None = None
    variants: bool = Field(
        False,
        description="With `language`: also every espeak-ng voice variant of each language "
        "(`en-us+Alicia`).",
    )


class ScriptAnalysisRequest(Strict):
    """POST /queue-job/script/analyze: a script's length and reading time (free, no job)."""

    script: Script
    speaking_rate: float = Field(1.0, ge=0.25, le=4.0)


class VoicePreviewRequest(Strict):
    """POST /queue-job/voices/preview: a few seconds of a voice (WAV), nothing stored."""

    voice: NonBlank | None = Field(None, max_length=100, examples=["en-gb"])
    language: LanguageTag = "en"
    text: NonBlank | None = Field(None, max_length=200)


class ProfileChange(Strict):
    """PATCH /update-credits/profile: your display name, language or theme."""

    display_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)] | None
    ) = None
    language: LanguageTag | None = None
    theme: Literal["light", "dark", "system"] | None = None


# Answers ----------------------------------------------------------------------------------


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
    variant: str | None = Field(None, description="An espeak-ng voice variant (`Alicia`).")


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


class ProviderModel(Fixed):
    """A provider's model: our id, the provider's id, whether it is offered."""

    id: str
    provider_model_id: str | None
    is_available: bool
