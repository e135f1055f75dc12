"""The render spec refuses bad timelines before any work starts, with clear messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from videogen.media.errors import TimelineError
from videogen.media.timeline import (
    AudioClip,
    ImageClip,
    OutputPreset,
    TextClip,
    Timeline,
    Track,
    Transition,
    check_assets,
    frame_size,
    validate_timeline,
)


def image(start: float, duration: float, source: str = "a.png") -> dict[str, Any]:
    return {"kind": "image", "start": start, "duration": duration, "source": source}


def spec(*clips: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tracks": [{"kind": "video", "clips": list(clips)}], **extra}


@pytest.mark.parametrize(
    ("aspect", "quality", "size"),
    [
        ("16:9", "480p", (854, 480)),
        ("16:9", "720p", (1280, 720)),
        ("16:9", "1080p", (1920, 1080)),
        ("9:16", "720p", (720, 1280)),
        ("9:16", "480p", (480, 854)),
        ("1:1", "1080p", (1080, 1080)),
    ],
)
def test_frame_sizes_are_even_and_match_the_aspect(
    aspect: Any, quality: Any, size: tuple[int, int]
) -> None:
    assert frame_size(aspect, quality) == size
    assert OutputPreset(aspect=aspect, quality=quality).size == size


def test_total_defaults_to_the_last_clip_end_and_gaps_become_background() -> None:
    timeline = Timeline.model_validate(spec(image(0, 2), image(3, 1, "b.jpg")))
    assert timeline.total == 4
    segments = timeline.visual_segments()
    assert [(s.start, s.end, s.clip is not None) for s in segments] == [
        (0, 2, True),
        (2, 3, False),
        (3, 4, True),
    ]


def test_explicit_duration_pads_the_end_with_background() -> None:
    timeline = Timeline.model_validate(spec(image(0, 2), duration=3))
    assert [(s.start, s.end) for s in timeline.visual_segments()] == [(0, 2), (2, 3)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (spec(image(0, 2), image(1, 2)), "overlaps the clip at 0s-2s"),
        (spec(image(0, 2, "clip.gif")), "unsupported format '.gif'"),
        (spec(image(0, 2, "noext")), "unsupported format '(none)'"),
        (spec(image(0, 700)), "longer than the 600s maximum"),
        (spec(image(0, 0.3), image(0.3, 2)), "shorter than the 0.5s transition"),
        (spec(image(0, 5), duration=3), "after the timeline's 3s"),
        ({"tracks": []}, "the timeline is empty"),
        (
            {"tracks": [{"kind": "text", "clips": [image(0, 1)]}]},
            "text track cannot hold a image clip",
        ),
        (
            {"tracks": [{"kind": "video", "allow_overlap": True, "clips": [image(0, 1)]}]},
            "video tracks cannot allow overlap",
        ),
        ({"tracks": [{"kind": "video", "clips": []}] * 2, "duration": 1}, "only one video track"),
        (spec(image(0, 1), output={"aspect": "4:3"}), "Input should be"),
        (spec(image(-1, 1)), "greater than or equal to 0"),
    ],
)
def test_invalid_timelines_are_refused_with_a_clear_message(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(TimelineError) as caught:
        validate_timeline(data, check_files=False)
    assert message in caught.value.message
    assert caught.value.status == 422
    assert caught.value.code == "INVALID_TIMELINE"
    assert caught.value.details and "field" in caught.value.details[0]


def test_the_maximum_duration_is_configurable() -> None:
    data = spec(image(0, 30))
    validate_timeline(data, check_files=False)
    with pytest.raises(TimelineError, match="longer than the 20s maximum"):
        validate_timeline(data, max_duration=20, check_files=False)


def test_text_and_audio_tracks_may_allow_overlap() -> None:
    texts = [TextClip(start=0, duration=2, text="a"), TextClip(start=1, duration=2, text="b")]
    Timeline(tracks=[Track(kind="text", clips=texts, allow_overlap=True)])
    with pytest.raises(ValueError, match="overlaps"):
        Track(kind="text", clips=texts)


def test_missing_and_empty_assets_are_listed_together(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    present = tmp_path / "ok.png"
    present.write_bytes(b"x")
    timeline = Timeline(
        tracks=[
            Track(kind="video", clips=[ImageClip(start=0, duration=2, source=present)]),
            Track(kind="audio", clips=[AudioClip(start=0, duration=1, source=empty)]),
            Track(
                kind="audio",
                clips=[AudioClip(start=0, duration=1, source=tmp_path / "gone.mp3", role="music")],
            ),
        ]
    )
    with pytest.raises(TimelineError) as caught:
        check_assets(timeline)
    assert [d["message"] for d in caught.value.details] == ["file is empty", "file not found"]
    assert "gone.mp3" in caught.value.message
    with pytest.raises(TimelineError, match="missing or unreadable"):
        validate_timeline(timeline)


def test_a_timeline_round_trips_through_json() -> None:
    timeline = Timeline(
        output=OutputPreset(aspect="9:16", quality="480p", fps=24),
        transition=Transition(kind="dissolve", duration=0.25),
        tracks=[Track(kind="video", clips=[ImageClip(start=0, duration=2, source=Path("a.webp"))])],
    )
    again = validate_timeline(timeline.model_dump(mode="json"), check_files=False)
    assert again == timeline
