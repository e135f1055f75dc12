"""What the reference worker renders: the builder honours size, length, prompt and sound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from videogen.media.clip import InvalidClip as InvalidJob
from videogen.media.clip import VideoSpec, build_render, prompt_colour
from videogen.media.render import probe, render
from videogen.models.params import TextToVideoParams, params_for


def params(stored: dict[str, Any]) -> TextToVideoParams:
    """A text-to-video job's stored params, typed."""
    typed = params_for("text_to_video", stored)
    assert isinstance(typed, TextToVideoParams)
    return typed


SIZES = {
    ("16:9", "480p"): (854, 480),
    ("16:9", "720p"): (1280, 720),
    ("16:9", "1080p"): (1920, 1080),
    ("9:16", "480p"): (480, 854),
    ("9:16", "720p"): (720, 1280),
    ("9:16", "1080p"): (1080, 1920),
    ("1:1", "480p"): (480, 480),
    ("1:1", "720p"): (720, 720),
    ("1:1", "1080p"): (1080, 1080),
}


@pytest.mark.parametrize(("aspect", "resolution"), SIZES)
def test_frame_sizes(aspect: str, resolution: str) -> None:
    spec = VideoSpec.from_params(
        params({"prompt": "x", "duration": 3, "aspect_ratio": aspect, "resolution": resolution})
    )
    assert spec.size == SIZES[aspect, resolution]


def test_the_plan_draws_the_prompt_and_a_tone(tmp_path: Path) -> None:
    spec = VideoSpec.from_params(params({"prompt": "50% off: {sale}", "duration": 4}))
    args = " ".join(build_render(spec, tmp_path / "v.mp4").args)
    assert "50% off" in args and "expansion=none" in args
    assert "sine=frequency=" in args and prompt_colour(spec.prompt) in args
    assert "-t 4" in args
    with pytest.raises(InvalidJob):
        VideoSpec("x", 5.0, aspect_ratio="4:3")  # typed params cannot even say it


@pytest.mark.parametrize(("aspect", "resolution"), [("9:16", "480p"), ("1:1", "720p")])
def test_render_matches_the_request(tmp_path: Path, aspect: str, resolution: str) -> None:
    spec = VideoSpec.from_params(params(
        {"prompt": "It's a 'quoted' prompt, with: colons", "duration": 1,
         "aspect_ratio": aspect, "resolution": resolution}
    ))  # fmt: skip
    seen: list[int] = []
    out = render(build_render(spec, tmp_path / "v.mp4"), progress=seen.append)
    info = probe(out)
    assert (info["width"], info["height"]) == SIZES[aspect, resolution]
    assert info["duration"] == pytest.approx(1.0, abs=0.1)
    assert info["has_audio"] and info["video_codec"] == "h264"
    assert seen[-1] == 100
