"""The reference engine of still pictures (``text_to_image`` and ``image_to_image`` jobs): an
abstract composition drawn by ffmpeg from the prompt, offline and deterministic.

A hash of the prompt and seed picks everything — a gradient's kind, colours and direction,
and a handful of translucent blocks on it — so the same prompt and seed always give the same
PNG, byte for byte (``bitexact``), and another prompt or seed another picture. For
image-to-image the composition is laid over the job's picture (scaled to cover the frame)
with ``strength`` as its opacity: 0 keeps the picture, 1 repaints it all. The size is the
job's frame (:func:`videogen.media.timeline.frame_size`: ratio and resolution, as a video's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from videogen.media.errors import RenderError
from videogen.media.graph import GLOBAL_ARGS
from videogen.media.render import run_ffmpeg
from videogen.media.timeline import frame_size

ASPECTS = ("16:9", "9:16", "1:1")
RESOLUTIONS = ("480p", "720p", "1080p")
THUMBNAIL_WIDTH = 320
# A still renders in well under a second; a run that outlasts this is refused.
RENDER_TIMEOUT_S = 60.0


class InvalidPicture(ValueError):
    """The job's params cannot be drawn."""


@dataclass(frozen=True)
class PictureSpec:
    """What a picture job asks for; checked when made."""

    prompt: str
    aspect_ratio: str = "1:1"
    resolution: str = "720p"
    seed: int = 0
    strength: float = 0.6

    def __post_init__(self) -> None:
        if self.aspect_ratio not in ASPECTS:
            raise InvalidPicture(f"aspect ratio {self.aspect_ratio!r} is not one of {ASPECTS}")
        if self.resolution not in RESOLUTIONS:
            raise InvalidPicture(f"resolution {self.resolution!r} is not one of {RESOLUTIONS}")
        if not 0 <= self.strength <= 1:
            raise InvalidPicture("strength must be between 0 and 1")

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        return frame_size(self.aspect_ratio, self.resolution)  # type: ignore[arg-type]

    def digest(self) -> bytes:
        """What every choice of the composition is drawn from: the prompt and the seed."""
        return hashlib.sha256(f"{self.prompt}\0{self.seed}".encode()).digest()


def _colour(chunk: bytes) -> str:
    return "0x" + chunk[:3].hex()


def composition(spec: PictureSpec) -> str:
    """The lavfi graph of the picture's composition, ending in ``[art]`` (RGBA)."""
    d = spec.digest()
    width, height = spec.size
    kind = d[0] % 4
    colours = [_colour(d[1 + 3 * i : 4 + 3 * i]) for i in range(4)]
    x0, y0 = d[13] * width // 255, d[14] * height // 255
    x1, y1 = width - x0, height - y0
    source = (
        f"gradients=s={width}x{height}:c0={colours[0]}:c1={colours[1]}:c2={colours[2]}"
        f":c3={colours[3]}:n=4:x0={x0}:y0={y0}:x1={x1}:y1={y1}:type={kind}"
        f":seed={int.from_bytes(d[15:19], 'big')}:speed=0.00001:r=1:d=1"
    )
    blocks = []
    for i in range(3 + d[19] % 4):  # 3 to 6 translucent blocks
        b = d[20 + 2 * i : 22 + 2 * i]
        w = max(8, width * (20 + b[0] % 40) // 100)
        h = max(8, height * (20 + b[1] % 40) // 100)
        x = (b[0] * 7919 + i * 131) % max(1, width - w)
        y = (b[1] * 7907 + i * 197) % max(1, height - h)
        colour = _colour(d[(5 + 3 * i) % 28 : (5 + 3 * i) % 28 + 3])
        blocks.append(f"drawbox=x={x}:y={y}:w={w}:h={h}:color={colour}@0.45:t=fill")
    return f"{source},format=rgba,{','.join(blocks)}[art]"


def draw_args(spec: PictureSpec, out: Path, init_image: Path | None = None) -> list[str]:
    """ffmpeg's arguments for the picture (PNG, bitexact: the same bytes every run)."""
    width, height = spec.size
    args = [*GLOBAL_ARGS]
    if init_image is None:
        graph = f"{composition(spec)};[art]format=rgb24[out]"
    else:
        args += ["-i", str(init_image)]
        graph = (
            f"{composition(spec)};"
            f"[0:v]scale={width}:{height}:force_original_aspect_ratio=increase,"
            f"crop={width}:{height},setsar=1,format=rgba[base];"
            f"[art]colorchannelmixer=aa={spec.strength:.3f}[layer];"
            f"[base][layer]overlay=0:0:format=auto,format=rgb24[out]"
        )
    return [
        *args, "-filter_complex", graph, "-map", "[out]", "-frames:v", "1",
        "-c:v", "png", "-flags", "+bitexact", "-fflags", "+bitexact", "-f", "image2",
        str(out),
    ]  # fmt: skip


def draw(spec: PictureSpec, out: Path, init_image: Path | None = None) -> Path:
    """Draw the picture into ``out`` (PNG)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(draw_args(spec, out, init_image), output=out, timeout=RENDER_TIMEOUT_S)
    if not out.is_file():
        raise RenderError("ffmpeg drew no picture")
    return out


def thumbnail(picture: Path, out: Path, width: int = THUMBNAIL_WIDTH) -> Path:
    """A small JPEG of a picture (any format ffmpeg reads), ``width`` wide at most."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(
        [*GLOBAL_ARGS, "-i", str(picture), "-vf", f"scale='min({width},iw)':-2",
         "-frames:v", "1", "-q:v", "4", "-f", "image2", str(out)],
        output=out,
        timeout=RENDER_TIMEOUT_S,
    )  # fmt: skip
    if not out.is_file():
        raise RenderError(f"no thumbnail of {picture.name}")
    return out
