"""Composed videos as jobs: job params → media.compose → storage → job output.

A compose job's params (``generate-video`` with a ``compose`` model, or ``queue-job``),
read as :class:`~videogen.models.params.ComposeParams`::

    {"prompt" or "topic": "…", "script": {title, sections[]}?, "sections": 4,
     "voice", "language", "speaking_rate", "images": ["<uid>/<file>", …],
     "music_path": "<uid>/<file>"?, "narration_paths": ["<uid>/…wav", …]?,
     "captions": true, "aspect_ratio", "resolution",
     "duration": <max seconds you pay for>}

Or it gives the timeline itself, ``"elements": [...]`` (``models.elements.VideoElement``,
``ImageElement``, ``AudioElement``, ``TextElement``; docs/elements.md): then no script,
narration or images are made — the uploads are placed as the elements say and rendered
(:func:`elements_timeline`), and the job is priced by the timeline's length.

Short renders (estimated under ``SYNC_RENDER_MAX_SECONDS``) run inside generate-video and
answer 200 with the finished job; longer ones become jobs for a worker with the compose
capability (the reference worker has it). Either way the same procedures move the job and
the money: an attempt is opened, progress is reported, completion captures the credits of
the length actually rendered and releases the rest; a failure releases everything.
The script that was narrated is stored in the job output, so a client can edit it and
start a new render from the edited version (``params.script``).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.db import job_reports
from videogen.errors import AppError, ValidationFailed
from videogen.integrations.storage import get_storage, owner_of
from videogen.media.compose import ComposeRequest, ComposeResult, compose, estimate
from videogen.media.errors import RenderCanceled, RenderDeadline
from videogen.media.exports import export
from videogen.media.graph import WORKING_OVERSAMPLE
from videogen.media.images import fit_for_render, validate_upload
from videogen.media.render import make_thumbnail, probe, render_timeline
from videogen.media.timeline import (
    VIDEO_EXTS,
    AudioClip,
    Fade,
    OutputPreset,
    Overlay,
    PlacedText,
    Timeline,
    Track,
    frame_size,
    validate_timeline,
)
from videogen.models.common import parse
from videogen.models.elements import AudioElement, ImageElement, TextElement, VideoElement
from videogen.models.params import ComposeParams
from videogen.rendering.inline import run_inline
from videogen.rendering.outputs import store_outputs
from videogen.rendering.speeds import seed_from_fleet

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage
    from videogen.media.compose import ComposeRequest, ComposeResult
    from videogen.media.timeline import Timeline
    from videogen.models.jobs import Job

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


def working_frame(params: ComposeParams) -> tuple[int, int]:
    """The largest a still needs to be for this job's render: its frame, oversampled as the
    Ken Burns move and the overlays work on it (media.graph.WORKING_OVERSAMPLE)."""
    if params.size is not None:
        width, height = params.size.width, params.size.height
    else:
        width, height = frame_size(params.aspect_ratio or "16:9", params.resolution or "720p")
    return width * WORKING_OVERSAMPLE, height * WORKING_OVERSAMPLE


def _fetch_upload(storage: Storage, user_id: str, path: str, workdir: Path, index: int) -> Path:
    """Copy one of the user's uploads into the work folder (owner checked)."""
    if owner_of(path) != user_id:
        raise ValidationFailed(f"{path} is not in your uploads folder ({user_id}/…).")
    target = workdir / f"upload-{index}{Path(path).suffix.lower()}"
    target.write_bytes(storage.download("uploads", path))
    return target


def section_clip_paths(params: ComposeParams) -> dict[int, str]:
    """The sections whose generated clip completed, and its video (``videos`` bucket); a
    clip that failed or was canceled is left out: its section shows its still or card."""
    return {
        i: clip.video_path
        for i, clip in enumerate(params.section_clips or [])
        if clip is not None and clip.status == "completed" and clip.video_path
    }


