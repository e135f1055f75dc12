"""Output forms, frame shapes and rates, and the xfade catalogue, on real renders: each
file decodes with ffprobe as the codec, size and rate it claims."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from videogen.media.compose import ComposeRequest, compose
from videogen.media.forms import Poster
from videogen.media.graph import compile_timeline
from videogen.media.narration import EspeakEngine
from videogen.media.render import probe, render, render_timeline
from videogen.media.script import Script
from videogen.media.timeline import (
    XFADE_TRANSITIONS,
    ImageClip,
    OutputPreset,
    Timeline,
    Track,
    Transition,
    installed_transitions,
)
from videogen.models.params import ComposeParams


def card(folder: Path, colour: str, size: str = "160x90") -> Path:
    path = folder / f"{colour}.png"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c={colour}:s={size}",
             "-frames:v", "1", str(path)], check=True,
        )  # fmt: skip
    return path


def test_a_composed_video_comes_as_webm_gif_mp3_poster_and_captions(tmp_path: Path) -> None:
    script = Script(
        title="Forms", sections=[{"title": "One", "narration": "One video, many forms."}]
    )
    request = ComposeRequest(
        script=script,
        aspect="4:5",
        quality="480p",
        fps=24,
        formats=["webm", "gif", "mp3"],
        poster=Poster(at=1.0, format="png"),
    )
    result = compose(request, tmp_path, narration_engine=EspeakEngine())
    mp4 = probe(result.video_path)
    assert (mp4["video_codec"], mp4["audio_codec"]) == ("h264", "aac")
    assert (mp4["width"], mp4["height"], mp4["fps"]) == (480, 600, 24)
    assert set(result.files) == {"webm", "gif", "mp3", "poster", "vtt", "srt"}
    webm = probe(result.files["webm"])
    assert (webm["video_codec"], webm["audio_codec"], webm["format"]) == (
        "vp9", "opus", "matroska,webm"
    )  # fmt: skip
    assert (webm["width"], webm["height"], webm["fps"]) == (480, 600, 24)
    assert webm["duration"] == pytest.approx(mp4["duration"], abs=0.1)
    gif = probe(result.files["gif"])
    assert (gif["video_codec"], gif["width"], gif["height"]) == ("gif", 480, 600)
    assert gif["fps"] <= 15 and gif["duration"] == pytest.approx(mp4["duration"], abs=0.2)
    mp3 = probe(result.files["mp3"])
    assert (mp3["audio_codec"], mp3["has_video"]) == ("mp3", False)
    assert mp3["duration"] == pytest.approx(mp4["duration"], abs=0.1)
    poster = probe(result.files["poster"])
    assert (poster["video_codec"], poster["width"], poster["height"]) == ("png", 480, 600)
    vtt = result.files["vtt"].read_text()
    assert vtt.startswith("WEBVTT") and "One video, many forms." in vtt.replace("\n", " ")
    assert result.files["srt"].read_text().startswith("1\n00:00:00,")


@pytest.mark.parametrize(
    ("aspect", "fps", "size"),
    [("16:9", 25, (854, 480)), ("9:16", 60, (480, 854)), ("1:1", 30, (480, 480)),
     ("4:5", 24, (480, 600))],
)  # fmt: skip
def test_each_aspect_ratio_and_rate_renders_at_its_size(
    tmp_path: Path, aspect: str, fps: int, size: tuple[int, int]
) -> None:
    timeline = Timeline(
        output=OutputPreset(aspect=aspect, quality="480p", fps=fps, preset="ultrafast"),
        tracks=[Track(kind="video", clips=[
            ImageClip(start=0, duration=1, source=card(tmp_path, "teal"), ken_burns=False)
        ])],
        transition=None,
    )  # fmt: skip
    info = probe(render_timeline(timeline, tmp_path / "out.mp4", workers=1))
    assert (info["width"], info["height"], info["fps"]) == (*size, fps)


def test_a_custom_frame_size_renders_and_is_bounded(tmp_path: Path) -> None:
    timeline = Timeline(
        output=OutputPreset(custom_size=(320, 200), fps=30, preset="ultrafast"),
        tracks=[Track(kind="video", clips=[
            ImageClip(start=0, duration=1, source=card(tmp_path, "olive"), ken_burns=False)
        ])],
        transition=None,
    )  # fmt: skip
    info = probe(render_timeline(timeline, tmp_path / "custom.mp4", workers=1))
    assert (info["width"], info["height"]) == (320, 200)
    with pytest.raises(ValidationError, match="even"):
        OutputPreset(custom_size=(321, 200))
    with pytest.raises(ValidationError, match="4K"):
        OutputPreset(custom_size=(4000, 3000))
    assert ComposeParams.model_validate({"size": {"width": 3840, "height": 2160}}).size
    with pytest.raises(ValidationError, match="more pixels than 4K"):
        ComposeParams.model_validate({"size": {"width": 3840, "height": 3840}})
    with pytest.raises(ValidationError, match="24, 25, 30, 60 fps"):
        ComposeParams.model_validate({"fps": 29})


def test_the_catalogue_is_what_the_installed_xfade_offers() -> None:
    installed = installed_transitions()
    assert "wipeleft" in installed and "custom" not in installed
    assert set(XFADE_TRANSITIONS) <= installed


def test_an_unknown_transition_names_the_close_ones() -> None:
    with pytest.raises(ValidationError, match="did you mean wipeleft"):
        ComposeParams.model_validate({"transition": {"kind": "wipelft", "duration": 0.5}})
    with pytest.raises(ValidationError, match="unknown transition 'zzz'"):
        Transition(kind="zzz")


@pytest.mark.parametrize("kind", XFADE_TRANSITIONS)
def test_each_transition_renders(tmp_path: Path, kind: str) -> None:
    """Red then blue, crossed with ``kind``: the frame midway is neither picture alone."""
    timeline = Timeline(
        output=OutputPreset(custom_size=(96, 64), fps=10, preset="ultrafast"),
        tracks=[Track(kind="video", clips=[
            ImageClip(start=0, duration=1, source=card(tmp_path, "red", "96x64"),
                      ken_burns=False),
            ImageClip(start=1, duration=1, source=card(tmp_path, "blue", "96x64"),
                      ken_burns=False),
        ])],
        transition=Transition(kind=kind, duration=0.6),
    )  # fmt: skip
    video = render(compile_timeline(timeline, tmp_path / f"{kind}.mp4"))
    info = probe(video)
    assert info["duration"] == pytest.approx(2.0, abs=0.11)
    frames = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-"], capture_output=True, check=True,
    ).stdout  # fmt: skip
    size, pixels = 96 * 64 * 3, 96 * 64

    def whole(frame: bytes) -> str | None:
        reds = sum(1 for i in range(0, size, 3) if frame[i] > 150 and frame[i + 2] < 100)
        blues = sum(1 for i in range(0, size, 3) if frame[i + 2] > 150 and frame[i] < 100)
        return "red" if reds > 0.98 * pixels else "blue" if blues > 0.98 * pixels else None

    at = [frames[k * size : (k + 1) * size] for k in range(len(frames) // size)]
    assert whole(at[5]) == "red" and whole(at[-1]) == "blue"
    # Cut without a transition, frame 10 (1.0 s) would be blue; crossed, the outgoing
    # picture is still there (a blend, a wipe, a zoom…), and blue alone by 1.6 s.
    assert whole(at[10]) != "blue", [whole(f) for f in at[8:18]]
    assert whole(at[16]) == "blue"
    if kind not in ("distance", "zoomin"):  # on flat colours these two switch at once
        assert any(whole(frame) is None for frame in at[10:16]), [whole(f) for f in at[8:18]]
