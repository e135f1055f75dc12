"""The whole pipeline: topic or script → timeline → finished video with thumbnail."""

from __future__ import annotations

import itertools
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from videogen.media.compose import (
    SECTION_LEAD_S,
    ComposeRequest,
    compose,
    plan,
)
from videogen.media.errors import ImageError, RenderCanceled, TimelineError
from videogen.media.narration import EspeakEngine, Speech
from videogen.media.render import probe
from videogen.media.script import OfflineScriptEngine, Script


class ToneEngine:
    """A narration engine that 'speaks' a tone of a fixed length: timings are predictable."""

    name = "tone"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.texts: list[str] = []

    def synthesize(
        self,
        text: str,
        out: Path,
        *,
        voice: str | None = None,
        language: str = "en",
        speaking_rate: float = 1.0,
    ) -> Speech:
        self.texts.append(text)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=200:d={self.seconds}",
             "-ar", "24000", "-ac", "1", str(out)],
            check=True,
        )  # fmt: skip
        return Speech(path=out, duration=probe(out)["duration"])


def test_plan_places_pictures_voices_and_captions_on_each_section(
    assets: Path, tmp_path: Path
) -> None:
    tone = ToneEngine(2.0)
    request = ComposeRequest(
        topic="ocean tides",
        sections=3,
        quality="480p",
        images=[None, assets / "bars.png"],
        music=assets / "music.m4a",
    )
    timeline = plan(request, tmp_path, script_engine=OfflineScriptEngine(), narration_engine=tone)
    script = OfflineScriptEngine().write("ocean tides", sections=3)
    assert tone.texts == [s.narration for s in script.sections]

    pictures = timeline.clips("video")
    voices = [c for c in timeline.clips("audio") if c.role == "voice"]
    (music,) = [c for c in timeline.clips("audio") if c.role == "music"]
    captions = timeline.clips("text")
    assert [p.source.name for p in pictures] == ["card_00.png", "bars.png", "card_02.png"]
    assert all(p.source.is_file() for p in pictures)
    # Sections are back to back on the frame grid, each lead + speech + tail long.
    for before, after in itertools.pairwise(pictures):
        assert after.start == pytest.approx(before.end)
    assert all(round(p.start * 30, 6).is_integer() for p in pictures)
    for picture, voice in zip(pictures, voices, strict=True):
        assert voice.start == pytest.approx(picture.start + SECTION_LEAD_S)
        assert voice.end < picture.end
        section_captions = [c for c in captions if picture.start <= c.start < picture.end]
        assert section_captions[0].start == pytest.approx(voice.start)
        assert section_captions[-1].end == pytest.approx(voice.end, abs=0.01)
    assert timeline.total == pytest.approx(3 * (2.0 + 0.7), abs=0.05)
    assert (music.start, music.duration, music.loop) == (0, timeline.total, True)


def test_plan_refuses_bad_uploads_and_too_long_results(assets: Path, tmp_path: Path) -> None:
    bad = tmp_path / "fake.png"
    bad.write_text("hello")
    with pytest.raises(ImageError):
        plan(
            ComposeRequest(topic="x", sections=1, images=[bad]),
            tmp_path / "a",
            narration_engine=ToneEngine(1),
        )
    with pytest.raises(TimelineError, match="longer than the 5s maximum"):
        plan(
            ComposeRequest(topic="x", sections=3, max_duration=5, quality="480p"),
            tmp_path / "b",
            narration_engine=ToneEngine(1.5),
        )


def test_compose_makes_a_narrated_captioned_video_and_thumbnail(
    tmp_path: Path, mean_volume: Callable[[Path], float]
) -> None:
    script = Script(
        title="Tides",
        sections=[
            {"title": "Rise", "narration": "Tides rise."},
            {"title": "Fall", "narration": "Then they fall."},
        ],
    )
    request = ComposeRequest(script=script, quality="480p", speaking_rate=1.6)
    seen: list[int] = []
    result = compose(request, tmp_path, seen.append, narration_engine=EspeakEngine())

    assert result.video_path == tmp_path / "video.mp4"
    assert result.title == "Tides"
    info = probe(result.video_path)
    assert (result.width, result.height) == (info["width"], info["height"]) == (854, 480)
    assert 2.0 < result.duration < 5.0
    assert info["fps"] == 30 and info["has_audio"] and info["has_video"]
    assert mean_volume(result.video_path) > -60
    thumb = probe(result.thumbnail_path)
    assert thumb["video_codec"] == "mjpeg" and thumb["width"] == 854
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)
    assert any(50 < p < 95 for p in seen)  # render progress made it through


def test_compose_stops_when_canceled(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RenderCanceled):
        compose(ComposeRequest(topic="x"), tmp_path, cancel=cancel)
    assert not (tmp_path / "video.mp4").exists()
