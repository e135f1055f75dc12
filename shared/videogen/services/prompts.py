"""Prompt enhancement: a user's prompt for any job type, improved by the job type's active
template (``public.prompt_templates``, sql/schema/17_prompts_admin.sql), for the user to
use or not. Nothing is charged and nothing is stored; the call takes the user's rate-limit
slot like a write (an LLM call costs money).

Two engines (``PROMPT_ENGINE``):

* ``offline`` — deterministic rules from the template's hints: the user's words, whole and
  first, then each cue (camera, lighting, motion, style…) the prompt does not already
  cover (a cue is skipped when the prompt has one of its ``skip_if`` words), while the
  result stays within ``max_chars``. Works with no account; the same input gives the same
  prompt.
* ``openai`` — chat completions on any OpenAI-compatible server (``OPENAI_BASE_URL``,
  ``OPENAI_API_KEY``, ``OPENAI_MODEL``), the template's instruction as the system prompt;
  an answer that is empty or too long is asked for again once, with the reason.

A job made with the enhanced prompt keeps the user's own words too: send
``params.prompt`` = ``enhanced`` and ``params.original_prompt`` = ``original``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from videogen.config import get_settings
from videogen.db import prompts_admin
from videogen.db.writes import record_refusal
from videogen.errors import AppError, ServiceUnavailable
from videogen.media.llm import OpenAIChat
from videogen.models.admin import Enhancement, PromptTemplate

if TYPE_CHECKING:
    from videogen.db.connection import Database
    from videogen.db.outcomes import WriteRequest
    from videogen.models.admin import EnhanceRequest
    from videogen.principal import Principal

MAX_PROMPT_CHARS = 2000  # what a job's `prompt` may hold (models.jobs.JobParams)
DEFAULT_MAX_CHARS = 600


class PromptEngine(Protocol):
    """Anything that improves a prompt with a template."""

    name: str

    def enhance(self, prompt: str, template: PromptTemplate, language: str | None) -> str:
        """The improved prompt (at most MAX_PROMPT_CHARS)."""
        ...


def _squash(text: str) -> str:
    return " ".join(text.split())


def _mentions(text: str, word: str) -> bool:
    """``word`` (or phrase) appears in ``text`` as whole words, case-insensitively."""
    return re.search(rf"(?<![\w-]){re.escape(word.lower())}(?![\w-])", text) is not None


class OfflinePromptEngine:
    """The template's cues added to the user's words, deterministically (English cues)."""

    name = "offline"

    def enhance(self, prompt: str, template: PromptTemplate, language: str | None = None) -> str:
        """The user's words, then each cue the prompt lacks, within the template's bound."""
        words = _squash(prompt)
        hints = template.hints
        bound = min(MAX_PROMPT_CHARS, int(hints.get("max_chars") or DEFAULT_MAX_CHARS))
        bound = max(bound, len(words))  # the user's words are never cut
        lowered = words.lower()
        out = words.rstrip(" .,;:!")
        added = 0
        for cue in hints.get("cues") or []:
            text = _squash(str(cue.get("text", "")))
            skip = [str(w) for w in cue.get("skip_if") or []]
            if not text or any(_mentions(lowered, w) for w in skip):
                continue
            if _mentions(lowered, text):
                continue  # already says it
            candidate = f"{out}, {text}"
            if len(candidate) + 1 > bound:
                continue  # a shorter cue further on may still fit
            out, added = candidate, added + 1
        return f"{out}." if added else words


class OpenAIPromptEngine(OpenAIChat):
    """Chat completions with the template's instruction; the answer is the prompt."""

    name = "openai"

    def __init__(
        self,
        client: Any | None = None,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        base_url: str | None = None,
        max_attempts: int = 2,
        temperature: float = 0.4,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(client, model=model, api_key=api_key, base_url=base_url, timeout=timeout)
        self.max_attempts = max(1, max_attempts)
        self.temperature = temperature

    def enhance(self, prompt: str, template: PromptTemplate, language: str | None = None) -> str:
        """Ask the model; 503 ``PROMPT_ENGINE_FAILED`` when it fails or never answers well."""
        import openai  # cold start: openai loads on first use

        messages: list[dict[str, str]] = [
            {
                "role": "system",
                "content": f"{template.instruction}\nAnswer with the improved prompt only: "
                "no preamble, no quotes, no markdown.",
            },
            {
                "role": "user",
                "content": f"Job type: {template.job_type}\n"
                + (f"Language of the answer: {language}\n" if language else "")
                + f"Prompt: {prompt}",
            },
        ]
        problem = "no answer"
        for _attempt in range(self.max_attempts):
            try:
                completion = self.client().chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=self.temperature,
                    max_tokens=800,
                )
                content = completion.choices[0].message.content or ""
            except openai.OpenAIError as exc:
                raise _engine_failed(f"The prompt engine failed: {type(exc).__name__}.") from exc
            text = _squash(content).strip("\"'`“”")
            if not text:
                problem = "the answer was empty"
            elif len(text) > MAX_PROMPT_CHARS:
                problem = f"the answer had {len(text)} characters, more than {MAX_PROMPT_CHARS}"
            else:
                return text
            messages += [
                {"role": "assistant", "content": content},
                {
                    "role": "user",
                    "content": f"That answer cannot be used: {problem}. "
                    "Reply again with the improved prompt only.",
                },
            ]
        raise _engine_failed(f"The prompt engine gave no usable prompt: {problem}.")


def _engine_failed(message: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        message,
        code="PROMPT_ENGINE_FAILED",
        hint="Try again, or keep your own prompt.",
        headers={"Retry-After": "5"},
    )


@lru_cache(maxsize=2)
def get_prompt_engine(name: str | None = None) -> PromptEngine:
    """The engine named in settings (``PROMPT_ENGINE``) unless one is named here; one per
    process (the OpenAI client keeps its connections)."""
    if name is None:
        name = get_settings().prompt_engine
    if name == "openai":
        return OpenAIPromptEngine.from_settings()
    return OfflinePromptEngine()


def _engine_for(db: Database, principal: Principal) -> PromptEngine:
    """The deployment's engine; with OpenAI, on the user's own key if they stored one (sent
    to OpenAI itself, never to a configured OPENAI_BASE_URL)."""
    from videogen.services import keys  # cold start: services.keys loads only on this path

    settings = get_settings()
    if settings.prompt_engine == "openai":
        own = keys.mine(db, principal, "openai")
        if own is not None:
            return OpenAIPromptEngine(model=settings.openai_model, api_key=own)
    return get_prompt_engine()


def enhance(
    db: Database,
    principal: Principal,
    write: WriteRequest,
    body: EnhanceRequest,
    engine: PromptEngine | None = None,
) -> Enhancement:
    """The active template of the model's (or given) job type, with the user's rate-limit
    slot, then the engine's prompt. Nothing is kept: the answer is for the user to use.

    The request's Idempotency-Key plays no part (nothing is created); a refusal still
    counts against the rate limit, as a write's does.
    """
    unkeyed = replace(write, key=None)
    try:
        template = prompts_admin.prompt_template_for(
            db, principal, unkeyed, body.model, body.job_type
        )
    except AppError as err:
        record_refusal(db, unkeyed, err)
        raise
    engine = engine or _engine_for(db, principal)
    enhanced = engine.enhance(body.prompt, template, body.language)
    return Enhancement(
        original=body.prompt,
        enhanced=enhanced,
        template_id=template.id,
        template_version=template.version,
        job_type=template.job_type,
        engine=engine.name,
    )
