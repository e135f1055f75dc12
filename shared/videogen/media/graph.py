"""Pure builders: a :class:`Timeline` in, ffmpeg arguments out; nothing here runs a process.

Every picture becomes a segment of exactly its frame count, segments are chained with
``xfade`` (or ``concat`` without a transition), overlays (images and videos placed on the
frame) are ``overlay`` filters in layer order with ``fade`` filters on their own clock and
placed text is ``drawtext`` between them, captions are ``drawtext`` filters switched
on by time, and the audio is placed with ``adelay`` and ducked with ``sidechaincompress``.

:func:`compile_timeline` makes that one ffmpeg invocation (one-pass ``loudnorm``).
The sectioned render (:func:`section_cuts`, :func:`section_args`, :func:`measure_args`,
:func:`audio_args`, :func:`join_args`, run by ``render.render_timeline``) builds the same
picture in sections that render side by side, measures the mix's loudness before applying
one gain, and joins everything without re-encoding.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import ffmpeg

from videogen.media.captions import FONT_DIR, write_ass
from videogen.media.timeline import (
    AudioClip,
    Fade,
    ImageClip,
    OutputPreset,
    Overlay,
    PlacedText,
    Segment,
    TextClip,
    Timeline,
    VideoClip,
)

DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
# Ken Burns moves are computed on a frame this many times larger than the output, so the
# integer crop offsets zoompan uses move in sub-pixel steps and the zoom does not jitter.
KEN_BURNS_OVERSAMPLE = 2
# The sectioned render (:func:`section_args`) zooms on a frame only this much larger than
# the output: measured on bench/render_bench.py, it keeps SSIM >= 0.99 against the 2x frame
# while zoompan resamples about half the pixels.
WORKING_OVERSAMPLE = 2
# A looping video clip that wraps within a segment is decoded and fitted to the frame once
# and repeated from memory (the loop filter) when one pass at the output size fits in this
# much, instead of being decoded and scaled again on every pass (``-stream_loop``):
# bench/render_bench.py --clips, a 4 s 1080p 25 fps clip filling a 10.5 s segment at 720p
# (120 frames kept, 166 MB). Longer clips, or larger frames, stream as before.
LOOP_CACHE_BYTES = 384 * 2**20
SAMPLE_RATE = 48_000
# DejaVu Sans averages ~0.55 em per character; used to wrap captions to the frame width.
_CHAR_WIDTH_EM = 0.55
# Global options go first: ffmpeg warns about (and may ignore) options after the output.
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")


@dataclass(frozen=True)
class RenderPlan:
    """One ffmpeg run: its arguments (without the binary), output file and length."""

    args: list[str]
    output: Path
    duration: float
    inputs: list[Path] = field(default_factory=list)

    def command(self, binary: str = "ffmpeg") -> list[str]:
        """The full argv."""
        return [binary, *self.args]


@dataclass(frozen=True)
class _Cut:
    """Where a segment's frames sit in its whole move, and whether to build it lean."""

    skip: int = 0
    length: int = 0  # frames of the whole move; 0: just these frames
    lean: bool = False


def _even(value: float) -> int:
    """The nearest even integer (yuv420p needs even sizes)."""
    return round(value / 2) * 2


@lru_cache(maxsize=8)
def find_font(preferred: Path = DEFAULT_FONT) -> Path:
    """A TrueType font file: DejaVu Sans if installed, else fontconfig's or any sans."""
    if preferred.is_file():
        return preferred
    if shutil.which("fc-match"):
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "sans"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found and Path(found).is_file():
            return Path(found)
    for root in _FONT_DIRS:
        candidates = sorted(root.rglob("*.ttf")) if root.is_dir() else []
        # Prefer a regular sans face over whatever sorts first.
        for font in candidates:
            if "sans" in font.name.lower() and "bold" not in font.name.lower():
                return font
        if candidates:
            return candidates[0]
    raise FileNotFoundError("no .ttf font found; install fonts-dejavu-core")


def frame_index(seconds: float, fps: int) -> int:
    """The frame at which ``seconds`` falls, rounded to the nearest frame boundary."""
    return round(seconds * fps)


def wrap_caption(text: str, width: int, font_size: int, max_lines: int = 3) -> list[str]:
    """Break text into lines that fit 90 % of the frame width; extra text is cut off."""
    per_line = max(8, int(width * 0.9 / (font_size * _CHAR_WIDTH_EM)))
    lines = textwrap.wrap(" ".join(text.split()), per_line) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: per_line - 1].rstrip() + "…"
    return lines


# Pictures ------------------------------------------------------------------------------------


