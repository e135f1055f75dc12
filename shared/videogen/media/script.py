"""Scripts: a topic becomes a title and sections of narration with an image prompt each.

Two engines: an offline one (deterministic templates, no account) and OpenAI chat
completions with a JSON schema, validated by pydantic and retried with the validation
error fed back when the model answers with something malformed.
"""

from __future__ import annotations

import hashlib
import json
import re
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

_BEATS = (
    (
        "What is {topic}?",
        "Let's start with the basics of {topic}. In a few words, it is an idea worth "
        "understanding, and by the end of this video you will see why it matters.",
        "a clear, inviting establishing shot that introduces {topic}",
    ),
    (
        "How it works",
        "At its core, {topic} follows a simple pattern. One step leads to the next, and "
        "each part has a clear job to do.",
        "a clean diagram showing how {topic} works, step by step",
    ),
    (
        "Why it matters",
        "So why should you care about {topic}? Because it shapes everyday decisions, "
        "often in ways we rarely notice.",
        "people in an everyday setting affected by {topic}",
    ),
    (
        "A closer look",
        "Look a little closer and {topic} gets more interesting. Small details add up, and "
        "experts still debate the finer points.",
        "a detailed close-up illustrating a subtle aspect of {topic}",
    ),
    (
        "Common misconceptions",
        "There are a few myths about {topic}. The most common one is that it is "
        "complicated; in fact, the main idea fits in a single sentence.",
        "a playful illustration contrasting a myth and a fact about {topic}",
    ),
    (
        "Putting it to use",
        "You can put {topic} to use today. Start small, notice the effect, and build on "
        "what works.",
        "a person applying {topic} in a practical, hands-on way",
    ),
)
_CLOSING = (
    "Key takeaways",
    "That's {topic} in a nutshell. Remember the basics, stay curious, and thanks for watching.",
    "a calm summary scene with the words '{topic}' and a checklist",
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


class OfflineScriptEngine:
    """Deterministic template script: the same topic always gives the same video."""

    name = "offline"

    def write(self, topic: str, *, sections: int = 4, language: str = "en") -> Script:
        """A script about ``topic`` from fixed templates (English only)."""
        topic = " ".join(topic.split()).rstrip(".?!") or "this topic"
        title = f"{topic[:1].upper()}{topic[1:]} explained"[:200]
        # Mid-sentence, "How tides work" reads "… about how tides work" (names keep capitals).
        if topic.split()[0].lower() in _LOWERCASE_STARTS:
            topic = topic[:1].lower() + topic[1:]
        count = max(1, min(sections, MAX_SECTIONS))
        # Rotate the middle beats by a hash of the topic so different topics vary a little.
        middle = list(_BEATS[1:])
        shift = int(hashlib.sha256(topic.lower().encode()).hexdigest(), 16) % len(middle)
        middle = middle[shift:] + middle[:shift]
        beats = [_BEATS[0], *middle][: max(1, count - 1)] + ([_CLOSING] if count > 1 else [])
        while len(beats) < count:  # more sections than templates: repeat the middle beats
            beats.insert(-1, middle[(len(beats) - 1) % len(middle)])
        return Script(
            title=title,
            sections=[
                ScriptSection(
                    title=t.format(topic=topic)[:120],
                    narration=n.format(topic=topic),
                    image_prompt=p.format(topic=topic),
                )
                for t, n, p in beats
            ],
        )

    def improve(self, script: Script, instruction: str, *, language: str = "en") -> Script:
        """Deterministic edits for the instructions it knows (shorter, longer); anything else
        needs a language model, and says so (422)."""
        wanted = instruction.lower()
        if any(w in wanted for w in ("short", "concise", "brief", "trim", "tighten")):
            edit = _first_sentence
        elif any(w in wanted for w in ("long", "detail", "expand", "more")):
            edit = _with_recap
        else:
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
