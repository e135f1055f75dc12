"""The offline script engine writes grammatical titles and sections for any phrasing of a
topic: questions, wh-clauses, imperatives and requests, "how to …" and noun phrases. The
rules checked are the ones a reader trips over: "What is why …", a lowercase start, a
doubled word, a sentence without its final punctuation, a question without its mark."""

from __future__ import annotations

import re

import pytest

from videogen.media.script import OfflineScriptEngine, Script

# (topic as typed, title expected, how it reads mid-sentence or None for a question)
TOPICS = [
    ("why the sky is blue", "Why the sky is blue, explained", "why the sky is blue"),
    ("Why is the sky blue?", "Why is the sky blue?", None),
    ("why is the sky blue", "Why is the sky blue?", None),
    ("How do tides work?", "How do tides work?", None),
    ("how tides work", "How tides work, explained", "how tides work"),
    ("What causes earthquakes?", "What causes earthquakes?", None),
    ("what causes earthquakes", "What causes earthquakes, explained", "what causes earthquakes"),
    ("Can dogs see colour?", "Can dogs see colour?", None),
    ("is coffee bad for you", "Is coffee bad for you?", None),
    ("how to tie a tie", "How to tie a tie", "how to tie a tie"),
    ("How to bake sourdough bread.", "How to bake sourdough bread", "how to bake sourdough bread"),
    ("Explain black holes", "Black holes explained", "black holes"),
    ("explain why leaves change colour in autumn", "Why leaves change colour in autumn, explained",
     "why leaves change colour in autumn"),
    ("Tell me about the Roman Empire", "The Roman Empire explained", "the Roman Empire"),
    ("teach me how to juggle", "How to juggle", "how to juggle"),
    ("Please describe the water cycle", "The water cycle explained", "the water cycle"),
    ("Make a video about the the history of jazz", "The history of jazz explained",
     "the history of jazz"),
    ("photosynthesis", "Photosynthesis explained", "photosynthesis"),
    ("Black holes", "Black holes explained", "black holes"),
    ("volcanoes", "Volcanoes explained", "volcanoes"),
    ("Machine learning for beginners", "Machine learning for beginners explained",
     "machine learning for beginners"),
    ("Paris", "Paris explained", "Paris"),
    ("an overview of renewable energy", "Renewable energy explained", "renewable energy"),
]  # fmt: skip

WH = "why|how|what|when|where|who|which|whether"


def _texts(script: Script) -> list[str]:
    return [script.title] + [t for s in script.sections for t in (s.title, s.narration)]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


@pytest.mark.parametrize(("topic", "title", "about"), TOPICS)
@pytest.mark.parametrize("sections", [1, 4, 7])
def test_offline_scripts_are_grammatical(
    topic: str, title: str, about: str | None, sections: int
) -> None:
    script = OfflineScriptEngine().write(topic, sections=sections)
    assert script.title == title
    assert len(script.sections) == sections
    for text in _texts(script):
        assert not re.search(rf"\bwhat (is|are) ({WH})\b", text, re.IGNORECASE), text
        assert not re.search(r"\b(\w+) \1\b", text, re.IGNORECASE), f"doubled word: {text}"
        assert not re.search(r"[.!?,;:]{2}|\s[.!?,;:]", text), f"stray punctuation: {text}"
        assert text[:1].isupper(), f"lowercase start: {text}"
    for section in script.sections:
        assert not section.title.endswith("."), section.title
        assert section.narration.endswith((".", "!", "?")), section.narration
        for sentence in _sentences(section.narration):
            assert sentence[:1].isupper(), f"sentence starts lowercase: {sentence}"
        assert section.image_prompt and "?" not in section.image_prompt
    # A question's title keeps its mark; nothing else ends in one.
    starts_like_question = re.match(rf"^({WH}|is|are|can|do|does)\b", topic, re.IGNORECASE)
    assert script.title.endswith("?") == (about is None), script.title
    if about is not None:
        # The topic as it reads inside a sentence: common words lowercase, names kept.
        assert f"basics of {about}." in script.sections[0].narration
    else:
        assert starts_like_question
        assert script.sections[0].narration.startswith(script.title)


def test_agreement_of_the_opening_question() -> None:
    engine = OfflineScriptEngine()
    assert engine.write("volcanoes").sections[0].title == "What are volcanoes?"
    assert engine.write("black holes").sections[0].title == "What are black holes?"
    assert engine.write("photosynthesis").sections[0].title == "What is photosynthesis?"
    assert engine.write("physics").sections[0].title == "What is physics?"
    learning = engine.write("machine learning for beginners").sections[0].title
    assert learning == "What is machine learning for beginners?"
    assert engine.write("why the sky is blue").sections[0].title == "The question"
