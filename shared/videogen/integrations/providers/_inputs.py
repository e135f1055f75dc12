"""Checks the adapters' input mappings share: job type, prompt, image, duration, ratio, size.

Each adapter maps a :class:`~videogen.integrations.providers.base.VideoRequest` to its provider's
documented input with these, and refuses (``ProviderRejected``, never retried: the job
fails and its credits are released) what the provider cannot do.

Durations: a provider that offers a few lengths (Kling: 5 or 10 s) gets the nearest one,
a tie going to the longer (nobody gets less than asked for by a rounding); a duration
shorter than the shortest or longer than the longest it makes is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from videogen.integrations.providers.base import PICTURE_JOB_TYPES, VIDEO_JOB_TYPES, VideoRequest
from videogen.integrations.providers.errors import ProviderRejected
from videogen.media.timeline import frame_size

T = TypeVar("T")


def reject(provider: str, model: str, why: str) -> ProviderRejected:
    """The error for a job ``model`` at ``provider`` cannot do."""
    return ProviderRejected(f"{provider} model {model} {why}", provider=provider)


def check_job_type(
    provider: str,
    model: str,
    request: VideoRequest,
    offered: Sequence[str] = ("text_to_video", "image_to_video"),
) -> None:
    """Refuse a job type the model does not make (compose, narration… or the other mode)."""
    known = VIDEO_JOB_TYPES | PICTURE_JOB_TYPES
    if request.job_type not in known or request.job_type not in offered:
        raise reject(
            provider,
            model,
            f"does not do {request.job_type} jobs (it does {', '.join(offered)}).",
        )


def need_prompt(provider: str, model: str, request: VideoRequest) -> str:
    """The prompt, which the model requires."""
    if not request.prompt:
        raise reject(provider, model, "needs a prompt.")
    return request.prompt


def need_image(provider: str, model: str, request: VideoRequest, *, https: bool = False) -> str:
    """The signed URL of the job's image (``https`` when the provider only fetches those)."""
    url = request.image_url
    if not url:
        raise reject(provider, model, "needs an input image (image_path).")
    if https and not url.startswith("https://"):
        raise reject(provider, model, "fetches input images over https only.")
    return url


def pick_duration(
    provider: str, model: str, requested: int | None, offered: Sequence[int], default: int
) -> int:
    """The length the model makes nearest to ``requested`` (see the module docstring)."""
    seconds = default if requested is None else requested
    if seconds < min(offered) or seconds > max(offered):
        raise reject(provider, model, f"makes {_seconds(offered)} videos, not {seconds} s.")
    return min(offered, key=lambda d: (abs(d - seconds), -d))


def pick_ratio(
    provider: str, model: str, requested: str | None, offered: Mapping[str, T], default: str
) -> T:
    """The provider's value for our aspect ratio, or a refusal naming those it has."""
    ratio = requested or default
    if ratio not in offered:
        raise reject(
            provider, model, f"does not make {ratio} videos (it makes {', '.join(offered)})."
        )
    return offered[ratio]


def _seconds(offered: Sequence[int]) -> str:
    values = sorted(set(offered))
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]} s"
    words = [str(v) for v in values]
    return (", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]) + " s"


def picture_size(request: VideoRequest) -> tuple[int, int]:
    """Width and height of the picture the job asks for: its frame, as a video's of the same
    ratio and resolution (16:9 720p → 1280x720)."""
    aspect = request.aspect_ratio if request.aspect_ratio in ("16:9", "9:16", "1:1") else "1:1"
    quality = request.resolution if request.resolution in ("480p", "720p", "1080p") else "720p"
    return frame_size(aspect, quality)  # type: ignore[arg-type]