def _fetch_output(storage: Storage, user_id: str, path: str, workdir: Path, index: int) -> Path:
    """Copy one of the user's finished videos (a section clip) into the work folder."""
    if owner_of(path) != user_id:
        raise ValidationFailed(f"{path} is not one of your videos ({user_id}/…).")
    target = workdir / f"clip-{index}{Path(path).suffix.lower() or '.mp4'}"
    target.write_bytes(storage.download("videos", path))
    return target


def compose_request(
    params: ComposeParams,
    images: Sequence[Path | None] = (),
    music: Path | None = None,
    narration: Sequence[Path] = (),
    narration_words: Sequence[list[tuple[str, float, float]] | None] = (),
) -> ComposeRequest:
    """The media request a compose job's params describe — the one mapping of params onto
    :class:`~videogen.media.compose.ComposeRequest`, for the render and for its estimate.
    ``images``, ``music`` and ``narration`` are the local copies of the uploads the params
    name (none for an estimate), ``narration_words`` the word timings a narration step
    stored beside its files; what the params leave out takes the request's defaults."""
    fields = {
        "topic": params.topic or params.prompt,
        "script": params.script,
        "sections": params.sections,
        "aspect": params.aspect_ratio,
        "quality": params.resolution,
        "fps": params.fps,
        "voice": params.voice,
        "language": params.language,
        "speaking_rate": params.speaking_rate,
        "images": list(images),
        "music": music,
        "narration": list(narration) or None,  # a narration step's files: no TTS then
        "captions": params.captions,
        "caption_style": params.caption_style,
        "narration_words": list(narration_words) or None,
        "size": (params.size.width, params.size.height) if params.size else None,
        "formats": params.formats,
        "poster": params.poster,
        "transition": params.transition,
        "max_duration": float(params.duration if params.duration is not None else 600),
    }
    request: ComposeRequest = parse(
        ComposeRequest, {k: v for k, v in fields.items() if v is not None}
    )
    return request


def fetched_request(
    params: ComposeParams, user_id: str, storage: Storage, workdir: Path
) -> ComposeRequest:
    """:func:`compose_request` with the uploads the params name fetched (owners checked)
    and the pictures fitted to the working frame."""
    box = working_frame(params)
    images: list[Path | None] = []
    clips = section_clip_paths(params)
    for i, path in enumerate(params.images or []):
        if path is None:
            images.append(None)
            continue
        local = _fetch_upload(storage, user_id, path, workdir, i)
        if local.suffix in VIDEO_EXTS:  # a section clip: checked with the uploads
            images.append(local)
            continue
        images.append(fit_for_render(validate_upload(local), box, workdir))
    for i, clip in clips.items():  # a generated clip outranks the section's still
        images.extend([None] * (i + 1 - len(images)))
        images[i] = _fetch_output(storage, user_id, clip, workdir, 200 + i)
    music = params.music_path
    narration = [
        _fetch_upload(storage, user_id, path, workdir, 100 + i)
        for i, path in enumerate(params.narration_paths or [])
    ]
    words = [_stored_words(storage, path) for path in params.narration_paths or []]
    return compose_request(
        params,
        images,
        _fetch_upload(storage, user_id, music, workdir, 99) if music else None,
        narration,
        words if params.captions is not False else (),
    )


def words_path(narration_path: str) -> str:
    """Where a narration step keeps a file's word timings: beside it, ``….words.json``."""
    return str(Path(narration_path).with_suffix(".words.json"))


def _stored_words(storage: Storage, path: str) -> list[tuple[str, float, float]] | None:
    """The word timings a narration step stored beside ``path``; None for a file of the
    user's own (it is aligned to its text then) or timings that do not read."""
    try:
        data = json.loads(storage.download("uploads", words_path(path)))
        return [(str(w["text"]), float(w["start"]), float(w["end"])) for w in data["words"]]
    except (AppError, ValueError, KeyError, TypeError):
        return None