def _fit(stream: Any, clip: ImageClip | VideoClip, w: int, h: int, background: str) -> Any:
    """Scale to the frame: crop the overflow (cover) or pad the bars (contain)."""
    if clip.fit == "cover":
        return stream.filter("scale", w, h, force_original_aspect_ratio="increase").filter(
            "crop", w, h
        )
    return stream.filter("scale", w, h, force_original_aspect_ratio="decrease").filter(
        "pad", w, h, "(ow-iw)/2", "(oh-ih)/2", color=background
    )


def _image_segment(clip: ImageClip, frames: int, timeline: Timeline, cut: _Cut) -> Any:
    """A still as exactly ``frames`` frames, zooming slowly when Ken Burns is on.

    ``cut`` places these frames inside the whole move: they start ``cut.skip`` frames in,
    of ``cut.length`` in all, so a section rendered on its own continues the same zoom.
    """
    w, h, fps = timeline.output.width, timeline.output.height, timeline.output.fps
    still = ffmpeg.input(str(clip.source))
    length = cut.length or frames
    if not clip.ken_burns or length < 2:
        picture = _fit(still, clip, w, h, timeline.background)
        if cut.lean:
            picture = picture.filter("format", "yuv420p")
        # One decoded frame repeated: far cheaper than decoding the file once per frame.
        return picture.filter("loop", loop=frames - 1, size=1, start=0).filter(
            "setpts", f"N/{fps}/TB"
        )
    if cut.lean:
        # Scaled once to the working size, converted once to the encoder's pixel format:
        # zoompan then resamples three 4:2:0 planes per frame instead of packed RGB.
        big = _fit(
            still, clip, _even(w * WORKING_OVERSAMPLE), _even(h * WORKING_OVERSAMPLE),
            timeline.background,
        ).filter("format", "yuv420p")  # fmt: skip
    else:
        k = KEN_BURNS_OVERSAMPLE
        big = _fit(still, clip, w * k, h * k, timeline.background)
    on = f"(on+{cut.skip})" if cut.skip else "on"
    step = f"(({clip.zoom}-1)*{on}/{length - 1})"
    zoom = f"{clip.zoom}-{step}" if clip.zoom_out else f"1+{step}"
    return big.filter(
        "zoompan",
        z=zoom,
        x="iw/2-(iw/zoom/2)",
        y="ih/2-(ih/zoom/2)",
        d=frames,
        s=f"{w}x{h}",
        fps=fps,
    )


def _cover(stream: Any, w: int, h: int) -> Any:
    """Cover a ``w`` x ``h`` frame: crop the source to the frame's shape first, then scale
    only what shows. Scaling to cover and cropping after (the usual recipe, same picture)
    would scale the overflow too: three times the pixels for a portrait clip in a
    landscape frame, or a landscape clip in a portrait one."""
    return stream.filter("crop", f"min(iw,ih*{w}/{h})", f"min(ih,iw*{h}/{w})").filter("scale", w, h)


def _video_segment(clip: VideoClip, frames: int, timeline: Timeline, cut: _Cut) -> Any:
    """A video's picture as exactly ``frames`` frames; a short file holds its last frame,
    or repeats from its start if the clip loops."""
    w, h, fps = timeline.output.width, timeline.output.height, timeline.output.fps
    seconds = frames / fps
    start = clip.trim_start + cut.skip / fps if cut.skip else clip.trim_start
    if clip.loop and clip.source_duration:
        period = math.ceil(clip.source_duration * fps)  # one pass, on the output's grid
        offset = round(start * fps) % period
        if offset + frames > period and period * w * h * 3 // 2 <= LOOP_CACHE_BYTES:
            # It wraps: one pass decoded, fitted to the frame and kept; the loop filter
            # repeats it from memory (a pass ends early if the file has fewer frames).
            source = ffmpeg.input(str(clip.source), t=clip.source_duration)
            picture = _fitted(source.video.filter("fps", fps), clip, w, h, timeline.background)
            return (
                picture.filter("loop", loop=-1, size=period, start=0)
                .filter("trim", start_frame=offset, end_frame=offset + frames)
                .filter("setpts", f"N/{fps}/TB")
            )
        # Repeated from its start: a section cut mid-loop starts where the loop is then.
        start = start % clip.source_duration
        source = ffmpeg.input(str(clip.source), stream_loop=-1, ss=start, t=seconds)
    else:
        source = ffmpeg.input(str(clip.source), ss=start, t=seconds)
    picture = _fitted(source.video.filter("fps", fps), clip, w, h, timeline.background)
    return picture.filter("tpad", stop_mode="clone", stop_duration=seconds).filter(
        "trim", end_frame=frames
    )


