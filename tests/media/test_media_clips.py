"""Stills and clips in one composed video: a stock-like clip shorter than its section
repeats, a clip of another shape is cropped to the frame, and the offline engine's moving
title card is a clip like any other."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from videogen.media.compose import ComposeRequest, compose
from videogen.media.images import make_motion_clip, make_title_card
from videogen.media.narration import Speech
from videogen.media.render import probe
from videogen.media.script import Script

GrayFrame = Any  # tests/media/conftest.py's gray_frame


class ToneEngine:
    """Narration as a tone of a fixed length, so the sections' timings are known."""

    name = "tone"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def synthesize(
        self, text: str, out: Path, *, voice: str | None = None, language: str = "en",
        speaking_rate: float = 1.0,
    ) -> Speech:  # fmt: skip
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=200:d={self.seconds}",
             "-ar", "24000", "-ac", "1", str(out)],
            check=True,
        )  # fmt: skip
        return Speech(path=out, duration=probe(out)["duration"])


def _differ(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two luma frames (0-255)."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_a_mixed_video_of_stills_and_clips(
    assets: Path, tmp_path: Path, gray_frame: GrayFrame
) -> None:
    script = Script(
        title="Tides",
        sections=[
            {"title": "Rise", "narration": "Tides rise."},
            {"title": "Clip", "narration": "A stock clip plays here."},
            {"title": "Motion", "narration": "A moving card."},
        ],
    )
    # A portrait 1 s clip (stock-like): it repeats over a 3 s section, cropped to 16:9.
    portrait = tmp_path / "portrait.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=240x426:r=25:d=1",
         "-pix_fmt", "yuv420p", str(portrait)],
        check=True,
    )  # fmt: skip
    card = make_title_card("Motion", tmp_path / "card.png", 854, 480)
    motion = make_motion_clip(card, tmp_path / "motion.mp4", 854, 480, 2.0)
    assert probe(motion)["duration"] == 2.0 and not probe(motion)["has_audio"]
    request = ComposeRequest(
        script=script, quality="480p", images=[assets / "bars.png", portrait, motion],
        captions=False,
    )  # fmt: skip
    result = compose(request, tmp_path / "work", narration_engine=ToneEngine(2.3))
    info = probe(result.video_path)
    assert (info["width"], info["height"]) == (854, 480) and info["fps"] == 30
    # Three sections of lead 0.3 + 2.3 + tail 0.4 = 3.0 s each.
    assert abs(info["duration"] - 9.0) < 0.15, info["duration"]
    # The clip moves all through its section, also after its own 1 s ran out (it repeats
    # rather than freezing on its last frame).
    a, w, h = gray_frame(result.video_path, 4.6)
    b, _, _ = gray_frame(result.video_path, 5.0)
    assert (w, h) == (854, 480) and _differ(a, b) > 1.0
    # The still section next to it is still a still (Ken Burns moves it only slightly).
    s1, _, _ = gray_frame(result.video_path, 1.0)
    s2, _, _ = gray_frame(result.video_path, 1.1)
    assert _differ(s1, s2) < _differ(a, b)
