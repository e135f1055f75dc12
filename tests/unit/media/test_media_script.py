"""Script engines: the offline templates and OpenAI chat completions against recorded JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from videogen.media.errors import ScriptError
from videogen.media.script import (
    SCRIPT_JSON_SCHEMA,
    OfflineScriptEngine,
    OpenAIScriptEngine,
    Script,
    get_script_engine,
)


def test_offline_scripts_are_deterministic_and_sized_as_asked() -> None:
    engine = OfflineScriptEngine()
    first = engine.write("  photosynthesis. ", sections=4)
    assert first == engine.write("photosynthesis", sections=4)
    assert first.title == "Photosynthesis explained"
    assert len(first.sections) == 4
    assert first.sections[0].title == "What is photosynthesis?"
    assert first.sections[-1].title == "Key takeaways"
    for section in first.sections:
        assert "photosynthesis" in section.narration
        assert section.narration.endswith((".", "!", "?"))
        assert section.image_prompt
    assert len(engine.write("x", sections=1).sections) == 1
    many = engine.write("volcanoes", sections=9)
    assert len(many.sections) == 9 and many.sections[-1].title == "Key takeaways"


def test_offline_scripts_vary_between_topics() -> None:
    engine = OfflineScriptEngine()
    titles = {tuple(s.title for s in engine.write(t).sections) for t in ("a", "b", "c", "d")}
    assert len(titles) > 1


def test_get_script_engine_reads_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_script_engine("offline").name == "offline"
    with pytest.raises(ScriptError, match="unknown script engine"):
        get_script_engine("magic")


# OpenAI, recorded ----------------------------------------------------------------------------

VALID = {
    "title": "Tides, explained",
    "sections": [
        {
            "title": "The Moon's pull",
            "narration": "The Moon's gravity pulls on Earth's oceans. Water bulges toward it.",
            "image_prompt": "the Moon above a calm ocean at night",
        },
        {
            "title": "Two bulges",
            "narration": "A second bulge forms on the far side. Most coasts see two tides a day.",
            "image_prompt": "diagram of Earth with two ocean bulges",
        },
    ],
}
# A realistic failure: fenced markdown and a section missing its narration.
MALFORMED = (
    '```json\n{"title": "Tides", "sections": [{"title": "Moon", "image_prompt": "moon"}]}\n```'
)


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
        "usage": {"prompt_tokens": 120, "completion_tokens": 90, "total_tokens": 210},
        "system_fingerprint": "fp_rec",
    }


class Recorded:
    """An httpx transport that replays bodies in order and keeps every request."""

    def __init__(self, *contents: str) -> None:
        self.contents = list(contents)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append({"url": str(request.url), "body": json.loads(request.content)})
        body = completion(self.contents.pop(0), len(self.requests))
        return httpx.Response(200, json=body)


def mock_client(handler: Any) -> Any:
    """An httpx client over a MockTransport (openai 3 is typed for httpx2 but takes httpx)."""
    return httpx.Client(transport=httpx.MockTransport(handler))


def engine_with(replay: Recorded, **kw: Any) -> OpenAIScriptEngine:
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://llm.example.test/v1",
        http_client=mock_client(replay),
        max_retries=0,
    )
    return OpenAIScriptEngine(client, model="gpt-4o-mini", **kw)


def test_openai_retries_a_malformed_answer_with_the_error_fed_back() -> None:
    replay = Recorded(MALFORMED, json.dumps(VALID))
    script = engine_with(replay).write("tides", sections=2)

    assert script == Script.model_validate(VALID)
    assert len(replay.requests) == 2
    first, second = (r["body"] for r in replay.requests)
    assert replay.requests[0]["url"] == "https://llm.example.test/v1/chat/completions"
    assert first["model"] == "gpt-4o-mini"
    assert first["response_format"] == {"type": "json_schema", "json_schema": SCRIPT_JSON_SCHEMA}
    assert "Topic: tides" in first["messages"][1]["content"]
    assert len(second["messages"]) == 4
    assert second["messages"][2] == {"role": "assistant", "content": MALFORMED}
    assert second["messages"][3]["role"] == "user"
    assert "not valid" in second["messages"][3]["content"]
    assert "Expecting value" in second["messages"][3]["content"]  # the JSON error itself


def test_openai_reports_pydantic_errors_and_wrong_section_counts() -> None:
    missing = json.dumps({"title": "T", "sections": [{"title": "a", "image_prompt": "b"}]})
    replay = Recorded(missing, json.dumps(VALID), json.dumps(VALID))
    script = engine_with(replay).write("tides", sections=2)
    assert script.title == "Tides, explained"
    feedback = replay.requests[1]["body"]["messages"][-1]["content"]
    assert "sections.0.narration: Field required" in feedback

    replay = Recorded(json.dumps(VALID), json.dumps(VALID))
    with pytest.raises(ScriptError, match="expected exactly 3 sections, got 2"):
        engine_with(replay, max_attempts=2).write("tides", sections=3)
    assert len(replay.requests) == 2


def test_openai_gives_up_after_max_attempts() -> None:
    replay = Recorded("nope", "still nope", "never")
    with pytest.raises(ScriptError, match="no valid script in 3 attempts") as caught:
        engine_with(replay).write("tides", sections=2)
    assert caught.value.code == "SCRIPT_FAILED"
    assert len(replay.requests) == 3


def test_openai_json_object_mode_for_compatible_servers() -> None:
    replay = Recorded(json.dumps(VALID))
    engine_with(replay, response_format="json_object").write("tides", sections=2)
    assert replay.requests[0]["body"]["response_format"] == {"type": "json_object"}


def test_openai_http_errors_become_script_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}})

    client = openai.OpenAI(
        api_key="sk-bad",
        http_client=mock_client(refuse),
        max_retries=0,
    )
    with pytest.raises(ScriptError, match="Incorrect API key"):
        OpenAIScriptEngine(client).write("tides")
