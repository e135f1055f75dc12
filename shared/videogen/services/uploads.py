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

Any of those files but a narration step's may be named by an https URL instead (seed 004's
media download): :func:`fetch_urls` fetches each once through
:mod:`videogen.integrations.public_http` (public hosts only, bounded in time, size and
content type), checks it exactly as an upload and stores it in the caller's uploads, and the
job names the stored path — all before any credit is reserved.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from videogen.errors import AppError, ValidationFailed
from videogen.integrations.public_http import OutboundFailed, OutboundRefused, PublicHttp
from videogen.integrations.storage import ObjectNotFound, clean_path, owner_of, user_path
from videogen.media.errors import ProbeError
from videogen.media.images import MAX_UPLOAD_BYTES, sniff_image_format, validate_upload
from videogen.media.render import FFMPEG, probe, run_bounded
from videogen.media.timeline import VIDEO_EXTS
from videogen.models.elements import AudioElement, ImageElement, VideoElement

if TYPE_CHECKING:
    from videogen.config import Settings
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


# Media by URL -------------------------------------------------------------------------------

URL_FOLDER = "from-url"
URL_TIMEOUT_S = 30.0  # one file
URLS_TIMEOUT_S = 60.0  # all the files of one request together
MAX_URLS = 16
# What a URL's answer may declare itself as, per kind (servers often say octet-stream; the
# content is what decides, decoded like an upload).
URL_CONTENT_TYPES = {
    "image": ("image/", "application/octet-stream", "binary/octet-stream"),
    "audio": ("audio/", "application/ogg", "application/octet-stream", "binary/octet-stream"),
    "video": ("video/", "application/octet-stream", "binary/octet-stream"),
}
URL_MAX_BYTES = {"image": MAX_UPLOAD_BYTES, "audio": MAX_AUDIO_BYTES, "video": MAX_VIDEO_BYTES}
_AUDIO_EXTENSIONS = {"mp3": ".mp3", "wav": ".wav", "ogg": ".ogg"}
_VIDEO_EXTENSIONS = {"matroska": ".webm", "webm": ".webm", "avi": ".avi"}
_CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".mp3": "audio/mpeg",
    ".wav": "audio/wav", ".ogg": "audio/ogg", ".m4a": "audio/mp4", ".mp4": "video/mp4",
    ".webm": "video/webm", ".avi": "video/x-msvideo",
}  # fmt: skip


def is_url(value: str | None) -> bool:
    """Whether a params field names a file on the web rather than an upload."""
    return value is not None and "://" in value


def named_urls(params: JobParams) -> list[tuple[str, str, str, float]]:
    """(field, URL, kind, trim) for each file the params name by URL."""
    return [entry for entry in named_uploads(params) if is_url(entry[1])]


def fetch_urls(
    storage: Storage,
    settings: Settings,
    user_id: str,
    params: JobParams,
    *,
    http: PublicHttp | None = None,
) -> JobParams:
    """The params with every file named by URL fetched once, checked like an upload and
    stored in the caller's ``uploads`` folder (``<uid>/from-url/<sha256>.<ext>``), its URL
    replaced by that path — before any credit is reserved. A URL that is not https to a
    public host is refused before anything is fetched (422 ``URL_NOT_ALLOWED``), one that
    cannot be fetched is a 422 ``MEDIA_URL_FAILED`` and one whose file is not what the field
    takes a 422 ``INVALID_UPLOAD``; every problem is listed, and nothing is stored then.
    """
    wanted = named_urls(params)
    if not wanted:
        return params
    if len({url for _, url, _, _ in wanted}) > MAX_URLS:
        raise ValidationFailed(
            f"A job may name at most {MAX_URLS} files by URL.", code="INVALID_PARAMS"
        )
    own = http is None
    client = http or PublicHttp(settings=settings, timeout_s=URL_TIMEOUT_S)
    problems: list[tuple[str, _Problem]] = []
    fetched: dict[str, tuple[str, bytes, str] | None] = {}  # URL → (path, data, type)
    try:
        # Every URL is checked before the first is fetched: a private one moves nothing.
        for field, url, _, _ in wanted:
            try:
                client.target(url)
            except OutboundRefused as exc:
                problems.append((field, _Problem(exc.message, exc.code, exc.hint)))
        if problems:
            _refuse(problems)
        deadline = time.monotonic() + URLS_TIMEOUT_S
        for field, url, kind, trim in wanted:
            if url in fetched:  # named twice: fetched once
                continue
            try:
                left = min(URL_TIMEOUT_S, deadline - time.monotonic())
                if left <= 0:
                    raise _Problem(
                        f"not fetched: the request's {URLS_TIMEOUT_S:g} s for files by URL ran out",
                        "MEDIA_URL_FAILED",
                    )
                fetched[url] = _fetch_one(client, user_id, url, kind, trim, left)
            except _Problem as problem:
                fetched[url] = None
                problems.append((field, problem))
    finally:
        if own:
            client.close()
    if problems:
        _refuse(problems)
    for path, data, content_type in {v for v in fetched.values() if v is not None}:
        storage.upload(BUCKET, path, data, content_type, upsert=True)
    paths = {url: found[0] for url, found in fetched.items() if found is not None}
    return _replace_urls(params, paths)


