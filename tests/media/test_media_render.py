"""Real renders of short timelines, checked with ffprobe and pixel/volume measurements."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from videogen.media.errors import ProbeError, RenderCanceled, RenderError
from videogen.media.graph import compile_timeline
from videogen.media.render import make_thumbnail, probe, render, run_ffmpeg
from videogen.media.timeline import (
    AudioClip,
    ImageClip,
    OutputPreset,
    TextClip,
    Timeline,
    Track,
    Transition,
    VideoClip,
)

MeanVolume = Callable[[Path], float]
GrayFrame = Callable[[Path, float], tuple[bytes, int, int]]


def region_difference(a: bytes, b: bytes, width: int, rows: range) -> float:
    """Mean absolute luma difference over the given rows (every other column)."""
    columns = range(0, width, 2)
    total = sum(abs(a[y * width + x] - b[y * width + x]) for y in rows for x in columns)
    return total / (len(rows) * len(columns))


def check_video(path: Path, timeline: Timeline) -> dict[str, object]:
    """ffprobe agrees with the spec: length within a frame, size, rate, both streams."""
    info = probe(path)
    out = timeline.output
    assert info["duration"] == pytest.approx(timeline.total, abs=1 / out.fps)
    assert (info["width"], info["height"]) == out.size
    assert info["fps"] == pytest.approx(out.fps)
    assert info["has_video"] and info["has_audio"]
    assert (info["video_codec"], info["audio_codec"], info["pix_fmt"]) == ("h264", "aac", "yuv420p")
    return info


def test_a_narrated_slideshow_renders_as_specified(
    assets: Path, tmp_path: Path, mean_volume: MeanVolume
) -> None:
    timeline = Timeline(
        output=OutputPreset(quality="480p"),
        transition=Transition(duration=0.5),
        tracks=[
            Track(
                kind="video",
                clips=[
                    ImageClip(start=0, duration=1.5, source=assets / "bars.png"),
                    ImageClip(
                        start=1.5, duration=1.5, source=assets / "fractal.jpg", zoom_out=True
                    ),
                ],
            ),
            Track(kind="text", clips=[TextClip(start=0.5, duration=2, text="Hello: it's 100%")]),
            Track(
                kind="audio",
                clips=[AudioClip(start=0.5, duration=1.5, source=assets / "voice.wav")],
            ),
            Track(
                kind="audio",
                clips=[
                    AudioClip(
                        start=0,
                        duration=3,
                        source=assets / "music.m4a",
                        role="music",
                        loop=True,
                        volume=0.5,
                    )
                ],
            ),
        ],
    )
    seen: list[int] = []
    video = render(compile_timeline(timeline, tmp_path / "out.mp4"), progress=seen.append)

    check_video(video, timeline)
    assert mean_volume(video) > -60
    assert seen == sorted(seen) and seen[-1] == 100 and len(set(seen)) == len(seen)
    data = video.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while downloading


def test_captions_are_burned_where_and_when_asked(
    assets: Path, tmp_path: Path, gray_frame: GrayFrame
) -> None:
    def timeline(with_caption: bool) -> Timeline:
        still = ImageClip(start=0, duration=2, source=assets / "gray.png", ken_burns=False)
        tracks = [Track(kind="video", clips=[still])]
        if with_caption:
            caption = TextClip(start=0.5, duration=1, text="Captions are burned in")
            tracks.append(Track(kind="text", clips=[caption]))
        return Timeline(output=OutputPreset(quality="480p", preset="ultrafast"), tracks=tracks)

    plain = render(compile_timeline(timeline(False), tmp_path / "plain.mp4"))
    captioned = render(compile_timeline(timeline(True), tmp_path / "captioned.mp4"))

    a, width, height = gray_frame(plain, 1.0)
    b, _, _ = gray_frame(captioned, 1.0)
    bottom = range(int(height * 0.8), int(height * 0.94))
    top = range(0, int(height * 0.5))
    assert region_difference(a, b, width, bottom) > 10
    assert region_difference(a, b, width, top) < 1
    # Outside its time window the caption is gone.
    c, _, _ = gray_frame(captioned, 1.8)
    assert region_difference(a, c, width, bottom) < 1


def test_vertical_video_clip_gap_and_other_frame_rate(assets: Path, tmp_path: Path) -> None:
    timeline = Timeline(
        output=OutputPreset(aspect="9:16", quality="480p", fps=24, preset="ultrafast"),
        transition=Transition(kind="wipeleft", duration=0.25),
        background="#203040",
        duration=2.5,
        tracks=[
            Track(
                kind="video",
                clips=[
                    VideoClip(start=0, duration=1.5, source=assets / "clip.mp4", fit="contain"),
                    ImageClip(start=2, duration=0.5, source=assets / "pic.webp"),
                ],
            ),
            Track(
                kind="audio", clips=[AudioClip(start=0, duration=1, source=assets / "voice.wav")]
            ),
        ],
    )
    video = render(compile_timeline(timeline, tmp_path / "vertical.mp4"))
    check_video(video, timeline)


def test_a_square_video_without_sound_still_has_an_audio_stream(
    assets: Path, tmp_path: Path, mean_volume: MeanVolume
) -> None:
    timeline = Timeline(
        output=OutputPreset(aspect="1:1", quality="480p", preset="ultrafast"),
        tracks=[
            Track(kind="video", clips=[ImageClip(start=0, duration=2, source=assets / "bars.png")])
        ],
    )
    video = render(compile_timeline(timeline, tmp_path / "square.mp4"))
    check_video(video, timeline)
    assert mean_volume(video) < -80


def test_a_failed_render_raises_with_the_ffmpeg_stderr_tail(assets: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png at all")
    timeline = Timeline(
        output=OutputPreset(quality="480p"),
        tracks=[Track(kind="video", clips=[ImageClip(start=0, duration=1, source=broken)])],
    )
    out = tmp_path / "never.mp4"
    with pytest.raises(RenderError) as caught:
        render(compile_timeline(timeline, out))
    assert caught.value.code == "RENDER_FAILED"
    assert "Invalid PNG signature" in caught.value.stderr_tail
    assert caught.value.details == [{"stderr_tail": caught.value.stderr_tail}]
    assert not out.exists()


def test_a_render_can_be_canceled(assets: Path, tmp_path: Path) -> None:
    timeline = Timeline(
        output=OutputPreset(quality="480p", preset="medium"),
        tracks=[
            Track(
                kind="video", clips=[ImageClip(start=0, duration=120, source=assets / "bars.png")]
            )
        ],
    )
    cancel = threading.Event()
    out = tmp_path / "canceled.mp4"

    def stop_soon(pct: int) -> None:
        cancel.set()

    started = time.monotonic()
    with pytest.raises(RenderCanceled):
        render(compile_timeline(timeline, out), progress=stop_soon, cancel=cancel)
    assert time.monotonic() - started < 5
    assert not out.exists()


def test_run_ffmpeg_reports_bad_arguments() -> None:
    with pytest.raises(RenderError, match="ffmpeg failed") as caught:
        run_ffmpeg(["-hide_banner", "-nostdin", "-i", "/nonexistent/in.mp4", "/tmp/x.mp4"])
    assert "No such file" in caught.value.stderr_tail


def test_thumbnail_and_probe(assets: Path, tmp_path: Path) -> None:
    thumb = make_thumbnail(assets / "clip.mp4", tmp_path / "thumb.jpg", at_s=99, width=160)
    info = probe(thumb)
    assert (info["width"], info["height"]) == (160, 120)
    clip = probe(assets / "clip.mp4")
    assert clip["duration"] == pytest.approx(1.0) and clip["fps"] == 25
    assert clip["has_video"] and not clip["has_audio"]
    sound = probe(assets / "voice.wav")
    assert sound["has_audio"] and not sound["has_video"] and sound["sample_rate"] == 24000
    with pytest.raises(ProbeError, match="cannot read"):
        probe(tmp_path / "missing.mp4")
