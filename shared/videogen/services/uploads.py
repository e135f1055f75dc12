"""The user's uploads a job names, checked before any money moves.

An image-to-video ``image_path``, a compose job's ``images``, ``music_path`` and
``narration_paths``, and the files of a composition's ``elements`` must be the caller's
own objects in the ``uploads`` bucket, exist, and be what they claim: a PNG/JPEG/WebP image
within the size and dimension limits of :func:`videogen.media.images.validate_upload`
(magic bytes and ffprobe agree, and ffmpeg decodes the whole picture, so a truncated file
whose header still claims 8192x8192 is refused), audio ffprobe can read, or a video (mp4,
mov, avi, webm; at most 100 MB) whose picture ffmpeg decodes and whose length ffprobe
knows. Every problem is listed — a 422 with one detail per field, the first problem's code
as the answer's — and nothing is reserved.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from videogen.errors import AppError, ValidationFailed
from videogen.integrations.storage import ObjectNotFound, clean_path, owner_of
from videogen.media.errors import ProbeError
from videogen.media.images import validate_upload
from videogen.media.render import FFMPEG, probe, run_bounded
from videogen.media.timeline import VIDEO_EXTS
from videogen.models.elements import AudioElement, ImageElement, VideoElement

if TYPE_CHECKING:
    from videogen.integrations.storage import Storage
    from videogen.models.jobs import JobParams

BUCKET = "uploads"
MAX_AUDIO_BYTES = 100 * 1024 * 1024
MAX_VIDEO_BYTES = 100 * 1024 * 1024
# ffprobe's format names of the containers a video element may be.
VIDEO_FORMATS = {"mov", "mp4", "avi", "webm", "matroska"}


class _Problem(Exception):
    def __init__(self, message: str, code: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.hint = message, code, hint


def named_uploads(params: JobParams) -> list[tuple[str, str, str, float]]:
    """(field, path, kind, trim) for each upload the params name; kind is image, audio or
    video, trim where a video or sound element starts in its file (0 for the others)."""
    named: list[tuple[str, str, str, float]] = []
    if params.image_path is not None:
        named.append(("params.image_path", params.image_path, "image", 0.0))
    for i, path in enumerate(params.images or []):
        if path is not None:
            kind = "video" if Path(path).suffix.lower() in VIDEO_EXTS else "image"
            named.append((f"params.images.{i}", path, kind, 0.0))
    for i, clip in enumerate(params.section_clips or []):
        if clip is not None and clip.image_path is not None:
            named.append((f"params.section_clips.{i}.image_path", clip.image_path, "image", 0.0))
    if params.music_path is not None:
        named.append(("params.music_path", params.music_path, "audio", 0.0))
    for i, path in enumerate(params.narration_paths or []):
        named.append((f"params.narration_paths.{i}", path, "audio", 0.0))
    for i, el in enumerate(params.elements or []):
        if isinstance(el, VideoElement | ImageElement | AudioElement):
            trim = 0.0 if isinstance(el, ImageElement) else el.trim_start
            named.append((f"params.elements.{i}.path", el.path, el.type, trim))
    return named


def check_uploads(storage: Storage, user_id: str, params: JobParams) -> int:
    """Refuse (422) a job whose named uploads are not the caller's usable files, listing
    every one that is not; else the pixels of the pictures among them (what a render of
    them will have to decode). ``params``: the request's, before the job (and its type)
    exists."""
    problems: list[tuple[str, _Problem]] = []
    pixels = 0
    for field, path, kind, trim in named_uploads(params):
        try:
            clean_path(path)
            pixels += _check_one(storage, user_id, path, kind, trim)
        except _Problem as problem:
            problems.append((field, problem))
        except AppError as exc:
            if exc.status != 422:
                raise
            problems.append((field, _Problem(exc.message, exc.code, exc.hint)))
    if not problems:
        return pixels
    details = [{"field": f, "message": p.message, "code": p.code} for f, p in problems]
    first_field, first = problems[0]
    if len(problems) == 1:
        message = f"{first_field}: {first.message}"
    else:
        message = f"{len(problems)} uploads are not usable: " + "; ".join(
            f"{f}: {p.message}" for f, p in problems
        )
    raise ValidationFailed(message, code=first.code, hint=first.hint, details=details)


def _check_one(storage: Storage, user_id: str, path: str, kind: str, trim: float) -> int:
    if owner_of(path) != user_id:
        raise _Problem(
            f"{path} is not in your uploads folder",
            "INVALID_PARAMS",
            f"Upload to uploads/{user_id}/… and name that path.",
        )
    limit = MAX_VIDEO_BYTES if kind == "video" else MAX_AUDIO_BYTES
    local = storage.local_path(BUCKET, path)
    if local is not None and local.is_file() and local.stat().st_size > limit:
        # Refused without reading it: local storage knows the size.
        raise _Problem(f"{local.stat().st_size} bytes is over 100 MB", "INVALID_UPLOAD")
    try:
        data = storage.download(BUCKET, path)
    except ObjectNotFound:
        raise _Problem(
            f"no upload at uploads/{path}", "UPLOAD_NOT_FOUND", "Upload it first."
        ) from None
    return _check_content(path, kind, data, trim)


def _check_content(path: str, kind: str, data: bytes, trim: float = 0.0) -> int:
    """Check one upload's bytes; the pixels of a picture (0 for sound and video)."""
    with tempfile.TemporaryDirectory(prefix="videogen-upload-") as tmp:
        local = Path(tmp) / Path(path).name
        local.write_bytes(data)
        if kind == "image":
            try:
                picture = validate_upload(local)
            except AppError as exc:
                raise _Problem(exc.message, "INVALID_UPLOAD", exc.hint) from exc
            return picture.width * picture.height
        limit = MAX_VIDEO_BYTES if kind == "video" else MAX_AUDIO_BYTES
        if len(data) > limit:
            raise _Problem(f"{len(data)} bytes is over 100 MB", "INVALID_UPLOAD")
        try:
            info = probe(local)
        except ProbeError:
            info = {}
        if kind == "audio":
            if not info.get("has_audio"):
                raise _Problem("not audio ffprobe can read", "INVALID_UPLOAD")
            return 0
        formats = set(str(info.get("format") or "").split(","))
        if not info.get("has_video") or not formats & VIDEO_FORMATS or not info.get("fps"):
            raise _Problem("not an mp4, mov, avi or webm video ffprobe can read", "INVALID_UPLOAD")
        if not info.get("duration"):
            raise _Problem("a video of unknown length", "INVALID_UPLOAD")
        if trim >= info["duration"]:
            raise _Problem(
                f"trim_start {trim:g}s is past the video's end ({info['duration']:g}s)",
                "INVALID_UPLOAD",
            )
        if not _decodes(local, trim):
            raise _Problem("its picture does not decode", "INVALID_UPLOAD")
        return 0


def _decodes(video: Path, at_s: float) -> bool:
    """Whether ffmpeg decodes a frame of the video's picture at ``at_s``."""
    done = run_bounded(
        [FFMPEG, "-v", "error", "-nostdin", "-ss", f"{at_s:.3f}", "-i", str(video),
         "-map", "0:v:0", "-frames:v", "1", "-f", "framecrc", "-"],
        timeout=60,
    )  # fmt: skip
    return done.returncode == 0 and any(
        line and not line.startswith("#") for line in done.stdout.splitlines()
    )
