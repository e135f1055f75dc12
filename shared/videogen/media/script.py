"""Scripts: a topic becomes a title and sections of narration with an image prompt each.

Two engines: an offline one (deterministic templates, no account) and OpenAI chat
completions with a JSON schema, validated by pydantic and retried with the validation
error fed back when the model answers with something malformed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from videogen.config import get_settings
from videogen.media.errors import ScriptError
from videogen.media.llm import OpenAIChat

MAX_SECTIONS = 12


class ScriptSection(BaseModel):
    """One beat of the video: what is said, what is shown, and its on-screen title."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    title: str = Field(min_length=1, max_length=120)
    narration: str = Field(min_length=1, max_length=2000)
    image_prompt: str = Field("", max_length=1000)

    @field_validator("title", "narration", "image_prompt")
    @classmethod
    def _squash_spaces(cls, value: str) -> str:
        return " ".join(value.split())


class Script(BaseModel):
    """A whole explainer: a title and its sections in order."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    title: str = Field(min_length=1, max_length=200)
    sections: list[ScriptSection] = Field(min_length=1, max_length=MAX_SECTIONS)

    @property
    def narration(self) -> str:
        """Everything that is said, in order."""
        return " ".join(s.narration for s in self.sections)


class ScriptEngine(Protocol):
    """Anything that writes a :class:`Script` for a topic."""

    name: str

    def write(self, topic: str, *, sections: int = 4, language: str = "en") -> Script:
        """A script about ``topic`` with ``sections`` sections."""
        ...

    def improve(self, script: Script, instruction: str, *, language: str = "en") -> Script:
        """``script`` rewritten as ``instruction`` asks (same number of sections)."""
        ...


# Analysis --------------------------------------------------------------------------------

WORDS_PER_MINUTE = 160  # a narrator's pace at speaking_rate 1.0, before any speech exists


class SectionAnalysis(BaseModel):
    """One section's length when read aloud."""

    model_config = ConfigDict(defer_build=True)

    index: int
    title: str
    words: int
    reading_seconds: float
    start_s: float = Field(description="Where it starts, read back to back.")


class ScriptAnalysis(BaseModel):
    """How long a script runs when narrated, in total and per section."""

    model_config = ConfigDict(defer_build=True)

    words: int
    sections: list[SectionAnalysis]
    reading_seconds: float = Field(description="At the given speaking rate.")
    speaking_rate: float


def analyze(script: Script, *, speaking_rate: float = 1.0) -> ScriptAnalysis:
    """Words and reading time of each section and of the whole, at ``speaking_rate``."""
    rate = WORDS_PER_MINUTE * speaking_rate / 60
    sections, start = [], 0.0
    for i, section in enumerate(script.sections):
        words = len(section.narration.split())
        seconds = round(words / rate, 1)
        sections.append(
            SectionAnalysis(
                index=i,
                title=section.title,
                words=words,
                reading_seconds=seconds,
                start_s=round(start, 1),
            )
        )
        start += seconds
    return ScriptAnalysis(
        words=sum(s.words for s in sections),
        sections=sections,
        reading_seconds=round(start, 1),
        speaking_rate=speaking_rate,
    )


# Offline -------------------------------------------------------------------------------------

# Each beat: (title, narration, image prompt). ``{about}`` is the topic as it reads after a
# preposition ("about black holes", "about why the sky is blue", "about how to tie a tie"),
# the one place a noun phrase, a wh-clause and a "how to" all fit without agreement.
_OPENING_NARRATION = (
    "Let's start with the basics of {about}. In a few words, it is an idea worth "
    "understanding, and by the end of this video you will see why it matters."
)
_QUESTION_NARRATION = (
    "{question} It sounds like a simple question. Let's find the answer step by step, and by "
    "the end of this video you will see why it matters."
)
_BEATS = (
    (
        "How it works",
        "At its core, the idea behind {about} is simple. One step leads to the next, and "
        "each part has a clear job to do.",
        "a clean diagram showing {subject}, step by step",
    ),
    (
        "Why it matters",
        "So why should you care about {about}? Because it shapes everyday decisions, "
        "often in ways we rarely notice.",
        "people in an everyday setting affected by {subject}",
    ),
    (
        "A closer look",
        "Look a little closer at {about} and it gets more interesting. Small details add "
        "up, and experts still debate the finer points.",
        "a detailed close-up illustrating a subtle aspect of {subject}",
    ),
    (
        "Common misconceptions",
        "There are a few myths about {about}. The most common one is that it is "
        "complicated; in fact, the main idea fits in a single sentence.",
        "a playful illustration contrasting a myth and a fact about {subject}",
    ),
    (
        "Putting it to use",
        "You can put what you learn about {about} to use today. Start small, notice the "
        "effect, and build on what works.",
        "a person applying {subject} in a practical, hands-on way",
    ),
)
_CLOSING = (
    "Key takeaways",
    "That's {summary} in a nutshell. Remember the basics, stay curious, and thanks for watching.",
    "a calm summary scene about {subject} with a checklist",
)

