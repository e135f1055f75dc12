"""A generated-looking clip for a text- or image-to-video job, as pure builders: the job's
params → :class:`VideoSpec` → one ffmpeg :class:`~videogen.media.graph.RenderPlan` (the
prompt on a background coloured by it, or on the uploaded still slowly zooming, with a sine
tone). The reference worker renders it with :func:`videogen.media.render.render`."""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import ffmpeg

from videogen.media.graph import GLOBAL_ARGS, RenderPlan, find_font, wrap_caption
from videogen.media.timeline import frame_size

ASPECTS = ("16:9", "9:16", "1:1")
RESOLUTIONS = ("480p", "720p", "1080p")
SAMPLE_RATE = 48_000


class InvalidClip(ValueError):
    """The job's params cannot be rendered."""


class ClipParams(Protocol):
    """What a clip reads of a text- or image-to-video job's params
    (:class:`videogen.models.params.TextToVideoParams` and ``ImageToVideoParams``)."""

    @property
    def prompt(self) -> str | None: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def aspect_ratio(self) -> str | None: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def fps(self) -> int | None: ...
    @property
    def seed(self) -> int | None: ...


@dataclass(frozen=True)
class VideoSpec:
    """What a text- or image-to-video job asks for; checked when made."""

    prompt: str
    duration: float
    aspect_ratio: str = "16:9"
    resolution: str = "720p"
    fps: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        if self.aspect_ratio not in ASPECTS:
            raise InvalidClip(
                f"aspect ratio {self.aspect_ratio!r} is not one of {', '.join(ASPECTS)}"
            )
        if self.resolution not in RESOLUTIONS:
            raise InvalidClip(
                f"resolution {self.resolution!r} is not one of {', '.join(RESOLUTIONS)}"
            )
        if not 0 < self.duration <= 600 or not 1 <= self.fps <= 60:
            raise InvalidClip("duration must be 0-600 s and fps 1-60")

    @classmethod
    def from_params(cls, params: ClipParams) -> VideoSpec:
        """Read a job's typed params (already normalised by the database)."""
        return cls(
            prompt=(params.prompt or "").strip() or "(no prompt)",
            duration=float(params.duration if params.duration is not None else 5),
            aspect_ratio=params.aspect_ratio or "16:9",
            resolution=params.resolution or "720p",
            fps=params.fps or 24,
            seed=params.seed or 0,
        )

    @property
    def size(self) -> tuple[int, int]:
        """(width, height): 854x480, 1280x720, 1920x1080, 480x854, 720x720, …"""
        return frame_size(cast(Any, self.aspect_ratio), cast(Any, self.resolution))


def prompt_colour(prompt: str, seed: int = 0) -> str:
    """A dark, saturated background colour that the prompt (and seed) always map to."""
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    r, g, b = colorsys.hsv_to_rgb(digest[0] / 255, 0.6, 0.45)
    return f"0x{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def prompt_tone(prompt: str, seed: int = 0) -> int:
    """A sine frequency (220-660 Hz) the prompt maps to."""
    return 220 + hashlib.sha256(f"{seed}:{prompt}".encode()).digest()[1] * 440 // 255


def _picture(spec: VideoSpec, image: Path | None) -> Any:
    """The moving picture under the text: colour field, or the still with a slow zoom."""
    w, h = spec.size
    if image is None:
        colour = prompt_colour(spec.prompt, spec.seed)
        return ffmpeg.input(
            f"color=c={colour}:s={w}x{h}:r={spec.fps}", f="lavfi", t=spec.duration
        ).video
    frames = max(2, round(spec.duration * spec.fps))
    # Zoom on a frame twice the output size so zoompan's integer offsets move smoothly.
    big = (
        ffmpeg.input(str(image))
        .filter("scale", w * 2, h * 2, force_original_aspect_ratio="increase")
        .filter("crop", w * 2, h * 2)
    )
    return big.filter(
        "zoompan",
        z=f"1+0.15*on/{frames - 1}",
        x="iw/2-(iw/zoom/2)",
        y="ih/2-(ih/zoom/2)",
        d=frames,
        s=f"{w}x{h}",
        fps=spec.fps,
    )


def build_render(
    spec: VideoSpec,
    output: Path,
    *,
    image: Path | None = None,
    font: Path | None = None,
    speed: float = 0.0,
) -> RenderPlan:
    """The one ffmpeg run for a text/image-to-video job: picture, prompt text, sine tone."""
    w, h = spec.size
    fontfile = str(font or find_font())
    video = _picture(spec, image)
    # A marker sliding along the bottom, so every frame differs like a generated clip.
    marker = max(8, h // 30)
    dot = ffmpeg.input(f"color=c=white:s={marker}x{marker}:r={spec.fps}", f="lavfi")
    video = ffmpeg.overlay(
        video, dot, x=f"(W-w)*t/{spec.duration:g}", y=f"H-h-{marker}", shortest=1
    )
    size = max(12, round(min(w, h) * 0.06))
    lines = wrap_caption(spec.prompt, w, size, max_lines=4)
    line_h = round(size * 1.4)
    top = (h - line_h * len(lines)) // 2
    for i, line in enumerate(lines):
        video = video.filter(
            "drawtext",
            fontfile=fontfile,
            text=line,
            expansion="none",  # user text is never read as %{…} expressions
            fontsize=size,
            fontcolor="white",
            box=1,
            boxcolor="black@0.45",
            boxborderw=round(size * 0.25),
            x="(w-text_w)/2",
            y=top + i * line_h,
        )
    video = video.filter("format", "yuv420p")
    if speed > 0:
        video = video.filter("realtime", speed=speed)
    tone = prompt_tone(spec.prompt, spec.seed)
    fade = min(0.5, spec.duration / 4)
    audio = (
        ffmpeg.input(
            f"sine=frequency={tone}:sample_rate={SAMPLE_RATE}:duration={spec.duration:g}",
            f="lavfi",
        )
        .filter("volume", 0.2)
        .filter("afade", t="in", st=0, d=fade)
        .filter("afade", t="out", st=max(0.0, spec.duration - fade), d=fade)
    )
    out = ffmpeg.output(
        video,
        audio,
        str(output),
        vcodec="libx264",
        preset="veryfast",
        crf=26,
        pix_fmt="yuv420p",
        r=spec.fps,
        acodec="aac",
        ar=SAMPLE_RATE,
        t=f"{spec.duration:g}",
        movflags="+faststart",
        **{"b:a": "96k"},
    )
    # -stats_period: progress lines four times a second, so short renders report too.
    args = [*GLOBAL_ARGS, "-stats_period", "0.25", *out.get_args()]
    return RenderPlan(
        args=args, output=output, duration=spec.duration, inputs=[image] if image else []
    )
