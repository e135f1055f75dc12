"""Pictures for sections: checks on user uploads and generated title cards.

An upload is trusted only after its magic bytes and ffprobe agree on the format, its size
and dimensions are within limits and ffmpeg decodes the whole picture; a file extension
proves nothing, and neither does a header (a truncated file keeps its header).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from videogen.media.errors import ImageError, ProbeError
from videogen.media.graph import title_card_args
from videogen.media.render import FFMPEG, probe, run_bounded, run_ffmpeg

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MIN_SIDE = 64
MAX_SIDE = 8192
# Decoding the largest picture allowed (8192x8192) takes well under a second; a decode that
# outlasts this is refused rather than waited for.
DECODE_TIMEOUT_S = 60.0
# ffprobe codec name for each format we accept.
_CODECS = {"png": "png", "jpeg": "mjpeg", "webp": "webp"}


@dataclass(frozen=True)
class ImageInfo:
    """What an accepted upload turned out to be."""

    path: Path
    format: str
    width: int
    height: int
    size: int


def sniff_image_format(head: bytes) -> str | None:
    """``png``, ``jpeg`` or ``webp`` from a file's first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def validate_upload(
    path: Path,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    min_side: int = MIN_SIDE,
    max_side: int = MAX_SIDE,
) -> ImageInfo:
    """Accept a PNG, JPEG or WebP within the limits or raise :class:`ImageError`."""
    if not path.is_file():
        raise ImageError(f"{path.name}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(f"{path.name}: the file is empty")
    if size > max_bytes:
        raise ImageError(
            f"{path.name}: {size} bytes is over the {max_bytes}-byte limit",
            hint="Upload a smaller or more compressed image.",
        )
    with path.open("rb") as f:
        kind = sniff_image_format(f.read(16))
    if kind is None:
        raise ImageError(
            f"{path.name}: not a PNG, JPEG or WebP image", hint="Convert it to PNG or JPEG."
        )
    try:
        info = probe(path)
    except ProbeError as exc:
        raise ImageError(f"{path.name}: the {kind} data is unreadable") from exc
    if info["video_codec"] != _CODECS[kind]:
        raise ImageError(f"{path.name}: looks like {kind} but decodes as {info['video_codec']}")
    width, height = info["width"], info["height"]
    if min(width, height) < min_side or max(width, height) > max_side:
        raise ImageError(
            f"{path.name}: {width}x{height} is outside {min_side}-{max_side} pixels per side"
        )
    decode_image(path, kind)  # only within the limits: the header said how big it is
    return ImageInfo(path=path, format=kind, width=width, height=height, size=size)


def decode_image(path: Path, kind: str = "image", *, timeout: float = DECODE_TIMEOUT_S) -> None:
    """Decode the whole picture with ffmpeg, or raise :class:`ImageError`.

    ffprobe reads only the header, which a truncated or corrupt file keeps; ffmpeg must
    produce the frame without a single error (a cut PNG says "IEND without all image", a
    cut JPEG "overread"), within ``timeout`` seconds.
    """
    try:
        done = run_bounded(
            [FFMPEG, "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0",
             "-frames:v", "1", "-f", "framecrc", "-"],
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"{path.name}: the {kind} did not decode within {timeout:g} s") from exc
    frames = [line for line in done.stdout.splitlines() if line and not line.startswith("#")]
    if done.returncode != 0 or done.stderr.strip() or len(frames) != 1:
        raise ImageError(
            f"{path.name}: the {kind} data does not decode (truncated or corrupt)",
            hint="Upload the whole file again.",
        )


def make_title_card(
    title: str,
    out: Path,
    width: int,
    height: int,
    *,
    subtitle: str | None = None,
    background: str = "#1e293b",
    color: str = "white",
) -> Path:
    """Render a PNG title card for a section that has no picture."""
    out.parent.mkdir(parents=True, exist_ok=True)
    args = title_card_args(
        title, out, width, height, subtitle=subtitle, background=background, color=color
    )
    run_ffmpeg(args, output=out)
    return out


def shrink_args(source: Path, out: Path, size: tuple[int, int]) -> list[str]:
    """ffmpeg args that scale a still to ``size`` (one frame, nothing else)."""
    w, h = size
    return ["-y", "-v", "error", "-i", str(source), "-vf", f"scale={w}:{h}", "-frames:v", "1",
            str(out)]  # fmt: skip


def fit_for_render(info: ImageInfo, box: tuple[int, int], workdir: Path) -> Path:
    """A still no larger than needed to cover ``box`` (the render's working frame).

    The render decodes and scales a still once per section and once per thumbnail; an
    8192-px upload made each of those cost about a CPU-second and 300 MB. Scaling it down
    once here, keeping its aspect, makes the render's cost independent of the upload's size.
    A still under twice the box's pixels is used as it is.
    """
    w, h = box
    factor = max(w / info.width, h / info.height)  # the smallest scale that still covers
    if info.width * info.height <= 2 * w * h or factor >= 1:
        return info.path
    size = (max(2, round(info.width * factor / 2) * 2), max(2, round(info.height * factor / 2) * 2))
    out = workdir / f"{info.path.stem}-fit.png"  # PNG keeps an overlay's transparency
    run_ffmpeg(shrink_args(info.path, out, size), output=out, duration=0.0)
    return out


MOTION_CLIP_MAX_S = 8.0  # an offline clip this long at most; the render repeats it


def motion_clip_args(
    still: Path, out: Path, width: int, height: int, seconds: float, fps: int = 30
) -> list[str]:
    """ffmpeg args for a clip of ``still`` slowly pushing in (a Ken Burns move), H.264 with
    no sound, ``seconds`` long at ``fps``: the offline engine's moving picture."""
    frames = max(2, round(seconds * fps))
    big_w, big_h = width * 2, height * 2  # zoompan's whole-pixel steps are smooth at 2x
    move = (
        f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase,crop={big_w}:{big_h},"
        f"zoompan=z='1+0.2*on/{frames - 1}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
        f":d={frames}:s={width}x{height}:fps={fps},format=yuv420p"
    )
    return ["-y", "-v", "error", "-nostdin", "-i", str(still), "-vf", move,
            "-frames:v", str(frames), "-an", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", "23", "-movflags", "+faststart", str(out)]  # fmt: skip


def make_motion_clip(
    still: Path, out: Path, width: int, height: int, seconds: float, fps: int = 30
) -> Path:
    """An MP4 clip of ``still`` moving (at most :data:`MOTION_CLIP_MAX_S` long)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    length = min(max(seconds, 1.0), MOTION_CLIP_MAX_S)
    args = motion_clip_args(still, out, width, height, length, fps)
    run_ffmpeg(args, output=out, duration=length)
    return out
