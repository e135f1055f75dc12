"""Errors of the media pipeline: one root, one subclass per stage, each an ``AppError``.

Each subclass's docstring is its default message, so a caller can raise the bare class.
"""

from __future__ import annotations

from videogen.errors import AppError


class MediaError(AppError):
    """The media pipeline failed."""

    status, code = 500, "MEDIA_ERROR"


class TimelineError(MediaError):
    """The timeline is not valid."""

    status, code = 422, "INVALID_TIMELINE"


class ImageError(MediaError):
    """The image is not usable."""

    status, code = 422, "INVALID_IMAGE"


class ScriptError(MediaError):
    """The script could not be written."""

    status, code = 502, "SCRIPT_FAILED"


class NarrationError(MediaError):
    """The narration could not be synthesized."""

    status, code = 502, "NARRATION_FAILED"


class ProbeError(MediaError):
    """The file could not be read as media."""

    status, code = 422, "PROBE_FAILED"


class RenderError(MediaError):
    """ffmpeg failed to render the video."""

    status, code = 500, "RENDER_FAILED"

    def __init__(self, message: str | None = None, *, stderr_tail: str = "", **kw: object) -> None:
        self.stderr_tail = stderr_tail
        details = [{"stderr_tail": stderr_tail}] if stderr_tail else None
        super().__init__(message, details=details, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.message}\n{self.stderr_tail}" if self.stderr_tail else self.message


class RenderCanceled(MediaError):
    """The render was canceled."""

    status, code = 409, "RENDER_CANCELED"


class RenderDeadline(MediaError):
    """The render ran past its deadline; it goes on as a job."""

    status, code = 503, "RENDER_DEADLINE"
    retryable = True