def elements_timeline(
    params: ComposeParams, files: dict[int, Path], *, check_files: bool = True
) -> Timeline:
    """The media timeline of a composition of elements: images, videos and text as overlays
    drawn bottom first (by layer, then start, then list order) over a black frame, audio
    mixed at its start; ``files`` are the local copies of the elements' uploads by index."""
    elements = params.elements or []
    output = OutputPreset(
        aspect=params.aspect_ratio or "16:9",
        quality=params.resolution or "720p",
        fps=params.fps or 30,
        custom_size=(params.size.width, params.size.height) if params.size else None,
    )

    def fade(side: Any) -> Fade | None:
        if side is None:
            return None
        # A crossfade is a fade through transparency over what is on screen beneath.
        kind = "fade" if side.kind == "crossfade" else side.kind
        return Fade(kind=kind, duration=side.duration)

    overlays: list[Overlay | PlacedText] = []
    sounds: list[AudioClip] = []
    order = sorted(
        (i for i, e in enumerate(elements) if not isinstance(e, AudioElement)),
        key=lambda i: (elements[i].layer, elements[i].start, i),  # type: ignore[union-attr]
    )
    for i in order:
        el = elements[i]
        t = el.transitions
        way_in, way_out = (t.in_, t.out) if t is not None else (None, None)
        if isinstance(el, TextElement):
            overlays.append(
                PlacedText(
                    start=el.start,
                    duration=el.duration,
                    text=el.text,
                    x=el.position.x,
                    y=el.position.y,
                    size=el.font_size,
                    color=el.color,
                    box=el.box,
                    fade_in=way_in.duration if way_in else 0.0,
                    fade_out=way_out.duration if way_out else 0.0,
                )
            )
            continue
        assert not isinstance(el, AudioElement)
        overlays.append(
            Overlay(
                media=el.type,
                source=files[i],
                start=el.start,
                duration=el.duration,
                x=el.position.x,
                y=el.position.y,
                width=el.width,
                height=el.height,
                trim_start=getattr(el, "trim_start", 0.0),
                fade_in=fade(way_in),
                fade_out=fade(way_out),
            )
        )
    for i, el in enumerate(elements):
        if isinstance(el, AudioElement):
            t = el.transitions
            sounds.append(
                AudioClip(
                    role="effect",
                    source=files[i],
                    start=el.start,
                    duration=el.duration,
                    trim_start=el.trim_start,
                    volume=el.volume,
                    fade_in=t.in_.duration if t is not None and t.in_ else 0.0,
                    fade_out=t.out.duration if t is not None and t.out else 0.0,
                )
            )
    tracks = [Track(kind="audio", name="elements", clips=sounds, allow_overlap=True)]
    timeline = Timeline(
        output=output, tracks=tracks if sounds else [], transition=None, overlays=overlays
    )
    return validate_timeline(
        timeline, max_duration=float(params.duration or 600), check_files=check_files
    )