def _fitted(stream: Any, clip: VideoClip, w: int, h: int, background: str) -> Any:
    """A video clip's frames fitted to the frame (:func:`_cover` or bars)."""
    if clip.fit == "cover":
        return _cover(stream, w, h)
    return _fit(stream, clip, w, h, background)


def _background_segment(frames: int, timeline: Timeline) -> Any:
    """Plain background colour where no picture is placed."""
    out = timeline.output
    color = f"color=c={timeline.background}:s={out.width}x{out.height}:r={out.fps}"
    return ffmpeg.input(color, f="lavfi", t=frames / out.fps).filter("trim", end_frame=frames)


def _segment(seg: Segment, frames: int, timeline: Timeline, cut: _Cut) -> Any:
    """One normalised segment: same size, pixel format, SAR and time base, as xfade needs."""
    if isinstance(seg.clip, ImageClip):
        stream = _image_segment(seg.clip, frames, timeline, cut)
    elif isinstance(seg.clip, VideoClip):
        stream = _video_segment(seg.clip, frames, timeline, cut)
    else:
        stream = _background_segment(frames, timeline)
    stream = stream.filter("setsar", 1)
    if not (cut.lean and isinstance(seg.clip, ImageClip)):  # lean stills are yuv420p already
        stream = stream.filter("format", "yuv420p")
    return stream.filter("settb", f"1/{timeline.output.fps}").filter("setpts", "PTS-STARTPTS")


def segment_frames(timeline: Timeline) -> list[tuple[Segment, int, int]]:
    """Each visual segment with its first and end frame on the output grid."""
    fps = timeline.output.fps
    total_frames = frame_index(timeline.total, fps)
    bounds = [frame_index(s.start, fps) for s in timeline.visual_segments()]
    return [
        (seg, start, end)
        for seg, start, end in zip(
            timeline.visual_segments(), bounds, [*bounds[1:], total_frames], strict=True
        )
        if end > start  # rounding can leave a sliver shorter than one frame
    ]


def fade_frames(timeline: Timeline) -> int:
    """The crossfade's length in frames (0 without a transition)."""
    if timeline.transition is None:
        return 0
    return frame_index(timeline.transition.duration, timeline.output.fps)


def build_picture(timeline: Timeline, span: tuple[int, int] | None = None) -> Any:
    """The video stream before captions: segments joined by crossfades.

    With ``span`` (first frame, end frame) only those frames are built, for a section
    rendered on its own; the span must not cut through a crossfade (:func:`section_cuts`).
    """
    fps = timeline.output.fps
    segments = segment_frames(timeline)
    fade = fade_frames(timeline)
    if len(segments) == 1:
        fade = 0
    # Each outgoing picture runs ``fade`` frames past its end, so the fade into the next one
    # starts exactly at the next clip's start and the total length stays as specified.
    last = len(segments) - 1
    first, stop = span if span is not None else (0, segments[-1][2])
    pieces = []  # (segment, frames, where these frames sit in the whole picture)
    for i, (seg, start, end) in enumerate(segments):
        length = end - start + (fade if i < last else 0)
        a, b = max(first, start), min(stop, start + length)
        if b <= a or (i < last and fade and a >= end):
            continue  # outside the span, or only its fade-out tail (kept by the next piece)
        if span is None:
            pieces.append((seg, start, length, _Cut()))
        else:
            pieces.append((seg, start, b - a, _Cut(skip=a - start, length=length, lean=True)))
    parts = [_segment(seg, frames, timeline, cut) for seg, _, frames, cut in pieces]
    if len(parts) == 1:
        return parts[0]
    if fade == 0:
        return ffmpeg.concat(*parts, n=len(parts), v=1, a=0)
    assert timeline.transition is not None
    chain = parts[0]
    for (_, start, _, _), part in zip(pieces[1:], parts[1:], strict=True):
        chain = ffmpeg.filter(
            [chain, part],
            "xfade",
            transition=timeline.transition.kind,
            duration=fade / fps,
            offset=(start - first) / fps,
        )
    return chain


