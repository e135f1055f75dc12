"""The user's uploads a job names, checked before any money moves.

An image-to-video ``image_path``, a compose job's ``images``, ``music_path`` and
``narration_paths`` must be the caller's own objects in the ``uploads`` bucket, exist,
and be what they claim: a PNG/JPEG/WebP image within the size and dimension limits of
:func:`videogen.media.images.validate_upload` (magic bytes and ffprobe agree), or audio
ffprobe can read. Any problem is a 422 naming the field, and nothing is reserved.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.errors import AppError, ValidationFailed

if TYPE_CHECKING:
    from videogen.storage import Storage

BUCKET = "uploads"
MAX_AUDIO_BYTES = 100 * 1024 * 1024


def named_uploads(params: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, path, kind) for each upload the params name; kind is image or audio."""
    named = []
    if isinstance(params.get("image_path"), str):
        named.append(("params.image_path", params["image_path"], "image"))
    for i, path in enumerate(params.get("images") or []):
        if isinstance(path, str):
            named.append((f"params.images.{i}", path, "image"))
    if isinstance(params.get("music_path"), str):
        named.append(("params.music_path", params["music_path"], "audio"))
    for i, path in enumerate(params.get("narration_paths") or []):
        if isinstance(path, str):
            named.append((f"params.narration_paths.{i}", path, "audio"))
    return named


def _refuse(field: str, message: str, code: str, hint: str | None = None) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", code=code, hint=hint, details=[{"field": field, "message": message}]
    )


def check_uploads(storage: Storage, user_id: str, params: dict[str, Any]) -> None:
    """Refuse (422) a job whose named uploads are not the caller's usable files."""
    from videogen.storage import ObjectNotFound, clean_path, owner_of

    for field, path, kind in named_uploads(params):
        clean_path(path)
        if owner_of(path) != user_id:
            raise _refuse(
                field,
                f"{path} is not in your uploads folder",
                "INVALID_PARAMS",
                hint=f"Upload to uploads/{user_id}/… and name that path.",
            )
        try:
            data = storage.download(BUCKET, path)
        except ObjectNotFound:
            raise _refuse(
                field, f"no upload at uploads/{path}", "UPLOAD_NOT_FOUND", "Upload it first."
            ) from None
        _check_content(field, path, kind, data)


def _check_content(field: str, path: str, kind: str, data: bytes) -> None:
    from videogen.media.errors import ProbeError
    from videogen.media.images import validate_upload
    from videogen.media.render import probe

    with tempfile.TemporaryDirectory(prefix="videogen-upload-") as tmp:
        local = Path(tmp) / Path(path).name
        local.write_bytes(data)
        if kind == "image":
            try:
                validate_upload(local)
            except AppError as exc:
                raise _refuse(field, exc.message, "INVALID_UPLOAD", exc.hint) from exc
            return
        if len(data) > MAX_AUDIO_BYTES:
            raise _refuse(field, f"{len(data)} bytes is over 100 MB", "INVALID_UPLOAD")
        try:
            info = probe(local)
        except ProbeError:
            info = {}
        if not info.get("has_audio"):
            raise _refuse(field, "not audio ffprobe can read", "INVALID_UPLOAD")