_WH = frozenset(["how", "why", "what", "when", "where", "who", "whom", "whose", "which", "whether"])
_AUX = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "am",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "shall",
        "may",
        "might",
        "must",
        "has",
        "have",
        "had",
    ]
)
# Requests rather than topics: "explain X", "tell me about X" … are about X.
_REQUEST = re.compile(
    r"^(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?(?:"
    r"explain(?:\s+to\s+me)?|describe|summari[sz]e|introduce|discuss|"
    r"(?:tell|teach|show)(?:\s+(?:me|us))?(?:\s+about)?|talk\s+about|write\s+about|"
    r"(?:make|create|write)\s+(?:me\s+)?an?\s+(?:short\s+)?(?:video|script|explainer)\s+"
    r"(?:about|on)|an?\s+(?:short\s+)?(?:video|explainer)\s+(?:about|on)|"
    r"(?:give\s+(?:me|us)\s+)?an?\s+(?:overview|introduction)\s+(?:of|to)|"
    r"everything\s+about|all\s+about|learn\s+about)\s+",
    re.IGNORECASE,
)
_PREPOSITIONS = frozenset(
    ["for", "of", "in", "on", "with", "to", "about", "at", "by", "from", "into", "under", "over"]
)
_LOWERCASE_STARTS = frozenset(
    [
        "a",
        "an",
        "the",
        "how",
        "why",
        "what",
        "when",
        "where",
        "who",
        "which",
        "whether",
        "our",
        "your",
        "my",
        "their",
        "its",
    ]
)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _mid_sentence(text: str) -> str:
    """The topic as it reads inside a sentence: a leading common word lowercased ("Black
    holes" → "black holes"), names kept ("Roman Empire", "Paris")."""
    words = text.split()
    first = words[0]
    common = first.lower() in _LOWERCASE_STARTS or first.lower() in _AUX
    second_lower = len(words) > 1 and words[1][:1].islower()
    if common or (second_lower and first[1:].islower()):
        return first[:1].lower() + text[1:]
    return text


def _dedupe(text: str) -> str:
    """Drop a word repeated right after itself ("the the")."""
    out: list[str] = []
    for word in text.split():
        if not out or word.lower() != out[-1].lower():
            out.append(word)
    return " ".join(out)


def topic_forms(topic: str) -> dict[str, str]:
    """How a topic reads as a title, after "about", and as a question.

    The kinds: a question ("Why is the sky blue?", "can dogs see colour"), a wh-clause
    ("why the sky is blue", "what causes earthquakes"), a how-to ("how to tie a tie"), or
    a noun phrase ("black holes"); requests ("explain …", "tell me about …") are their
    object. Written by hand: no grammar library knows this small a job.
    """
    text = _dedupe(" ".join(topic.split()))
    asked = text.endswith("?")
    text = text.rstrip(".?!;:, ") or "this topic"
    while (m := _REQUEST.match(text)) and m.end() < len(text):
        text = text[m.end() :]
    words = text.split()
    first = words[0].lower()
    second = words[1].lower() if len(words) > 1 else ""
    if first == "how" and second == "to":
        kind = "howto"
    elif first in _AUX and len(words) > 1:
        kind = "question"  # is/can/do … : a yes-or-no question
    elif first in _WH and (asked or second in _AUX):
        kind = "question"
    elif first in _WH and len(words) > 1:
        kind = "clause"
    else:
        kind = "noun"
    if kind == "question":
        question = _capitalized(text) + "?"
        return {"kind": kind, "title": question, "about": "this question",
                "summary": "the answer", "question": question, "opening": "The question",
                "subject": _mid_sentence(text)}  # fmt: skip
    about = _mid_sentence(text)
    if kind == "howto":
        title, opening = _capitalized(text), "What you will learn"
    elif kind == "clause":
        title, opening = f"{_capitalized(text)}, explained", "The question"
    else:
        # The head noun: the last word before a preposition ("learning" of "machine
        # learning for beginners"); it says "is" or "are".
        head = next(
            (i for i, w in enumerate(words) if w.lower() in _PREPOSITIONS and i), len(words)
        )
        noun = words[head - 1].lower()
        plural = noun.endswith("s") and not noun.endswith(("ss", "is", "us", "ics"))
        title = f"{_capitalized(text)} explained"
        opening = f"What {'are' if plural else 'is'} {about}?"
    return {"kind": kind, "title": title, "about": about, "summary": about,
            "question": "", "opening": opening, "subject": about}  # fmt: skip


