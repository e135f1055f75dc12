"""Element compositions: a compose job that gives its timeline itself (video, image, audio
and text elements placed in time, on the frame and by layer), and the checks across elements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from videogen.models.common import MediaSource, NonBlank, Strict

M = TypeVar("M", bound=BaseModel)


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
    "caption_style",
    "transition",
)
Seconds = Annotated[float, Field(ge=0, le=MAX_TIMELINE_S, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Colour = Annotated[
    str, StringConstraints(pattern=r"^(#[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$", max_length=20)
]


_SOURCE = (
    "An upload of yours, `<user id>/<file>`, or an https URL of a public file: fetched once, "
    "checked like an upload and stored in your uploads before any credit moves."
)


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
    path: MediaSource = Field(description=_SOURCE)
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
    path: MediaSource = Field(description=_SOURCE)
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
        # A URL's file is known by its content once fetched (its name may say nothing).
        is_url = isinstance(el, VideoElement | ImageElement | AudioElement) and "://" in el.path
        if isinstance(el, VideoElement | ImageElement | AudioElement) and not is_url:
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
