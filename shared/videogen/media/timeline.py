"""The render spec: an output preset plus tracks of image, video, text and audio clips.

Above the picture track, ``overlays`` place images, videos (:class:`Overlay`) and text
(:class:`PlacedText`) at a position on the frame, drawn in list order (bottom first), each
fading in and out on its own. A :class:`Timeline` is plain data (JSON in, JSON out) and is
checked before any work starts: structure on construction (pydantic), files with
:func:`check_assets`, both at once — with every problem listed — by
:func:`validate_timeline`.
"""

from __future__ import annotations

import difflib
import itertools
import re
import subprocess
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from videogen.media.captions import Captions
from videogen.media.errors import TimelineError

Aspect = Literal["16:9", "9:16", "1:1", "4:5"]
Quality = Literal["480p", "720p", "1080p"]

DEFAULT_MAX_DURATION_S = 600.0
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv"})
AUDIO_EXTS = frozenset({".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".flac"})
OVERLAY_EXTS = IMAGE_EXTS | VIDEO_EXTS | {".avi"}
# ffmpeg's xfade transitions by name (ffmpeg 5.1's list, less ``custom``, which needs an
# expression); tests/media/test_media_outputs.py checks each against the installed ffmpeg
# (:func:`installed_transitions`) and renders it.
XFADE_TRANSITIONS: tuple[str, ...] = (
    "fade", "fadeblack", "fadewhite", "fadegrays", "fadefast", "fadeslow", "dissolve",
    "distance", "pixelize", "radial", "hblur",
    "wipeleft", "wiperight", "wipeup", "wipedown", "wipetl", "wipetr", "wipebl", "wipebr",
    "slideleft", "slideright", "slideup", "slidedown",
    "smoothleft", "smoothright", "smoothup", "smoothdown",
    "circlecrop", "rectcrop", "circleopen", "circleclose",
    "vertopen", "vertclose", "horzopen", "horzclose",
    "diagtl", "diagtr", "diagbl", "diagbr",
    "hlslice", "hrslice", "vuslice", "vdslice",
    "squeezeh", "squeezev", "zoomin",
)  # fmt: skip
TRANSITIONS = XFADE_TRANSITIONS


@lru_cache(maxsize=1)
def installed_transitions(binary: str = "ffmpeg") -> frozenset[str]:
    """The transitions the installed ffmpeg's xfade offers (read once from its help)."""
    done = subprocess.run(
        [binary, "-hide_banner", "-h", "filter=xfade"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    names = re.findall(r"^\s{5,}(\w+)\s+-?\d+\s", done.stdout, re.MULTILINE)
    return frozenset(names) - {"custom"}


def _known_transition(name: str) -> str:
    if name not in XFADE_TRANSITIONS:
        close = difflib.get_close_matches(name, XFADE_TRANSITIONS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown transition {name!r}{hint} (xfade's names: docs/elements.md)")
    return name


TransitionKind = Annotated[
    str,
    AfterValidator(_known_transition),
    WithJsonSchema({"type": "string", "enum": list(XFADE_TRANSITIONS)}),
]
_EPS = 1e-6

_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080}


# The most pixels a custom frame may have: 1080p's, or 4K's where the tier allows it.
MAX_PIXELS_1080P = 1920 * 1080
MAX_PIXELS_4K = 3840 * 2160


def frame_size(aspect: Aspect, quality: Quality) -> tuple[int, int]:
    """Width and height in pixels; the long side is rounded to even for yuv420p."""
    short = _SHORT_SIDE[quality]
    if aspect == "1:1":
        return short, short
    if aspect == "4:5":
        return short, round(short * 5 / 4 / 2) * 2
    long = round(short * 16 / 9 / 2) * 2
    return (long, short) if aspect == "16:9" else (short, long)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class OutputPreset(_Spec):
    """Frame size, rate and encoder settings of the finished mp4."""

    aspect: Aspect = "16:9"
    quality: Quality = "720p"
    fps: int = Field(30, ge=1, le=60)
    crf: int = Field(23, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = "veryfast"
    audio_bitrate_k: int = Field(128, ge=32, le=320)
    loudness_lufs: float = Field(-16.0, ge=-40, le=-5)
    # A custom frame (even sides, at most MAX_PIXELS_4K) instead of aspect x quality.
    custom_size: tuple[int, int] | None = None

    @field_validator("custom_size")
    @classmethod
    def _even_and_bounded(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is None:
            return None
        w, h = value
        if w % 2 or h % 2 or min(w, h) < 64 or w * h > MAX_PIXELS_4K:
            raise ValueError(f"{w}x{h}: sides must be even, 64 px at least, 4K pixels at most")
        return value

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.custom_size or frame_size(self.aspect, self.quality)

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return self.size[0]

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self.size[1]


class _Clip(_Spec):
    start: float = Field(ge=0)
    duration: float = Field(gt=0)

    @property
    def end(self) -> float:
        """When the clip stops, in timeline seconds."""
        return self.start + self.duration


class _FileClip(_Clip):
    source: Path
    extensions: ClassVar[frozenset[str]] = frozenset()

    @field_validator("source")
    @classmethod
    def _supported_format(cls, value: Path) -> Path:
        exts = cls.extensions
        if value.suffix.lower() not in exts:
            raise ValueError(
                f"unsupported format {value.suffix or '(none)'!r} for {value.name!r}; "
                f"supported: {', '.join(sorted(exts))}"
            )
        return value


class ImageClip(_FileClip):
    """A still shown for ``duration`` seconds, optionally with a slow Ken Burns zoom."""

    kind: Literal["image"] = "image"
    extensions = IMAGE_EXTS
    ken_burns: bool = True
    zoom: float = Field(1.12, ge=1.0, le=2.0)  # final zoom of the Ken Burns move
    zoom_out: bool = False  # start zoomed in and pull back instead
    fit: Literal["cover", "contain"] = "cover"


class VideoClip(_FileClip):
    """A video file's picture from ``trim_start``; its last frame holds if it runs short."""

    kind: Literal["video"] = "video"
    extensions = VIDEO_EXTS
    trim_start: float = Field(0.0, ge=0)
    fit: Literal["cover", "contain"] = "cover"
    # A stock or generated clip shorter than its section repeats instead of holding its
    # last frame; ``source_duration`` (the file's length, probed) places a section rendered
    # on its own at the right point of the loop.
    loop: bool = False
    source_duration: float | None = Field(None, gt=0)


class TextClip(_Clip):
    """Text burned into the picture (captions, titles) while the clip is on."""

    kind: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=500)
    position: Literal["bottom", "center", "top"] = "bottom"
    size: float = Field(0.055, gt=0, le=0.2)  # font size as a fraction of the frame height
    color: str = Field("white", pattern=r"^(#[0-9a-fA-F]{6}|[a-zA-Z]+)(@[01](\.\d+)?)?$")
    box: bool = True  # a translucent box keeps captions legible over bright images


class AudioClip(_FileClip):
    """A sound file placed at ``start``; music is ducked under voice when both play."""

    kind: Literal["audio"] = "audio"
    extensions = AUDIO_EXTS
    role: Literal["voice", "music", "effect"] = "voice"
    trim_start: float = Field(0.0, ge=0)
    volume: float = Field(1.0, ge=0, le=4)
    loop: bool = False  # repeat a short music bed to fill the clip
    fade_in: float = Field(0.0, ge=0)
    fade_out: float = Field(0.0, ge=0)


class Fade(_Spec):
    """An overlay's fade in or out: ``fade`` through transparency (what lies beneath shows
    through, so a fade-in over another picture is a crossfade), ``fadeblack`` /
    ``fadewhite`` through a colour."""

    kind: Literal["fade", "fadeblack", "fadewhite"] = "fade"
    duration: float = Field(0.5, gt=0, le=10)


Fraction01 = Annotated[float, Field(ge=0, le=1)]


class Overlay(_FileClip):
    """An image or a video placed on the frame: its top-left corner at (``x``, ``y``) as
    fractions of the frame, ``width`` / ``height`` fractions of the frame's. Neither size:
    it covers the whole frame (scaled and cropped); one of them: the other follows the
    source's aspect ratio; both: it covers that box. A video shorter than the clip holds its
    last frame; its sound is not used."""

    kind: Literal["overlay"] = "overlay"
    extensions = OVERLAY_EXTS
    media: Literal["image", "video"]
    x: Fraction01 = 0.0
    y: Fraction01 = 0.0
    width: float | None = Field(None, gt=0, le=1)
    height: float | None = Field(None, gt=0, le=1)
    trim_start: float = Field(0.0, ge=0)
    fade_in: Fade | None = None
    fade_out: Fade | None = None

    @model_validator(mode="after")
    def _fades_fit(self) -> Overlay:
        fades = sum(f.duration for f in (self.fade_in, self.fade_out) if f is not None)
        if fades > self.duration + _EPS:
            raise ValueError(f"fades of {fades:g}s do not fit in {self.duration:g}s")
        return self


class PlacedText(_Clip):
    """Text with its top-left corner at (``x``, ``y``) (fractions of the frame), ``size``
    a fraction of the frame height, wrapped to the frame's right edge, fading in and out
    through transparency."""

    kind: Literal["placed_text"] = "placed_text"
    text: str = Field(min_length=1, max_length=500)
    x: Fraction01 = 0.05
    y: Fraction01 = 0.05
    size: float = Field(0.06, gt=0, le=0.3)
    color: str = Field("white", pattern=r"^(#[0-9a-fA-F]{6}|[a-zA-Z]+)(@[01](\.\d+)?)?$")
    box: bool = False
    fade_in: float = Field(0.0, ge=0)
    fade_out: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _fades_fit(self) -> PlacedText:
        if self.fade_in + self.fade_out > self.duration + _EPS:
            raise ValueError(
                f"fades of {self.fade_in + self.fade_out:g}s do not fit in {self.duration:g}s"
            )
        return self


OverlayItem = Annotated[Overlay | PlacedText, Field(discriminator="kind")]


Clip = Annotated[ImageClip | VideoClip | TextClip | AudioClip, Field(discriminator="kind")]
_KINDS: dict[str, tuple[str, ...]] = {
    "video": ("image", "video"),
    "text": ("text",),
    "audio": ("audio",),
}


class Track(_Spec):
    """Clips of one kind; only text and audio tracks may let clips overlap."""

    kind: Literal["video", "text", "audio"]
    clips: list[Clip] = Field(default_factory=list)
    allow_overlap: bool = False
    name: str = ""

    @model_validator(mode="after")
    def _check_clips(self) -> Track:
        label = self.name or self.kind
        for clip in self.clips:
            if clip.kind not in _KINDS[self.kind]:
                raise ValueError(f"{label} track cannot hold a {clip.kind} clip")
        if self.kind == "video" and self.allow_overlap:
            raise ValueError("video tracks cannot allow overlap; use a transition")
        if not self.allow_overlap:
            ordered = sorted(self.clips, key=lambda c: c.start)
            for a, b in itertools.pairwise(ordered):
                if b.start < a.end - _EPS:
                    raise ValueError(
                        f"{label} track: clip at {b.start:g}s overlaps the clip at "
                        f"{a.start:g}s-{a.end:g}s"
                    )
        return self


class Transition(_Spec):
    """The crossfade between consecutive pictures; it starts at the incoming clip's start."""

    kind: TransitionKind = "fade"
    duration: float = Field(0.5, ge=0, le=3)


class Segment(_Spec):
    """A piece of the picture: a clip, or background where no clip covers the timeline."""

    start: float
    end: float
    clip: ImageClip | VideoClip | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


class Timeline(_Spec):
    """Everything one render needs; ``duration`` defaults to the end of the last clip."""

    output: OutputPreset = Field(default_factory=OutputPreset)
    tracks: list[Track] = Field(default_factory=list)
    transition: Transition | None = Field(default_factory=Transition)
    duration: float | None = Field(None, gt=0)
    background: str = Field("black", pattern=r"^(#[0-9a-fA-F]{6}|[a-zA-Z]+)$")
    duck_music: bool = True
    overlays: list[OverlayItem] = Field(default_factory=list, max_length=64)
    captions: Captions | None = None  # word-timed captions burned in with libass

    @property
    def total(self) -> float:
        """The length of the finished video in seconds."""
        if self.duration is not None:
            return self.duration
        ends = [c.end for t in self.tracks for c in t.clips] + [o.end for o in self.overlays]
        return max(ends, default=0.0)

    def clips(self, kind: str) -> list[Any]:
        """All clips of one track kind, in start order."""
        found = [c for t in self.tracks if t.kind == kind for c in t.clips]
        return sorted(found, key=lambda c: c.start)

    def visual_segments(self) -> list[Segment]:
        """The picture as back-to-back segments covering 0..total (gaps become background)."""
        out: list[Segment] = []
        cursor = 0.0
        for clip in self.clips("video"):
            if clip.start > cursor + _EPS:
                out.append(Segment(start=cursor, end=clip.start))
            out.append(Segment(start=clip.start, end=min(clip.end, self.total), clip=clip))
            cursor = clip.end
        if cursor < self.total - _EPS:
            out.append(Segment(start=cursor, end=self.total))
        return out

    def sources(self) -> Iterator[Path]:
        """Every file the render reads."""
        for track in self.tracks:
            for clip in track.clips:
                if isinstance(clip, _FileClip):
                    yield clip.source
        for item in self.overlays:
            if isinstance(item, Overlay):
                yield item.source

    @model_validator(mode="after")
    def _check_timeline(self, info: ValidationInfo) -> Timeline:
        context: Mapping[str, Any] = info.context or {}
        max_duration = float(context.get("max_duration", DEFAULT_MAX_DURATION_S))
        total = self.total
        if total <= 0:
            raise ValueError("the timeline is empty: add a clip or set a duration")
        if total > max_duration + _EPS:
            raise ValueError(
                f"total duration {total:g}s is longer than the {max_duration:g}s maximum"
            )
        if sum(t.kind == "video" for t in self.tracks) > 1:
            raise ValueError("only one video track is supported; put the pictures in sequence")
        for track in self.tracks:
            for clip in track.clips:
                if clip.end > total + _EPS:
                    raise ValueError(
                        f"{clip.kind} clip at {clip.start:g}s ends at {clip.end:g}s, after the "
                        f"timeline's {total:g}s"
                    )
        for item in self.overlays:
            if item.end > total + _EPS:
                raise ValueError(
                    f"overlay at {item.start:g}s ends at {item.end:g}s, after the timeline's "
                    f"{total:g}s"
                )
        fade = self.transition.duration if self.transition else 0.0
        frame = 1.0 / self.output.fps
        for seg in self.visual_segments():
            # xfade needs each picture on screen at least as long as the fade into the next.
            if fade and seg.duration > frame and seg.duration < fade - _EPS:
                raise ValueError(
                    f"picture at {seg.start:g}s lasts {seg.duration:g}s, shorter than the "
                    f"{fade:g}s transition"
                )
        return self


def check_assets(timeline: Timeline) -> None:
    """Raise :class:`TimelineError` listing every source file that is missing or empty."""
    problems = []
    for source in dict.fromkeys(timeline.sources()):
        if not source.is_file():
            problems.append({"source": str(source), "message": "file not found"})
        elif source.stat().st_size == 0:
            problems.append({"source": str(source), "message": "file is empty"})
    if problems:
        names = ", ".join(p["source"] for p in problems)
        raise TimelineError(f"missing or unreadable assets: {names}", details=problems)


def validate_timeline(
    data: Timeline | Mapping[str, Any],
    *,
    max_duration: float = DEFAULT_MAX_DURATION_S,
    check_files: bool = True,
) -> Timeline:
    """Parse and check a timeline before any work starts; raise :class:`TimelineError`."""
    raw = data.model_dump() if isinstance(data, Timeline) else data
    try:
        timeline = Timeline.model_validate(raw, context={"max_duration": max_duration})
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in err["loc"]),
                "message": err["msg"].removeprefix("Value error, "),
            }
            for err in exc.errors(include_url=False)
        ]
        raise TimelineError(
            "invalid timeline: " + "; ".join(d["message"] for d in details), details=details
        ) from None
    if check_files:
        check_assets(timeline)
    return timeline
