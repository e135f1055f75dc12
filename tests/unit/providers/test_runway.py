"""Runway adapter: tasks against recorded responses; no webhooks, poll only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import pytest

from videogen.integrations.providers import (
    InvalidWebhook,
    ProviderJob,
    ProviderRateLimited,
    ProviderRejected,
    reconcile,
)
from videogen.integrations.providers.runway import RunwayProvider

if TYPE_CHECKING:
    from provider_router import Router

API = "https://api.dev.runwayml.com/v1"
TID = "17f20503-6c24-4c16-946b-35dbbce2af2f"


@pytest.fixture
def runway(http: httpx.Client) -> RunwayProvider:
    return RunwayProvider("key_runway", http)


@pytest.mark.parametrize(
    ("job_input", "endpoint"),
    [
        (
            {"promptImage": "https://x/a.png", "promptText": "clouds", "ratio": "1280:720"},
            "image_to_video",
        ),
        ({"promptText": "clouds", "ratio": "1280:720", "duration": 8}, "text_to_video"),
        ({"videoUri": "https://x/a.mp4", "promptText": "anime"}, "video_to_video"),
    ],
)
def test_submit_picks_the_endpoint_and_sends_version(
    runway: RunwayProvider, router: Router, job_input: dict[str, object], endpoint: str
) -> None:
    router.add("POST", f"{API}/{endpoint}", json_file="runway_task_created.json")
    sub = runway.submit(
        ProviderJob(model="gen4_turbo", input=job_input, webhook_url="https://ignored.example")
    )
    assert (sub.provider_job_id, sub.status) == (TID, "queued")
    sent = router.last()
    assert sent.headers["authorization"] == "Bearer key_runway"
    assert sent.headers["x-runway-version"] == "2024-11-06"
    assert json.loads(sent.content) == {"model": "gen4_turbo", **job_input}


@pytest.mark.parametrize(
    ("file", "state", "progress", "urls", "code"),
    [
        ("runway_task_pending.json", "queued", 0, (), None),
        ("runway_task_running.json", "processing", 42, (), None),
        (
            "runway_task_succeeded.json",
            "completed",
            100,
            (
                "https://dnznrvs05pmza.cloudfront.net/17f20503-6c24-4c16-946b-35dbbce2af2f.mp4"
                "?_jwt=eyJhbGciOiJIUzI1NiJ9.e30.x",
            ),
            None,
        ),
        ("runway_task_failed.json", "failed", None, (), "SAFETY.INPUT.IMAGE"),
    ],
)
def test_status(
    runway: RunwayProvider,
    router: Router,
    file: str,
    state: str,
    progress: int | None,
    urls: tuple[str, ...],
    code: str | None,
) -> None:
    router.add("GET", f"{API}/tasks/{TID}", json_file=file)
    status = runway.status(TID)
    assert (status.state, status.progress, status.output_urls, status.error_code) == (
        state,
        progress,
        urls,
        code,
    )


def test_cancel_deletes_the_task(runway: RunwayProvider, router: Router) -> None:
    router.add("DELETE", f"{API}/tasks/{TID}", status=204)
    runway.cancel(TID)
    assert router.last().method == "DELETE"


def test_validation_and_rate_limit_errors(runway: RunwayProvider, router: Router) -> None:
    router.add("POST", f"{API}/image_to_video", json_file="runway_error_400.json", status=400)
    with pytest.raises(ProviderRejected) as rejected:
        runway.submit(ProviderJob(model="gen4_turbo", input={"promptImage": "nope"}))
    assert "Validation of body failed" in rejected.value.message
    router.add("GET", f"{API}/tasks/{TID}", json_file="runway_error_429.json", status=429)
    with pytest.raises(ProviderRateLimited):
        runway.status(TID)


def test_no_webhooks_only_reconcile(runway: RunwayProvider, router: Router) -> None:
    assert not runway.supports_webhooks
    with pytest.raises(InvalidWebhook):
        runway.verify_webhook({}, b"{}")
    with pytest.raises(InvalidWebhook):
        runway.parse_webhook({}, b"{}")
    router.add("GET", f"{API}/tasks/{TID}", json_file="runway_task_succeeded.json")
    event = reconcile(runway, TID)
    assert event.provider_job_id == TID
    assert event.state == "completed"
    assert event.is_terminal
    assert event.verified
