"""Where a finished video or picture goes, below :mod:`~videogen.rendering.composition`, the
reference worker and a provider's result copied home: the owner's folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.integrations.storage import user_path
from videogen.media.forms import CONTENT_TYPES
from videogen.media.images import validate_upload
from videogen.media.render import probe

# The images bucket's limit (sql/schema/12_storage.sql).
MAX_PICTURE_BYTES = 50 * 1024 * 1024

if TYPE_CHECKING:
    from videogen.integrations.storage import Storage


# The other files of a composed video (media.exports.export's kinds): their output key.
EXTRA_KEYS = {
    "webm": "webm_path",
    "gif": "gif_path",
    "mp3": "mp3_path",
    "poster": "poster_path",
    "vtt": "vtt_path",
    "srt": "srt_path",
}


def store_outputs(
    storage: Storage,
    user_id: str,
    job_id: str,
    video: Path,
    thumbnail: Path,
    files: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Upload a finished video, its thumbnail and its other ``files`` (by kind, in the
    ``videos`` bucket) to the owner's folders; what a worker reports (paths and metadata:
    links are signed when the job is read, :mod:`videogen.services.links`)."""
    info = probe(video)
    video_path = user_path(user_id, f"{job_id}.mp4")
    thumb_path = user_path(user_id, f"{job_id}.jpg")
    storage.upload("videos", video_path, video, "video/mp4")
    storage.upload("thumbnails", thumb_path, thumbnail, "image/jpeg")
    output: dict[str, Any] = {
        "video_path": video_path,
        "thumbnail_path": thumb_path,
        "duration_s": round(info["duration"], 3),
        "width": info["width"],
        "height": info["height"],
    }
    for kind, path in (files or {}).items():
        suffix = path.suffix.lstrip(".")
        name = f"{job_id}.poster.{suffix}" if kind == "poster" else f"{job_id}.{suffix}"
        stored = user_path(user_id, name)
        storage.upload("videos", stored, path, CONTENT_TYPES[suffix])
        output[EXTRA_KEYS[kind]] = stored
    return output


PICTURE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def store_picture(
    storage: Storage, user_id: str, job_id: str, picture: Path, thumbnail: Path
) -> dict[str, Any]:
    """Upload a finished picture (PNG, JPEG or WebP, checked like an upload) to ``images``
    and its thumbnail to ``thumbnails`` under the owner's folder; what a worker reports."""
    info = validate_upload(picture, max_bytes=MAX_PICTURE_BYTES, min_side=1)
    image_path = user_path(user_id, f"{job_id}.{'jpg' if info.format == 'jpeg' else info.format}")
    thumb_path = user_path(user_id, f"{job_id}.jpg")
    storage.upload("images", image_path, picture, PICTURE_TYPES[info.format])
    storage.upload("thumbnails", thumb_path, thumbnail, "image/jpeg")
    return {
        "image_path": image_path,
        "thumbnail_path": thumb_path,
        "width": info.width,
        "height": info.height,
    }
