"""Prompt engines: the offline rules, and the OpenAI-compatible engine over recorded
responses (httpx.MockTransport; no network)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import openai
import pytest

from videogen.errors import ServiceUnavailable
from videogen.models.admin import PromptTemplate
from videogen.services.prompts import MAX_PROMPT_CHARS, OfflinePromptEngine, OpenAIPromptEngine

CUES = [
    {"kind": "camera", "text": "slow cinematic dolly-in", "skip_if": ["camera", "shot", "pan"]},
    {"kind": "lighting", "text": "soft natural light", "skip_if": ["light", "sunset", "lit"]},
    {"kind": "motion", "text": "smooth, natural motion", "skip_if": ["motion", "timelapse"]},
    {"kind": "style", "text": "photorealistic, rich detail", "skip_if": ["style", "anime"]},
]


def template(cues: list[dict[str, Any]] = CUES, max_chars: int = 600) -> PromptTemplate:
    return PromptTemplate.model_validate(
        {
            "id": str(uuid.uuid4()),
            "job_type": "text_to_video",
            "version": 3,
            "instruction": "Rewrite the idea as a text-to-video prompt.",
            "hints": {"max_chars": max_chars, "cues": cues},
            "note": "",
            "active": True,
            "updated_by": None,
            "created_at": "2026-12-03T00:00:00Z",
            "updated_at": "2026-12-03T00:00:00Z",
        }
    )


# Offline ----------------------------------------------------------------------------------


def test_offline_keeps_the_users_words_first_and_adds_every_missing_cue() -> None:
    out = OfflinePromptEngine().enhance("  a paper boat   on a river. ", template())
    assert out == (
        "a paper boat on a river, slow cinematic dolly-in, soft natural light, "
        "smooth, natural motion, photorealistic, rich detail."
    )
    assert OfflinePromptEngine().enhance("a paper boat on a river", template()) == out


def test_offline_skips_cues_the_prompt_already_covers_as_whole_words() -> None:
    out = OfflinePromptEngine().enhance("an anime fox at sunset, wide shot", template())
    assert out == "an anime fox at sunset, wide shot, smooth, natural motion."
    # "little" does not mention "lit"; "lit" does.
    assert "soft natural light" in OfflinePromptEngine().enhance("a little fox", template())
    assert "soft natural light" not in OfflinePromptEngine().enhance("a fox, lit", template())


def test_offline_stays_within_the_bound_and_never_cuts_the_users_words() -> None:
    bounded = OfflinePromptEngine().enhance("a boat", template(max_chars=120))
    assert len(bounded) <= 120 and bounded.startswith("a boat, ")
    long_prompt = "word " * 390  # 1950 characters, over the template's bound
    out = OfflinePromptEngine().enhance(long_prompt, template(max_chars=300))
    assert out == " ".join(long_prompt.split())  # nothing fits: the words, untouched
    assert len(OfflinePromptEngine().enhance("x " * 990, template())) <= MAX_PROMPT_CHARS


def test_offline_with_no_cues_answers_the_prompt_itself() -> None:
    assert OfflinePromptEngine().enhance("Read this  aloud.", template(cues=[])) == (
        "Read this aloud."
    )


# OpenAI-compatible --------------------------------------------------------------------------


def completion(content: str, n: int) -> dict[str, Any]:
    """A chat.completion body as the API returns it."""
    return {
        "id": f"chatcmpl-rec{n}",
        "object": "chat.completion",
        "created": 1732550000 + n,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120},
        "system_fingerprint": "fp_rec",
    }


class Recorded:
    """Replays bodies in order and keeps every request."""

    def __init__(self, *contents: str) -> None:
        self.contents = list(contents)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append({"url": str(request.url), "body": json.loads(request.content)})
        return httpx.Response(200, json=completion(self.contents.pop(0), len(self.requests)))


def engine_with(handler: Any) -> OpenAIPromptEngine:
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://llm.example.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )
    return OpenAIPromptEngine(client, model="gpt-4o-mini")


ANSWER = (
    "A small paper boat drifts down a calm river at dawn, slow tracking shot, soft golden "
    "light, photorealistic."
)


def test_openai_sends_the_templates_instruction_and_the_prompt() -> None:
    replay = Recorded(f'  "{ANSWER}"  ')
    out = engine_with(replay).enhance("a paper boat on a river", template(), "fr")

    assert out == ANSWER  # quotes and spaces trimmed
    [sent] = replay.requests
    assert sent["url"] == "https://llm.example.test/v1/chat/completions"
    body = sent["body"]
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 800
    system, user = body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("Rewrite the idea as a text-to-video prompt.")
    assert "Prompt: a paper boat on a river" in user["content"]
    assert "Job type: text_to_video" in user["content"]
    assert "Language of the answer: fr" in user["content"]


def test_openai_asks_again_when_the_answer_is_unusable() -> None:
    replay = Recorded("   ", ANSWER)
    assert engine_with(replay).enhance("a boat", template()) == ANSWER
    feedback = replay.requests[1]["body"]["messages"]
    assert feedback[-1]["role"] == "user" and "the answer was empty" in feedback[-1]["content"]

    too_long = Recorded("x" * (MAX_PROMPT_CHARS + 1), "y" * (MAX_PROMPT_CHARS + 5))
    with pytest.raises(ServiceUnavailable) as caught:
        engine_with(too_long).enhance("a boat", template())
    assert caught.value.code == "PROMPT_ENGINE_FAILED" and "2005 characters" in str(caught.value)
    assert len(too_long.requests) == 2


def test_openai_http_errors_are_a_503_naming_no_secret() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "Incorrect API key sk-te…"}})

    with pytest.raises(ServiceUnavailable) as caught:
        engine_with(refuse).enhance("a boat", template())
    assert caught.value.status == 503 and caught.value.code == "PROMPT_ENGINE_FAILED"
    assert "sk-" not in caught.value.message and caught.value.headers["Retry-After"] == "5"