class OfflineScriptEngine:
    """Deterministic template script: the same topic always gives the same video."""

    name = "offline"

    def write(self, topic: str, *, sections: int = 4, language: str = "en") -> Script:
        """A script about ``topic`` from fixed templates (English only), grammatical for
        questions, wh-clauses, how-tos, noun phrases and requests (:func:`topic_forms`)."""
        forms = topic_forms(topic)
        count = max(1, min(sections, MAX_SECTIONS))
        # Rotate the middle beats by a hash of the topic so different topics vary a little.
        middle = list(_BEATS)
        shift = int(hashlib.sha256(forms["about"].lower().encode()).hexdigest(), 16) % len(middle)
        middle = middle[shift:] + middle[:shift]
        opening = (
            forms["opening"],
            _QUESTION_NARRATION if forms["kind"] == "question" else _OPENING_NARRATION,
            "a clear, inviting establishing shot that introduces {subject}",
        )
        beats = [opening, *middle][: max(1, count - 1)] + ([_CLOSING] if count > 1 else [])
        while len(beats) < count:  # more sections than templates: repeat the middle beats
            beats.insert(-1, middle[(len(beats) - 1) % len(middle)])
        return Script(
            title=forms["title"][:200],
            sections=[
                ScriptSection(
                    title=t.format(**forms)[:120],
                    narration=n.format(**forms),
                    image_prompt=p.format(**forms),
                )
                for t, n, p in beats
            ],
        )

    def improve(self, script: Script, instruction: str, *, language: str = "en") -> Script:
        """Deterministic edits for the instructions it knows (shorter, longer); anything else
        needs a language model, and says so (422)."""
        edit = _offline_edit(instruction)
        if edit is None:
            raise ScriptError(
                "the offline script engine can make a script shorter or longer only",
                status=422,
                code="INSTRUCTION_NOT_UNDERSTOOD",
                hint="Ask for it 'shorter' or 'longer', or set SCRIPT_ENGINE=openai.",
            )
        return Script(
            title=script.title,
            sections=[
                section.model_copy(update={"narration": edit(section)})
                for section in script.sections
            ],
        )


def _offline_edit(instruction: str) -> Callable[[ScriptSection], str] | None:
    """The edit the offline engine makes for ``instruction`` (shorter, longer), or None."""
    wanted = instruction.lower()
    if any(w in wanted for w in ("short", "concise", "brief", "trim", "tighten")):
        return _first_sentence
    if any(w in wanted for w in ("long", "detail", "expand", "more")):
        return _with_recap
    return None


def offline_understands(instruction: str) -> bool:
    """Whether the offline engine can follow ``instruction`` (checked before money moves)."""
    return _offline_edit(instruction) is not None


def _sentences(text: str) -> list[str]:

    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _first_sentence(section: ScriptSection) -> str:
    return _sentences(section.narration)[0]


def _with_recap(section: ScriptSection) -> str:
    recap = f"In short: {section.title.rstrip('?.!').lower()}."
    return f"{section.narration} {recap}"[:2000]


# OpenAI --------------------------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You write scripts for short narrated explainer videos. Answer with JSON only, matching "
    "the schema: a title and sections; each section has a short on-screen title, the "
    "narration to be spoken (2-4 plain sentences, no markup, no stage directions) and an "
    "image_prompt describing one still image for that section."
)

