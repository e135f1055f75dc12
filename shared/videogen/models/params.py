"""A job's params as its job type takes them: one model per type, read as attributes.

The request body takes the bag (:class:`~videogen.models.jobs.JobParams`: every field
any type takes) because the job's type is known only in the database, from the model it
names; ``private.job_type_params`` (sql/schema/03_jobs.sql) then refuses the keys the type
does not take. Once the job exists its params are read through the model of its type —
:func:`params_for` — never as a dict. Each model has exactly the keys the database lists
for its type (tests/unit/test_job_params.py compares them), with the bag's bounds and
descriptions (its fields are copied from the bag's, not written twice).

Stored params also hold what ``private.normalize_params`` adds to every job — ``duration``,
``aspect_ratio`` and ``resolution`` — even for a type that does not take them (a narration
has no frame): :func:`params_for` leaves those out for such a type; any other key a type
does not take is refused.

A file a type takes (``image_path``, compose ``images``, ``music_path``, elements' ``path``)
has the bag's type, an upload or a URL; a stored job always holds the upload: a URL is
fetched and replaced by its stored path before the job exists
(:func:`videogen.services.uploads.fetch_urls`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from videogen.errors import ValidationFailed
from videogen.media.captions import CaptionStyle
from videogen.media.forms import ExportFormat, Poster
from videogen.media.script import Script
from videogen.media.timeline import Transition
from videogen.models.common import MediaSource, NonBlank, StoragePath, Strict
from videogen.models.elements import Element, check_elements
from videogen.models.jobs import (
    AspectRatio,
    FrameSize,
    JobParams,
    Language,
    Resolution,
    SectionTiming,
)

# What private.normalize_params adds to every job's params, whatever its type takes.
NORMALISED = ("duration", "aspect_ratio", "resolution")
COMPOSE_FPS = (24, 25, 30, 60)  # the film, PAL, NTSC-ish and smooth rates a video is made at


def _same(name: str) -> Any:
    """The bag's field ``name`` (bounds, description, examples), for a type's model."""
    return copy.copy(JobParams.model_fields[name])


_TOPIC = Field(
    None,
    max_length=2000,
    description="What the video or script is about, as `prompt` (which it goes before). "
    "Taken by the database, not by the request body.",
)


class TypedParamsBase(Strict):
    """The params of one job type; ``job_type`` names it."""

    job_type: ClassVar[str]

    @classmethod
    def stored(cls, params: Mapping[str, Any]) -> Self:
        """A job's stored params (as ``private.normalize_params`` left them), read as this
        type's; a 422 ``INVALID_PARAMS`` naming each field that does not fit."""
        data = {k: v for k, v in params.items() if k in cls.model_fields or k not in NORMALISED}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            details = [
                {
                    "field": ".".join(str(p) for p in ("params", *e["loc"])),
                    "message": e["msg"],
                    "type": e["type"],
                }
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise ValidationFailed(
                f"The job's params do not fit its type ({cls.job_type}).",
                code="INVALID_PARAMS",
                details=details,
            ) from exc


class _VideoParams(TypedParamsBase):
    """What a text- or image-to-video job takes (a provider's or the reference clip)."""

    prompt: NonBlank | None = _same("prompt")
    original_prompt: NonBlank | None = _same("original_prompt")
    negative_prompt: NonBlank | None = _same("negative_prompt")
    duration: int | None = _same("duration")
    aspect_ratio: AspectRatio | None = _same("aspect_ratio")
    resolution: Resolution | None = _same("resolution")
    seed: int | None = _same("seed")
    fps: int | None = _same("fps")


class TextToVideoParams(_VideoParams):
    """A ``text_to_video`` job's params."""

    job_type: ClassVar[str] = "text_to_video"


class ImageToVideoParams(_VideoParams):
    """An ``image_to_video`` job's params: a text-to-video's and the still to start from."""

    job_type: ClassVar[str] = "image_to_video"

    image_path: MediaSource | None = _same("image_path")


VideoParams = TextToVideoParams | ImageToVideoParams


class _PictureParams(TypedParamsBase):
    """What a still picture takes: a prompt, its frame (ratio and resolution give the size,
    as a video's) and a seed; the same prompt and seed make the same picture."""

    prompt: NonBlank | None = _same("prompt")
    original_prompt: NonBlank | None = _same("original_prompt")
    negative_prompt: NonBlank | None = _same("negative_prompt")
    aspect_ratio: AspectRatio | None = _same("aspect_ratio")
    resolution: Resolution | None = _same("resolution")
    seed: int | None = _same("seed")


class TextToImageParams(_PictureParams):
    """A ``text_to_image`` job's params."""

    job_type: ClassVar[str] = "text_to_image"


class ImageToImageParams(_PictureParams):
    """An ``image_to_image`` job's params: a text-to-image's, the picture to start from and
    how much of it may change."""

    job_type: ClassVar[str] = "image_to_image"

    image_path: MediaSource | None = _same("image_path")
    strength: float | None = _same("strength")


PictureParams = TextToImageParams | ImageToImageParams


class SectionClip(Strict):
    """A compose job's section clip as stored: the request's, the job made for it
    (``job_id``) and, once it has finished, its ``status`` and ``video_path`` (in the
    ``videos`` bucket) — set by the database (private.section_clip_finished)."""

    model: NonBlank
    prompt: NonBlank
    image_path: StoragePath | None = None
    duration: int | None = None
    job_id: str | None = None
    status: Literal["completed", "failed", "canceled"] | None = None
    video_path: StoragePath | None = None
    error_code: str | None = None


class ComposeParams(TypedParamsBase):
    """A ``compose`` job's params: a topic or script narrated over pictures, or a timeline of
    elements (:mod:`videogen.rendering.composition`)."""

    job_type: ClassVar[str] = "compose"

    prompt: NonBlank | None = _same("prompt")
    original_prompt: NonBlank | None = _same("original_prompt")
    topic: NonBlank | None = copy.copy(_TOPIC)
    script: Script | None = _same("script")
    sections: int | None = _same("sections")
    voice: NonBlank | None = _same("voice")
    language: Language | None = _same("language")
    speaking_rate: float | None = _same("speaking_rate")
    images: list[MediaSource | None] | None = _same("images")
    music_path: MediaSource | None = _same("music_path")
    narration_paths: list[StoragePath] | None = _same("narration_paths")
    captions: StrictBool | None = _same("captions")
    caption_style: CaptionStyle | None = _same("caption_style")
    formats: list[ExportFormat] | None = _same("formats")
    poster: Poster | None = _same("poster")
    size: FrameSize | None = _same("size")
    transition: Transition | None = _same("transition")
    elements: list[Element] | None = _same("elements")
    section_clips: list[SectionClip | None] | None = None
    duration: int | None = _same("duration")
    aspect_ratio: AspectRatio | None = _same("aspect_ratio")
    resolution: Resolution | None = _same("resolution")
    fps: int | None = _same("fps")

    @model_validator(mode="wrap")
    @classmethod
    def _check_elements(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Any:
        """A timeline's problems, as the request body finds them."""
        return check_elements(cls.__name__, data, handler)

    @field_validator("fps")
    @classmethod
    def _film_rates(cls, value: int | None) -> int | None:
        if value is not None and value not in COMPOSE_FPS:
            raise ValueError(f"a composed video runs at {', '.join(map(str, COMPOSE_FPS))} fps")
        return value


class NarrationParams(TypedParamsBase):
    """A ``narration`` step's params: a script (or prompt text) read aloud."""

    job_type: ClassVar[str] = "narration"

    prompt: NonBlank | None = _same("prompt")
    original_prompt: NonBlank | None = _same("original_prompt")
    script: Script | None = _same("script")
    voice: NonBlank | None = _same("voice")
    language: Language | None = _same("language")
    speaking_rate: float | None = _same("speaking_rate")
    duration: int | None = _same("duration")
    fps: int | None = _same("fps")


class ScriptParams(TypedParamsBase):
    """A ``script`` step's params: a script written for a topic, or one improved."""

    job_type: ClassVar[str] = "script"

    prompt: NonBlank | None = _same("prompt")
    original_prompt: NonBlank | None = _same("original_prompt")
    topic: NonBlank | None = copy.copy(_TOPIC)
    script: Script | None = _same("script")
    instruction: NonBlank | None = _same("instruction")
    sections: int | None = _same("sections")
    language: Language | None = _same("language")
    duration: int | None = _same("duration")


class ImagesParams(TypedParamsBase):
    """An ``images`` step's params: a picture per section of a script."""

    job_type: ClassVar[str] = "images"

    prompt: NonBlank | None = _same("prompt")
    original_prompt: NonBlank | None = _same("original_prompt")
    script: Script | None = _same("script")
    source: Literal["card", "stock", "clip", "mixed"] | None = _same("source")
    timings: list[SectionTiming] | None = _same("timings")
    speaking_rate: float | None = _same("speaking_rate")
    duration: int | None = _same("duration")
    aspect_ratio: AspectRatio | None = _same("aspect_ratio")
    resolution: Resolution | None = _same("resolution")


TypedParams = (
    TextToVideoParams
    | ImageToVideoParams
    | TextToImageParams
    | ImageToImageParams
    | ComposeParams
    | NarrationParams
    | ScriptParams
    | ImagesParams
)
PARAMS_MODELS: dict[str, type[TypedParams]] = {
    m.job_type: m
    for m in (
        TextToVideoParams,
        ImageToVideoParams,
        TextToImageParams,
        ImageToImageParams,
        ComposeParams,
        NarrationParams,
        ScriptParams,
        ImagesParams,
    )
}


def params_for(job_type: str, params: Mapping[str, Any]) -> TypedParams:
    """A job's stored params read as its type's model (:meth:`TypedParamsBase.stored`)."""
    model = PARAMS_MODELS.get(job_type)
    if model is None:
        raise ValidationFailed(f"No params model for job type {job_type!r}.", code="INVALID_PARAMS")
    return model.stored(params)
