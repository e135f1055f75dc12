"""Where a finished video goes, below :mod:`~videogen.rendering.composition`, the reference
worker and a provider's result copied home: the owner's folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.integrations.storage import user_path
from videogen.media.render import probe

if TYPE_CHECKING:
    from videogen.integrations.storage import Storage


def store_outputs(
    storage: Storage, user_id: str, job_id: str, video: Path, thumbnail: Path
) -> dict[str, Any]:
    """Upload a finished video and thumbnail to the owner's folders; what a worker reports
    (paths and metadata: links are signed when the job is read, :mod:`videogen.services.links`)."""
    info = probe(video)
    video_path = user_path(user_id, f"{job_id}.mp4")
    thumb_path = user_path(user_id, f"{job_id}.jpg")
    storage.upload("videos", video_path, video, "video/mp4")
    storage.upload("thumbnails", thumb_path, thumbnail, "image/jpeg")
    return {
        "video_path": video_path,
        "thumbnail_path": thumb_path,
        "duration_s": round(info["duration"], 3),
        "width": info["width"],
        "height": info["height"],
    }
