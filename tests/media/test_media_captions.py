"""Word-timed captions: timings from espeak-ng, cues, the burned-in highlight (pixels of real
renders), and the WebVTT / SRT sidecars."""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest

from videogen.media.captions import Captions, CaptionStyle, cues_for, make_cues, srt, webvtt
from videogen.media.narration import EspeakEngine
from videogen.media.render import render_timeline
from videogen.media.timeline import ImageClip, OutputPreset, Timeline, Track
from videogen.media.words import Word, words_from_starts

RED = "#ff0000"


def rgb_frame(path: Path, at_s: float) -> tuple[bytes, int, int]:
    """The frame at ``at_s`` as RGB24 bytes, with its width and height."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    width, height = (int(v) for v in probe.split(","))
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{at_s:.3f}", "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout, width, height


def red_columns(frame: bytes, width: int, height: int) -> list[int]:
    """The x of every strongly red pixel (the highlight colour)."""
    xs = []
    for y in range(height):
        row = y * width * 3
        for x in range(width):
            r, g, b = frame[row + 3 * x : row + 3 * x + 3]
            if r > 170 and g < 90 and b < 90:
                xs.append(x)
    return xs


def white_count(frame: bytes) -> int:
    return sum(
        1
        for i in range(0, len(frame), 3)
        if frame[i] > 200 and frame[i + 1] > 200 and frame[i + 2] > 200
    )


def test_espeak_word_timings_are_monotone_and_cover_the_speech(tmp_path: Path) -> None:
    text = "Tides rise and fall twice a day, pulled by the moon. The sea follows 1234 times."
    speech = EspeakEngine().synthesize(text, tmp_path / "tides.wav")
    words = speech.words
    assert [w.text for w in words] == text.split()
    starts = [w.start for w in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # strictly rising
    assert all(w.start < w.end for w in words)
    assert words[0].start < 0.2
    assert words[-1].end == pytest.approx(speech.duration, abs=0.01)
    assert words[-1].start > speech.duration * 0.8  # the last word is said near the end
    # A slower reading moves every word later.
    slow = EspeakEngine().synthesize(text, tmp_path / "slow.wav", speaking_rate=0.7)
    assert slow.words[-1].start > words[-1].start * 1.25


def test_missing_starts_are_interpolated_monotone() -> None:
    words = words_from_starts(["a", "b", "c", "d"], [0.0, None, 1.0, None], 2.0)
    assert [w.start for w in words] == [0.0, 0.5, 1.0, 1.5]
    assert [w.end for w in words] == [0.5, 1.0, 1.5, 2.0]


def test_cues_break_at_sentences_line_length_and_pauses() -> None:
    texts = [
        "One",
        "two",
        "three",
        "four.",
        "Five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
    ]
    words = [Word(t, i * 0.4, i * 0.4 + 0.4) for i, t in enumerate(texts)]
    cues = make_cues(words, CaptionStyle(lines=1, max_chars=16), 16)
    assert [c.text for c in cues] == ["One two three", "four.", "Five six seven", "eight nine ten",
                                      "eleven"]  # fmt: skip
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    per_word = make_cues(words, CaptionStyle(lines=2, words_per_line=2, max_chars=80), 80)
    assert per_word[0].text == "One two\nthree four."


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of a WebVTT file."""
    assert text.startswith("WEBVTT\n")

    def seconds(clock: str) -> float:
        h, m, s = clock.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.split("\n")
        match = re.fullmatch(r"(\S+) --> (\S+)", lines[1])
        assert match, block
        cues.append((seconds(match[1]), seconds(match[2]), "\n".join(lines[2:])))
    return cues


