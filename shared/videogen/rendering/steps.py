"""The creation wizard's steps (seed 001) as jobs of their own: script, narration, images.

Each step is a job with its own type and price: reserved when made, run inside the
request (the function is its own worker, as for a short composed video — these take
seconds), captured or released by the same procedures as any job. Each result is the
job's ``output``: the client may edit it and feed it to the next step; assembly is the
``compose`` job with what the steps made::

    script     {prompt | topic, sections, language, duration}       → {script, analysis}
               {script, instruction}                               → the script improved
    narration  {script | prompt, voice, language, speaking_rate, duration}
               → one WAV per section in uploads/<uid>/steps/<job>/, with the sections'
                 timings as the assembled video will have them and each word's time
                 (also beside each WAV as ``….words.json``, read by the compose job)
    images     {script, source: card | stock | clip | mixed, timings?, aspect_ratio, resolution}
               → one picture or clip per section (a title card, a stock photo, a stock
                 clip — Pexels or Pixabay videos — or offline a title card moving), and
                 the credits of what came from a stock service (``credits``)
    compose    {script, narration_paths, images, …}                → the video

Files go to the owner's ``uploads`` folder, so the compose job names them as it names any
upload (and the upload check applies).
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.db import provider_keys
from videogen.errors import AppError, ServiceUnavailable, ValidationFailed
from videogen.media.script import (
    OpenAIScriptEngine,
    Script,
    ScriptSection,
    analyze,
    get_script_engine,
    offline_understands,
)

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage
    from videogen.media.script import Script, ScriptEngine
    from videogen.models.jobs import Job, JobParams
    from videogen.models.params import ImagesParams, NarrationParams

STEP_TYPES = ("script", "narration", "images")
PREVIEW_TEXT = "Hello! This is how I sound when I narrate your video."


def check_params(settings: Settings, params: JobParams) -> None:
    """Refuse, before any money moves, a step this deployment cannot run (503), or an
    instruction its script engine cannot follow (422 naming the engine that can)."""
    if (
        params.instruction
        and settings.script_engine == "offline"
        and not offline_understands(params.instruction)
    ):
        raise AppError(
            "The offline script engine can only make a script shorter or longer; "
            f"{params.instruction!r} needs the OpenAI engine.",
            status=422,
            code="INSTRUCTION_NOT_SUPPORTED",
            hint="Ask for it 'shorter' or 'longer', or use a deployment with SCRIPT_ENGINE=openai.",
            details=[
                {
                    "field": "params.instruction",
                    "message": "the offline engine cannot follow this instruction",
                    "engine": "offline",
                    "engines_that_can": ["openai"],
                }
            ],
        )
    if params.source in ("clip", "mixed") and settings.stock_videos != "none":
        # cold start: integrations.stock loads only on this path
        from videogen.integrations.stock import stock_videos

        stock_videos(settings)  # a configured search without its key: 503 now
    if params.source == "stock" and settings.stock_photos == "none":
        raise ServiceUnavailable(
            "Stock photos are not configured here.",
            code="PROVIDER_NOT_CONFIGURED",
            hint="Ask for title cards (source: card), or set STOCK_PHOTOS and its API key.",
        )


def run(db: Database, settings: Settings, job: Job) -> Job:
    """Run a step job (its type in ``STEP_TYPES``) to its end; the finished job."""
    # cold start: integrations.storage loads only on this path
    from videogen.integrations.storage import storage_for

    # cold start: rendering.inline loads only on this path
    from videogen.rendering.inline import Work, run_inline

    storage = storage_for(settings)
    runners: dict[str, Work] = {
        "script": lambda j: _script(j, _script_engine(db, settings, j)),
        "narration": lambda j: _narration(j, storage),
        "images": lambda j: _images(j, settings, storage),
    }
    return run_inline(db, job, runners[job.job_type])


# Script --------------------------------------------------------------------------------------


def _script_of(script: Script | None) -> Script:
    if script is None:
        raise ValidationFailed(
            "This step needs a script: the output of a script step, edited or not.",
            code="INVALID_PARAMS",
            details=[
                {"field": "params.script", "message": "a script {title, sections[]} is required"}
            ],
        )
    return script


def _script_engine(db: Database, settings: Settings, job: Job) -> ScriptEngine:
    """The deployment's script engine; with OpenAI, on the job owner's own key if they
    stored one (sent to OpenAI itself, never to a configured OPENAI_BASE_URL)."""
    if settings.script_engine == "openai":
        own = provider_keys.provider_key_for_job(db, str(job.id), "openai")
        if own is not None:
            return OpenAIScriptEngine(model=settings.openai_model, api_key=own)
    return get_script_engine()


def _script(job: Job, engine: ScriptEngine) -> tuple[dict[str, Any], float | None]:
    # cold start: models.params loads only on this path
    from videogen.models.params import ScriptParams

    params = ScriptParams.stored(job.params)
    language = params.language or "en"
    if params.script is not None:
        script = params.script
        if params.instruction:
            script = engine.improve(script, params.instruction, language=language)
    else:
        script = engine.write(
            params.topic or params.prompt or "",
            sections=params.sections or 4,
            language=language,
        )
    output = {
        "script": script.model_dump(),
        "analysis": analyze(script).model_dump(),
        "engine": engine.name,
    }
    return output, None


def analysis(script: Script, speaking_rate: float) -> dict[str, Any]:
    """Words and reading time of a script and its sections (free: no job)."""
    return analyze(script, speaking_rate=speaking_rate).model_dump()


# Narration -----------------------------------------------------------------------------------


def _narrated(params: NarrationParams) -> Script:
    """The script to narrate: ``script``, or plain ``prompt`` text as one section."""
    if params.script is not None:
        return params.script
    text = (params.prompt or "").strip()
    if not text:
        raise ValidationFailed(
            "Give the narration a script or a prompt to read.",
            code="INVALID_PARAMS",
            details=[{"field": "params.prompt", "message": "nothing to narrate"}],
        )
    return Script(title="Narration", sections=[ScriptSection(title="Narration", narration=text)])


def _narration(job: Job, storage: Storage) -> tuple[dict[str, Any], float | None]:
    # cold start: integrations.storage loads only on this path
    from videogen.integrations.storage import user_path

    # cold start: media.compose loads only on this path
    from videogen.media.compose import SECTION_LEAD_S, SECTION_TAIL_S

    # cold start: media.narration loads only on this path
    from videogen.media.narration import get_narration_engine, narrate_sections

    # cold start: models.params loads only on this path
    from videogen.models.params import NarrationParams

    # cold start: rendering.composition loads only on this path
    from videogen.rendering.composition import words_path

    params, user_id = NarrationParams.stored(job.params), str(job.user_id)
    script = _narrated(params)
    engine = get_narration_engine()
    fps = params.fps or 30
    sections, paths, start = [], [], 0.0
    with tempfile.TemporaryDirectory(prefix="videogen-narration-") as tmp:
        speeches = narrate_sections(
            engine,
            [s.narration for s in script.sections],
            Path(tmp),
            voice=params.voice,
            language=params.language or "en",
            speaking_rate=params.speaking_rate or 1.0,
        )
        for i, (section, speech) in enumerate(zip(script.sections, speeches, strict=True)):
            path = user_path(user_id, "steps", str(job.id), f"narration_{i:02d}.wav")
            storage.upload("uploads", path, speech.path, "audio/wav")
            words = [w.as_json() for w in speech.words]
            if words:  # beside the file, where a compose job naming it finds them
                timing = json.dumps({"words": words}).encode()
                storage.upload("uploads", words_path(path), timing, "application/json")
            # The section as the assembled video lays it out (media.compose's padding).
            length = math.ceil((SECTION_LEAD_S + speech.duration + SECTION_TAIL_S) * fps) / fps
            sections.append(
                {
                    "index": i,
                    "title": section.title,
                    "path": path,
                    "speech_s": round(speech.duration, 3),
                    "start_s": round(start, 3),
                    "duration_s": round(length, 3),
                    "words": words,  # each word's start and end in this file, seconds
                }
            )
            paths.append(path)
            start = round((start + length) * fps) / fps
    if params.duration is not None and start > params.duration:
        raise AppError(
            f"the narration runs {start:.1f} s, over the {params.duration} s paid for",
            status=422,
            code="NARRATION_TOO_LONG",
            hint="Raise duration, or shorten the script (a script step with 'shorter').",
        )
    output = {
        "narration_paths": paths,
        "sections": sections,
        "duration_s": round(start, 3),
        "voice": params.voice,
        "engine": engine.name,
        "script": script.model_dump(),
    }
    return output, start


@functools.lru_cache(maxsize=256)
def preview_voice(voice: str | None, language: str, text: str | None) -> bytes:
    """A few seconds of ``voice`` saying ``text`` (or a stock sentence), as WAV bytes;
    cached in the process (the same request always sounds the same; 256 previews of a
    few seconds are a few MB)."""
    # cold start: media.narration loads only on this path
    from videogen.media.narration import get_narration_engine

    with tempfile.TemporaryDirectory(prefix="videogen-preview-") as tmp:
        out = Path(tmp) / "preview.wav"
        get_narration_engine().synthesize(text or PREVIEW_TEXT, out, voice=voice, language=language)
        return out.read_bytes()


# Images --------------------------------------------------------------------------------------

STOCK_QUERY_WORDS = 6
# Words that say nothing to a photo search.
_SKIP = frozenset(
    "a an the of and or to in on for with by at from that this its showing shows one some".split()  # noqa: SIM905
)


def stock_query(prompt: str) -> str:
    """A short search query from an image prompt: its first meaningful words."""
    words = [w.strip(",.;:!?'\"()") for w in prompt.split()]
    return " ".join([w for w in words if w and w.lower() not in _SKIP][:STOCK_QUERY_WORDS])


def _timings(params: ImagesParams, script: Script) -> list[dict[str, float]]:
    """Each section's start and length: the narration step's, else from reading time."""
    given = params.timings
    if given:
        if len(given) != len(script.sections):
            raise ValidationFailed(
                f"{len(given)} timings for {len(script.sections)} sections",
                code="INVALID_PARAMS",
                details=[{"field": "params.timings", "message": "one per section"}],
            )
        return [{"start_s": t.start_s, "duration_s": t.duration_s} for t in given]
    read = analyze(script, speaking_rate=params.speaking_rate or 1.0)
    return [{"start_s": s.start_s, "duration_s": s.reading_seconds} for s in read.sections]


def _section_kinds(source: str, count: int) -> list[str]:
    """What each section shows: ``card``, ``stock`` (a photo) or ``clip``; ``mixed``
    alternates a still (a stock photo when photos are configured, else a card) and a clip."""
    if source == "mixed":
        return ["still" if i % 2 == 0 else "clip" for i in range(count)]
    return [source] * count


def _images(job: Job, settings: Settings, storage: Storage) -> tuple[dict[str, Any], float | None]:
    # cold start: integrations.stock loads only on this path
    from videogen.integrations.stock import Orientation, stock_photos, stock_videos

    # cold start: integrations.storage loads only on this path
    from videogen.integrations.storage import user_path

    # cold start: media.images loads only on this path
    from videogen.media.images import (
        make_motion_clip,
        make_title_card,
        sniff_image_format,
        validate_upload,
    )

    # cold start: media.timeline loads only on this path
    from videogen.media.timeline import frame_size

    # cold start: models.params loads only on this path
    from videogen.models.params import ImagesParams
    from videogen.usage import record_calls  # cold start: usage loads only on this path

    params, user_id = ImagesParams.stored(job.params), str(job.user_id)
    script = _script_of(params.script)
    timings = _timings(params, script)
    aspect = params.aspect_ratio or "16:9"
    width, height = frame_size(aspect, params.resolution or "720p")
    orientation: Orientation = (
        "landscape" if aspect == "16:9" else "portrait" if aspect == "9:16" else "square"
    )
    source = params.source or "card"
    kinds = _section_kinds(source, len(script.sections))
    wants_photos = source == "stock" or (source == "mixed" and settings.stock_photos != "none")
    photos = stock_photos(settings) if wants_photos else None
    videos = stock_videos(settings) if "clip" in kinds else None
    images, credits = [], []
    with tempfile.TemporaryDirectory(prefix="videogen-images-") as tmp:
        for i, section in enumerate(script.sections):
            prompt = section.image_prompt or section.title
            entry: dict[str, Any] = {"index": i, "prompt": prompt, **timings[i]}
            kind, query = kinds[i], stock_query(prompt)
            local: Path | None = None
            if kind == "clip" and videos is not None:
                clip = videos.search(query, orientation, (width, height))
                record_calls()  # the search
                if clip is not None:
                    local = Path(tmp) / f"clip_{i:02d}.mp4"
                    local.write_bytes(videos.download(clip))
                    record_calls()
                    entry.update(kind="clip", width=clip.width, height=clip.height, **clip.credit)
                    credits.append({"index": i, **clip.credit})
            elif kind in ("stock", "still") and photos is not None:
                photo = photos.search(query, orientation)
                record_calls()  # the search
                if photo is not None:
                    data = photos.download(photo)
                    record_calls()
                    fmt = sniff_image_format(data[:16]) or "jpeg"
                    local = Path(tmp) / f"image_{i:02d}.{'jpg' if fmt == 'jpeg' else fmt}"
                    local.write_bytes(data)
                    validate_upload(local)
                    credit = {
                        "source": photo.provider,
                        "attribution": photo.attribution,
                        "author_url": photo.photographer_url,
                        "page_url": photo.page_url,
                    }
                    entry.update(kind="still", photographer_url=photo.photographer_url, **credit)
                    credits.append({"index": i, **credit})
            if local is None:
                card = make_title_card(
                    section.title,
                    Path(tmp) / f"image_{i:02d}.png",
                    width,
                    height,
                    subtitle=script.title if i == 0 else None,
                )
                if kind == "clip":  # offline: the card, moving
                    seconds = float(timings[i]["duration_s"])
                    local = make_motion_clip(card, Path(tmp) / f"clip_{i:02d}.mp4", width, height,
                                             seconds)  # fmt: skip
                    entry.update(kind="clip", source="motion")
                else:
                    local = card
                    entry.update(kind="still", source="card")
            path = user_path(user_id, "steps", str(job.id), local.name)
            storage.upload("uploads", path, local, _content_type(local))
            entry["path"] = path
            images.append(entry)
    output = {"image_paths": [e["path"] for e in images], "images": images, "credits": credits}
    return output, None


def _content_type(path: Path) -> str:
    types = {".png": "image/png", ".webp": "image/webp", ".mp4": "video/mp4"}
    return types.get(path.suffix, "image/jpeg")