def caption_filters(clip: TextClip, width: int, height: int, font: Path) -> list[dict[str, Any]]:
    """The drawtext options for one text clip, one filter per line so each is centred."""
    size = max(10, round(height * clip.size))
    lines = wrap_caption(clip.text, width, size)
    line_h = round(size * 1.45)
    margin = round(height * 0.06)
    block = line_h * len(lines)
    top = {
        "top": margin,
        "center": (height - block) // 2,
        "bottom": height - margin - block,
    }[clip.position]
    enable = f"gte(t,{clip.start:.3f})*lt(t,{clip.end:.3f})"
    filters = []
    for i, line in enumerate(lines):
        opts: dict[str, Any] = {
            "fontfile": str(font),
            "text": line,
            "expansion": "none",  # user text must never be read as %{…} expressions
            "fontsize": size,
            "fontcolor": clip.color,
            "x": "(w-text_w)/2",
            "y": top + i * line_h,
            "enable": enable,
        }
        if clip.box:
            opts.update(box=1, boxcolor="black@0.55", boxborderw=round(size * 0.3))
        filters.append(opts)
    return filters


# Overlays ------------------------------------------------------------------------------------


def _overlay_box(item: Overlay, width: int, height: int) -> tuple[int, int] | None:
    """The overlay's box in pixels, -1 where the source's aspect ratio decides; ``None``:
    neither size given (the overlay covers the frame)."""
    if item.width is None and item.height is None:
        return None
    w = max(2, _even(width * item.width)) if item.width is not None else -2
    h = max(2, _even(height * item.height)) if item.height is not None else -2
    return w, h


def _scaled(stream: Any, item: Overlay, width: int, height: int) -> Any:
    box = _overlay_box(item, width, height)
    if box is None:
        box = (width, height)
    w, h = box
    if w > 0 and h > 0:  # a box: cover it, crop the overflow
        return stream.filter("scale", w, h, force_original_aspect_ratio="increase").filter(
            "crop", w, h
        )
    return stream.filter("scale", w, h)


def _fade_filter(stream: Any, fade: Fade, direction: str, start_s: float) -> Any:
    opts: dict[str, Any] = {"t": direction, "st": f"{start_s:.6f}", "d": f"{fade.duration:.6f}"}
    if fade.kind == "fade":
        opts["alpha"] = 1
    else:
        opts["color"] = "black" if fade.kind == "fadeblack" else "white"
    return stream.filter("fade", **opts)


def _overlay_stream(item: Overlay, timeline: Timeline, skip: int, frames: int, at: int) -> Any:
    """``frames`` frames of an overlay, ``skip`` frames into it, placed at frame ``at`` of
    the stream it goes on; its fades run on the overlay's own clock so a section that starts
    in the middle of one continues it."""
    out = timeline.output
    fps = out.fps
    seconds = frames / fps
    if item.media == "video":
        source = ffmpeg.input(str(item.source), ss=item.trim_start + skip / fps, t=seconds)
        picture = _scaled(source.video.filter("fps", fps), item, out.width, out.height)
        picture = picture.filter("tpad", stop_mode="clone", stop_duration=seconds)
    else:
        picture = _scaled(ffmpeg.input(str(item.source)), item, out.width, out.height)
        # One decoded frame repeated, as the stills of the picture track.
        picture = picture.filter("loop", loop=frames - 1, size=1, start=0)
    picture = (
        picture.filter("trim", end_frame=frames)
        .filter("setsar", 1)
        .filter("format", "yuva420p")
        .filter("settb", f"1/{fps}")
        .filter("setpts", f"N+{skip}")  # the overlay's own clock, for its fades
    )
    if item.fade_in is not None:
        picture = _fade_filter(picture, item.fade_in, "in", 0.0)
    if item.fade_out is not None:
        picture = _fade_filter(
            picture, item.fade_out, "out", item.duration - item.fade_out.duration
        )
    return picture.filter("setpts", f"N+{at}")


def _text_filters(
    item: PlacedText, width: int, height: int, font: Path, start: float, end: float
) -> list[dict[str, Any]]:
    """drawtext options for placed text shown from ``start`` to ``end`` (the stream's clock)."""
    size = max(8, round(height * item.size))
    left, top = round(width * item.x), round(height * item.y)
    avail = max(size, width - left)
    lines = wrap_caption(item.text, round(avail / 0.9), size, max_lines=6)
    line_h = round(size * 1.3)
    enable = f"gte(t,({start:.6f}))*lt(t,({end:.6f}))"
    ramps = []
    if item.fade_in:
        ramps.append(f"(t-({start:.6f}))/{item.fade_in:.6f}")
    if item.fade_out:
        ramps.append(f"(({end:.6f})-t)/{item.fade_out:.6f}")
    alpha = None
    if ramps:
        ramp = ramps[0] if len(ramps) == 1 else f"min({ramps[0]},{ramps[1]})"
        alpha = f"clip({ramp},0,1)"
    filters = []
    for i, line in enumerate(lines):
        opts: dict[str, Any] = {
            "fontfile": str(font),
            "text": line,
            "expansion": "none",  # user text must never be read as %{…} expressions
            "fontsize": size,
            "fontcolor": item.color,
            "x": left,
            "y": top + i * line_h,
            "enable": enable,
        }
        if alpha is not None:
            opts["alpha"] = alpha
        if item.box:
            opts.update(box=1, boxcolor="black@0.55", boxborderw=round(size * 0.25))
        filters.append(opts)
    return filters


