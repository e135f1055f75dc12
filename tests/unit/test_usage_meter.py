"""The in-process meter: what engines record inside a metering block, and only there."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from videogen import usage
from videogen.media.narration import Speech, narrate_sections
from videogen.media.script import OpenAIScriptEngine
from videogen.models.workers import JobCallback

TWO_SECTIONS = {
    "title": "Tides",
    "sections": [
        {"title": "Moon", "narration": "The moon pulls the sea.", "image_prompt": "moon"},
        {"title": "Bulges", "narration": "Two bulges, two tides.", "image_prompt": "earth"},
    ],
}


def recorded_completion(content: str, prompt: int, completion: int) -> dict[str, Any]:
    """A chat.completion body as the API returns it, with its usage."""
    return {
        "id": "chatcmpl-rec1",
        "object": "chat.completion",
        "created": 1732550000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def engine(*answers: tuple[str, int, int]) -> OpenAIScriptEngine:
    queue = list(answers)

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=recorded_completion(*queue.pop(0)))

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://llm.example.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(reply)),
        max_retries=0,
    )
    return OpenAIScriptEngine(client, model="gpt-4o-mini")


def test_the_openai_engine_records_every_completions_tokens() -> None:
    # The first answer is malformed and retried: both exchanges were paid for.
    llm = engine(("not json", 150, 12), (json.dumps(TWO_SECTIONS), 190, 85))
    with usage.metering() as meter:
        llm.write("tides", sections=2)
    assert meter.as_usage() == {
        "llm_model": "gpt-4o-mini-2024-07-18",
        "prompt_tokens": 340,
        "completion_tokens": 97,
        "provider_calls": 2,
    }


def test_outside_a_block_nothing_is_recorded() -> None:
    engine((json.dumps(TWO_SECTIONS), 10, 10)).write("tides", sections=2)
    assert usage.current() is None
    with usage.metering() as meter:
        pass
    assert meter.as_usage() == {}


class CountingEngine:
    """A TTS engine that records a call per synthesis, as the cloud engine does."""

    name = "fake-cloud"

    def synthesize(self, text: str, out: Path, **_: Any) -> Speech:
        usage.record_calls()
        out.write_bytes(b"")
        return Speech(path=out, duration=1.0)


def test_narration_counts_characters_and_keeps_the_meter_in_its_threads(
    tmp_path: Path,
) -> None:
    texts = ["One two three.", "Four five.", "Six.", "Seven eight nine ten."]
    with usage.metering() as meter:
        narrate_sections(CountingEngine(), texts, tmp_path)
    assert meter.as_usage() == {
        "provider_calls": 4,  # recorded in the pool's threads
        "tts_characters": sum(len(t) for t in texts),
        "tts_engine": "fake-cloud",
    }


def test_renders_add_wall_time_and_output_seconds() -> None:
    with usage.metering() as meter:
        with usage.timed_render(4.0):
            pass
        usage.record_render(2.5, 10.0)
    got = meter.as_usage()
    assert got["render_output_seconds"] == 14.0
    assert 2.5 <= got["render_seconds"] < 3.5


def test_a_sectioned_render_reports_its_kind_and_speed() -> None:
    with usage.metering() as meter:
        usage.record_render(3.25, 20.0, (1280, 720, 30, 2))
        usage.record_render(1.0, 5.0)  # a plain render: time only
    got = meter.as_usage()
    assert got["renders"] == [
        {
            "width": 1280,
            "height": 720,
            "fps": 30,
            "sections": 2,
            "wall_seconds": 3.25,
            "output_seconds": 20.0,
        }
    ]
    assert got["render_seconds"] == 4.25 and got["render_output_seconds"] == 25.0
    # The worker's callback takes it as it is.
    callback = JobCallback.model_validate(
        {"type": "completed", "job_id": str(uuid.uuid4()), "attempt": 1, "usage": got}
    )
    assert callback.usage is not None and callback.usage.renders is not None
    assert callback.usage.renders[0].sections == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"renders": [{"width": 1280}]},
        {"prompt_tokens": -1},
        {"prompt_tokens": 2.5},
        {"render_seconds": "3"},
        {"llm_model": ""},
        {"unknown": 1},
    ],
)
def test_the_callback_refuses_malformed_usage(bad: dict[str, Any]) -> None:
    body = {"type": "completed", "job_id": "7d0b8a4e-6f8e-4c2a-9c9b-0c6c1c2d3e4f", "attempt": 1}
    with pytest.raises(ValueError):
        JobCallback.model_validate({**body, "usage": bad})
    with pytest.raises(ValueError):  # and usage only with a finished attempt
        JobCallback.model_validate({**body, "type": "progress", "usage": {}})
    assert JobCallback.model_validate({**body, "usage": {"prompt_tokens": 3}}).usage
