"""Request bodies and query strings of the five functions (pydantic); openapi.yaml is
generated from these, so they are the contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from videogen.errors import ValidationFailed
from videogen.media.script import Script

# Postgres integer / bigint bounds: a larger number would be a server error, not a 422.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
M = TypeVar("M", bound=BaseModel)

AspectRatio = Literal["16:9", "9:16", "1:1"]
Resolution = Literal["480p", "720p", "1080p"]
JobStatus = Literal["queued", "dispatched", "processing", "completed", "failed", "canceled"]
JobType = Literal["text_to_video", "image_to_video", "compose", "narration", "script"]
ModelId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]{1,79}$")]
# Text that must say something: surrounding whitespace stripped, then non-empty.
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


StoragePath = Annotated[
    str, StringConstraints(pattern=r"^[0-9a-f-]{36}/[A-Za-z0-9._/-]{1,200}$", max_length=240)
]


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped. Built on first use
    (``defer_build``): a function pays only for the requests it parses, at cold start."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


Language = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=16)]


class SectionTiming(Strict):
    """Where a section sits in the video (a narration step's ``sections``)."""

    model_config = ConfigDict(extra="ignore")  # a narration section carries more: take it whole
    start_s: float = Field(ge=0, le=86_400)
    duration_s: float = Field(gt=0, le=86_400)


# Element compositions: a compose job that gives its timeline itself -------------------------

MAX_ELEMENTS = 10
MAX_TIMELINE_S = 600  # the longest compose model's maximum; the database checks the model's
ELEMENT_EXTENSIONS = {
    "video": (".mp4", ".mov", ".avi", ".webm"),
    "image": (".png", ".jpg", ".jpeg", ".webp"),
    "audio": (".mp3", ".m4a", ".wav", ".ogg"),
}
# Compose params that describe the generated pipeline (script → narration → images): they
# mean nothing to a composition of elements, so giving both is a mistake worth a 422.
GENERATED_ONLY = (
    "script",
    "sections",
    "voice",
    "speaking_rate",
    "images",
    "music_path",
    "narration_paths",
    "captions",
)
Seconds = Annotated[float, Field(ge=0, le=MAX_TIMELINE_S, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Colour = Annotated[
    str, StringConstraints(pattern=r"^(#[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$", max_length=20)
]


class Position(Strict):
    """Where an element's top-left corner sits, as fractions of the frame: x of its width
    from the left edge, y of its height from the top (0, 0 is the top-left corner)."""

    x: Fraction = 0.0
    y: Fraction = 0.0


class ElementTransition(Strict):
    """One end of an element. ``fade``: through transparency (what lies beneath shows
    through; audio fades its volume); ``fadeblack`` / ``fadewhite``: through a colour
    (images and videos only); ``crossfade`` (in only; images and videos on the same layer,
    and audio): the element fades in over the one it overlaps, which must be on screen
    throughout the fade."""

    kind: Literal["fade", "fadeblack", "fadewhite", "crossfade"] = "fade"
    duration: float = Field(0.5, gt=0, le=10, allow_inf_nan=False, description="Seconds.")


class ElementTransitions(Strict):
    """The element's way in and way out."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    in_: ElementTransition | None = Field(None, alias="in")
    out: ElementTransition | None = None


class _Element(Strict):
    start: Seconds = Field(description="When it starts, seconds from the video's start.")
    duration: float = Field(
        gt=0, le=MAX_TIMELINE_S, allow_inf_nan=False, description="How long it lasts, seconds."
    )
    transitions: ElementTransitions | None = None

    @property
    def end(self) -> float:
        """When the element stops, in seconds."""
        return self.start + self.duration


class _VisualElement(_Element):
    path: StoragePath = Field(description="An upload of yours: `<user id>/<file>`.")
    position: Position = Field(default_factory=Position)
    width: float | None = Field(
        None, gt=0, le=1, description="Fraction of the frame width (the height follows)."
    )
    height: float | None = Field(
        None, gt=0, le=1, description="Fraction of the frame height (the width follows)."
    )
    layer: int = Field(0, ge=0, le=100, description="Z-order: higher layers are drawn on top.")


class VideoElement(_VisualElement):
    """A video upload (mp4, mov, avi or webm) on the frame; its picture only. Without
    ``width`` and ``height`` it covers the frame; with both it covers that box. A file
    shorter than the element holds its last frame."""

    type: Literal["video"]
    trim_start: Seconds = Field(0.0, description="Seconds into the file to start from.")


class ImageElement(_VisualElement):
    """An image upload (png, jpeg or webp) on the frame, sized as a video element."""

    type: Literal["image"]


class AudioElement(_Element):
    """An audio upload (mp3, m4a, wav or ogg) mixed in at ``start``."""

    type: Literal["audio"]
    path: StoragePath = Field(description="An upload of yours: `<user id>/<file>`.")
    volume: float = Field(1.0, ge=0, le=4, allow_inf_nan=False)
    trim_start: Seconds = Field(0.0, description="Seconds into the file to start from.")


class TextElement(_Element):
    """Text burned into the picture, its top-left corner at ``position``; wrapped at the
    frame's right edge."""

    type: Literal["text"]
    text: NonBlank = Field(max_length=500)
    font_size: float = Field(
        0.06, ge=0.01, le=0.3, allow_inf_nan=False, description="Fraction of the frame height."
    )
    color: Colour = Field("white", description="`#rrggbb` or a colour name.")
    box: StrictBool = Field(False, description="A translucent dark box behind the text.")
    position: Position = Field(default_factory=lambda: Position(x=0.05, y=0.05))
    layer: int = Field(0, ge=0, le=100, description="Z-order: higher layers are drawn on top.")


Element = Annotated[
    VideoElement | ImageElement | AudioElement | TextElement, Field(discriminator="type")
]
_ELEMENT = TypeAdapter(Element, config=ConfigDict(defer_build=True))  # built on first use
_EPS = 1e-6


def _problem(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("element", "{message}", {"message": message}),
        loc=loc,
        input=value,
    )


def element_problems(raw: Any, data: dict[str, Any]) -> list[InitErrorDetails]:
    """Every problem of a timeline the element shapes alone cannot see: file kinds by name,
    transitions that do not fit or have nothing to cross, pictures on one layer at once, the
    total length, and generated-video params given alongside. Elements whose own shape is
    wrong are skipped (their shape errors say why)."""
    problems: list[InitErrorDetails] = []
    for name in GENERATED_ONLY:
        if data.get(name) is not None:
            problems.append(
                _problem((name,), "not used with elements: the timeline is given", data[name])
            )
    parsed: list[tuple[int, Any]] = []
    for i, item in enumerate(raw):
        try:
            parsed.append((i, _ELEMENT.validate_python(item)))
        except ValidationError:
            continue
    duration = data.get("duration")
    limit = float(duration) if isinstance(duration, int | float) else float(MAX_TIMELINE_S)
    what = f"the duration of {limit:g}s" if duration is not None else f"the {limit:g}s maximum"
    for i, el in parsed:
        at = ("elements", i)
        if isinstance(el, VideoElement | ImageElement | AudioElement):
            suffix = Path(el.path).suffix.lower()
            if suffix not in ELEMENT_EXTENSIONS[el.type]:
                allowed = ", ".join(e[1:] for e in ELEMENT_EXTENSIONS[el.type])
                problems.append(
                    _problem((*at, "path"), f"a {el.type} element takes {allowed} files", el.path)
                )
        if el.end > limit + _EPS:
            problems.append(
                _problem((*at, "duration"), f"ends at {el.end:g}s, after {what}", el.duration)
            )
        transitions = el.transitions
        if transitions is None:
            continue
        ends = [("in", transitions.in_), ("out", transitions.out)]
        total = sum(t.duration for _, t in ends if t is not None)
        if total > el.duration + _EPS:
            problems.append(
                _problem(
                    (*at, "transitions"),
                    f"transitions of {total:g}s do not fit in the element's {el.duration:g}s",
                    total,
                )
            )
        for side, t in ends:
            if t is None:
                continue
            here = (*at, "transitions", side, "kind")
            if t.kind == "crossfade" and side == "out":
                problems.append(
                    _problem(here, "a crossfade goes on the incoming element's `in`", t.kind)
                )
            elif t.kind in ("fadeblack", "fadewhite") and el.type in ("text", "audio"):
                problems.append(_problem(here, f"{el.type} elements fade with `fade`", t.kind))
            elif t.kind == "crossfade" and el.type == "text":
                problems.append(_problem(here, "text elements fade with `fade`", t.kind))
    visual = [(i, el) for i, el in parsed if isinstance(el, VideoElement | ImageElement)]
    for i, el in visual:
        cross = el.transitions.in_ if el.transitions is not None else None
        crossing = cross is not None and cross.kind == "crossfade"
        # Elements of this layer already on screen when it starts (they start earlier, or
        # at the same time and come first in the list).
        under = [
            (j, other)
            for j, other in visual
            if other.layer == el.layer
            and j != i
            and (other.start < el.start - _EPS or (abs(other.start - el.start) <= _EPS and j < i))
            and other.end > el.start + _EPS
        ]
        if crossing and cross is not None:
            if not any(o.end >= el.start + cross.duration - _EPS for _, o in under):
                problems.append(
                    _problem(
                        ("elements", i, "transitions", "in"),
                        f"nothing on layer {el.layer} to crossfade from: an image or video "
                        f"there must stay on screen until {el.start + cross.duration:g}s",
                        cross.duration,
                    )
                )
            continue
        for j, other in under:
            problems.append(
                _problem(
                    ("elements", i, "start"),
                    f"overlaps element {j} on layer {el.layer} ({other.start:g}-{other.end:g}s):"
                    " put it on another layer or crossfade into it",
                    el.start,
                )
            )
    return problems


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
    image_path: StoragePath | None = Field(
        None, description="An upload of yours in the `uploads` bucket: `<user id>/<file>`."
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
    images: list[StoragePath | None] | None = Field(
        None, max_length=12, description="One upload per section (null → a title card)."
    )
    music_path: StoragePath | None = None
    captions: StrictBool | None = None
    # The wizard's steps (videogen.rendering.steps): what one step made, fed to the next.
    instruction: NonBlank | None = Field(
        None, max_length=500, description="Script step: improve `script` as this says."
    )
    narration_paths: list[StoragePath] | None = Field(
        None, max_length=12, description="Compose: a narration step's files, one per section."
    )
    source: Literal["card", "stock"] | None = Field(
        None, description="Images step: title cards, or stock photos (STOCK_PHOTOS)."
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
            exclude={"model", "priority", "project_id", "max_credits"},
            exclude_none=True,
            by_alias=True,
        )


def check_elements(title: str, data: Any, handler: ModelWrapValidatorHandler[M]) -> M:
    """A wrap validator's body for params with ``elements`` (the bag, and the compose job's
    own model): every problem of a timeline at once, the shapes' and those across
    elements."""
    raw = data.get("elements") if isinstance(data, dict) else None
    try:
        model = handler(data)
    except ValidationError as exc:
        if not isinstance(raw, list):
            raise
        found = [_again(e) for e in exc.errors(include_url=False)]
        more = element_problems(raw, data) if len(raw) <= MAX_ELEMENTS else []
        raise ValidationError.from_exception_data(exc.title, [*found, *more]) from None
    if isinstance(raw, list):  # given, and of valid shapes: now across elements
        problems = element_problems(raw, data)
        if problems:
            raise ValidationError.from_exception_data(title, problems)
    return model


def _again(error: Any) -> InitErrorDetails:
    """A pydantic error as it can be raised once more, beside others."""
    message = str(error["msg"]).replace("{", "{{").replace("}", "}}")
    loc = tuple(error["loc"])
    # An element's errors are named by its index, not also by its type (the union's tag).
    if len(loc) > 2 and loc[0] == "elements" and loc[2] in ELEMENT_EXTENSIONS.keys() | {"text"}:
        loc = loc[:2] + loc[3:]
    return InitErrorDetails(
        type=PydanticCustomError(error["type"], message), loc=loc, input=error.get("input")
    )


class GenerateVideoRequest(JobParams):
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


class QueueJobRequest(Strict):
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


class BatchItem(Strict):
    """One job of a batch or a quote: a model and its params."""

    model: ModelId = Field(examples=["reference/text-to-video"])
    params: JobParams = Field(default_factory=JobParams, examples=[{"prompt": "A paper boat"}])
    priority: int = Field(0, ge=-100, le=100)

    def as_item(self) -> dict[str, Any]:
        """The item as the database takes it."""
        return {"model": self.model, "params": self.params.params(), "priority": self.priority}


class BatchRequest(Strict):
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


class QuoteRequest(Strict):
    """POST /queue-job/quote: what 1 to 20 requests would cost and when they would be done."""

    items: list[BatchItem] = Field(min_length=1, max_length=20)


class ListQuery(Strict):
    """GET ?id=… for one, or a page."""

    id: UUID | None = None
    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)


class BatchQuery(ListQuery):
    """GET /queue-job/batches: one batch (?id=) or a page, optionally of one project."""

    project_id: UUID | None = None


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
# A BCP 47-ish language tag, as profiles and voices store it: "en", "en-GB", "pt-BR".
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class ProjectRequest(Strict):
    """POST /queue-job/projects: a new project."""

    title: Title = Field(examples=["Launch trailer"])
    description: str = Field("", max_length=2000)


class ProjectChange(Strict):
    """PATCH /queue-job/projects?id=: a new title or description (at least one)."""

    title: Title | None = None
    description: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> ProjectChange:
        if self.title is None and self.description is None:
            raise ValueError("give a title or a description")
        return self


class VoiceQuery(Strict):
    """GET /queue-job/voices: optionally of one engine and language (a prefix: `en`)."""

    engine: Literal["espeak", "google"] | None = None
    language: LanguageTag | None = None


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


class JobIdQuery(Strict):
    """?id=<job id>."""

    id: UUID


class JobDeleteQuery(JobIdQuery):
    """DELETE ?id=<job id>[&action=remove]: cancel a running job (the default), or remove a
    finished one from your history."""

    action: Literal["cancel", "remove"] = "cancel"


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


KeyProvider = Literal["openai", "fal", "replicate", "runway"]
# Each provider's own key form (what its dashboard hands out); the database checks again.
PROVIDER_KEY_FORMS: dict[str, tuple[str, str]] = {
    "openai": (r"sk-[A-Za-z0-9_-]{16,253}", "sk-…"),
    "fal": (r"[A-Za-z0-9_-]{4,128}:[A-Za-z0-9_-]{16,256}", "<key id>:<key secret>"),
    "replicate": (r"(r8_)?[A-Za-z0-9]{20,200}", "r8_…"),
    "runway": (r"key_[A-Za-z0-9]{16,256}", "key_…"),
}


class ProviderKeyRequest(Strict):
    """PUT /update-credits/keys: store (or rotate) your own key for a provider. It is kept
    encrypted (Supabase Vault) and used only for your jobs; no answer ever contains it."""

    provider: KeyProvider
    key: SecretStr = Field(
        description="The provider's API key (openai sk-…, fal <key id>:<key secret>, "
        "replicate r8_…, runway key_…); surrounding whitespace is ignored.",
        json_schema_extra={"writeOnly": True},
    )

    @field_validator("key")
    @classmethod
    def _provider_form(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:

        provider = info.data.get("provider")
        text = value.get_secret_value().strip()
        if provider is None:
            return SecretStr(text)
        pattern, form = PROVIDER_KEY_FORMS[provider]
        if len(text) > 512 or not re.fullmatch(pattern, text):
            # Never the value itself: only what was expected.
            raise ValueError(f"not a {provider} key: expected the form {form}")
        return SecretStr(text)


class ProviderKeyQuery(Strict):
    """DELETE /update-credits/keys?provider=: forget your key for a provider."""

    provider: KeyProvider


class AdminJobQuery(Strict):
    """GET /queue-job/admin/jobs: a page of everyone's jobs (admins)."""

    status: JobStatus | None = None
    user_id: UUID | None = None
    model: ModelId | None = None
    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)


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


class CallbackError(Strict):
    """Why an attempt failed."""

    code: str = Field("WORKER_ERROR", max_length=64)
    message: str = Field("", max_length=2000)
    retryable: StrictBool = True


class WorkerOutput(Strict):
    """What a worker reports for a completed attempt: files it stored under the job owner's
    folder (``videos`` / ``thumbnails`` buckets) and their facts. Links are not accepted:
    the service signs them from the paths; the database checks the owner's folder."""

    video_path: StoragePath | None = Field(None, examples=["<user id>/<job id>.mp4"])
    thumbnail_path: StoragePath | None = Field(None, examples=["<user id>/<job id>.jpg"])
    duration_s: float | None = Field(None, ge=0, le=86_400)
    width: int | None = Field(None, ge=1, le=16_384)
    height: int | None = Field(None, ge=1, le=16_384)
    title: str | None = Field(None, max_length=200)
    script: Script | None = None
    fake: StrictBool | None = Field(None, description="A `--no-render` worker's stand-in result.")


USAGE_COUNT_MAX = 1_000_000_000
USAGE_SECONDS_MAX = 100_000_000
UsageName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


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


class ClaimInitialGrant(Strict):
    """The caller's one-time starting credits."""

    action: Literal["claim_initial_grant"]
    device_token: str | None = Field(
        None,
        min_length=1,
        max_length=8192,
        description="From the iOS app: DCDevice's token, checked with Apple's DeviceCheck "
        "so that one device takes one free grant.",
    )


class GrantCredits(Strict):
    """Service only: grant (positive) or adjust (either sign) a user's balance."""

    action: Literal["grant", "adjust"]
    user_id: UUID
    amount: int = Field(ge=-1_000_000, le=1_000_000)
    grant_id: NonBlank = Field(max_length=150, description="Idempotent by this id.")
    description: str = Field("", max_length=200)


class PurchaseCredits(Strict):
    """Service only: credit a store purchase verified elsewhere, once per transaction id."""

    action: Literal["purchase"]
    user_id: UUID
    transaction_id: NonBlank = Field(max_length=150)
    credits: int = Field(ge=1, le=10_000_000)
    description: str = Field("purchase", max_length=200)


class AppleTransaction(Strict):
    """A signed-in user's App Store purchase: StoreKit 2's signed transaction (JWS)."""

    action: Literal["apple_transaction"]
    signed_transaction: NonBlank = Field(
        max_length=16_384, description="`Transaction.jwsRepresentation` from StoreKit 2."
    )


class MergeAnonymous(Strict):
    """Move an anonymous (device) session's credits to the signed-in account, once."""

    action: Literal["merge_anonymous"]
    anonymous_token: NonBlank = Field(
        max_length=8_192, description="The access token of the anonymous session."
    )


class AppleNotification(Strict):
    """An App Store Server Notification V2, as Apple posts it."""

    signedPayload: NonBlank = Field(max_length=65_536)


class PageQuery(Strict):
    """?page=&limit= for ledger pages."""

    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)


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


class Sweep(Strict):
    """The scheduler's health sweep (service role or cron secret)."""

    action: Literal["sweep"] = "sweep"


# Reading and writing these shapes --------------------------------------------------------


def parse(model: type[BaseModel] | TypeAdapter[Any], data: Any) -> Any:
    """Validate data with a pydantic model; errors become 422 with one detail per field."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "body",
                "message": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed("The request is not valid.", details=details) from exc