def render_elements(
    params: ComposeParams,
    user_id: str,
    storage: Storage,
    workdir: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ComposeResult:
    """Fetch a composition's uploads, render its timeline, make the thumbnail."""
    box = working_frame(params)
    elements = params.elements or []
    files: dict[int, Path] = {}
    for i, path in _element_paths(params):
        files[i] = _fetch_upload(storage, user_id, path, workdir, i)
        if isinstance(elements[i], ImageElement):
            files[i] = fit_for_render(validate_upload(files[i]), box, workdir)
    timeline = elements_timeline(params, files)
    report = progress or (lambda pct: None)
    video = workdir / "video.mp4"
    render_timeline(timeline, video, progress=lambda pct: report(pct * 95 // 100), cancel=cancel)
    thumbnail = make_thumbnail(video, workdir / "thumbnail.jpg", at_s=min(1.0, timeline.total / 2))
    extras = export(video, workdir, params.formats or (), params.poster)
    info = probe(video)
    report(100)
    return ComposeResult(
        video_path=video,
        thumbnail_path=thumbnail,
        duration=info["duration"],
        width=info["width"],
        height=info["height"],
        title=params.prompt or "",
        script=None,
        files=extras,
    )


# Scaling a large still down to the working frame once (media.images.fit_for_render):
# about 0.014 CPU-seconds per megapixel decoded, measured on 8192x8192 PNGs; doubled for a
# busy host.
SHRINK_S_PER_MEGAPIXEL = 0.03


def estimated_render_seconds(
    params: ComposeParams | Mapping[str, Any], input_pixels: int = 0
) -> float:
    """How long this machine needs to render these params (media.compose.estimate), plus
    decoding ``input_pixels`` of uploaded pictures (what :func:`uploads.check_uploads`
    found in them); a job's stored params are read as a compose job's first, and params
    that do not fit are infinitely long (the job path reports why)."""
    if not isinstance(params, ComposeParams):
        try:
            params = ComposeParams.stored(params)
        except AppError:
            return math.inf
    return _render_seconds(params) + SHRINK_S_PER_MEGAPIXEL * input_pixels / 1e6


def _render_seconds(params: ComposeParams) -> float:
    if params.elements:
        try:
            placeholders = {i: Path(path) for i, path in _element_paths(params)}
            timeline = elements_timeline(params, placeholders, check_files=False)
        except (ValueError, AppError, KeyError, TypeError):
            return math.inf  # let the job path report the validation error
        return estimate(timeline)[0]
    if not (params.topic or params.prompt or params.script):
        # Its length does not depend on the words: estimated as any topic's.
        params = params.model_copy(update={"prompt": "x"})
    try:
        request = compose_request(params)
    except (ValueError, AppError):
        return math.inf  # let the job path report the validation error
    return estimate(request)[0]


def _element_paths(params: ComposeParams) -> list[tuple[int, str]]:
    """(index, upload) of each element that shows or plays a file."""
    return [
        (i, el.path)
        for i, el in enumerate(params.elements or [])
        if isinstance(el, VideoElement | ImageElement | AudioElement)
    ]


def render(
    params: ComposeParams,
    user_id: str,
    storage: Storage,
    workdir: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ComposeResult:
    """Compose the video a job's params describe, in ``workdir``."""
    if params.elements:
        return render_elements(params, user_id, storage, workdir, progress, cancel)
    request = fetched_request(params, user_id, storage, workdir)
    return compose(request, workdir, progress, cancel=cancel)


def run(
    job: Job,
    storage: Storage,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> tuple[dict[str, Any], float]:
    """Render a compose job and store its files; returns (output, seconds rendered: the
    database captures pro rata of them, private.credits_pro_rata)."""
    user_id, job_id = str(job.user_id), str(job.id)
    params = ComposeParams.stored(job.params)
    with tempfile.TemporaryDirectory(prefix="videogen-compose-") as tmp:
        result = render(params, user_id, storage, Path(tmp), progress, cancel)
        stored = store_outputs(
            storage, user_id, job_id, result.video_path, result.thumbnail_path, result.files
        )
    output = dict(stored)
    output.update(
        title=result.title, script=result.script.model_dump() if result.script is not None else None
    )
    return output, result.duration


def render_sync(db: Database, settings: Settings, job: Job) -> Job:
    """Run a short compose job inside the request: the function is its own worker.

    The render gets ``SYNC_RENDER_DEADLINE_SECONDS``: one that outgrows its estimate is
    stopped then and its job goes back to the queue (a retryable failure, the attempt's
    credits kept reserved) for a worker to finish; the caller gets it queued.
    """
    deadline = threading.Event()
    timer = threading.Timer(settings.sync_render_deadline_s, deadline.set)

    def work(opened: Job) -> tuple[dict[str, Any], float | None]:
        last = [0]

        def progress(pct: int) -> None:
            if pct - last[0] >= 10 and pct < 100:
                last[0] = pct
                job_reports.job_progress(db, str(opened.id), opened.attempt, pct, "rendering")

        seed_from_fleet(db)  # the fleet's render speed, for a kind not rendered here yet
        try:
            return run(opened, get_storage(settings), progress, cancel=deadline)
        except RenderCanceled as exc:
            raise RenderDeadline(
                f"The render took longer than {settings.sync_render_deadline_s:g} s; "
                "it goes on as a job."
            ) from exc

    timer.start()
    try:
        return run_inline(db, job, work)
    finally:
        timer.cancel()