def apply_overlays(
    stream: Any, timeline: Timeline, font: Path | None = None, span: tuple[int, int] | None = None
) -> Any:
    """Draw the timeline's overlays on ``stream`` in list order (bottom first): images and
    videos with ``overlay`` at their position while they are on, text with ``drawtext``.
    With ``span`` only the overlays on screen in those frames, on the section's clock."""
    out = timeline.output
    fps = out.fps
    first, stop = span if span is not None else (0, frame_index(timeline.total, fps))
    fontfile: Path | None = None
    for item in timeline.overlays:
        begin, end = frame_index(item.start, fps), frame_index(item.end, fps)
        a, b = max(first, begin), min(stop, end)
        if b <= a:
            continue
        if isinstance(item, PlacedText):
            fontfile = fontfile or font or find_font()
            for opts in _text_filters(
                item, out.width, out.height, fontfile, (begin - first) / fps, (end - first) / fps
            ):
                stream = stream.filter("drawtext", **opts)
            continue
        picture = _overlay_stream(item, timeline, a - begin, b - a, a - first)
        stream = ffmpeg.filter(
            [stream, picture],
            "overlay",
            x=round(out.width * item.x),
            y=round(out.height * item.y),
            eof_action="pass",
            # On from its first frame to its last (half a frame of slack each side).
            enable=f"between(t,{(a - first - 0.5) / fps:.6f},{(b - first - 0.5) / fps:.6f})",
        )
    if timeline.overlays:
        stream = stream.filter("format", "yuv420p")
    return stream


def build_video(
    timeline: Timeline,
    font: Path | None = None,
    span: tuple[int, int] | None = None,
    subtitles: Path | None = None,
) -> Any:
    """The finished video stream: pictures, overlays and burned-in text (of ``span`` if
    given); ``subtitles``, the ASS script of the timeline's captions (:func:`captions_file`),
    is drawn last by libass on the video's clock."""
    stream = apply_overlays(build_picture(timeline, span), timeline, font, span)
    if subtitles is not None:
        begin = span[0] / timeline.output.fps if span is not None else 0.0
        # The section's frames start at 0: shift them onto the video's clock for libass.
        if begin:
            stream = stream.filter("setpts", f"PTS+{begin:.6f}/TB")
        stream = stream.filter("ass", filename=str(subtitles), fontsdir=str(FONT_DIR))
        if begin:
            stream = stream.filter("setpts", f"PTS-{begin:.6f}/TB")
    texts: list[TextClip] = timeline.clips("text")
    if span is not None:
        fps = timeline.output.fps
        begin, end = span[0] / fps, span[1] / fps
        # Only the captions on screen in this section, on the section's own clock.
        texts = [
            c.model_copy(update={"start": c.start - begin})
            for c in texts
            if c.end > begin and c.start < end
        ]
    if texts:
        fontfile = font or find_font()
        w, h = timeline.output.width, timeline.output.height
        for clip in texts:
            for opts in caption_filters(clip, w, h, fontfile):
                stream = stream.filter("drawtext", **opts)
    return stream


# Sound ---------------------------------------------------------------------------------------


def _audio_clips(clips: list[AudioClip]) -> list[Any]:
    """Each clip's stream; a sound placed several times is decoded once and split."""
    shared: dict[tuple[Any, ...], list[int]] = {}
    for i, clip in enumerate(clips):
        shared.setdefault(_sound_key(clip), []).append(i)
    streams: list[Any] = [None] * len(clips)
    for indices in shared.values():
        sound = _sound(clips[indices[0]])
        copies = [sound] if len(indices) == 1 else sound.filter_multi_output("asplit", len(indices))
        for n, i in enumerate(indices):
            streams[i] = _place(copies[n], clips[i])
    return streams


def _sound_key(clip: AudioClip) -> tuple[Any, ...]:
    """What makes two clips' sound the same before it is placed in time."""
    return (repr(clip.model_dump(exclude={"start"})),)


def _place(stream: Any, clip: AudioClip) -> Any:
    """Delay a clip's sound to its start."""
    if clip.start:
        stream = stream.filter("adelay", delays=round(clip.start * 1000), all=1)
    return stream


