"""Topic → finished explainer video: script, narration, pictures, one render, thumbnail.

``plan`` does everything up to a validated :class:`Timeline` (the slow external calls:
script and speech), ``compose`` renders it; ``estimate`` prices a request beforehand.
The caller owns ``workdir`` (a job's scratch folder) and decides what to upload.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from videogen.config import get_settings
from videogen.media.align import align
from videogen.media.captions import Captions, CaptionStyle
from videogen.media.errors import NarrationError, RenderCanceled, TimelineError
from videogen.media.exports import export
from videogen.media.forms import ExportFormat, Poster
from videogen.media.graph import wrap_caption
from videogen.media.images import make_title_card, validate_upload
from videogen.media.narration import (
    NarrationEngine,
    Speech,
    get_narration_engine,
    measure_speech,
    narrate_sections,
)
from videogen.media.render import (
    learned_factor,
    make_thumbnail,
    probe,
    render_timeline,
)
from videogen.media.script import (
    MAX_SECTIONS,
    WORDS_PER_MINUTE,
    Script,
    ScriptEngine,
    get_script_engine,
)
from videogen.media.timeline import (
    DEFAULT_MAX_DURATION_S,
    VIDEO_EXTS,
    Aspect,
    AudioClip,
    ImageClip,
    OutputPreset,
    Overlay,
    Quality,
    TextClip,
    Timeline,
    Track,
    Transition,
    VideoClip,
    validate_timeline,
)
from videogen.media.words import EspeakUnavailable, Word

Progress = Callable[[int], None]

# Render cost, calibrated on the reference machine (2 vCPU, ffmpeg 5.1, libx264 veryfast):
# seconds per second of output at 1280x720, 30 fps, for stills with Ken Burns, crossfades,
# captions, ducked music and loudnorm. A 20 s 720p render took 13.2 CPU-seconds (0.66 per
# output second); ffmpeg 5.1 runs the filter graph on one thread, so wall time is close to
# that on an idle box and up to ~0.9 when the host is busy (bench/render_bench.py measured
# 0.89 at load 4). Cost scales about linearly with pixels x frames; pass ``factor`` to
# recalibrate on other hardware.
RENDER_S_PER_OUTPUT_S_720P30 = 0.66
RENDER_OVERHEAD_S = 0.6  # process start, input probing and the moov rewrite of faststart
# A timeline of overlays (an element composition) on a plain background, per second at
# 1280x720, 30 fps: the background itself, and each overlay per second it is on screen.
# Measured on the reference machine (2 vCPU, ffmpeg 5.1) with 10 s renders on one worker:
# background 0.17, + a full-frame image 0.10 (wall; 0.12 CPU), + a full-frame 720p video
# 0.20 (0.30 CPU: its decoder runs beside the filters), + a line of text 0.00-0.02. The
# figures below are the CPU ones rounded up, so a busy host still fits its estimate.
OVERLAY_RENDER_S_PER_S_720P30 = {"background": 0.2, "image": 0.12, "video": 0.3, "text": 0.02}
# The other forms (media.exports), CPU seconds per output second of a 720p30 video, measured
# on the reference machine under load (10 s clip): webm 0.29, gif 0.22 (made at 480 px
# wide, so it scales with the frame less), mp3 0.01; rounded up.
EXPORT_S_PER_S_720P30 = {"webm": 0.35, "gif": 0.25, "mp3": 0.02}
# Credits per started 10 s of output, by quality: roughly the relative render cost.
CREDITS_PER_10S = {"480p": 1, "720p": 2, "1080p": 4}

# Narration is padded so pictures settle before the voice starts and a sentence can land.
SECTION_LEAD_S = 0.3
SECTION_TAIL_S = 0.4


class ComposeRequest(BaseModel):
    """What a user asks for: a topic (or a ready script) and how the video should look."""

    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(None, min_length=1, max_length=500)
    script: Script | None = None
    sections: int = Field(4, ge=1, le=MAX_SECTIONS)
    aspect: Aspect = "16:9"
    quality: Quality = "720p"
    fps: int = Field(30, ge=12, le=60)
    voice: str | None = None
    language: str = Field("en", min_length=2, max_length=16)
    speaking_rate: float = Field(1.0, ge=0.25, le=4.0)
    # Per section: a still or a clip (by extension); None → a title card.
    images: list[Path | None] = Field(default_factory=list)
    # Recorded narration, one file per section (a narration step's output): no TTS then.
    narration: list[Path] = Field(default_factory=list)
    music: Path | None = None
    music_volume: float = Field(0.25, ge=0, le=1)
    captions: bool = True
    caption_style: CaptionStyle | None = None  # word-timed captions' look (default style)
    # Word timings of the recorded narration, per file (a narration step's): else aligned.
    narration_words: list[list[tuple[str, float, float]] | None] = Field(default_factory=list)
    size: tuple[int, int] | None = None  # a custom frame instead of aspect x quality
    formats: list[ExportFormat] = Field(default_factory=list)  # beside the mp4
    poster: Poster | None = None
    ken_burns: bool = True
    transition: Transition | None = Field(default_factory=lambda: Transition(duration=0.5))
    max_duration: float = Field(DEFAULT_MAX_DURATION_S, gt=0)
    preset: OutputPreset | None = None  # full control over the encoder; overrides the above

    @model_validator(mode="after")
    def _topic_or_script(self) -> ComposeRequest:
        if not self.topic and self.script is None:
            raise ValueError("give a topic or a script")
        return self

    @property
    def output(self) -> OutputPreset:
        """The output preset this request renders with."""
        return self.preset or OutputPreset(
            aspect=self.aspect, quality=self.quality, fps=self.fps, custom_size=self.size
        )


@dataclass(frozen=True)
class ComposeResult:
    """The finished files and what ffprobe says about the video."""

    video_path: Path
    thumbnail_path: Path
    duration: float
    width: int
    height: int
    title: str = ""
    script: Script | None = None  # what was narrated: stored so a user can edit and re-render
    files: dict[str, Path] = field(default_factory=dict)  # media.exports.export's, by kind


# What the stages before and after the render take, to share the progress bar by time:
# espeak-ng speaks about 1,000 characters a second on the reference machine (four sections
# at once), Google TTS about 300 over the network; a title card takes ~0.2 s, the
# thumbnail and the probe ~0.4 s; a written script: instant offline, seconds from OpenAI.
NARRATION_CHARS_PER_S = {"espeak": 1000.0, "google": 300.0}
CARD_S = 0.2
FINISH_S = 0.4
SCRIPT_S = {"offline": 0.05, "openai": 6.0}


def stage_bounds(
    request: ComposeRequest,
    *,
    script_engine: str | None = None,
    narration_engine: str | None = None,
    workers: int | None = None,
) -> list[int]:
    """Where each stage — script, narration, pictures, render, finish — starts on the
    0-100 bar: shares of the time each should take on this machine, the render's from the
    speed this machine learned (:func:`videogen.media.render.learned_factor`), so the bar
    follows the clock rather than fixed slices (espeak-ng narrates in a second what fixed
    slices counted as 30 % of the job)."""
    settings = get_settings()
    script_s = 0.01 if request.script is not None else SCRIPT_S.get(
        script_engine or settings.script_engine, 1.0
    )  # fmt: skip
    sections = len(request.script.sections) if request.script is not None else request.sections
    if request.narration:
        narration_s = 0.05 * len(request.narration)  # probed, not spoken
    else:
        chars = len(request.script.narration) if request.script is not None else 250 * sections
        rate = NARRATION_CHARS_PER_S.get(narration_engine or settings.tts_engine, 300.0)
        narration_s = 0.2 + chars / rate
    cards = sum(1 for i in range(sections) if i >= len(request.images) or not request.images[i])
    pictures_s = 0.05 + CARD_S * cards
    render_s = RENDER_OVERHEAD_S + learned_factor(request.output, workers) * _expected_duration(
        request
    )
    times = [script_s, narration_s, pictures_s, render_s, FINISH_S]
    total = sum(times)
    bounds, acc = [0], 0.0
    for t in times:
        acc += t
        bounds.append(round(100 * acc / total))
    return bounds


class _Stages:
    """Maps each stage's own 0-100 onto its slice of the overall 0-100."""

    def __init__(
        self, progress: Progress | None, cancel: threading.Event | None, bounds: list[int]
    ) -> None:
        self.progress = progress
        self.cancel = cancel
        self.last = -1
        self.bounds = bounds

    def report(self, pct: int) -> None:
        if self.progress is not None and pct > self.last:
            self.last = pct
            self.progress(pct)

    def enter(self, stage: int) -> Progress:
        """Stage ``stage`` (0 script, 1 narration, 2 pictures, 3 render, 4 finish) begins."""
        if self.cancel is not None and self.cancel.is_set():
            raise RenderCanceled()
        start, end = self.bounds[stage], self.bounds[stage + 1]
        self.report(start)
        return lambda pct: self.report(start + (end - start) * pct // 100)


def caption_chunks(text: str, max_chars: int) -> list[str]:
    """Split narration into caption-sized pieces: sentences, then clauses, then words."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?…])\s+", " ".join(text.split())):
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        # Even-sized pieces read better than full ones followed by a one-word orphan, so
        # each break lands nearest to an even share of what is left.
        words = sentence.split(" ")
        left = math.ceil(len(sentence) / max_chars)
        current = ""
        for i, word in enumerate(words):
            candidate = f"{current} {word}" if current else word
            target = len(" ".join([current, *words[i:]]).strip()) / max(1, left)
            overshoot = len(candidate) - target
            at_clause = current.endswith((",", ";", ":")) and len(current) >= target * 0.6
            if current and (
                len(candidate) > max_chars or overshoot > target - len(current) or at_clause
            ):
                pieces.append(current)
                left -= 1
                current = word
            else:
                current = candidate
        if current:
            pieces.append(current)
    return [p for p in pieces if p]


def _caption_clips(text: str, start: float, duration: float, out: OutputPreset) -> list[TextClip]:
    """Captions for one narration, each shown for its share of characters of the speech."""
    size = max(10, round(out.height * 0.055))
    per_line = len(wrap_caption("x " * 200, out.width, size, max_lines=1)[0])
    chunks = caption_chunks(text, per_line * 2)
    weights = [len(c) + 3 for c in chunks]  # +3: a pause at each break takes time too
    total = sum(weights)
    # Round the boundaries, not the lengths, so neighbouring captions never overlap.
    bounds, acc = [round(start, 3)], 0
    for weight in weights:
        acc += weight
        bounds.append(round(start + duration * acc / total, 3))
    return [
        TextClip(start=a, duration=b - a, text=chunk)
        for chunk, a, b in zip(chunks, bounds, bounds[1:], strict=False)
    ]


def write_script(request: ComposeRequest, engine: ScriptEngine | None = None) -> Script:
    """The request's own script, or one written for its topic."""
    if request.script is not None:
        return request.script
    assert request.topic is not None
    return (engine or get_script_engine()).write(
        request.topic, sections=request.sections, language=request.language
    )


def plan(
    request: ComposeRequest,
    workdir: Path,
    *,
    script_engine: ScriptEngine | None = None,
    narration_engine: NarrationEngine | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Timeline:
    """Script → narration → timings → pictures → captions, as a validated timeline."""
    stages = _Stages(progress, cancel, _bounds(request, script_engine, narration_engine))
    return _plan(request, workdir, script_engine, narration_engine, stages)[0]


def _bounds(
    request: ComposeRequest,
    script_engine: ScriptEngine | None,
    narration_engine: NarrationEngine | None,
) -> list[int]:
    return stage_bounds(
        request,
        script_engine=script_engine.name if script_engine is not None else None,
        narration_engine=narration_engine.name if narration_engine is not None else None,
    )


def _plan(
    request: ComposeRequest,
    workdir: Path,
    script_engine: ScriptEngine | None,
    narration_engine: NarrationEngine | None,
    stages: _Stages,
) -> tuple[Timeline, Script]:
    workdir.mkdir(parents=True, exist_ok=True)
    out = request.output
    fps = out.fps

    stages.enter(0)
    script = write_script(request, script_engine)

    stages.enter(1)
    if request.narration:
        if len(request.narration) != len(script.sections):
            raise TimelineError(
                f"{len(request.narration)} narration files for {len(script.sections)} sections",
                hint="Narrate the script you assemble (one file per section).",
            )
        speeches = [measure_speech(path) for path in request.narration]
        if request.captions:
            speeches = [
                _timed_recording(request, speech, section.narration, i)
                for i, (speech, section) in enumerate(zip(speeches, script.sections, strict=True))
            ]
    else:
        speeches = narrate_sections(
            narration_engine or get_narration_engine(),
            [s.narration for s in script.sections],
            workdir / "narration",
            voice=request.voice,
            language=request.language,
            speaking_rate=request.speaking_rate,
        )

    step = stages.enter(2)
    pictures: list[ImageClip | VideoClip] = []
    voices, captions = [], []
    words: list[Word] = []
    start = 0.0
    for i, (section, speech) in enumerate(zip(script.sections, speeches, strict=True)):
        # Section boundaries sit on the frame grid so crossfades start on a whole frame.
        length = math.ceil((SECTION_LEAD_S + speech.duration + SECTION_TAIL_S) * fps) / fps
        upload = request.images[i] if i < len(request.images) else None
        if upload is not None and upload.suffix.lower() in VIDEO_EXTS:
            # A clip (stock, offline motion or a generated section clip): its picture from
            # the start, repeated when the section outlasts it, cropped to the frame.
            pictures.append(
                VideoClip(
                    start=start,
                    duration=length,
                    source=upload,
                    loop=True,
                    source_duration=float(probe(upload)["duration"]) or None,
                )
            )
        else:
            if upload is not None:
                image = validate_upload(upload).path
            else:
                image = make_title_card(
                    section.title,
                    workdir / "cards" / f"card_{i:02d}.png",
                    out.width,
                    out.height,
                    subtitle=script.title if i == 0 else None,
                )
            pictures.append(
                ImageClip(
                    start=start,
                    duration=length,
                    source=image,
                    ken_burns=request.ken_burns,
                    zoom_out=i % 2 == 1,  # alternate direction: consecutive moves differ
                )
            )
        voice_at = start + SECTION_LEAD_S
        voices.append(AudioClip(start=voice_at, duration=speech.duration, source=speech.path))
        if request.captions and speech.words:
            words += [w.shifted(voice_at) for w in speech.words]
        elif request.captions:  # an engine without word timings: timed by characters
            captions += _caption_clips(section.narration, voice_at, speech.duration, out)
        start = round((start + length) * fps) / fps
        step(100 * (i + 1) // len(script.sections))

    tracks = [
        Track(kind="video", name="pictures", clips=pictures),
        Track(kind="audio", name="voice", clips=voices),
    ]
    if captions:
        tracks.append(Track(kind="text", name="captions", clips=captions))
    if request.music is not None:
        tracks.append(
            Track(
                kind="audio",
                name="music",
                clips=[
                    AudioClip(
                        start=0,
                        duration=start,
                        source=request.music,
                        role="music",
                        loop=True,
                        volume=request.music_volume,
                        fade_out=min(2.0, start / 4),
                    )
                ],
            )
        )
    timeline = validate_timeline(
        Timeline(
            output=out,
            tracks=tracks,
            transition=request.transition,
            duration=start,
            captions=Captions.of(words, request.caption_style) if words else None,
        ),
        max_duration=request.max_duration,
    )
    return timeline, script


def _timed_recording(request: ComposeRequest, speech: Speech, text: str, index: int) -> Speech:
    """A recorded narration with its words' timings: the narration step's, else aligned
    to the section's text (:func:`videogen.media.align.align`)."""
    given = request.narration_words[index] if index < len(request.narration_words) else None
    if given:
        words = tuple(Word(t, a, b) for t, a, b in given)
    else:
        try:
            words = tuple(
                align(speech.path, text, voice=request.language, duration=speech.duration)
            )
        except (NarrationError, EspeakUnavailable):
            words = ()  # no voice for the language: captions timed by characters then
    return Speech(path=speech.path, duration=speech.duration, words=words)


def compose(
    request: ComposeRequest,
    workdir: Path,
    progress: Progress | None = None,
    *,
    cancel: threading.Event | None = None,
    script_engine: ScriptEngine | None = None,
    narration_engine: NarrationEngine | None = None,
) -> ComposeResult:
    """Make the whole video in ``workdir``: ``video.mp4`` and ``thumbnail.jpg``."""
    stages = _Stages(progress, cancel, _bounds(request, script_engine, narration_engine))
    timeline, script = _plan(request, workdir, script_engine, narration_engine, stages)
    video = workdir / "video.mp4"
    render_timeline(timeline, video, progress=stages.enter(3), cancel=cancel)
    stages.enter(4)
    # A moment into the first section: the title card or image has faded in by then.
    thumbnail = make_thumbnail(video, workdir / "thumbnail.jpg", at_s=min(1.0, timeline.total / 2))
    files = export(
        video, workdir, request.formats, request.poster, timeline.captions, timeline.output.aspect
    )
    info = probe(video)
    stages.report(100)
    return ComposeResult(
        video_path=video,
        thumbnail_path=thumbnail,
        duration=info["duration"],
        width=info["width"],
        height=info["height"],
        title=script.title,
        script=script,
        files=files,
    )


def _expected_duration(request: ComposeRequest) -> float:
    """Output length before any speech exists, from word count and speaking rate."""
    if request.script is not None:
        words = len(request.script.narration.split())
        sections = len(request.script.sections)
    else:
        words, sections = 40 * request.sections, request.sections  # offline/LLM sections
    speech = words / (WORDS_PER_MINUTE * request.speaking_rate) * 60
    return speech + sections * (SECTION_LEAD_S + SECTION_TAIL_S)


def estimate(
    spec: Timeline | ComposeRequest, *, factor: float = RENDER_S_PER_OUTPUT_S_720P30
) -> tuple[float, int]:
    """(render seconds on this machine, credits) for a timeline or a compose request."""
    if isinstance(spec, Timeline):
        duration, out = spec.total, spec.output
    else:
        duration, out = _expected_duration(spec), spec.output
    width, height = out.size
    scale = (width * height) / (1280 * 720) * (out.fps / 30)
    work = duration * factor
    if isinstance(spec, Timeline) and spec.overlays:
        rates = OVERLAY_RENDER_S_PER_S_720P30
        if not spec.clips("video"):  # only overlays over the background
            work = duration * rates["background"]
        for item in spec.overlays:
            work += item.duration * rates[item.media if isinstance(item, Overlay) else "text"]
    if isinstance(spec, ComposeRequest):
        work += duration * sum(EXPORT_S_PER_S_720P30[f] for f in set(spec.formats))
    seconds = RENDER_OVERHEAD_S + work * scale
    credits = max(1, math.ceil(duration / 10)) * CREDITS_PER_10S[out.quality]
    return round(seconds, 1), credits
