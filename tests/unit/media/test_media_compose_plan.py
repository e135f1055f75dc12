"""Compose helpers that need no ffmpeg: requests, caption chunks and the estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from videogen.media.compose import (
    CREDITS_PER_10S,
    ComposeRequest,
    caption_chunks,
    estimate,
)
from videogen.media.script import Script
from videogen.media.timeline import ImageClip, OutputPreset, Timeline, Track


def test_a_request_needs_a_topic_or_a_script() -> None:
    with pytest.raises(ValidationError, match="give a topic or a script"):
        ComposeRequest()
    script = Script(title="T", sections=[{"title": "a", "narration": "Hello."}])
    assert ComposeRequest(script=script).output == OutputPreset()
    request = ComposeRequest(topic="x", aspect="9:16", quality="480p", fps=24)
    assert request.output.size == (480, 854) and request.output.fps == 24


def test_captions_break_at_sentences_then_evenly_at_clauses() -> None:
    text = (
        "Let's start with the basics. In a few words, it is an idea worth understanding, "
        "and by the end of this video you will see why it matters."
    )
    assert caption_chunks(text, 100) == [
        "Let's start with the basics.",
        "In a few words, it is an idea worth understanding,",
        "and by the end of this video you will see why it matters.",
    ]
    pieces = caption_chunks("one two three four five six seven eight nine ten", 20)
    assert all(len(p) <= 20 for p in pieces)
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 8  # no one-word orphan


def test_estimate_scales_with_pixels_frames_and_length() -> None:
    def timeline(seconds: float, **out: object) -> Timeline:
        clip = ImageClip(start=0, duration=seconds, source=Path("a.png"))
        return Timeline(output=OutputPreset(**out), tracks=[Track(kind="video", clips=[clip])])

    s720, c720 = estimate(timeline(60, quality="720p"))
    s1080, c1080 = estimate(timeline(60, quality="1080p"))
    s480, c480 = estimate(timeline(60, quality="480p"))
    assert s480 < s720 < s1080
    assert s1080 == pytest.approx(s720 * 2.25, rel=0.05)
    assert (c480, c720, c1080) == (6, 12, 24)
    assert estimate(timeline(61, quality="480p"))[1] == 7  # started 10 s count
    assert estimate(timeline(1, quality="480p"))[1] == CREDITS_PER_10S["480p"]
    assert estimate(timeline(60, quality="720p", fps=60))[0] > s720


def test_estimate_works_before_the_script_exists() -> None:
    seconds, credits = estimate(ComposeRequest(topic="tides", sections=4, quality="480p"))
    assert 0 < seconds < 30 and credits >= 1
    fast = estimate(ComposeRequest(topic="tides", sections=4, quality="480p", speaking_rate=2))
    assert fast[0] < seconds


def test_estimate_counts_custom_frames_and_other_forms() -> None:
    base = ComposeRequest(topic="tides", sections=4, quality="720p")
    seconds = estimate(base)[0]
    tall = estimate(ComposeRequest(topic="tides", sections=4, size=(1080, 1920)))[0]
    assert tall == pytest.approx(0.6 + (seconds - 0.6) * 2.25, rel=0.05)  # 1080x1920's pixels
    forms = estimate(ComposeRequest(topic="tides", sections=4, formats=["webm", "gif", "mp3"]))
    assert forms[0] > seconds * 1.5