def _fetch_one(
    client: PublicHttp, user_id: str, url: str, kind: str, trim: float, timeout_s: float
) -> tuple[str, bytes, str]:
    try:
        answer = client.get(
            url,
            max_bytes=URL_MAX_BYTES[kind],
            content_types=URL_CONTENT_TYPES[kind],
            timeout_s=timeout_s,
        )
    except OutboundRefused as exc:
        raise _Problem(exc.message, exc.code, exc.hint) from exc
    except OutboundFailed as exc:
        raise _Problem(
            f"{url[:200]} could not be fetched: {exc.message}", "MEDIA_URL_FAILED"
        ) from exc
    if not answer.is_success:
        raise _Problem(f"{url[:200]} answered {answer.status_code}", "MEDIA_URL_FAILED")
    data = answer.content
    _check_content("fetched", kind, data, trim)
    extension = _extension(kind, data)
    name = hashlib.sha256(data).hexdigest()[:40] + extension
    return user_path(user_id, URL_FOLDER, name), data, _CONTENT_TYPES[extension]


def _extension(kind: str, data: bytes) -> str:
    """The file name's extension for checked content (what element checks and renders read)."""
    if kind == "image":
        found = sniff_image_format(data[:16])
        return {"jpeg": ".jpg"}.get(str(found), f".{found}")
    with tempfile.TemporaryDirectory(prefix="videogen-url-") as tmp:
        local = Path(tmp) / "file"
        local.write_bytes(data)
        formats = str(probe(local).get("format") or "").split(",")
    table = _AUDIO_EXTENSIONS if kind == "audio" else _VIDEO_EXTENSIONS
    for name in formats:
        if name in table:
            return table[name]
    return ".m4a" if kind == "audio" else ".mp4"  # the mov/mp4 family


def _replace_urls(params: JobParams, paths: dict[str, str]) -> JobParams:
    """The params with each fetched URL replaced by its stored path."""
    data = params.model_dump(by_alias=True, exclude_none=True)

    def swap(value: Any) -> Any:
        return paths.get(value, value) if isinstance(value, str) else value

    for key in ("image_path", "music_path"):
        if key in data:
            data[key] = swap(data[key])
    if "images" in data:
        data["images"] = [swap(v) for v in data["images"]]
    for element in data.get("elements", []):
        if "path" in element:
            element["path"] = swap(element["path"])
    return type(params).model_validate(data)


def _refuse(problems: list[tuple[str, _Problem]]) -> NoReturn:
    details = [{"field": f, "message": p.message, "code": p.code} for f, p in problems]
    first_field, first = problems[0]
    if len(problems) == 1:
        message = f"{first_field}: {first.message}"
    else:
        message = f"{len(problems)} files named by URL are not usable: " + "; ".join(
            f"{f}: {p.message}" for f, p in problems
        )
    raise ValidationFailed(message, code=first.code, hint=first.hint, details=details)