# Written by hand rather than from pydantic: strict structured outputs accept only a subset
# of JSON Schema (every property required, no additional properties).
SCRIPT_JSON_SCHEMA: dict[str, Any] = {
    "name": "video_script",
    "strict": True,
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "sections"],
        "properties": {
            "title": {"type": "string"},
            "sections": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["title", "narration", "image_prompt"],
                    "properties": {
                        "title": {"type": "string"},
                        "narration": {"type": "string"},
                        "image_prompt": {"type": "string"},
                    },
                },
            },
        },
    },
}


def _problem(exc: Exception) -> str:
    """A short, model-readable description of what was wrong with an answer."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'root'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    return str(exc)


class OpenAIScriptEngine(OpenAIChat):
    """Chat completions with a JSON schema; malformed answers are retried with the error."""

    name = "openai"

    def __init__(
        self,
        client: Any | None = None,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        base_url: str | None = None,
        max_attempts: int = 3,
        response_format: Literal["json_schema", "json_object"] = "json_schema",
        temperature: float = 0.7,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(client, model=model, api_key=api_key, base_url=base_url, timeout=timeout)
        self.max_attempts = max(1, max_attempts)
        # json_object is for OpenAI-compatible servers without structured outputs.
        self.response_format = response_format
        self.temperature = temperature

    def _format(self) -> dict[str, Any]:
        if self.response_format == "json_schema":
            return {"type": "json_schema", "json_schema": SCRIPT_JSON_SCHEMA}
        return {"type": "json_object"}

    def write(self, topic: str, *, sections: int = 4, language: str = "en") -> Script:
        """Ask the model for a script; raise :class:`ScriptError` after ``max_attempts``."""
        return self._ask(
            f"Topic: {topic}\nSections: exactly {sections}\n"
            f"Language of title and narration: {language}",
            sections,
        )

    def improve(self, script: Script, instruction: str, *, language: str = "en") -> Script:
        """Ask the model to rewrite ``script`` as ``instruction`` says, keeping its sections."""
        count = len(script.sections)
        return self._ask(
            f"Rewrite this script as instructed, keeping exactly {count} sections.\n"
            f"Instruction: {instruction}\nLanguage of title and narration: {language}\n"
            f"Script: {script.model_dump_json()}",
            count,
        )

    def _ask(self, request: str, sections: int) -> Script:
        """One chat exchange for a script, retried with what was wrong fed back."""
        import openai  # cold start: openai loads on first use

        from videogen.usage import record_llm  # cold start: usage loads only on this path

        messages: list[dict[str, str]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": request},
        ]
        problem = "no answer"
        for _attempt in range(self.max_attempts):
            try:
                completion = self.client().chat.completions.create(
                    model=self.model,
                    messages=messages,
                    response_format=self._format(),
                    temperature=self.temperature,
                )
            except openai.OpenAIError as exc:
                raise ScriptError(f"OpenAI request failed: {exc}") from exc
            record_llm(getattr(completion, "model", None) or self.model, completion.usage)
            content = completion.choices[0].message.content or ""
            try:
                script = Script.model_validate(json.loads(content))
                if len(script.sections) != sections:
                    raise ValueError(
                        f"expected exactly {sections} sections, got {len(script.sections)}"
                    )
                return script
            except (json.JSONDecodeError, ValidationError, ValueError) as exc:
                problem = _problem(exc)
            messages += [
                {"role": "assistant", "content": content},
                {
                    "role": "user",
                    "content": f"That answer was not valid: {problem}. Reply again with "
                    "corrected JSON only.",
                },
            ]
        raise ScriptError(
            f"the model gave no valid script in {self.max_attempts} attempts: {problem}"
        )


def get_script_engine(name: str | None = None) -> ScriptEngine:
    """The engine named in settings (``SCRIPT_ENGINE``) unless one is named here."""
    if name is None:
        name = get_settings().script_engine
    if name == "offline":
        return OfflineScriptEngine()
    if name == "openai":
        return OpenAIScriptEngine.from_settings()
    raise ScriptError(f"unknown script engine {name!r}", status=422, code="INVALID_ENGINE")
