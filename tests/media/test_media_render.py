"""Real renders of short timelines, checked with ffprobe and pixel/volume measurements."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from videogen.media.errors import ProbeError, RenderCanceled, RenderError
from videogen.media.graph import compile_timeline, section_cuts
from videogen.media.render import make_thumbnail, probe, render, render_timeline, run_ffmpeg
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


# The sectioned render ------------------------------------------------------------------------


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) from ffmpeg's ebur128 summary."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vn",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = done.stderr[done.stderr.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


def ssim(a: Path, b: Path) -> float:
    """Mean SSIM of two videos, frame by frame."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(a), "-i", str(b),
         "-lavfi", "[0:v][1:v]ssim", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"All:([\d.]+)", done.stderr)
    assert found, done.stderr[-500:]
    return float(found.group(1))


def slideshow(assets: Path, *, seconds: float = 2.0, **output: Any) -> Timeline:
    """Three Ken Burns stills with crossfades, captions, two voices over ducked music."""
    pictures = ["bars.png", "fractal.jpg", "pic.webp"]
    return Timeline(
        output=OutputPreset(quality="480p", **output),
        transition=Transition(duration=0.5),
        tracks=[
            Track(
                kind="video",
                clips=[
                    ImageClip(
                        start=i * seconds, duration=seconds, source=assets / p, zoom_out=i == 1
                    )
                    for i, p in enumerate(pictures)
                ],
            ),
            Track(
                kind="text",
                clips=[
                    TextClip(start=0.2, duration=1.5, text="First"),
                    TextClip(start=seconds * 1.5, duration=seconds, text="Across a cut"),
                ],
            ),
            Track(
                kind="audio",
                clips=[
                    AudioClip(start=0.3, duration=1.5, source=assets / "voice.wav"),
                    AudioClip(start=seconds * 2, duration=1.5, source=assets / "voice.wav"),
                ],
            ),
            Track(
                kind="audio",
                clips=[
                    AudioClip(
                        start=0,
                        duration=seconds * 3,
                        source=assets / "music.m4a",
                        role="music",
                        loop=True,
                        volume=0.3,
                    )
                ],
            ),
        ],
    )


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_a_render_is_as_loud_as_the_preset_says(
    assets: Path, tmp_path: Path, target: float
) -> None:
    timeline = slideshow(assets, seconds=3.0, loudness_lufs=target, preset="ultrafast")
    video = render_timeline(timeline, tmp_path / "loud.mp4", workers=2)
    check_video(video, timeline)
    integrated, true_peak = ebur128(video)
    assert abs(integrated - target) <= 1.0, integrated
    assert true_peak <= -1.0, true_peak


def test_sections_side_by_side_match_the_one_process_render(assets: Path, tmp_path: Path) -> None:
    timeline = slideshow(assets, seconds=2.5)
    # Three sections: cuts fall inside pictures, never inside a crossfade.
    spans = section_cuts(timeline, 3)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == 225
    fade = 15
    for _, end in spans[:-1]:
        assert all(not (start < end < start + fade) for start in (75, 150))
    seen: list[int] = []
    video = render_timeline(timeline, tmp_path / "sections.mp4", progress=seen.append, workers=3)
    check_video(video, timeline)
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(video)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert frames == "225"
    # The zooms continue across the cuts: the picture matches a single-process render.
    whole = render(compile_timeline(timeline, tmp_path / "whole.mp4"))
    assert ssim(video, whole) >= 0.98
    assert not list(tmp_path.glob(".sections*"))  # the section files are cleaned up


def test_a_sectioned_render_without_sound_or_transition(assets: Path, tmp_path: Path) -> None:
    timeline = Timeline(
        output=OutputPreset(aspect="9:16", quality="480p", fps=24, preset="ultrafast"),
        transition=None,
        background="#203040",
        duration=5,
        tracks=[
            Track(
                kind="video",
                clips=[
                    VideoClip(start=0, duration=2.5, source=assets / "clip.mp4", fit="contain"),
                    ImageClip(start=3, duration=2, source=assets / "pic.webp", ken_burns=False),
                ],
            )
        ],
    )
    video = render_timeline(timeline, tmp_path / "plain.mp4", workers=2)
    check_video(video, timeline)


def test_a_looping_clip_repeats_from_memory_as_it_would_streamed(
    assets: Path, tmp_path: Path, gray_frame: GrayFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1 s 4:3 clip at 25 fps looping for 3.5 s in a portrait frame at 30 fps.
    clip = VideoClip(
        start=0, duration=3.5, source=assets / "clip.mp4", loop=True, source_duration=1.0
    )
    timeline = Timeline(
        output=OutputPreset(aspect="9:16", quality="480p", preset="ultrafast"),
        tracks=[
            Track(
                kind="video",
                clips=[clip, ImageClip(start=3.5, duration=1, source=assets / "pic.webp")],
            )
        ],
    )
    # Two sections: the cut falls mid-loop, so the second starts at its point of the loop.
    assert "loop=loop=-1:size=30:start=0" in " ".join(
        compile_timeline(timeline, tmp_path / "a").args
    )
    kept = render_timeline(timeline, tmp_path / "kept.mp4", workers=2)
    check_video(kept, timeline)
    a, width, height = gray_frame(kept, 0.4)
    b, _, _ = gray_frame(kept, 2.4)  # two passes later: the same picture
    assert region_difference(a, b, width, range(0, height, 4)) < 2
    # The same video as with the file read again on every pass.
    monkeypatch.setattr("videogen.media.graph.LOOP_CACHE_BYTES", 0)
    assert "-stream_loop" in compile_timeline(timeline, tmp_path / "b").args
    streamed = render(compile_timeline(timeline, tmp_path / "streamed.mp4"))
    assert ssim(kept, streamed) >= 0.98


def test_a_sectioned_render_can_be_canceled(assets: Path, tmp_path: Path) -> None:
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
    started = time.monotonic()
    with pytest.raises(RenderCanceled):
        render_timeline(timeline, out, progress=lambda _: cancel.set(), cancel=cancel)
    assert time.monotonic() - started < 5
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_a_failed_section_fails_the_render(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png at all")
    timeline = Timeline(
        output=OutputPreset(quality="480p"),
        tracks=[Track(kind="video", clips=[ImageClip(start=0, duration=6, source=broken)])],
    )
    out = tmp_path / "never.mp4"
    with pytest.raises(RenderError) as caught:
        render_timeline(timeline, out, workers=2)
    assert "Invalid PNG signature" in caught.value.stderr_tail
    assert not out.exists()
