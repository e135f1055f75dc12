"""The other forms a finished video can come in (the names and shapes only: the request
models read them at import, :mod:`videogen.media.exports` makes the files)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ExportFormat = Literal["webm", "gif", "mp3"]
FORMATS: tuple[ExportFormat, ...] = ("webm", "gif", "mp3")
# How each file is served, by its extension (rendering.outputs).
CONTENT_TYPES = {
    "webm": "video/webm",
    "gif": "image/gif",
    "mp3": "audio/mpeg",
    "png": "image/png",
    "jpg": "image/jpeg",
    "vtt": "text/vtt",
    "srt": "application/x-subrip",
}


class Poster(BaseModel):
    """A still of the finished video at ``at`` seconds (clamped into it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    at: float = Field(1.0, ge=0, le=600, description="Seconds into the video")
    format: Literal["png", "jpg"] = "jpg"
