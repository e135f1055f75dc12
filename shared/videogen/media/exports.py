"""The finished mp4 in other forms: WebM (VP9/Opus), an animated GIF, MP3 audio, a poster
frame (PNG or JPEG at a chosen time), and the captions as WebVTT and SRT.

Each is one ffmpeg run reading the rendered mp4 (never a second render of the timeline),
so every form shows exactly what the mp4 shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import ffmpeg

from videogen.media.captions import Captions, cues_for, srt, webvtt
from videogen.media.forms import ExportFormat, Poster
from videogen.media.graph import GLOBAL_ARGS
from videogen.media.render import make_thumbnail, probe, run_ffmpeg

GIF_MAX_WIDTH = 480  # a GIF of a full frame is huge; 480 px wide is what GIFs are for
GIF_MAX_FPS = 15


def webm_args(video: Path, out: Path) -> list[str]:
    """VP9 at constant quality (row-multithreaded, realtime speed) and Opus sound."""
    stream = ffmpeg.input(str(video))
    encoded = ffmpeg.output(
        stream.video,
        stream.audio,
        str(out),
        vcodec="libvpx-vp9",
        crf=33,
        deadline="realtime",
        **{"b:v": 0, "cpu-used": 8, "row-mt": 1, "b:a": "96k"},
        acodec="libopus",
        f="webm",
    )
    return [*GLOBAL_ARGS, *encoded.get_args()]


def gif_args(video: Path, out: Path, fps: float, width: int) -> list[str]:
    """A palette made for this video (palettegen) applied with ordered dithering
    (paletteuse), at most ``GIF_MAX_FPS`` frames a second and ``GIF_MAX_WIDTH`` wide."""
    rate = min(GIF_MAX_FPS, fps)
    scaled = (
        ffmpeg.input(str(video))
        .video.filter("fps", rate)
        .filter("scale", min(GIF_MAX_WIDTH, width), -2, flags="lanczos")
        .split()
    )
    palette = scaled[0].filter("palettegen", stats_mode="diff")
    looped = ffmpeg.filter([scaled[1], palette], "paletteuse", dither="bayer", bayer_scale=4)
    return [*GLOBAL_ARGS, *ffmpeg.output(looped, str(out), loop=0, f="gif").get_args()]


def mp3_args(video: Path, out: Path) -> list[str]:
    """The sound alone as MP3 (LAME, VBR quality 2: about 190 kbit/s)."""
    encoded = ffmpeg.output(
        ffmpeg.input(str(video)).audio, str(out), acodec="libmp3lame", f="mp3", **{"q:a": 2}
    )
    return [*GLOBAL_ARGS, *encoded.get_args()]


def export(
    video: Path,
    workdir: Path,
    formats: Iterable[ExportFormat] = (),
    poster: Poster | None = None,
    captions: Captions | None = None,
    aspect: str = "16:9",
) -> dict[str, Path]:
    """The extra files asked for, made from ``video`` in ``workdir``, by kind: ``webm``,
    ``gif``, ``mp3``, ``poster``, and ``vtt`` / ``srt`` when there are captions."""
    info = probe(video)
    files: dict[str, Path] = {}
    for kind in dict.fromkeys(formats):
        out = workdir / f"video.{kind}"
        if kind == "webm":
            args = webm_args(video, out)
        elif kind == "gif":
            args = gif_args(video, out, info["fps"] or 30, info["width"])
        else:
            args = mp3_args(video, out)
        run_ffmpeg(args, duration=info["duration"], output=out)
        files[kind] = out
    if poster is not None:
        files["poster"] = make_thumbnail(video, workdir / f"poster.{poster.format}", poster.at)
    if captions is not None and captions.words:
        cues = cues_for(captions, info["width"], info["height"], aspect)
        (workdir / "captions.vtt").write_text(webvtt(cues), encoding="utf-8")
        (workdir / "captions.srt").write_text(srt(cues), encoding="utf-8")
        files["vtt"], files["srt"] = workdir / "captions.vtt", workdir / "captions.srt"
    return files