def _sound(clip: AudioClip) -> Any:
    """One sound file trimmed and faded, as 48 kHz stereo float, not yet placed in time."""
    opts: dict[str, Any] = {"ss": clip.trim_start} if clip.trim_start else {}
    if clip.loop:
        opts["stream_loop"] = -1
    stream = (
        ffmpeg.input(str(clip.source), **opts)
        .audio.filter("atrim", duration=clip.duration)
        .filter("asetpts", "PTS-STARTPTS")
        .filter("aresample", SAMPLE_RATE)
        .filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
    )
    if clip.volume != 1.0:
        stream = stream.filter("volume", clip.volume)
    if clip.fade_in:
        stream = stream.filter("afade", t="in", st=0, d=clip.fade_in)
    if clip.fade_out:
        stream = stream.filter("afade", t="out", st=clip.duration - clip.fade_out, d=clip.fade_out)
    return stream


def _mix(streams: list[Any], total: float) -> Any:
    """Sum streams without amix's default 1/n attenuation and pad to the full length."""
    mixed = (
        streams[0]
        if len(streams) == 1
        else ffmpeg.filter(streams, "amix", inputs=len(streams), duration="longest", normalize=0)
    )
    return mixed.filter("apad", whole_dur=total)


def build_audio(timeline: Timeline) -> Any:
    """The finished audio stream: voice over ducked music, loudness normalised in one pass.

    One pass cannot know the whole programme's loudness, so ``loudnorm`` adapts as it goes
    and lands a few LU off; :func:`audio_args` measures first and applies a fixed gain.
    """
    mix = build_mix(timeline)
    if not timeline.clips("audio"):
        return mix
    return (
        mix.filter("loudnorm", I=timeline.output.loudness_lufs, TP=-1.5, LRA=11)
        # loudnorm upsamples to 192 kHz internally; bring it back to the delivery rate.
        .filter("aresample", SAMPLE_RATE)
        .filter("atrim", duration=timeline.total)
    )


def build_mix(timeline: Timeline) -> Any:
    """The audio before loudness normalisation: voice over ducked music (or silence)."""
    total = timeline.total
    clips: list[AudioClip] = timeline.clips("audio")
    if not clips:
        silence = ffmpeg.input(f"anullsrc=r={SAMPLE_RATE}:cl=stereo", f="lavfi", t=total)
        return silence.audio
    streams = _audio_clips(clips)
    voice = [s for s, c in zip(streams, clips, strict=True) if c.role == "voice"]
    music = [s for s, c in zip(streams, clips, strict=True) if c.role == "music"]
    effects = [s for s, c in zip(streams, clips, strict=True) if c.role == "effect"]
    foreground = voice + effects
    if timeline.duck_music and voice and music:
        speech = _mix(voice, total).filter_multi_output("asplit", 2)
        # The voice is both the key that pushes the music down and a part of the mix.
        ducked = ffmpeg.filter(
            [_mix(music, total), speech[0]],
            "sidechaincompress",
            threshold=0.02,
            ratio=8,
            attack=20,
            release=400,
        )
        mix = _mix([ducked, speech[1], *effects], total)
    else:
        mix = _mix(foreground + music, total)
    return mix


# Whole renders -------------------------------------------------------------------------------


def captions_file(timeline: Timeline, out: Path) -> Path | None:
    """Write the ASS script of the timeline's captions to ``out`` (None without captions)."""
    if timeline.captions is None or not timeline.captions.words:
        return None
    o = timeline.output
    write_ass(timeline.captions, out, o.width, o.height, o.aspect)
    return out


def build_output(
    timeline: Timeline, output: Path, font: Path | None = None, subtitles: Path | None = None
) -> Any:
    """The ffmpeg-python output node for a timeline, without global options."""
    out = timeline.output
    return ffmpeg.output(
        build_video(timeline, font, subtitles=subtitles),
        build_audio(timeline),
        str(output),
        vcodec="libx264",
        preset=out.preset,
        crf=out.crf,
        pix_fmt="yuv420p",
        r=out.fps,
        acodec="aac",
        ar=SAMPLE_RATE,
        ac=2,
        t=f"{frame_index(timeline.total, out.fps) / out.fps:.6f}",
        movflags="+faststart",
        **{"b:a": f"{out.audio_bitrate_k}k"},
    )


def compile_timeline(timeline: Timeline, output: Path, font: Path | None = None) -> RenderPlan:
    """The render of a timeline as a :class:`RenderPlan` (its captions' ASS script written
    beside ``output``)."""
    subtitles = captions_file(timeline, output.with_name(f".{output.stem}.ass"))
    args = [*GLOBAL_ARGS, *build_output(timeline, output, font, subtitles).get_args()]
    total = frame_index(timeline.total, timeline.output.fps) / timeline.output.fps
    return RenderPlan(args=args, output=output, duration=total, inputs=list(timeline.sources()))


