"""The offline espeak-ng engine produces real speech of measured length."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from videogen.media.narration import EspeakEngine, narrate_sections
from videogen.media.render import probe

pytestmark = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")


def test_espeak_speaks_at_the_requested_rate(tmp_path: Path) -> None:
    engine = EspeakEngine()
    text = "Tides rise and fall twice a day."
    normal = engine.synthesize(text, tmp_path / "normal.wav")
    fast = engine.synthesize(text, tmp_path / "fast.wav", speaking_rate=2.0)
    assert 1.0 < normal.duration < 4.0
    assert fast.duration < normal.duration * 0.7
    assert probe(normal.path)["has_audio"]


def test_espeak_reads_ssml_and_other_languages(tmp_path: Path) -> None:
    engine = EspeakEngine()
    ssml = '<speak>One. <break time="1500ms"/> Two.</speak>'
    paused = engine.synthesize(ssml, tmp_path / "ssml.wav")
    plain = engine.synthesize("One. Two.", tmp_path / "plain.wav")
    assert paused.duration > plain.duration + 1.0
    assert engine.synthesize("Guten Tag.", tmp_path / "de.wav", language="de").duration > 0


def test_sections_are_narrated_in_order(tmp_path: Path) -> None:
    texts = ["First.", "The second section says a little more than the first one."]
    speeches = narrate_sections(EspeakEngine(), texts, tmp_path / "n", speaking_rate=1.5)
    assert [s.path.name for s in speeches] == ["narration_00.wav", "narration_01.wav"]
    assert speeches[0].duration < speeches[1].duration