def test_vtt_and_srt_cues_match_the_word_timings(tmp_path: Path) -> None:
    speech = EspeakEngine().synthesize(
        "Captions follow the voice. Every word has its time <here> & now.", tmp_path / "c.wav"
    )
    captions = Captions.of(
        [w.shifted(0.3) for w in speech.words], CaptionStyle(max_chars=20, lines=1)
    )
    cues = cues_for(captions, 640, 360)
    parsed = parse_vtt(webvtt(cues))
    assert len(parsed) == len(cues) >= 3
    words = captions.timed_words()
    k = 0
    for (start, end, text), cue in zip(parsed, cues, strict=True):
        first = words[k]
        k += len(cue.words)
        assert start == pytest.approx(first.start, abs=0.001)  # a cue starts with its first word
        assert end > start and end <= words[k - 1].end + 0.001
        unescaped = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        assert unescaped.replace("\n", " ") == " ".join(w.text for w in cue.words)
    assert parsed[0][2].startswith("Captions follow")
    assert any("&lt;here&gt;" in text for _, _, text in parsed)  # user text stays text
    sub = srt(cues)
    assert sub.startswith("1\n00:00:00,3")
    assert sub.count(" --> ") == len(cues) and "," in sub.split("\n")[1]


def test_the_spoken_word_is_burned_in_in_the_highlight_colour(tmp_path: Path) -> None:
    """Frames at each word's time: the red (highlight) pixels sit where that word is — left,
    middle, right of a three-word line — and the rest of the line stays white. The video
    renders in two sections, so the second section's captions run on the video's clock."""
    card = tmp_path / "navy.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x102040:s=320x180",
         "-frames:v", "1", str(card)], check=True,
    )  # fmt: skip
    words = [
        Word("WWW", 0.2, 1.0), Word("MMM", 1.0, 1.8), Word("HHH", 1.8, 2.6),
        Word("WWW", 2.6, 3.4), Word("MMM", 3.4, 4.2), Word("HHH", 4.2, 5.0),
    ]  # fmt: skip
    style = CaptionStyle(
        size=0.12, highlight=RED, background="none", position="center", words_per_line=3,
        lines=1,
    )  # fmt: skip
    timeline = Timeline(
        output=OutputPreset(quality="480p", fps=25, custom_size=(320, 180)),
        tracks=[Track(kind="video", clips=[ImageClip(start=0, duration=5.2, source=card,
                                                     ken_burns=False)])],
        transition=None,
        captions=Captions.of(words, style),
    )  # fmt: skip
    video = render_timeline(timeline, tmp_path / "captioned.mp4", workers=2)
    centres = []
    for at in (0.6, 1.4, 2.2, 3.0, 3.8, 4.6):
        frame, width, height = rgb_frame(video, at)
        reds = red_columns(frame, width, height)
        assert len(reds) > 40, f"no highlighted word at {at}s"
        assert white_count(frame) > 80  # the other two words, in the text colour
        centres.append(sum(reds) / len(reds) / width)
    left, mid, right = centres[0:3]
    assert left < 0.42 < mid < 0.58 < right, centres
    assert centres[3:6] == pytest.approx(centres[0:3], abs=0.03)  # the second section too
    before, width, height = rgb_frame(video, 0.08)
    assert not red_columns(before, width, height)  # nothing before the first word


def test_a_recorded_narration_is_aligned_for_its_captions(tmp_path: Path) -> None:
    """A compose request bringing its own narration (no timings with it): the plan aligns
    the recording to the section's text, and the captions follow the recording's words."""
    from videogen.media.compose import SECTION_LEAD_S, ComposeRequest, plan
    from videogen.media.script import Script

    text = "Sea water rises with the moon, and falls again before the evening."
    recorded = EspeakEngine().synthesize(
        text, tmp_path / "mine.wav", voice="en-us+f3", speaking_rate=1.2
    )
    request = ComposeRequest(
        script=Script(title="Mine", sections=[{"title": "One", "narration": text}]),
        narration=[recorded.path],
        quality="480p",
    )
    timeline = plan(request, tmp_path / "work")
    assert timeline.captions is not None and not timeline.clips("text")
    words = timeline.captions.timed_words()
    assert [w.text for w in words] == text.split()
    errors = [
        abs(w.start - (truth.start + SECTION_LEAD_S))
        for w, truth in zip(words, recorded.words, strict=True)
    ]
    assert sum(errors) / len(errors) < 0.08