# Sectioned renders ---------------------------------------------------------------------------
#
# The picture is cut into sections at frames no crossfade spans; each section is one ffmpeg
# process (they run side by side), the sound is one more, and a last one joins the sections
# with the concat demuxer and muxes the sound, all without re-encoding.

# Sections of about this length: a long video gets more sections rather than longer ones,
# so each process's filter graph stays small and the cost per output second stays flat.
SECTION_TARGET_S = 30.0
SECTION_MIN_S = 2.0
# True peak aimed at below the -1 dBTP ceiling: AAC encoding adds a few tenths of a dB.
TRUE_PEAK_DB = -2.0
# Encoder settings chosen by measurement (bench/render_bench.py, 60 s 720p, per preset):
# a diamond motion search with subpel level 1 costs 42 % less CPU than veryfast's own
# (hex, 2) at SSIM 0.992 against it; the sections each encode on one thread, which does the
# same work with 14 % less CPU than x264's frame threads when the processes fill the cores.
X264_PARAMS = {"veryfast": "me=dia:subme=1"}


def section_cuts(timeline: Timeline, count: int) -> list[tuple[int, int]]:
    """Split the picture's frames into up to ``count`` spans of similar length.

    A cut lands only where a single picture is on screen (never inside a crossfade), as
    close as possible to an even share; a span never gets shorter than ``SECTION_MIN_S``.
    """
    fps = timeline.output.fps
    total = frame_index(timeline.total, fps)
    count = max(1, min(count, total // max(1, round(SECTION_MIN_S * fps))))
    segments = segment_frames(timeline)
    fade = fade_frames(timeline) if len(segments) > 1 else 0
    allowed: list[tuple[int, int]] = []  # [lo, hi] ranges of frames a cut may fall on
    for i, (_, start, end) in enumerate(segments):
        lo = start + (fade if i > 0 else 1)
        if lo <= end - 1 or (fade == 0 and lo <= end):
            allowed.append((lo, end if fade == 0 else end - 1))
    cuts = [0]
    for k in range(1, count):
        ideal = round(total * k / count)
        best = min(
            (min(max(ideal, lo), hi) for lo, hi in allowed),
            key=lambda f: abs(f - ideal),
            default=None,
        )
        if best is not None and best > cuts[-1] and best < total:
            cuts.append(best)
    cuts.append(total)
    return list(itertools.pairwise(cuts))


def section_count(timeline: Timeline, workers: int) -> int:
    """How many sections: at least one per worker, more for long videos."""
    return max(workers, math.ceil(timeline.total / SECTION_TARGET_S))


def _x264_options(out: OutputPreset, threads: int | None) -> dict[str, Any]:
    opts: dict[str, Any] = {"vcodec": "libx264", "preset": out.preset, "crf": out.crf}
    if out.preset in X264_PARAMS:
        opts["x264-params"] = X264_PARAMS[out.preset]
    if threads:
        opts["threads"] = threads
    return opts


def section_args(
    timeline: Timeline,
    span: tuple[int, int],
    output: Path,
    font: Path | None = None,
    threads: int | None = 1,
    subtitles: Path | None = None,
) -> list[str]:
    """ffmpeg arguments for the frames ``span`` of the picture as a video-only mp4."""
    out = timeline.output
    stream = ffmpeg.output(
        build_video(timeline, font, span, subtitles),
        str(output),
        pix_fmt="yuv420p",
        r=out.fps,
        an=None,
        f="mp4",
        **{"frames:v": span[1] - span[0]},
        **_x264_options(out, threads),
    )
    return [*GLOBAL_ARGS, *stream.get_args()]


def measure_args(timeline: Timeline, mix: Path) -> list[str]:
    """Measure pass: the mix, once, to a float WAV, with ebur128 measuring it on the way.

    ebur128 passes the sound through unchanged and prints the integrated loudness and true
    peak at the end; the apply pass then only reads the WAV, so the mix is computed once.
    """
    total = frame_index(timeline.total, timeline.output.fps) / timeline.output.fps
    measured = (
        build_mix(timeline)
        .filter("atrim", duration=total)
        .filter("ebur128", peak="true", framelog="verbose")
    )
    stream = ffmpeg.output(measured, str(mix), acodec="pcm_f32le", f="wav")
    # The summary is printed at the info level.
    return [*GLOBAL_ARGS[:-3], "-loglevel", "info", "-y", *stream.get_args()]


def loudness_gain(timeline: Timeline, integrated: float, true_peak: float) -> tuple[float, bool]:
    """(gain in dB to reach the preset's loudness, whether a limiter must hold the peak)."""
    if integrated <= -70:  # silence: nothing to measure
        return 0.0, False
    gain = timeline.output.loudness_lufs - integrated
    return gain, true_peak + gain > TRUE_PEAK_DB


def audio_args(
    timeline: Timeline, mix: Path | None, output: Path, gain_db: float = 0.0, limit: bool = False
) -> list[str]:
    """Apply pass: the measured mix at one linear gain (limited if it would clip) as AAC.

    ``mix`` is the measure pass's WAV; ``None`` (a timeline without sound) encodes silence.
    """
    out = timeline.output
    total = frame_index(timeline.total, out.fps) / out.fps
    if mix is None:
        stream = build_mix(timeline)
    else:
        stream = ffmpeg.input(str(mix)).audio
        if gain_db:
            stream = stream.filter("volume", f"{gain_db:.2f}dB")
        if limit:
            # Sample-peak ceiling a dB under the true-peak target, for inter-sample overs.
            ceiling = 10 ** ((TRUE_PEAK_DB - 1.0) / 20)
            stream = stream.filter(
                "alimiter", limit=f"{ceiling:.4f}", attack=5, release=50, level="false"
            )
    encoded = ffmpeg.output(
        stream,
        str(output),
        acodec="aac",
        ar=SAMPLE_RATE,
        ac=2,
        t=f"{total:.6f}",
        f="mp4",
        **{"b:a": f"{out.audio_bitrate_k}k"},
    )
    return [*GLOBAL_ARGS, *encoded.get_args()]


def join_args(timeline: Timeline, sections: Path, audio: Path, output: Path) -> list[str]:
    """The concat list of sections plus the sound, copied into the finished mp4."""
    out = timeline.output
    return [
        *GLOBAL_ARGS,
        "-f", "concat", "-safe", "0", "-i", str(sections),
        "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0", "-c", "copy",
        "-t", f"{frame_index(timeline.total, out.fps) / out.fps:.6f}",
        "-movflags", "+faststart", str(output),
    ]  # fmt: skip


def concat_list(paths: list[Path], durations: list[float]) -> str:
    """The concat demuxer's list file for ``paths`` (quotes escaped).

    Each file's exact length is given, so the next one starts on the frame grid rather than
    where the rounded mp4 duration would put it.
    """
    lines = []
    for path, seconds in zip(paths, durations, strict=True):
        quoted = str(path.resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {seconds:.6f}"]
    return "\n".join(lines) + "\n"


def thumbnail_args(video: Path, out: Path, at_s: float, width: int | None = None) -> list[str]:
    """One frame at ``at_s`` as a JPEG (or PNG by extension), optionally scaled to ``width``."""
    stream = ffmpeg.input(str(video), ss=max(0.0, at_s))
    if width:
        stream = stream.filter("scale", width, -2)
    opts: dict[str, Any] = {"vframes": 1}
    if out.suffix.lower() in {".jpg", ".jpeg"}:
        opts["q:v"] = 3
    return [*GLOBAL_ARGS, *ffmpeg.output(stream, str(out), **opts).get_args()]


def title_card_args(
    title: str,
    out: Path,
    width: int,
    height: int,
    *,
    subtitle: str | None = None,
    background: str = "#1e293b",
    color: str = "white",
    font: Path | None = None,
) -> list[str]:
    """A one-frame PNG: background colour with the title (and subtitle) centred."""
    fontfile = str(font or find_font())
    stream = ffmpeg.input(f"color=c={background}:s={width}x{height}:r=1", f="lavfi")
    size = round(min(width, height) * 0.08)
    lines = wrap_caption(title, width, size, max_lines=4)
    sub_size = round(size * 0.55)
    sub_lines = wrap_caption(subtitle, width, sub_size, max_lines=2) if subtitle else []
    line_h, sub_h = round(size * 1.3), round(sub_size * 1.5)
    y = (height - line_h * len(lines) - sub_h * len(sub_lines)) // 2
    for text, fs, lh in [(t, size, line_h) for t in lines] + [
        (t, sub_size, sub_h) for t in sub_lines
    ]:
        stream = stream.filter(
            "drawtext",
            fontfile=fontfile,
            text=text,
            expansion="none",
            fontsize=fs,
            fontcolor=color,
            x="(w-text_w)/2",
            y=y,
        )
        y += lh
    return [*GLOBAL_ARGS, *ffmpeg.output(stream, str(out), vframes=1).get_args()]
